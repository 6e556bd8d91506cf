//! Durable engines on PostgreSQL (the `postgres` feature), several processes on the local server,
//! with the raw PostgreSQL floor measured in the same run, round for round:
//!
//! - `postgres_floor`: one connection, single-row commits (`INSERT` + commit each), and 1,000-row
//!   commits (`INSERT … SELECT unnest`), rows per second.
//! - `postgres_transitions/2_processes`: two worker processes (this binary, re-executed), each
//!   with 2,000 `Counter` instances and one task per instance awaiting `send` after `send` for
//!   3 s; committed transitions per second, both together (synchronous_commit as the server has
//!   it: on by default). Target >= 20,000/s. Paired: a floor round before each round of ours.
//! - `postgres_latency/order_lone`: one 3-activity `Order` at a time, `start` to `wait`
//!   (criterion's mean), then 500 timed runs for p50 / p99, each paired with the floor (the four
//!   single-row commits an order makes, in sequence on a bare connection) and the store alone
//!   (four appends through `Store::append`, no engine). Target p50 <= 3 ms, p99 <= 10 ms.
//! - `postgres_takeover/10000`: worker A starts 10,000 `Counter` instances and is SIGKILLed; worker
//!   B (recovered, taking over) reports when all 10,000 run on it and when it has finished them
//!   all (one `Stop` each). Target: running again within the lease (1.5 s) + 1 s.
//!
//! Run: `cargo bench -p workflow-benches --bench postgres --features postgres` (a server at
//! postgres://root@127.0.0.1:5432/test unless `WORKFLOW_BENCH_POSTGRES` names another). Each run
//! works in a fresh schema, dropped at the end.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use criterion::Criterion;
use workflow::prelude::*;
use workflow::{Engine, PostgresOptions, PostgresStore};

#[derive(Debug, Default, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Tally {
    pub ticks: u64,
}

workflow! {
    pub workflow Counter {
        context Tally;
        initial Even;
        events { Tick, Stop }
        state Even { on Tick => Odd / count; on Stop => Done; }
        state Odd { on Tick => Even / count; on Stop => Done; }
        final Done;
    }
}

workflow! {
    #[allow(unhandled_error)]
    pub workflow Order {
        initial Charging;
        state Charging { invoke charge_payment -> () { done => Reserving; } }
        state Reserving { invoke reserve_stock -> () { done => Shipping; } }
        state Shipping { invoke ship -> () { done => Shipped; } }
        final Shipped;
    }
}

pub struct Shop;

impl CounterHandlers for Shop {
    fn count(&self, tally: &mut Tally, _event: &Tick) {
        tally.ticks += 1;
    }
}

impl OrderHandlers for Shop {
    async fn charge_payment(&self, _: &(), _: &ActivityCall) -> Result<(), ActivityError> {
        Ok(())
    }
    async fn reserve_stock(&self, _: &(), _: &ActivityCall) -> Result<(), ActivityError> {
        Ok(())
    }
    async fn ship(&self, _: &(), _: &ActivityCall) -> Result<(), ActivityError> {
        Ok(())
    }
}

const WORKER_VAR: &str = "WORKFLOW_BENCH_PG_WORKER";
const INSTANCES: usize = 2_000;
const TAKEOVER: usize = 10_000;
const RUN: Duration = Duration::from_secs(3);

fn url() -> String {
    std::env::var("WORKFLOW_BENCH_POSTGRES").unwrap_or_else(|_| "postgres://root@127.0.0.1:5432/test".into())
}

fn open(schema: &str) -> Arc<PostgresStore> {
    let options = PostgresOptions {
        schema: schema.into(),
        ..PostgresOptions::default()
    };
    Arc::new(PostgresStore::open_with(&url(), options).unwrap_or_else(|error| {
        panic!(
            "PostgreSQL at {}: {error} (set WORKFLOW_BENCH_POSTGRES to another server)",
            url()
        )
    }))
}

fn unix_millis() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis())
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

