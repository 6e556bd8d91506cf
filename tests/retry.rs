//! `Engine::retry`: a failed instance resumes from its last committed step, in memory and
//! from a store (also after a restart); every refusal is typed.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use workflow::journal::{self, Step};
use workflow::prelude::*;
use workflow::{Engine, EngineError, MemoryStore, RecordKind, Row, SqliteStore, Status, Store, StoreError};

#[derive(Debug, Default, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Bill {
    pub booms: u32,
    pub charged: u32,
}

workflow! {
    pub workflow Order {
        context Bill;
        initial Open;
        events { Charge, Boom, Ship, Stop }
        state Open {
            entry greet;
            on Charge => Charging;
            on Boom / boom;
            on Stop => Stopped;
        }
        state Charging {
            invoke charge -> u32 { done => Charged / book; error => Declined; }
        }
        state Charged { on Ship => Shipped; }
        final Shipped;
        final Stopped;
        final Declined (failure);
    }
}

/// Services whose failures the tests switch on and off.
#[derive(Default)]
pub struct Desk {
    fail_greet: AtomicBool,
    fail_boom: AtomicBool,
    fail_book: AtomicBool,
    decline: AtomicBool,
    charges: AtomicU32,
}

impl OrderHandlers for Arc<Desk> {
    fn greet(&self, _bill: &mut Bill) {
        assert!(!self.fail_greet.load(Ordering::SeqCst), "greeting failed");
    }
    fn boom(&self, bill: &mut Bill, _event: &Boom) {
        // Changed before the panic: a retry resumes with the context before the step.
        bill.booms += 1;
        assert!(!self.fail_boom.load(Ordering::SeqCst), "boom");
    }
    fn book(&self, bill: &mut Bill, charged: &u32) {
        bill.charged = *charged;
        assert!(!self.fail_book.load(Ordering::SeqCst), "booking failed");
    }
    async fn charge(&self, _bill: &Bill, _call: &ActivityCall) -> Result<u32, ActivityError> {
        if self.decline.load(Ordering::SeqCst) {
            return Err(ActivityError::non_retryable("declined"));
        }
        Ok(self.charges.fetch_add(1, Ordering::SeqCst) + 1)
    }
}

fn failed(status: &Status<OrderState>) -> bool {
    matches!(status, Status::Failed { .. })
}

/// A panic in an action fails the instance; the retry puts it back in the state before the
/// step, with the context before it, journaled as attempt 1, then 2.
async fn a_panic_is_retried_from_the_step_before(engine: &Engine<Order, Arc<Desk>>, desk: &Desk) {
    engine.start("o-1", Bill::default()).await.unwrap();
    engine.send("o-1", OrderEvent::Boom).await.unwrap();
    desk.fail_boom.store(true, Ordering::SeqCst);
    assert!(matches!(
        engine.send("o-1", OrderEvent::Boom).await,
        Err(EngineError::InstanceFailed { .. })
    ));
    assert!(failed(&engine.status("o-1").await.unwrap()));
    engine.retry("o-1").await.unwrap();
    assert_eq!(engine.status("o-1").await.unwrap(), Status::Running(OrderState::Open));
    assert_eq!(engine.snapshot("o-1").await.unwrap().context.booms, 1);
    // Failing again, retried again: attempt 2.
    assert!(engine.send("o-1", OrderEvent::Boom).await.is_err());
    engine.retry("o-1").await.unwrap();
    desk.fail_boom.store(false, Ordering::SeqCst);
    engine.send("o-1", OrderEvent::Boom).await.unwrap();
    let snapshot = engine.snapshot("o-1").await.unwrap();
    assert_eq!(snapshot.context.booms, 2);
    let retries: Vec<u32> = snapshot
        .history
        .iter()
        .filter_map(|r| match r.kind {
            RecordKind::Retried { attempt } => Some(attempt),
            _ => None,
        })
        .collect();
    assert_eq!(retries, [1, 2]);
    assert_eq!(engine.metrics().retried, 2);
    engine.send("o-1", OrderEvent::Stop).await.unwrap();
    assert_eq!(engine.wait("o-1").await.unwrap(), OrderState::Stopped);
}

