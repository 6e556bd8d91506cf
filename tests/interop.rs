//! A statechart exported to SCXML and XState: the documents parse, and their state trees,
//! transitions and actions are the graph's; imported again (by the macro's `from`), they give the
//! same graph.

use std::collections::HashMap;

use workflow::graph::{Graph, StateKind};
use workflow::prelude::*;

workflow! {
    /// Every construct the exporters write.
    pub workflow Job {
        initial Work;
        events { Cancel, Ping, Pong, Resume, Pause, Reminder, Order { id: u64, items: Vec<String> } }

        state Work {
            initial Prepare;
            entry send Reminder after 1h as reminder;
            exit cancel reminder;
            on Cancel => Cancelled / log;
            on Pause => Paused;
            on Resume => internal Decide;
            parallel Prepare {
                state Payment {
                    state Charging {
                        invoke charge -> String {
                            retry 2 backoff 10ms..50ms;
                            timeout 5s;
                            done => Paid / keep;
                            error => Failed;
                        }
                        compensate refund;
                    }
                    final Paid;
                }
                state Stock {
                    state Reserving { on Order if enough => Reserved; }
                    final Reserved;
                }
                on done => Decide;
            }
            state Decide {
                always if in_stock => Shipping;
                always => Shipping;
            }
            state Shipping {
                after 48h => Escalated;
                on Ping / raise Pong;
                on Pong => internal Shipping;
                on _ / count;
            }
            history deep Back => Prepare;
        }
        state Paused { on Resume => Back; on Reminder => Escalated; }
        final Escalated;
        final Cancelled (failure);
        final Failed (failure);
    }
}

fn graph() -> &'static Graph<'static> {
    Job::graph()
}

// In a module of its own: event payload types are items of the module.
mod constructs {
    use workflow::prelude::*;

    workflow! {
        /// The chart constructs beyond `Job`'s: `in` / `!in` conditions, several initial states
        /// (`initial="A B"`), an initial transition's actions (`<initial>`), targetless and internal
        /// `always`, and `on done(S)` of another state.
        pub workflow Constructs {
            initial Order;
            events { Paid, Reserved, Cancel, Pause, Resume }
            state Order {
                initial Charging, Reserving;
                on Cancel => Cancelled;
                on Pause => Paused;
                parallel Work {
                    state Payment {
                        state Charging { on Paid => Charged; }
                        final Charged;
                    }
                    state Stock {
                        state Reserving {
                            on Reserved if in(Charging) && known => Held;
                            on done(Payment) / counted;
                        }
                        final Held;
                    }
                    on done => Decide;
                }
                state Decide {
                    initial Idle / counted;
                    always if in(Order) && !in(Paused) && ready => Shipped;
                    always if over / counted;
                    always if !in(Held) && retry => internal Idle;
                    state Idle {}
                }
            }
            state Paused { on Resume => Order; }
            final Shipped;
            final Cancelled (failure);
        }
    }
}

use constructs::Constructs;

