//! The inspector (`workflow::inspect`, what `workflow list|stats|diagram` run) on a large store:
//! 1,000,000 instances with 10,000,000 journal rows. Target: each answer under 1 s.
//!
//! The store is built once and kept under `target/inspect-bench/` (about 1.7 GiB; delete it to
//! build it again): a real engine writes the workflow's definition and the schema, then the rows
//! are inserted with SQL, in the schema's own tables and columns, round by round as an engine
//! commits them (every instance's first row, then every instance's second, ...), one row every
//! 250 ms of journal time (10,000,000 rows span 29 days). Each instance walks `Received` →
//! … → `Delivering` in nine rows, and its tenth says how it ended: 80% delivered, 10% still
//! running in one of the nine states, 5% in the failure final `Lost`, 3% failed, 2% cancelled.
//!
//! Sections, each on an inspector opened once:
//! - `inspect/list/first_page`: the first page of 50, every instance;
//! - `inspect/list/state_running`: instances running in `Packing` (11,111 of them);
//! - `inspect/list/failed_prefix`: failed instances whose id starts with `o-0042`;
//! - `inspect/list/deep_cursor`: the page after a cursor 50,000 instances deep;
//! - `inspect/stats/1h`: instances by state and status, and the last hour's ends and activity
//!   durations;
//! - `inspect/stats/24h`: the same over a day (345,600 rows, more than the 10,000 whose
//!   durations `stats` reads);
//! - `inspect/diagram/mermaid`: the diagram with the count of every state;
//! - `inspect/show`: one instance's ten rows as a timeline.
//!
//! With the `postgres` feature, group `inspect_postgres` asks the same of the same store in
//! PostgreSQL (see `postgres::store` below).
//!
//! Run: `cargo bench -p workflow-benches --bench inspect` (building the store takes a minute or
//! two the first time), `cargo bench -p workflow-benches --bench inspect --features postgres` for
//! both stores, `… -- postgres` for PostgreSQL's alone. Without `--bench` it runs on a store of
//! 10,000 instances, as a smoke test.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::Criterion;
use tokio::runtime::Runtime;
use workflow::inspect::{DiagramFormat, Filter, Inspector};
use workflow::prelude::*;
use workflow::{Engine, InstanceStatus, SqliteStore};

workflow! {
    /// An order's ten steps, one event each, and how it may end.
    pub workflow Parcel {
        initial Received;
        events { Next, Lose }
        state Received { on Next => Charging; }
        state Charging { on Next => Reserving; }
        state Reserving { on Next => Packing; }
        state Packing { on Next => Labelling; }
        state Labelling { on Next => Picking; }
        state Picking { on Next => Shipping; }
        state Shipping { on Next => InTransit; }
        state InTransit { on Next => Delivering; on Lose => Lost; }
        state Delivering { on Next => Delivered; on Lose => Lost; }
        final Delivered;
        final Lost (failure);
    }
}

struct Depot;
impl ParcelHandlers for Depot {}

/// The states an instance walks, one a row.
const WALK: [&str; 9] = [
    "Received",
    "Charging",
    "Reserving",
    "Packing",
    "Labelling",
    "Picking",
    "Shipping",
    "InTransit",
    "Delivering",
];

/// Journal time of the first row, and between rows.
const EPOCH_MS: i64 = 1_800_000_000_000;
const ROW_EVERY_MS: i64 = 250;

/// How instance `i`'s tenth row ends it: its state and status.
fn ending(i: u64) -> (&'static str, InstanceStatus) {
    ending_of(ending_kind(i))
}

/// Which of the [`ending_of`]s instance `i` takes (the PostgreSQL builder's SQL says the same).
fn ending_kind(i: u64) -> u64 {
    match i % 100 {
        0..80 => 0,
        80..90 => 1 + i % 9,
        90..95 => 10,
        95..98 => 11,
        _ => 12,
    }
}

/// The thirteen endings: delivered, still running in one of the nine states, lost, failed,
/// cancelled.
fn ending_of(kind: u64) -> (&'static str, InstanceStatus) {
    match kind {
        0 => ("Delivered", InstanceStatus::Finished),
        1..=9 => (WALK[(kind - 1) as usize], InstanceStatus::Running),
        10 => ("Lost", InstanceStatus::Finished),
        11 => ("Delivering", InstanceStatus::Failed),
        _ => ("Delivering", InstanceStatus::Cancelled),
    }
}

