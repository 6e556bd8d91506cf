//! Mermaid and Graphviz DOT renderings of a [`Graph`].

use std::fmt::Write;
use std::time::Duration;

use crate::graph::{Graph, StateKind, TransitionInfo, Trigger};

impl Graph<'_> {
    /// Renders the workflow as a Mermaid `stateDiagram-v2`.
    ///
    /// Final states lead to `[*]`; failure finals are styled with the
    /// `failure` class; a state's activity and compensation are written
    /// inside it.
    pub fn to_mermaid(&self) -> String {
        let mut out = String::from("stateDiagram-v2\n");
        if let Some(initial) = self.states.get(self.initial) {
            let _ = writeln!(out, "    [*] --> {}", initial.name);
        }
        for state in self.states {
            if let Some(invoke) = &state.invoke {
                let _ = writeln!(out, "    {}: invoke {}", state.name, invoke.activity);
            }
            if let Some(compensate) = state.compensate {
                let _ = writeln!(out, "    {}: compensate {}", state.name, compensate);
            }
        }
        for t in self.transitions {
            let source = self.states[t.source].name;
            let target = t.target.map_or(source, |i| self.states[i].name);
            let _ = writeln!(out, "    {source} --> {target}: {}", label(t));
        }
        for state in self.states {
            if state.is_final() {
                let _ = writeln!(out, "    {} --> [*]", state.name);
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
        out
    }

    /// Renders the workflow as a Graphviz DOT `digraph`.
    ///
    /// Final states are double circles (red for failure finals); the initial
    /// state is marked by an arrow from a point.
    pub fn to_dot(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "digraph {} {{", quoted(self.name));
        out.push_str("    rankdir=LR;\n    node [shape=box, style=rounded];\n");
        out.push_str("    \"__start\" [shape=point, label=\"\"];\n");
        for state in self.states {
            let mut text = state.name.to_string();
            if let Some(invoke) = &state.invoke {
                let _ = write!(text, "\\ninvoke {}", invoke.activity);
            }
            if let Some(compensate) = state.compensate {
                let _ = write!(text, "\\ncompensate {compensate}");
            }
            let style = match state.kind {
                StateKind::Atomic => "",
                StateKind::Final { failure: false } => ", shape=doublecircle",
                StateKind::Final { failure: true } => ", shape=doublecircle, color=red",
            };
            let _ = writeln!(out, "    {} [label={}{style}];", quoted(state.name), quoted(&text));
        }
        if let Some(initial) = self.states.get(self.initial) {
            let _ = writeln!(out, "    \"__start\" -> {};", quoted(initial.name));
        }
        for t in self.transitions {
            let source = self.states[t.source].name;
            let target = t.target.map_or(source, |i| self.states[i].name);
            let style = if t.target.is_none() { ", style=dashed" } else { "" };
            let _ = writeln!(
                out,
                "    {} -> {} [label={}{style}];",
                quoted(source),
                quoted(target),
                quoted(&label(t))
            );
        }
        out.push_str("}\n");
        out
    }
}

/// `trigger [guard] / action, action`, the way the block spells it.
fn label(t: &TransitionInfo<'_>) -> String {
    let mut text = match t.trigger {
        Trigger::Event(name) => name.to_string(),
        Trigger::Done(activity) => format!("done({activity})"),
        Trigger::Error(activity) => format!("error({activity})"),
        Trigger::After(d) => format!("after {}", format_duration(d)),
    };
    if let Some(guard) = t.guard {
        let _ = write!(text, " [{guard}]");
    }
    if !t.actions.is_empty() {
        let _ = write!(text, " / {}", t.actions.join(", "));
    }
    text
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::{StateInfo, TransitionInfo};

    const fn state(name: &'static str, kind: StateKind) -> StateInfo<'static> {
        StateInfo {
            name,
            kind,
            parent: None,
            entry: &[],
            exit: &[],
            invoke: None,
            compensate: None,
        }
    }

    static GRAPH: Graph<'static> = Graph {
        name: "Door",
        initial: 0,
        states: &[
            state("Closed", StateKind::Atomic),
            state("Open", StateKind::Atomic),
            state("Broken", StateKind::Final { failure: true }),
        ],
        events: &[],
        transitions: &[
            TransitionInfo {
                source: 0,
                trigger: Trigger::Event("Push"),
                guard: Some("unlocked"),
                target: Some(1),
                actions: &["creak", "count"],
            },
            TransitionInfo {
                source: 1,
                trigger: Trigger::After(Duration::from_secs(7200)),
                guard: None,
                target: Some(0),
                actions: &[],
            },
            TransitionInfo {
                source: 1,
                trigger: Trigger::Event("Kick"),
                guard: None,
                target: Some(2),
                actions: &[],
            },
            TransitionInfo {
                source: 1,
                trigger: Trigger::Event("Knock"),
                guard: None,
                target: None,
                actions: &["answer"],
            },
        ],
    };

    #[test]
    fn mermaid_lists_every_transition_with_its_label() {
        let text = GRAPH.to_mermaid();
        assert_eq!(
            text,
            "stateDiagram-v2\n    [*] --> Closed\n    Closed --> Open: Push [unlocked] / creak, count\n    Open --> Closed: after 2h\n    Open --> Broken: Kick\n    Open --> Open: Knock / answer\n    Broken --> [*]\n    classDef failure fill:#f8d7da,stroke:#c0392b\n    class Broken failure\n"
        );
    }

    #[test]
    fn dot_marks_finals_and_targetless_transitions() {
        let text = GRAPH.to_dot();
        assert!(text.starts_with("digraph \"Door\" {\n"));
        assert!(text.contains("\"Broken\" [label=\"Broken\", shape=doublecircle, color=red];"));
        assert!(text.contains("\"__start\" -> \"Closed\";"));
        assert!(text.contains("\"Open\" -> \"Open\" [label=\"Knock / answer\", style=dashed];"));
        assert!(text.ends_with("}\n"));
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