#[test]
fn scxml_is_the_graph() {
    let text = graph().to_scxml();
    let doc = roxmltree::Document::parse(&text).unwrap_or_else(|e| panic!("not XML: {e}\n{text}"));
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "scxml");
    assert_eq!(root.attribute("datamodel"), Some("null"));
    assert_eq!(root.attribute("initial"), Some("Work"));

    // Every state is an element of the right kind under the right parent.
    let mut elements = HashMap::new();
    for node in doc.descendants().filter(|n| n.is_element()) {
        if let Some(id) = node.attribute("id") {
            if ["state", "parallel", "final", "history"].contains(&node.tag_name().name()) {
                elements.insert(id.to_string(), node);
            }
        }
    }
    assert_eq!(elements.len(), graph().states.len(), "{text}");
    for (i, state) in graph().states.iter().enumerate() {
        let node = elements[state.name];
        let tag = match state.kind {
            StateKind::Atomic | StateKind::Compound { .. } => "state",
            StateKind::Parallel => "parallel",
            StateKind::Final { .. } => "final",
            StateKind::History { .. } => "history",
        };
        assert_eq!(node.tag_name().name(), tag, "{}", state.name);
        let parent = node.parent_element().and_then(|p| p.attribute("id"));
        assert_eq!(parent, state.parent.map(|p| graph().states[p].name), "{}", state.name);
        if let StateKind::Compound { initial } = state.kind {
            assert_eq!(node.attribute("initial"), Some(graph().states[initial].name));
        }
        let transitions = node.children().filter(|c| c.has_tag_name("transition")).count();
        assert_eq!(transitions, graph().transitions_from(i).len(), "{}", state.name);
    }

    // Triggers, guards, targets, internal transitions and actions.
    let transitions_of = |id: &str| -> Vec<roxmltree::Node> {
        elements[id]
            .children()
            .filter(|c| c.has_tag_name("transition"))
            .collect()
    };
    let charging = transitions_of("Charging");
    assert_eq!(charging[0].attribute("event"), Some("done.invoke.charge"));
    assert_eq!(charging[1].attribute("event"), Some("error.invoke.charge"));
    let reserving = transitions_of("Reserving");
    assert_eq!(reserving[0].attribute("cond"), Some("enough"));
    let decide = transitions_of("Decide");
    assert_eq!(decide[0].attribute("event"), None, "eventless");
    assert_eq!(decide[0].attribute("cond"), Some("in_stock"));
    assert_eq!(
        transitions_of("Prepare")[0].attribute("event"),
        Some("done.state.Prepare")
    );
    let shipping = transitions_of("Shipping");
    assert_eq!(shipping[0].attribute("event"), Some("ShippingAfter48h"));
    assert_eq!(
        shipping[1].first_element_child().map(|a| a.tag_name().name()),
        Some("raise")
    );
    assert_eq!(shipping[2].attribute("type"), Some("internal"));
    assert_eq!(shipping[3].attribute("event"), Some("*"));
    assert_eq!(transitions_of("Back")[0].attribute("target"), Some("Prepare"));
    assert_eq!(elements["Back"].attribute("type"), Some("deep"));
    assert_eq!(
        elements["Cancelled"].attribute((workflow::interop::SCXML_NAMESPACE, "failure")),
        Some("true")
    );

    // The timer is a delayed send on entry, cancelled on exit.
    let onentry = elements["Shipping"]
        .children()
        .find(|c| c.has_tag_name("onentry"))
        .expect("onentry");
    let send = onentry.children().find(|c| c.has_tag_name("send")).expect("send");
    assert_eq!(send.attribute("delay"), Some("172800000ms"));
    let work_entry = elements["Work"]
        .children()
        .find(|c| c.has_tag_name("onentry"))
        .expect("Work's onentry");
    let reminder = work_entry
        .children()
        .find(|c| c.has_tag_name("send"))
        .expect("send Reminder");
    assert_eq!(reminder.attribute("id"), Some("reminder"));
    assert_eq!(reminder.attribute("delay"), Some("3600000ms"));

    let invoke = elements["Charging"]
        .children()
        .find(|c| c.has_tag_name("invoke"))
        .expect("invoke");
    let wf = workflow::interop::SCXML_NAMESPACE;
    assert_eq!(invoke.attribute((wf, "attempts")), Some("3"));
    assert_eq!(invoke.attribute((wf, "timeout")), Some("5s"));
    assert_eq!(invoke.attribute((wf, "output")), Some("String"));
    let order = doc
        .descendants()
        .find(|n| n.tag_name().name() == "event" && n.attribute("name") == Some("Order"))
        .expect("the Order event");
    let fields: Vec<_> = order.children().filter_map(|f| f.attribute("type")).collect();
    assert_eq!(fields, ["u64", "Vec<String>"]);
    assert_eq!(text, graph().to_scxml(), "deterministic");
}

