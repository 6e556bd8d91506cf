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
    let steps: Vec<Step<OrderEvent>> = store
        .journal("Order", "o-1")
        .await
        .unwrap()
        .iter()
        .map(|row| journal::decode::<Order>(row).unwrap().step)
        .collect();
    let kinds: Vec<String> = steps
        .iter()
        .map(|s| format!("{s:?}").split([' ', '{']).next().unwrap_or("").to_string())
        .collect();
    assert_eq!(
        kinds,
        [
            "Started",
            "Transition",
            "Failed",
            "Retried",
            "Failed",
            "Retried",
            "Transition",
            "Transition"
        ]
    );
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

/// A store whose appends fail while `broken` is set.
#[derive(Default)]
struct Flaky {
    inner: MemoryStore,
    broken: AtomicBool,
}

#[async_trait]
impl Store for Flaky {
    async fn append(&self, workflow: &str, row: Row) -> Result<(), StoreError> {
        if self.broken.load(Ordering::SeqCst) {
            return Err(StoreError::Backend("disk full".into()));
        }
        self.inner.append(workflow, row).await
    }
    async fn open_rows(&self, workflow: &str) -> Result<Vec<Result<Row, StoreError>>, StoreError> {
        self.inner.open_rows(workflow).await
    }
    async fn journal(&self, workflow: &str, instance: &str) -> Result<Vec<Row>, StoreError> {
        self.inner.journal(workflow, instance).await
    }
}

/// A step the store did not commit fails the instance; the retry resumes from the newest
/// row the store did commit, and a retry the store refuses leaves it failed.
#[tokio::test]
async fn a_store_failure_is_retried_from_the_newest_committed_row() {
    let desk = Arc::new(Desk::default());
    let store = Arc::new(Flaky::default());
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
