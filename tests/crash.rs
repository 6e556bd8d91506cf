//! The crash test: a worker process runs 2,000 order workflows on a SQLite
//! journal while this test kills it with SIGKILL at seeded random moments and
//! starts it again, round after round; a last round is left to finish. Then
//! the files are audited:
//!
//! - every workflow reached exactly one final state, `Shipped`, and nothing
//!   after it;
//! - every instance's journal is rows `1..=n`: no gap, no duplicate, each
//!   row's checksum right;
//! - every activity's side effect, recorded by the fake services under its
//!   idempotency key, was applied exactly once: one effect per instance and
//!   activity, 6,000 in all. An activity in flight at a kill runs again after
//!   recovery; with the same key its effect is deduplicated, with a new key
//!   it would show up twice.
//!
//! SIGKILL rather than a shutdown: nothing in the worker gets to run when it
//! dies, as after a crash. The worker is this very test binary, re-executed
//! to run the ignored test [`crash_worker`] with [`DIR_VAR`] set.
//!
//! `WORKFLOW_CRASH_SEED=<u64>` replays another sequence of kills.

#![cfg(all(unix, feature = "sqlite"))]

mod crash_common;

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crash_common::{recovered_count, seed, SplitMix, Worker, DIR_VAR, SIGKILL};

use rusqlite::{params, Connection};
use workflow::codec::Codec;
use workflow::prelude::*;
use workflow::{Engine, EngineError, SqliteStore, Store};

/// How many orders the worker runs.
const ORDERS: usize = 2_000;

/// Rounds that end in a SIGKILL, before the round left to finish.
const KILLS: usize = 6;

/// The seed of the kill delays, unless `WORKFLOW_CRASH_SEED` gives one.
const SEED: u64 = 0x5eed_c4a5_0001;

/// How many tasks of the worker start orders, each one at a time.
const STARTERS: usize = 16;

/// The pause of a starter after each order it started: orders arrive at
/// about 16 per 20 ms, 800 per second, as they would in production, rather
/// than all at once. The worker's progress per second is then the same on a
/// fast machine as on a slow one (as long as it keeps up), so the kills below
/// land while orders are in flight, not after the last one shipped.
const START_EVERY: Duration = Duration::from_millis(20);

/// The longest delay between the worker's `ready` and its kill: from
/// `ready` on, recovered activities are running again and new orders arrive.
/// Six delays average 1.5 s of arrivals, about 1,200 of the 2,000 orders
/// (with the default seed they add up to 1.4 s), so every kill finds orders
/// in flight and the last round still has some to finish. The test checks
/// that at least five kills landed before the worker was done.
const MAX_DELAY: Duration = Duration::from_millis(500);

/// How long a worker may take to finish the last round: far more than it
/// needs, so only a hang trips it.
const FINISH_TIMEOUT: Duration = Duration::from_secs(120);

/// The activities of an order, in the order they run.
const ACTIVITIES: [&str; 3] = ["charge_payment", "reserve_stock", "ship"];

/// An order instance's context: its own id, for the services to name the
/// instance their effects belong to.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct OrderCtx {
    pub id: String,
}

workflow! {
    /// Three sequential service calls, each of which may lose its reply once.
    pub workflow Order {
        context OrderCtx;
        initial Charging;
        state Charging {
            invoke charge_payment -> () {
                retry 3 backoff 1ms..4ms;
                done => Reserving;
                error => Failed;
            }
        }
        state Reserving {
            invoke reserve_stock -> () {
                retry 3 backoff 1ms..4ms;
                done => Shipping;
                error => Failed;
            }
        }
        state Shipping {
            invoke ship -> () {
                retry 3 backoff 1ms..4ms;
                done => Shipped;
                error => Failed;
            }
        }
        final Shipped;
        final Failed (failure);
    }
}

/// The fake payment, stock and shipping services: each call applies its
/// effect to `effects.db`, at most once per idempotency key, as a real
/// service that deduplicates by key would.
///
/// Table `effects`: `key` (the idempotency key, hex, primary key), `instance`,
/// `activity`, `calls` (every call with this key) and `fresh` (calls that were
/// an invocation's first attempt: more than one means the invocation itself
/// ran again, after a kill).
struct Services {
    /// Behind a mutex: a connection is not `Sync`. Each call holds it for one
    /// statement (WAL, `synchronous=NORMAL`: no sync, the worker dies by
    /// SIGKILL, not by a power loss).
    effects: Mutex<Connection>,
}

