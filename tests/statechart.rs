//! Statechart semantics the SCION corpus does not cover, written from the
//! rules of the W3C SCXML recommendation: final states and done events,
//! targetless and internal transitions, `cancel`, guards on eventless
//! transitions, history defaults, and a fork/join order flow.

use std::time::Duration;

use workflow::prelude::*;
use workflow::Scheduled;

/// Records every action in order.
#[derive(Default, Debug)]
pub struct Trace(Vec<String>);

workflow! {
    /// Payment and stock in parallel, joined by `on done`, then a decision.
    workflow Fulfil {
        context Trace;
        initial Order;
        events { Paid, Reserved, Cancel, Ping, InStock, Restock }

        state Order {
            entry enter_order;
            exit exit_order;
            on Cancel => Cancelled;
            parallel Work {
                entry enter_work;
                state Payment {
                    state Charging { on Paid => PaymentDone; }
                    final PaymentDone;
                }
                state Stock {
                    state Reserving { on Reserved => StockDone; on Ping / ping; }
                    final StockDone;
                }
                on done => Decide;
            }
            state Decide {
                always if in_stock => Shipped;
                always => Backorder;
            }
            state Backorder { on Restock => Decide; }
        }
        final Shipped;
        final Cancelled;
    }
}

struct Rules {
    in_stock: bool,
}

impl FulfilHandlers for Rules {
    fn in_stock(&self, _trace: &Trace) -> bool {
        self.in_stock
    }
    fn enter_order(&self, trace: &mut Trace) {
        trace.0.push("enter Order".into());
    }
    fn exit_order(&self, trace: &mut Trace) {
        trace.0.push("exit Order".into());
    }
    fn enter_work(&self, trace: &mut Trace) {
        trace.0.push("enter Work".into());
    }
    fn ping(&self, trace: &mut Trace, _event: &Ping) {
        trace.0.push("ping".into());
    }
}

fn names(machine: &Fulfil) -> Vec<&'static str> {
    machine.active_states().map(FulfilState::name).collect()
}

#[test]
fn regions_run_together_and_join_on_done() {
    let rules = Rules { in_stock: true };
    let mut m = Fulfil::new(Trace::default());
    assert_eq!(names(&m), ["Charging", "Reserving"]);
    m.start(&rules);
    assert_eq!(m.context().0, ["enter Order", "enter Work"]);
    assert!(m.is_in(FulfilState::Work) && m.is_in(FulfilState::Payment) && !m.is_in(FulfilState::Decide));

    m.handle(&FulfilEvent::Paid, &rules).unwrap();
    assert_eq!(
        names(&m),
        ["PaymentDone", "Reserving"],
        "one region finished, the join waits"
    );
    let step = m.handle(&FulfilEvent::Reserved, &rules).unwrap();
    assert_eq!(
        (step.from(), step.to(), step.exited()),
        (FulfilState::Reserving, FulfilState::StockDone, true),
        "the step names the macrostep's first transition"
    );
    assert_eq!(
        m.state().to_string(),
        "{Shipped}",
        "both final: done.state.Work, Decide, then the eventless guard"
    );
    assert!(m.is_finished());
    assert_eq!(m.context().0, ["enter Order", "enter Work", "exit Order"]);
}

#[test]
fn eventless_transitions_are_tried_in_order_with_guards() {
    let rules = Rules { in_stock: false };
    let mut m = Fulfil::with_state(FulfilState::Decide, Trace::default());
    m.handle(&FulfilEvent::Restock, &rules).unwrap_err();
    let mut m = Fulfil::new(Trace::default());
    m.start(&rules);
    m.handle(&FulfilEvent::Paid, &rules).unwrap();
    m.handle(&FulfilEvent::Reserved, &rules).unwrap();
    assert_eq!(
        names(&m),
        ["Backorder"],
        "the guard said no, the unguarded else was taken"
    );
}

