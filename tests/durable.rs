//! Durable engines: journals, recovery, corrupt rows, changed definitions
//! and failing stores. Every behaviour runs against the in-memory and the
//! SQLite store alike, and with the `postgres` feature against PostgreSQL.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use workflow::prelude::*;
use workflow::{Engine, EngineError, MemoryStore, RecordKind, Row, SqliteStore, Status, Store, StoreError};

/// What an order instance owns.
#[derive(Debug, Default, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Cart {
    pub total: u64,
    pub payment: Option<String>,
    pub pokes: u32,
}

/// A payment service's answer.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Payment(pub String);

workflow! {
    pub workflow Shop {
        context Cart;
        initial Open;
        events { Checkout { total: u64 }, Poke, Cancel }
        state Open {
            entry count_entry;
            on Checkout => Paying / keep_total;
            on Poke / poke;
        }
        state Paying {
            invoke pay -> Payment { done => Packing / keep_payment; error => Failed; }
            compensate refund;
        }
        state Packing {
            invoke pack -> () { done => Waiting; error => Failed; }
            compensate unpack;
        }
        state Waiting {
            after 10s => Shipped;
            on Cancel => Failed;
        }
        final Shipped;
        final Failed (failure);
    }
}

/// Services that record what they were asked, and can hold a call until
/// released.
#[derive(Default)]
pub struct Desk {
    entries: AtomicU32,
    /// `(activity, idempotency key)` of every attempt, in order.
    calls: Mutex<Vec<(&'static str, u128)>>,
    hold_pay: AtomicBool,
    hold_refund: AtomicBool,
    /// The payment each `refund` attempt was given to undo.
    refunded: Mutex<Vec<Payment>>,
}

impl Desk {
    fn calls(&self, activity: &str) -> Vec<u128> {
        let calls = self.calls.lock().unwrap();
        calls.iter().filter(|c| c.0 == activity).map(|c| c.1).collect()
    }

    fn note(&self, call: &ActivityCall) {
        self.calls.lock().unwrap().push((call.activity, call.key));
    }
}

impl ShopHandlers for Arc<Desk> {
    fn count_entry(&self, _cart: &mut Cart) {
        self.entries.fetch_add(1, Ordering::SeqCst);
    }
    fn keep_total(&self, cart: &mut Cart, event: &Checkout) {
        cart.total = event.total;
    }
    fn poke(&self, cart: &mut Cart, _event: &Poke) {
        cart.pokes += 1;
    }
    fn keep_payment(&self, cart: &mut Cart, payment: &Payment) {
        cart.payment = Some(payment.0.clone());
    }
    async fn pay(&self, cart: &Cart, call: &ActivityCall) -> Result<Payment, ActivityError> {
        self.note(call);
        if self.hold_pay.load(Ordering::SeqCst) {
            std::future::pending::<()>().await;
        }
        Ok(Payment(format!("paid {}", cart.total)))
    }
    async fn pack(&self, _cart: &Cart, call: &ActivityCall) -> Result<(), ActivityError> {
        self.note(call);
        Ok(())
    }
    async fn refund(&self, _cart: &Cart, payment: &Payment, call: &ActivityCall) -> Result<(), ActivityError> {
        self.note(call);
        self.refunded.lock().unwrap().push(payment.clone());
        if self.hold_refund.load(Ordering::SeqCst) {
            std::future::pending::<()>().await;
        }
        Ok(())
    }
    async fn unpack(&self, _cart: &Cart, call: &ActivityCall) -> Result<(), ActivityError> {
        self.note(call);
        Ok(())
    }
}

/// Where the tests keep journals: each `open` is a store over the same
/// journals, as a restarted process would open its file again.
trait Backend {
    fn open(&self) -> Arc<dyn Store>;

