//! The engine: instances, their mailboxes, queries, cancellation, errors,
//! shutdown and scale. Activities, timers and compensation have files of
//! their own (`engine_activities.rs`, `engine_timers.rs`,
//! `engine_compensation.rs`).

mod common;

use std::future::Future;
use std::pin::pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::Duration;

use common::*;
use tokio::time::Instant;
use workflow::prelude::*;
use workflow::{Config, Engine, EngineError, Record, RecordKind, Status};

/// The numbers a counter instance has seen, in order.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Tally {
    pub seen: Vec<u32>,
}

workflow! {
    /// A counter: notes numbers, panics on `13` (guard) and on `Boom`
    /// (action), and can do some slow work.
    pub workflow Counter {
        context Tally;
        initial Open;
        events { Add { n: u32 }, Boom, Work, Close }

        state Open {
            on Add if allowed / note;
            on Boom / explode;
            on Work => Working;
            on Close => Closed;
        }
        state Working {
            invoke slow -> u32 {
                done => Open / note_done;
                error => Open;
            }
        }
        final Closed;
    }
}

/// Counter handlers. Every number any instance notes also goes to `log`, so
/// a test can see what was handled after the instances are gone.
#[derive(Default)]
struct Tracker {
    log: Mutex<Vec<u32>>,
    /// When set, `slow` waits until this many `slow` calls are running at
    /// once: it only passes if the instances really run concurrently.
    rendezvous: Option<tokio::sync::Barrier>,
    /// Set when the tracker is dropped.
    _dropped: DropFlag,
}

/// Sets its flag when dropped.
#[derive(Default)]
struct DropFlag(Option<Arc<std::sync::atomic::AtomicBool>>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        if let Some(flag) = &self.0 {
            flag.store(true, Ordering::SeqCst);
        }
    }
}

impl Tracker {
    fn log(&self) -> Vec<u32> {
        self.log.lock().unwrap().clone()
    }
}