impl Services {
    fn open(path: &Path) -> Services {
        let conn = Connection::open(path).expect("open effects.db");
        conn.busy_timeout(Duration::from_secs(10)).unwrap();
        conn.pragma_update(None, "journal_mode", "WAL").unwrap();
        conn.pragma_update(None, "synchronous", "NORMAL").unwrap();
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS effects (
                 key TEXT PRIMARY KEY NOT NULL,
                 instance TEXT NOT NULL,
                 activity TEXT NOT NULL,
                 calls INTEGER NOT NULL,
                 fresh INTEGER NOT NULL
             ) WITHOUT ROWID;",
        )
        .unwrap();
        Services {
            effects: Mutex::new(conn),
        }
    }

    /// One call of `call.activity` for order `order`: takes 0 to 29 ms (so
    /// kills find calls in flight), applies the effect once per key, and
    /// for one key in eight loses its first attempt's reply after applying
    /// the effect: the engine retries with the same key, and the service
    /// must not apply it again.
    async fn call(&self, order: &OrderCtx, call: &ActivityCall) -> Result<(), ActivityError> {
        let pause = u64::try_from(call.key % 30).unwrap_or(0);
        tokio::time::sleep(Duration::from_millis(pause)).await;
        {
            let conn = self.effects.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            conn.execute(
                "INSERT INTO effects (key, instance, activity, calls, fresh) VALUES (?1, ?2, ?3, 1, ?4)
                 ON CONFLICT (key) DO UPDATE SET calls = calls + 1, fresh = fresh + excluded.fresh",
                params![
                    format!("{:032x}", call.key),
                    order.id,
                    call.activity,
                    i64::from(call.attempt == 1)
                ],
            )?;
        }
        if call.attempt == 1 && (call.key >> 8) % 8 == 0 {
            return Err(ActivityError::new("the reply was lost"));
        }
        Ok(())
    }
}

impl OrderHandlers for Arc<Services> {
    async fn charge_payment(&self, order: &OrderCtx, call: &ActivityCall) -> Result<(), ActivityError> {
        self.call(order, call).await
    }
    async fn reserve_stock(&self, order: &OrderCtx, call: &ActivityCall) -> Result<(), ActivityError> {
        self.call(order, call).await
    }
    async fn ship(&self, order: &OrderCtx, call: &ActivityCall) -> Result<(), ActivityError> {
        self.call(order, call).await
    }
}

fn order_id(n: usize) -> String {
    format!("order-{n:04}")
}

/// The codec the worker's engine writes with: with the `encryption`
/// feature the AEAD one, so that the kills also land between a row's
/// encryption and its commit (and the audit decrypts every row); else none.
fn codec() -> Option<Arc<dyn Codec>> {
    #[cfg(feature = "encryption")]
    {
        let keys = workflow::codec::Keys::new(1, [5; 32]);
        Some(Arc::new(workflow::codec::Aead::new(keys).expect("randomness")))
    }
    #[cfg(not(feature = "encryption"))]
    None
}

/// The worker: resumes what the killed worker left unfinished, starts every
/// order not yet in the journal, and waits for the ones it runs. Prints
/// `ready` once recovered (the parent times its kill from there) and `done`
/// at the end.
///
/// Ignored so that a plain `cargo test` does not run it; without
/// [`DIR_VAR`] (`cargo test -- --ignored`) it returns at once.
#[test]
#[ignore = "the crash test's worker process, spawned by `orders_survive_sigkill`"]
fn crash_worker() {
    let Some(dir) = std::env::var_os(DIR_VAR) else {
        return;
    };
    let dir = Path::new(&dir);
    let began = Instant::now();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.join("journal.db")).expect("open journal.db"));
    let services = Arc::new(Services::open(&dir.join("effects.db")));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let builder = Engine::<Order, Arc<Services>>::builder(services).store(store);
        let engine = match codec() {
            Some(codec) => builder.codec(codec),
            None => builder,
        }
        .build();
        let recovery = engine.recover().await.expect("recover");
        assert!(recovery.errors.is_empty(), "recovery errors: {:?}", recovery.errors);
        let recovered: Vec<String> = engine.list().into_iter().map(|(id, _)| id).collect();
        assert_eq!(recovered.len(), recovery.resumed);
        println!("ready: recovered {} instances", recovery.resumed);

        // Starts (one commit each) overlap each other and the activities of
        // the orders already started. Orders already in the store take no
        // pause: a restarted worker gets to new ones at once.
        let starters: Vec<_> = (0..STARTERS)
            .map(|task| {
                let engine = engine.clone();
                tokio::spawn(async move {
                    let mut started = Vec::new();
                    for id in (task..ORDERS).step_by(STARTERS).map(order_id) {
                        let context = OrderCtx { id: id.clone() };
                        match engine.start(id.clone(), context).await {
                            Ok(()) => {
                                started.push(id);
                                tokio::time::sleep(START_EVERY).await;
                            }
                            // Recovered just now, or finished in an earlier round.
                            Err(EngineError::DuplicateId(_)) => {}
                            Err(error) => panic!("start {id}: {error}"),
                        }
                    }
                    started
                })
            })
            .collect();
        let mut started = Vec::new();
        for starter in starters {
            started.extend(starter.await.unwrap());
        }

        // Orders finished in an earlier round are not in this engine: the
        // parent audits them in the store.
        let waiters: Vec<_> = started
            .iter()
            .chain(&recovered)
            .cloned()
            .map(|id| {
                let engine = engine.clone();
                tokio::spawn(async move {
                    let reached = engine.wait(&id).await;
                    assert_eq!(reached, Ok(OrderState::Shipped), "order {id}");
                })
            })
            .collect();
        for waiter in waiters {
            waiter.await.unwrap();
        }
        engine.shutdown().await;
        println!(
            "done: recovered {}, started {} in {} ms",
            recovered.len(),
            started.len(),
            began.elapsed().as_millis()
        );
    });
}

