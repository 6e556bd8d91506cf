// Runs charts exported by `Graph::to_scxml` in SCION (@scion-scxml/scxml), an SCXML interpreter
// independent of ours, for the conformance runner's second differential (conformance/src/xstate.rs
// runs both). Reads the cases as JSON on stdin:
//   [{"name": "group/name", "config": "<scxml ...>", "steps": [{"after": ms | null, "event": "E"}]}]
// and prints one JSON line a case: {"name", "configurations": [[state, ...], ...]} (after start and
// after each step) or {"name", "error"}.
//
// `<send>` goes through SCION's customSend: without a delay to the external queue, drained after
// each macrostep; with one to a virtual clock that, like the runner's, fires each due timer at its
// own instant, in due order (ties: scheduling order). `<cancel>` through customCancel.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const scxml = require('@scion-scxml/scxml');

function model(text) {
  return new Promise((resolve, reject) => {
    scxml.documentStringToModel('chart.scxml', text, (err, m) => {
      if (err) return reject(err);
      m.prepare((err, fnModel) => (err ? reject(err) : resolve(fnModel)));
    });
  });
}

async function run(c) {
  const fnModel = await model(c.config);
  let now = 0;
  let seq = 0;
  const timers = [];
  const external = [];
  const sc = new scxml.core.Statechart(fnModel, {
    customSend(event, options) {
      const delay = options && options.delay ? options.delay : 0;
      if (delay > 0) timers.push({ due: now + delay, seq: ++seq, id: event.sendid, name: event.name });
      else external.push(event.name);
    },
    customCancel(sendid) {
      for (let i = timers.length - 1; i >= 0; i--) if (timers[i].id === sendid) timers.splice(i, 1);
    },
  });
  const settle = () => {
    while (external.length) sc.gen({ name: external.shift() });
  };
  const advance = (ms) => {
    const until = now + ms;
    for (;;) {
      let next = -1;
      for (let i = 0; i < timers.length; i++) {
        const t = timers[i];
        if (t.due <= until && (next < 0 || t.due < timers[next].due || (t.due === timers[next].due && t.seq < timers[next].seq))) next = i;
      }
      if (next < 0) break;
      const [t] = timers.splice(next, 1);
      now = t.due;
      sc.gen({ name: t.name });
      settle();
    }
    now = until;
  };
  const configuration = () => [...sc.getConfiguration()].sort();
  sc.start();
  settle();
  const configurations = [configuration()];
  for (const step of c.steps) {
    if (step.after != null) advance(step.after);
    sc.gen({ name: step.event });
    settle();
    configurations.push(configuration());
  }
  return configurations;
}

const cases = JSON.parse(readFileSync(0, 'utf8'));
for (const c of cases) {
  if (process.env.WORKFLOW_DIFFERENTIAL_DUMP === c.name) console.error(c.config);
  try {
    console.log(JSON.stringify({ name: c.name, configurations: await run(c) }));
  } catch (e) {
    console.log(JSON.stringify({ name: c.name, error: String(e && e.message ? e.message : e) }));
  }
}