async fn sql(statements: &str) {
    let (client, connection) = tokio_postgres::connect(&url(), tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    client.batch_execute(statements).await.unwrap();
}

// ---------------------------------------------------------------------------
// workers (this binary, re-executed with WORKER_VAR = "role schema index")
// ---------------------------------------------------------------------------

fn worker(spec: &str) {
    let parts: Vec<&str> = spec.split_whitespace().collect();
    let (role, schema, index) = (parts[0], parts[1], parts[2]);
    let rt = runtime();
    rt.block_on(async {
        let store = open(schema);
        let engine = Engine::<Counter, Shop>::builder(Shop).store(store.clone()).build();
        engine.recover().await.unwrap();
        match role {
            "send" => {
                let ids: Vec<String> = (0..INSTANCES).map(|i| format!("c-{index}-{i}")).collect();
                let starts = engine
                    .start_many(ids.iter().map(|id| (id.clone(), Tally::default())))
                    .await;
                assert!(starts.iter().all(Result::is_ok));
                println!("ready");
                let began = Instant::now();
                let tasks: Vec<_> = ids
                    .into_iter()
                    .map(|id| {
                        let engine = engine.clone();
                        tokio::spawn(async move {
                            let mut sent = 0u64;
                            while began.elapsed() < RUN {
                                engine.send(&id, CounterEvent::Tick).await.unwrap();
                                sent += 1;
                            }
                            sent
                        })
                    })
                    .collect();
                let mut sent = 0;
                for task in tasks {
                    sent += task.await.unwrap();
                }
                println!("sent {sent} in {}", began.elapsed().as_secs_f64());
            }
            "hold" => {
                let ids: Vec<String> = (0..TAKEOVER).map(|i| format!("t-{i}")).collect();
                for chunk in ids.chunks(1000) {
                    let starts = engine
                        .start_many(chunk.iter().map(|id| (id.clone(), Tally::default())))
                        .await;
                    assert!(starts.iter().all(Result::is_ok));
                }
                println!("ready");
                std::future::pending::<()>().await;
            }
            _ => {
                // "survive": waits for the other's instances, then finishes them.
                println!("ready");
                loop {
                    if engine.list().len() == TAKEOVER {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                println!("running {}", unix_millis());
                let ids: Vec<String> = engine.list().into_iter().map(|(id, _)| id).collect();
                let tasks: Vec<_> = ids
                    .into_iter()
                    .map(|id| {
                        let engine = engine.clone();
                        tokio::spawn(async move { engine.send(&id, CounterEvent::Stop).await })
                    })
                    .collect();
                for task in tasks {
                    task.await.unwrap().unwrap();
                }
                println!("finished {}", unix_millis());
            }
        }
        engine.shutdown().await;
    });
}

struct Spawned {
    child: Child,
    lines: std::sync::mpsc::Receiver<String>,
}

fn spawn(spec: &str) -> Spawned {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .env(WORKER_VAR, spec)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (send, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if send.send(line).is_err() {
                break;
            }
        }
    });
    Spawned { child, lines }
}

impl Spawned {
    fn line(&self, prefix: &str) -> String {
        loop {
            let line = self
                .lines
                .recv_timeout(Duration::from_secs(120))
                .expect("the worker went quiet");
            if line.starts_with(prefix) {
                return line;
            }
        }
    }
}

// ---------------------------------------------------------------------------
// the floor
// ---------------------------------------------------------------------------

/// A connection of its own and a table `name` in `schema` for the raw floor, with its prepared
/// single-row insert; the table's quoted name.
async fn floor_table(schema: &str, name: &str) -> (tokio_postgres::Client, tokio_postgres::Statement, String) {
    let (client, connection) = tokio_postgres::connect(&url(), tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    let table = format!("\"{schema}\".{name}");
    client
        .batch_execute(&format!("CREATE TABLE IF NOT EXISTS {table} (id int8, data bytea)"))
        .await
        .unwrap();
    let insert = client
        .prepare(&format!("INSERT INTO {table} VALUES ($1, $2)"))
        .await
        .unwrap();
    (client, insert, table)
}

/// Single-row commits per second and rows per second in 1,000-row commits, on one connection,
/// for `RUN / 3` each.
async fn floor(schema: &str) -> (f64, f64) {
    let (client, insert, table) = floor_table(schema, "floor").await;
    let data = vec![7u8; 200];
    let began = Instant::now();
    let mut single = 0u64;
    while began.elapsed() < RUN / 3 {
        client.execute(&insert, &[&(single as i64), &data]).await.unwrap();
        single += 1;
    }
    let single = single as f64 / began.elapsed().as_secs_f64();
    let many = client
        .prepare(&format!(
            "INSERT INTO {table} SELECT * FROM unnest($1::int8[], $2::bytea[])"
        ))
        .await
        .unwrap();
    let ids: Vec<i64> = (0..1000).collect();
    let datas: Vec<&[u8]> = (0..1000).map(|_| data.as_slice()).collect();
    let began = Instant::now();
    let mut rows = 0u64;
    while began.elapsed() < RUN / 3 {
        client.execute(&many, &[&ids, &datas]).await.unwrap();
        rows += 1000;
    }
    (single, rows as f64 / began.elapsed().as_secs_f64())
}

fn main() {
    if let Ok(spec) = std::env::var(WORKER_VAR) {
        return worker(&spec);
    }
    let smoke = !std::env::args().any(|a| a == "--bench");
    // A filter, as criterion takes one: `cargo bench -p workflow-benches --bench postgres --features postgres -- takeover`.
    let only = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let run = |section: &str| only.as_deref().is_none_or(|only| section.contains(only));
    let rt = runtime();
    let schema = format!("wf_bench_{}", std::process::id());
    drop(open(&schema)); // creates it

    // Paired rounds: the floor, then two worker processes, three times.
    let rounds = match (smoke, run("postgres_transitions")) {
        (_, false) => 0,
        (true, true) => 1,
        (false, true) => 3,
    };
    for round in 1..=rounds {
        let (single, many) = rt.block_on(floor(&schema));
        let workers: Vec<Spawned> = (0..2).map(|i| spawn(&format!("send {schema} r{round}w{i}"))).collect();
        for w in &workers {
            w.line("ready");
        }
        let mut total = 0.0;
        for mut w in workers {
            let line = w.line("sent");
            let parts: Vec<&str> = line.split_whitespace().collect();
            total += parts[1].parse::<f64>().unwrap() / parts[3].parse::<f64>().unwrap();
            w.child.wait().unwrap();
        }
        println!(
            "postgres_transitions/2_processes round {round}: {total:.0} committed transitions/s \
             (floor, same run: {single:.0} single-row commits/s, {many:.0} rows/s in 1,000-row commits; \
             target >= 20,000/s, DBOS ~1,360 steps/s)"
        );
    }

    // Lone order latency.
    if run("postgres_latency") {
        lone(&rt, &schema, smoke);
    }

    // Takeover of 10,000 unfinished instances after a SIGKILL, in a schema of its own.
    if !smoke && run("postgres_takeover") {
        takeover(&format!("{schema}_takeover"));
        rt.block_on(sql(&format!("DROP SCHEMA \"{schema}_takeover\" CASCADE")));
    }
    rt.block_on(sql(&format!("DROP SCHEMA \"{schema}\" CASCADE")));
}

fn lone(rt: &tokio::runtime::Runtime, schema: &str, smoke: bool) {
    let store = open(schema);
    let engine = Engine::<Order, Shop>::builder(Shop).store(store.clone()).build();
    let mut c = Criterion::default().configure_from_args();
    let mut n = 0u64;
    c.bench_function("postgres_latency/order_lone", |b| {
        b.iter(|| {
            n += 1;
            let id = format!("lone-{n}");
            rt.block_on(async {
                engine.start(id.clone(), ()).await.unwrap();
                engine.wait(&id).await.unwrap();
            })
        })
    });
    // Paired with the floor: after each order, the four single-row commits in sequence an order
    // makes (its start and three steps), on one connection of its own, prepared; and the store
    // alone: four appends in sequence (a start and three steps of an instance), no engine.
    let (client, insert, _) = rt.block_on(floor_table(schema, "lone_floor"));
    let data = vec![7u8; 200];
    let runs = if smoke { 20 } else { 500 };
    let mut appends = Vec::with_capacity(runs);
    let (mut times, mut floors): (Vec<Duration>, Vec<Duration>) = (0..runs)
        .map(|i| {
            let began = Instant::now();
            rt.block_on(async {
                for seq in 1..=4 {
                    let row = workflow::Row {
                        instance: format!("raw-{i}"),
                        seq,
                        open: seq < 4,
                        checksum: 0,
                        data: data.clone(),
                        summary: Default::default(),
                    };
                    workflow::Store::append(&*store, "Raw", row).await.unwrap();
                }
            });
            appends.push(began.elapsed());
            let id = format!("timed-{i}");
            let began = Instant::now();
            rt.block_on(async {
                engine.start(id.clone(), ()).await.unwrap();
                engine.wait(&id).await.unwrap();
            });
            let order = began.elapsed();
            let began = Instant::now();
            rt.block_on(async {
                for row in 0..4i64 {
                    client.execute(&insert, &[&row, &data]).await.unwrap();
                }
            });
            (order, began.elapsed())
        })
        .unzip();
    times.sort();
    floors.sort();
    appends.sort();
    let q = |times: &[Duration], f: f64| times[((times.len() - 1) as f64 * f) as usize].as_secs_f64() * 1e3;
    println!(
        "postgres_latency/order_lone: p50 {:.2} ms, p99 {:.2} ms over {runs} runs (target <= 3 / <= 10 ms; DBOS 7.2 / 12.6 ms); \
         floor, paired: 4 single-row commits in sequence p50 {:.2} ms, p99 {:.2} ms; \
         the store alone, 4 appends in sequence p50 {:.2} ms, p99 {:.2} ms",
        q(&times, 0.5),
        q(&times, 0.99),
        q(&floors, 0.5),
        q(&floors, 0.99),
        q(&appends, 0.5),
        q(&appends, 0.99)
    );
    rt.block_on(engine.shutdown());
}

fn takeover(schema: &str) {
    {
        let mut holder = spawn(&format!("hold {schema} h"));
        holder.line("ready");
        let survivor = spawn(&format!("survive {schema} s"));
        survivor.line("ready");
        holder.child.kill().unwrap();
        let killed = unix_millis();
        holder.child.wait().unwrap();
        let running: u128 = survivor
            .line("running")
            .split_whitespace()
            .nth(1)
            .unwrap()
            .parse()
            .unwrap();
        let finished: u128 = survivor
            .line("finished")
            .split_whitespace()
            .nth(1)
            .unwrap()
            .parse()
            .unwrap();
        println!(
            "postgres_takeover/10000: all running on the survivor {} ms after the SIGKILL, all finished {} ms after \
             (lease 1.5 s; target: lease + 1 s)",
            running - killed,
            finished - killed
        );
    }
}