/// A panic in the transition an activity's outcome takes: the retry runs the activity again.
async fn an_activity_outcome_that_failed_runs_the_activity_again(engine: &Engine<Order, Arc<Desk>>, desk: &Desk) {
    desk.fail_book.store(true, Ordering::SeqCst);
    engine.start("o-2", Bill::default()).await.unwrap();
    let mut status = engine.subscribe("o-2").unwrap();
    engine.send("o-2", OrderEvent::Charge).await.unwrap();
    status.wait_for(failed).await.unwrap();
    let charges = desk.charges.load(Ordering::SeqCst);
    desk.fail_book.store(false, Ordering::SeqCst);
    engine.retry("o-2").await.unwrap();
    let mut status = engine.subscribe("o-2").unwrap();
    status
        .wait_for(|s| *s == Status::Running(OrderState::Charged))
        .await
        .unwrap();
    assert_eq!(desk.charges.load(Ordering::SeqCst), charges + 1);
    assert_eq!(engine.snapshot("o-2").await.unwrap().context.charged, charges + 1);
    engine.send("o-2", OrderEvent::Ship).await.unwrap();
    assert_eq!(engine.wait("o-2").await.unwrap(), OrderState::Shipped);
}

/// Every refusal: unknown, running, finished (also a failure final reached by design),
/// cancelled, and a failure in the first step.
async fn refusals(engine: &Engine<Order, Arc<Desk>>, desk: &Desk) {
    assert_eq!(
        engine.retry("nobody").await,
        Err(EngineError::UnknownInstance("nobody".into()))
    );
    let not_failed = |id: &str, status| Err(EngineError::NotFailed { id: id.into(), status });
    engine.start("running", Bill::default()).await.unwrap();
    assert_eq!(engine.retry("running").await, not_failed("running", "running"));
    engine.start("stopped", Bill::default()).await.unwrap();
    engine.send("stopped", OrderEvent::Stop).await.unwrap();
    assert_eq!(engine.retry("stopped").await, not_failed("stopped", "finished"));
    engine.start("cancelled", Bill::default()).await.unwrap();
    engine.cancel("cancelled").await.unwrap();
    assert_eq!(engine.retry("cancelled").await, not_failed("cancelled", "cancelled"));
    // An activity that failed for good leads to the failure final: finished, by design.
    desk.decline.store(true, Ordering::SeqCst);
    engine.start("declined", Bill::default()).await.unwrap();
    engine.send("declined", OrderEvent::Charge).await.unwrap();
    assert_eq!(engine.wait("declined").await.unwrap(), OrderState::Declined);
    assert_eq!(engine.retry("declined").await, not_failed("declined", "finished"));
    desk.decline.store(false, Ordering::SeqCst);
    desk.fail_greet.store(true, Ordering::SeqCst);
    engine.start("greeted", Bill::default()).await.unwrap();
    engine.subscribe("greeted").unwrap().wait_for(failed).await.unwrap();
    desk.fail_greet.store(false, Ordering::SeqCst);
    assert!(matches!(
        engine.retry("greeted").await,
        Err(EngineError::NotRetryable { id, .. }) if id == "greeted"
    ));
}

/// An engine without a store that keeps checkpoints, as in-memory retries need.
fn in_memory(desk: &Arc<Desk>) -> Engine<Order, Arc<Desk>> {
    let config = workflow::Config {
        checkpoints: true,
        ..Default::default()
    };
    Engine::with_config(desk.clone(), config)
}

#[tokio::test]
async fn in_memory_retry_resumes_from_the_step_before() {
    let desk = Arc::new(Desk::default());
    let engine = in_memory(&desk);
    a_panic_is_retried_from_the_step_before(&engine, &desk).await;
    an_activity_outcome_that_failed_runs_the_activity_again(&engine, &desk).await;
}

#[tokio::test]
async fn in_memory_retry_refusals() {
    let desk = Arc::new(Desk::default());
    refusals(&in_memory(&desk), &desk).await;
}

/// Without a store and without checkpoints (the default), nothing was kept to resume from.
#[tokio::test]
async fn in_memory_retry_without_checkpoints_is_refused() {
    let desk = Arc::new(Desk::default());
    let engine = Engine::<Order, _>::new(desk.clone());
    engine.start("o-1", Bill::default()).await.unwrap();
    desk.fail_boom.store(true, Ordering::SeqCst);
    assert!(engine.send("o-1", OrderEvent::Boom).await.is_err());
    assert!(failed(&engine.status("o-1").await.unwrap()));
    assert!(matches!(
        engine.retry("o-1").await,
        Err(EngineError::NotRetryable { id, reason }) if id == "o-1" && reason.contains("Config::checkpoints")
    ));
}

/// o-1's journal after the two scenarios above on one engine: it failed and was retried twice,
/// then finished.
const RETRIED_TWICE: [&str; 8] = [
    "Started",
    "Transition",
    "Failed",
    "Retried",
    "Failed",
    "Retried",
    "Transition",
    "Transition",
];

