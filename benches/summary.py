#!/usr/bin/env python3
"""Prints the medians of the last machine benchmark run as a table
(`cargo bench -p workflow-benches --bench machine`).

Reads criterion's `target/criterion/<group>/<impl>/new/estimates.json`
(or under $CARGO_TARGET_DIR). The targets are judged by the benchmark itself,
on the ratios of its paired rounds (printed at the end of its run): criterion
measures each implementation at a different moment, and this machine's speed
drifts between moments.

    python3 benches/summary.py
"""

import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
CRITERION = os.path.join(TARGET, "criterion")

GROUPS = ["happy_path", "rejected", "async"]
IMPLS = [
    ("ours", "ours (`workflow!`)"),
    ("hand_event_first", "hand-written `match event { E if state == S }` (floor)"),
    ("hand_tuple", "hand-written `match (state, event)`"),
    ("hand_async_fn", "hand-written `async fn` + match"),
    ("smlang", "smlang 0.8"),
    ("statig", "statig 0.4"),
    ("rust_fsm", "rust-fsm 0.8 (+ wrapper for guard/action)"),
]


def median_ns(group, name):
    path = os.path.join(CRITERION, group, name, "new", "estimates.json")
    try:
        with open(path) as f:
            return json.load(f)["median"]["point_estimate"]
    except (OSError, KeyError, ValueError):
        return None


def cell(value, divide=1):
    return "—" if value is None else f"{value / divide:.2f}"


def main():
    data = {(g, i): median_ns(g, i) for g in GROUPS for i, _ in IMPLS}
    if not any(v is not None for v in data.values()):
        sys.exit(
            f"no criterion results under {CRITERION}: "
            "run `cargo bench -p workflow-benches --bench machine` first"
        )
    print("| implementation | ns, happy path (4 transitions) | ns per transition | ns, rejected | ns, async step |")
    print("|---|---:|---:|---:|---:|")
    for key, label in IMPLS:
        happy, rejected, step = (data[(g, key)] for g in GROUPS)
        if happy is None and rejected is None and step is None:
            continue
        print(f"| {label} | {cell(happy)} | {cell(happy, 4)} | {cell(rejected)} | {cell(step)} |")


if __name__ == "__main__":
    main()
