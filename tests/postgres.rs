//! The PostgreSQL store with several processes on one database (each open store is a process of
//! the cluster): leases, fencing, takeover, hand-back at shutdown, one instance per id. Needs the
//! `postgres` feature and a server (see tests/pg/mod.rs: `WORKFLOW_TEST_POSTGRES`).
#![cfg(feature = "postgres")]

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use workflow::prelude::*;
use workflow::{Engine, EngineError, PostgresOptions, PostgresStore, Status, Store, StoreError};

mod pg;

workflow! {
    pub workflow Job {
        initial Waiting;
        events { Go }
        state Waiting { on Go => Working; }
        state Working {
            invoke work -> u32 { done => Done; error => Failed; }
        }
        final Done;
        final Failed (failure);
    }
}

/// Counts the work it did.
#[derive(Default)]
pub struct Crew {
    worked: AtomicU32,
}

impl JobHandlers for Arc<Crew> {
    async fn work(&self, _: &(), _call: &ActivityCall) -> Result<u32, ActivityError> {
        Ok(self.worked.fetch_add(1, Ordering::SeqCst))
    }
}

fn engine(store: &Arc<PostgresStore>, crew: &Arc<Crew>) -> Engine<Job, Arc<Crew>> {
    Engine::builder(crew.clone()).store(store.clone()).build()
}

/// An engine that renews its lease rarely: once its lease has run out, it finds out seconds after
/// the other processes took its instances over, as a paused process would (it registers anew
/// once it finds out).
fn slow_to_notice(store: &Arc<PostgresStore>, crew: &Arc<Crew>) -> Engine<Job, Arc<Crew>> {
    Engine::builder(crew.clone())
        .store(store.clone())
        .config(workflow::Config {
            lease: Duration::from_secs(6),
            lease_renewal: Duration::from_secs(3),
            ..workflow::Config::default()
        })
        .build()
}