/// The kind of each step of a journal (`Started`, `Transition`, `Failed`, `Retried` …), checking
/// that its rows are numbered from 1 without a gap.
fn kinds(rows: &[Row]) -> Vec<String> {
    let seqs: Vec<u64> = rows.iter().map(|row| row.seq).collect();
    assert_eq!(seqs, (1..=rows.len() as u64).collect::<Vec<_>>(), "a gap-free journal");
    rows.iter()
        .map(|row| {
            let step = journal::decode::<Order>(row).unwrap().step;
            format!("{step:?}").split([' ', '{']).next().unwrap_or("").to_string()
        })
        .collect()
}

fn durable(store: Arc<dyn Store>, desk: &Arc<Desk>) -> Engine<Order, Arc<Desk>> {
    Engine::builder(desk.clone()).store(store).build()
}

#[tokio::test]
async fn durable_retry_resumes_from_the_journal_and_journals_itself() {
    let desk = Arc::new(Desk::default());
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open_in_memory().unwrap());
    let engine = durable(store.clone(), &desk);
    a_panic_is_retried_from_the_step_before(&engine, &desk).await;
    an_activity_outcome_that_failed_runs_the_activity_again(&engine, &desk).await;
    let rows = store.journal("Order", "o-1").await.unwrap();
    let steps: Vec<Step<OrderEvent>> = rows
        .iter()
        .map(|row| journal::decode::<Order>(row).unwrap().step)
        .collect();
    assert_eq!(kinds(&rows), RETRIED_TWICE);
    assert!(steps.iter().any(|s| matches!(s, Step::Retried { attempt: 2 })));
}

#[tokio::test]
async fn durable_retry_refusals() {
    let desk = Arc::new(Desk::default());
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    refusals(&durable(store, &desk), &desk).await;
}

/// A durable instance that failed before a restart is retried by the next process, which
/// recovery alone does not resume; the retry survives the next restart.
#[tokio::test]
async fn a_durable_retry_survives_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.db");
    let desk = Arc::new(Desk::default());
    {
        let engine = durable(Arc::new(SqliteStore::open(&path).unwrap()), &desk);
        engine.start("o-1", Bill::default()).await.unwrap();
        desk.fail_boom.store(true, Ordering::SeqCst);
        assert!(engine.send("o-1", OrderEvent::Boom).await.is_err());
        engine.shutdown().await;
    }
    desk.fail_boom.store(false, Ordering::SeqCst);
    {
        let engine = durable(Arc::new(SqliteStore::open(&path).unwrap()), &desk);
        assert_eq!(engine.recover().await.unwrap().resumed, 0);
        assert!(failed(&engine.status("o-1").await.unwrap()));
        engine.retry("o-1").await.unwrap();
        assert_eq!(engine.status("o-1").await.unwrap(), Status::Running(OrderState::Open));
        engine.shutdown().await;
    }
    let engine = durable(Arc::new(SqliteStore::open(&path).unwrap()), &desk);
    assert_eq!(engine.recover().await.unwrap().resumed, 1);
    engine.send("o-1", OrderEvent::Boom).await.unwrap();
    let snapshot = engine.snapshot("o-1").await.unwrap();
    assert_eq!(snapshot.context.booms, 1);
    engine.send("o-1", OrderEvent::Stop).await.unwrap();
    assert_eq!(engine.wait("o-1").await.unwrap(), OrderState::Stopped);
    // Finished: a retry now is refused from the store.
    engine.shutdown().await;
    drop(engine);
    let engine = durable(Arc::new(SqliteStore::open(&path).unwrap()), &desk);
    assert_eq!(
        engine.retry("o-1").await,
        Err(EngineError::NotFailed {
            id: "o-1".into(),
            status: "finished"
        })
    );
}

/// A store (`inner`, every call passed through) whose appends fail while `broken` is set.
struct Flaky<S> {
    inner: S,
    broken: AtomicBool,
}

impl<S> Flaky<S> {
    fn new(inner: S) -> Self {
        Flaky {
            inner,
            broken: AtomicBool::new(false),
        }
    }

    fn refuse(&self) -> Result<(), StoreError> {
        match self.broken.load(Ordering::SeqCst) {
            true => Err(StoreError::Backend("disk full".into())),
            false => Ok(()),
        }
    }
}

