//! The same statechart in three implementations, measured side by side in one
//! criterion run: ours (`workflow!`, run by the SCXML interpreter), finny 0.3
//! (the one peer crate with orthogonal regions) and a hand-written version
//! (an enum per region inside an enum per level, a `match` on the event).
//!
//! The machine: a compound state `Fulfilment` holds a parallel state
//! `Preparing` with two regions, Payment (`Charging --Paid--> PaymentDone`)
//! and Stock (`Reserving --Reserved--> StockDone`). Once both regions are
//! final the machine moves on to `Shipping` (the join), and
//! `Shipping --Shipped--> Delivered` leaves `Fulfilment` for a top-level final
//! state. `Cancel`, declared once on `Fulfilment`, applies in every child and
//! leads to `Cancelled`. Every transition (Paid, Reserved, the join, Shipped,
//! Cancel) runs an action that increments a `u32` counter in the context.
//!
//! How each implementation joins the regions:
//! - ours: `on done => Shipping` on the parallel state (the completion event
//!   `done.state.Preparing`, raised and handled inside the `Reserved`
//!   macrostep);
//! - hand-written: after a region moves, `if both regions are final` moves
//!   to `Shipping`, inside the same `handle` call;
//! - finny: a sub-machine cannot raise an event in its parent (its queue
//!   only takes its own events, which the parent forwards back down), and
//!   finny has no completion events, so the join is a parent event,
//!   `Prepared`, whose transition `Preparing -> Shipping` is guarded by
//!   "both regions of the sub-machine are in their final state". The driver
//!   dispatches it after `Reserved`: finny's scenario is 4 dispatches where
//!   the others take 3 calls. Likewise `Shipped` leaves the `Fulfilment`
//!   sub-machine through a transition of the top machine guarded by "the
//!   sub-machine is in `Shipping`" (a sub-machine cannot leave itself).
//!   Compound states are finny sub-machines: `Order { Fulfilment { Preparing
//!   { 2 regions }, Shipping }, Delivered, Cancelled }`; each machine has its
//!   own context, so the counter is the sum of the three.
//!
//! Groups (names are stable, compare across runs):
//! - `parallel/<impl>`: a fresh started machine (set up outside the timing),
//!   then Paid, Reserved (the join), Shipped -> Delivered; events and every
//!   result go through `black_box`. 4 transitions; 3 events delivered
//!   (finny: 4, the join event included).
//! - `chart_rejected/<impl>`: a fresh started machine in {Charging,
//!   Reserving} gets `Shipped`, which no active state accepts. (Not
//!   `rejected/`: `benches/machine.rs` owns `target/criterion/rejected/ours`,
//!   which `benches/summary.py` reads.)
//! - `chart_start/<impl>`: `new` + `start` (entering the initial configuration).
//!
//! Run: `cargo bench -p workflow-benches --bench statechart -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;
use std::mem::size_of;

use criterion::{BatchSize, Criterion};

// ---------------------------------------------------------------------------
// (1) ours: `workflow!`
// ---------------------------------------------------------------------------
mod ours {
    use workflow::prelude::*;

    workflow! {
        /// The fulfilment statechart of the benchmark.
        pub workflow Order {
            context u32;                          // transitions taken
            initial Fulfilment;
            events { Paid, Reserved, Shipped, Cancel }

            state Fulfilment {
                initial Preparing;
                on Cancel => Cancelled / count;   // in every child of Fulfilment
                parallel Preparing {
                    state Payment {
                        state Charging { on Paid => PaymentDone / count; }
                        final PaymentDone;
                    }
                    state Stock {
                        state Reserving { on Reserved => StockDone / count; }
                        final StockDone;
                    }
                    on done => Shipping / count_join; // the join
                }
                state Shipping { on Shipped => Delivered / count; }
            }
            final Delivered;
            final Cancelled;
        }
    }

    /// The handlers: one counting action.
    pub struct Rules;

    impl OrderHandlers for Rules {
        fn count(&self, count: &mut u32, _event: &OrderEvent) {
            *count += 1;
        }
        fn count_join(&self, count: &mut u32) {
            *count += 1;
        }
    }

    /// A fresh machine, started.
    pub fn started() -> Order {
        let mut m = Order::new(0);
        m.start(&Rules);
        m
    }
}

// ---------------------------------------------------------------------------
// (2) finny 0.3
// ---------------------------------------------------------------------------
mod finny_impl {
    use finny::decl::{BuiltFsm, FsmBuilder};
    use finny::inspect::null::InspectNull;
    use finny::timers::std::TimersStd;
    use finny::{finny_fsm, FsmCurrentState, FsmEventQueueVec, FsmFactory, FsmFrontend};