/// Waits in real time until `done` holds, at most `limit`.
async fn within(limit: Duration, mut done: impl AsyncFnMut() -> bool) -> Duration {
    let start = Instant::now();
    while start.elapsed() < limit {
        if done().await {
            return start.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("not reached within {limit:?}");
}

/// Which process wrote each row of `id`'s journal.
fn writers(schema: &pg::Schema, id: &str) -> Vec<(i64, i64)> {
    schema
        .execute(&format!(
            "SELECT seq, owner FROM journal WHERE instance = '{id}' ORDER BY seq"
        ))
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect()
}

#[test]
fn an_unreachable_server_is_a_clear_error() {
    let refused = PostgresStore::open("postgres://root@127.0.0.1:1/test").err().unwrap();
    assert!(matches!(refused, StoreError::Backend(_)), "{refused:?}");
    assert!(refused.to_string().contains("cannot connect"), "{refused}");
    let malformed = PostgresStore::open("postgres://[::1").err().unwrap();
    assert!(matches!(malformed, StoreError::Backend(_)), "{malformed:?}");
}

#[test]
fn a_schema_from_a_newer_version_is_refused() {
    let schema = pg::Schema::fresh();
    drop(schema.open());
    schema.execute("UPDATE meta SET version = 99");
    let options = PostgresOptions {
        schema: schema.name.clone(),
        ..PostgresOptions::default()
    };
    let refused = PostgresStore::open_with(&pg::url(), options).err().unwrap();
    assert_eq!(
        refused,
        StoreError::SchemaTooNew {
            found: 99,
            supported: 2
        }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_id_started_from_two_processes_is_one_instance() {
    let schema = pg::Schema::fresh();
    let crew = Arc::new(Crew::default());
    let (a, b) = (Arc::new(schema.open()), Arc::new(schema.open()));
    let (first, second) = (engine(&a, &crew), engine(&b, &crew));
    for i in 0..20 {
        let id = format!("j-{i}");
        let (x, y) = tokio::join!(first.start(id.clone(), ()), second.start(id.clone(), ()));
        let duplicate = Err(EngineError::DuplicateId(id.clone()));
        assert!(
            (x.is_ok() && y == duplicate) || (y.is_ok() && x == duplicate),
            "{id}: {x:?} / {y:?}"
        );
    }
    let rows = schema.execute("SELECT count(*) FROM journal");
    assert_eq!(rows[0].get::<_, i64>(0), 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clean_shutdown_hands_instances_back_at_once() {
    let schema = pg::Schema::fresh();
    let crew = Arc::new(Crew::default());
    let (a, b) = (Arc::new(schema.open()), Arc::new(schema.open()));
    let leaving = engine(&a, &crew);
    for i in 0..10 {
        leaving.start(format!("j-{i}"), ()).await.unwrap();
    }
    let staying = engine(&b, &crew);
    assert_eq!(staying.recover().await.unwrap().resumed, 0, "owned by a live process");
    leaving.shutdown().await;
    // Its process lives on and keeps renewing its lease: only the hand-back lets `staying` take
    // them (its explicit recover, or its takeover task if that came first).
    staying.recover().await.unwrap();
    within(Duration::from_secs(1), async || staying.list().len() == 10).await;
    staying.send("j-3", JobEvent::Go).await.unwrap();
    assert_eq!(staying.wait("j-3").await.unwrap(), JobState::Done);
    assert_eq!(
        writers(&schema, "j-3"),
        [(1, a.process()), (2, b.process()), (3, b.process())]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_past_its_lease_is_fenced_and_its_instances_taken_over() {
    let schema = pg::Schema::fresh();
    let crew = Arc::new(Crew::default());
    let (a, b) = (Arc::new(schema.open()), Arc::new(schema.open()));
    let zombie = slow_to_notice(&a, &crew);
    zombie.recover().await.unwrap(); // as engines do at start: it watches its lease from now on
    for i in 0..10 {
        zombie.start(format!("j-{i}"), ()).await.unwrap();
    }
    let survivor = engine(&b, &crew);
    survivor.recover().await.unwrap(); // from now on it takes over what it finds
                                       // The zombie stops renewing (paused, partitioned): its lease runs out by the database's clock.
    schema.execute(&format!(
        "UPDATE processes SET lease_until = clock_timestamp() - interval '1 ms' WHERE id = {}",
        a.process()
    ));
    let took = within(Duration::from_secs(2), async || {
        survivor.list_where(|s| s.is_running()).len() == 10
    })
    .await;
    eprintln!("taken over {took:?} after the lease expired");
    // A late append of the zombie's is refused by the statement itself, whether it is still the
    // old process or has registered anew already: the survivor owns the instance.
    let row = a.journal("Job", "j-1").await.unwrap().pop().unwrap();
    let late = workflow::Row {
        seq: row.seq + 1,
        ..row
    };
    assert_eq!(
        a.append("Job", late).await,
        Err(StoreError::Fenced { instance: "j-1".into() })
    );
    // The zombie commits nothing more: a copy it still has refuses the step, or it dropped the
    // copy already (its store found the lease lost) and the event goes to the survivor.
    match zombie.send("j-0", JobEvent::Go).await {
        Err(EngineError::Store(StoreError::Fenced { instance })) => assert_eq!(instance, "j-0"),
        Ok(()) => assert_eq!(survivor.wait("j-0").await, Ok(JobState::Done)),
        other => panic!("{other:?}"),
    }
    // It drops every copy (its lease is lost): nothing of them is left in it, none `Failed`, and
    // it answers for them from the store, as the survivor runs them.
    within(Duration::from_secs(8), async || zombie.list().is_empty()).await;
    assert_eq!(zombie.status("j-1").await, Ok(Status::Running(JobState::Waiting)));
    assert_eq!(
        crew.worked.load(Ordering::SeqCst),
        0,
        "no activity ran for an uncommitted step"
    );
    for i in 0..10 {
        let id = format!("j-{i}");
        if survivor.status(&id).await.unwrap().is_running() {
            survivor.send(&id, JobEvent::Go).await.unwrap();
        }
        assert_eq!(survivor.wait(&id).await.unwrap(), JobState::Done);
        let rows = writers(&schema, &id);
        assert_eq!(rows.iter().map(|r| r.0).collect::<Vec<_>>(), [1, 2, 3]);
        assert!(rows[1..].iter().all(|r| r.1 == b.process()), "{rows:?}");
    }
    assert_eq!(crew.worked.load(Ordering::SeqCst), 10);
    assert!(matches!(
        survivor.status("j-1").await,
        Ok(Status::Finished(JobState::Done))
    ));
    assert_eq!(zombie.status("j-1").await, Ok(Status::Finished(JobState::Done)));
    assert_eq!(zombie.wait("j-2").await, Ok(JobState::Done));
}

/// `id`'s journal as `(seq, owner, epoch, open)`, checked: gap-free from 1, one closing row (the
/// last), the epoch never going back and each epoch written by one process.
fn audited(schema: &pg::Schema, id: &str) -> Vec<(i64, i64, i64, bool)> {
    let rows: Vec<(i64, i64, i64, bool)> = schema
        .execute(&format!(
            "SELECT seq, owner, epoch, open FROM journal WHERE instance = '{id}' ORDER BY seq"
        ))
        .iter()
        .map(|row| (row.get(0), row.get(1), row.get(2), row.get(3)))
        .collect();
    let seqs: Vec<i64> = rows.iter().map(|r| r.0).collect();
    assert_eq!(seqs, (1..=rows.len() as i64).collect::<Vec<_>>(), "{id}: {rows:?}");
    assert_eq!(rows.iter().filter(|r| !r.3).count(), 1, "{id}: one final row: {rows:?}");
    assert!(!rows.last().unwrap().3, "{id}: the final row is the last: {rows:?}");
    for pair in rows.windows(2) {
        assert!(pair[0].2 <= pair[1].2, "{id}: the epoch went back: {rows:?}");
        assert!(
            pair[0].2 != pair[1].2 || pair[0].1 == pair[1].1,
            "{id}: one epoch, two owners: {rows:?}"
        );
    }
    rows
}

/// The rows of `processes`: `(id, whether its lease holds)`.
fn processes(schema: &pg::Schema) -> Vec<(i64, bool)> {
    schema
        .execute("SELECT id, lease_until > clock_timestamp() FROM processes ORDER BY id")
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_past_its_lease_registers_anew_and_takes_its_instances_back() {
    let schema = pg::Schema::fresh();
    let crew = Arc::new(Crew::default());
    let a = Arc::new(schema.open());
    let engine = engine(&a, &crew);
    engine.recover().await.unwrap();
    for i in 0..6 {
        engine.start(format!("j-{i}"), ()).await.unwrap();
    }
    let old = a.process();
    // Its lease runs out by the database's clock (a pause, a partition), and j-5 is handed back
    // meanwhile (no owner: any live process may claim it).
    schema.execute(&format!(
        "WITH handed AS (UPDATE instances SET owner = NULL WHERE instance = 'j-5')
         UPDATE processes SET lease_until = clock_timestamp() - interval '1 ms' WHERE id = {old}"
    ));
    // Steps in flight as it finds out: each is refused (the old id's lease is gone), or, once the
    // process is back, reaches the instance's new copy; none is committed twice.
    let sends: Vec<_> = (0..6)
        .map(|i| {
            let engine = engine.clone();
            tokio::spawn(async move { engine.send(&format!("j-{i}"), JobEvent::Go).await })
        })
        .collect();
    for send in sends {
        match send.await.unwrap() {
            Ok(()) | Err(EngineError::Store(StoreError::Fenced { .. })) => {}
            other => panic!("{other:?}"),
        }
    }
    // It notices, drops its copies and registers anew: a second row in `processes`, the old one
    // expired.
    let back = within(Duration::from_secs(5), async || a.process() != old).await;
    eprintln!("registered anew {back:?} after the lease expired");
    let new = a.process();
    assert!(new > old);
    assert_eq!(processes(&schema), [(old, false), (new, true)]);
    assert!(!a.lease_lost());
    // It serves again: a new start, and its takeover pass takes its old id's instances back (as
    // a dead process's) and the handed-back one, under new epochs.
    engine.start("n-0", ()).await.unwrap();
    within(Duration::from_secs(3), async || engine.list().len() == 7).await;
    for id in (0..6).map(|i| format!("j-{i}")).chain(["n-0".to_string()]) {
        if engine.status(&id).await.unwrap() == Status::Running(JobState::Waiting) {
            engine.send(&id, JobEvent::Go).await.unwrap();
        }
        assert_eq!(engine.wait(&id).await, Ok(JobState::Done), "{id}");
        let rows = audited(&schema, &id);
        assert_eq!(rows.len(), 3, "{id}: {rows:?}");
        let first = if id == "n-0" { new } else { old };
        assert_eq!(rows[0].1, first, "{id}: {rows:?}");
        // Nothing after the loss as the old id; the new id under an epoch of its own.
        assert!(
            rows[1..].iter().all(|r| r.1 == new && r.2 > rows[0].2 || id == "n-0"),
            "{id}: {rows:?}"
        );
    }
    assert_eq!(crew.worked.load(Ordering::SeqCst), 7, "each activity ran once");
    let stale = schema.execute(&format!("SELECT count(*) FROM journal WHERE owner = {old} AND seq > 1"));
    assert_eq!(
        stale[0].get::<_, i64>(0),
        0,
        "no step of the old id's after its start rows"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_process_comes_back_to_find_its_instances_taken_over() {
    let schema = pg::Schema::fresh();
    let crew = Arc::new(Crew::default());
    let (a, b) = (Arc::new(schema.open()), Arc::new(schema.open()));
    let zombie = slow_to_notice(&a, &crew);
    zombie.recover().await.unwrap();
    for i in 0..10 {
        zombie.start(format!("j-{i}"), ()).await.unwrap();
    }
    let survivor = engine(&b, &crew);
    survivor.recover().await.unwrap();
    let old = a.process();
    schema.execute(&format!(
        "UPDATE processes SET lease_until = clock_timestamp() - interval '1 ms' WHERE id = {old}"
    ));
    within(Duration::from_secs(2), async || {
        survivor.list_where(|s| s.is_running()).len() == 10
    })
    .await;
    let taken: Vec<(i64, i64)> = schema
        .execute("SELECT owner, epoch FROM instances ORDER BY instance")
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect();
    assert!(
        taken.iter().all(|&(owner, epoch)| owner == b.process() && epoch == 2),
        "{taken:?}"
    );
    // Still paused, as it were: its copy's step is refused.
    assert_eq!(
        zombie.send("j-0", JobEvent::Go).await,
        Err(EngineError::Store(StoreError::Fenced { instance: "j-0".into() }))
    );
    // It comes back as a new process, and finds nothing to take: the survivor holds them.
    within(Duration::from_secs(8), async || a.process() != old).await;
    let new = a.process();
    assert_eq!(processes(&schema), [(old, false), (b.process(), true), (new, true)]);
    assert!(zombie.list().is_empty(), "{:?}", zombie.list());
    // It serves new work, and reaches the survivor's instances through the store.
    zombie.start("n-0", ()).await.unwrap();
    for id in (0..10).map(|i| format!("j-{i}")).chain(["n-0".to_string()]) {
        zombie.send(&id, JobEvent::Go).await.unwrap();
        assert_eq!(zombie.wait(&id).await, Ok(JobState::Done), "{id}");
        let rows = audited(&schema, &id);
        assert_eq!(rows.len(), 3, "{id}: {rows:?}");
        let runner = if id == "n-0" { new } else { b.process() };
        assert!(rows[1..].iter().all(|r| r.1 == runner), "{id}: {rows:?}");
    }
    assert_eq!(zombie.list().len(), 1, "n-0 alone ran here");
    assert_eq!(crew.worked.load(Ordering::SeqCst), 11);
    let stale = schema.execute(&format!("SELECT count(*) FROM journal WHERE owner = {old} AND seq > 1"));
    assert_eq!(
        stale[0].get::<_, i64>(0),
        0,
        "nothing of the zombie's old id after the takeover"
    );
}

/// The store alone (no engine drops copies or asks it to register anew): once its lease is lost
/// every write is refused; registered anew, it writes as a new process, and an instance its old
/// id owns is still refused until it takes it over like any dead process's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_registered_anew_writes_its_old_ids_instances_only_once_it_took_them_over() {
    let schema = pg::Schema::fresh();
    let crew = Arc::new(Crew::default());
    let a = Arc::new(schema.open());
    // No `recover`: no takeover pass, nothing drops its copy or registers it anew.
    let engine = engine(&a, &crew);
    engine.start("x", ()).await.unwrap();
    assert_eq!(a.rejoin("Job").await, Ok(0), "its lease holds");
    let old = a.process();
    schema.execute(&format!(
        "UPDATE processes SET lease_until = clock_timestamp() - interval '1 ms' WHERE id = {old}"
    ));
    within(Duration::from_secs(2), async || a.lease_lost()).await;
    let row = a.journal("Job", "x").await.unwrap().pop().unwrap();
    let late = workflow::Row {
        seq: row.seq + 1,
        ..row
    };
    assert_eq!(
        a.append("Job", late.clone()).await,
        Err(StoreError::Fenced { instance: "x".into() })
    );
    assert_eq!(a.rejoin("Job").await, Ok(1));
    assert!(!a.lease_lost());
    let new = a.process();
    assert_ne!(new, old);
    assert_eq!((a.rejoin("Job").await, a.process()), (Ok(1), new), "registered once");
    // Another workflow's engine over the store may hold copies from before: its appends, a start
    // included, are refused until it says it dropped them.
    let other = workflow::Row {
        instance: "y".into(),
        seq: 1,
        ..late.clone()
    };
    assert_eq!(
        a.append("Other", other.clone()).await,
        Err(StoreError::Fenced { instance: "y".into() })
    );
    assert_eq!(a.rejoin("Other").await, Ok(1));
    assert_eq!(a.append("Other", other).await, Ok(()));
    // x is still the old id's: a row of its old copy's, written as the new id, is refused.
    assert_eq!(
        a.append("Job", late).await,
        Err(StoreError::Fenced { instance: "x".into() })
    );
    assert_eq!(
        engine.send("x", JobEvent::Go).await,
        Err(EngineError::Store(StoreError::Fenced { instance: "x".into() }))
    );
    assert_eq!(writers(&schema, "x"), [(1, old)]);
    // Taken over like any dead process's instance, under a new epoch, it runs here again.
    assert_eq!(engine.recover().await.unwrap().resumed, 1);
    engine.send("x", JobEvent::Go).await.unwrap();
    assert_eq!(engine.wait("x").await, Ok(JobState::Done));
    let rows = audited(&schema, "x");
    assert_eq!(
        rows.iter().map(|r| (r.0, r.1)).collect::<Vec<_>>(),
        [(1, old), (2, a.process()), (3, a.process())]
    );
    assert!(rows[1].2 > rows[0].2, "{rows:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_moved_to_another_process_leaves_its_old_owner() {
    let schema = pg::Schema::fresh();
    let crew = Arc::new(Crew::default());
    let (a, b) = (Arc::new(schema.open()), Arc::new(schema.open()));
    let old = engine(&a, &crew);
    old.start("j-0", ()).await.unwrap();
    old.start("j-1", ()).await.unwrap();
    // j-0 alone moves to b (a's lease stays valid), as a takeover would move it.
    schema.execute(&format!(
        "UPDATE instances SET owner = {}, epoch = epoch + 1 WHERE instance = 'j-0'",
        b.process()
    ));
    assert_eq!(
        old.send("j-0", JobEvent::Go).await,
        Err(EngineError::Store(StoreError::Fenced { instance: "j-0".into() }))
    );
    // Its copy left the old owner, which reports no failure: it reads j-0 from the store now.
    let ids: Vec<String> = old.list().into_iter().map(|(id, _)| id).collect();
    assert_eq!(ids, ["j-1"]);
    assert_eq!(old.status("j-0").await, Ok(Status::Running(JobState::Waiting)));
    assert!(old.subscribe("j-0").is_err(), "no local copy to follow");
    // The new owner runs it; requests to the old one reach it through the store.
    let new = engine(&b, &crew);
    assert_eq!(new.recover().await.unwrap().resumed, 1);
    old.send("j-0", JobEvent::Go).await.unwrap();
    assert_eq!(old.wait("j-0").await, Ok(JobState::Done));
    assert_eq!(new.status("j-0").await, Ok(Status::Finished(JobState::Done)));
    assert_eq!(
        writers(&schema, "j-0"),
        [(1, a.process()), (2, b.process()), (3, b.process())]
    );
    assert_eq!(
        crew.worked.load(Ordering::SeqCst),
        1,
        "the refused step started nothing"
    );
    // A cancellation that finds its copy moved goes on to the new owner.
    schema.execute(&format!(
        "UPDATE instances SET owner = {}, epoch = epoch + 1 WHERE instance = 'j-1'",
        b.process()
    ));
    assert_eq!(old.list().len(), 1, "j-1 has not committed anything since");
    assert_eq!(new.recover().await.unwrap().resumed, 1);
    old.cancel("j-1").await.unwrap();
    assert!(old.list().is_empty());
    assert_eq!(new.wait("j-1").await, Err(EngineError::Cancelled("j-1".into())));
    assert_eq!(old.wait("j-1").await, Err(EngineError::Cancelled("j-1".into())));
}

/// What a tally has counted, in the order it counted it.
#[derive(Debug, Default, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Seen {
    pub numbers: Vec<u32>,
}

workflow! {
    pub workflow Tally {
        context Seen;
        initial Counting;
        events { Add { n: u32 }, Close }
        state Counting {
            on Add / note;
            on Close => Closed;
        }
        final Closed;
    }
}

pub struct Clerk;

impl TallyHandlers for Clerk {
    fn note(&self, seen: &mut Seen, event: &Add) {
        seen.numbers.push(event.n);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_to_another_process_arrive_in_order() {
    let schema = pg::Schema::fresh();
    let (a, b) = (Arc::new(schema.open()), Arc::new(schema.open()));
    let owner = Engine::<Tally, Clerk>::builder(Clerk).store(a.clone()).build();
    let other = Engine::<Tally, Clerk>::builder(Clerk).store(b.clone()).build();
    owner.recover().await.unwrap(); // it reads its inbox from now on
    owner.start("t-1", Seen::default()).await.unwrap();
    owner.start("t-2", Seen::default()).await.unwrap();
    // The other process answers from the store while the owner runs them.
    assert_eq!(other.status("t-1").await, Ok(Status::Running(TallyState::Counting)));
    let waiting = tokio::spawn({
        let other = other.clone();
        async move { other.wait("t-1").await }
    });
    for n in 0..50 {
        other.send("t-1", TallyEvent::Add(Add { n })).await.unwrap();
    }
    other.send("t-1", TallyEvent::Close).await.unwrap();
    assert_eq!(waiting.await.unwrap(), Ok(TallyState::Closed), "wait from a non-owner");
    let numbers = owner.snapshot("t-1").await.unwrap().context.numbers;
    assert_eq!(numbers, (0..50).collect::<Vec<_>>(), "in the order they were sent");
    assert_eq!(other.snapshot("t-1").await.unwrap().context.numbers.len(), 50);
    // Finished: nothing more is accepted.
    assert_eq!(
        other.send("t-1", TallyEvent::Close).await,
        Err(EngineError::Stopped("t-1".into()))
    );
    assert_eq!(
        other.send("t-9", TallyEvent::Close).await,
        Err(EngineError::UnknownInstance("t-9".into()))
    );
    // `try_send` never waits, so it does not write to the store: it reaches only this process's
    // instances, and says so for others.
    assert_eq!(
        other.try_send("t-2", TallyEvent::Close),
        Err(EngineError::NotHere("t-2".into()))
    );
    assert!(EngineError::NotHere("t-2".into()).to_string().contains("use `send`"));
    assert_eq!(
        owner.snapshot("t-2").await.unwrap().history.len(),
        1,
        "nothing reached t-2"
    );
    // A cancellation from the other process.
    other.cancel("t-2").await.unwrap();
    assert_eq!(owner.wait("t-2").await, Err(EngineError::Cancelled("t-2".into())));
    assert_eq!(other.wait("t-2").await, Err(EngineError::Cancelled("t-2".into())));
    let left = schema.execute("SELECT count(*) FROM inbox");
    assert_eq!(left[0].get::<_, i64>(0), 0, "every handled message left the inbox");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_dead_processes_that_own_nothing_are_swept() {
    let schema = pg::Schema::fresh();
    let crew = Arc::new(Crew::default());
    let (dead, owner, live) = (schema.open(), Arc::new(schema.open()), Arc::new(schema.open()));
    let holding = engine(&owner, &crew);
    holding.start("j-1", ()).await.unwrap();
    // `dead` owns nothing and expired two minutes ago; `owner` expired as long ago but owns j-1.
    schema.execute(&format!(
        "UPDATE processes SET lease_until = clock_timestamp() - interval '2 minutes' WHERE id IN ({}, {})",
        dead.process(),
        owner.process()
    ));
    // One claim, as recovery makes (an engine's recovery would go on taking over in the
    // background, and its next pass sweep `owner` too): takes j-1 over, sweeps `dead`.
    assert_eq!(live.open_rows("Job").await.unwrap().len(), 1);
    let ids = |schema: &pg::Schema| -> Vec<i64> {
        let rows = schema.execute("SELECT id FROM processes ORDER BY id");
        rows.iter().map(|row| row.get(0)).collect()
    };
    assert_eq!(
        ids(&schema),
        [owner.process(), live.process()],
        "owner still owned j-1 then"
    );
    engine(&live, &crew).recover().await.unwrap();
    assert_eq!(ids(&schema), [live.process()]);
    // A swept process can commit nothing: it has no lease left.
    let row = owner.journal("Job", "j-1").await.unwrap().pop().unwrap();
    let late = workflow::Row {
        seq: row.seq + 1,
        ..row
    };
    assert_eq!(
        owner.append("Job", late).await,
        Err(StoreError::Fenced { instance: "j-1".into() })
    );
}

/// A process that dies as it would acknowledge anything on its own: the store's every call
/// passes through, except `acknowledge`, which never returns.
struct DiesBeforeAcknowledging(Arc<PostgresStore>);

#[async_trait::async_trait]
impl Store for DiesBeforeAcknowledging {
    async fn append(&self, workflow: &str, row: workflow::Row) -> Result<(), StoreError> {
        self.0.append(workflow, row).await
    }
    async fn append_consuming(&self, workflow: &str, row: workflow::Row, message: i64) -> Result<(), StoreError> {
        self.0.append_consuming(workflow, row, message).await
    }
    async fn open_rows(&self, workflow: &str) -> Result<Vec<Result<workflow::Row, StoreError>>, StoreError> {
        self.0.open_rows(workflow).await
    }
    async fn journal(&self, workflow: &str, instance: &str) -> Result<Vec<workflow::Row>, StoreError> {
        self.0.journal(workflow, instance).await
    }
    fn lease(&self, length: Duration, renewal: Duration) {
        self.0.lease(length, renewal)
    }
    fn takeover_interval(&self) -> Option<Duration> {
        self.0.takeover_interval()
    }
    async fn post(&self, workflow: &str, instance: &str, message: Vec<u8>) -> Result<workflow::Posted, StoreError> {
        self.0.post(workflow, instance, message).await
    }
    async fn inbox(&self, workflow: &str) -> Result<Vec<workflow::Message>, StoreError> {
        self.0.inbox(workflow).await
    }
    async fn acknowledge(&self, _ids: Vec<i64>) -> Result<(), StoreError> {
        std::future::pending().await
    }
    fn posted(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        self.0.posted()
    }
    fn lease_lost(&self) -> bool {
        self.0.lease_lost()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_posted_event_is_applied_once_even_if_its_owner_dies_right_after() {
    let schema = pg::Schema::fresh();
    let (a, b, c) = (
        Arc::new(schema.open()),
        Arc::new(schema.open()),
        Arc::new(schema.open()),
    );
    let dying = Engine::<Tally, Clerk>::builder(Clerk)
        .store(Arc::new(DiesBeforeAcknowledging(a.clone())))
        .build();
    dying.recover().await.unwrap();
    dying.start("t-1", Seen::default()).await.unwrap();
    let survivor = Engine::<Tally, Clerk>::builder(Clerk).store(b.clone()).build();
    survivor.recover().await.unwrap();
    let sender = Engine::<Tally, Clerk>::builder(Clerk).store(c.clone()).build();
    sender.send("t-1", TallyEvent::Add(Add { n: 1 })).await.unwrap();
    // The owner applies it (the step commits), then dies before it could acknowledge anything.
    within(Duration::from_secs(2), async || {
        dying.snapshot("t-1").await.unwrap().context.numbers == [1]
    })
    .await;
    schema.execute(&format!(
        "UPDATE processes SET lease_until = clock_timestamp() - interval '1 ms' WHERE id = {}",
        a.process()
    ));
    // The survivor takes t-1 over; a later message, handled after anything still queued before
    // it, closes it.
    within(Duration::from_secs(3), async || survivor.list().len() == 1).await;
    sender.send("t-1", TallyEvent::Close).await.unwrap();
    assert_eq!(survivor.wait("t-1").await, Ok(TallyState::Closed));
    assert_eq!(
        survivor.snapshot("t-1").await.unwrap().context.numbers,
        [1],
        "the event left the inbox with the step that applied it: not applied again"
    );
    assert_eq!(writers(&schema, "t-1").len(), 3, "start, Add, Close");
    let left = schema.execute("SELECT count(*) FROM inbox");
    assert_eq!(left[0].get::<_, i64>(0), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_keep_their_summary_and_the_workflow_its_definition() {
    let schema = pg::Schema::fresh();
    let store = Arc::new(schema.open());
    let crew = Arc::new(Crew::default());
    let engine = engine(&store, &crew);
    engine.start("j-1", ()).await.unwrap();
    engine.send("j-1", JobEvent::Go).await.unwrap();
    assert_eq!(engine.wait("j-1").await.unwrap(), JobState::Done);
    let rows = store.journal("Job", "j-1").await.unwrap();
    let states: Vec<(Option<&str>, Option<workflow::InstanceStatus>)> = rows
        .iter()
        .map(|r| (r.summary.state.as_deref(), r.summary.status))
        .collect();
    use workflow::InstanceStatus::{Finished, Running};
    assert_eq!(
        states,
        [
            (Some("Waiting"), Some(Running)),
            (Some("Working"), Some(Running)),
            (Some("Done"), Some(Finished))
        ]
    );
    assert!(rows
        .windows(2)
        .all(|w| w[0].summary.at <= w[1].summary.at && w[0].summary.at.is_some()));
    let entry = schema.execute("SELECT state, status, started, updated FROM instances WHERE instance = 'j-1'");
    assert_eq!(entry[0].get::<_, Option<String>>(0).as_deref(), Some("Done"));
    assert_eq!(entry[0].get::<_, Option<i64>>(1), Some(Finished.code()));
    let (started, updated): (Option<i64>, Option<i64>) = (entry[0].get(2), entry[0].get(3));
    assert_eq!(started, rows[0].summary.at.map(|t| t as i64));
    assert_eq!(updated, rows[2].summary.at.map(|t| t as i64));
    let definitions = schema.execute("SELECT workflow, graph FROM definitions");
    assert_eq!(definitions.len(), 1, "once per fingerprint");
    assert_eq!(definitions[0].get::<_, String>(0), "Job");
    assert_eq!(
        definitions[0].get::<_, String>(1),
        workflow::graph::text::encode(<Job as workflow::Machine>::graph())
    );
    engine.shutdown().await;
}

#[test]
fn a_schema_1_database_is_upgraded_in_place_and_a_newer_one_refused() {
    let schema = pg::Schema::fresh();
    // Schema 1's tables, as the store wrote them.
    pg::run(
        &format!(
            "CREATE SCHEMA \"{s}\";
             CREATE TABLE \"{s}\".meta (version int8 NOT NULL); INSERT INTO \"{s}\".meta VALUES (1);
             CREATE TABLE \"{s}\".instances (workflow text NOT NULL, instance text NOT NULL, newest int8 NOT NULL,
               open bool NOT NULL, owner int8, epoch int8 NOT NULL, PRIMARY KEY (workflow, instance));
             CREATE TABLE \"{s}\".journal (workflow text NOT NULL, instance text NOT NULL, seq int8 NOT NULL,
               open bool NOT NULL, checksum int8 NOT NULL, data bytea NOT NULL, owner int8 NOT NULL,
               epoch int8 NOT NULL, PRIMARY KEY (workflow, instance, seq));
             INSERT INTO \"{s}\".instances VALUES ('Job', 'old', 1, false, NULL, 1);
             INSERT INTO \"{s}\".journal VALUES ('Job', 'old', 1, false, 0, '\\x7b7d', 1, 1);
             INSERT INTO \"{s}\".instances VALUES ('Job', 'plain', 2, true, NULL, 1);
             INSERT INTO \"{s}\".journal VALUES ('Job', 'plain', 1, true, 0, '\\x7b7d', 1, 1);
             INSERT INTO \"{s}\".journal VALUES ('Job', 'plain', 2, true, 0, convert_to($${plain}$$, 'UTF8'), 1, 1);
             INSERT INTO \"{s}\".instances VALUES ('Job', 'sealed', 1, true, NULL, 1);
             INSERT INTO \"{s}\".journal VALUES ('Job', 'sealed', 1, true, 0, '\\x00736561', 1, 1)",
            s = schema.name,
            plain = r#"{"v":1,"fingerprint":"f","step":{"kind":"transition","from":"Waiting","event":"Go","to":"Working"},"status":{"state":"running"},"active":["Working"],"context":null,"generation":0}"#,
        ),
        "SELECT 1",
    );
    drop(schema.open());
    let version = schema.execute("SELECT max(version) FROM meta");
    assert_eq!(version[0].get::<_, Option<i64>>(0), Some(2));
    let old = schema.execute("SELECT state, started FROM instances WHERE instance = 'old'");
    assert_eq!(
        (old[0].get::<_, Option<String>>(0), old[0].get::<_, Option<i64>>(1)),
        (None, None),
        "what schema 1 did not keep is unknown"
    );
    // The state and status a plain newest row tells; nothing of a sealed one, no times.
    let filled = schema.execute("SELECT instance, state, status, started FROM instances ORDER BY instance");
    let filled: Vec<String> = filled
        .iter()
        .map(|r| {
            let (id, state, status, started): (String, Option<String>, Option<i64>, Option<i64>) =
                (r.get(0), r.get(1), r.get(2), r.get(3));
            format!("{id} {state:?} {status:?} {started:?}")
        })
        .collect();
    assert_eq!(
        filled,
        [
            "old None None None",
            "plain Some(\"Working\") Some(0) None",
            "sealed None None None"
        ]
    );
    // The indexes the inspector reads through, the journal's time window among them (added to
    // schema-2 databases made before it on their next open).
    let indexes = |schema: &pg::Schema| -> Vec<String> {
        schema
            .execute(&format!(
                "SELECT indexname || ' ' || split_part(indexdef, ' USING ', 2) FROM pg_indexes
                 WHERE schemaname = '{}' AND indexname NOT LIKE '%pkey' ORDER BY indexname",
                schema.name
            ))
            .iter()
            .map(|r| r.get(0))
            .collect()
    };
    let made = [
        "inbox_instance btree (workflow, instance)",
        "instances_by_started btree (workflow, started)",
        "instances_by_state btree (workflow, state, status, started)",
        "instances_by_status btree (workflow, status, started)",
        "instances_open btree (workflow, owner) WHERE open",
        "journal_at brin (at)",
    ];
    assert_eq!(indexes(&schema), made);
    schema.execute("DROP INDEX journal_at");
    drop(schema.open());
    assert_eq!(indexes(&schema), made);
    schema.execute("UPDATE meta SET version = 3");
    let options = PostgresOptions {
        schema: schema.name.clone(),
        ..PostgresOptions::default()
    };
    assert_eq!(
        PostgresStore::open_with(&pg::url(), options).err(),
        Some(StoreError::SchemaTooNew { found: 3, supported: 2 })
    );
}

/// Two workflows' engines over one store: the first to find the lease lost registers the process
/// anew, the other drops its copies from before all the same (the process is new to it) before
/// its appends go through again; each takes its instances back. Every event `send` accepted is
/// applied exactly once, and none it refused is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workflows_over_one_store_both_come_back() {
    let schema = pg::Schema::fresh();
    let crew = Arc::new(Crew::default());
    let a = Arc::new(schema.open());
    let jobs = engine(&a, &crew);
    let tallies = Engine::<Tally, Clerk>::builder(Clerk).store(a.clone()).build();
    jobs.recover().await.unwrap();
    tallies.recover().await.unwrap();
    jobs.start("j-0", ()).await.unwrap();
    tallies.start("t-0", Seen::default()).await.unwrap();
    let old = a.process();
    schema.execute(&format!(
        "UPDATE processes SET lease_until = clock_timestamp() - interval '1 ms' WHERE id = {old}"
    ));
    let mut accepted = Vec::new();
    for n in 1..=60 {
        match tallies.send("t-0", TallyEvent::Add(Add { n })).await {
            Ok(()) => accepted.push(n),
            Err(EngineError::Store(StoreError::Fenced { .. })) => {}
            other => panic!("{n}: {other:?}"),
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    within(Duration::from_secs(3), async || {
        a.process() != old && jobs.list().len() == 1 && tallies.list().len() == 1
    })
    .await;
    assert_eq!(a.lease_generation(), 1);
    eprintln!("accepted {} of 60 adds", accepted.len());
    assert!(accepted.len() < 60, "the loss refused some");
    assert!(accepted.contains(&60), "the process serves again");
    tallies.send("t-0", TallyEvent::Close).await.unwrap();
    jobs.send("j-0", JobEvent::Go).await.unwrap();
    assert_eq!(tallies.wait("t-0").await, Ok(TallyState::Closed));
    assert_eq!(jobs.wait("j-0").await, Ok(JobState::Done));
    let mut counted = tallies.snapshot("t-0").await.unwrap().context.numbers;
    counted.sort_unstable();
    assert_eq!(counted, accepted, "each accepted event applied once, no refused one");
    for id in ["t-0", "j-0"] {
        let rows = audited(&schema, id);
        assert_eq!(rows[0].1, old);
        assert!(
            rows[1..].iter().all(|r| r.1 == old || r.1 == a.process()),
            "{id}: {rows:?}"
        );
    }
    let stale = schema.execute(&format!(
        "SELECT count(*) FROM journal WHERE owner = {old} AND epoch > 1"
    ));
    assert_eq!(
        stale[0].get::<_, i64>(0),
        0,
        "nothing of the old id's under a later epoch"
    );
}
