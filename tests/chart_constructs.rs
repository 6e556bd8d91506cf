//! The constructs that let the DSL say what SCXML and XState charts say:
//! `in(STATE)` conditions, several initial states and actions on the
//! initial transition, targetless and internal `always` transitions, and
//! `on done(STATE)`. Each test runs a machine and checks what the W3C SCXML
//! algorithm prescribes: the configuration and the order of actions.

use workflow::prelude::*;
use workflow::Reason;

/// Records every action in order.
#[derive(Default, Debug)]
pub struct Trace(Vec<&'static str>);

workflow! {
    /// Shipping waits on the payment region through `in(Paid)`.
    #[allow(no_path_to_final)]
    workflow Shop {
        context Trace;
        initial Run;
        events { Pay, Ship, Check }
        parallel Run {
            state Payment {
                state Unpaid { on Pay => Paid; }
                state Paid {}
            }
            state Shipping {
                state Waiting {
                    on Ship if in(Paid) => Sent;
                    on Check if in(Paid) && ready => Sent / note;
                    on Check if !in(Paid) / remind;
                }
                state Sent {}
            }
        }
    }
}

struct Ready(bool);

impl ShopHandlers for Ready {
    fn ready(&self, _trace: &Trace, _event: &Check) -> bool {
        self.0
    }
    fn note(&self, trace: &mut Trace, _event: &Check) {
        trace.0.push("note");
    }
    fn remind(&self, trace: &mut Trace, _event: &Check) {
        trace.0.push("remind");
    }
}

fn shop_states(m: &Shop) -> Vec<&'static str> {
    m.active_states().map(ShopState::name).collect()
}

#[test]
fn an_in_condition_holds_only_while_its_state_is_active() {
    let mut m = Shop::new(Trace::default());
    m.start(&Ready(true));
    let rejected = m.handle(&ShopEvent::Ship, &Ready(true)).unwrap_err();
    assert_eq!(rejected.reason(), Reason::NotAccepted, "not paid yet");
    assert_eq!(shop_states(&m), ["Unpaid", "Waiting"]);
    m.handle(&ShopEvent::Pay, &Ready(true)).unwrap();
    m.handle(&ShopEvent::Ship, &Ready(true)).unwrap();
    assert_eq!(shop_states(&m), ["Paid", "Sent"]);
}

#[test]
fn an_in_condition_and_a_guard_must_both_hold() {
    let mut m = Shop::new(Trace::default());
    m.start(&Ready(true));
    // Ready but not paid: only the `!in(Paid)` arm is enabled.
    m.handle(&ShopEvent::Check, &Ready(true)).unwrap();
    assert_eq!(shop_states(&m), ["Unpaid", "Waiting"]);
    m.handle(&ShopEvent::Pay, &Ready(false)).unwrap();
    assert!(
        m.handle(&ShopEvent::Check, &Ready(false)).is_err(),
        "paid but not ready"
    );
    assert_eq!(m.context().0, ["remind"]);
    m.handle(&ShopEvent::Check, &Ready(true)).unwrap();
    assert_eq!(shop_states(&m), ["Paid", "Sent"]);
    assert_eq!(m.context().0, ["remind", "note"]);
}

#[test]
fn a_negated_in_condition_holds_only_while_its_state_is_not_active() {
    let mut m = Shop::new(Trace::default());
    m.start(&Ready(false));
    m.handle(&ShopEvent::Check, &Ready(false)).unwrap();
    assert_eq!(m.context().0, ["remind"], "not paid: the reminder");
    assert_eq!(shop_states(&m), ["Unpaid", "Waiting"]);
    m.handle(&ShopEvent::Pay, &Ready(false)).unwrap();
    assert!(
        m.handle(&ShopEvent::Check, &Ready(false)).is_err(),
        "paid: no reminder, not ready"
    );
    assert_eq!(m.context().0, ["remind"]);
}