impl CounterHandlers for Tracker {
    fn allowed(&self, _ctx: &Tally, event: &Add) -> bool {
        if event.n == 13 {
            panic!("unlucky 13");
        }
        event.n != 0
    }
    fn note(&self, ctx: &mut Tally, event: &Add) {
        ctx.seen.push(event.n);
        self.log.lock().unwrap().push(event.n);
    }
    fn explode(&self, _ctx: &mut Tally, _event: &Boom) {
        panic!("boom");
    }
    fn note_done(&self, ctx: &mut Tally, output: &u32) {
        ctx.seen.push(*output);
        self.log.lock().unwrap().push(*output);
    }
    async fn slow(&self, ctx: &Tally, _call: &ActivityCall) -> Result<u32, ActivityError> {
        if let Some(barrier) = &self.rendezvous {
            barrier.wait().await;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        Ok(ctx.seen.len() as u32 + 1000)
    }
}

fn add(n: u32) -> CounterEvent {
    Add { n }.into()
}

/// Polls `future` exactly once, without yielding to the runtime: whether it
/// is still pending.
async fn is_pending<F: Future>(future: std::pin::Pin<&mut F>) -> bool {
    let mut future = Some(future);
    std::future::poll_fn(|cx| Poll::Ready(future.take().unwrap().poll(cx).is_pending())).await
}

#[tokio::test(start_paused = true)]
async fn start_send_state_snapshot_and_wait() {
    let engine = Engine::<Counter, Tracker>::with_config(Tracker::default(), exact());
    engine.start("c", Tally { seen: vec![7] }).await.unwrap();
    assert_eq!(engine.state("c").await.unwrap(), CounterState::Open);
    assert_eq!(engine.status("c").await.unwrap(), Status::Running(CounterState::Open));

    engine.send("c", add(1)).await.unwrap();
    tokio::time::sleep(ms(250)).await;
    engine.send("c", add(2)).await.unwrap();
    let snapshot = engine.snapshot("c").await.unwrap();
    assert_eq!(snapshot.status, Status::Running(CounterState::Open));
    assert_eq!(snapshot.context, Tally { seen: vec![7, 1, 2] });
    assert_eq!(
        snapshot.history,
        [
            rec(ms(0), RecordKind::Started("Open".into())),
            rec(ms(0), transition("Open", "Add", "Open")),
            rec(ms(250), transition("Open", "Add", "Open")),
        ]
    );

    engine.send("c", CounterEvent::Close).await.unwrap();
    assert_eq!(engine.wait("c").await.unwrap(), CounterState::Closed);
    assert_eq!(
        engine.status("c").await.unwrap(),
        Status::Finished(CounterState::Closed)
    );
    // A finished instance still answers snapshots, and waiting again gives
    // the same answer.
    let snapshot = engine.snapshot("c").await.unwrap();
    assert_eq!(snapshot.status, Status::Finished(CounterState::Closed));
    assert_eq!(
        snapshot.history.last(),
        Some(&rec(ms(250), transition("Open", "Close", "Closed")))
    );
    assert_eq!(engine.wait("c").await.unwrap(), CounterState::Closed);
    assert_eq!(engine.handlers().log(), [1, 2]);
}

#[tokio::test(start_paused = true)]
async fn the_history_keeps_the_newest_records() {
    let config = Config { history: 3, ..exact() };
    let engine = Engine::<Counter, Tracker>::with_config(Tracker::default(), config);
    engine.start("c", Tally::default()).await.unwrap();
    for n in 1..=5 {
        engine.send("c", add(n)).await.unwrap();
    }
    let snapshot = engine.snapshot("c").await.unwrap();
    // Started and the first two transitions went; the context has all five.
    let add = || rec(ms(0), transition("Open", "Add", "Open"));
    assert_eq!(snapshot.history, [add(), add(), add()]);
    assert_eq!(snapshot.context.seen, [1, 2, 3, 4, 5]);
}

#[tokio::test(start_paused = true)]
async fn an_order_runs_through_its_activities_to_completion() {
    let engine = Engine::<Order, Services>::with_config(Services::default(), exact());
    engine.start("o-1", OrderCtx::default()).await.unwrap();
    assert_eq!(engine.state("o-1").await.unwrap(), OrderState::Start);
    engine
        .send("o-1", SubmitOrder { id: 1, amount: 10 }.into())
        .await
        .unwrap();
    // charge_payment and reserve_stock run by themselves; Shipping waits.
    tokio::time::sleep(ms(10)).await;
    assert_eq!(engine.state("o-1").await.unwrap(), OrderState::Shipping);
    engine.send("o-1", OrderEvent::ShipmentReady).await.unwrap();
    engine.send("o-1", OrderEvent::OrderDelivered).await.unwrap();
    assert_eq!(engine.wait("o-1").await.unwrap(), OrderState::Completed);

    let snapshot = engine.snapshot("o-1").await.unwrap();
    assert_eq!(snapshot.status, Status::Finished(OrderState::Completed));
    assert_eq!(snapshot.context.receipt.as_deref(), Some("receipt-1-attempt-1"));
    assert_eq!(
        snapshot.context.log,
        ["enter Charging", "exit Charging", "keep receipt"]
    );
    let at = ms(10);
    assert_eq!(
        snapshot.history,
        [
            rec(ms(0), RecordKind::Started("Start".into())),
            rec(ms(0), transition("Start", "SubmitOrder", "Charging")),
            rec(
                ms(0),
                RecordKind::AttemptStarted {
                    activity: "charge_payment",
                    attempt: 1
                }
            ),
            rec(
                ms(0),
                RecordKind::AttemptEnded {
                    activity: "charge_payment",
                    attempt: 1,
                    duration: ms(0),
                    error: None
                }
            ),
            rec(ms(0), transition("Charging", "ChargePaymentDone", "Reserving")),
            rec(
                ms(0),
                RecordKind::AttemptStarted {
                    activity: "reserve_stock",
                    attempt: 1
                }
            ),
            rec(
                ms(0),
                RecordKind::AttemptEnded {
                    activity: "reserve_stock",
                    attempt: 1,
                    duration: ms(0),
                    error: None
                }
            ),
            rec(ms(0), transition("Reserving", "ReserveStockDone", "Shipping")),
            rec(
                ms(0),
                RecordKind::TimerSet {
                    event: "ShippingAfter48h",
                    delay: Duration::from_secs(48 * 3600)
                }
            ),
            rec(at, transition("Shipping", "ShipmentReady", "InTransit")),
            rec(at, transition("InTransit", "OrderDelivered", "Completed")),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn each_instance_handles_its_events_in_order() {
    let engine = Engine::<Counter, Tracker>::with_config(Tracker::default(), exact());
    engine.start("a", Tally::default()).await.unwrap();
    engine.start("b", Tally::default()).await.unwrap();
    // Sixty events each, interleaved, queued without ever yielding (and
    // clear of 13, which the guard panics on).
    for n in 1..=60 {
        engine.try_send("a", add(100 + n)).unwrap();
        engine.try_send("b", add(1000 + n)).unwrap();
    }
    let a = engine.snapshot("a").await.unwrap();
    let b = engine.snapshot("b").await.unwrap();
    assert_eq!(a.context.seen, (101..=160).collect::<Vec<u32>>());
    assert_eq!(b.context.seen, (1001..=1060).collect::<Vec<u32>>());
    let transitions = |history: &[Record]| {
        history
            .iter()
            .filter(|r| matches!(r.kind, RecordKind::Transition { event: "Add", .. }))
            .count()
    };
    assert_eq!((transitions(&a.history), transitions(&b.history)), (60, 60));

    // Each instance's numbers reached the shared log in order too.
    let log = engine.handlers().log();
    assert_eq!(
        log.iter().copied().filter(|&n| n < 1000).collect::<Vec<_>>(),
        a.context.seen
    );
    assert_eq!(
        log.iter().copied().filter(|&n| n > 1000).collect::<Vec<_>>(),
        b.context.seen
    );

    // A rejected event in the middle is recorded where it came, and the
    // events after it are still handled.
    engine.try_send("a", add(161)).unwrap();
    engine.try_send("a", add(0)).unwrap(); // the guard says no
    engine.try_send("a", add(162)).unwrap();
    let a = engine.snapshot("a").await.unwrap();
    assert_eq!(a.context.seen[58..], [159, 160, 161, 162]);
    let tail: Vec<&RecordKind> = a.history[a.history.len() - 3..].iter().map(|r| &r.kind).collect();
    assert_eq!(
        tail,
        [
            &transition("Open", "Add", "Open"),
            &RecordKind::Rejected {
                state: "Open".into(),
                event: "Add"
            },
            &transition("Open", "Add", "Open"),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn instances_run_concurrently() {
    const N: usize = 50;
    let tracker = Tracker {
        rendezvous: Some(tokio::sync::Barrier::new(N)),
        ..Tracker::default()
    };
    let engine = Engine::<Counter, Tracker>::with_config(tracker, exact());
    let began = Instant::now();
    for i in 0..N {
        let id = format!("c-{i}");
        engine.start(id.as_str(), Tally { seen: vec![i as u32] }).await.unwrap();
        engine.send(&id, CounterEvent::Work).await.unwrap();
    }
    // Every `slow` waits for all N to be running at once, then sleeps 1s:
    // run one after another, they would never pass the barrier.
    let all = async {
        for i in 0..N {
            let id = format!("c-{i}");
            let mut status = engine.subscribe(&id).unwrap();
            status
                .wait_for(|s| *s == Status::Running(CounterState::Open))
                .await
                .unwrap();
        }
    };
    tokio::time::timeout(Duration::from_secs(60), all)
        .await
        .expect("the instances did not run concurrently");
    assert_eq!(began.elapsed(), Duration::from_secs(1));
    for i in 0..N {
        let snapshot = engine.snapshot(&format!("c-{i}")).await.unwrap();
        assert_eq!(snapshot.context.seen, [i as u32, 1001]);
    }
}

#[tokio::test(start_paused = true)]
async fn a_full_mailbox_refuses_try_send_and_send_waits_for_room() {
    for capacity in [1u32, 2] {
        let config = Config {
            mailbox: capacity as usize,
            ..exact()
        };
        let engine = Engine::<Counter, Tracker>::with_config(Tracker::default(), config);
        engine.start("m", Tally::default()).await.unwrap();
        // On this current-thread runtime the instance runs only when the
        // test yields: until then, what is sent stays in the mailbox.
        for n in 1..=capacity {
            engine.try_send("m", add(n)).unwrap();
        }
        assert_eq!(engine.try_send("m", add(50)), Err(EngineError::MailboxFull("m".into())));
        assert_eq!(
            EngineError::MailboxFull("m".into()).to_string(),
            "the mailbox of instance `m` is full"
        );

        // An awaiting send waits for room: it has not taken a place yet.
        let mut waiting = pin!(engine.send("m", add(99)));
        assert!(is_pending(waiting.as_mut()).await);
        assert_eq!(engine.try_send("m", add(51)), Err(EngineError::MailboxFull("m".into())));
        // Awaited, it gets its place once the instance drains, and returns
        // once its own event has been handled.
        waiting.await.unwrap();
        let mut expected: Vec<u32> = (1..=capacity).collect();
        expected.push(99);
        assert_eq!(engine.handlers().log(), expected, "capacity {capacity}");

        // Drained, the mailbox takes events again.
        engine.try_send("m", add(100)).unwrap();
        expected.push(100);
        assert_eq!(engine.snapshot("m").await.unwrap().context.seen, expected);
    }
}

/// Many tasks on a multi-thread runtime sending to one instance whose
/// mailbox holds four: every `send` returns (none waits forever for room
/// that was made while it waited), and every event is handled once.
/// Repeated, each round under a timeout, so that a lost wake-up fails the
/// test instead of hanging it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_waiting_send_returns_once_there_is_room() {
    const SENDERS: u32 = 1_000;
    for round in 0..5 {
        let config = Config { mailbox: 4, ..exact() };
        let engine = Engine::<Counter, Tracker>::with_config(Tracker::default(), config);
        engine.start("busy", Tally::default()).await.unwrap();
        let senders: Vec<_> = (0..SENDERS)
            .map(|i| {
                let engine = engine.clone();
                tokio::spawn(async move { engine.send("busy", add(100 + i)).await })
            })
            .collect();
        let all = async {
            for sender in senders {
                sender.await.unwrap().unwrap();
            }
        };
        if tokio::time::timeout(Duration::from_secs(30), all).await.is_err() {
            let handled = engine.handlers().log().len();
            panic!("round {round}: some sends never returned ({handled} of {SENDERS} events handled)");
        }
        let mut seen = engine.snapshot("busy").await.unwrap().context.seen;
        seen.sort_unstable();
        assert_eq!(seen, (100..100 + SENDERS).collect::<Vec<_>>(), "round {round}");
    }
}

#[tokio::test(start_paused = true)]
async fn cancel_stops_an_instance_and_its_activity() {
    let services = Arc::new(Services::slow_payments(Duration::from_secs(5)));
    let engine = Engine::<Order, Arc<Services>>::with_config(services.clone(), exact());
    engine.start("o", OrderCtx::default()).await.unwrap();
    engine
        .send("o", SubmitOrder { id: 1, amount: 10 }.into())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;

    engine.cancel("o").await.unwrap();
    assert_eq!(
        engine.status("o").await.unwrap(),
        Status::Cancelled(OrderState::Charging)
    );
    assert_eq!(engine.state("o").await.unwrap(), OrderState::Charging);
    assert_eq!(engine.wait("o").await, Err(EngineError::Cancelled("o".into())));
    assert_eq!(
        engine.list(),
        [("o".to_string(), Status::Cancelled(OrderState::Charging))]
    );

    // The payment never completes, and the instance takes nothing more.
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(services.payment_calls.load(Ordering::SeqCst), 1);
    assert_eq!(services.payments_completed.load(Ordering::SeqCst), 0);
    assert_eq!(
        engine.status("o").await.unwrap(),
        Status::Cancelled(OrderState::Charging)
    );
    let stopped = Err(EngineError::Stopped("o".into()));
    assert_eq!(engine.send("o", OrderEvent::Cancel).await, stopped);
    assert_eq!(engine.try_send("o", OrderEvent::Ping), stopped);
    assert_eq!(engine.cancel("o").await, stopped);
    assert_eq!(engine.wait("o").await, Err(EngineError::Cancelled("o".into())));
}

#[tokio::test(start_paused = true)]
async fn cancelling_a_finished_or_failed_instance_keeps_its_outcome() {
    let engine = Engine::<Counter, Tracker>::with_config(Tracker::default(), exact());
    engine.start("done", Tally::default()).await.unwrap();
    engine.send("done", CounterEvent::Close).await.unwrap();
    engine.start("failed", Tally::default()).await.unwrap();
    assert!(engine.send("failed", CounterEvent::Boom).await.is_err());

    assert_eq!(engine.cancel("done").await, Err(EngineError::Stopped("done".into())));
    assert_eq!(
        engine.cancel("failed").await,
        Err(EngineError::Stopped("failed".into()))
    );
    assert_eq!(engine.wait("done").await, Ok(CounterState::Closed));
    assert_eq!(
        engine.wait("failed").await,
        Err(EngineError::InstanceFailed {
            id: "failed".into(),
            reason: "boom".into()
        })
    );
    let history = engine.snapshot("done").await.unwrap().history;
    assert!(!history.iter().any(|r| r.kind == RecordKind::Cancelled), "{history:?}");
}

#[tokio::test(start_paused = true)]
async fn list_and_list_where_report_every_instance() {
    let engine = Engine::<Counter, Tracker>::with_config(Tracker::default(), exact());
    for id in ["open-1", "open-2", "closed", "working"] {
        engine.start(id, Tally::default()).await.unwrap();
    }
    engine.send("closed", CounterEvent::Close).await.unwrap();
    engine.send("working", CounterEvent::Work).await.unwrap();

    let mut all = engine.list();
    all.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        all,
        [
            ("closed".to_string(), Status::Finished(CounterState::Closed)),
            ("open-1".to_string(), Status::Running(CounterState::Open)),
            ("open-2".to_string(), Status::Running(CounterState::Open)),
            ("working".to_string(), Status::Running(CounterState::Working)),
        ]
    );
    let mut open = engine.list_where(|s| s.is_running() && *s.state() == CounterState::Open);
    open.sort();
    assert_eq!(open, ["open-1", "open-2"]);
    assert_eq!(engine.list_where(|s| !s.is_running()), ["closed"]);
    assert_eq!(engine.list_where(|s| *s.state() == CounterState::Working), ["working"]);

    // After its activity (1s), `working` is back in Open.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut open = engine.list_where(|s| s.is_running() && *s.state() == CounterState::Open);
    open.sort();
    assert_eq!(open, ["open-1", "open-2", "working"]);
}

#[tokio::test(start_paused = true)]
async fn every_error_is_typed() {
    let engine = Engine::<Order, Services>::with_config(Services::default(), exact());
    engine.start("a", OrderCtx::default()).await.unwrap();

    // UnknownInstance, from every call that names an instance.
    let unknown = || EngineError::UnknownInstance("nope".into());
    assert_eq!(engine.send("nope", OrderEvent::Cancel).await, Err(unknown()));
    assert_eq!(engine.try_send("nope", OrderEvent::Cancel), Err(unknown()));
    assert_eq!(engine.status("nope").await, Err(unknown()));
    assert_eq!(engine.state("nope").await, Err(unknown()));
    assert_eq!(engine.snapshot("nope").await.err(), Some(unknown()));
    assert_eq!(engine.wait("nope").await, Err(unknown()));
    assert_eq!(engine.cancel("nope").await, Err(unknown()));
    assert!(engine.subscribe("nope").is_err());
    assert_eq!(unknown().to_string(), "no instance `nope`");

    // DuplicateId.
    assert_eq!(
        engine.start("a", OrderCtx::default()).await,
        Err(EngineError::DuplicateId("a".into()))
    );
    assert_eq!(
        EngineError::DuplicateId("a".into()).to_string(),
        "an instance `a` already exists"
    );

    // Rejected, with the state and the event; recorded, nothing changed.
    let rejected = engine.send("a", OrderEvent::OrderDelivered).await.unwrap_err();
    assert_eq!(
        rejected,
        EngineError::Rejected {
            id: "a".into(),
            state: "Start".into(),
            event: "OrderDelivered"
        }
    );
    assert_eq!(
        rejected.to_string(),
        "instance `a`: event `OrderDelivered` is not accepted in state `Start`"
    );
    assert_eq!(engine.state("a").await.unwrap(), OrderState::Start);
    let snapshot = engine.snapshot("a").await.unwrap();
    assert_eq!(
        snapshot.history.last().unwrap().kind,
        RecordKind::Rejected {
            state: "Start".into(),
            event: "OrderDelivered"
        }
    );

    // Stopped: a finished instance takes no more events.
    engine.send("a", SubmitOrder { id: 1, amount: 1 }.into()).await.unwrap();
    tokio::time::sleep(ms(1)).await;
    engine.send("a", OrderEvent::ShipmentReady).await.unwrap();
    engine.send("a", OrderEvent::OrderDelivered).await.unwrap();
    assert_eq!(engine.wait("a").await.unwrap(), OrderState::Completed);
    assert_eq!(
        engine.send("a", OrderEvent::Cancel).await,
        Err(EngineError::Stopped("a".into()))
    );
    assert_eq!(EngineError::Stopped("a".into()).to_string(), "instance `a` has stopped");

    // Stopped and Cancelled: a cancelled instance.
    engine.start("b", OrderCtx::default()).await.unwrap();
    engine.cancel("b").await.unwrap();
    assert_eq!(
        engine.send("b", OrderEvent::Cancel).await,
        Err(EngineError::Stopped("b".into()))
    );
    assert_eq!(engine.wait("b").await, Err(EngineError::Cancelled("b".into())));
    assert_eq!(
        EngineError::Cancelled("b".into()).to_string(),
        "instance `b` was cancelled"
    );

    // MailboxFull: a mailbox of one, filled without yielding.
    let small = Engine::<Order, Services>::with_config(Services::default(), Config { mailbox: 1, ..exact() });
    small.start("m", OrderCtx::default()).await.unwrap();
    small.try_send("m", OrderEvent::Ping).unwrap();
    assert_eq!(
        small.try_send("m", OrderEvent::Ping),
        Err(EngineError::MailboxFull("m".into()))
    );

    // ShutDown: nothing new once shut down.
    engine.start("c", OrderCtx::default()).await.unwrap();
    engine.shutdown().await;
    assert_eq!(engine.start("d", OrderCtx::default()).await, Err(EngineError::ShutDown));
    assert_eq!(engine.send("c", OrderEvent::Cancel).await, Err(EngineError::ShutDown));
    assert_eq!(engine.try_send("c", OrderEvent::Cancel), Err(EngineError::ShutDown));
    assert_eq!(engine.cancel("c").await, Err(EngineError::ShutDown));
    assert_eq!(EngineError::ShutDown.to_string(), "the engine is shut down");
    // Queries still answer.
    assert_eq!(
        engine.status("a").await.unwrap(),
        Status::Finished(OrderState::Completed)
    );
    assert_eq!(engine.state("c").await.unwrap(), OrderState::Start);
    assert_eq!(engine.list().len(), 3);
}

#[tokio::test(start_paused = true)]
async fn a_panicking_guard_or_action_fails_only_its_instance() {
    let engine = Engine::<Counter, Tracker>::with_config(Tracker::default(), exact());
    for id in ["guard", "action", "healthy"] {
        engine.start(id, Tally::default()).await.unwrap();
    }
    engine.send("guard", add(1)).await.unwrap();

    // A guard panics.
    let failed = |id: &str, reason: &str| EngineError::InstanceFailed {
        id: id.into(),
        reason: reason.into(),
    };
    assert_eq!(engine.send("guard", add(13)).await, Err(failed("guard", "unlucky 13")));
    assert_eq!(engine.wait("guard").await, Err(failed("guard", "unlucky 13")));
    assert_eq!(
        engine.status("guard").await.unwrap(),
        Status::Failed {
            state: CounterState::Open,
            reason: "unlucky 13".into()
        }
    );
    assert_eq!(
        failed("guard", "unlucky 13").to_string(),
        "instance `guard` failed: unlucky 13"
    );
    let snapshot = engine.snapshot("guard").await.unwrap();
    assert_eq!(snapshot.context.seen, [1]);
    assert_eq!(
        snapshot.history.last().unwrap().kind,
        RecordKind::Panicked("unlucky 13".into())
    );
    assert_eq!(
        engine.send("guard", add(2)).await,
        Err(EngineError::Stopped("guard".into()))
    );

    // An action panics (queued with try_send: `wait` reports it).
    engine.try_send("action", CounterEvent::Boom).unwrap();
    assert_eq!(engine.wait("action").await, Err(failed("action", "boom")));
    assert!(matches!(engine.status("action").await.unwrap(), Status::Failed { .. }));

    // The other instance, and the engine, go on.
    engine.send("healthy", add(5)).await.unwrap();
    engine.send("healthy", CounterEvent::Close).await.unwrap();
    assert_eq!(engine.wait("healthy").await, Ok(CounterState::Closed));
    engine.start("later", Tally::default()).await.unwrap();
    engine.send("later", add(6)).await.unwrap();
    assert_eq!(engine.handlers().log(), [1, 5, 6]);
}

#[tokio::test(start_paused = true)]
async fn shutdown_handles_every_accepted_event() {
    let config = Config { mailbox: 64, ..exact() };
    let engine = Engine::<Counter, Tracker>::with_config(Tracker::default(), config);
    let ids = ["s-0", "s-1", "s-2"];
    for id in ids {
        engine.start(id, Tally::default()).await.unwrap();
    }
    engine.start("busy", Tally::default()).await.unwrap();
    engine.send("busy", CounterEvent::Work).await.unwrap();

    // 40 events per instance, queued without yielding: none handled yet.
    let mut accepted = 0;
    for k in 0..40 {
        for (i, id) in ids.iter().enumerate() {
            engine.try_send(id, add(100 * (i as u32 + 1) + k)).unwrap();
            accepted += 1;
        }
    }
    assert!(engine.handlers().log().is_empty());

    // A full mailbox and a send waiting for room when shutdown begins.
    let small = Engine::<Counter, Tracker>::with_config(Tracker::default(), Config { mailbox: 1, ..exact() });
    small.start("w", Tally::default()).await.unwrap();
    small.try_send("w", add(1)).unwrap();
    let mut waiting = pin!(small.send("w", add(2)));
    assert!(is_pending(waiting.as_mut()).await);
    let (sent, ()) = tokio::join!(waiting, small.shutdown());
    assert_eq!(sent, Ok(()));
    assert_eq!(small.handlers().log(), [1, 2]);

    engine.shutdown().await;
    // Every accepted event was handled, each instance's in order.
    let log = engine.handlers().log();
    assert_eq!(log.len(), accepted);
    for i in 0..3u32 {
        let mine: Vec<u32> = log.iter().copied().filter(|n| n / 100 == i + 1).collect();
        assert_eq!(mine, (0..40).map(|k| 100 * (i + 1) + k).collect::<Vec<_>>());
    }

    // New calls get ShutDown; queries still answer.
    assert_eq!(engine.start("new", Tally::default()).await, Err(EngineError::ShutDown));
    assert_eq!(engine.send("s-0", add(1)).await, Err(EngineError::ShutDown));
    assert_eq!(engine.try_send("s-0", add(1)), Err(EngineError::ShutDown));
    assert_eq!(engine.cancel("s-0").await, Err(EngineError::ShutDown));
    assert_eq!(engine.status("s-0").await.unwrap(), Status::Running(CounterState::Open));
    assert_eq!(engine.list().len(), 4);
    // An instance still running when the engine stopped will never finish.
    assert_eq!(engine.wait("s-0").await, Err(EngineError::Stopped("s-0".into())));

    // The activity in flight was stopped with its instance: it never reports.
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(
        engine.status("busy").await.unwrap(),
        Status::Running(CounterState::Working)
    );
    assert_eq!(engine.handlers().log().len(), accepted);
}

/// A small workflow for the scale test: two steps, trivial activities.
pub mod tiny {
    use super::*;

    workflow! {
        pub workflow Tiny {
            context u64;
            initial Idle;
            events { Go }

            state Idle { on Go => Validating; }
            state Validating {
                invoke validate -> () { done => Pricing; error => Failed; }
            }
            state Pricing {
                invoke price -> u64 { done => Done / keep_price; error => Failed; }
            }
            final Done;
            final Failed (failure);
        }
    }

    pub struct Quick;

    impl TinyHandlers for Quick {
        fn keep_price(&self, ctx: &mut u64, price: &u64) {
            *ctx = *price;
        }
        async fn validate(&self, _ctx: &u64, _call: &ActivityCall) -> Result<(), ActivityError> {
            tokio::time::sleep(ms(10)).await;
            Ok(())
        }
        async fn price(&self, ctx: &u64, _call: &ActivityCall) -> Result<u64, ActivityError> {
            tokio::time::sleep(ms(10)).await;
            Ok(ctx * 2)
        }
    }
}

#[tokio::test(start_paused = true)]
async fn ten_thousand_instances_all_complete() {
    use tiny::{Quick, Tiny, TinyEvent, TinyState};
    const N: u64 = 10_000;
    let engine = Engine::<Tiny, Quick>::with_config(Quick, exact());
    let began = Instant::now();
    for i in 0..N {
        engine.start(format!("t-{i}"), i).await.unwrap();
    }
    for i in 0..N {
        engine.try_send(&format!("t-{i}"), TinyEvent::Go).unwrap();
    }
    for i in 0..N {
        assert_eq!(engine.wait(&format!("t-{i}")).await, Ok(TinyState::Done));
    }
    // Two 10ms steps each, all at once: 20ms in all, not 10,000 × 20ms.
    assert_eq!(began.elapsed(), ms(20));
    assert_eq!(
        engine.list_where(|s| *s == Status::Finished(TinyState::Done)).len(),
        N as usize
    );
    for i in (0..N).step_by(997) {
        assert_eq!(engine.snapshot(&format!("t-{i}")).await.unwrap().context, i * 2);
    }
    engine.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn snapshots_outlive_cancel_and_shutdown() {
    let engine = Engine::<Counter, Tracker>::with_config(Tracker::default(), exact());
    engine.start("c", Tally::default()).await.unwrap();
    engine.start("s", Tally::default()).await.unwrap();
    engine.send("c", add(1)).await.unwrap();
    engine.send("s", add(2)).await.unwrap();
    engine.cancel("c").await.unwrap();
    let cancelled = engine.snapshot("c").await.unwrap();
    assert_eq!(cancelled.status, Status::Cancelled(CounterState::Open));
    assert_eq!(cancelled.context.seen, [1]);
    assert_eq!(cancelled.history.last().map(|r| &r.kind), Some(&RecordKind::Cancelled));
    let mut watching = engine.subscribe("s").unwrap();
    engine.shutdown().await;
    let after = engine.snapshot("s").await.unwrap();
    assert_eq!(
        (after.status, after.context.seen),
        (Status::Running(CounterState::Open), vec![2])
    );
    // Its task has ended: watchers learn it, before and after, and `wait`
    // does not hang on a status that can no longer change.
    assert!(watching.changed().await.is_err());
    assert!(engine.subscribe("s").unwrap().changed().await.is_err());
    assert_eq!(engine.wait("s").await, Err(EngineError::Stopped("s".into())));
}

#[tokio::test(start_paused = true)]
async fn an_event_for_a_finished_instance_is_recorded_not_dropped() {
    let engine = Engine::<Counter, Tracker>::with_config(Tracker::default(), exact());
    engine.start("f", Tally::default()).await.unwrap();
    engine.send("f", CounterEvent::Close).await.unwrap();
    engine.try_send("f", add(5)).unwrap();
    assert_eq!(engine.send("f", add(6)).await, Err(EngineError::Stopped("f".into())));
    let history = engine.snapshot("f").await.unwrap().history;
    let rejected: Vec<&RecordKind> = history
        .iter()
        .map(|r| &r.kind)
        .filter(|k| matches!(k, RecordKind::Rejected { .. }))
        .collect();
    assert_eq!(
        rejected,
        [
            &RecordKind::Rejected {
                state: "Closed".into(),
                event: "Add"
            },
            &RecordKind::Rejected {
                state: "Closed".into(),
                event: "Add"
            }
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn dropping_the_engine_ends_its_instances() {
    let dropped = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let tracker = Tracker {
        _dropped: DropFlag(Some(dropped.clone())),
        ..Tracker::default()
    };
    let engine = Engine::<Counter, Tracker>::with_config(tracker, exact());
    for id in ["a", "b", "c"] {
        engine.start(id, Tally::default()).await.unwrap();
    }
    engine.send("a", CounterEvent::Work).await.unwrap(); // an activity in flight too
    drop(engine);
    tokio::time::sleep(ms(10)).await;
    assert!(
        dropped.load(Ordering::SeqCst),
        "every instance task ended and released the handlers"
    );
}