fn id(i: u64) -> String {
    format!("o-{i:07}")
}

/// Row `step` (from 0) of an instance, in state `state` with `status`: the journal's data, as
/// an engine without a codec writes it.
fn row_data(fingerprint: &str, step: u64, state: &str, status: InstanceStatus) -> String {
    let kind = if step == 0 {
        r#"{"kind":"started"}"#.to_string()
    } else {
        let from = WALK[(step - 1) as usize];
        format!(r#"{{"kind":"transition","from":"{from}","event":"Next","to":"{state}"}}"#)
    };
    format!(
        r#"{{"v":1,"fingerprint":"{fingerprint}","step":{kind},"status":{{"state":"{}"}},"active":["{state}"],"context":null,"generation":0}}"#,
        status.as_str()
    )
}

/// The store of `instances` instances, built unless a complete one is cached.
fn store(rt: &Runtime, instances: u64) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"),
        PathBuf::from,
    );
    let dir = target.join("inspect-bench");
    let path = dir.join(format!("parcels-{instances}.db"));
    if let Ok(conn) = rusqlite::Connection::open(&path) {
        let built: Option<i64> = conn
            .query_row("SELECT value FROM meta WHERE key = 'bench_built'", [], |r| r.get(0))
            .ok();
        if built == Some(1) {
            return path;
        }
    }
    std::fs::create_dir_all(&dir).expect("target/inspect-bench");
    for file in ["", "-wal", "-shm", "-lock"] {
        let _ = std::fs::remove_file(format!("{}{file}", path.display()));
    }
    let started = Instant::now();
    // The schema and the definition, as an engine writes them.
    rt.block_on(async {
        let store = Arc::new(SqliteStore::open(&path).expect("the store"));
        let engine = Engine::<Parcel, Depot>::builder(Depot).store(store).build();
        engine.start("seed", ()).await.expect("a start");
        engine.shutdown().await;
    });
    let mut conn = rusqlite::Connection::open(&path).expect("the store");
    conn.execute_batch("PRAGMA synchronous = OFF; DELETE FROM journal; DELETE FROM instances;")
        .expect("emptied");
    let fingerprint: String = conn
        .query_row("SELECT fingerprint FROM definitions", [], |r| r.get(0))
        .expect("the definition");
    let rows_per = 10_u64;
    for step in 0..rows_per {
        let tx = conn.transaction().expect("a transaction");
        {
            let mut insert = tx
                .prepare(
                    "INSERT INTO journal (id, workflow, instance, seq, open, checksum, data, prev, at, state, status) \
                     VALUES (?1, 'Parcel', ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                )
                .expect("insert");
            for i in 0..instances {
                let row_id = (step * instances + i + 1) as i64;
                let (state, status) = if step + 1 == rows_per {
                    ending(i)
                } else {
                    (WALK[step as usize], InstanceStatus::Running)
                };
                let open = status == InstanceStatus::Running;
                let data = row_data(&fingerprint, step, state, status);
                let prev = (step > 0).then(|| row_id - instances as i64);
                insert
                    .execute(rusqlite::params![
                        row_id,
                        id(i),
                        (step + 1) as i64,
                        open,
                        crc32fast::hash(data.as_bytes()),
                        data.as_bytes(),
                        prev,
                        EPOCH_MS + row_id * ROW_EVERY_MS,
                        state,
                        status.code()
                    ])
                    .expect("a row");
            }
        }
        tx.commit().expect("committed");
    }
    let tx = conn.transaction().expect("a transaction");
    {
        let mut insert = tx
            .prepare(
                "INSERT INTO instances (workflow, instance, newest, seq, open, state, status, started, updated) \
                 VALUES ('Parcel', ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )
            .expect("insert");
        for i in 0..instances {
            let newest = ((rows_per - 1) * instances + i + 1) as i64;
            let (state, status) = ending(i);
            insert
                .execute(rusqlite::params![
                    id(i),
                    newest,
                    rows_per as i64,
                    status == InstanceStatus::Running,
                    state,
                    status.code(),
                    EPOCH_MS + (i as i64 + 1) * ROW_EVERY_MS,
                    EPOCH_MS + newest * ROW_EVERY_MS
                ])
                .expect("an instance");
        }
    }
    tx.commit().expect("committed");
    conn.execute_batch(
        "PRAGMA wal_checkpoint(TRUNCATE); INSERT OR REPLACE INTO meta (key, value) VALUES ('bench_built', 1);",
    )
    .expect("marked built");
    println!(
        "  built {} instances, {} journal rows in {:.0} s: {:.0} MiB",
        instances,
        instances * rows_per,
        started.elapsed().as_secs_f64(),
        std::fs::metadata(&path).map_or(0.0, |m| m.len() as f64 / (1 << 20) as f64)
    );
    path
}

fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map_or_else(|_| "?".into(), |l| l.split(' ').take(3).collect::<Vec<_>>().join(" "))
}

