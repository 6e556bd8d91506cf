#!/usr/bin/env python3
"""Compile time of one large workflow: `workflow!` vs smlang 0.8 vs a hand-written match.

Generates, with a fixed seed, a random but connected order-like machine of
300 states and 1,500 transitions (every state reachable from the initial one,
a final state reachable from every state, 30 events, a few guards and actions)
and writes it three ways (ours twice) as throwaway crates under target/compile-time/:

  ours/    `workflow!` (path dependency on this repository)
  ours_no_serde/  the same with `default-features = false`: no serde
           impls for the generated types, which smlang does not generate
  ours_import/  ours_no_serde's workflow imported at compile time from the
           same chart as SCXML (`workflow Big from "big.scxml";`)
  smlang/  smlang 0.8 `statemachine!`
  hand/    a hand-written `match (state, event)`

The crates share one CARGO_TARGET_DIR (target/compile-time/target), so
their dependencies compile once. Each crate is built once untimed, then its
src/lib.rs is touched and `cargo build` (debug) is timed RUNS times; the
median is reported. Two modes are measured:

  incremental  plain `cargo build`, as in an edit-compile loop (the debug
               profile compiles path crates incrementally, so after a touch
               the macro re-expands but unchanged code is reused)
  full         CARGO_INCREMENTAL=0: the crate is recompiled from scratch, as
               after a real edit of the workflow or in CI

Standard library only. Run from anywhere:

    python3 benches/compile_time.py            # both modes
    python3 benches/compile_time.py --mode incremental --runs 5

Target: ours at most half of smlang's time; importing the chart at most 10%
over writing it as a block (ours_import / ours_no_serde <= 1.10).
`--crates ours_no_serde,ours_import` builds and times only those.
"""

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "target", "compile-time")
TARGET_DIR = os.path.join(OUT, "target")

SEED = 20240611
N_STATES = 300
N_FINAL = 5
N_TRANSITIONS = 1500
N_EVENTS = 30
N_PAYLOAD_EVENTS = 6  # E0..E5 carry `{ v: u32 }`; guards and actions use them
N_GUARDED_PAIRS = 40  # `on E if g => A / a; on E => B;`
N_ACTIONS = 120  # extra unguarded transitions with an action


# ---------------------------------------------------------------------------
# The graph
# ---------------------------------------------------------------------------


class Graph:
    def __init__(self):
        self.states = []  # names; finals last
        self.finals = set()
        self.initial = None
        self.events = []  # (name, has_payload)
        # transitions in declaration order, grouped per source:
        # (source, event, guard or None, target, action or None)
        self.transitions = []


def generate(seed=SEED):
    rng = random.Random(seed)
    g = Graph()
    n_atomic = N_STATES - N_FINAL
    atomic = [f"S{i}" for i in range(n_atomic)]
    finals = [f"F{i}" for i in range(N_FINAL)]
    g.states = atomic + finals
    g.finals = set(finals)
    g.initial = atomic[0]
    g.events = [(f"E{i}", i < N_PAYLOAD_EVENTS) for i in range(N_EVENTS)]
    payload_events = [e for e, p in g.events if p]
    plain_events = [e for e, p in g.events if not p]

    per_state = {s: [] for s in atomic}  # source -> [(event, guard, target, action)]
    used = {s: set() for s in atomic}  # events with an unguarded transition

    def add(source, event, target, guard=None, action=None):
        per_state[source].append((event, guard, target, action))
        if guard is None:
            used[source].add(event)

    def free_event(source, pool):
        choices = [e for e in pool if e not in used[source]]
        return rng.choice(choices) if choices else None

    # 1. A random chain through every atomic state (initial first) ending in a
    #    final: every state is reachable from the initial one, and a final is
    #    reachable from every state.
    order = [atomic[0]] + rng.sample(atomic[1:], len(atomic) - 1)
    for a, b in zip(order, order[1:] + [finals[0]]):
        add(a, free_event(a, plain_events), b)
    # 2. Every other final gets an incoming transition.
    for f in finals[1:]:
        s = rng.choice(atomic)
        add(s, free_event(s, plain_events), f)
    count = len(order) + len(finals) - 1
    # 3. Guarded pairs on payload events: the guarded transition (with an
    #    action) first, then the unguarded fallback on the same event.
    pairs = 0
    while pairs < N_GUARDED_PAIRS:
        s = rng.choice(atomic)
        e = free_event(s, payload_events)
        if e is None:
            continue
        k = e[1:]
        add(s, e, rng.choice(g.states), guard=f"g{k}", action=f"a{k}")
        add(s, e, rng.choice(g.states))
        pairs += 1
        count += 2
    # 4. Unguarded transitions with an action, on payload events.
    actions = 0
    while actions < N_ACTIONS:
        s = rng.choice(atomic)
        e = free_event(s, payload_events)
        if e is None:
            continue
        add(s, e, rng.choice(g.states), action=f"a{e[1:]}")
        actions += 1
        count += 1
    # 5. Plain random transitions up to the total.
    all_events = [e for e, _ in g.events]
    while count < N_TRANSITIONS:
        s = rng.choice(atomic)
        e = free_event(s, all_events)
        if e is None:
            continue
        add(s, e, rng.choice(g.states))
        count += 1

    for s in atomic:
        # Within a state, keep each guarded transition right before its fallback.
        for event, guard, target, action in per_state[s]:
            g.transitions.append((s, event, guard, target, action))
    check(g)
    return g