#[async_trait]
impl<S: Store> Store for Flaky<S> {
    async fn append(&self, workflow: &str, row: Row) -> Result<(), StoreError> {
        self.refuse()?;
        self.inner.append(workflow, row).await
    }
    async fn append_consuming(&self, workflow: &str, row: Row, message: i64) -> Result<(), StoreError> {
        self.refuse()?;
        self.inner.append_consuming(workflow, row, message).await
    }
    async fn open_rows(&self, workflow: &str) -> Result<Vec<Result<Row, StoreError>>, StoreError> {
        self.inner.open_rows(workflow).await
    }
    async fn journal(&self, workflow: &str, instance: &str) -> Result<Vec<Row>, StoreError> {
        self.inner.journal(workflow, instance).await
    }
    async fn define(&self, definition: &workflow::Definition) -> Result<(), StoreError> {
        self.inner.define(definition).await
    }
    async fn release(&self, workflow: &str) -> Result<(), StoreError> {
        self.inner.release(workflow).await
    }
    fn lease(&self, length: std::time::Duration, renewal: std::time::Duration) {
        self.inner.lease(length, renewal)
    }
    fn takeover_interval(&self) -> Option<std::time::Duration> {
        self.inner.takeover_interval()
    }
    fn lease_lost(&self) -> bool {
        self.inner.lease_lost()
    }
    async fn post(&self, workflow: &str, instance: &str, message: Vec<u8>) -> Result<workflow::Posted, StoreError> {
        self.inner.post(workflow, instance, message).await
    }
    async fn inbox(&self, workflow: &str) -> Result<Vec<workflow::Message>, StoreError> {
        self.inner.inbox(workflow).await
    }
    async fn acknowledge(&self, ids: Vec<i64>) -> Result<(), StoreError> {
        self.inner.acknowledge(ids).await
    }
    fn posted(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        self.inner.posted()
    }
}

/// A step the store did not commit fails the instance; the retry resumes from the newest
/// row the store did commit, and a retry the store refuses leaves it failed.
#[tokio::test]
async fn a_store_failure_is_retried_from_the_newest_committed_row() {
    let desk = Arc::new(Desk::default());
    let store = Arc::new(Flaky::new(MemoryStore::new()));
    let engine = durable(store.clone(), &desk);
    engine.start("o-1", Bill::default()).await.unwrap();
    engine.send("o-1", OrderEvent::Boom).await.unwrap();
    store.broken.store(true, Ordering::SeqCst);
    assert!(matches!(
        engine.send("o-1", OrderEvent::Boom).await,
        Err(EngineError::Store(_))
    ));
    assert!(matches!(engine.retry("o-1").await, Err(EngineError::Store(_))));
    assert!(failed(&engine.status("o-1").await.unwrap()));
    store.broken.store(false, Ordering::SeqCst);
    engine.retry("o-1").await.unwrap();
    assert_eq!(engine.snapshot("o-1").await.unwrap().context.booms, 1);
    let rows = store.journal("Order", "o-1").await.unwrap();
    let last = journal::decode::<Order>(rows.last().unwrap()).unwrap();
    // The refused retry was attempt 1 and left no row: this one is attempt 1 too.
    assert!(matches!(last.step, Step::Retried { attempt: 1 }));
    assert_eq!(rows.len(), 3);
    engine.send("o-1", OrderEvent::Stop).await.unwrap();
    assert_eq!(engine.wait("o-1").await.unwrap(), OrderState::Stopped);
}

/// The same actions through the type-erased [`Control`]: events as JSON, every refusal typed.
#[tokio::test]
async fn the_control_surface_sends_json_events_cancels_and_retries() {
    use serde_json::json;
    use workflow::{Control, ControlError};
    let desk = Arc::new(Desk::default());
    let engine = in_memory(&desk);
    let control: Arc<dyn Control> = Arc::new(engine.clone());
    assert_eq!((control.workflow(), control.graph().states.len()), ("Order", 6));
    engine.start("o-1", Bill::default()).await.unwrap();
    let bad = |e: Result<(), ControlError>| matches!(e, Err(ControlError::BadEvent { workflow: "Order", .. }));
    assert!(bad(control.send("o-1", &json!("Explode")).await));
    assert!(bad(control.send("o-1", &json!({"Boom": 3})).await));
    assert!(bad(control.send("o-1", &json!(17)).await));
    // A done event is an event of the workflow too; its state does not accept it here.
    assert!(matches!(
        control.send("o-1", &json!({"ChargeDone": 5})).await,
        Err(ControlError::Engine(EngineError::Rejected { .. }))
    ));
    desk.fail_boom.store(true, Ordering::SeqCst);
    assert!(matches!(
        control.send("o-1", &json!("Boom")).await,
        Err(ControlError::Engine(EngineError::InstanceFailed { .. }))
    ));
    desk.fail_boom.store(false, Ordering::SeqCst);
    control.retry("o-1").await.unwrap();
    control.send("o-1", &json!("Boom")).await.unwrap();
    assert_eq!(control.metrics().retried, 1);
    control.cancel("o-1").await.unwrap();
    assert_eq!(engine.status("o-1").await.unwrap(), Status::Cancelled(OrderState::Open));
    assert_eq!(
        control.retry("nobody").await,
        Err(ControlError::Engine(EngineError::UnknownInstance("nobody".into())))
    );
}