/// Times every query of the module's list on `inspector`, a store of `n` instances, as
/// criterion group `name`; returns one call's time of each, for the summary.
fn measure(
    c: &mut Criterion,
    rt: &Runtime,
    name: &str,
    inspector: &Inspector,
    n: u64,
    benching: bool,
) -> Vec<(String, Duration)> {
    let mut group = c.benchmark_group(name);
    let mut figures: Vec<(String, Duration)> = Vec::new();
    let mut time = |name: &str, run: &mut dyn FnMut()| {
        // One timed call apart from criterion's, for the summary.
        let took = Instant::now();
        run();
        figures.push((name.to_string(), took.elapsed()));
        group.bench_function(name, |b| b.iter(&mut *run));
    };
    let list = |filter: Filter, expect: u64| {
        let page = rt.block_on(inspector.list(&filter)).expect("a page");
        assert_eq!(page.total, expect, "{filter:?}");
        assert!(!page.instances.is_empty());
    };
    time("list/first_page", &mut || list(Filter::default(), n));
    let in_packing = (0..n)
        .filter(|&i| ending(i) == ("Packing", InstanceStatus::Running))
        .count() as u64;
    time("list/state_running", &mut || {
        list(
            Filter {
                state: Some("Packing".into()),
                status: Some(InstanceStatus::Running),
                ..Filter::default()
            },
            in_packing,
        )
    });
    let prefix = if benching { "o-0042" } else { "o-00042" };
    let failed_prefixed = (0..n)
        .filter(|&i| ending(i).1 == InstanceStatus::Failed && id(i).starts_with(prefix))
        .count() as u64;
    time("list/failed_prefix", &mut || {
        list(
            Filter {
                status: Some(InstanceStatus::Failed),
                id_prefix: Some(prefix.into()),
                ..Filter::default()
            },
            failed_prefixed,
        )
    });
    // A cursor 50,000 instances deep (or half way, in the smoke test): pages of 1,000 to it.
    let deep = (n / 2).min(50_000) as usize;
    let mut cursor = None;
    for _ in 0..deep / 1_000 {
        let page = rt
            .block_on(inspector.list(&Filter {
                limit: 1_000,
                cursor: cursor.clone(),
                ..Filter::default()
            }))
            .expect("a page");
        cursor = page.next;
    }
    time("list/deep_cursor", &mut || {
        let page = rt
            .block_on(inspector.list(&Filter {
                cursor: cursor.clone(),
                ..Filter::default()
            }))
            .expect("a page");
        assert_eq!(page.instances.len(), 50);
    });
    let last_row_at = (EPOCH_MS + (n * 10) as i64 * ROW_EVERY_MS) as u64;
    time("stats/1h", &mut || {
        let stats = rt
            .block_on(inspector.stats("Parcel", last_row_at - 3_600_000))
            .expect("stats");
        assert_eq!(stats.states.iter().map(|s| s.count).sum::<u64>(), n);
    });
    // A day: 345,600 rows, each of another instance.
    time("stats/24h", &mut || {
        let stats = rt
            .block_on(inspector.stats("Parcel", last_row_at - 24 * 3_600_000))
            .expect("stats");
        assert_eq!(stats.states.iter().map(|s| s.count).sum::<u64>(), n);
    });
    time("diagram/mermaid", &mut || {
        let diagram = rt
            .block_on(inspector.diagram("Parcel", DiagramFormat::Mermaid))
            .expect("a diagram");
        assert_eq!(diagram.counts.iter().map(|c| c.instances).sum::<u64>(), n);
    });
    time("show", &mut || {
        let shown = rt.block_on(inspector.show(&id(n / 3), None)).expect("an instance");
        assert_eq!(shown.timeline.len(), 10);
    });
    group.finish();
    figures
}

