//! The same order machine in every implementation, measured side by side in
//! one criterion run (see `../shared/peers.md`, beside the repository, for the peer figures).
//!
//! States: Start, Charging, Shipping, InTransit, then the finals Completed and
//! Cancelled. Events: `Submit { amount }` (guarded: accepted only when
//! `amount > 0`), `Paid`, `Shipped`, `Delivered`, `Cancel` (from Start,
//! Charging and Shipping). Each of the four happy-path transitions runs an
//! action that increments a `u32` counter in the context; any event a state
//! does not accept is rejected and changes nothing.
//!
//! Groups (names are stable, compare across runs):
//! - `happy_path/<impl>`: a fresh machine, then Submit, Paid, Shipped,
//!   Delivered (4 transitions); events and every result go through
//!   `black_box`. Divide by 4 for ns per transition.
//! - `rejected/<impl>`: a fresh machine in Start gets `Delivered`.
//! - `async/<impl>`: a fresh machine in Charging; its payment activity is
//!   awaited and the outcome drives one transition (Charging -> Shipping).
//!
//! After criterion, 31 paired rounds time every implementation of a group
//! back to back and print each one's ratio to the group's reference (the
//! event-first match, the hand-written `async fn`) with its quartiles, and
//! the targets' verdicts: the ratios, not criterion's separate medians, are
//! what the targets are judged on (see `paired_rounds`).
//!
//! Run: `cargo bench -p workflow-benches --bench machine -- --warm-up-time 1 --measurement-time 3`
//! (`cargo bench -p workflow-benches --bench machine -- none` skips criterion and runs only the
//! paired rounds).

#![allow(dead_code)] // the machines are complete; the benchmarks use part of them

use std::hint::black_box;
use std::mem::size_of;
use std::time::{Duration, Instant};

use std::future::Future;

use criterion::Criterion;

/// The amount submitted; the guard accepts it.
const AMOUNT: u64 = 250;

// ---------------------------------------------------------------------------
// (1) ours: `workflow!`
// ---------------------------------------------------------------------------
mod ours {
    use std::hint::black_box;
    use workflow::prelude::*;

    workflow! {
        /// The order machine of the benchmark.
        pub workflow Order {
            context u32;                      // transitions taken
            initial Start;
            events { Submit { amount: u64 }, Paid, Shipped, Delivered, Cancel }

            state Start {
                on Submit if positive => Charging / count;
                on Cancel => Cancelled;
            }
            state Charging {
                // The async benchmark: the payment is an activity whose
                // outcome is fed back to `handle`.
                invoke charge -> u64 {
                    done => Shipping / count_charged;
                    error => Cancelled;
                }
                // The sync benchmarks: the payment arrives as an event.
                on Paid => Shipping / count;
                on Cancel => Cancelled;
            }
            state Shipping {
                on Shipped => InTransit / count;
                on Cancel => Cancelled;
            }
            state InTransit {
                on Delivered => Completed / count;
            }
            final Completed;
            final Cancelled;
        }
    }

    /// The handlers: a guard on the payload, a counting action, the activity.
    pub struct Rules;

    impl OrderHandlers for Rules {
        fn positive(&self, _count: &u32, event: &Submit) -> bool {
            event.amount > 0
        }
        fn count(&self, count: &mut u32, _event: &OrderEvent) {
            *count += 1;
        }
        fn count_charged(&self, count: &mut u32, _receipt: &u64) {
            *count += 1;
        }
        async fn charge(&self, _count: &u32, _call: &ActivityCall) -> Result<u64, ActivityError> {
            Ok(black_box(42))
        }
    }
}

// ---------------------------------------------------------------------------
// (2) and (3) hand-written, sharing the state and event types.
// ---------------------------------------------------------------------------
mod hand {
    use std::hint::black_box;

    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum State {
        Start,
        Charging,
        Shipping,
        InTransit,
        Completed,
        Cancelled,
    }

    #[derive(Clone, Copy, Debug)]
    pub enum Event {
        Submit { amount: u64 },
        Paid,
        Shipped,
        Delivered,
        Cancel,
    }