/// On PostgreSQL, where several processes share the store (each open store is a process of the
/// cluster, as in tests/postgres.rs; one killed for real in `a_killed_processs_failed_instance_…`):
/// the same behaviour in one process, a failed instance retried by another process than the one
/// that ran it, concurrent retries from two processes, and retries of the instances of a process
/// past its lease or killed. Needs a server (see tests/pg/mod.rs).
#[cfg(feature = "postgres")]
mod on_postgres {
    use std::path::Path;
    use std::time::Duration;

    use super::*;
    use crate::pg;

    /// An engine over `store`, one process of the cluster, taking over and reading its inbox
    /// (as engines do once they recovered at start).
    async fn process(store: Arc<dyn Store>, desk: &Arc<Desk>) -> Engine<Order, Arc<Desk>> {
        let engine = durable(store, desk);
        engine.recover().await.unwrap();
        engine
    }

    /// Starts `id` in `engine` and fails it in its second step: the action `boom` panics.
    async fn failed_in(engine: &Engine<Order, Arc<Desk>>, desk: &Desk, id: &str) {
        engine.start(id, Bill::default()).await.unwrap();
        desk.fail_boom.store(true, Ordering::SeqCst);
        let failing = engine.send(id, OrderEvent::Boom).await;
        desk.fail_boom.store(false, Ordering::SeqCst);
        assert!(
            matches!(failing, Err(EngineError::InstanceFailed { .. })),
            "{failing:?}"
        );
    }

    /// Which process wrote each row of `id`'s journal, and under which epoch.
    fn writers(schema: &pg::Schema, id: &str) -> Vec<(i64, i64)> {
        schema
            .execute(&format!(
                "SELECT owner, epoch FROM journal WHERE instance = '{id}' ORDER BY seq"
            ))
            .iter()
            .map(|row| (row.get(0), row.get(1)))
            .collect()
    }