fn main() {
    let benching = std::env::args().any(|a| a == "--bench");
    // criterion's filter, if any: `postgres` selects the PostgreSQL store's group only,
    // `inspect/` the SQLite file's only.
    let filter = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .unwrap_or_default();
    let instances = if benching { 1_000_000 } else { 10_000 };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    println!("[inspect: load average {} on 2 cores, before]", load());
    let mut c = Criterion::default()
        .configure_from_args()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    let mut stores: Vec<(&str, String)> = Vec::new();
    if !filter.contains("postgres") {
        let path = store(&rt, instances);
        stores.push(("inspect", path.to_str().unwrap_or_default().to_string()));
    }
    #[cfg(feature = "postgres")]
    if !filter.starts_with("inspect/") {
        stores.push(("inspect_postgres", postgres::store(&rt, instances)));
    }
    let mut summaries = Vec::new();
    for (group, location) in &stores {
        let inspector = rt.block_on(Inspector::open(location)).expect("an inspector");
        summaries.push((*group, measure(&mut c, &rt, group, &inspector, instances, benching)));
    }
    c.final_summary();
    println!("[inspect: load average {} after]", load());
    if benching {
        for (group, figures) in &summaries {
            println!(
                "\n== {group} on {instances} instances, {} journal rows: one call each (target < 1 s) ==",
                instances * 10
            );
            for (name, took) in figures {
                let met = if *took < Duration::from_secs(1) {
                    "met"
                } else {
                    "MISSED"
                };
                println!("  {name:<22} {:>9.1} ms  {met}", took.as_secs_f64() * 1e3);
            }
        }
    }
}

/// The same store in PostgreSQL, built server-side (`generate_series`) in a schema of its own
/// that is kept between runs: `inspect_bench_{instances}` of the database at
/// `WORKFLOW_BENCH_POSTGRES` (default `postgres://root@127.0.0.1:5432/test`).
#[cfg(feature = "postgres")]
mod postgres {
    use super::*;
    use workflow::{PostgresOptions, PostgresStore};

    fn url() -> String {
        std::env::var("WORKFLOW_BENCH_POSTGRES").unwrap_or_else(|_| "postgres://root@127.0.0.1:5432/test".into())
    }

