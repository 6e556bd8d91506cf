// Runs charts exported by `Graph::to_xstate` in XState's own interpreter, for the conformance
// runner's differential (conformance/src/differential.rs). Reads the cases as JSON on stdin:
//   [{"name": "group/name", "config": {...}, "steps": [{"after": ms | null, "event": "E"}]}]
// and prints one JSON line a case: {"name", "configurations": [[leaf, ...], ...]} (after start and
// after each step) or {"name", "error"}.
//
// The chart's parameterised actions are provided as XState's own: `workflow.raise` is `raise`
// (the internal queue), `workflow.send` is `sendTo` the machine itself (the external queue, or the
// clock when delayed), `workflow.cancel` is `cancel`. Time is a virtual clock that, like the
// runner's, fires each due timer at its own instant, in due order (ties: scheduling order).
import { readFileSync } from 'node:fs';
import { cancel, createActor, createMachine, raise, sendTo } from 'xstate';

class VirtualClock {
  constructor() {
    this.now = 0;
    this.seq = 0;
    this.timers = new Map();
  }
  setTimeout(fn, ms) {
    const id = ++this.seq;
    this.timers.set(id, { due: this.now + ms, seq: id, fn });
    return id;
  }
  clearTimeout(id) {
    this.timers.delete(id);
  }
  advance(ms) {
    const until = this.now + ms;
    for (;;) {
      let next;
      for (const [id, t] of this.timers) {
        if (t.due <= until && (!next || t.due < next.due || (t.due === next.due && t.seq < next.seq))) {
          next = { id, ...t };
        }
      }
      if (!next) break;
      this.timers.delete(next.id);
      this.now = next.due;
      next.fn();
    }
    this.now = until;
  }
}

const actions = {
  'workflow.raise': raise((_, params) => ({ type: params.event })),
  'workflow.send': sendTo(({ self }) => self, (_, params) => ({ type: params.event }), {
    id: (_, params) => params.id,
    delay: (_, params) => (params.delay > 0 ? params.delay : undefined),
  }),
  'workflow.cancel': cancel((_, params) => params.id),
};

/** The active atomic states: the leaves of a snapshot's value. */
function leaves(value) {
  if (typeof value === 'string') return [value];
  const out = [];
  for (const [key, sub] of Object.entries(value)) {
    if (typeof sub === 'string') out.push(sub);
    else if (Object.keys(sub).length === 0) out.push(key);
    else out.push(...leaves(sub));
  }
  return out;
}

function configuration(actor) {
  const snapshot = actor.getSnapshot();
  if (snapshot.status === 'error') throw snapshot.error;
  return leaves(snapshot.value).sort();
}

const cases = JSON.parse(readFileSync(0, 'utf8'));
for (const c of cases) {
  if (process.env.WORKFLOW_DIFFERENTIAL_DUMP === c.name) console.error(JSON.stringify(c.config, null, 1));
  try {
    const clock = new VirtualClock();
    const machine = createMachine(c.config).provide({ actions });
    const actor = createActor(machine, { clock });
    actor.start();
    const configurations = [configuration(actor)];
    for (const step of c.steps) {
      if (step.after != null) clock.advance(step.after);
      actor.send({ type: step.event });
      configurations.push(configuration(actor));
    }
    console.log(JSON.stringify({ name: c.name, configurations }));
  } catch (e) {
    console.log(JSON.stringify({ name: c.name, error: String(e && e.message ? e.message : e) }));
  }
}
