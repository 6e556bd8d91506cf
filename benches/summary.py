#!/usr/bin/env python3
"""Prints the medians of the last `cargo bench --bench machine` run as a table.

Reads criterion's `target/criterion/<group>/<impl>/new/estimates.json`
(or under $CARGO_TARGET_DIR) and checks the targets of benches/machine.rs:
ours within 1.1x of the event-first hand-written match on the happy path and
faster than smlang and statig; async within 1.2x of the hand-written async fn.

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
        sys.exit(f"no criterion results under {CRITERION}: run `cargo bench --bench machine` first")
    print("| implementation | ns, happy path (4 transitions) | ns per transition | ns, rejected | ns, async step |")
    print("|---|---:|---:|---:|---:|")
    for key, label in IMPLS:
        happy, rejected, step = (data[(g, key)] for g in GROUPS)
        if happy is None and rejected is None and step is None:
            continue
        print(f"| {label} | {cell(happy)} | {cell(happy, 4)} | {cell(rejected)} | {cell(step)} |")

    def ratio(group, a, b):
        x, y = data[(group, a)], data[(group, b)]
        return None if x is None or y is None else x / y

    print()
    checks = [
        ("happy path: ours / floor <= 1.10", ratio("happy_path", "ours", "hand_event_first"), lambda r: r <= 1.10),
        ("happy path: ours / smlang < 1", ratio("happy_path", "ours", "smlang"), lambda r: r < 1.0),
        ("happy path: ours / statig < 1", ratio("happy_path", "ours", "statig"), lambda r: r < 1.0),
        ("rejected: ours / floor (no target, for reference)", ratio("rejected", "ours", "hand_event_first"), None),
        ("async: ours / hand-written async fn <= 1.20", ratio("async", "ours", "hand_async_fn"), lambda r: r <= 1.20),
    ]
    for label, value, ok in checks:
        if value is None:
            print(f"{label}: no data")
        else:
            verdict = "" if ok is None else ("  met" if ok(value) else "  MISSED")
            print(f"{label}: {value:.2f}{verdict}")


if __name__ == "__main__":
    main()