/// The test: see the module's documentation.
#[test]
fn orders_survive_sigkill() {
    let seed = seed(SEED);
    println!("seed {seed} (WORKFLOW_CRASH_SEED={seed} replays it)");
    let mut rng = SplitMix(seed);
    let dir = tempfile::tempdir().unwrap();
    let began = Instant::now();

    let (mut killed, mut recovered) = (0, 0);
    for round in 1..=KILLS {
        let mut worker = Worker::spawn("crash_worker", dir.path());
        let Some(ready) = worker.ready() else {
            let status = worker.exit(FINISH_TIMEOUT);
            panic!(
                "round {round}: the worker exited ({status}) before ready: {:#?}",
                worker.output
            );
        };
        recovered += recovered_count(&ready);
        let delay = rng.delay(MAX_DELAY);
        std::thread::sleep(delay);
        let _ = worker.child.kill();
        let status = worker.exit(FINISH_TIMEOUT);
        let outcome = match (status.signal(), worker.done()) {
            (Some(SIGKILL), _) => {
                killed += 1;
                "killed".to_string()
            }
            (None, Some(done)) if status.success() => format!("finished before the kill ({done})"),
            _ => panic!("round {round}: the worker failed ({status}): {:#?}", worker.output),
        };
        println!("round {round}: {ready}; SIGKILL after {delay:?}: {outcome}");
    }
    // Not a property of the engine, but of the test: it must have crashed
    // the worker mid-flight, or it proved nothing.
    assert!(
        killed >= 5,
        "only {killed} kills landed before the worker finished: lower MAX_DELAY or raise ORDERS"
    );

    let mut worker = Worker::spawn("crash_worker", dir.path());
    let ready = worker.ready();
    let status = worker.exit(FINISH_TIMEOUT);
    assert!(
        status.success(),
        "last round: the worker failed ({status}): {:#?}",
        worker.output
    );
    let ready = ready.unwrap_or_default();
    recovered += recovered_count(&ready);
    println!("last round: {ready}; {}", worker.done().unwrap_or("no done line"));
    assert!(
        recovered > 0,
        "no kill left an order unfinished: recovery went untested"
    );

    let effects = audit(dir.path());
    println!(
        "audit passed: {ORDERS} orders shipped, {} effects; {recovered} recoveries of unfinished orders, \
         {} invocations ran again after a kill ({} effects hit more than once by them), {} calls in all; \
         {:?} in all",
        effects.rows,
        effects.reruns,
        effects.rerun_keys,
        effects.calls,
        began.elapsed()
    );
}

/// What the effects table says beyond "each exactly once".
struct Effects {
    rows: usize,
    /// Invocations started again with a key already used: after a kill.
    reruns: u64,
    /// Keys whose invocation started more than once.
    rerun_keys: u64,
    /// Every call the services received, retries and re-runs included.
    calls: u64,
}

/// Checks the journal and the effects; on failure keeps the files and says
/// where.
fn audit(dir: &Path) -> Effects {
    let mut problems = Vec::new();
    audit_journal(&dir.join("journal.db"), &mut problems);
    let effects = audit_effects(&dir.join("effects.db"), &mut problems);
    if !problems.is_empty() {
        let kept = tempfile::TempDir::with_prefix("crash-test-kept-")
            .map(tempfile::TempDir::keep)
            .expect("a directory to keep the files in");
        for file in ["journal.db", "journal.db-wal", "effects.db", "effects.db-wal"] {
            let _ = std::fs::copy(dir.join(file), kept.join(file));
        }
        panic!(
            "{} problems (files kept in {}), the first ones:\n{}",
            problems.len(),
            kept.display(),
            problems.iter().take(30).cloned().collect::<Vec<_>>().join("\n")
        );
    }
    effects
}

