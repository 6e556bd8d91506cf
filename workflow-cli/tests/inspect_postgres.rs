//! `workflow workflows|list|show|stats|diagram --store postgres://…` against a PostgreSQL store a
//! real engine is writing, each test in a fresh schema of its own: the same checks as the SQLite
//! store's (tests/common), and one clear line with a non-zero exit for each bad store. Needs the
//! `postgres` feature and a server (`WORKFLOW_TEST_POSTGRES`, see tests/pg/mod.rs at the
//! workspace's root).
#![cfg(feature = "postgres")]

use std::sync::Arc;

use common::{every_subcommand, failure, run_orders, workflow};

mod common;
#[path = "../../tests/pg/mod.rs"]
mod pg;

#[tokio::test]
async fn every_subcommand_reads_a_store_an_engine_is_writing() {
    let schema = pg::Schema::fresh();
    let store = Arc::new(schema.open());
    let engine = run_orders(store.clone()).await;
    every_subcommand(&*store, &schema.location()).await;
    // The inspector's connection wrote nothing and held nothing: the engine goes on.
    engine.send("o-3", common::OrderEvent::Ship).await.unwrap();
    let shipped = common::json(&["list", "--store", &schema.location(), "--json", "--state", "Shipped"]);
    assert_eq!(shipped["total"], 2);
    // A row garbled in the database: its timeline entry says so, with its plaintext summary;
    // the rest reads.
    schema.execute("UPDATE journal SET data = '\\x00ff' WHERE instance = 'o-1' AND seq = 2");
    let shown = common::json(&["show", "o-1", "--store", &schema.location(), "--json"]);
    let garbled = &shown["timeline"][1];
    assert_eq!(
        (&garbled["step"], &garbled["to"]),
        (&"unreadable".into(), &"Packing".into())
    );
    assert!(garbled["error"].as_str().is_some_and(|e| !e.is_empty()), "{garbled}");
    assert_eq!(shown["timeline"][2]["step"], "transition");
    drop(engine);
}

#[test]
fn bad_postgres_stores_fail_with_one_line() {
    // No server there.
    let (code, line) = failure(&workflow(&[
        "list",
        "--store",
        "postgres://root:secret@127.0.0.1:1/test",
    ]));
    assert_eq!(code, Some(1));
    assert!(
        line.starts_with("error: postgres://root:***@127.0.0.1:1/test: cannot connect (")
            && line.lines().count() == 1
            && !line.contains("secret"),
        "{line}"
    );
    // Not a URL the client reads.
    let (code, line) = failure(&workflow(&[
        "list",
        "--store",
        "postgres://root@127.0.0.1:5432/test?bogus=1",
    ]));
    assert_eq!(code, Some(1));
    assert!(
        line.starts_with("error: postgres://root@127.0.0.1:5432/test?bogus=1: not a PostgreSQL URL: ")
            && line.lines().count() == 1,
        "{line}"
    );
    // A schema without a store.
    let empty = pg::Schema::fresh();
    let at = empty.location();
    let (code, line) = failure(&workflow(&["workflows", "--store", &at]));
    assert_eq!(
        (code, line),
        (
            Some(1),
            format!(
                "error: {at}: not a workflow store (no table `meta` in schema `{}`; name the store's schema with \
                 `?schema=NAME`)\n",
                empty.name
            )
        )
    );
    // A store of a newer schema.
    let newer = pg::Schema::fresh();
    drop(newer.open());
    newer.execute("UPDATE meta SET version = 3");
    let (code, line) = failure(&workflow(&["stats", "--store", &newer.location()]));
    assert_eq!(
        (code, line.as_str()),
        (
            Some(1),
            "error: the store's schema version is 3, newer than this build reads (2); upgrade the tool\n"
        )
    );
    // An unknown id.
    let store = pg::Schema::fresh();
    drop(store.open());
    let (code, line) = failure(&workflow(&["show", "o-9", "--store", &store.location()]));
    assert_eq!(
        (code, line.as_str()),
        (Some(1), "error: no instance `o-9` in the store\n")
    );
}

/// `value` without its times, which differ between two runs.
fn timeless(value: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    const TIMES: [&str; 11] = [
        "at",
        "after_ms",
        "started",
        "updated",
        "first_seen",
        "since",
        "duration_ms",
        "duration_us",
        "p50_ms",
        "p99_ms",
        "deadline",
    ];
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .filter(|(k, _)| !TIMES.contains(&k.as_str()))
                // A cursor holds a start time: whether there is one.
                .map(|(k, v)| match k.as_str() {
                    "next" => (k, Value::Bool(!v.is_null())),
                    _ => (k, timeless(v)),
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(timeless).collect()),
        other => other,
    }
}

#[tokio::test]
async fn both_stores_answer_alike_for_the_same_run() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("orders.db");
    let sqlite = Arc::new(workflow::SqliteStore::open(&path).unwrap());
    let schema = pg::Schema::fresh();
    let postgres = Arc::new(schema.open());
    let (a, b) = tokio::join!(run_orders(sqlite.clone()), run_orders(postgres.clone()));
    let stores = [path.to_str().unwrap().to_string(), schema.location()];
    let answers: Vec<Vec<serde_json::Value>> = stores
        .iter()
        .map(|store| {
            [
                vec!["workflows"],
                vec!["list"],
                vec!["list", "--state", "Packing", "--limit", "1"],
                vec!["list", "--status", "finished", "--id-prefix", "o-"],
                vec!["show", "o-1"],
                vec!["show", "o-2"],
                vec!["stats", "Order"],
                vec!["diagram", "Order"],
            ]
            .iter()
            .map(|args| {
                let mut args = args.clone();
                args.extend(["--json", "--store", store]);
                timeless(common::json(&args))
            })
            .collect()
        })
        .collect();
    assert_eq!(answers[0].len(), 8);
    for (sqlite, postgres) in answers[0].iter().zip(&answers[1]) {
        assert_eq!(sqlite, postgres);
    }
    drop((a, b));
}
