//! The statechart crash test: a worker process runs trips (a flight and a
//! hotel booked in two parallel regions, a timer, a check that fails one
//! trip in three, whose compensations then cancel both bookings) on a SQLite
//! journal while this test kills it with SIGKILL at seeded random moments;
//! a last round is left to finish. Then the files are audited:
//!
//! - every trip reached exactly one final state, the one its check decides
//!   (`Done`, or `Failed` for one in three), and its journal is rows
//!   `1..=n`, each decoded with `journal::decode`, every one open but the
//!   last;
//! - every activity's side effect, recorded under its idempotency key by
//!   services that deduplicate by key, was applied exactly once;
//! - every failed trip's two compensations were applied exactly once each,
//!   under a key of their own, and each received the output of the booking
//!   it undoes (the output is journaled: a compensation interrupted by a
//!   kill gets it again after recovery); no finished trip was compensated.
//!
//! The worker also waits for trips finished in earlier rounds: a durable
//! engine answers those from the store. `WORKFLOW_CRASH_SEED=<u64>` replays
//! another sequence of kills.

#![cfg(all(unix, feature = "sqlite"))]

mod crash_common;

use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crash_common::{recovered_count, seed, SplitMix, Worker, DIR_VAR, SIGKILL};
use rusqlite::{params, Connection};
use workflow::journal::{self, Status};
use workflow::prelude::*;
use workflow::{Config, Engine, EngineError, SqliteStore, Store};

/// How many trips the worker runs.
const TRIPS: u32 = 1_000;

/// Rounds that end in a SIGKILL, before the round left to finish.
const KILLS: usize = 8;

const SEED: u64 = 0x5eed_c4a7_0002;

/// Tasks of the worker starting trips, each pausing [`START_EVERY`] after
/// each start: about 600 trips a second, so that kills land mid-flight.
const STARTERS: u32 = 12;
const START_EVERY: Duration = Duration::from_millis(20);

/// The longest delay between the worker's `ready` and its kill. Eight delays
/// average 1.2 s of arrivals, about 700 of the 1,000 trips.
const MAX_DELAY: Duration = Duration::from_millis(300);

const FINISH_TIMEOUT: Duration = Duration::from_secs(60);

/// A trip's context: its number.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TripCtx {
    pub n: u32,
}

workflow! {
    /// Two bookings at once, a pause, then a check that may fail the trip.
    pub workflow Trip {
        context TripCtx;
        initial Booking;
        state Booking {
            initial Both;
            parallel Both {
                state Air {
                    state Flying {
                        invoke book_flight -> String {
                            retry 3 backoff 1ms..4ms;
                            done => Flown;
                            error => Failed;
                        }
                        compensate cancel_flight;
                    }
                    final Flown;
                }
                state Land {
                    state Housing {
                        invoke book_hotel -> String {
                            retry 3 backoff 1ms..4ms;
                            done => Housed;
                            error => Failed;
                        }
                        compensate cancel_hotel;
                    }
                    final Housed;
                }
                on done => Holding;
            }
            state Holding { after 30ms => Checking; }
            state Checking {
                invoke check -> () { retry 3 backoff 1ms..4ms; done => Done; error => Failed; }
            }
        }
        final Done;
        final Failed (failure);
    }
}

fn trip_id(n: u32) -> String {
    format!("trip-{n:04}")
}

/// Whether trip `n`'s check fails (non-retryable), failing the trip.
fn fails(n: u32) -> bool {
    n % 3 == 0
}

/// The services: each call applies its effect to `effects.db` at most once
/// per idempotency key, noting the output it produced or (for a
/// compensation) received. One key in eight loses its first attempt's reply
/// after applying the effect, so the engine retries with the same key.
struct Services {
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
                 name TEXT NOT NULL,
                 output TEXT NOT NULL,
                 calls INTEGER NOT NULL
             ) WITHOUT ROWID;",
        )
        .unwrap();
        Services {
            effects: Mutex::new(conn),
        }
    }

    async fn call(&self, trip: &TripCtx, call: &ActivityCall, output: &str) -> Result<(), ActivityError> {
        let pause = u64::try_from(call.key % 20).unwrap_or(0);
        tokio::time::sleep(Duration::from_millis(pause)).await;
        {
            let conn = self.effects.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            conn.execute(
                "INSERT INTO effects (key, instance, name, output, calls) VALUES (?1, ?2, ?3, ?4, 1)
                 ON CONFLICT (key) DO UPDATE SET calls = calls + 1",
                params![format!("{:032x}", call.key), trip_id(trip.n), call.activity, output],
            )?;
        }
        if call.attempt == 1 && (call.key >> 8) % 8 == 0 {
            return Err(ActivityError::new("the reply was lost"));
        }
        Ok(())
    }
}