#[test]
fn xstate_is_the_graph() {
    let text = graph().to_xstate();
    let root: serde_json::Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON: {e}\n{text}"));
    assert_eq!(root["id"], "Job");
    assert_eq!(root["initial"], "Work");

    fn find<'a>(node: &'a serde_json::Value, name: &str) -> Option<&'a serde_json::Value> {
        let states = node.get("states")?.as_object()?;
        states.get(name).or_else(|| states.values().find_map(|s| find(s, name)))
    }
    for state in graph().states {
        let node = find(&root, state.name).unwrap_or_else(|| panic!("{} missing\n{text}", state.name));
        assert_eq!(node["id"], state.name);
        let kind = node.get("type").and_then(|t| t.as_str());
        let expected = match state.kind {
            StateKind::Parallel => Some("parallel"),
            StateKind::Final { .. } => Some("final"),
            StateKind::History { .. } => Some("history"),
            _ => None,
        };
        assert_eq!(kind, expected, "{}", state.name);
        // Children stand under their parent.
        if let Some(parent) = state.parent {
            assert!(find(find(&root, graph().states[parent].name).unwrap(), state.name).is_some());
        }
    }
    // Document order is kept (XState uses it to choose between transitions and regions).
    let at = |needle: &str| text.find(needle).unwrap_or_else(|| panic!("{needle} missing"));
    assert!(at("\"Payment\": {") < at("\"Stock\": {"));
    assert!(at("\"Work\": {") < at("\"Paused\": {"));

    let charging = find(&root, "Charging").unwrap();
    assert_eq!(charging["invoke"]["src"], "charge");
    assert_eq!(charging["invoke"]["onDone"][0]["target"], "#Paid");
    assert_eq!(charging["invoke"]["onDone"][0]["actions"][0], "keep");
    assert_eq!(charging["invoke"]["onError"][0]["target"], "#Failed");
    assert_eq!(charging["meta"]["compensate"], "refund");
    assert_eq!(charging["meta"]["activity"]["attempts"], 3);
    let decide = find(&root, "Decide").unwrap();
    assert_eq!(decide["always"][0]["guard"], "in_stock");
    assert_eq!(decide["always"].as_array().map(Vec::len), Some(2));
    let shipping = find(&root, "Shipping").unwrap();
    assert_eq!(shipping["after"]["172800000"][0]["target"], "#Escalated");
    assert_eq!(shipping["on"]["Ping"][0]["actions"][0]["type"], "workflow.raise");
    // `=> internal Shipping` from Shipping itself: SCXML makes that external, so XState re-enters.
    assert_eq!(shipping["on"]["Pong"][0]["reenter"], true);
    let prepare = find(&root, "Prepare").unwrap();
    assert_eq!(prepare["onDone"][0]["reenter"], true);
    assert_eq!(shipping["on"]["*"][0]["actions"][0], "count");
    assert_eq!(find(&root, "Prepare").unwrap()["onDone"][0]["target"], "#Decide");
    let back = find(&root, "Back").unwrap();
    assert_eq!(
        (back["history"].as_str(), back["target"].as_str()),
        (Some("deep"), Some("#Prepare"))
    );
    let work = find(&root, "Work").unwrap();
    assert_eq!(work["entry"][0]["params"]["delay"], 3_600_000);
    assert_eq!(work["exit"][0]["type"], "workflow.cancel");
    assert_eq!(work["on"]["Cancel"][0]["reenter"], true);
    assert_eq!(work["on"]["Resume"][0].get("reenter"), None, "internal, into a child");
    assert_eq!(find(&root, "Cancelled").unwrap()["meta"]["failure"], true);
    assert_eq!(root["meta"]["events"]["Order"]["items"], "Vec<String>");
    assert_eq!(text, graph().to_xstate(), "deterministic");
}

// The exports of `Job`, committed (`exports_are_the_committed_charts` keeps them current) and
// imported again at compile time.
mod scxml {
    use workflow::prelude::*;
    workflow! {
        pub workflow JobFromScxml from "tests/charts/job.scxml";
    }
}

mod xstate {
    use workflow::prelude::*;
    workflow! {
        pub workflow JobFromXState from "tests/charts/job.json";
    }
}

mod constructs_imported {
    use workflow::prelude::*;
    workflow! {
        pub workflow ConstructsFromScxml from "tests/charts/constructs.scxml";
    }
    pub mod xstate {
        use workflow::prelude::*;
        workflow! {
            pub workflow ConstructsFromXState from "tests/charts/constructs.json";
        }
    }
}

use constructs_imported::xstate::ConstructsFromXState;
use constructs_imported::ConstructsFromScxml;
use scxml::{JobFromScxml, JobFromScxmlEvent, JobFromScxmlHandlers};
use xstate::JobFromXState;

/// Writes the charts when `WORKFLOW_BLESS` is set (after a deliberate change to the export).
#[test]
fn exports_are_the_committed_charts() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/charts");
    for (file, text) in [
        ("job.scxml", graph().to_scxml()),
        ("job.json", graph().to_xstate()),
        ("constructs.scxml", Constructs::graph().to_scxml()),
        ("constructs.json", Constructs::graph().to_xstate()),
    ] {
        let path = dir.join(file);
        if std::env::var_os("WORKFLOW_BLESS").is_some() {
            std::fs::write(&path, &text).unwrap();
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert_eq!(committed, text, "{file} is stale: run with WORKFLOW_BLESS=1");
    }
}

/// `graph` under another name.
fn renamed<'a>(graph: &Graph<'a>, name: &'a str) -> Graph<'a> {
    Graph { name, ..*graph }
}

#[test]
fn exported_scxml_imports_as_the_same_graph() {
    assert_eq!(renamed(JobFromScxml::graph(), "Job"), *graph());
    assert_eq!(
        renamed(ConstructsFromScxml::graph(), "Constructs"),
        *Constructs::graph()
    );
}