    /// The machine: state and counter, nothing else.
    pub struct Machine {
        pub state: State,
        pub count: u32,
    }

    impl Machine {
        pub const fn new() -> Self {
            Self {
                state: State::Start,
                count: 0,
            }
        }

        /// (2) the floor: match the event first, test the state in the arm
        /// guard. `Ok(new state)` or `Err(state that rejected it)`.
        pub fn handle_event_first(&mut self, event: &Event) -> Result<State, State> {
            let s = self.state;
            let to = match *event {
                Event::Submit { amount } if s == State::Start && amount > 0 => {
                    self.count += 1;
                    State::Charging
                }
                Event::Paid if s == State::Charging => {
                    self.count += 1;
                    State::Shipping
                }
                Event::Shipped if s == State::Shipping => {
                    self.count += 1;
                    State::InTransit
                }
                Event::Delivered if s == State::InTransit => {
                    self.count += 1;
                    State::Completed
                }
                Event::Cancel if matches!(s, State::Start | State::Charging | State::Shipping) => State::Cancelled,
                _ => return Err(s),
            };
            self.state = to;
            Ok(to)
        }

        /// (3) match the `(state, event)` pair.
        pub fn handle_tuple(&mut self, event: &Event) -> Result<State, State> {
            let to = match (self.state, event) {
                (State::Start, Event::Submit { amount }) if *amount > 0 => {
                    self.count += 1;
                    State::Charging
                }
                (State::Charging, Event::Paid) => {
                    self.count += 1;
                    State::Shipping
                }
                (State::Shipping, Event::Shipped) => {
                    self.count += 1;
                    State::InTransit
                }
                (State::InTransit, Event::Delivered) => {
                    self.count += 1;
                    State::Completed
                }
                (State::Start | State::Charging | State::Shipping, Event::Cancel) => State::Cancelled,
                (s, _) => return Err(s),
            };
            self.state = to;
            Ok(to)
        }
    }

    /// The payment service, answering at once.
    pub async fn charge() -> Result<u64, ()> {
        Ok(black_box(42))
    }

    /// The hand-written async step: await the payment, then match.
    pub async fn charge_step(m: &mut Machine) -> Result<State, State> {
        let outcome = charge().await;
        let to = match outcome {
            Ok(_receipt) if m.state == State::Charging => {
                m.count += 1;
                State::Shipping
            }
            Err(()) if m.state == State::Charging => State::Cancelled,
            _ => return Err(m.state),
        };
        m.state = to;
        Ok(to)
    }
}

// ---------------------------------------------------------------------------
// (4) smlang 0.8
// ---------------------------------------------------------------------------
mod sml {
    use smlang::statemachine;

    #[derive(Clone, Copy, Debug)]
    pub struct SubmitData {
        pub amount: u64,
    }

    statemachine! {
        name: Order,
        derive_states: [Clone, Copy, Debug],
        derive_events: [Clone, Copy, Debug],
        transitions: {
            *Start + Submit(SubmitData) [positive] / count_submit = Charging,
            Start + Cancel = Cancelled,
            Charging + Paid / count = Shipping,
            Charging + Cancel = Cancelled,
            Shipping + Shipped / count = InTransit,
            Shipping + Cancel = Cancelled,
            InTransit + Delivered / count = Completed,
        }
    }

    pub struct Ctx {
        pub count: u32,
    }

    impl OrderStateMachineContext for Ctx {
        fn positive(&self, event: &SubmitData) -> Result<bool, ()> {
            Ok(event.amount > 0)
        }
        fn count_submit(&mut self, _event: SubmitData) -> Result<(), ()> {
            self.count += 1;
            Ok(())
        }
        fn count(&mut self) -> Result<(), ()> {
            self.count += 1;
            Ok(())
        }
    }

    /// The async variant: the payment is an async guard awaiting the service
    /// (smlang makes `process_event` async as soon as one guard or action is).
    /// A failed payment makes the guard say no (`Err(GuardFailed)`); the
    /// caller would then send `Cancel`.
    pub mod asynchronous {
        use smlang::statemachine;