def check(g):
    """The properties the macro insists on, checked here too."""
    assert len(g.states) == N_STATES and len(g.transitions) == N_TRANSITIONS, (len(g.states), len(g.transitions))
    edges = {s: set() for s in g.states}
    for s, _, _, t, _ in g.transitions:
        edges[s].add(t)
    seen, todo = {g.initial}, [g.initial]
    while todo:
        for t in edges[todo.pop()]:
            if t not in seen:
                seen.add(t)
                todo.append(t)
    assert seen == set(g.states), "unreachable states"
    reverse = {s: set() for s in g.states}
    for s, ts in edges.items():
        for t in ts:
            reverse[t].add(s)
    seen, todo = set(g.finals), list(g.finals)
    while todo:
        for t in reverse[todo.pop()]:
            if t not in seen:
                seen.add(t)
                todo.append(t)
    assert seen == set(g.states), "dead ends"
    unguarded = set()
    for s, e, guard, _, _ in g.transitions:
        assert (s, e) not in unguarded, f"shadowed transition {s} {e}"
        if guard is None:
            unguarded.add((s, e))
    assert {e for _, e, _, _, _ in g.transitions} == {e for e, _ in g.events}, "unused events"


# ---------------------------------------------------------------------------
# The three crates
# ---------------------------------------------------------------------------

HEADER = "// Generated by benches/compile_time.py (seed {seed}); not committed.\n"


def cargo_toml(name, dependency):
    return f"""[package]
name = "{name}"
version = "0.0.0"
edition = "2021"
publish = false

[lib]
path = "src/lib.rs"

[dependencies]
{dependency}

# Its own workspace: not a member of the repository's.
[workspace]
"""


def ours_source(g):
    payload = {e for e, p in g.events if p}
    lines = [HEADER.format(seed=SEED), "use workflow::prelude::*;", "", "workflow! {", "    pub workflow Big {"]
    lines.append("        context u32;")
    lines.append(f"        initial {g.initial};")
    events = ", ".join(f"{e} {{ v: u32 }}" if p else e for e, p in g.events)
    lines.append(f"        events {{ {events} }}")
    current = None
    for s, e, guard, t, action in g.transitions:
        if s != current:
            if current is not None:
                lines.append("        }")
            lines.append(f"        state {s} {{")
            current = s
        text = f"            on {e}"
        if guard:
            text += f" if {guard}"
        text += f" => {t}"
        if action:
            text += f" / {action}"
        lines.append(text + ";")
    lines.append("        }")
    for f in sorted(g.finals):
        lines.append(f"        final {f};")
    lines += ["    }", "}", "", "pub struct Rules;", "", "impl BigHandlers for Rules {"]
    for e in sorted(payload):
        k = e[1:]
        lines.append(f"    fn g{k}(&self, _context: &u32, event: &{e}) -> bool {{ event.v > 3 }}")
        lines.append(f"    fn a{k}(&self, context: &mut u32, event: &{e}) {{ *context += event.v; }}")
    lines.append("}")
    return "\n".join(lines) + "\n"