/// The chart constructs come back from SCXML as the block wrote them: `In()` conditions,
/// several initial states and initial actions (the compound state's first transition),
/// targetless and internal eventless transitions, another state's completion.
#[test]
fn the_chart_constructs_survive_the_scxml_round_trip() {
    use workflow::graph::Trigger;
    let g = ConstructsFromScxml::graph();
    let index = |name: &str| g.state_index(name).unwrap();
    let order = g.transitions_from(index("Order"));
    assert_eq!(order[0].trigger, Trigger::Initial);
    assert_eq!(order[0].targets, [index("Charging"), index("Reserving")]);
    let decide = g.transitions_from(index("Decide"));
    assert_eq!(
        (decide[0].trigger, decide[0].actions),
        (Trigger::Initial, &["counted"][..])
    );
    assert_eq!(decide[1].in_states, [index("Order")]);
    assert_eq!(decide[1].not_in_states, [index("Paused")]);
    assert_eq!(decide[1].guard, Some("ready"));
    assert!(decide[2].targets.is_empty() && decide[2].trigger == Trigger::Always);
    assert!(decide[3].internal && decide[3].targets == [index("Idle")]);
    let reserving = g.transitions_from(index("Reserving"));
    assert_eq!(reserving[1].trigger, Trigger::DoneOf(index("Payment")));
}

/// XState keeps `on`, `after`, `always` and `onDone` apart, so a state's transitions come back
/// grouped by kind; and `=> internal Shipping` from Shipping itself, external in SCXML, comes
/// back as the external transition it is. Everything else is the same.
#[test]
fn exported_xstate_imports_as_the_same_graph_up_to_transition_grouping() {
    let imported = renamed(JobFromXState::graph(), "Job");
    let original = graph();
    same_up_to_grouping(&imported, original);
    let shipping = original.state_index("Shipping").unwrap();
    assert_ne!(
        imported.transitions_from(shipping),
        original.transitions_from(shipping),
        "Shipping's timer comes after its `on` transitions"
    );
    same_up_to_grouping(
        &renamed(ConstructsFromXState::graph(), "Constructs"),
        Constructs::graph(),
    );
}

/// The same states, events and initial state, and each state's transitions the same as a set
/// (internal only when inside the source, as XState can say it).
fn same_up_to_grouping(imported: &Graph<'_>, original: &Graph<'_>) {
    assert_eq!(imported.states, original.states);
    assert_eq!(imported.events, original.events);
    assert_eq!(imported.initial, original.initial);
    for s in 0..original.states.len() {
        let key = |t: &workflow::graph::TransitionInfo<'_>| {
            let end = original.states[t.source].end;
            let inside = t.targets.iter().all(|&x| x > t.source && x < end);
            format!(
                "{:?}",
                workflow::graph::TransitionInfo {
                    internal: t.internal && inside,
                    ..*t
                }
            )
        };
        let mut a: Vec<String> = imported.transitions_from(s).iter().map(key).collect();
        let mut b: Vec<String> = original.transitions_from(s).iter().map(key).collect();
        a.sort();
        b.sort();
        assert_eq!(a, b, "{}", original.states[s].name);
    }
}

#[test]
fn an_imported_chart_runs() {
    struct H;
    impl JobFromScxmlHandlers for H {
        fn enough(&self, _: &(), _: &scxml::Order) -> bool {
            true
        }
        fn in_stock(&self, _: &()) -> bool {
            false
        }
        fn log(&self, _: &mut (), _: &scxml::Cancel) {}
        fn keep(&self, _: &mut (), _: &String) {}
        fn count(&self, _: &mut (), _: &JobFromScxmlEvent) {}
        async fn charge(&self, _: &(), _: &ActivityCall) -> Result<String, ActivityError> {
            Ok(String::new())
        }
        async fn refund(&self, _: &(), _: &String, _: &ActivityCall) -> Result<(), ActivityError> {
            Ok(())
        }
    }
    let mut job = JobFromScxml::new(());
    job.start(&H);
    let active = |job: &JobFromScxml| job.active_states().map(|s| s.name()).collect::<Vec<_>>();
    assert_eq!(active(&job), ["Charging", "Reserving"]);
    job.handle(&scxml::Order { id: 1, items: vec![] }.into(), &H).unwrap();
    assert_eq!(active(&job), ["Charging", "Reserved"]);
    job.handle(&JobFromScxmlEvent::Pause, &H).unwrap();
    assert_eq!(active(&job), ["Paused"]);
    job.handle(&JobFromScxmlEvent::Resume, &H).unwrap();
    assert_eq!(active(&job), ["Charging", "Reserved"], "deep history");
}