    /// Each machine's context: the transitions it took.
    #[derive(Default, Debug)]
    pub struct Ctx {
        pub transitions: u32,
    }

    // States.
    #[derive(Default)]
    pub struct Charging;
    #[derive(Default)]
    pub struct PaymentDone;
    #[derive(Default)]
    pub struct Reserving;
    #[derive(Default)]
    pub struct StockDone;
    #[derive(Default)]
    pub struct Shipping;
    #[derive(Default)]
    pub struct Delivered;
    #[derive(Default)]
    pub struct Cancelled;

    // Events.
    #[derive(Clone, Debug)]
    pub struct Paid;
    #[derive(Clone, Debug)]
    pub struct Reserved;
    #[derive(Clone, Debug)]
    pub struct Prepared;
    #[derive(Clone, Debug)]
    pub struct Shipped;
    #[derive(Clone, Debug)]
    pub struct Cancel;

    /// The parallel state: two regions.
    #[finny_fsm]
    fn preparing(mut fsm: FsmBuilder<Preparing, Ctx>) -> BuiltFsm {
        fsm.initial_states::<(Charging, Reserving)>();
        // region Payment
        fsm.state::<Charging>()
            .on_event::<Paid>()
            .transition_to::<PaymentDone>()
            .action(|_ev, ctx, _from, _to| ctx.context.transitions += 1);
        fsm.state::<PaymentDone>();
        // region Stock
        fsm.state::<Reserving>()
            .on_event::<Reserved>()
            .transition_to::<StockDone>()
            .action(|_ev, ctx, _from, _to| ctx.context.transitions += 1);
        fsm.state::<StockDone>();
        fsm.build()
    }

    /// The compound state `Fulfilment`: the parallel sub-machine, then Shipping.
    #[finny_fsm]
    fn fulfilment(mut fsm: FsmBuilder<Fulfilment, Ctx>) -> BuiltFsm {
        fsm.initial_state::<Preparing>();
        fsm.sub_machine::<Preparing>()
            .with_context(|_ctx| Ctx::default())
            .on_event::<Prepared>()
            .transition_to::<Shipping>()
            .guard(|_ev, _ctx, states| {
                let preparing: &Preparing = states.as_ref();
                preparing.get_current_states()
                    == [
                        FsmCurrentState::State(PreparingCurrentState::PaymentDone),
                        FsmCurrentState::State(PreparingCurrentState::StockDone),
                    ]
            })
            .action(|_ev, ctx, _from, _to| ctx.context.transitions += 1);
        fsm.state::<Shipping>();
        fsm.build()
    }

    /// The top machine: Fulfilment, and the two finals.
    #[finny_fsm]
    fn order(mut fsm: FsmBuilder<Order, Ctx>) -> BuiltFsm {
        fsm.initial_state::<Fulfilment>();
        fsm.sub_machine::<Fulfilment>()
            .with_context(|_ctx| Ctx::default())
            .on_event::<Cancel>()
            .transition_to::<Cancelled>()
            .action(|_ev, ctx, _from, _to| ctx.context.transitions += 1);
        fsm.sub_machine::<Fulfilment>()
            .on_event::<Shipped>()
            .transition_to::<Delivered>()
            .guard(|_ev, _ctx, states| {
                let fulfilment: &Fulfilment = states.as_ref();
                fulfilment.get_current_states()[0] == FsmCurrentState::State(FulfilmentCurrentState::Shipping)
            })
            .action(|_ev, ctx, _from, _to| ctx.context.transitions += 1);
        fsm.state::<Delivered>();
        fsm.state::<Cancelled>();
        fsm.build()
    }

    /// The frontend `FsmFactory::new` builds: a `VecDeque` queue, no
    /// inspection, std timers.
    pub type Machine = FsmFrontend<Order, FsmEventQueueVec<Order>, InspectNull, TimersStd<Order>>;

    /// A fresh machine, started.
    pub fn started() -> Machine {
        let mut m = Order::new(Ctx::default()).expect("finny machine");
        m.start().expect("finny start");
        m
    }

    /// The region events, wrapped for the top machine.
    pub fn paid() -> OrderEvents {
        OrderEvents::from(FulfilmentEvents::from(PreparingEvents::from(Paid)))
    }
    pub fn reserved() -> OrderEvents {
        OrderEvents::from(FulfilmentEvents::from(PreparingEvents::from(Reserved)))
    }
    pub fn prepared() -> OrderEvents {
        OrderEvents::from(FulfilmentEvents::from(Prepared))
    }
    pub fn shipped() -> OrderEvents {
        OrderEvents::from(Shipped)
    }
    pub fn cancel() -> OrderEvents {
        OrderEvents::from(Cancel)
    }