def scxml_chart(g):
    """The workflow as the SCXML `Graph::to_scxml` writes (guards as `cond`, actions as `wf:action`)."""
    lines = [
        '<scxml xmlns="http://www.w3.org/2005/07/scxml" xmlns:wf="urn:x-workflow-rs:scxml:1" '
        f'version="1.0" datamodel="null" name="Big" initial="{g.initial}">',
        "  <wf:events>",
    ]
    for e, p in g.events:
        field = '<wf:field name="v" type="u32"/>' if p else ""
        lines.append(f'    <wf:event name="{e}">{field}</wf:event>')
    lines.append("  </wf:events>")
    current = None
    for s, e, guard, t, action in g.transitions:
        if s != current:
            if current is not None:
                lines.append("  </state>")
            lines.append(f'  <state id="{s}">')
            current = s
        cond = f' cond="{guard}"' if guard else ""
        body = f'<wf:action name="{action}"/>' if action else ""
        lines.append(f'    <transition event="{e}"{cond} target="{t}">{body}</transition>')
    lines.append("  </state>")
    for f in sorted(g.finals):
        lines.append(f'  <final id="{f}"/>')
    lines.append("</scxml>")
    return "\n".join(lines) + "\n"


def import_source(g):
    """ours_source with the block replaced by `from \"big.scxml\"`."""
    block = ours_source(g)
    start = block.index("workflow! {")
    end = block.index("pub struct Rules;")
    imported = 'workflow! {\n    pub workflow Big from "big.scxml";\n    context u32;\n}\n\n'
    return block[:start] + imported + block[end:]


def smlang_source(g):
    payload = {e for e, p in g.events if p}
    assert g.transitions[0][0] == g.initial
    lines = [HEADER.format(seed=SEED), "use smlang::statemachine;", ""]
    for e in sorted(payload):
        lines.append(f"#[derive(Clone, Copy, Debug)]\npub struct {e}Data {{ pub v: u32 }}")
    lines += ["", "statemachine! {", "    name: Big,", "    transitions: {"]
    for index, (s, e, guard, t, action) in enumerate(g.transitions):
        star = "*" if index == 0 else ""  # the initial state's first transition
        text = f"        {star}{s} + {e}"
        if e in payload:
            text += f"({e}Data)"
        if guard:
            text += f" [{guard}]"
        if action:
            text += f" / {action}"
        lines.append(text + f" = {t},")
    lines += ["    }", "}", "", "pub struct Ctx(pub u32);", "", "impl BigStateMachineContext for Ctx {"]
    for e in sorted(payload):
        k = e[1:]
        lines.append(f"    fn g{k}(&self, event: &{e}Data) -> Result<bool, ()> {{ Ok(event.v > 3) }}")
        lines.append(f"    fn a{k}(&mut self, event: {e}Data) -> Result<(), ()> {{ self.0 += event.v; Ok(()) }}")
    lines.append("}")
    return "\n".join(lines) + "\n"