        statemachine! {
            name: AsyncOrder,
            derive_states: [Clone, Copy, Debug],
            derive_events: [Clone, Copy, Debug],
            transitions: {
                *Start + Submit [positive] / count = Charging,
                Start + Cancel = Cancelled,
                Charging + Charge [async charged] / count = Shipping,
                Charging + Cancel = Cancelled,
                Shipping + Shipped / count = InTransit,
                Shipping + Cancel = Cancelled,
                InTransit + Delivered / count = Completed,
            }
        }

        pub struct Ctx {
            pub count: u32,
        }

        impl AsyncOrderStateMachineContext for Ctx {
            fn positive(&self) -> Result<bool, ()> {
                Ok(true)
            }
            async fn charged(&self) -> Result<bool, ()> {
                Ok(crate::hand::charge().await.is_ok())
            }
            fn count(&mut self) -> Result<(), ()> {
                self.count += 1;
                Ok(())
            }
        }
    }
}

// ---------------------------------------------------------------------------
// (5) statig 0.4
// ---------------------------------------------------------------------------
mod stg {
    use statig::prelude::*;

    pub use crate::hand::Event;

    /// Shared storage: the counter.
    #[derive(Default)]
    pub struct Order {
        pub count: u32,
    }

    #[state_machine(initial = "State::start()", state(derive(Clone, Copy, Debug, PartialEq)))]
    impl Order {
        #[state]
        fn start(&mut self, event: &Event) -> Outcome<State> {
            match event {
                Event::Submit { amount } if *amount > 0 => {
                    self.count += 1;
                    Transition(State::charging())
                }
                Event::Cancel => Transition(State::cancelled()),
                _ => Super,
            }
        }

        #[state]
        fn charging(&mut self, event: &Event) -> Outcome<State> {
            match event {
                Event::Paid => {
                    self.count += 1;
                    Transition(State::shipping())
                }
                Event::Cancel => Transition(State::cancelled()),
                _ => Super,
            }
        }

        #[state]
        fn shipping(&mut self, event: &Event) -> Outcome<State> {
            match event {
                Event::Shipped => {
                    self.count += 1;
                    Transition(State::in_transit())
                }
                Event::Cancel => Transition(State::cancelled()),
                _ => Super,
            }
        }

        #[state]
        fn in_transit(&mut self, event: &Event) -> Outcome<State> {
            match event {
                Event::Delivered => {
                    self.count += 1;
                    Transition(State::completed())
                }
                _ => Super,
            }
        }

        #[state]
        fn completed(event: &Event) -> Outcome<State> {
            let _ = event;
            Super
        }

        #[state]
        fn cancelled(event: &Event) -> Outcome<State> {
            let _ = event;
            Super
        }
    }

    /// The async variant: async state handlers; Charging awaits the payment
    /// service when it receives `Charge`.
    pub mod asynchronous {
        use statig::prelude::*;

        pub enum Event {
            Charge,
            Cancel,
        }

        #[derive(Default)]
        pub struct AsyncOrder {
            pub count: u32,
        }

        #[state_machine(initial = "State::charging()", state(derive(Clone, Copy, Debug, PartialEq)))]
        impl AsyncOrder {
            #[state]
            async fn charging(&mut self, event: &Event) -> Outcome<State> {
                match event {
                    Event::Charge => match crate::hand::charge().await {
                        Ok(_receipt) => {
                            self.count += 1;
                            Transition(State::shipping())
                        }
                        Err(()) => Transition(State::cancelled()),
                    },
                    Event::Cancel => Transition(State::cancelled()),
                }
            }

            #[state]
            async fn shipping(event: &Event) -> Outcome<State> {
                match event {
                    Event::Cancel => Transition(State::cancelled()),
                    _ => Super,
                }
            }

            #[state]
            async fn cancelled(event: &Event) -> Outcome<State> {
                let _ = event;
                Super
            }
        }
    }
}

