//! Export, import, compile again: a machine's graph written as SCXML ([`Graph::to_scxml`]) and
//! as XState ([`Graph::to_xstate`]), read back by the importer, and the blocks put through the
//! macro's own stages must give the same graph (compared in the graph's text encoding, which
//! holds all of it; through XState up to what XState's format regroups).

use workflow_runtime::graph::{text, Graph};
use workflow_runtime::interop::import::{import, Format};

/// The graph (as [`text::encode`] writes it) of the workflow `block` declares, as the
/// `workflow!` macro builds it; `Err` with the macro's messages if it does not compile.
pub fn graph_text(block: &str) -> Result<String, String> {
    let def: crate::parse::WorkflowDef = syn::parse_str(block).map_err(|e| format!("does not parse: {e}"))?;
    let validated = crate::model::build(def)
        .and_then(crate::validate::validate)
        .map_err(|e| {
            let messages: Vec<String> = e.into_iter().map(|e| e.to_string()).collect();
            format!("does not compile: {}", messages.join("; "))
        })?;
    Ok(crate::codegen::with_graph(&validated, text::encode))
}

/// Exports `graph` to SCXML and to XState, imports each with the lints in `allow` switched off
/// (as the original block had them), compiles the blocks and compares the graphs: the SCXML one
/// must be the same, the XState one the same up to what XState's format regroups: the order of
/// a state's transitions of different kinds (XState keeps `on`, `after`, `always` and `onDone`
/// apart), a transition on several events (one per event key in XState), and `internal` on a
/// transition whose targets are not inside its source (external in SCXML, said so to XState).
pub fn round_trip(graph: &Graph<'_>, allow: &str) -> Result<(), String> {
    let original = text::encode(graph);
    let again = imported(Format::Scxml, &graph.to_scxml(), graph.name, allow)?;
    if again != original {
        return Err(format!(
            "through SCXML: the imported graph differs: {}",
            first_difference(&original, &again)
        ));
    }
    let again = imported(Format::XState, &graph.to_xstate(), graph.name, allow)?;
    let again = text::decode(Box::leak(again.into_boxed_str())).map_err(|e| format!("through XState: {e}"))?;
    let canonical = |g: &Graph<'_>| -> Vec<String> {
        use workflow_runtime::graph::{StateInfo, TransitionInfo, TransitionRange, Trigger};
        let states: Vec<StateInfo<'_>> = g
            .states
            .iter()
            .map(|s| StateInfo {
                transitions: TransitionRange::default(),
                ..*s
            })
            .collect();
        let mut out = vec![format!("{:?} {:?} {:?}", g.initial, states, g.events)];
        for (s, state) in g.states.iter().enumerate() {
            let mut transitions = Vec::new();
            for t in g.transitions_from(s) {
                let inside = t.targets.iter().all(|&x| x > t.source && x < state.end);
                let t = TransitionInfo {
                    internal: t.internal && inside,
                    ..*t
                };
                // XState has one transition per event key.
                match t.trigger {
                    Trigger::Events(list) => transitions.extend(list.iter().map(|e| {
                        format!(
                            "{:?}",
                            TransitionInfo {
                                trigger: Trigger::Events(std::slice::from_ref(e)),
                                ..t
                            }
                        )
                    })),
                    _ => transitions.push(format!("{t:?}")),
                }
            }
            transitions.sort();
            out.extend(transitions);
        }
        out
    };
    let (a, b) = (canonical(graph), canonical(&again));
    if a != b {
        return Err(format!(
            "through XState: the imported graph differs: {}",
            first_difference(&a.join("\n"), &b.join("\n"))
        ));
    }
    Ok(())
}

/// The graph text of `chart` imported and compiled.
fn imported(format: Format, chart: &str, name: &str, allow: &str) -> Result<String, String> {
    let through = match format {
        Format::Scxml => "through SCXML",
        Format::XState => "through XState",
    };
    let imported = import(format, chart).map_err(|e| format!("{through}: the export does not import: {e}"))?;
    let block = format!("#[allow({allow})]\n{}", imported.block("", name));
    graph_text(&block).map_err(|e| format!("{through}: the imported block {e}\n{block}"))
}

fn first_difference(original: &str, again: &str) -> String {
    original
        .lines()
        .zip(again.lines())
        .find(|(a, b)| a != b)
        .map(|(a, b)| format!("`{}` became `{}`", a.replace('\u{1f}', "|"), b.replace('\u{1f}', "|")))
        .unwrap_or_else(|| "a different number of records".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIGHT: &str = "#[allow(no_path_to_final)] workflow Light { initial Off; events { Flip } state Off { on Flip => On; } state On { on Flip => Off; after 2h => Off; } }";

    #[test]
    fn a_block_compiles_to_its_graph() {
        let encoded = graph_text(LIGHT).unwrap();
        let graph = text::decode(Box::leak(encoded.into_boxed_str())).unwrap();
        assert_eq!(graph.name, "Light");
        assert_eq!(graph.states.len(), 2);
        assert_eq!(graph.events[1].name, "OnAfter2h");
        round_trip(&graph, "no_path_to_final").unwrap();
    }

    #[test]
    fn errors_say_what_did_not_compile() {
        assert!(graph_text("workflow {").unwrap_err().starts_with("does not parse"));
        assert_eq!(
            graph_text("workflow W { initial A; state A { on Go => A; } }").unwrap_err(),
            "does not compile: unknown event `Go`: none is declared"
        );
    }

    #[test]
    fn a_graph_that_changes_on_the_way_is_reported() {
        let encoded = graph_text(LIGHT).unwrap();
        let graph = text::decode(Box::leak(encoded.into_boxed_str())).unwrap();
        // The export cannot carry a guard on a timer: the import refuses it, and says so.
        let mut transitions = graph.transitions.to_vec();
        let timer = transitions
            .iter()
            .position(|t| t.guard.is_none() && t.source == 1 && t.targets == [0])
            .unwrap();
        transitions[timer + 1].guard = Some("late");
        let changed = Graph {
            transitions: &transitions,
            ..graph
        };
        let error = round_trip(&changed, "no_path_to_final").unwrap_err();
        assert!(error.contains("a timer (`after`) has no guard"), "{error}");
    }
}