def hand_source(g):
    payload = {e for e, p in g.events if p}
    lines = [HEADER.format(seed=SEED), "#[derive(Clone, Copy, Debug, PartialEq, Eq)]", "pub enum State {"]
    lines += [f"    {s}," for s in g.states]
    lines += ["}", "", "#[derive(Clone, Debug)]", "pub enum Event {"]
    lines += [f"    {e} {{ v: u32 }}," if p else f"    {e}," for e, p in g.events]
    lines += ["}", ""]
    for e in sorted(payload):
        k = e[1:]
        lines.append(f"fn g{k}(_context: &u32, v: u32) -> bool {{ v > 3 }}")
        lines.append(f"fn a{k}(context: &mut u32, v: u32) {{ *context += v; }}")
    lines += [
        "",
        "pub struct Machine { pub state: State, pub context: u32 }",
        "",
        "impl Machine {",
        f"    pub fn new(context: u32) -> Self {{ Self {{ state: State::{g.initial}, context }} }}",
        "",
        "    /// `Ok(new state)`, or `Err(state)` for an event the state does not accept.",
        "    pub fn handle(&mut self, event: &Event) -> Result<State, State> {",
        "        let to = match (self.state, event) {",
    ]
    for s, e, guard, t, action in g.transitions:
        pattern = f"(State::{s}, Event::{e} {{ v }})" if e in payload else f"(State::{s}, Event::{e})"
        if e in payload and not guard and not action:
            pattern = f"(State::{s}, Event::{e} {{ .. }})"
        cond = f" if {guard}(&self.context, *v)" if guard else ""
        body = f"{{ {action}(&mut self.context, *v); State::{t} }}" if action else f"State::{t}"
        lines.append(f"            {pattern}{cond} => {body},")
    lines += [
        "            (state, _) => return Err(state),",
        "        };",
        "        self.state = to;",
        "        Ok(to)",
        "    }",
        "}",
    ]
    return "\n".join(lines) + "\n"


def write_crates(g):
    workflow_path = os.path.relpath(ROOT, os.path.join(OUT, "ours"))
    crates = [
        ("ours", "ct_ours", f'workflow = {{ path = "{workflow_path}" }}', ours_source(g)),
        # The same without the default features: no serde impls for the
        # generated types (smlang generates none), no SQLite.
        (
            "ours_no_serde",
            "ct_ours_no_serde",
            f'workflow = {{ path = "{workflow_path}", default-features = false }}',
            ours_source(g),
        ),
        (
            "ours_import",
            "ct_ours_import",
            f'workflow = {{ path = "{workflow_path}", default-features = false }}',
            import_source(g),
        ),
        ("smlang", "ct_smlang", 'smlang = "0.8"', smlang_source(g)),
        ("hand", "ct_hand", "", hand_source(g)),
    ]
    paths = {}
    for directory, name, dependency, source in crates:
        path = os.path.join(OUT, directory)
        os.makedirs(os.path.join(path, "src"), exist_ok=True)
        write_if_changed(os.path.join(path, "Cargo.toml"), cargo_toml(name, dependency))
        write_if_changed(os.path.join(path, "src", "lib.rs"), source)
        if directory == "ours_import":
            write_if_changed(os.path.join(path, "big.scxml"), scxml_chart(g))
        paths[directory] = path
    return paths


def write_if_changed(path, text):
    try:
        with open(path) as f:
            if f.read() == text:
                return
    except OSError:
        pass
    with open(path, "w") as f:
        f.write(text)


# ---------------------------------------------------------------------------
# Building and timing
# ---------------------------------------------------------------------------