#[test]
fn an_outer_transition_applies_in_every_child() {
    let rules = Rules { in_stock: true };
    let mut m = Fulfil::new(Trace::default());
    m.start(&rules);
    m.handle(&FulfilEvent::Paid, &rules).unwrap();
    m.handle(&FulfilEvent::Cancel, &rules).unwrap();
    assert_eq!(names(&m), ["Cancelled"]);
    assert_eq!(m.context().0.last().map(String::as_str), Some("exit Order"));
}

#[test]
fn a_targetless_transition_exits_and_enters_nothing() {
    let rules = Rules { in_stock: true };
    let mut m = Fulfil::new(Trace::default());
    m.start(&rules);
    let before = m.state();
    let step = m.handle(&FulfilEvent::Ping, &rules).unwrap();
    assert!(!step.exited());
    assert_eq!(
        (step.from(), step.to()),
        (FulfilState::Reserving, FulfilState::Reserving)
    );
    assert_eq!(m.state(), before);
    assert_eq!(m.context().0, ["enter Order", "enter Work", "ping"]);
}

#[test]
fn an_event_no_state_takes_is_rejected_and_changes_nothing() {
    let rules = Rules { in_stock: true };
    let mut m = Fulfil::new(Trace::default());
    m.start(&rules);
    let before = m.state();
    let rejected = m.handle(&FulfilEvent::Restock, &rules).unwrap_err();
    // The parallel state holding both active states names the configuration.
    assert_eq!(rejected.to_string(), "event `Restock` is not accepted in state `Work`");
    assert_eq!((rejected.state(), rejected.event()), (FulfilState::Work, "Restock"));
    assert_eq!(m.state(), before);
    m.handle(&FulfilEvent::Paid, &rules).unwrap();
    m.handle(&FulfilEvent::Reserved, &Rules { in_stock: false }).unwrap();
    // One atomic state active, inside Order: it is named itself.
    let rejected = m.handle(&FulfilEvent::Paid, &rules).unwrap_err();
    assert_eq!(
        rejected.to_string(),
        "event `Paid` is not accepted in state `Backorder`"
    );
}

workflow! {
    /// Internal versus external transitions, raise and send/cancel.
    #[allow(no_path_to_final)]
    workflow Door {
        context Trace;
        initial Closed;
        events { Open, Knock, Inner, Outer, Alarm, Disarm, Echo }
        state Closed {
            entry log_enter;
            exit log_exit;
            on Knock => internal Locked;
            on Outer => Locked;
            on Open / raise Echo, send Alarm after 30s as alarm;
            on Disarm / cancel alarm;
            on Echo / log_echo;
            state Unlocked { on Inner => Locked; }
            state Locked { }
        }
    }
}

struct DoorRules;

impl DoorHandlers for DoorRules {
    fn log_enter(&self, trace: &mut Trace) {
        trace.0.push("enter".into());
    }
    fn log_exit(&self, trace: &mut Trace) {
        trace.0.push("exit".into());
    }
    fn log_echo(&self, trace: &mut Trace, _event: &Echo) {
        trace.0.push("echo".into());
    }
}

#[test]
fn internal_transitions_keep_the_source_active() {
    let mut door = Door::new(Trace::default());
    door.start(&DoorRules);
    door.handle(&DoorEvent::Knock, &DoorRules).unwrap();
    assert_eq!(door.active_states().collect::<Vec<_>>(), [DoorState::Locked]);
    assert_eq!(door.context().0, ["enter"], "internal: Closed was not exited");
    let mut door = Door::new(Trace::default());
    door.start(&DoorRules);
    door.handle(&DoorEvent::Outer, &DoorRules).unwrap();
    assert_eq!(
        door.context().0,
        ["enter", "exit", "enter"],
        "external: Closed exited and re-entered"
    );
}