/// Every instance's journal: rows `1..=n` with good checksums, every row
/// open and running but the last, which is closed, `finished`, in `Shipped`;
/// the states in between are the order's path, each once.
fn audit_journal(path: &Path, problems: &mut Vec<String>) {
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let store = SqliteStore::open(path).unwrap();
    let open = runtime.block_on(store.open_rows("Order")).unwrap();
    if !open.is_empty() {
        problems.push(format!(
            "{} instances still open: {:?}",
            open.len(),
            open.iter()
                .map(|r| r.as_ref().map(|r| (&r.instance, r.seq)))
                .take(10)
                .collect::<Vec<_>>()
        ));
    }
    let path_of_states = ["Charging", "Reserving", "Shipping", "Shipped"];
    for id in (0..ORDERS).map(order_id) {
        let rows = runtime.block_on(store.journal("Order", &id)).unwrap();
        let seqs: Vec<u64> = rows.iter().map(|r| r.seq).collect();
        if seqs != (1..=rows.len() as u64).collect::<Vec<_>>() {
            problems.push(format!("{id}: journal rows {seqs:?}: a gap or a duplicate"));
            continue;
        }
        if rows.len() != path_of_states.len() {
            problems.push(format!(
                "{id}: {} journal rows, not {}",
                rows.len(),
                path_of_states.len()
            ));
        }
        for (row, expected) in rows.iter().zip(path_of_states) {
            let seq = row.seq;
            if crc32fast::hash(&row.data) != row.checksum {
                problems.push(format!("{id}: row {seq}: checksum mismatch"));
                continue;
            }
            let at = workflow::codec::RowId {
                workflow: "Order",
                instance: &id,
                seq,
                open: row.open,
            };
            let data = match codec().map(|codec| codec.decode(&at, &row.data).map(|d| d.into_owned())) {
                None => row.data.clone(),
                Some(Ok(data)) => data,
                Some(Err(error)) => {
                    problems.push(format!("{id}: row {seq}: the codec refuses it: {error}"));
                    continue;
                }
            };
            let doc: serde_json::Value = match serde_json::from_slice(&data) {
                Ok(doc) => doc,
                Err(error) => {
                    problems.push(format!("{id}: row {seq}: not JSON: {error}"));
                    continue;
                }
            };
            let last = seq == rows.len() as u64;
            let status = if last { "finished" } else { "running" };
            let fits = row.open != last
                && doc["status"]["state"] == status
                && doc["active"] == serde_json::json!([expected])
                && doc["context"]["id"] == id.as_str();
            if !fits {
                problems.push(format!(
                    "{id}: row {seq} (open {}): expected {status} in {expected}: {doc}",
                    row.open
                ));
            }
        }
    }
    // No instance the worker never started.
    let conn = Connection::open(path).unwrap();
    let mut query = conn
        .prepare("SELECT DISTINCT instance FROM journal WHERE workflow = 'Order'")
        .unwrap();
    let stored: BTreeSet<String> = query
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let expected: BTreeSet<String> = (0..ORDERS).map(order_id).collect();
    let strays: Vec<_> = stored.difference(&expected).take(10).collect();
    if !strays.is_empty() {
        problems.push(format!("journals of unknown instances: {strays:?}"));
    }
}

/// One effect per order and activity, with its instance and activity named.
fn audit_effects(path: &Path, problems: &mut Vec<String>) -> Effects {
    let conn = Connection::open(path).unwrap();
    let mut query = conn
        .prepare("SELECT instance, activity, key, calls, fresh FROM effects ORDER BY instance, activity")
        .unwrap();
    let rows: Vec<(String, String, String, u64, u64)> = query
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let mut keys: BTreeMap<(String, String), Vec<&str>> = BTreeMap::new();
    for (instance, activity, key, ..) in &rows {
        keys.entry((instance.clone(), activity.clone())).or_default().push(key);
    }
    for id in (0..ORDERS).map(order_id) {
        for activity in ACTIVITIES {
            match keys.remove(&(id.clone(), activity.to_string())) {
                Some(found) if found.len() == 1 => {}
                Some(found) => problems.push(format!(
                    "{id}: {activity} applied {} times, under keys {found:?}",
                    found.len()
                )),
                None => problems.push(format!("{id}: {activity} never applied")),
            }
        }
    }
    if !keys.is_empty() {
        problems.push(format!(
            "effects of unknown orders or activities: {:?}",
            keys.keys().take(10).collect::<Vec<_>>()
        ));
    }
    if rows.len() != ORDERS * ACTIVITIES.len() {
        problems.push(format!("{} effects, not {}", rows.len(), ORDERS * ACTIVITIES.len()));
    }
    Effects {
        rows: rows.len(),
        reruns: rows.iter().map(|r| r.4.saturating_sub(1)).sum(),
        rerun_keys: rows.iter().filter(|r| r.4 > 1).count() as u64,
        calls: rows.iter().map(|r| r.3).sum(),
    }
}