impl TripHandlers for Arc<Services> {
    async fn book_flight(&self, trip: &TripCtx, call: &ActivityCall) -> Result<String, ActivityError> {
        let booking = format!("flight-{}", trip.n);
        self.call(trip, call, &booking).await?;
        Ok(booking)
    }
    async fn book_hotel(&self, trip: &TripCtx, call: &ActivityCall) -> Result<String, ActivityError> {
        let booking = format!("hotel-{}", trip.n);
        self.call(trip, call, &booking).await?;
        Ok(booking)
    }
    async fn check(&self, trip: &TripCtx, call: &ActivityCall) -> Result<(), ActivityError> {
        self.call(trip, call, "").await?;
        if fails(trip.n) {
            return Err(ActivityError::non_retryable("no visa"));
        }
        Ok(())
    }
    async fn cancel_flight(&self, trip: &TripCtx, booking: &String, call: &ActivityCall) -> Result<(), ActivityError> {
        self.call(trip, call, booking).await
    }
    async fn cancel_hotel(&self, trip: &TripCtx, booking: &String, call: &ActivityCall) -> Result<(), ActivityError> {
        self.call(trip, call, booking).await
    }
}

/// The worker: recovers, starts every trip not yet in the journal, and
/// waits for every trip (those finished in earlier rounds are answered from
/// the store).
#[test]
#[ignore = "the statechart crash test's worker process, spawned by `trips_survive_sigkill`"]
fn chart_crash_worker() {
    let Some(dir) = std::env::var_os(DIR_VAR) else {
        return;
    };
    let dir = Path::new(&dir);
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.join("journal.db")).expect("open journal.db"));
    let services = Arc::new(Services::open(&dir.join("effects.db")));
    let config = Config {
        compensation: RetryPolicy {
            max_attempts: 3,
            initial_interval: Duration::from_millis(1),
            max_interval: Duration::from_millis(4),
            timeout: None,
        },
        ..Config::default()
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let engine = Engine::<Trip, Arc<Services>>::builder(services)
            .config(config)
            .store(store)
            .build();
        let recovery = engine.recover().await.expect("recover");
        assert!(recovery.errors.is_empty(), "recovery errors: {:?}", recovery.errors);
        println!("ready: recovered {} instances", recovery.resumed);
        let starters: Vec<_> = (0..STARTERS)
            .map(|task| {
                let engine = engine.clone();
                tokio::spawn(async move {
                    for n in (task..TRIPS).step_by(STARTERS as usize) {
                        match engine.start(trip_id(n), TripCtx { n }).await {
                            Ok(()) => tokio::time::sleep(START_EVERY).await,
                            Err(EngineError::DuplicateId(_)) => {}
                            Err(error) => panic!("start {n}: {error}"),
                        }
                    }
                })
            })
            .collect();
        for starter in starters {
            starter.await.unwrap();
        }
        let waiters: Vec<_> = (0..TRIPS)
            .map(|n| {
                let engine = engine.clone();
                tokio::spawn(async move {
                    let reached = engine.wait(&trip_id(n)).await.expect("a final state");
                    let expected = if fails(n) { TripState::Failed } else { TripState::Done };
                    assert!(reached.is_in(expected), "trip {n}: {reached}");
                })
            })
            .collect();
        for waiter in waiters {
            waiter.await.unwrap();
        }
        engine.shutdown().await;
        println!("done");
    });
}