#[test]
fn raise_is_handled_in_the_same_macrostep_and_send_schedules_a_timer() {
    let mut door = Door::new(Trace::default());
    door.start(&DoorRules);
    door.handle(&DoorEvent::Open, &DoorRules).unwrap();
    assert_eq!(door.context().0, ["enter", "echo"]);
    door.handle(&DoorEvent::Disarm, &DoorRules).unwrap();
    let scheduled = door.take_scheduled();
    assert_eq!(scheduled.len(), 2);
    assert!(
        matches!(&scheduled[0], Scheduled::Send { id: "alarm", event: DoorEvent::Alarm, delay } if *delay == Duration::from_secs(30))
    );
    assert!(matches!(scheduled[1], Scheduled::Cancel { id: "alarm" }));
    assert!(door.take_scheduled().is_empty(), "taken once");
}

workflow! {
    /// History with a default, and a final child raising done.
    #[allow(no_path_to_final, dead_end)]
    workflow Player {
        initial Playing;
        events { Next, Pause, Resume, Finish }
        state Playing {
            history Last => Second;
            state First { on Next => Second; }
            state Second { on Next => Third; }
            state Third { on Finish => Over; }
            final Over;
            on Pause => Paused;
            on done => Ended;
        }
        state Paused { on Resume => Last; }
        state Ended { }
    }
}

struct NoHandlers;
impl PlayerHandlers for NoHandlers {}

#[test]
fn history_restores_the_last_child_or_takes_its_default() {
    let mut p = Player::with_state(PlayerState::Paused, ());
    p.handle(&PlayerEvent::Resume, &NoHandlers).unwrap();
    assert_eq!(
        p.active_states().collect::<Vec<_>>(),
        [PlayerState::Second],
        "nothing recorded: the default"
    );

    let mut p = Player::new(());
    p.start(&NoHandlers);
    p.handle(&PlayerEvent::Next, &NoHandlers).unwrap();
    p.handle(&PlayerEvent::Next, &NoHandlers).unwrap();
    p.handle(&PlayerEvent::Pause, &NoHandlers).unwrap();
    p.handle(&PlayerEvent::Resume, &NoHandlers).unwrap();
    assert_eq!(
        p.active_states().collect::<Vec<_>>(),
        [PlayerState::Third],
        "recorded when Playing was left"
    );
    p.handle(&PlayerEvent::Finish, &NoHandlers).unwrap();
    assert_eq!(
        p.active_states().collect::<Vec<_>>(),
        [PlayerState::Ended],
        "the final child raised done.state.Playing"
    );
}

#[test]
fn the_graph_and_diagram_show_the_hierarchy() {
    let g = Fulfil::graph();
    assert!(g.is_hierarchical());
    let mermaid = g.to_mermaid();
    assert!(
        mermaid.contains("    state Order {\n        [*] --> Work\n        state Work {"),
        "{mermaid}"
    );
    assert!(mermaid.contains("            --\n"), "{mermaid}");
    assert!(mermaid.contains("Decide --> Shipped: always [in_stock]"), "{mermaid}");
    assert!(mermaid.contains("Work --> Decide: done"), "{mermaid}");
}

workflow! {
    /// Two calls in turn inside a compound state.
    workflow Calls {
        initial Work;
        state Work {
            state First {
                invoke first -> u32 { done => Second; error => Failed; }
            }
            state Second {
                invoke second -> u32 { done => Done; error => Failed; }
            }
        }
        final Done;
        final Failed (failure);
    }
}

struct Callee;

impl CallsHandlers for Callee {
    async fn first(&self, _ctx: &(), _call: &ActivityCall) -> Result<u32, ActivityError> {
        Ok(1)
    }
    async fn second(&self, _ctx: &(), _call: &ActivityCall) -> Result<u32, ActivityError> {
        Ok(2)
    }
}

#[tokio::test]
async fn run_activity_runs_the_active_states_activity() {
    let mut calls = Calls::new(());
    calls.start(&Callee);
    let first = calls.run_activity(&Callee).await;
    assert!(matches!(first, Some(CallsEvent::FirstDone(1))), "{first:?}");
    calls.handle(&first.unwrap(), &Callee).unwrap();
    assert!(calls.is_in(CallsState::Second) && calls.is_in(CallsState::Work));
    let second = calls.run_activity(&Callee).await;
    assert!(matches!(second, Some(CallsEvent::SecondDone(2))), "{second:?}");
    calls.handle(&second.unwrap(), &Callee).unwrap();
    assert!(calls.is_in(CallsState::Done));
    assert!(
        calls.run_activity(&Callee).await.is_none(),
        "a final state runs nothing"
    );
}

