//! The generated machine's behaviour, driven by hand.
#![deny(warnings, missing_docs)]

mod common;

use common::*;
use workflow::prelude::*;
use workflow::Reason;

fn submit(id: u64, amount: u64) -> OrderEvent {
    SubmitOrder { id, amount }.into()
}

#[test]
fn a_transition_runs_exit_then_transition_then_entry_actions() {
    let services = Services::default();
    let mut order = Order::new(OrderCtx::default());
    let step = order.handle(&submit(7, 250), &services).unwrap();
    assert_eq!(
        (step.from(), step.to(), step.transition(), step.exited()),
        (OrderState::Start, OrderState::Charging, 0, true)
    );
    assert_eq!(step, Step::new(0, true));
    assert_eq!(
        format!("{step:?}"),
        "Step { from: Start, to: Charging, transition: 0, exited: true }"
    );
    assert_eq!((order.context().id, order.context().amount), (7, 250));
    assert_eq!(order.context().log, ["enter Charging"]);
    let step = order
        .handle(&OrderEvent::ChargePaymentDone(Receipt("r".into())), &services)
        .unwrap();
    assert_eq!(step.to(), OrderState::Reserving);
    assert_eq!(order.context().log, ["enter Charging", "exit Charging", "keep receipt"]);
    assert_eq!(order.context().receipt.as_deref(), Some("r"));
}

#[test]
fn a_rejected_event_changes_nothing_and_names_state_and_event() {
    let services = Services::default();
    let mut order = Order::with_state(OrderState::Shipping, OrderCtx::default());
    let before = order.context().clone();
    let rejected = order.handle(&OrderEvent::OrderDelivered, &services).unwrap_err();
    assert_eq!(
        (rejected.state(), rejected.event()),
        (OrderState::Shipping, "OrderDelivered")
    );
    assert_eq!(rejected, Rejected::new(OrderState::Shipping, rejected.event_index()));
    assert_eq!(
        format!("{rejected:?}"),
        "Rejected { state: Shipping, event: \"OrderDelivered\" }"
    );
    assert_eq!(
        rejected.to_string(),
        "event `OrderDelivered` is not accepted in state `Shipping`"
    );
    assert_eq!(order.state(), OrderState::Shipping);
    assert_eq!(order.context(), &before);
}

#[test]
fn guarded_transitions_are_tried_in_order_with_an_unguarded_else() {
    let services = Services::default();
    let mut order = Order::with_state(OrderState::InTransit, OrderCtx::default());
    let failed = |reason: &str| OrderEvent::from(DeliveryFailed { reason: reason.into() });
    assert_eq!(
        order.handle(&failed("not home"), &services).unwrap().to(),
        OrderState::Shipping
    );
    assert_eq!(order.context().attempts, 1);
    order.handle(&OrderEvent::ShipmentReady, &services).unwrap();
    assert_eq!(
        order.handle(&failed("address unknown"), &services).unwrap().to(),
        OrderState::Refunding
    );
    assert_eq!(order.context().attempts, 1, "the else branch runs no action");
}

#[test]
fn targetless_transitions_run_actions_without_exit_or_entry() {
    let services = Services::default();
    let mut order = Order::with_state(OrderState::Charging, OrderCtx::default());
    let step = order.handle(&OrderEvent::Ping, &services).unwrap();
    assert_eq!(
        (step.from(), step.to(), step.transition(), step.exited()),
        (OrderState::Charging, OrderState::Charging, 4, false)
    );
    assert_eq!(order.context().log, ["ping"]);
}

#[test]
fn timers_are_events_of_their_state() {
    let services = Services::default();
    let mut order = Order::with_state(OrderState::Shipping, OrderCtx::default());
    assert_eq!(OrderEvent::ShippingAfter48h.name(), "ShippingAfter48h");
    assert_eq!(
        order.handle(&OrderEvent::ShippingAfter48h, &services).unwrap().to(),
        OrderState::Escalated
    );
    assert!(order.is_finished());
}

#[test]
fn the_state_enum_knows_its_states() {
    assert_eq!(std::mem::size_of::<OrderState>(), 1);
    assert_eq!(std::mem::size_of::<Order>(), std::mem::size_of::<OrderCtx>() + 8);
    assert_eq!(OrderState::ALL.len(), 10);
    assert_eq!(OrderState::ALL[3], OrderState::Shipping);
    assert_eq!(OrderState::Shipping.index(), 3);
    assert_eq!(OrderState::InTransit.to_string(), "InTransit");
    assert!(OrderState::Cancelled.is_final() && !OrderState::Cancelled.is_failure());
    assert!(OrderState::Failed.is_final() && OrderState::Failed.is_failure());
    assert!(!OrderState::Start.is_final());
}