    /// Whether several processes share the store: an engine then answers for an unfinished
    /// instance it does not run from the store, as its owner last committed it.
    fn shared(&self) -> bool {
        false
    }
}

struct Memory(Arc<MemoryStore>);

impl Backend for Memory {
    fn open(&self) -> Arc<dyn Store> {
        self.0.clone()
    }
}

/// One process owns a store file: while a store over the file is alive
/// (an earlier engine of the test still holds it), `open` hands out that
/// one, as the process would; otherwise it opens the file again.
struct Sqlite(
    PathBuf,
    Mutex<std::sync::Weak<SqliteStore>>,
    #[allow(dead_code)] tempfile::TempDir,
);

impl Backend for Sqlite {
    fn open(&self) -> Arc<dyn Store> {
        let mut live = self.1.lock().unwrap();
        if let Some(store) = live.upgrade() {
            return store;
        }
        let store = Arc::new(SqliteStore::open(&self.0).unwrap());
        *live = Arc::downgrade(&store);
        store
    }
}

fn memory() -> Memory {
    Memory(Arc::new(MemoryStore::new()))
}

fn sqlite() -> Sqlite {
    let dir = tempfile::tempdir().unwrap();
    Sqlite(dir.path().join("journal.db"), Mutex::default(), dir)
}

fn engine(store: Arc<dyn Store>, desk: &Arc<Desk>) -> Engine<Shop, Arc<Desk>> {
    Engine::builder(desk.clone()).store(store).build()
}

/// Waits until `done` holds. A SQLite commit takes real time on the store's
/// own thread: this waits in real time, and keeps the runtime busy so the
/// paused clock does not jump ahead meanwhile.
async fn until(mut done: impl FnMut() -> bool) {
    for _ in 0..10_000 {
        if done() {
            return;
        }
        tokio::task::yield_now().await;
        std::thread::sleep(Duration::from_micros(100));
    }
    panic!("not reached in 1 s");
}

/// Instance `id`'s status as `engine` publishes it now (`None` if it does
/// not run it), for `until`.
fn now(engine: &Engine<Shop, Arc<Desk>>, id: &str) -> Option<Status<ShopState>> {
    engine.subscribe(id).ok().map(|status| status.borrow().clone())
}

/// A journal's row numbers, and whether its newest row is open.
async fn journal(store: &Arc<dyn Store>, id: &str) -> (Vec<u64>, bool) {
    let rows = store.journal("Shop", id).await.unwrap();
    let open = rows.last().is_some_and(|r| r.open);
    (rows.iter().map(|r| r.seq).collect(), open)
}

/// One schema of the test database, opened as a process of the cluster would: while a store
/// over it is alive, `open` hands out that one; otherwise it opens a new one (a new process,
/// which takes over what the last one handed back when it closed).
#[cfg(feature = "postgres")]
struct Postgres(pg::Schema, Mutex<std::sync::Weak<workflow::PostgresStore>>);

#[cfg(feature = "postgres")]
impl Backend for Postgres {
    fn open(&self) -> Arc<dyn Store> {
        let mut live = self.1.lock().unwrap();
        if let Some(store) = live.upgrade() {
            return store;
        }
        let store = Arc::new(self.0.open());
        *live = Arc::downgrade(&store);
        store
    }

