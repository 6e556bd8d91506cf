//! Mermaid, Graphviz DOT and SVG renderings of a [`Graph`].

mod svg;

pub use svg::{count_heat, Escaped};

use std::fmt::Write;
use std::time::Duration;

use crate::graph::{EventKind, Graph, StateKind, TransitionInfo, Trigger};

impl Graph<'_> {
    /// Renders the workflow as a Mermaid `stateDiagram-v2`.
    ///
    /// Compound states are drawn as composite states, parallel regions are
    /// separated by `--`, final states lead to `[*]`, failure finals are
    /// styled with the `failure` class, and a state's activity and
    /// compensation are written inside it.
    pub fn to_mermaid(&self) -> String {
        self.mermaid(&[])
    }

    /// [`to_mermaid`](Self::to_mermaid) with a count written into each state: `counts[i]` for
    /// state `i` (how many instances stand in it, say), shown where it is not 0; states with
    /// instances get the `busy` class.
    ///
    /// ```
    /// use workflow::prelude::*;
    ///
    /// workflow! { workflow Door { initial Closed; events { Open } state Closed { on Open => Opened; } final Opened; } }
    ///
    /// let graph = Door::graph();
    /// let mut counts = vec![0; graph.states.len()];
    /// assert_eq!(graph.to_mermaid_counted(&counts), graph.to_mermaid()); // nothing to show
    /// counts[0] = 3;
    /// assert!(graph.to_mermaid_counted(&counts).contains("    Closed: 3 instances\n    classDef busy"));
    /// ```
    pub fn to_mermaid_counted(&self, counts: &[u64]) -> String {
        self.mermaid(counts)
    }

    fn mermaid(&self, counts: &[u64]) -> String {
        let mut out = String::from("stateDiagram-v2\n");
        if let Some(initial) = self.states.get(self.initial) {
            let _ = writeln!(out, "    [*] --> {}", initial.name);
        }
        for s in self.children(None) {
            self.mermaid_state(s, 1, &mut out);
        }
        for t in self.transitions {
            // History defaults and default entries are drawn inside their states.
            if matches!(self.states[t.source].kind, StateKind::History { .. }) || t.trigger == Trigger::Initial {
                continue;
            }
            let source = self.states[t.source].name;
            let text = self.label(t);
            if t.targets.is_empty() {
                let _ = writeln!(out, "    {source} --> {source}: {text}");
            }
            for &target in t.targets {
                let _ = writeln!(out, "    {source} --> {}: {text}", self.states[target].name);
            }
        }
        let failures: Vec<&str> = self
            .states
            .iter()
            .filter(|s| s.kind == StateKind::Final { failure: true })
            .map(|s| s.name)
            .collect();
        if !failures.is_empty() {
            out.push_str("    classDef failure fill:#f8d7da,stroke:#c0392b\n");
            let _ = writeln!(out, "    class {} failure", failures.join(","));
        }
        let busy: Vec<(&str, u64)> = self
            .states
            .iter()
            .zip(counts)
            .filter(|(_, &n)| n > 0)
            .map(|(s, &n)| (s.name, n))
            .collect();
        for (name, n) in &busy {
            let _ = writeln!(
                out,
                "    {name}: {n} {}",
                if *n == 1 { "instance" } else { "instances" }
            );
        }
        if !busy.is_empty() {
            out.push_str("    classDef busy fill:#d6eaf8,stroke:#2874a6\n");
            let names: Vec<&str> = busy.iter().map(|(name, _)| *name).collect();
            let _ = writeln!(out, "    class {} busy", names.join(","));
        }
        out
    }

    fn mermaid_state(&self, s: usize, depth: usize, out: &mut String) {
        let state = &self.states[s];
        let pad = "    ".repeat(depth);
        match state.kind {
            StateKind::Compound { initial } => {
                let _ = writeln!(out, "{pad}state {} {{", state.name);
                match self
                    .transitions_from(s)
                    .first()
                    .filter(|t| t.trigger == Trigger::Initial)
                {
                    // `initial A, B / act;`: the default entry's own targets and actions.
                    Some(t) => {
                        let actions = if t.actions.is_empty() {
                            String::new()
                        } else {
                            format!(": / {}", t.actions.join(", "))
                        };
                        for &target in t.targets {
                            let _ = writeln!(out, "{pad}    [*] --> {}{actions}", self.states[target].name);
                        }
                    }
                    None => {
                        let _ = writeln!(out, "{pad}    [*] --> {}", self.states[initial].name);
                    }
                }
                for c in self.children(Some(s)) {
                    self.mermaid_state(c, depth + 1, out);
                }
                let _ = writeln!(out, "{pad}}}");
            }
            StateKind::Parallel => {
                let _ = writeln!(out, "{pad}state {} {{", state.name);
                let regions: Vec<usize> = self.children(Some(s)).collect();
                for (i, &c) in regions.iter().enumerate() {
                    if i > 0 {
                        let _ = writeln!(out, "{pad}    --");
                    }
                    self.mermaid_state(c, depth + 1, out);
                }
                let _ = writeln!(out, "{pad}}}");
            }
            StateKind::History { deep, .. } => {
                let kind = if deep { "deep history" } else { "history" };
                let _ = writeln!(out, "{pad}{}: {kind}", state.name);
                for t in self.transitions_from(s) {
                    for &target in t.targets {
                        let _ = writeln!(out, "{pad}{} --> {}: default", state.name, self.states[target].name);
                    }
                }
            }
            // A child that no other line names inside its parent's block must be named there,
            // or Mermaid draws it outside the parent.
            StateKind::Atomic if state.invoke.is_none() && state.compensate.is_none() && !self.is_named_initial(s) => {
                if state.parent.is_some() {
                    let _ = writeln!(out, "{pad}{}", state.name);
                }
            }
            StateKind::Atomic => {}
            StateKind::Final { .. } => {
                let _ = writeln!(out, "{pad}{} --> [*]", state.name);
            }
        }
        if let Some(invoke) = &state.invoke {
            let _ = writeln!(out, "{pad}{}: invoke {}", state.name, invoke.activity);
        }
        if let Some(compensate) = state.compensate {
            let _ = writeln!(out, "{pad}{}: compensate {}", state.name, compensate);
        }
    }

    /// Renders the workflow as a Graphviz DOT `digraph`.
    ///
    /// Compound and parallel states are clusters (parallel ones dashed),
    /// final states are double circles (red for failure finals), and the
    /// initial state is marked by an arrow from a point.
    pub fn to_dot(&self) -> String {
        self.dot(&[])
    }

    /// [`to_dot`](Self::to_dot) with a count written into each state's label where it is not 0:
    /// `counts[i]` for state `i`.
    pub fn to_dot_counted(&self, counts: &[u64]) -> String {
        self.dot(counts)
    }

    fn dot(&self, counts: &[u64]) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "digraph {} {{", quoted(self.name));
        out.push_str("    rankdir=LR;\n    compound=true;\n    node [shape=box, style=rounded];\n");
        out.push_str("    \"__start\" [shape=point, label=\"\"];\n");
        for s in self.children(None) {
            self.dot_state(s, 1, counts, &mut out);
        }
        if let Some(initial) = self.states.get(self.initial) {
            let _ = writeln!(out, "    \"__start\" -> {};", quoted(initial.name));
        }
        for t in self.transitions {
            let source = self.states[t.source].name;
            let text = if matches!(self.states[t.source].kind, StateKind::History { .. }) {
                "default".to_string()
            } else {
                self.label(t)
            };
            if t.targets.is_empty() {
                let _ = writeln!(
                    out,
                    "    {} -> {} [label={}, style=dashed];",
                    quoted(source),
                    quoted(source),
                    quoted(&text)
                );
            }
            for &target in t.targets {
                let target = self.states[target].name;
                let _ = writeln!(
                    out,
                    "    {} -> {} [label={}];",
                    quoted(source),
                    quoted(target),
                    quoted(&text)
                );
            }
        }
        out.push_str("}\n");
        out
    }

    fn dot_state(&self, s: usize, depth: usize, counts: &[u64], out: &mut String) {
        let state = &self.states[s];
        let pad = "    ".repeat(depth);
        let mut text = state.name.to_string();
        if let Some(invoke) = &state.invoke {
            let _ = write!(text, "\\ninvoke {}", invoke.activity);
        }
        if let Some(compensate) = state.compensate {
            let _ = write!(text, "\\ncompensate {compensate}");
        }
        if let Some(&n) = counts.get(s).filter(|&&n| n > 0) {
            let _ = write!(text, "\\n[{n}]");
        }
        let style = match state.kind {
            StateKind::Atomic => "",
            StateKind::Compound { .. } | StateKind::Parallel => ", shape=plaintext",
            StateKind::Final { failure: false } => ", shape=doublecircle",
            StateKind::Final { failure: true } => ", shape=doublecircle, color=red",
            StateKind::History { deep: false, .. } => ", shape=circle, label=\"H\"",
            StateKind::History { deep: true, .. } => ", shape=circle, label=\"H*\"",
        };
        let label = if matches!(state.kind, StateKind::History { .. }) {
            String::new()
        } else {
            format!("label={}", quoted(&text))
        };
        let separator = if label.is_empty() {
            style.trim_start_matches(", ")
        } else {
            style
        };
        match state.kind {
            StateKind::Compound { .. } | StateKind::Parallel => {
                let _ = writeln!(out, "{pad}subgraph {} {{", quoted(&format!("cluster_{}", state.name)));
                let dashed = if state.kind == StateKind::Parallel {
                    " style=dashed;"
                } else {
                    ""
                };
                let _ = writeln!(out, "{pad}    label={};{dashed}", quoted(state.name));
                let _ = writeln!(out, "{pad}    {} [{label}{separator}];", quoted(state.name));
                for c in self.children(Some(s)) {
                    self.dot_state(c, depth + 1, counts, out);
                }
                let _ = writeln!(out, "{pad}}}");
            }
            _ => {
                let _ = writeln!(out, "{pad}{} [{label}{separator}];", quoted(state.name));
            }
        }
    }

    /// Whether `s` is its compound parent's initial child, which the parent's `[*] -->` line names.
    fn is_named_initial(&self, s: usize) -> bool {
        self.states[s]
            .parent
            .is_some_and(|p| self.states[p].kind == StateKind::Compound { initial: s })
    }

    /// The states whose parent is `parent` (`None`: the top level), in order.
    pub(crate) fn children(&self, parent: Option<usize>) -> impl Iterator<Item = usize> + '_ {
        (0..self.states.len()).filter(move |&s| self.states[s].parent == parent)
    }

    /// `trigger [guard] / action, action`, the way the block spells it.
    fn label(&self, t: &TransitionInfo<'_>) -> String {
        let mut text = match t.trigger {
            Trigger::Events(list) => {
                let names: Vec<String> = list.iter().map(|&e| self.event_label(e)).collect();
                names.join(" | ")
            }
            Trigger::Any => "_".to_string(),
            Trigger::Always => "always".to_string(),
            Trigger::StateDone => "done".to_string(),
            Trigger::DoneOf(s) => format!("done({})", self.states[s].name),
            Trigger::Initial => "initial".to_string(),
        };
        let conditions: Vec<String> = t
            .in_states
            .iter()
            .map(|&s| format!("in({})", self.states[s].name))
            .chain(t.not_in_states.iter().map(|&s| format!("!in({})", self.states[s].name)))
            .chain(t.guard.map(str::to_string))
            .collect();
        if !conditions.is_empty() {
            let _ = write!(text, " [{}]", conditions.join(" && "));
        }
        if !t.actions.is_empty() {
            let _ = write!(text, " / {}", t.actions.join(", "));
        }
        text
    }

    fn event_label(&self, e: usize) -> String {
        let Some(event) = self.events.get(e) else {
            return format!("#{e}");
        };
        match event.kind {
            EventKind::Declared => event.name.to_string(),
            EventKind::Done(activity) => format!("done({activity})"),
            EventKind::Failed(activity) => format!("error({activity})"),
            EventKind::Timer { delay, .. } => format!("after {}", format_duration(delay)),
        }
    }
}