#[tokio::test(start_paused = true)]
async fn run_activity_retries_under_the_declared_policy() {
    let services = Services::failing_payments(2);
    let mut order = Order::with_state(
        OrderState::Charging,
        OrderCtx {
            id: 3,
            ..OrderCtx::default()
        },
    );
    let start = tokio::time::Instant::now();
    let event = order.run_activity(&services).await.unwrap();
    assert_eq!(
        start.elapsed(),
        std::time::Duration::from_millis(300),
        "backoff 100ms then 200ms"
    );
    match &event {
        OrderEvent::ChargePaymentDone(receipt) => assert_eq!(receipt.0, "receipt-3-attempt-3"),
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(order.handle(&event, &services).unwrap().to(), OrderState::Reserving);
}

#[tokio::test(start_paused = true)]
async fn an_exhausted_activity_takes_the_error_arm() {
    let services = Services::failing_payments(5);
    let mut order = Order::with_state(OrderState::Charging, OrderCtx::default());
    let event = order.run_activity(&services).await.unwrap();
    let OrderEvent::ChargePaymentFailed(error) = &event else {
        panic!("expected a failure, got {event:?}")
    };
    assert_eq!((error.attempts(), error.kind()), (3, ErrorKind::Failed));
    order.handle(&event, &services).unwrap();
    assert_eq!(order.state(), OrderState::Cancelled);
    assert_eq!(
        order.context().log.last().unwrap(),
        "payment failed: card reader offline"
    );
}

#[tokio::test]
async fn states_without_an_activity_run_nothing() {
    let order = Order::new(OrderCtx::default());
    assert!(order.run_activity(&Services::default()).await.is_none());
}

#[tokio::test]
async fn run_activity_runs_the_current_states_activity_when_awaited() {
    let services = Services::default();
    let reserving = Order::with_state(OrderState::Reserving, OrderCtx::default());
    let refunding = Order::with_state(OrderState::Refunding, OrderCtx::default());
    let future = reserving.run_activity(&services);
    assert!(
        services.calls.lock().unwrap().is_empty(),
        "nothing runs before the await"
    );
    assert!(matches!(future.await, Some(OrderEvent::ReserveStockDone(()))));
    assert!(matches!(
        refunding.run_activity(&services).await,
        Some(OrderEvent::RefundDone(()))
    ));
    assert_eq!(*services.calls.lock().unwrap(), ["reserve_stock", "refund"]);
}

#[test]
fn the_graph_describes_the_block() {
    let graph = Order::graph();
    assert_eq!(graph.name, "Order");
    assert_eq!(graph.states.len(), 10);
    assert_eq!(
        graph.events.len(),
        13,
        "6 declared, done and failed of 3 activities, 1 timer"
    );
    assert_eq!(graph.events[6].kind, workflow::graph::EventKind::Done("charge_payment"));
    assert_eq!(graph.events[12].name, "ShippingAfter48h");
    assert_eq!(graph.events[0].fields, &[("id", "u64"), ("amount", "u64")]);
    let charging = &graph.states[1];
    let invoke = charging.invoke.unwrap();
    assert_eq!(
        (invoke.activity, invoke.output, invoke.policy.max_attempts),
        ("charge_payment", "Receipt", 3)
    );
    assert_eq!(invoke.policy.timeout, Some(std::time::Duration::from_secs(10)));
    assert_eq!(graph.states[2].compensate, Some("release_stock"));
    assert_eq!(graph.transitions.len(), 14);
    let mermaid = graph.to_mermaid();
    assert!(
        mermaid.contains("InTransit --> Shipping: DeliveryFailed [can_redeliver] / count_attempt"),
        "{mermaid}"
    );
    assert!(
        mermaid.contains("Charging --> Reserving: done(charge_payment) / keep_receipt"),
        "{mermaid}"
    );
    let dot = graph.to_dot();
    assert!(
        dot.contains("\"Shipping\" -> \"Escalated\" [label=\"after 2d\"];"),
        "{dot}"
    );
}

#[test]
fn the_machine_traits_expose_the_same_machine() {
    fn drive<W: Workflow<Services>>(machine: &mut W, event: &W::Event) -> W::Node {
        machine.handle(event, &Services::default()).unwrap().to()
    }
    let mut order = <Order as Machine>::new(OrderCtx::default());
    assert_eq!(drive(&mut order, &submit(1, 1)), OrderState::Charging);
    assert_eq!(<Order as Machine>::graph().initial, 0);
}

#[tokio::test]
async fn run_compensation_runs_the_declared_compensation_once() {
    let services = Services::default();
    let order = Order::new(OrderCtx::default());
    assert!(order
        .run_compensation(OrderState::Start, None, &services)
        .await
        .is_none());
    assert_eq!(
        order.run_compensation(OrderState::Reserving, None, &services).await,
        Some(Ok(()))
    );
    assert_eq!(*services.calls.lock().unwrap(), ["release_stock"]);
}

#[test]
fn steps_and_rejections_are_indices_in_one_register() {
    use std::mem::size_of;
    assert_eq!(size_of::<Step<OrderState>>(), 4);
    assert_eq!(size_of::<Rejected<OrderState>>(), 3);
    assert_eq!(
        size_of::<Result<Step<OrderState>, Rejected<OrderState>>>(),
        4,
        "the tag lives in the step's niche byte"
    );
    // Hand-made values with indices the graph does not have name its
    // initial state (and `?` for the event) rather than panic.
    let initial = OrderState::ALL[Order::graph().initial];
    let step = Step::<OrderState>::new(u16::MAX, true);
    assert_eq!((step.from(), step.to(), step.transition()), (initial, initial, 65535));
    let rejected = Rejected::<OrderState>::at(9_999, 9_999);
    assert_eq!((rejected.state(), rejected.event()), (initial, "?"));
    assert_eq!(rejected.event_index(), 4_095, "an index too large to hold");
    // The largest indices a workflow may have survive the packing.
    let step = Step::<OrderState>::new(65_535, false);
    assert_eq!((step.transition(), step.exited()), (65_535, false));
    let rejected = Rejected::<OrderState>::at(2_046, 4_094);
    assert_eq!((rejected.event_index(), rejected.state()), (4_094, initial));
    assert_eq!(rejected.reason(), Reason::NotAccepted);
    // The reason has a bit of its own: the indices survive it, and a loop
    // is never equal to a plain rejection of the same state and event.
    let looped = Rejected::<OrderState>::looped(3, 12);
    assert_eq!(
        (looped.reason(), looped.state(), looped.event()),
        (Reason::EventlessLoop, OrderState::ALL[3], "ShippingAfter48h")
    );
    assert_ne!(looped, Rejected::at(3, 12));
    assert_eq!(Rejected::<OrderState>::looped(9_999, 9_999).event_index(), 4_095);
    assert_eq!(
        Rejected::<OrderState>::looped(2_047, 4_095).reason(),
        Reason::EventlessLoop,
        "an index too large does not spill into the reason"
    );
    assert_eq!(
        format!("{looped:?}"),
        "Rejected { state: Shipping, event: \"ShippingAfter48h\", reason: EventlessLoop }"
    );
    let rejected = Rejected::<OrderState>::at(3, 12);
    assert_eq!(
        (rejected.state(), rejected.event()),
        (OrderState::ALL[3], "ShippingAfter48h")
    );
    // A step and a rejection with the same 24 bits stay apart: the `Result`'s
    // tag lives in the step's own zero byte, not in those bits.
    let same_bits: [Result<Step<OrderState>, Rejected<OrderState>>; 2] = [Ok(Step::new(0x300C, false)), Err(rejected)];
    assert_ne!(same_bits[0], same_bits[1]);
    assert_eq!(same_bits.map(|r| r.is_ok()), [true, false]);
    assert_eq!(same_bits[0].map(|s| s.transition()), Ok(0x300C));
}

mod probe {
    //! A workflow whose handlers record the calls they are lent.
    use std::sync::Mutex;
    use workflow::prelude::*;

    workflow! {
        /// One activity run once, one retried, one compensation.
        pub workflow Probe {
            initial Looking;
            events { Go }
            state Looking {
                invoke look -> () { done => Fetching; error => Failed; }
                compensate undo;
            }
            state Fetching {
                invoke fetch -> u32 { retry 2 backoff 1ms..2ms; done => Done; error => Failed; }
            }
            final Done;
            final Failed (failure);
        }
    }

    /// Records every call; `fetch` fails its first attempt.
    #[derive(Default)]
    pub struct Recorder(pub Mutex<Vec<ActivityCall>>);

    impl ProbeHandlers for Recorder {
        async fn look(&self, _: &(), call: &ActivityCall) -> Result<(), ActivityError> {
            self.0.lock().unwrap().push(*call);
            Ok(())
        }
        async fn fetch(&self, _: &(), call: &ActivityCall) -> Result<u32, ActivityError> {
            self.0.lock().unwrap().push(*call);
            match call.attempt {
                1 => Err(ActivityError::new("busy")),
                n => Ok(n),
            }
        }
        async fn undo(&self, _: &(), call: &ActivityCall) -> Result<(), ActivityError> {
            self.0.lock().unwrap().push(*call);
            Ok(())
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_machine_driven_by_hand_lends_each_attempt_its_call() {
    use probe::*;
    let recorder = Recorder::default();
    let mut probe = Probe::default();
    let done = probe.run_activity(&recorder).await.unwrap();
    probe.handle(&done, &recorder).unwrap();
    assert!(matches!(
        probe.run_activity(&recorder).await,
        Some(ProbeEvent::FetchDone(2))
    ));
    probe
        .run_compensation(ProbeState::Looking, None, &recorder)
        .await
        .unwrap()
        .unwrap();
    let call = |activity, attempt| ActivityCall {
        activity,
        attempt,
        key: 0,
    };
    assert_eq!(
        *recorder.0.lock().unwrap(),
        [call("look", 1), call("fetch", 1), call("fetch", 2), call("undo", 1)]
    );
}