    fn running(id: &str) -> Result<(), EngineError> {
        Err(EngineError::NotFailed {
            id: id.into(),
            status: "running",
        })
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_process_retries_as_on_sqlite() {
        let schema = pg::Schema::fresh();
        let desk = Arc::new(Desk::default());
        let store: Arc<dyn Store> = Arc::new(schema.open());
        let engine = process(store.clone(), &desk).await;
        a_panic_is_retried_from_the_step_before(&engine, &desk).await;
        an_activity_outcome_that_failed_runs_the_activity_again(&engine, &desk).await;
        refusals(&engine, &desk).await;
        let rows = store.journal("Order", "o-1").await.unwrap();
        assert_eq!(kinds(&rows), RETRIED_TWICE);
    }

    /// Process A ran the instance and holds its failed copy; process B retries it. It resumes in
    /// B, which owns it from then on; A's failed copy gives way, every query agrees, and A's
    /// requests reach it in B.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn another_process_retries_a_failed_instance_and_runs_it() {
        let schema = pg::Schema::fresh();
        let desk = Arc::new(Desk::default());
        let (a, b) = (Arc::new(schema.open()), Arc::new(schema.open()));
        let ran = process(a.clone(), &desk).await;
        let retrying = process(b.clone(), &desk).await;
        ran.start("o-1", Bill::default()).await.unwrap();
        ran.send("o-1", OrderEvent::Boom).await.unwrap();
        desk.fail_boom.store(true, Ordering::SeqCst);
        assert!(ran.send("o-1", OrderEvent::Boom).await.is_err());
        desk.fail_boom.store(false, Ordering::SeqCst);
        assert!(
            failed(&retrying.status("o-1").await.unwrap()),
            "B reads it failed from the store"
        );
        retrying.retry("o-1").await.unwrap();
        let open = Status::Running(OrderState::Open);
        assert_eq!(retrying.status("o-1").await, Ok(open.clone()));
        assert_eq!(ran.status("o-1").await, Ok(open.clone()), "A's failed copy gave way");
        assert!(ran.list().is_empty(), "A runs nothing: {:?}", ran.list());
        assert_eq!(retrying.list(), [("o-1".to_string(), open.clone())]);
        for engine in [&ran, &retrying] {
            let snapshot = engine.snapshot("o-1").await.unwrap();
            assert_eq!((snapshot.status, snapshot.context.booms), (open.clone(), 1));
            assert_eq!(engine.retry("o-1").await, running("o-1"));
        }
        // A's requests go through the store to B, which handles them in order.
        ran.send("o-1", OrderEvent::Boom).await.unwrap();
        ran.send("o-1", OrderEvent::Stop).await.unwrap();
        for engine in [&ran, &retrying] {
            assert_eq!(engine.wait("o-1").await, Ok(OrderState::Stopped));
            let snapshot = engine.snapshot("o-1").await.unwrap();
            assert_eq!(
                (snapshot.status, snapshot.context.booms),
                (Status::Finished(OrderState::Stopped), 2)
            );
        }
        let rows = a.journal("Order", "o-1").await.unwrap();
        assert_eq!(
            kinds(&rows),
            ["Started", "Transition", "Failed", "Retried", "Transition", "Transition"]
        );
        let writers = writers(&schema, "o-1");
        let owners: Vec<i64> = writers.iter().map(|w| w.0).collect();
        assert_eq!(
            owners,
            [
                a.process(),
                a.process(),
                a.process(),
                b.process(),
                b.process(),
                b.process()
            ]
        );
        assert!(
            writers[3].1 > writers[2].1,
            "B claimed it under a new epoch: {writers:?}"
        );
        assert_eq!((ran.metrics().retried, retrying.metrics().retried), (0, 1));
        assert_eq!((ran.metrics().failures, retrying.metrics().failures), (1, 0));
    }