/// A DOT string literal.
fn quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        if c == '"' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// Writes a duration in the largest DSL unit that divides it: `48h`, `1500ms`.
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    const UNITS: [(u128, &str); 4] = [(86_400_000, "d"), (3_600_000, "h"), (60_000, "m"), (1_000, "s")];
    for (size, unit) in UNITS {
        if ms != 0 && ms % size == 0 {
            return format!("{}{unit}", ms / size);
        }
    }
    format!("{ms}ms")
}

/// Reads a duration as the DSL writes one, the inverse of [`format_duration`]: a whole number and
/// a unit, `ms`, `s`, `m`, `h` or `d` (`48h`, `1500ms`); `None` for anything else or a duration
/// past `u64` milliseconds.
///
/// ```
/// use std::time::Duration;
/// assert_eq!(workflow_runtime::parse_duration("15m"), Some(Duration::from_secs(900)));
/// assert_eq!(workflow_runtime::parse_duration("soon"), None);
/// ```
pub fn parse_duration(text: &str) -> Option<Duration> {
    let digits = text.find(|c: char| !c.is_ascii_digit())?;
    let (number, unit) = text.split_at(digits);
    let n: u64 = number.parse().ok()?;
    let ms = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return None,
    };
    Some(Duration::from_millis(n.checked_mul(ms)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::{EventInfo, StateInfo, TransitionInfo, TransitionRange};

    #[test]
    fn durations_read_back_what_format_duration_wrote() {
        for ms in [0, 1, 1500, 60_000, 3_600_000, 7 * 86_400_000] {
            let d = Duration::from_millis(ms);
            assert_eq!(parse_duration(&format_duration(d)), Some(d));
        }
        assert_eq!(parse_duration("5x"), None);
        assert_eq!(parse_duration("h"), None);
        assert_eq!(parse_duration("99999999999999999999d"), None);
    }

    pub(super) const fn state(
        name: &'static str,
        kind: StateKind,
        parent: Option<usize>,
        end: usize,
        t: [usize; 2],
    ) -> StateInfo<'static> {
        StateInfo {
            name,
            kind,
            parent,
            end,
            transitions: TransitionRange { start: t[0], end: t[1] },
            entry: &[],
            exit: &[],
            invoke: None,
            compensate: None,
        }
    }

    pub(super) const fn event(name: &'static str, kind: EventKind<'static>) -> EventInfo<'static> {
        EventInfo {
            name,
            fields: &[],
            kind,
        }
    }

    pub(super) static DOOR: Graph<'static> = Graph {
        name: "Door",
        initial: 0,
        states: &[
            state("Closed", StateKind::Atomic, None, 1, [0, 1]),
            state("Open", StateKind::Atomic, None, 2, [1, 4]),
            state("Broken", StateKind::Final { failure: true }, None, 3, [4, 4]),
        ],
        events: &[
            event("Push", EventKind::Declared),
            event("Kick", EventKind::Declared),
            event("Knock", EventKind::Declared),
            event(
                "OpenAfter2h",
                EventKind::Timer {
                    state: 1,
                    delay: Duration::from_secs(7200),
                },
            ),
        ],
        transitions: &[
            TransitionInfo {
                source: 0,
                trigger: Trigger::Events(&[0]),
                guard: Some("unlocked"),
                in_states: &[],
                not_in_states: &[],
                targets: &[1],
                internal: false,
                actions: &["creak", "count"],
            },
            TransitionInfo {
                source: 1,
                trigger: Trigger::Events(&[3]),
                guard: None,
                in_states: &[],
                not_in_states: &[],
                targets: &[0],
                internal: false,
                actions: &[],
            },
            TransitionInfo {
                source: 1,
                trigger: Trigger::Events(&[1, 2]),
                guard: None,
                in_states: &[],
                not_in_states: &[],
                targets: &[2],
                internal: false,
                actions: &[],
            },
            TransitionInfo {
                source: 1,
                trigger: Trigger::Any,
                guard: None,
                in_states: &[],
                not_in_states: &[],
                targets: &[],
                internal: false,
                actions: &["answer"],
            },
        ],
    };

    #[test]
    fn mermaid_lists_every_transition_with_its_label() {
        assert_eq!(
            DOOR.to_mermaid(),
            "stateDiagram-v2\n    [*] --> Closed\n    Broken --> [*]\n    Closed --> Open: Push [unlocked] / creak, count\n    Open --> Closed: after 2h\n    Open --> Broken: Kick | Knock\n    Open --> Open: _ / answer\n    classDef failure fill:#f8d7da,stroke:#c0392b\n    class Broken failure\n"
        );
    }

    #[test]
    fn dot_marks_finals_and_targetless_transitions() {
        let text = DOOR.to_dot();
        assert!(text.starts_with("digraph \"Door\" {\n"));
        assert!(
            text.contains("\"Broken\" [label=\"Broken\", shape=doublecircle, color=red];"),
            "{text}"
        );
        assert!(text.contains("\"__start\" -> \"Closed\";"));
        assert!(
            text.contains("\"Open\" -> \"Open\" [label=\"_ / answer\", style=dashed];"),
            "{text}"
        );
        assert!(text.ends_with("}\n"));
    }

    /// Job { history H; parallel Work { state A { a1 } state B { b1 } } } Done
    pub(super) static JOB: Graph<'static> = Graph {
        name: "Job",
        initial: 0,
        states: &[
            state("Job", StateKind::Compound { initial: 2 }, None, 7, [0, 1]),
            state("H", StateKind::History { deep: true, slot: 0 }, Some(0), 2, [1, 2]),
            state("Work", StateKind::Parallel, Some(0), 7, [2, 2]),
            state("A", StateKind::Compound { initial: 4 }, Some(2), 5, [2, 2]),
            state("A1", StateKind::Atomic, Some(3), 5, [2, 2]),
            state("B", StateKind::Compound { initial: 6 }, Some(2), 7, [2, 2]),
            state("B1", StateKind::Final { failure: false }, Some(5), 7, [2, 2]),
            state("Done", StateKind::Final { failure: false }, None, 8, [2, 2]),
        ],
        events: &[],
        transitions: &[
            TransitionInfo {
                source: 0,
                trigger: Trigger::StateDone,
                guard: None,
                in_states: &[],
                not_in_states: &[],
                targets: &[7],
                internal: false,
                actions: &[],
            },
            TransitionInfo {
                source: 1,
                trigger: Trigger::Always,
                guard: None,
                in_states: &[],
                not_in_states: &[],
                targets: &[2],
                internal: false,
                actions: &[],
            },
        ],
    };

    #[test]
    fn mermaid_draws_composite_and_concurrent_states() {
        assert_eq!(
            JOB.to_mermaid(),
            "stateDiagram-v2\n    [*] --> Job\n    state Job {\n        [*] --> Work\n        H: deep history\n        H --> Work: default\n        state Work {\n            state A {\n                [*] --> A1\n            }\n            --\n            state B {\n                [*] --> B1\n                B1 --> [*]\n            }\n        }\n    }\n    Done --> [*]\n    Job --> Done: done\n"
        );
    }

    /// Job { initial Prep; Prep; Pack } Done: `Pack` has no line of its own.
    pub(super) static PLAIN_CHILD: Graph<'static> = Graph {
        name: "Plain",
        initial: 0,
        states: &[
            state("Job", StateKind::Compound { initial: 1 }, None, 3, [0, 0]),
            state("Prep", StateKind::Atomic, Some(0), 2, [0, 1]),
            state("Pack", StateKind::Atomic, Some(0), 3, [1, 2]),
            state("Done", StateKind::Final { failure: false }, None, 4, [2, 2]),
        ],
        events: &[event("Go", EventKind::Declared)],
        transitions: &[
            TransitionInfo {
                source: 1,
                trigger: Trigger::Events(&[0]),
                guard: None,
                in_states: &[],
                not_in_states: &[],
                targets: &[2],
                internal: false,
                actions: &[],
            },
            TransitionInfo {
                source: 2,
                trigger: Trigger::Events(&[0]),
                guard: None,
                in_states: &[],
                not_in_states: &[],
                targets: &[3],
                internal: false,
                actions: &[],
            },
        ],
    };

    #[test]
    fn mermaid_names_a_plain_child_inside_its_parent() {
        assert_eq!(
            PLAIN_CHILD.to_mermaid(),
            "stateDiagram-v2\n    [*] --> Job\n    state Job {\n        [*] --> Prep\n        Pack\n    }\n    Done --> [*]\n    Prep --> Pack: Go\n    Pack --> Done: Go\n"
        );
    }

    #[test]
    fn dot_draws_clusters() {
        let text = JOB.to_dot();
        assert!(
            text.contains("subgraph \"cluster_Work\" {\n            label=\"Work\"; style=dashed;"),
            "{text}"
        );
        assert!(text.contains("\"H\" [shape=circle, label=\"H*\"];"), "{text}");
        assert!(text.contains("\"H\" -> \"Work\" [label=\"default\"];"), "{text}");
    }

    #[test]
    fn graphs_round_trip_through_their_text() {
        for graph in [&DOOR, &JOB] {
            let text: &'static str = Box::leak(crate::graph::text::encode(graph).into_boxed_str());
            assert_eq!(crate::graph::text::decode(text).as_ref(), Ok(graph));
        }
    }

    #[test]
    fn malformed_graph_text_is_an_error() {
        assert!(crate::graph::text::decode("").is_err());
        assert!(crate::graph::text::decode("W\u{1f}0\nS\u{1f}A").is_err());
        assert!(crate::graph::text::decode("W\u{1f}x").is_err());
        assert!(crate::graph::text::decode("W\u{1f}0\nQ").is_err());
    }

    #[test]
    fn durations_use_the_largest_whole_unit() {
        assert_eq!(format_duration(Duration::from_millis(1500)), "1500ms");
        assert_eq!(format_duration(Duration::from_secs(30)), "30s");
        assert_eq!(format_duration(Duration::from_secs(300)), "5m");
        assert_eq!(format_duration(Duration::from_secs(7 * 86_400)), "7d");
        assert_eq!(format_duration(Duration::ZERO), "0ms");
    }

    #[test]
    fn dot_escapes_quotes() {
        assert_eq!(quoted("a\"b"), "\"a\\\"b\"");
    }
}
