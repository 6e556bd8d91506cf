//! Two worker processes share one PostgreSQL database; one is killed (SIGKILL) while its orders
//! are in flight, and the other takes them over once its lease expires and finishes them.
//!
//! ```sh
//! cargo run --example postgres_cluster --features postgres
//! WORKFLOW_EXAMPLE_POSTGRES=postgres://me@db/app cargo run --example postgres_cluster --features postgres
//! ```
//!
//! The program runs itself three times: as the coordinator (no arguments), which starts the two
//! workers, kills the first and reports, and as each worker (`worker N`).

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use workflow::prelude::*;
use workflow::{Engine, PostgresOptions, PostgresStore};

const ORDERS: usize = 300;
const SCHEMA: &str = "workflow_cluster_example";

workflow! {
    workflow Order {
        initial Charging;
        state Charging { invoke charge -> () { done => Reserving; error => Failed; } }
        state Reserving { invoke reserve -> () { done => Shipping; error => Failed; } }
        state Shipping { invoke ship -> () { done => Shipped; error => Failed; } }
        final Shipped;
        final Failed (failure);
    }
}

/// Services that take a while, so that orders are in flight when a worker dies.
struct Services;

impl OrderHandlers for Services {
    async fn charge(&self, _: &(), _: &ActivityCall) -> Result<(), ActivityError> {
        tokio::time::sleep(Duration::from_millis(600)).await;
        Ok(())
    }
    async fn reserve(&self, _: &(), _: &ActivityCall) -> Result<(), ActivityError> {
        tokio::time::sleep(Duration::from_millis(600)).await;
        Ok(())
    }
    async fn ship(&self, _: &(), _: &ActivityCall) -> Result<(), ActivityError> {
        tokio::time::sleep(Duration::from_millis(600)).await;
        Ok(())
    }
}

fn url() -> String {
    std::env::var("WORKFLOW_EXAMPLE_POSTGRES").unwrap_or_else(|_| "postgres://root@127.0.0.1:5432/test".into())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("worker") => worker(args.get(2).map_or("?", String::as_str)).await,
        _ => coordinate().await,
    }
}

/// A worker: opens the store (a process of the cluster), starts its share of orders if it is
/// worker 1, and takes over whatever is left behind, until every order is finished.
async fn worker(name: &str) -> Result<(), Box<dyn std::error::Error>> {
    let options = PostgresOptions {
        schema: SCHEMA.into(),
        ..PostgresOptions::default()
    };
    let store = Arc::new(PostgresStore::open_with(&url(), options)?);
    let engine = Engine::<Order, Services>::builder(Services)
        .store(store.clone())
        .build();
    engine.recover().await?; // and from now on, take over what dead processes leave
    if name == "1" {
        let orders = (0..ORDERS).map(|i| (format!("order-{i}"), ()));
        for result in engine.start_many(orders).await {
            result?;
        }
        println!("worker 1 (process {}): started {ORDERS} orders", store.process());
    }
    loop {
        let mut done = 0;
        for i in 0..ORDERS {
            // Unknown until worker 1 has started it.
            if let Ok(status) = engine.status(&format!("order-{i}")).await {
                done += usize::from(!status.is_running());
            }
        }
        if done == ORDERS {
            println!(
                "worker {name} (process {}): all {ORDERS} orders finished; {} ran here",
                store.process(),
                engine.list().len()
            );
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    engine.shutdown().await;
    Ok(())
}

/// Starts both workers, kills worker 1 while its orders are in flight, and waits for worker 2.
async fn coordinate() -> Result<(), Box<dyn std::error::Error>> {
    reset().await?;
    let me = std::env::current_exe()?;
    let spawn = |n: &str| Command::new(&me).args(["worker", n]).stdout(Stdio::inherit()).spawn();
    let mut first = spawn("1")?;
    let mut second = spawn("2")?;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    first.kill()?; // SIGKILL: no shutdown, no hand-back; its lease must expire
    first.wait()?;
    let killed = Instant::now();
    println!("coordinator: killed worker 1 (SIGKILL) with its orders in flight");
    let status = tokio::task::spawn_blocking(move || second.wait()).await??;
    println!(
        "coordinator: worker 2 finished every order {:.2} s after the kill ({status})",
        killed.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Drops what an earlier run left.
async fn reset() -> Result<(), Box<dyn std::error::Error>> {
    let (client, connection) = tokio_postgres::connect(&url(), tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    client
        .batch_execute(&format!("DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))
        .await?;
    Ok(())
}