    /// The counters of the three machines.
    pub fn transitions(m: &Machine) -> u32 {
        let fulfilment: &Fulfilment = m.get_state();
        let preparing: &Preparing = fulfilment.get_state();
        m.context.transitions + fulfilment.context.transitions + preparing.context.transitions
    }

    pub fn is_delivered(m: &Machine) -> bool {
        m.get_current_states()[0] == FsmCurrentState::State(OrderCurrentState::Delivered)
    }

    pub fn is_cancelled(m: &Machine) -> bool {
        m.get_current_states()[0] == FsmCurrentState::State(OrderCurrentState::Cancelled)
    }
}

// ---------------------------------------------------------------------------
// (3) hand-written: an enum per region, an enum per level, one `match`
// ---------------------------------------------------------------------------
mod hand {
    /// Region Payment.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Payment {
        Charging,
        Done,
    }

    /// Region Stock.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Stock {
        Reserving,
        Done,
    }

    /// The children of `Fulfilment`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Fulfilment {
        /// The parallel state: both regions at once.
        Preparing(Payment, Stock),
        Shipping,
    }

    /// The top level.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum State {
        Fulfilment(Fulfilment),
        Delivered,
        Cancelled,
    }

    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Event {
        Paid,
        Reserved,
        Shipped,
        Cancel,
    }

    /// The event was not accepted; nothing changed.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct Rejected {
        pub state: State,
        pub event: Event,
    }

    pub struct Order {
        pub state: State,
        pub transitions: u32,
    }

    impl Order {
        pub fn new() -> Self {
            Order {
                state: State::Fulfilment(Fulfilment::Preparing(Payment::Charging, Stock::Reserving)),
                transitions: 0,
            }
        }

        /// One event; returns the new state.
        pub fn handle(&mut self, event: &Event) -> Result<State, Rejected> {
            use Fulfilment::*;
            match (&mut self.state, event) {
                // `Cancel` on the compound state: every child of Fulfilment.
                (State::Fulfilment(_), Event::Cancel) => {
                    self.transitions += 1;
                    self.state = State::Cancelled;
                    return Ok(self.state);
                }
                (State::Fulfilment(Preparing(payment @ Payment::Charging, _)), Event::Paid) => {
                    *payment = Payment::Done;
                    self.transitions += 1;
                }
                (State::Fulfilment(Preparing(_, stock @ Stock::Reserving)), Event::Reserved) => {
                    *stock = Stock::Done;
                    self.transitions += 1;
                }
                (State::Fulfilment(Shipping), Event::Shipped) => {
                    self.transitions += 1;
                    self.state = State::Delivered;
                    return Ok(self.state);
                }
                _ => {
                    return Err(Rejected {
                        state: self.state,
                        event: *event,
                    })
                }
            }
            // The join: both regions final.
            if self.state == State::Fulfilment(Preparing(Payment::Done, Stock::Done)) {
                self.transitions += 1;
                self.state = State::Fulfilment(Shipping);
            }
            Ok(self.state)
        }
    }
}

/// Every implementation takes the same path and counts the same transitions.
fn check() {
    let mut m = ours::started();
    m.handle(&ours::OrderEvent::Paid, &ours::Rules).unwrap();
    m.handle(&ours::OrderEvent::Reserved, &ours::Rules).unwrap();
    assert!(m.is_in(ours::OrderState::Shipping));
    m.handle(&ours::OrderEvent::Shipped, &ours::Rules).unwrap();
    assert!(m.is_in(ours::OrderState::Delivered) && *m.context() == 4);
    let mut m = ours::started();
    m.handle(&ours::OrderEvent::Shipped, &ours::Rules).unwrap_err();
    m.handle(&ours::OrderEvent::Paid, &ours::Rules).unwrap();
    m.handle(&ours::OrderEvent::Cancel, &ours::Rules).unwrap();
    assert!(m.is_in(ours::OrderState::Cancelled) && *m.context() == 2);

    let mut m = finny_impl::started();
    m.dispatch(finny_impl::paid()).unwrap();
    m.dispatch(finny_impl::prepared()).unwrap_err(); // the guard: Stock is not done
    m.dispatch(finny_impl::reserved()).unwrap();
    m.dispatch(finny_impl::prepared()).unwrap();
    m.dispatch(finny_impl::shipped()).unwrap();
    assert!(finny_impl::is_delivered(&m) && finny_impl::transitions(&m) == 4);
    let mut m = finny_impl::started();
    m.dispatch(finny_impl::shipped()).unwrap_err();
    m.dispatch(finny_impl::paid()).unwrap();
    m.dispatch(finny_impl::cancel()).unwrap();
    assert!(finny_impl::is_cancelled(&m) && finny_impl::transitions(&m) == 2);

    let mut m = hand::Order::new();
    m.handle(&hand::Event::Paid).unwrap();
    m.handle(&hand::Event::Reserved).unwrap();
    assert_eq!(m.state, hand::State::Fulfilment(hand::Fulfilment::Shipping));
    m.handle(&hand::Event::Shipped).unwrap();
    assert!(m.state == hand::State::Delivered && m.transitions == 4);
    let mut m = hand::Order::new();
    m.handle(&hand::Event::Shipped).unwrap_err();
    m.handle(&hand::Event::Paid).unwrap();
    m.handle(&hand::Event::Cancel).unwrap();
    assert!(m.state == hand::State::Cancelled && m.transitions == 2);
}

