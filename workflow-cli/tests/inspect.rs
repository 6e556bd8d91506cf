//! `workflow workflows|list|show|stats|diagram` run as a user runs them, against a store a real
//! engine is writing: the tables, the JSON checked against the journal decoded with the
//! workflow's types, and one clear line with a non-zero exit for each bad input.

use std::sync::Arc;

use common::{every_subcommand, failure, run_orders, workflow};
use workflow::SqliteStore;

mod common;

#[tokio::test]
async fn every_subcommand_reads_a_store_an_engine_is_writing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("orders.db");
    let store = Arc::new(SqliteStore::open(&path).unwrap());
    let engine = run_orders(store.clone()).await;
    every_subcommand(&*store, path.to_str().unwrap()).await;
    drop(engine);
}

#[test]
fn bad_stores_and_bad_usage_fail_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.db");
    let missing = missing.to_str().unwrap();
    let (code, line) = failure(&workflow(&["list", "--store", missing]));
    assert_eq!((code, line), (Some(1), format!("error: {missing}: no such file\n")));

    let text = dir.path().join("notes.txt");
    std::fs::write(
        &text,
        "just text, long enough that SQLite reads it as a file header....",
    )
    .unwrap();
    let text = text.to_str().unwrap();
    let (code, line) = failure(&workflow(&["list", "--store", text]));
    assert_eq!(
        (code, line),
        (
            Some(1),
            format!("error: {text}: not a workflow store (not a SQLite database)\n")
        )
    );

    let newer = dir.path().join("newer.db");
    drop(SqliteStore::open(&newer).unwrap());
    rusqlite::Connection::open(&newer)
        .unwrap()
        .execute("UPDATE meta SET value = 3 WHERE key = 'schema_version'", [])
        .unwrap();
    let (code, line) = failure(&workflow(&["stats", "--store", newer.to_str().unwrap()]));
    assert_eq!(code, Some(1));
    assert_eq!(
        line,
        "error: the store's schema version is 3, newer than this build reads (2); upgrade the tool\n"
    );

    let (code, line) = failure(&workflow(&["list", "--store", "mysql://root@127.0.0.1/test"]));
    assert_eq!(
        (code, line.as_str()),
        (
            Some(1),
            "error: mysql://root@127.0.0.1/test: `mysql://` is not a store this build reads (give a SQLite \
             file's path or a postgres:// URL)\n"
        )
    );
    #[cfg(not(feature = "postgres"))]
    {
        let (code, line) = failure(&workflow(&["list", "--store", "postgres://root@127.0.0.1:5432/test"]));
        assert_eq!(
            (code, line.as_str()),
            (
                Some(1),
                "error: postgres://root@127.0.0.1:5432/test: this build reads no PostgreSQL store (the `postgres` \
                 feature is off)\n"
            )
        );
    }

    // Usage errors exit 2: a status that does not exist, no store at all, a bad window.
    assert_eq!(
        workflow(&["list", "--store", missing, "--status", "stuck"])
            .status
            .code(),
        Some(2)
    );
    assert_eq!(workflow(&["list"]).status.code(), Some(2));
}