#[test]
fn trips_survive_sigkill() {
    let seed = seed(SEED);
    println!("seed {seed} (WORKFLOW_CRASH_SEED={seed} replays it)");
    let mut rng = SplitMix(seed);
    let dir = tempfile::tempdir().unwrap();
    let began = Instant::now();
    let (mut killed, mut recovered) = (0, 0);
    for round in 1..=KILLS {
        let mut worker = Worker::spawn("chart_crash_worker", dir.path());
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
        match (status.signal(), worker.done()) {
            (Some(SIGKILL), _) => killed += 1,
            (None, Some(_)) if status.success() => {}
            _ => panic!("round {round}: the worker failed ({status}): {:#?}", worker.output),
        }
        println!("round {round}: {ready}; SIGKILL after {delay:?}");
    }
    assert!(killed >= 6, "only {killed} kills landed before the worker finished");
    let mut worker = Worker::spawn("chart_crash_worker", dir.path());
    let ready = worker.ready().unwrap_or_default();
    let status = worker.exit(FINISH_TIMEOUT);
    assert!(
        status.success(),
        "last round: the worker failed ({status}): {:#?}",
        worker.output
    );
    recovered += recovered_count(&ready);
    assert!(recovered > 0, "no kill left a trip unfinished: recovery went untested");

    let mut problems = Vec::new();
    audit_journal(&dir.path().join("journal.db"), &mut problems);
    let compensations = audit_effects(&dir.path().join("effects.db"), &mut problems);
    assert!(
        problems.is_empty(),
        "{} problems, the first ones:\n{}",
        problems.len(),
        problems.iter().take(30).cloned().collect::<Vec<_>>().join("\n")
    );
    println!(
        "audit passed: {TRIPS} trips, {compensations} compensations; {killed} kills, {recovered} recoveries; {:?}",
        began.elapsed()
    );
}

/// Every trip's journal: rows `1..=n`, each decoded with the workflow's
/// types, open but the last, which is finished in the trip's final state.
fn audit_journal(path: &Path, problems: &mut Vec<String>) {
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let store = SqliteStore::open(path).unwrap();
    let open = runtime.block_on(store.open_rows("Trip")).unwrap();
    if !open.is_empty() {
        problems.push(format!("{} trips still open", open.len()));
    }
    for n in 0..TRIPS {
        let id = trip_id(n);
        let rows = runtime.block_on(store.journal("Trip", &id)).unwrap();
        let seqs: Vec<u64> = rows.iter().map(|r| r.seq).collect();
        if seqs != (1..=rows.len() as u64).collect::<Vec<_>>() {
            problems.push(format!("{id}: journal rows {seqs:?}: a gap or a duplicate"));
            continue;
        }
        for row in &rows {
            let last = row.seq == rows.len() as u64;
            match journal::decode::<Trip>(row) {
                Err(error) => problems.push(format!("{id}: row {}: {error}", row.seq)),
                Ok(_) if row.open == last => problems.push(format!("{id}: row {} open: {}", row.seq, row.open)),
                Ok(entry) if last => {
                    let expected = if fails(n) { "Failed" } else { "Done" };
                    if entry.status != Status::Finished || entry.active != [expected] || entry.context.n != n {
                        problems.push(format!("{id}: last row: {:?} in {:?}", entry.status, entry.active));
                    }
                }
                Ok(_) => {}
            }
        }
    }
}

/// Every activity applied once per trip; every failed trip's compensations
/// applied once each, with the booking they undo, under keys of their own.
/// Gives how many compensations were applied.
fn audit_effects(path: &Path, problems: &mut Vec<String>) -> usize {
    let conn = Connection::open(path).unwrap();
    let mut query = conn.prepare("SELECT instance, name, key, output FROM effects").unwrap();
    let rows: Vec<(String, String, String, String)> = query
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let mut applied: BTreeMap<(String, String), Vec<(String, String)>> = BTreeMap::new();
    for (instance, name, key, output) in rows {
        applied.entry((instance, name)).or_default().push((key, output));
    }
    let mut compensations = 0;
    for n in 0..TRIPS {
        let id = trip_id(n);
        let mut expected = vec![
            ("book_flight", format!("flight-{n}")),
            ("book_hotel", format!("hotel-{n}")),
            ("check", String::new()),
        ];
        if fails(n) {
            expected.push(("cancel_flight", format!("flight-{n}")));
            expected.push(("cancel_hotel", format!("hotel-{n}")));
            compensations += 2;
        }
        for (name, output) in expected {
            match applied.remove(&(id.clone(), name.to_string())) {
                Some(found) if found.len() == 1 && found[0].1 == output => {}
                Some(found) => problems.push(format!(
                    "{id}: {name} applied as {found:?}, expected once with {output:?}"
                )),
                None => problems.push(format!("{id}: {name} never applied")),
            }
        }
    }
    if !applied.is_empty() {
        problems.push(format!(
            "unexpected effects (a finished trip compensated?): {:?}",
            applied.keys().take(10).collect::<Vec<_>>()
        ));
    }
    compensations
}