    /// Whichever call of the process that ran it comes first after another process retried it,
    /// its failed copy gives way (only `list`, `metrics` and `subscribe` see it until then): the
    /// call answers as the store has the instance, or reaches it in its new owner.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_old_failed_copy_gives_way_at_any_call() {
        let schema = pg::Schema::fresh();
        let desk = Arc::new(Desk::default());
        let ran = process(Arc::new(schema.open()), &desk).await;
        let retrying = process(Arc::new(schema.open()), &desk).await;
        let open = Status::Running(OrderState::Open);
        for (n, call) in ["status", "snapshot", "wait", "send", "cancel", "retry"]
            .into_iter()
            .enumerate()
        {
            let id = format!("o-{n}");
            failed_in(&ran, &desk, &id).await;
            retrying.retry(&id).await.unwrap();
            assert_eq!(ran.list().len(), 1, "{call}: not asked yet");
            match call {
                "status" => assert_eq!(ran.status(&id).await, Ok(open.clone())),
                "snapshot" => assert_eq!(ran.snapshot(&id).await.unwrap().status, open),
                "wait" => {
                    let waiting = tokio::spawn({
                        let (ran, id) = (ran.clone(), id.clone());
                        async move { ran.wait(&id).await }
                    });
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    retrying.send(&id, OrderEvent::Stop).await.unwrap();
                    assert_eq!(waiting.await.unwrap(), Ok(OrderState::Stopped));
                }
                "send" => {
                    ran.send(&id, OrderEvent::Stop).await.unwrap();
                    assert_eq!(retrying.wait(&id).await, Ok(OrderState::Stopped));
                }
                "cancel" => {
                    ran.cancel(&id).await.unwrap();
                    assert_eq!(retrying.wait(&id).await, Err(EngineError::Cancelled(id.clone())));
                }
                _ => assert_eq!(ran.retry(&id).await, running(&id)),
            }
            assert!(ran.list().is_empty(), "{call}: the copy is still here");
        }
    }

    /// Two processes retry one failed instance at once (the one that ran it and another, or two
    /// others): one resumes it, the other is told it is running; nothing fails, one `Retried` row.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_retries_from_two_processes_resume_it_once() {
        let schema = pg::Schema::fresh();
        let desk = Arc::new(Desk::default());
        let stores = [
            Arc::new(schema.open()),
            Arc::new(schema.open()),
            Arc::new(schema.open()),
        ];
        let mut engines = Vec::new();
        for store in &stores {
            engines.push(process(store.clone(), &desk).await);
        }
        let open = Status::Running(OrderState::Open);
        let mut wins = [0; 3];
        for round in 0..18 {
            let id = format!("o-{round}");
            failed_in(&engines[0], &desk, &id).await;
            let (x, y) = [(0, 1), (1, 0), (1, 2)][round % 3];
            let retry = |i: usize| {
                let (engine, id) = (engines[i].clone(), id.clone());
                tokio::spawn(async move { engine.retry(&id).await })
            };
            let (first, second) = (retry(x), retry(y));
            let (first, second) = (first.await.unwrap(), second.await.unwrap());
            let winner = match (&first, &second) {
                (Ok(()), lost) if *lost == running(&id) => x,
                (lost, Ok(())) if *lost == running(&id) => y,
                _ => panic!("{id}: {first:?} / {second:?}"),
            };
            wins[winner] += 1;
            for engine in &engines {
                assert_eq!(engine.status(&id).await, Ok(open.clone()), "{id}");
            }
            let holders: Vec<usize> = (0..3)
                .filter(|&i| engines[i].list().iter().any(|(held, _)| *held == id))
                .collect();
            assert_eq!(holders, [winner], "{id}: one process runs it");
            let rows = stores[0].journal("Order", &id).await.unwrap();
            assert_eq!(kinds(&rows), ["Started", "Failed", "Retried"], "{id}");
            let owners: Vec<i64> = writers(&schema, &id).iter().map(|w| w.0).collect();
            assert_eq!(owners[2], stores[winner].process(), "{id}");
        }
        println!("retries won by process: {wins:?}");
        let retried: u64 = engines.iter().map(|e| e.metrics().retried).sum();
        assert_eq!(retried, 18);
        let failures: Vec<u64> = engines.iter().map(|e| e.metrics().failures).collect();
        assert_eq!(failures, [18, 0, 0], "no lost race counted as a failure");
        for round in 0..18 {
            let id = format!("o-{round}");
            engines[round % 3].send(&id, OrderEvent::Stop).await.unwrap();
            for engine in &engines {
                assert_eq!(engine.wait(&id).await, Ok(OrderState::Stopped), "{id}");
            }
        }
    }

    /// A process past its lease (paused, partitioned) still holds a failed copy: another process
    /// retries the instance at once (a failed instance waits for no takeover), and the old one's
    /// copy gives way; its running instances are taken over as usual.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_instance_of_a_process_past_its_lease_is_retried_elsewhere() {
        let schema = pg::Schema::fresh();
        let desk = Arc::new(Desk::default());
        let (a, b) = (Arc::new(schema.open()), Arc::new(schema.open()));
        let zombie = process(a.clone(), &desk).await;
        let survivor = process(b.clone(), &desk).await;
        failed_in(&zombie, &desk, "o-1").await;
        zombie.start("o-2", Bill::default()).await.unwrap();
        let old = a.process();
        schema.execute(&format!(
            "UPDATE processes SET lease_until = clock_timestamp() - interval '1 ms' WHERE id = {old}"
        ));
        // The old process may write nothing more: its own retry is refused, and leaves the
        // instance failed for another process to retry.
        assert_eq!(
            zombie.retry("o-1").await,
            Err(EngineError::Store(StoreError::Fenced { instance: "o-1".into() }))
        );
        assert!(failed(&survivor.status("o-1").await.unwrap()));
        survivor.retry("o-1").await.unwrap();
        let open = Status::Running(OrderState::Open);
        assert_eq!(zombie.status("o-1").await, Ok(open.clone()));
        assert_eq!(zombie.retry("o-1").await, running("o-1"));
        // The old process drops its other copies once it finds its lease lost, and registers
        // anew; o-2 is taken over by whichever process comes first, itself included.
        let started = std::time::Instant::now();
        while a.process() == old || survivor.list().len() + zombie.list().len() < 2 {
            assert!(started.elapsed() < Duration::from_secs(3), "o-2 not taken over");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(survivor.list().iter().any(|(id, _)| id == "o-1"));
        for id in ["o-1", "o-2"] {
            zombie.send(id, OrderEvent::Stop).await.unwrap();
            assert_eq!(survivor.wait(id).await, Ok(OrderState::Stopped));
            assert_eq!(zombie.wait(id).await, Ok(OrderState::Stopped));
        }
        let rows = b.journal("Order", "o-1").await.unwrap();
        assert_eq!(kinds(&rows), ["Started", "Failed", "Retried", "Transition"]);
        let owners: Vec<i64> = writers(&schema, "o-1").iter().map(|w| w.0).collect();
        assert_eq!(owners, [old, old, b.process(), b.process()]);
    }

    /// A step the store did not commit leaves the instance failed in its process but open in the
    /// store, where the step before it is its newest row: it is running for every other process,
    /// which cannot retry it, and its own process retries it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_store_failure_is_retried_by_its_own_process() {
        let schema = pg::Schema::fresh();
        let desk = Arc::new(Desk::default());
        let flaky = Arc::new(Flaky::new(schema.open()));
        let owner = process(flaky.clone(), &desk).await;
        let other = process(Arc::new(schema.open()), &desk).await;
        owner.start("o-1", Bill::default()).await.unwrap();
        flaky.broken.store(true, Ordering::SeqCst);
        assert!(matches!(
            owner.send("o-1", OrderEvent::Boom).await,
            Err(EngineError::Store(_))
        ));
        assert!(failed(&owner.status("o-1").await.unwrap()));
        let open = Status::Running(OrderState::Open);
        assert_eq!(other.status("o-1").await, Ok(open.clone()));
        assert_eq!(other.retry("o-1").await, running("o-1"));
        flaky.broken.store(false, Ordering::SeqCst);
        owner.retry("o-1").await.unwrap();
        for engine in [&owner, &other] {
            assert_eq!(engine.status("o-1").await, Ok(open.clone()));
        }
        other.send("o-1", OrderEvent::Stop).await.unwrap();
        assert_eq!(other.wait("o-1").await, Ok(OrderState::Stopped));
        assert_eq!(owner.wait("o-1").await, Ok(OrderState::Stopped));
        let rows = flaky.journal("Order", "o-1").await.unwrap();
        assert_eq!(kinds(&rows), ["Started", "Retried", "Transition"]);
    }

    /// The worker of `a_killed_processs_failed_instance_is_retried_by_another`: in the schema
    /// `WORKFLOW_CRASH_DIR` names, starts `o-1` and fails it, then waits to be killed.
    #[cfg(unix)]
    #[test]
    #[ignore = "the worker process of `a_killed_processs_failed_instance_is_retried_by_another`"]
    fn retry_worker() {
        let Some(schema) = std::env::var_os(crate::crash_common::DIR_VAR) else {
            return;
        };
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(async {
            let store = Arc::new(pg::open_in(&schema.to_string_lossy()));
            let desk = Arc::new(Desk::default());
            let engine = process(store.clone(), &desk).await;
            failed_in(&engine, &desk, "o-1").await;
            println!("ready: failed o-1 (process {})", store.process());
            std::future::pending::<()>().await;
        });
    }

    /// A process that ran an instance until it failed is killed (SIGKILL: it hands nothing back,
    /// its lease runs on until it expires): another process retries the instance and runs it.
    #[cfg(unix)]
    #[test]
    fn a_killed_processs_failed_instance_is_retried_by_another() {
        let schema = pg::Schema::fresh();
        drop(schema.open()); // creates the schema
        let mut worker = crate::crash_common::Worker::spawn("on_postgres::retry_worker", Path::new(&schema.name));
        let ready = worker.ready().expect("the worker exited before ready");
        let dead: i64 = ready.trim_end_matches(')').rsplit(' ').next().unwrap().parse().unwrap();
        worker.child.kill().unwrap();
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&worker.exit(Duration::from_secs(10))),
            Some(crate::crash_common::SIGKILL)
        );
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(async {
            let store = Arc::new(schema.open());
            let desk = Arc::new(Desk::default());
            let engine = process(store.clone(), &desk).await;
            assert!(failed(&engine.status("o-1").await.unwrap()));
            let lease = schema.execute(&format!(
                "SELECT lease_until > clock_timestamp() FROM processes WHERE id = {dead}"
            ));
            println!("the killed process's lease still ran: {}", lease[0].get::<_, bool>(0));
            engine.retry("o-1").await.unwrap();
            engine.send("o-1", OrderEvent::Stop).await.unwrap();
            assert_eq!(engine.wait("o-1").await, Ok(OrderState::Stopped));
            let rows = store.journal("Order", "o-1").await.unwrap();
            assert_eq!(kinds(&rows), ["Started", "Failed", "Retried", "Transition"]);
            let owners: Vec<i64> = writers(&schema, "o-1").iter().map(|w| w.0).collect();
            assert_eq!(owners, [dead, dead, store.process(), store.process()]);
        });
    }
}

#[cfg(feature = "postgres")]
mod pg;

#[cfg(all(unix, feature = "postgres"))]
mod crash_common;
