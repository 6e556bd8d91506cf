//! The PostgreSQL server the `postgres` tests use, and a fresh schema for each test.
//!
//! The server is `postgres://root@127.0.0.1:5432/test` unless `WORKFLOW_TEST_POSTGRES` names
//! another (any URL tokio-postgres reads; the user must be able to create schemas). A test that
//! cannot reach it fails, saying so: it never skips.

#![allow(dead_code)] // each test binary uses part of it

use std::sync::atomic::{AtomicU32, Ordering};

use workflow::{PostgresOptions, PostgresStore, StoreError};

/// The server's URL.
pub fn url() -> String {
    std::env::var("WORKFLOW_TEST_POSTGRES").unwrap_or_else(|_| "postgres://root@127.0.0.1:5432/test".to_string())
}

/// A schema of its own for one test, dropped with it.
pub struct Schema {
    pub name: String,
}

impl Schema {
    /// A new, unique schema name (the store creates the schema).
    pub fn fresh() -> Schema {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let name = format!(
            "wf_test_{}_{}_{nanos}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        Schema { name }
    }

    /// A store over this schema: a process of the cluster.
    pub fn open(&self) -> PostgresStore {
        open_in(&self.name)
    }

    /// The URL of this schema's store, as the inspector (`Inspector::open`, `workflow --store`)
    /// takes it: the server's URL with the schema as its `schema` parameter.
    pub fn location(&self) -> String {
        let url = url();
        let joint = if url.contains('?') { '&' } else { '?' };
        format!("{url}{joint}schema={}", self.name)
    }

    /// Runs `sql` on the server (a connection of its own).
    pub fn execute(&self, sql: &str) -> Vec<tokio_postgres::Row> {
        run(&format!("SET search_path TO \"{}\"", self.name), sql)
    }
}

/// A store over schema `name`, or a failure that says how to point the tests at a server.
pub fn open_in(name: &str) -> PostgresStore {
    let options = PostgresOptions {
        schema: name.to_string(),
        ..PostgresOptions::default()
    };
    match PostgresStore::open_with(&url(), options) {
        Ok(store) => store,
        Err(StoreError::Backend(error)) => panic!(
            "cannot reach the PostgreSQL server at {}: {error}\n\
             The `postgres` tests need a server on which they may create schemas: start one, or set \
             WORKFLOW_TEST_POSTGRES to its URL (e.g. postgres://user@host:5432/db).",
            url()
        ),
        Err(error) => panic!("opening the store failed: {error}"),
    }
}

/// Runs `setup` then `sql` on a connection of its own, on a runtime of its own.
pub fn run(setup: &str, sql: &str) -> Vec<tokio_postgres::Row> {
    let (setup, sql) = (setup.to_string(), sql.to_string());
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let (client, connection) = tokio_postgres::connect(&url(), tokio_postgres::NoTls)
                .await
                .unwrap_or_else(|error| panic!("cannot reach the PostgreSQL server at {}: {error}", url()));
            tokio::spawn(connection);
            client.batch_execute(&setup).await.unwrap();
            client.query(&sql, &[]).await.unwrap()
        })
    })
    .join()
    .unwrap()
}

impl Drop for Schema {
    fn drop(&mut self) {
        let _ =
            std::panic::catch_unwind(|| run("SELECT 1", &format!("DROP SCHEMA IF EXISTS \"{}\" CASCADE", self.name)));
    }
}