fn sizes() {
    eprintln!("size_of, machine with its context:");
    eprintln!(
        "  ours  Order                          {:>4} bytes",
        size_of::<ours::Order>()
    );
    eprintln!(
        "  ours  Configuration (state())        {:>4} bytes",
        std::mem::size_of_val(&ours::started().state())
    );
    eprintln!(
        "  finny FsmFrontend (new(): queue, timers) {:>2} bytes",
        size_of::<finny_impl::Machine>()
    );
    eprintln!(
        "  finny FsmBackendImpl<Order>          {:>4} bytes",
        size_of::<finny::FsmBackendImpl<finny_impl::Order>>()
    );
    eprintln!(
        "  hand  Order                          {:>4} bytes",
        size_of::<hand::Order>()
    );
    eprintln!(
        "  hand  State                          {:>4} bytes",
        size_of::<hand::State>()
    );
}

fn parallel(c: &mut Criterion) {
    let mut g = c.benchmark_group("parallel");
    g.bench_function("ours", |b| {
        b.iter_batched_ref(
            ours::started,
            |m| {
                black_box(m.handle(black_box(&ours::OrderEvent::Paid), &ours::Rules)).ok();
                black_box(m.handle(black_box(&ours::OrderEvent::Reserved), &ours::Rules)).ok();
                black_box(m.handle(black_box(&ours::OrderEvent::Shipped), &ours::Rules)).ok();
            },
            BatchSize::SmallInput,
        )
    });
    g.bench_function("finny", |b| {
        b.iter_batched_ref(
            finny_impl::started,
            |m| {
                black_box(m.dispatch(black_box(finny_impl::paid()))).ok();
                black_box(m.dispatch(black_box(finny_impl::reserved()))).ok();
                black_box(m.dispatch(black_box(finny_impl::prepared()))).ok();
                black_box(m.dispatch(black_box(finny_impl::shipped()))).ok();
            },
            BatchSize::SmallInput,
        )
    });
    g.bench_function("hand", |b| {
        b.iter_batched_ref(
            hand::Order::new,
            |m| {
                black_box(m.handle(black_box(&hand::Event::Paid))).ok();
                black_box(m.handle(black_box(&hand::Event::Reserved))).ok();
                black_box(m.handle(black_box(&hand::Event::Shipped))).ok();
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

fn rejected(c: &mut Criterion) {
    let mut g = c.benchmark_group("chart_rejected");
    g.bench_function("ours", |b| {
        b.iter_batched_ref(
            ours::started,
            |m| black_box(m.handle(black_box(&ours::OrderEvent::Shipped), &ours::Rules)).is_err(),
            BatchSize::SmallInput,
        )
    });
    g.bench_function("finny", |b| {
        b.iter_batched_ref(
            finny_impl::started,
            |m| black_box(m.dispatch(black_box(finny_impl::shipped()))).is_err(),
            BatchSize::SmallInput,
        )
    });
    g.bench_function("hand", |b| {
        b.iter_batched_ref(
            hand::Order::new,
            |m| black_box(m.handle(black_box(&hand::Event::Shipped))).is_err(),
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

fn start(c: &mut Criterion) {
    let mut g = c.benchmark_group("chart_start");
    g.bench_function("ours", |b| b.iter(|| black_box(ours::started())));
    g.bench_function("finny", |b| b.iter(|| black_box(finny_impl::started())));
    g.bench_function("hand", |b| b.iter(|| black_box(hand::Order::new())));
    g.finish();
}

fn main() {
    check();
    sizes();
    let mut c = Criterion::default().configure_from_args();
    parallel(&mut c);
    rejected(&mut c);
    start(&mut c);
    c.final_summary();
}