    /// The store's location for [`Inspector::open`], built unless a complete one is there.
    pub fn store(rt: &Runtime, instances: u64) -> String {
        let schema = format!("inspect_bench_{instances}");
        let location = format!("{}?schema={schema}", url());
        rt.block_on(async {
            let (client, connection) = tokio_postgres::connect(&url(), tokio_postgres::NoTls)
                .await
                .unwrap_or_else(|e| panic!("PostgreSQL at {}: {e} (set WORKFLOW_BENCH_POSTGRES)", url()));
            tokio::spawn(connection);
            let built = client
                .query_opt(&format!("SELECT 1 FROM {schema}.bench_built"), &[])
                .await
                .is_ok_and(|row| row.is_some());
            if built {
                return;
            }
            let started = Instant::now();
            client
                .batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
                .await
                .expect("dropped");
            // The schema and the definition, as an engine writes them.
            let store = PostgresStore::open_with(
                &url(),
                PostgresOptions {
                    schema: schema.clone(),
                    ..PostgresOptions::default()
                },
            )
            .expect("the store");
            let engine = Engine::<Parcel, Depot>::builder(Depot).store(Arc::new(store)).build();
            engine.start("seed", ()).await.expect("a start");
            engine.shutdown().await;
            let fingerprint: String = client
                .query_one(&format!("SELECT fingerprint FROM {schema}.definitions"), &[])
                .await
                .expect("the definition")
                .get(0);
            // Every distinct row: the nine walking steps, and the tenth of each ending.
            client
                .batch_execute(&format!(
                    "DELETE FROM {schema}.journal; DELETE FROM {schema}.instances;
                     CREATE TEMP TABLE bench_rows (step int8, kind int8, state text, status int8, open bool,
                       data bytea, checksum int8)"
                ))
                .await
                .expect("emptied");
            let mut rows: Vec<(i64, i64, &str, InstanceStatus)> = (0..9)
                .map(|step| (step, 0, WALK[step as usize], InstanceStatus::Running))
                .collect();
            rows.extend((0..13).map(|kind| {
                let (state, status) = ending_of(kind as u64);
                (9, kind, state, status)
            }));
            for (step, kind, state, status) in rows {
                let data = row_data(&fingerprint, step as u64, state, status);
                client
                    .execute(
                        "INSERT INTO bench_rows VALUES ($1, $2, $3, $4, $5, $6, $7)",
                        &[
                            &step,
                            &kind,
                            &state,
                            &status.code(),
                            &(status == InstanceStatus::Running),
                            &data.as_bytes(),
                            &i64::from(crc32fast::hash(data.as_bytes())),
                        ],
                    )
                    .await
                    .expect("a row kind");
            }
            // Round by round as an engine commits them, at the SQLite file's times.
            let kind = "CASE WHEN i % 100 < 80 THEN 0 WHEN i % 100 < 90 THEN 1 + i % 9 \
                        WHEN i % 100 < 95 THEN 10 WHEN i % 100 < 98 THEN 11 ELSE 12 END";
            let n = instances as i64;
            client
                .execute(
                    &format!(
                        "INSERT INTO {schema}.journal (workflow, instance, seq, open, checksum, data, owner, epoch, at, state, status)
                         SELECT 'Parcel', 'o-' || lpad(i::text, 7, '0'), r.step + 1, r.open, r.checksum, r.data, 0, 1,
                           $2::int8 + (r.step * $1 + i + 1) * $3::int8, r.state, r.status
                         FROM generate_series(0, 9) AS s(k) CROSS JOIN generate_series(0, $1::int8 - 1) AS g(i)
                         JOIN bench_rows r ON r.step = k AND r.kind = CASE WHEN k < 9 THEN 0 ELSE {kind} END
                         ORDER BY k, i"
                    ),
                    &[&n, &EPOCH_MS, &ROW_EVERY_MS],
                )
                .await
                .expect("the journal");
            client
                .execute(
                    &format!(
                        "INSERT INTO {schema}.instances (workflow, instance, newest, open, owner, epoch, state, status, started, updated)
                         SELECT 'Parcel', 'o-' || lpad(i::text, 7, '0'), 10, r.open, NULL, 1, r.state, r.status,
                           $2::int8 + (i + 1) * $3::int8, $2 + (9 * $1 + i + 1) * $3
                         FROM generate_series(0, $1::int8 - 1) AS g(i) JOIN bench_rows r ON r.step = 9 AND r.kind = {kind}"
                    ),
                    &[&n, &EPOCH_MS, &ROW_EVERY_MS],
                )
                .await
                .expect("the instances");
            // One statement each: VACUUM runs outside a transaction.
            for statement in [
                format!("VACUUM ANALYZE {schema}.journal"),
                format!("VACUUM ANALYZE {schema}.instances"),
                format!("CREATE TABLE {schema}.bench_built AS SELECT true AS built"),
            ] {
                client.batch_execute(&statement).await.expect("vacuumed and marked built");
            }
            let size: i64 = client
                .query_one(&format!("SELECT sum(pg_total_relation_size(c.oid))::int8 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = '{schema}'"), &[])
                .await
                .expect("its size")
                .get(0);
            println!(
                "  built {instances} instances, {} journal rows in PostgreSQL in {:.0} s: {} MiB",
                instances * 10,
                started.elapsed().as_secs_f64(),
                size >> 20
            );
        });
        location
    }
}