/// Two workflows caught in the same eventless loop, allowed: `Spin` takes
/// `always => Spin` forever. An event reaches it on the interpreter's fast
/// path in the first, and through its general macrostep (a `raise`) in the
/// second.
mod spinning {
    use workflow::prelude::*;

    workflow! {
        #[allow(eventless_loop)]
        pub workflow Spinner {
            context u32;
            initial Idle;
            events { Go, Stop }
            state Idle { on Go => Spin; }
            state Spin { entry count; always => Spin; on Stop => Done; }
            final Done;
        }
    }

    workflow! {
        #[allow(eventless_loop, no_path_to_final)]
        pub workflow Raiser {
            context u32;
            initial Idle;
            events { Kick, Ping }
            state Idle { on Kick => Spin / raise Ping; }
            state Spin { entry count; always => Spin; }
        }
    }

    pub struct Counting;

    impl SpinnerHandlers for Counting {
        fn count(&self, entries: &mut u32) {
            *entries += 1;
        }
    }

    impl RaiserHandlers for Counting {
        fn count(&self, entries: &mut u32) {
            *entries += 1;
        }
    }
}

#[test]
fn an_eventless_loop_is_cut_short_with_an_error() {
    use spinning::*;
    use workflow::chart::MAX_MICROSTEPS;
    use workflow::Reason;

    let mut spinner = Spinner::new(0);
    spinner.start(&Counting);
    let rejected = spinner.handle(&SpinnerEvent::Go, &Counting).unwrap_err();
    assert_eq!(rejected.reason(), Reason::EventlessLoop);
    assert_eq!((rejected.state(), rejected.event()), (SpinnerState::Spin, "Go"));
    assert_eq!(
        rejected.to_string(),
        "event `Go` led into an eventless loop, cut short after 10000 microsteps in state `Spin`"
    );
    // Unlike a rejection, the loop changed the machine: `Go` entered `Spin`,
    // then each microstep re-entered it.
    assert_eq!(*spinner.context(), 1 + MAX_MICROSTEPS as u32);
    assert!(spinner.is_in(SpinnerState::Spin));
    // The machine still takes events; an event it does not take is the
    // other reason.
    let not_accepted = spinner.handle(&SpinnerEvent::Go, &Counting).unwrap_err();
    assert_eq!(not_accepted.reason(), Reason::NotAccepted);
    spinner.handle(&SpinnerEvent::Stop, &Counting).unwrap();
    assert!(spinner.is_finished());

    let mut raiser = Raiser::new(0);
    raiser.start(&Counting);
    let rejected = raiser.handle(&RaiserEvent::Kick, &Counting).unwrap_err();
    assert_eq!(
        (rejected.reason(), rejected.state(), rejected.event()),
        (Reason::EventlessLoop, RaiserState::Spin, "Kick")
    );
    assert_eq!(*raiser.context(), 1 + MAX_MICROSTEPS as u32);
}

#[tokio::test(start_paused = true)]
async fn the_engine_fails_an_instance_caught_in_an_eventless_loop() {
    use spinning::*;
    use workflow::{Engine, EngineError, Status};

    let engine = Engine::<Spinner, Counting>::new(Counting);
    engine.start("spin", 0).await.unwrap();
    let reason = "event `Go` led into an eventless loop, cut short after 10000 microsteps in state `Spin`";
    let failed = EngineError::InstanceFailed {
        id: "spin".into(),
        reason: reason.into(),
    };
    assert_eq!(engine.send("spin", SpinnerEvent::Go).await, Err(failed.clone()));
    assert!(matches!(engine.status("spin").await.unwrap(), Status::Failed { .. }));
    assert_eq!(engine.wait("spin").await, Err(failed));
}