    fn shared(&self) -> bool {
        true
    }
}

#[cfg(feature = "postgres")]
fn postgres() -> Postgres {
    Postgres(pg::Schema::fresh(), Mutex::default())
}

#[cfg(feature = "postgres")]
#[path = "pg/mod.rs"]
mod pg;

/// Runs each named behaviour against every store (PostgreSQL with the `postgres` feature).
macro_rules! both_stores {
    ($($name:ident),* $(,)?) => {
        #[cfg(feature = "postgres")]
        mod on_postgres {
            $(#[tokio::test(start_paused = true)] async fn $name() { super::$name(super::postgres()).await; })*
        }
        mod on_memory {
            $(#[tokio::test(start_paused = true)] async fn $name() { super::$name(super::memory()).await; })*
        }
        mod on_sqlite {
            $(#[tokio::test(start_paused = true)] async fn $name() { super::$name(super::sqlite()).await; })*
        }
    };
}

both_stores!(
    every_step_is_journaled_in_order,
    recovery_resumes_without_rerunning_entry_actions,
    an_activity_in_flight_restarts_with_its_key,
    timers_fire_at_their_journaled_deadline,
    a_passed_deadline_fires_at_once,
    unfinished_compensations_run_after_recovery,
    a_corrupt_row_fails_only_its_instance,
    a_changed_definition_is_refused_and_left_untouched,
    a_stored_id_is_a_duplicate,
    recovering_twice_resumes_nothing_new,
    a_statechart_resumes_its_regions_and_history,
    a_compatible_change_resumes,
    a_batch_of_starts_is_committed_together,
    recover_after_shutdown_is_refused_and_runs_nothing,
    a_context_that_no_longer_decodes_is_a_changed_definition,
    an_open_row_in_a_final_state_is_finished_on_recovery,
    a_finished_instance_is_answered_from_the_store,
);

async fn every_step_is_journaled_in_order(backend: impl Backend) {
    let desk = Arc::new(Desk::default());
    let store = backend.open();
    let engine = engine(store.clone(), &desk);
    engine.start("o-1", Cart::default()).await.unwrap();
    // Committed before `start` returned.
    assert_eq!(journal(&store, "o-1").await, (vec![1], true));
    engine.send("o-1", ShopEvent::Poke).await.unwrap();
    assert_eq!(journal(&store, "o-1").await, (vec![1, 2], true));
    engine
        .send("o-1", ShopEvent::Checkout(Checkout { total: 30 }))
        .await
        .unwrap();
    assert_eq!(engine.wait("o-1").await.unwrap(), ShopState::Shipped);
    // start, Poke, Checkout, pay done, pack done, the timer: six rows, the
    // last one closed.
    assert_eq!(journal(&store, "o-1").await, (vec![1, 2, 3, 4, 5, 6], false));
    // A rejected event changes nothing and writes nothing.
    assert!(matches!(
        engine.send("o-1", ShopEvent::Poke).await,
        Err(EngineError::Stopped(_))
    ));
    let rows = store.journal("Shop", "o-1").await.unwrap();
    assert_eq!(rows.len(), 6);
    // The format is JSON: the payment's output is in the row of its event.
    let done: serde_json::Value = serde_json::from_slice(&rows[3].data).unwrap();
    assert_eq!(done["step"]["kind"], "transition");
    assert_eq!(done["step"]["event"]["PayDone"], "paid 30");
    assert_eq!(done["context"]["payment"], "paid 30");
    assert_eq!(done["v"], 1);
    // Nothing left to recover.
    let again = engine_over(&backend, &desk);
    assert_eq!(again.recover().await.unwrap().resumed, 0);
}

fn engine_over(backend: &impl Backend, desk: &Arc<Desk>) -> Engine<Shop, Arc<Desk>> {
    engine(backend.open(), desk)
}

async fn recovery_resumes_without_rerunning_entry_actions(backend: impl Backend) {
    let desk = Arc::new(Desk::default());
    let first = engine_over(&backend, &desk);
    first.start("o-1", Cart::default()).await.unwrap();
    first.send("o-1", ShopEvent::Poke).await.unwrap();
    first.send("o-1", ShopEvent::Poke).await.unwrap();
    first.shutdown().await;
    assert_eq!(desk.entries.load(Ordering::SeqCst), 1);

    let second = engine_over(&backend, &desk);
    let recovery = second.recover().await.unwrap();
    assert_eq!(recovery.resumed, 1);
    assert!(recovery.errors.is_empty());
    assert_eq!(second.state("o-1").await.unwrap(), ShopState::Open);
    let snapshot = second.snapshot("o-1").await.unwrap();
    assert_eq!(snapshot.context.pokes, 2);
    assert_eq!(snapshot.history[0].kind, RecordKind::Recovered { seq: 3 });
    // Open's entry action ran once, before the restart.
    assert_eq!(desk.entries.load(Ordering::SeqCst), 1);
    // The instance goes on, and its journal has no gap.
    second
        .send("o-1", ShopEvent::Checkout(Checkout { total: 5 }))
        .await
        .unwrap();
    assert_eq!(second.wait("o-1").await.unwrap(), ShopState::Shipped);
    let store = backend.open();
    assert_eq!(journal(&store, "o-1").await, ((1..=7).collect(), false));
}

async fn an_activity_in_flight_restarts_with_its_key(backend: impl Backend) {
    let desk = Arc::new(Desk::default());
    desk.hold_pay.store(true, Ordering::SeqCst);
    let first = engine_over(&backend, &desk);
    first.start("o-1", Cart::default()).await.unwrap();
    first
        .send("o-1", ShopEvent::Checkout(Checkout { total: 9 }))
        .await
        .unwrap();
    until(|| desk.calls("pay").len() == 1).await;
    first.shutdown().await;

    desk.hold_pay.store(false, Ordering::SeqCst);
    let second = engine_over(&backend, &desk);
    assert_eq!(second.recover().await.unwrap().resumed, 1);
    assert_eq!(second.wait("o-1").await.unwrap(), ShopState::Shipped);
    let keys = desk.calls("pay");
    assert_eq!(keys.len(), 2, "the payment in flight ran again");
    assert_eq!(keys[0], keys[1], "with the same idempotency key");
    assert_eq!(desk.calls("pack").len(), 1, "the step after it ran once");
    assert_eq!(
        second.snapshot("o-1").await.unwrap().context.payment.as_deref(),
        Some("paid 9")
    );
}

async fn timers_fire_at_their_journaled_deadline(backend: impl Backend) {
    let desk = Arc::new(Desk::default());
    let first = engine_over(&backend, &desk);
    first.start("o-1", Cart::default()).await.unwrap();
    first
        .send("o-1", ShopEvent::Checkout(Checkout { total: 1 }))
        .await
        .unwrap();
    until(|| now(&first, "o-1").map(|s| *s.state()) == Some(ShopState::Waiting)).await;
    first.shutdown().await;

    // The deadline is a wall-clock time, 10 s after the timer was set; the
    // paused clock has not moved the wall clock since.
    let second = engine_over(&backend, &desk);
    assert_eq!(second.recover().await.unwrap().resumed, 1);
    tokio::time::sleep(Duration::from_millis(9_000)).await;
    assert_eq!(second.state("o-1").await.unwrap(), ShopState::Waiting);
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    until(|| now(&second, "o-1") == Some(Status::Finished(ShopState::Shipped))).await;
}

async fn a_passed_deadline_fires_at_once(backend: impl Backend) {
    let desk = Arc::new(Desk::default());
    let first = engine_over(&backend, &desk);
    first.start("o-1", Cart::default()).await.unwrap();
    first
        .send("o-1", ShopEvent::Checkout(Checkout { total: 1 }))
        .await
        .unwrap();
    until(|| now(&first, "o-1").map(|s| *s.state()) == Some(ShopState::Waiting)).await;
    first.shutdown().await;
    // Rewrite the newest row as if the deadline were long past.
    let store = backend.open();
    let rows = store.journal("Shop", "o-1").await.unwrap();
    let mut newest: serde_json::Value = serde_json::from_slice(&rows.last().unwrap().data).unwrap();
    newest["timers"][0]["deadline"] = serde_json::json!(1_000);
    let data = serde_json::to_vec(&newest).unwrap();
    let seq = rows.len() as u64 + 1;
    let row = Row {
        instance: "o-1".into(),
        seq,
        open: true,
        checksum: crc32fast::hash(&data),
        data,
        summary: Default::default(),
    };
    store.append("Shop", row).await.unwrap();

    let second = engine_over(&backend, &desk);
    assert_eq!(second.recover().await.unwrap().resumed, 1);
    until(|| now(&second, "o-1") == Some(Status::Finished(ShopState::Shipped))).await;
}

async fn unfinished_compensations_run_after_recovery(backend: impl Backend) {
    let desk = Arc::new(Desk::default());
    desk.hold_refund.store(true, Ordering::SeqCst);
    let first = engine_over(&backend, &desk);
    first.start("o-1", Cart::default()).await.unwrap();
    first
        .send("o-1", ShopEvent::Checkout(Checkout { total: 3 }))
        .await
        .unwrap();
    until(|| now(&first, "o-1").map(|s| *s.state()) == Some(ShopState::Waiting)).await;
    first.send("o-1", ShopEvent::Cancel).await.unwrap();
    // `unpack` runs first (newest first), then `refund` is stuck.
    until(|| desk.calls("refund").len() == 1).await;
    assert_eq!(desk.calls("unpack").len(), 1);
    first.shutdown().await;

    desk.hold_refund.store(false, Ordering::SeqCst);
    let second = engine_over(&backend, &desk);
    assert_eq!(second.recover().await.unwrap().resumed, 1);
    assert_eq!(second.wait("o-1").await.unwrap(), ShopState::Failed);
    assert_eq!(
        desk.calls("unpack").len(),
        1,
        "a committed compensation is not run again"
    );
    let refunds = desk.calls("refund");
    assert_eq!(refunds.len(), 2);
    assert_eq!(refunds[0], refunds[1], "the same key for the interrupted compensation");
    // The compensation received the payment it undoes, before the restart
    // and after it: the output is journaled with the completed step.
    let paid = Payment("paid 3".into());
    assert_eq!(*desk.refunded.lock().unwrap(), [paid.clone(), paid]);
    let store = backend.open();
    let (seqs, open) = journal(&store, "o-1").await;
    assert!(!open);
    assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>());
}

async fn a_corrupt_row_fails_only_its_instance(backend: impl Backend) {
    let desk = Arc::new(Desk::default());
    let first = engine_over(&backend, &desk);
    for id in ["good", "bad-sum", "bad-json"] {
        first.start(id, Cart::default()).await.unwrap();
    }
    first.shutdown().await;
    let store = backend.open();
    let bad_sum = Row {
        instance: "bad-sum".into(),
        seq: 2,
        open: true,
        checksum: 1,
        data: b"{}".to_vec(),
        summary: Default::default(),
    };
    store.append("Shop", bad_sum).await.unwrap();
    let garbage = b"{\"v\":1,\"not\":\"a row\"}".to_vec();
    let bad_json = Row {
        instance: "bad-json".into(),
        seq: 2,
        open: true,
        checksum: crc32fast::hash(&garbage),
        data: garbage,
        summary: Default::default(),
    };
    store.append("Shop", bad_json).await.unwrap();

    let second = engine_over(&backend, &desk);
    let recovery = second.recover().await.unwrap();
    assert_eq!(recovery.resumed, 1);
    let mut errors = recovery.errors.clone();
    errors.sort_by_key(|e| e.to_string());
    assert!(
        matches!(&errors[0], StoreError::Corrupt { instance, seq: 2, .. } if instance == "bad-json"),
        "{errors:?}"
    );
    assert_eq!(
        errors[1],
        StoreError::Corrupt {
            instance: "bad-sum".into(),
            seq: 2,
            reason: "checksum mismatch".into()
        }
    );
    assert_eq!(
        errors[1].to_string(),
        "instance `bad-sum`: journal row 2 is corrupt: checksum mismatch"
    );
    // The broken instance answers with its error; the good one goes on.
    assert!(matches!(
        second.status("bad-sum").await,
        Err(EngineError::Store(StoreError::Corrupt { .. }))
    ));
    assert!(matches!(
        second.send("bad-json", ShopEvent::Poke).await,
        Err(EngineError::Store(StoreError::Corrupt { .. }))
    ));
    second.send("good", ShopEvent::Poke).await.unwrap();
    assert_eq!(second.snapshot("good").await.unwrap().context.pokes, 1);
}

/// The same workflow name with different states: what an older build wrote.
mod v0 {
    use super::Cart;
    use workflow::prelude::*;

    workflow! {
        pub workflow Shop {
            context Cart;
            initial Legacy;
            events { Checkout { total: u64 }, Poke }
            state Legacy { on Checkout => Done; }
            final Done;
        }
    }
    pub struct Old;
    impl ShopHandlers for Old {}
}

async fn a_changed_definition_is_refused_and_left_untouched(backend: impl Backend) {
    let old = Engine::<v0::Shop, v0::Old>::builder(v0::Old)
        .store(backend.open())
        .build();
    old.start("o-1", Cart::default()).await.unwrap();
    old.shutdown().await;
    let store = backend.open();
    let before = store.journal("Shop", "o-1").await.unwrap();

    let desk = Arc::new(Desk::default());
    let new = engine_over(&backend, &desk);
    let recovery = new.recover().await.unwrap();
    assert_eq!(recovery.resumed, 0);
    assert_eq!(
        recovery.errors,
        vec![StoreError::DefinitionChanged {
            instance: "o-1".into(),
            state: "Legacy".into(),
            reason: "no such state".into()
        }]
    );
    assert_eq!(
        recovery.errors[0].to_string(),
        "instance `o-1` cannot resume in state `Legacy`: the workflow changed (no such state)"
    );
    assert_eq!(store.journal("Shop", "o-1").await.unwrap(), before);
    assert!(matches!(
        new.state("o-1").await,
        Err(EngineError::Store(StoreError::DefinitionChanged { .. }))
    ));
}

/// An older build of `Shop` whose `Open` state the current one still has.
mod v1 {
    use super::Cart;
    use workflow::prelude::*;

    workflow! {
        pub workflow Shop {
            context Cart;
            initial Open;
            events { Checkout { total: u64 } }
            state Open { on Checkout => Done; }
            final Done;
        }
    }
    pub struct Old;
    impl ShopHandlers for Old {}
}

async fn a_compatible_change_resumes(backend: impl Backend) {
    let old = Engine::<v1::Shop, v1::Old>::builder(v1::Old)
        .store(backend.open())
        .build();
    old.start(
        "o-1",
        Cart {
            total: 4,
            ..Cart::default()
        },
    )
    .await
    .unwrap();
    old.shutdown().await;

    let desk = Arc::new(Desk::default());
    let new = engine_over(&backend, &desk);
    assert_eq!(new.recover().await.unwrap().resumed, 1);
    new.send("o-1", ShopEvent::Poke).await.unwrap();
    let cart = new.snapshot("o-1").await.unwrap().context;
    assert_eq!((cart.total, cart.pokes), (4, 1));
}

async fn a_batch_of_starts_is_committed_together(backend: impl Backend) {
    let desk = Arc::new(Desk::default());
    let first = engine_over(&backend, &desk);
    first.start("taken", Cart::default()).await.unwrap();
    first.shutdown().await;
    let engine = engine_over(&backend, &desk);
    let batch = ["a", "taken", "b", "a"].map(|id| (id.to_string(), Cart::default()));
    let results = engine.start_many(batch).await;
    assert_eq!(
        results,
        vec![
            Ok(()),
            Err(EngineError::DuplicateId("taken".into())),
            Ok(()),
            Err(EngineError::DuplicateId("a".into()))
        ]
    );
    let store = backend.open();
    for id in ["a", "b"] {
        assert_eq!(journal(&store, id).await, (vec![1], true), "{id}");
    }
    let answer = engine.state("taken").await;
    if backend.shared() {
        assert_eq!(
            answer,
            Ok(ShopState::Open),
            "the instance stored before, not the refused start"
        );
    } else {
        assert!(matches!(answer, Err(EngineError::UnknownInstance(_))));
    }
    engine.send("b", ShopEvent::Poke).await.unwrap();
}

async fn a_stored_id_is_a_duplicate(backend: impl Backend) {
    let desk = Arc::new(Desk::default());
    let first = engine_over(&backend, &desk);
    first.start("o-1", Cart::default()).await.unwrap();
    first.shutdown().await;
    // Not recovered: the id is still taken in the store.
    let second = engine_over(&backend, &desk);
    assert_eq!(
        second.start("o-1", Cart::default()).await,
        Err(EngineError::DuplicateId("o-1".into()))
    );
    let answer = second.state("o-1").await;
    if backend.shared() {
        assert_eq!(answer, Ok(ShopState::Open));
    } else {
        assert!(matches!(answer, Err(EngineError::UnknownInstance(_))));
    }
    second.start("o-2", Cart::default()).await.unwrap();
}

async fn recovering_twice_resumes_nothing_new(backend: impl Backend) {
    let desk = Arc::new(Desk::default());
    let first = engine_over(&backend, &desk);
    first.start("o-1", Cart::default()).await.unwrap();
    first.shutdown().await;
    let second = engine_over(&backend, &desk);
    assert_eq!(second.recover().await.unwrap().resumed, 1);
    assert_eq!(second.recover().await.unwrap().resumed, 0);
    second.send("o-1", ShopEvent::Poke).await.unwrap();
}

async fn recover_after_shutdown_is_refused_and_runs_nothing(backend: impl Backend) {
    let desk = Arc::new(Desk::default());
    desk.hold_pay.store(true, Ordering::SeqCst);
    let first = engine_over(&backend, &desk);
    first.start("o-1", Cart::default()).await.unwrap();
    first
        .send("o-1", ShopEvent::Checkout(Checkout { total: 5 }))
        .await
        .unwrap();
    until(|| desk.calls("pay").len() == 1).await;
    first.shutdown().await;

    let second = engine_over(&backend, &desk);
    second.shutdown().await;
    assert_eq!(second.recover().await, Err(EngineError::ShutDown));
    for _ in 0..100 {
        tokio::task::yield_now().await;
    }
    assert_eq!(desk.calls("pay").len(), 1, "no activity ran again");
    let answer = second.status("o-1").await;
    if backend.shared() {
        assert_eq!(answer, Ok(Status::Running(ShopState::Paying)));
    } else {
        assert_eq!(answer, Err(EngineError::UnknownInstance("o-1".into())));
    }
    assert!(second.list().is_empty());
    // Still there for an engine that is open.
    let third = engine_over(&backend, &desk);
    assert_eq!(third.recover().await.unwrap().resumed, 1);
    until(|| desk.calls("pay").len() == 2).await;
}

/// Idempotency keys are a specified hash (128-bit FNV-1a of the id, the
/// state's or compensation's name and the generation): these values hold
/// for every process, platform and Rust release.
#[tokio::test(start_paused = true)]
async fn idempotency_keys_are_fixed_values() {
    let desk = Arc::new(Desk::default());
    let engine = engine(Arc::new(MemoryStore::new()), &desk);
    engine.start("o-1", Cart::default()).await.unwrap();
    engine
        .send("o-1", ShopEvent::Checkout(Checkout { total: 5 }))
        .await
        .unwrap();
    until(|| desk.calls("pack").len() == 1).await;
    assert_eq!(desk.calls("pay"), [0x2487_fea5_8ed8_e07e_32ba_2138_e1d7_8760]);
    // Generation 2 went to Paying's completed step, which its compensation's
    // key is made of.
    assert_eq!(desk.calls("pack"), [0x200b_2af2_9617_fdda_cc7a_45c0_a227_f8e2]);
    until(|| now(&engine, "o-1").map(|s| *s.state()) == Some(ShopState::Waiting)).await;
    engine.send("o-1", ShopEvent::Cancel).await.unwrap();
    assert_eq!(engine.wait("o-1").await, Ok(ShopState::Failed));
    assert_eq!(desk.calls("refund"), [0xebca_ce63_1224_64cb_1956_af15_76ba_f76f]);
}

/// Appends to `id`'s journal its newest row's document with `edit` applied,
/// as row `seq` with a valid checksum: what another build of the workflow
/// (or an older engine) wrote.
async fn append_edited(store: &Arc<dyn Store>, id: &str, open: bool, edit: impl Fn(&str) -> String) {
    let rows = store.journal("Shop", id).await.unwrap();
    let newest = rows.last().unwrap();
    let data = edit(std::str::from_utf8(&newest.data).unwrap()).into_bytes();
    let row = Row {
        instance: id.into(),
        seq: newest.seq + 1,
        open,
        checksum: crc32fast::hash(&data),
        data,
        summary: Default::default(),
    };
    store.append("Shop", row).await.unwrap();
}

async fn a_context_that_no_longer_decodes_is_a_changed_definition(backend: impl Backend) {
    let desk = Arc::new(Desk::default());
    let first = engine_over(&backend, &desk);
    first.start("o-1", Cart::default()).await.unwrap();
    first.shutdown().await;
    // Same fingerprint, but a context whose `total` was a string: a field
    // whose type changed inside the context, which no name shows.
    let store = backend.open();
    append_edited(&store, "o-1", true, |doc| {
        doc.replace(r#""total":0"#, r#""total":"zero""#)
    })
    .await;
    let before = store.journal("Shop", "o-1").await.unwrap();

    let second = engine_over(&backend, &desk);
    let recovery = second.recover().await.unwrap();
    assert_eq!(recovery.resumed, 0);
    assert!(
        matches!(
            &recovery.errors[..],
            [StoreError::DefinitionChanged { instance, state, reason }]
                if instance == "o-1" && state == "Open" && reason.starts_with("its context or events no longer decode")
        ),
        "{:?}",
        recovery.errors
    );
    assert_eq!(store.journal("Shop", "o-1").await.unwrap(), before, "left untouched");
}

async fn an_open_row_in_a_final_state_is_finished_on_recovery(backend: impl Backend) {
    let desk = Arc::new(Desk::default());
    let first = engine_over(&backend, &desk);
    first.start("o-1", Cart::default()).await.unwrap();
    first
        .send("o-1", ShopEvent::Checkout(Checkout { total: 2 }))
        .await
        .unwrap();
    until(|| now(&first, "o-1").map(|s| *s.state()) == Some(ShopState::Waiting)).await;
    first.send("o-1", ShopEvent::Cancel).await.unwrap();
    assert_eq!(first.wait("o-1").await, Ok(ShopState::Failed));
    first.shutdown().await;
    // The same final row, but open, with nothing left to compensate.
    let store = backend.open();
    append_edited(&store, "o-1", true, str::to_string).await;
    let seq = store.journal("Shop", "o-1").await.unwrap().len();

    let second = engine_over(&backend, &desk);
    assert_eq!(second.recover().await.unwrap().resumed, 1);
    // (The store commits in real time: `until` waits without letting the
    // paused clock run ahead.)
    until(|| now(&second, "o-1") == Some(Status::Finished(ShopState::Failed))).await;
    assert_eq!(
        second.wait("o-1").await,
        Ok(ShopState::Failed),
        "finished, not running forever"
    );
    let (seqs, open) = journal(&store, "o-1").await;
    assert_eq!((seqs.len(), open), (seq + 1, false), "its journal is closed");
    assert_eq!(desk.calls("refund").len(), 1, "nothing compensated twice");
    assert_eq!(second.recover().await.unwrap().resumed, 0);
}

async fn a_finished_instance_is_answered_from_the_store(backend: impl Backend) {
    use workflow::journal::{self, Step};

    let desk = Arc::new(Desk::default());
    let first = engine_over(&backend, &desk);
    for id in ["failed", "cancelled", "running"] {
        first.start(id, Cart::default()).await.unwrap();
    }
    first
        .send("failed", ShopEvent::Checkout(Checkout { total: 2 }))
        .await
        .unwrap();
    until(|| now(&first, "failed").map(|s| *s.state()) == Some(ShopState::Waiting)).await;
    first.send("failed", ShopEvent::Cancel).await.unwrap();
    assert_eq!(first.wait("failed").await, Ok(ShopState::Failed));
    first.cancel("cancelled").await.unwrap();
    first.shutdown().await;

    // A new engine, nothing recovered: the finished instances are in the store.
    let second = engine_over(&backend, &desk);
    assert_eq!(second.status("failed").await, Ok(Status::Finished(ShopState::Failed)));
    assert_eq!(second.state("failed").await, Ok(ShopState::Failed));
    assert_eq!(second.wait("failed").await, Ok(ShopState::Failed));
    assert_eq!(second.status("cancelled").await, Ok(Status::Cancelled(ShopState::Open)));
    assert_eq!(
        second.wait("cancelled").await,
        Err(EngineError::Cancelled("cancelled".into()))
    );
    let snapshot = second.snapshot("failed").await.unwrap();
    assert_eq!(snapshot.status, Status::Finished(ShopState::Failed));
    assert_eq!(snapshot.context.total, 2);
    let kinds: Vec<RecordKind> = snapshot.history.iter().map(|r| r.kind.clone()).collect();
    assert_eq!(kinds[0], RecordKind::Started("Open".into()));
    assert_eq!(
        kinds[1],
        RecordKind::Transition {
            from: "Open".into(),
            event: "Checkout",
            to: "Paying".into()
        }
    );
    assert_eq!(
        kinds[kinds.len() - 2..],
        [
            RecordKind::Compensated {
                compensation: "unpack",
                error: None
            },
            RecordKind::Compensated {
                compensation: "refund",
                error: None
            },
        ]
    );
    // Unknown and unfinished (not recovered) instances are unknown, as before (on one process).
    assert_eq!(
        second.status("nobody").await,
        Err(EngineError::UnknownInstance("nobody".into()))
    );
    if backend.shared() {
        // Another process may run it: `wait` would follow it in the store until it finishes.
        assert_eq!(second.status("running").await, Ok(Status::Running(ShopState::Open)));
    } else {
        assert_eq!(
            second.wait("running").await,
            Err(EngineError::UnknownInstance("running".into()))
        );
    }

    // The rows decode with the workflow's types, no JSON parsing.
    let store = backend.open();
    let rows = store.journal("Shop", "failed").await.unwrap();
    let entries: Vec<_> = rows.iter().map(|row| journal::decode::<Shop>(row).unwrap()).collect();
    assert!(matches!(entries[0].step, Step::Started));
    assert!(matches!(
        &entries[2].step,
        Step::Transition { event: ShopEvent::PayDone(Payment(p)), .. } if p == "paid 2"
    ));
    assert!(matches!(
        &entries.last().unwrap().step,
        Step::Compensated { compensation, error: None, kind: None } if compensation == "refund"
    ));
    assert_eq!(entries.last().unwrap().status, journal::Status::Finished);
    assert_eq!(entries.last().unwrap().active, ["Failed"]);
    let mut bad = rows[0].clone();
    bad.checksum ^= 1;
    assert!(matches!(
        journal::decode::<Shop>(&bad),
        Err(StoreError::Corrupt { seq: 1, .. })
    ));
}

/// A store whose appends fail once `broken` is set: a full disk.
struct FullDisk {
    inner: MemoryStore,
    broken: AtomicBool,
}

#[async_trait]
impl Store for FullDisk {
    async fn append(&self, workflow: &str, row: Row) -> Result<(), StoreError> {
        if self.broken.load(Ordering::SeqCst) && row.instance != "spared" {
            return Err(StoreError::Backend("database or disk is full".into()));
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

#[tokio::test(start_paused = true)]
async fn a_failing_store_stops_the_instance_and_no_other() {
    let store = Arc::new(FullDisk {
        inner: MemoryStore::new(),
        broken: AtomicBool::new(false),
    });
    let desk = Arc::new(Desk::default());
    let engine = engine(store.clone(), &desk);
    engine.start("o-1", Cart::default()).await.unwrap();
    engine.start("spared", Cart::default()).await.unwrap();
    store.broken.store(true, Ordering::SeqCst);

    let full = StoreError::Backend("database or disk is full".into());
    assert_eq!(
        engine.send("o-1", ShopEvent::Poke).await,
        Err(EngineError::Store(full.clone()))
    );
    assert_eq!(
        engine.status("o-1").await.unwrap(),
        Status::Failed {
            state: ShopState::Open,
            reason: "store failure: database or disk is full".into()
        }
    );
    assert_eq!(
        engine.start("o-2", Cart::default()).await,
        Err(EngineError::Store(full.clone()))
    );
    // A start the store refused leaves no trace in the engine.
    assert_eq!(
        engine.status("o-2").await,
        Err(EngineError::UnknownInstance("o-2".into()))
    );
    // The journal keeps the last committed step, to recover from later.
    assert_eq!(store.journal("Shop", "o-1").await.unwrap().len(), 1);
    engine.send("spared", ShopEvent::Poke).await.unwrap();
    assert_eq!(engine.snapshot("spared").await.unwrap().context.pokes, 1);
}

#[tokio::test]
async fn a_read_only_file_gives_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.db");
    {
        let store = SqliteStore::open(&path).unwrap();
        store
            .append(
                "Shop",
                Row {
                    instance: "x".into(),
                    seq: 1,
                    open: true,
                    checksum: 0,
                    data: vec![],
                    summary: Default::default(),
                },
            )
            .await
            .unwrap();
    }
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open_read_only(&path).unwrap());
    let desk = Arc::new(Desk::default());
    let engine = engine(store, &desk);
    let refused = engine.start("o-1", Cart::default()).await;
    assert!(
        matches!(refused, Err(EngineError::Store(StoreError::Backend(_)))),
        "{refused:?}"
    );
}

#[tokio::test]
async fn a_store_from_a_newer_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.db");
    drop(SqliteStore::open(&path).unwrap());
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute("UPDATE meta SET value = 3 WHERE key = 'schema_version'", [])
        .unwrap();
    drop(conn);
    let refused = SqliteStore::open(&path).err().unwrap();
    assert_eq!(refused, StoreError::SchemaTooNew { found: 3, supported: 2 });
    assert_eq!(
        refused.to_string(),
        "the store's schema version is 3, newer than this build reads (2); upgrade the crate to open it"
    );
}

/// A statechart: two regions joined, a pause that leaves them, and a deep
/// history that brings them back.
mod chart {
    use workflow::prelude::*;

    workflow! {
        pub workflow Fork {
            initial Working;
            events { PayOk, StockOk, Pause, Resume }
            state Working {
                initial Both;
                history deep Back;
                parallel Both {
                    state Pay { state Paying { on PayOk => Paid; } final Paid; }
                    state Stock { state Reserving { on StockOk => Reserved; } final Reserved; }
                    on done => Joined;
                }
                on Pause => Paused;
            }
            state Paused { on Resume => Back; }
            final Joined;
        }
    }
    pub struct Nothing;
    impl ForkHandlers for Nothing {}
}

async fn a_statechart_resumes_its_regions_and_history(backend: impl Backend) {
    use chart::{Fork, ForkEvent, ForkState, Nothing};

    let first = Engine::<Fork, Nothing>::builder(Nothing).store(backend.open()).build();
    first.start("f-1", ()).await.unwrap();
    first.send("f-1", ForkEvent::PayOk).await.unwrap();
    first.send("f-1", ForkEvent::Pause).await.unwrap();
    assert!(first.state("f-1").await.unwrap().is_in(ForkState::Paused));
    first.shutdown().await;

    let second = Engine::<Fork, Nothing>::builder(Nothing).store(backend.open()).build();
    assert_eq!(second.recover().await.unwrap().resumed, 1);
    // The deep history recorded before the restart brings back Paid beside Reserving.
    second.send("f-1", ForkEvent::Resume).await.unwrap();
    let state = second.state("f-1").await.unwrap();
    assert!(
        state.is_in(ForkState::Paid) && state.is_in(ForkState::Reserving),
        "{state}"
    );
    second.send("f-1", ForkEvent::StockOk).await.unwrap();
    assert!(second.wait("f-1").await.unwrap().is_in(ForkState::Joined));
}

/// A context JSON cannot hold: a map with non-string keys.
mod unencodable {
    use std::collections::HashMap;
    use workflow::prelude::*;

    #[derive(Debug, Default, Clone, serde::Serialize, serde::Deserialize)]
    pub struct Pairs(pub HashMap<(u8, u8), u8>);

    workflow! {
        pub workflow Grid {
            context Pairs;
            initial Open;
            events { Close }
            state Open { on Close => Closed; }
            final Closed;
        }
    }
    pub struct Nothing;
    impl GridHandlers for Nothing {}
}

#[tokio::test]
async fn a_context_that_cannot_be_encoded_is_refused_with_an_error() {
    use unencodable::{Grid, Nothing, Pairs};

    let store = Arc::new(MemoryStore::new());
    let engine = Engine::<Grid, Nothing>::builder(Nothing).store(store.clone()).build();
    let pairs = Pairs([((1, 2), 3)].into_iter().collect());
    let refused = engine.start("g-1", pairs).await;
    assert!(
        matches!(&refused, Err(EngineError::Store(StoreError::Unencodable { instance, reason })) if instance == "g-1" && reason == "key must be a string"),
        "{refused:?}"
    );
    // The refused start left no trace: no journal, no status, no history,
    // no failure counted, and the id is free.
    assert!(store.journal("Grid", "g-1").await.unwrap().is_empty());
    assert_eq!(
        engine.status("g-1").await,
        Err(EngineError::UnknownInstance("g-1".into()))
    );
    assert!(engine.list().is_empty());
    assert_eq!(engine.metrics().failures, 0);
    engine.start("g-1", Pairs::default()).await.unwrap();
    assert_eq!(store.journal("Grid", "g-1").await.unwrap().len(), 1);
    engine.send("g-1", unencodable::GridEvent::Close).await.unwrap();
}