#[test]
fn in_conditions_are_exported_to_both_formats() {
    let scxml = Shop::graph().to_scxml();
    assert!(
        scxml.contains(r#"<transition event="Ship" cond="In(&apos;Paid&apos;)" target="Sent"/>"#),
        "{scxml}"
    );
    assert!(
        scxml.contains(r#"cond="In(&apos;Paid&apos;) &amp;&amp; ready""#),
        "{scxml}"
    );
    let json = Shop::graph().to_xstate();
    assert!(
        json.contains(r##""guard": {"type": "workflow.in", "params": {"states": ["#Paid"], "guard": "ready"}}"##),
        "{json}"
    );
    assert!(
        scxml.contains(r#"<transition event="Check" cond="!In(&apos;Paid&apos;)">"#),
        "{scxml}"
    );
    assert!(
        json.contains(r##""guard": {"type": "workflow.in", "params": {"states": [], "not": ["#Paid"]}}"##),
        "{json}"
    );
    let mermaid = Shop::graph().to_mermaid();
    assert!(
        mermaid.contains("Waiting --> Sent: Check [in(Paid) && ready] / note"),
        "{mermaid}"
    );
    assert!(
        mermaid.contains("Waiting --> Waiting: Check [!in(Paid)] / remind"),
        "{mermaid}"
    );
}

workflow! {
    /// `initial` naming a state in each region of a parallel descendant,
    /// with actions on the initial transition.
    #[allow(no_path_to_final)]
    workflow Form {
        context Trace;
        initial Checkout;
        events { Restart, Cash }
        state Checkout {
            entry enter_checkout;
            initial Card, Address / open_form;
            parallel Fill {
                entry enter_fill;
                state Pay {
                    initial PayCash;
                    state PayCash { entry enter_cash; }
                    state Card { entry enter_card; }
                }
                state Ship {
                    state Pickup { entry enter_pickup; }
                    state Address { entry enter_address; }
                }
            }
            on Restart => Checkout;
            on Cash => PayCash;
        }
    }
}

struct Log;

impl FormHandlers for Log {
    fn enter_checkout(&self, trace: &mut Trace) {
        trace.0.push("enter Checkout");
    }
    fn open_form(&self, trace: &mut Trace) {
        trace.0.push("open_form");
    }
    fn enter_fill(&self, trace: &mut Trace) {
        trace.0.push("enter Fill");
    }
    fn enter_cash(&self, trace: &mut Trace) {
        trace.0.push("enter PayCash");
    }
    fn enter_card(&self, trace: &mut Trace) {
        trace.0.push("enter Card");
    }
    fn enter_pickup(&self, trace: &mut Trace) {
        trace.0.push("enter Pickup");
    }
    fn enter_address(&self, trace: &mut Trace) {
        trace.0.push("enter Address");
    }
}

fn form_states(m: &Form) -> Vec<&'static str> {
    m.active_states().map(FormState::name).collect()
}

const DEFAULT_ENTRY: [&str; 5] = [
    "enter Checkout",
    "open_form",
    "enter Fill",
    "enter Card",
    "enter Address",
];

#[test]
fn several_initial_states_are_entered_with_the_initial_actions_in_scxml_order() {
    let mut m = Form::new(Trace::default());
    assert_eq!(form_states(&m), ["Card", "Address"]);
    m.start(&Log);
    assert_eq!(m.context().0, DEFAULT_ENTRY);
}

#[test]
fn entering_the_state_by_default_again_takes_its_initial_transition_again() {
    let mut m = Form::new(Trace::default());
    m.start(&Log);
    m.context_mut().0.clear();
    m.handle(&FormEvent::Restart, &Log).unwrap();
    assert_eq!(form_states(&m), ["Card", "Address"]);
    assert_eq!(m.context().0, DEFAULT_ENTRY);
}

#[test]
fn entering_through_an_explicit_descendant_skips_the_initial_transition() {
    let mut m = Form::new(Trace::default());
    m.start(&Log);
    m.context_mut().0.clear();
    m.handle(&FormEvent::Cash, &Log).unwrap();
    // Checkout and Fill are entered as ancestors of PayCash, the other region by its own default.
    assert_eq!(form_states(&m), ["PayCash", "Pickup"]);
    assert_eq!(
        m.context().0,
        ["enter Checkout", "enter Fill", "enter PayCash", "enter Pickup"]
    );
}

#[test]
fn the_initial_transition_is_exported_to_both_formats() {
    let scxml = Form::graph().to_scxml();
    let expected = [
        r#"  <state id="Checkout">"#,
        r#"    <initial>"#,
        r#"      <transition target="Card Address">"#,
        r#"        <wf:action name="open_form"/>"#,
    ];
    for line in expected {
        assert!(scxml.contains(line), "{line} in {scxml}");
    }
    let json = Form::graph().to_xstate();
    assert!(
        json.contains(r##""meta": {"initial": {"target": ["#Card", "#Address"], "actions": ["open_form"]}}"##),
        "{json}"
    );
    let mermaid = Form::graph().to_mermaid();
    assert!(
        mermaid.contains("        [*] --> Card: / open_form\n        [*] --> Address: / open_form\n"),
        "{mermaid}"
    );
    assert!(!mermaid.contains("Checkout --> Card"), "{mermaid}");
    let graph = Form::graph();
    let checkout = graph.state_index("Checkout").unwrap();
    let first = &graph.transitions_from(checkout)[0];
    assert_eq!(first.trigger, workflow::graph::Trigger::Initial);
    assert_eq!(first.targets.len(), 2);
}

/// What the eventless tests count.
#[derive(Default, Debug)]
pub struct Count {
    n: u32,
    trace: Vec<&'static str>,
}

workflow! {
    /// A targetless `always` that resets a counter when it reaches 3, and an
    /// internal eventless transition that moves inside `Outer` without
    /// leaving it.
    workflow Counter {
        context Count;
        initial Outer;
        events { Add, Go, Stop }
        state Outer {
            entry enter_outer;
            exit exit_outer;
            always if in(A) => internal B / moved;
            state A {}
            state B {
                on Add / add;
                always if full / reset;
                on Go => Spin;
            }
            on Stop => Done;
        }
        #[allow(eventless_loop)]
        state Spin { always / spin; on Stop => Done; }
        final Done;
    }
}

struct Counting;

impl CounterHandlers for Counting {
    fn enter_outer(&self, count: &mut Count) {
        count.trace.push("enter Outer");
    }
    fn exit_outer(&self, count: &mut Count) {
        count.trace.push("exit Outer");
    }
    fn moved(&self, count: &mut Count) {
        count.trace.push("moved");
    }
    fn add(&self, count: &mut Count, _event: &Add) {
        count.n += 1;
    }
    fn full(&self, count: &Count) -> bool {
        count.n >= 3
    }
    fn reset(&self, count: &mut Count) {
        count.n = 0;
        count.trace.push("reset");
    }
    fn spin(&self, count: &mut Count) {
        count.n += 1;
    }
}

#[test]
fn an_internal_eventless_transition_does_not_leave_its_source() {
    let mut m = Counter::new(Count::default());
    m.start(&Counting);
    assert!(m.is_in(CounterState::B));
    assert_eq!(m.context().trace, ["enter Outer", "moved"]);
}

#[test]
fn a_targetless_always_runs_its_actions_while_its_guard_holds_and_moves_nothing() {
    let mut m = Counter::new(Count::default());
    m.start(&Counting);
    m.handle(&CounterEvent::Add, &Counting).unwrap();
    m.handle(&CounterEvent::Add, &Counting).unwrap();
    assert_eq!(m.context().n, 2);
    let step = m.handle(&CounterEvent::Add, &Counting).unwrap();
    assert_eq!(m.context().n, 0, "reset once the guard held");
    assert!(!step.exited(), "a targetless transition exits nothing");
    assert!(m.is_in(CounterState::B));
    assert_eq!(m.context().trace, ["enter Outer", "moved", "reset"]);
}

#[test]
fn an_unguarded_targetless_always_is_an_eventless_loop_cut_short() {
    let mut m = Counter::new(Count::default());
    m.start(&Counting);
    let rejected = m.handle(&CounterEvent::Go, &Counting).unwrap_err();
    assert_eq!(rejected.reason(), Reason::EventlessLoop);
    assert!(m.is_in(CounterState::Spin));
    assert_eq!(m.context().n as usize, workflow::chart::MAX_MICROSTEPS);
    m.handle(&CounterEvent::Stop, &Counting).unwrap();
    assert!(m.is_finished());
}

#[test]
fn targetless_and_internal_always_are_exported() {
    let scxml = Counter::graph().to_scxml();
    assert!(scxml.contains("<transition cond=\"full\">\n"), "{scxml}");
    assert!(
        scxml.contains(r#"<transition cond="In(&apos;A&apos;)" target="B" type="internal">"#),
        "{scxml}"
    );
    let json = Counter::graph().to_xstate();
    assert!(
        json.contains(r#""always": [{"guard": "full", "actions": ["reset"]}]"#),
        "{json}"
    );
}

workflow! {
    /// `on done(A)` in a sibling region, `on done` of the parallel state.
    workflow Jobs {
        context Trace;
        initial Work;
        events { FinishA, FinishB }
        parallel Work {
            state RegionA {
                state A1 { on FinishA => ADone; }
                final ADone;
            }
            state RegionB {
                state B1 { on done(RegionA) => B2 / saw; on FinishB => BDone; }
                state B2 { on FinishB => BDone; }
                final BDone;
            }
            on done => Finished;
        }
        final Finished;
    }
}

struct Saw;

impl JobsHandlers for Saw {
    fn saw(&self, trace: &mut Trace) {
        trace.0.push("saw RegionA done");
    }
}

#[test]
fn on_done_of_another_state_hears_its_completion() {
    let mut m = Jobs::new(Trace::default());
    m.start(&Saw);
    m.handle(&JobsEvent::FinishA, &Saw).unwrap();
    let active: Vec<_> = m.active_states().map(JobsState::name).collect();
    assert_eq!(active, ["ADone", "B2"]);
    assert_eq!(m.context().0, ["saw RegionA done"]);
    m.handle(&JobsEvent::FinishB, &Saw).unwrap();
    assert!(m.is_finished(), "the parallel state's own `on done` still fires");
}

#[test]
fn on_done_of_another_state_is_not_heard_once_its_source_is_left() {
    let mut m = Jobs::new(Trace::default());
    m.start(&Saw);
    m.handle(&JobsEvent::FinishB, &Saw).unwrap();
    m.handle(&JobsEvent::FinishA, &Saw).unwrap();
    assert!(m.is_finished());
    assert!(m.context().0.is_empty(), "B1 was left before RegionA completed");
}

#[test]
fn on_done_of_another_state_is_exported() {
    let scxml = Jobs::graph().to_scxml();
    assert!(
        scxml.contains(r#"<transition event="done.state.RegionA" target="B2">"#),
        "{scxml}"
    );
    let json = Jobs::graph().to_xstate();
    assert!(
        json.contains(r##""on": {"xstate.done.state.RegionA": [{"target": "#B2""##),
        "{json}"
    );
}