def cargo(crate_dir, extra_env, offline, args=("build",)):
    env = dict(os.environ, CARGO_TARGET_DIR=TARGET_DIR, **extra_env)
    env.pop("RUSTFLAGS", None)
    command = ["cargo", *args]
    if offline:
        command.append("--offline")
    start = time.perf_counter()
    result = subprocess.run(command, cwd=crate_dir, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    return result, elapsed


def first_build(crate_dir, env):
    """Builds the crate and its dependencies; returns whether `--offline` works."""
    result, _ = cargo(crate_dir, env, offline=True)
    if result.returncode == 0:
        return True
    result, _ = cargo(crate_dir, env, offline=False)
    if result.returncode != 0:
        sys.stderr.write(result.stderr)
        sys.exit(f"cargo build failed in {crate_dir}")
    return False


def touch(path):
    now = time.time()
    os.utime(path, (now, now))


def time_rebuilds(crate_dir, env, offline, runs):
    lib = os.path.join(crate_dir, "src", "lib.rs")
    times = []
    for _ in range(runs):
        time.sleep(0.05)  # a strictly newer mtime than the last build's outputs
        touch(lib)
        result, elapsed = cargo(crate_dir, env, offline)
        if result.returncode != 0:
            sys.stderr.write(result.stderr)
            sys.exit(f"cargo build failed in {crate_dir}")
        if "Compiling" not in result.stderr:
            sys.exit(f"touching {lib} did not make cargo rebuild it:\n{result.stderr}")
        times.append(elapsed)
    return times


MODES = {"incremental": {}, "full": {"CARGO_INCREMENTAL": "0"}}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="timed rebuilds per crate (median reported)")
    parser.add_argument("--mode", choices=["incremental", "full", "both"], default="both")
    parser.add_argument("--clean", action="store_true", help="remove target/compile-time first")
    parser.add_argument("--crates", help="comma-separated crates to build and time (default: all)")
    args = parser.parse_args()
    if args.clean and os.path.isdir(OUT):
        shutil.rmtree(OUT)

    g = generate()
    paths = write_crates(g)
    if args.crates:
        paths = {name: path for name, path in paths.items() if name in args.crates.split(",")}
    guarded = sum(1 for t in g.transitions if t[2])
    with_action = sum(1 for t in g.transitions if t[4])
    print(
        f"workflow: {len(g.states)} states ({len(g.finals)} final), {len(g.transitions)} transitions, "
        f"{len(g.events)} events, {guarded} guarded, {with_action} with an action (seed {SEED})"
    )
    for name, path in paths.items():
        with open(os.path.join(path, "src", "lib.rs")) as f:
            text = f.read()
        print(f"  {os.path.relpath(path, ROOT)}/src/lib.rs: {text.count(chr(10))} lines, {len(text) // 1024} KiB")
    print(f"shared CARGO_TARGET_DIR: {os.path.relpath(TARGET_DIR, ROOT)}")

    modes = ["incremental", "full"] if args.mode == "both" else [args.mode]
    results = {}
    for mode in modes:
        env = MODES[mode]
        for name, path in paths.items():
            print(f"[{mode}] {name}: building dependencies ...", end="", flush=True)
            offline = first_build(path, env)
            times = time_rebuilds(path, env, offline, args.runs)
            results[(mode, name)] = times
            print(f" rebuilds {', '.join(f'{t:.2f}' for t in times)} s{' (offline)' if offline else ''}")

    print()
    header = "| crate (debug `cargo build` after touching src/lib.rs) |"
    rule = "|---|"
    for mode in modes:
        header += f" median s, {mode} |"
        rule += "---:|"
    print(header)
    print(rule)
    labels = {
        "ours": "ours (`workflow!`, default features: serde impls for the generated types)",
        "ours_no_serde": "ours, `default-features = false` (no serde, as smlang)",
        "ours_import": "ours_no_serde imported from the chart (`from \"big.scxml\"`)",
        "smlang": "smlang 0.8 `statemachine!`", "hand": "hand-written `match (state, event)`"}
    for name in paths:
        row = f"| {labels[name]} |"
        for mode in modes:
            row += f" {statistics.median(results[(mode, name)]):.2f} |"
        print(row)
    print()
    for mode in modes:
        if (mode, "ours_import") in results and (mode, "ours_no_serde") in results:
            ratio = statistics.median(results[(mode, "ours_import")]) / statistics.median(results[(mode, "ours_no_serde")])
            verdict = "met" if ratio <= 1.10 else "MISSED"
            print(f"{mode}: ours_import / ours_no_serde = {ratio:.3f} (target <= 1.10: {verdict})")
        if (mode, "smlang") not in results or (mode, "hand") not in results:
            continue
        smlang = statistics.median(results[(mode, "smlang")])
        hand = statistics.median(results[(mode, "hand")])
        for name in ("ours", "ours_no_serde"):
            if (mode, name) not in results:
                continue
            ours = statistics.median(results[(mode, name)])
            ratio = ours / smlang
            verdict = "met" if ratio <= 0.5 else "MISSED"
            print(f"{mode}: {name} / smlang = {ratio:.2f} (target <= 0.50: {verdict}); {name} / hand = {ours / hand:.2f}")


if __name__ == "__main__":
    main()