// ---------------------------------------------------------------------------
// (6) rust-fsm 0.8
// ---------------------------------------------------------------------------
/// rust-fsm's DSL only maps (state, input) to (state, output): inputs carry no
/// data, and there are no guards, actions or context. The idiomatic way to
/// get them is a thin wrapper, done here: the wrapper evaluates the payload
/// guard before feeding the input, and the machine's Mealy *output* `Count`
/// stands for the action, which the wrapper performs on the counter it owns.
mod rfsm {
    use rust_fsm::*;

    pub use crate::hand::Event;

    state_machine! {
        #[derive(Clone, Copy, Debug, PartialEq)]
        pub order(Start)

        Start => {
            Submit => Charging [Count],
            Cancel => Cancelled,
        },
        Charging => {
            Paid => Shipping [Count],
            Cancel => Cancelled,
        },
        Shipping => {
            Shipped => InTransit [Count],
            Cancel => Cancelled,
        },
        InTransit(Delivered) => Completed [Count],
    }

    /// The rust-fsm machine plus the context it cannot hold.
    pub struct Machine {
        pub fsm: order::StateMachine,
        pub count: u32,
    }

    impl Machine {
        pub fn new() -> Self {
            Self {
                fsm: order::StateMachine::new(),
                count: 0,
            }
        }

