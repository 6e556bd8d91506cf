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

/// The URL of `schema`'s store.
fn location(schema: &pg::Schema) -> String {
    let url = pg::url();
    let joint = if url.contains('?') { '&' } else { '?' };
    format!("{url}{joint}schema={}", schema.name)
}

#[tokio::test]
async fn every_subcommand_reads_a_store_an_engine_is_writing() {
    let schema = pg::Schema::fresh();
    let store = Arc::new(schema.open());
    let engine = run_orders(store.clone()).await;
    every_subcommand(&*store, &location(&schema)).await;
    // The inspector's connection wrote nothing and held nothing: the engine goes on.
    engine.send("o-3", common::OrderEvent::Ship).await.unwrap();
    let shipped = common::json(&["list", "--store", &location(&schema), "--json", "--state", "Shipped"]);
    assert_eq!(shipped["total"], 2);
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
    let at = location(&empty);
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
    let (code, line) = failure(&workflow(&["stats", "--store", &location(&newer)]));
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
    let (code, line) = failure(&workflow(&["show", "o-9", "--store", &location(&store)]));
    assert_eq!(
        (code, line.as_str()),
        (Some(1), "error: no instance `o-9` in the store\n")
    );
}