        pub fn handle(&mut self, event: &Event) -> Result<order::State, order::State> {
            let input = match *event {
                // The guard, evaluated before the input is fed.
                Event::Submit { amount } => {
                    if amount == 0 {
                        return Err(*self.fsm.state());
                    }
                    order::Input::Submit
                }
                Event::Paid => order::Input::Paid,
                Event::Shipped => order::Input::Shipped,
                Event::Delivered => order::Input::Delivered,
                Event::Cancel => order::Input::Cancel,
            };
            match self.fsm.consume(&input) {
                Ok(output) => {
                    if let Some(order::Output::Count) = output {
                        self.count += 1;
                    }
                    Ok(*self.fsm.state())
                }
                Err(TransitionImpossibleError) => Err(*self.fsm.state()),
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Benchmarks
// ---------------------------------------------------------------------------

/// Delivers the four events of `$events` to the machine through `$call`,
/// written out four times rather than looped: with a loop, whether LLVM
/// unrolls it (one indirect jump per event, each always going the same way)
/// or keeps one shared dispatch depends on the size of the inlined body, and
/// that alone moved a result by ~15% between implementations. Unrolled by
/// hand, every implementation gets the same code shape.
macro_rules! four_events {
    ($events:expr, |$event:ident| $call:expr) => {{
        let events = &$events;
        let $event = black_box(&events[0]);
        let _ = black_box($call);
        let $event = black_box(&events[1]);
        let _ = black_box($call);
        let $event = black_box(&events[2]);
        let _ = black_box($call);
        let $event = black_box(&events[3]);
        let _ = black_box($call);
    }};
}

/// Times `iters` runs of `run`, each result black-boxed: what criterion's
/// `iter` does, kept as a function so the paired rounds time the same code.
fn timed<R>(iters: u64, mut run: impl FnMut() -> R) -> Duration {
    let start = Instant::now();
    for _ in 0..iters {
        black_box(run());
    }
    start.elapsed()
}

/// Runs `iters` async steps inside one `block_on` and times the loop.
///
/// Measurement choice: a `block_on` per step would add the runtime's
/// enter/park/exit bookkeeping to every implementation alike and drown the
/// difference (measured on this machine: ~120 ns per `block_on`, against
/// ~3 ns for the hand-written step itself). Timing the loop
/// inside one `block_on` on a current-thread runtime is what criterion's own
/// `to_async(..).iter(..)` does (feature `async_tokio`, not enabled here), so
/// `iter_custom` gives the same measurement without another feature. Each
/// step still builds a fresh machine in Charging (through `black_box`, so the
/// compiler cannot fold the step away), awaits the payment, and takes one
/// transition.
fn async_loop<F, Fut>(rt: &tokio::runtime::Runtime, iters: u64, mut step: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    rt.block_on(async {
        let start = Instant::now();
        for _ in 0..iters {
            step().await;
        }
        start.elapsed()
    })
}

/// One measured implementation: its group, its name, and a function timing
/// `iters` of its iterations. Criterion and the paired rounds both call it.
struct Case<'a> {
    group: &'static str,
    name: &'static str,
    time: Box<dyn FnMut(u64) -> Duration + 'a>,
}

impl<'a> Case<'a> {
    fn new(group: &'static str, name: &'static str, time: impl FnMut(u64) -> Duration + 'a) -> Self {
        Self {
            group,
            name,
            time: Box::new(time),
        }
    }
}

/// Every implementation of every group, in the order criterion reports them.
fn cases(rt: &tokio::runtime::Runtime) -> Vec<Case<'_>> {
    use ours::*;
    use statig::prelude::*;

    // Events are built once and passed by reference (every API here but
    // smlang's takes `&Event`); `black_box` on the reference hides them, and
    // `black_box` on the fresh machine hides its initial state, so nothing
    // is decided at compile time. Each call's whole result is black-boxed.
    let events: [OrderEvent; 4] = [
        Submit { amount: AMOUNT }.into(),
        Paid.into(),
        Shipped.into(),
        Delivered.into(),
    ];
    let hand_events = [
        hand::Event::Submit { amount: AMOUNT },
        hand::Event::Paid,
        hand::Event::Shipped,
        hand::Event::Delivered,
    ];
    // smlang consumes its events by value; they are `Copy`.
    let sml_events = [
        sml::OrderEvents::Submit(sml::SubmitData { amount: AMOUNT }),
        sml::OrderEvents::Paid,
        sml::OrderEvents::Shipped,
        sml::OrderEvents::Delivered,
    ];
    let rejected_event: OrderEvent = Delivered.into();
    let hand_rejected = hand::Event::Delivered;

    vec![
        // happy_path: a fresh machine, then the four events.
        Case::new("happy_path", "ours", move |n| {
            timed(n, || {
                let mut m = black_box(Order::new(0));
                four_events!(events, |e| m.handle(e, &Rules));
                *m.context()
            })
        }),
        Case::new("happy_path", "hand_event_first", move |n| {
            timed(n, || {
                let mut m = black_box(hand::Machine::new());
                four_events!(hand_events, |e| m.handle_event_first(e));
                m.count
            })
        }),
        Case::new("happy_path", "hand_tuple", move |n| {
            timed(n, || {
                let mut m = black_box(hand::Machine::new());
                four_events!(hand_events, |e| m.handle_tuple(e));
                m.count
            })
        }),
        Case::new("happy_path", "smlang", move |n| {
            timed(n, || {
                let mut m = black_box(sml::OrderStateMachine::new(sml::Ctx { count: 0 }));
                four_events!(sml_events, |e| m.process_event(*e).copied());
                m.context().count
            })
        }),
        // statig's `handle` returns nothing: the state after it is the result.
        Case::new("happy_path", "statig", move |n| {
            timed(n, || {
                let mut m = black_box(stg::Order::default().uninitialized_state_machine().init());
                four_events!(hand_events, |e| {
                    m.handle(e);
                    *m.state()
                });
                m.inner().count
            })
        }),
        Case::new("happy_path", "rust_fsm", move |n| {
            timed(n, || {
                let mut m = black_box(rfsm::Machine::new());
                four_events!(hand_events, |e| m.handle(e));
                m.count
            })
        }),
        // rejected: a fresh machine in Start gets `Delivered`.
        Case::new("rejected", "ours", move |n| {
            timed(n, || {
                let mut m = black_box(Order::new(0));
                black_box(m.handle(black_box(&rejected_event), &Rules)).ok();
                m.state()
            })
        }),
        Case::new("rejected", "hand_event_first", move |n| {
            timed(n, || {
                let mut m = black_box(hand::Machine::new());
                black_box(m.handle_event_first(black_box(&hand_rejected))).ok();
                m.state
            })
        }),
        Case::new("rejected", "hand_tuple", move |n| {
            timed(n, || {
                let mut m = black_box(hand::Machine::new());
                black_box(m.handle_tuple(black_box(&hand_rejected))).ok();
                m.state
            })
        }),
        Case::new("rejected", "smlang", move |n| {
            timed(n, || {
                let mut m = black_box(sml::OrderStateMachine::new(sml::Ctx { count: 0 }));
                black_box(m.process_event(black_box(sml::OrderEvents::Delivered)).copied()).ok();
                *m.state()
            })
        }),
        Case::new("rejected", "statig", move |n| {
            timed(n, || {
                let mut m = black_box(stg::Order::default().uninitialized_state_machine().init());
                m.handle(black_box(&hand_rejected)); // statig reports nothing: the state is the result
                *m.state()
            })
        }),
        Case::new("rejected", "rust_fsm", move |n| {
            timed(n, || {
                let mut m = black_box(rfsm::Machine::new());
                black_box(m.handle(black_box(&hand_rejected))).ok();
                m.count
            })
        }),
        // async: a fresh machine in Charging awaits its payment activity and
        // takes one transition on the outcome.
        Case::new("async", "ours", move |n| {
            async_loop(rt, n, || async {
                let h = &Rules;
                let mut m = black_box(Order::with_state(OrderState::Charging, 0));
                if let Some(ev) = m.run_activity(h).await {
                    black_box(m.handle(&ev, h)).ok();
                }
                black_box(*m.context());
            })
        }),
        Case::new("async", "hand_async_fn", move |n| {
            async_loop(rt, n, || async {
                let mut m = black_box(hand::Machine {
                    state: hand::State::Charging,
                    count: 0,
                });
                black_box(hand::charge_step(&mut m).await).ok();
                black_box(m.count);
            })
        }),
        Case::new("async", "smlang", move |n| {
            use sml::asynchronous::*;
            async_loop(rt, n, || async {
                let mut m = black_box(AsyncOrderStateMachine::new_with_state(
                    Ctx { count: 0 },
                    AsyncOrderStates::Charging,
                ));
                black_box(m.process_event(AsyncOrderEvents::Charge).await.copied()).ok();
                black_box(m.context().count);
            })
        }),
        Case::new("async", "statig", move |n| {
            use statig::awaitable::IntoStateMachineExt as _;
            use stg::asynchronous::*;
            async_loop(rt, n, || async {
                // A fresh statig machine must be initialized (no entry action
                // runs here); that is part of its step.
                let mut m = black_box(AsyncOrder::default().uninitialized_state_machine())
                    .init()
                    .await;
                m.handle(&Event::Charge).await;
                black_box(*m.state());
                black_box(m.inner().count);
            })
        }),
    ]
}

/// The implementation each group's ratios are taken against.
fn reference(group: &str) -> &'static str {
    match group {
        "async" => "hand_async_fn",
        _ => "hand_event_first",
    }
}

/// Paired rounds: criterion measures each implementation in its own stretch
/// of time, and this machine's speed drifts by 10-30% between stretches (the
/// same floor measured 3.5 and 7.9 ns a day apart). Here every round times
/// one batch of every implementation of a group back to back, in an order
/// that rotates from round to round, and each implementation's time is
/// divided by its group's reference in the same round: the drift cancels in
/// the ratio. Prints the median ratio with its quartiles and the verdicts.
fn paired_rounds(cases: &mut [Case<'_>]) {
    const ROUNDS: usize = 31;
    const BATCH: Duration = Duration::from_millis(2);
    // Iterations per batch, calibrated once per case.
    let iters: Vec<u64> = cases
        .iter_mut()
        .map(|case| {
            let probe = 10_000;
            let took = (case.time)(probe).max(Duration::from_nanos(1));
            (probe as f64 * BATCH.as_secs_f64() / took.as_secs_f64()).max(1_000.0) as u64
        })
        .collect();
    let mut ratios: Vec<Vec<f64>> = vec![Vec::with_capacity(ROUNDS); cases.len()];
    let mut times: Vec<Vec<f64>> = vec![Vec::with_capacity(ROUNDS); cases.len()];
    for round in 0..ROUNDS {
        for group in ["happy_path", "rejected", "async"] {
            let members: Vec<usize> = (0..cases.len()).filter(|&i| cases[i].group == group).collect();
            let mut ns = vec![0.0; cases.len()];
            for k in 0..members.len() {
                let i = members[(k + round) % members.len()];
                ns[i] = (cases[i].time)(iters[i]).as_nanos() as f64 / iters[i] as f64;
            }
            let Some(base) = members.iter().find(|&&i| cases[i].name == reference(group)) else {
                continue;
            };
            for &i in &members {
                ratios[i].push(ns[i] / ns[*base]);
                times[i].push(ns[i]);
            }
        }
    }
    let quartiles = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
        (at(0.25), at(0.5), at(0.75))
    };
    eprintln!("\npaired rounds: {ROUNDS} rounds, each implementation of a group timed back to back (~2 ms a batch)");
    eprintln!(
        "{:<12} {:<18} {:>9} {:>9}   ratio quartiles (against the group's reference, same round)",
        "group", "implementation", "ns", "ratio"
    );
    let mut median_ratio = std::collections::HashMap::new();
    for (i, case) in cases.iter().enumerate() {
        let (_, ns, _) = quartiles(&mut times[i]);
        let (q1, ratio, q3) = quartiles(&mut ratios[i]);
        median_ratio.insert((case.group, case.name), ratio);
        eprintln!(
            "{:<12} {:<18} {ns:>9.2} {ratio:>8.3}x   [{q1:.3}, {q3:.3}]",
            case.group, case.name
        );
    }
    let ratio = |group: &'static str, name: &'static str| median_ratio.get(&(group, name)).copied().unwrap_or(f64::NAN);
    let verdict = |met: bool| if met { "met" } else { "MISSED" };
    let happy = ratio("happy_path", "ours");
    let (smlang, statig) = (ratio("happy_path", "smlang"), ratio("happy_path", "statig"));
    let asynchronous = ratio("async", "ours");
    eprintln!("targets (medians of the paired ratios):");
    eprintln!(
        "  happy path within 1.1x of the floor: {happy:.3}x, {}",
        verdict(happy <= 1.1)
    );
    eprintln!(
        "  faster than smlang ({smlang:.3}x) and statig ({statig:.3}x): {}",
        verdict(happy < smlang && happy < statig)
    );
    eprintln!(
        "  async within 1.2x of the hand-written async fn: {asynchronous:.3}x, {}",
        verdict(asynchronous <= 1.2)
    );
}

/// Checks every implementation does the same thing, then prints the sizes.
fn check_and_print_sizes() {
    use statig::prelude::*;

    // Same behaviour everywhere: 4 transitions counted, Completed; rejection.
    let mut m = ours::Order::new(0);
    for e in [ours::Submit { amount: 0 }.into(), ours::Delivered.into()] {
        assert!(m.handle(&e, &ours::Rules).is_err());
    }
    for e in [
        ours::Submit { amount: AMOUNT }.into(),
        ours::Paid.into(),
        ours::Shipped.into(),
        ours::Delivered.into(),
    ] {
        m.handle(&e, &ours::Rules).unwrap();
    }
    assert_eq!((m.state(), *m.context()), (ours::OrderState::Completed, 4));

    let events = [
        hand::Event::Submit { amount: AMOUNT },
        hand::Event::Paid,
        hand::Event::Shipped,
        hand::Event::Delivered,
    ];
    let (mut a, mut b, mut r) = (hand::Machine::new(), hand::Machine::new(), rfsm::Machine::new());
    let mut s = stg::Order::default().uninitialized_state_machine().init();
    assert!(a.handle_event_first(&hand::Event::Submit { amount: 0 }).is_err());
    assert!(b.handle_tuple(&hand::Event::Submit { amount: 0 }).is_err());
    assert!(r.handle(&hand::Event::Submit { amount: 0 }).is_err());
    for e in &events {
        a.handle_event_first(e).unwrap();
        b.handle_tuple(e).unwrap();
        r.handle(e).unwrap();
        s.handle(e);
    }
    assert_eq!(
        (a.state, a.count, b.state, b.count, r.count),
        (hand::State::Completed, 4, hand::State::Completed, 4, 4)
    );
    assert_eq!((*s.state(), s.inner().count), (stg::State::Completed {}, 4));
    let mut sm = sml::OrderStateMachine::new(sml::Ctx { count: 0 });
    assert!(sm
        .process_event(sml::OrderEvents::Submit(sml::SubmitData { amount: 0 }))
        .is_err());
    for e in [
        sml::OrderEvents::Submit(sml::SubmitData { amount: AMOUNT }),
        sml::OrderEvents::Paid,
        sml::OrderEvents::Shipped,
        sml::OrderEvents::Delivered,
    ] {
        sm.process_event(e).unwrap();
    }
    assert_eq!((*sm.state(), sm.context().count), (sml::OrderStates::Completed, 4));

    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    rt.block_on(async {
        let mut m = ours::Order::with_state(ours::OrderState::Charging, 0);
        let ev = m.run_activity(&ours::Rules).await.unwrap();
        m.handle(&ev, &ours::Rules).unwrap();
        assert_eq!((m.state(), *m.context()), (ours::OrderState::Shipping, 1));
    });

    let ours_future = {
        let m = ours::Order::with_state(ours::OrderState::Charging, 0);
        let future = m.run_activity(&ours::Rules);
        std::mem::size_of_val(&future)
    };
    let hand_future = {
        let mut m = hand::Machine::new();
        let future = hand::charge_step(&mut m);
        std::mem::size_of_val(&future)
    };
    let rows: [(&str, usize); 14] = [
        ("ours: OrderState (state enum)", size_of::<ours::OrderState>()),
        ("ours: Order (machine = state + u32 context)", size_of::<ours::Order>()),
        (
            "ours: (OrderState, u32) for comparison",
            size_of::<(ours::OrderState, u32)>(),
        ),
        ("ours: OrderEvent", size_of::<ours::OrderEvent>()),
        (
            "ours: Result<Step, Rejected> (handle's return)",
            size_of::<Result<workflow::Step<ours::OrderState>, workflow::Rejected<ours::OrderState>>>(),
        ),
        ("ours: run_activity future (Charging)", ours_future),
        ("hand: Machine (both hand-written)", size_of::<hand::Machine>()),
        ("hand: charge_step future", hand_future),
        (
            "smlang: OrderStateMachine",
            size_of::<sml::OrderStateMachine<sml::Ctx>>(),
        ),
        (
            "statig: InitializedStateMachine (measured)",
            size_of::<statig::blocking::InitializedStateMachine<stg::Order>>(),
        ),
        (
            "statig: StateMachine (lazily initialized)",
            size_of::<statig::blocking::StateMachine<stg::Order>>(),
        ),
        ("rust-fsm: StateMachine alone", size_of::<rfsm::order::StateMachine>()),
        ("rust-fsm: wrapper (+ u32 counter)", size_of::<rfsm::Machine>()),
        ("hand: State", size_of::<hand::State>()),
    ];
    eprintln!("machine sizes (bytes):");
    for (name, size) in rows {
        eprintln!("  {name:<52} {size:>3}");
    }
}

fn main() {
    check_and_print_sizes();
    let rt = match tokio::runtime::Builder::new_current_thread().build() {
        Ok(rt) => rt,
        Err(e) => panic!("a current-thread runtime for the async group: {e}"),
    };
    let mut cases = cases(&rt);
    let mut c = Criterion::default().configure_from_args();
    for group in ["happy_path", "rejected", "async"] {
        let mut g = c.benchmark_group(group);
        for case in cases.iter_mut().filter(|case| case.group == group) {
            g.bench_function(case.name, |b| b.iter_custom(|iters| (case.time)(iters)));
        }
        g.finish();
    }
    c.final_summary();
    paired_rounds(&mut cases);
}
