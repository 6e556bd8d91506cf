//! The inspector's reads of a PostgreSQL store: one connection of its own, read-only
//! (`default_transaction_read_only`: the server refuses any write on it), each query a plain
//! `SELECT` in its own snapshot. Plain reads take no row locks and never wait for the engines'
//! writes, nor make them wait; the one lock they take (`ACCESS SHARE` on the tables) conflicts
//! only with the schema's migration by an engine of a newer schema, which `statement_timeout`
//! bounds. The store's schema is the URL's `schema` parameter (default `workflow`, as
//! [`PostgresOptions::schema`](crate::store::PostgresOptions::schema)).
//!
//! Its queries read the same columns as SQLite's, through schema 2's indexes on `instances`,
//! except the time window of `stats`, read through the journal's BRIN index on `at`: the
//! journal is appended in time order, so a window is its last pages, and a BRIN index (one
//! summary per range of 128 pages, 120 kB for 10,000,000 rows) costs the engines' writes next
//! to nothing, where a B-tree on the hottest table would cost an insert on every step.
//!
//! The connection runs with `jit = off`: compiling a query's expressions took 100–125 ms of
//! each window query, longer than running it.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, NoTls};

use super::sql::{self, Dialect, Param, Select, POSTGRES};
use super::{InspectError, InstanceRow, Key, Move, Read, StateCounts};
use crate::store::postgres::{journal_query, journal_rows, quote, SCHEMA_VERSION};
use crate::store::{Definition, InstanceStatus, Row};

/// The schema a URL without a `schema` parameter reads: [`PostgresOptions`]'s default.
///
/// [`PostgresOptions`]: crate::store::PostgresOptions
const DEFAULT_SCHEMA: &str = "workflow";

/// How long a connection attempt waits.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The longest one query may run (the server cancels it), so that no read holds its tables'
/// share lock long in front of a migration.
const STATEMENT_TIMEOUT_MS: u64 = 30_000;

/// A PostgreSQL store opened read-only.
#[derive(Clone)]
pub(super) struct Postgres {
    /// Behind a mutex: each read holds it for its queries.
    conn: Arc<Mutex<Connection>>,
    /// The URL without its password, for messages.
    name: Arc<str>,
    /// The schema, quoted.
    schema: Arc<str>,
    /// Its `instances` table, and [`sql::columns`] of it.
    table: Arc<str>,
    columns: Arc<str>,
}

/// The client and the runtime that drives its connection (the reads run on tokio's blocking
/// pool, each one `block_on` this runtime).
struct Connection {
    runtime: Option<tokio::runtime::Runtime>,
    client: Client,
}

impl Drop for Connection {
    fn drop(&mut self) {
        // An inspector may be dropped on an async worker, where dropping a runtime would panic.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl Postgres {
    /// Connects to `location` (`postgres://` or `postgresql://`, with an optional `schema`
    /// parameter) and checks the store's schema.
    pub(super) fn open(location: &str) -> Result<Postgres, InspectError> {
        let (url, schema) = split_schema(location);
        let name = redacted(location);
        let bad = |reason: String| InspectError::BadLocation {
            location: name.clone(),
            reason,
        };
        let schema = schema.map_err(&bad)?.unwrap_or_else(|| DEFAULT_SCHEMA.to_string());
        let mut config: tokio_postgres::Config = url.parse().map_err(|e| bad(format!("not a PostgreSQL URL: {e}")))?;
        let options = format!(
            "{} -c default_transaction_read_only=on -c statement_timeout={STATEMENT_TIMEOUT_MS} -c jit=off",
            config.get_options().unwrap_or_default()
        );
        config
            .options(options.trim_start())
            .application_name("workflow-inspect")
            .connect_timeout(CONNECT_TIMEOUT);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| InspectError::Store { reason: e.to_string() })?;
        let (client, connection) = runtime
            .block_on(config.connect(NoTls))
            .map_err(|e| InspectError::Unreachable {
                location: name.clone(),
                reason: described(&e),
            })?;
        runtime.spawn(connection);
        let source = Postgres {
            conn: Arc::new(Mutex::new(Connection {
                runtime: Some(runtime),
                client,
            })),
            name: name.clone().into(),
            table: format!("{}.instances", quote(&schema)).into(),
            columns: sql::columns(&format!("{}.instances", quote(&schema)), "newest").into(),
            schema: quote(&schema).into(),
        };
        let not_a_store = |reason: String| InspectError::NotAStore {
            location: name.clone(),
            reason,
        };
        let meta = format!("{}.meta", source.schema);
        let found = source.query("SELECT to_regclass($1) IS NOT NULL", &[&meta])?;
        if !found
            .first()
            .and_then(|r| r.try_get::<_, bool>(0).ok())
            .unwrap_or(false)
        {
            return Err(not_a_store(format!(
                "no table `meta` in schema `{schema}`; name the store's schema with `?schema=NAME`"
            )));
        }
        let version = source
            .query(&format!("SELECT max(version) FROM {}.meta", source.schema), &[])
            .map_err(|e| not_a_store(format!("its table `meta` does not read: {e}")))?;
        match version
            .first()
            .and_then(|r| r.try_get::<_, Option<i64>>(0).ok())
            .flatten()
        {
            Some(SCHEMA_VERSION) => Ok(source),
            Some(found) if found > SCHEMA_VERSION => Err(InspectError::SchemaTooNew {
                found,
                supported: SCHEMA_VERSION,
            }),
            Some(found) if found >= 1 => Err(InspectError::SchemaTooOld {
                found,
                supported: SCHEMA_VERSION,
            }),
            _ => Err(not_a_store(format!("no schema version in `{schema}.meta`"))),
        }
    }

    pub(super) fn name(&self) -> &str {
        &self.name
    }

    /// Runs `sql` with `params`.
    fn query(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<tokio_postgres::Row>, InspectError> {
        // Reads change nothing: a panic while the lock was held leaves nothing half-done.
        let conn = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
        let runtime = conn.runtime.as_ref().ok_or_else(|| InspectError::Store {
            reason: format!("{}: the connection is closed", self.name),
        })?;
        runtime
            .block_on(conn.client.query(sql, params))
            .map_err(|e| InspectError::Store {
                reason: format!("{}: {}", self.name, described(&e)),
            })
    }

    /// `select`, its parameters bound.
    fn select(&self, select: &Select) -> Result<Vec<tokio_postgres::Row>, InspectError> {
        let params: Vec<Box<dyn ToSql + Sync>> = select
            .params
            .iter()
            .map(|p| -> Box<dyn ToSql + Sync> {
                match p {
                    Param::Text(text) => Box::new(text.clone()),
                    Param::Integer(number) => Box::new(*number),
                }
            })
            .collect();
        let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p.as_ref()).collect();
        self.query(&select.sql, &refs)
    }

    /// The one count `sql` selects.
    fn count_of(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<u64, InspectError> {
        Ok(self.query(sql, params)?.first().map_or(0, |r| count(r, 0)))
    }
}

/// `location` without its `schema` parameter, and that parameter (percent-decoded).
fn split_schema(location: &str) -> (String, Result<Option<String>, String>) {
    let Some((base, query)) = location.split_once('?') else {
        return (location.to_string(), Ok(None));
    };
    let mut schema = Ok(None);
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.strip_prefix("schema=") {
            Some(value) => {
                schema = match percent_decode(value) {
                    Some(name) if !name.is_empty() => Ok(Some(name)),
                    _ => Err(format!("`{value}` is not a schema's name")),
                }
            }
            None => kept.push(pair),
        }
    }
    let url = if kept.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    (url, schema)
}

fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = text.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            byte => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// `location` with its password, if any, replaced by `***`: names in messages leak no secret.
fn redacted(location: &str) -> String {
    let Some((scheme, rest)) = location.split_once("://") else {
        return location.to_string();
    };
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    match authority.rsplit_once('@') {
        Some((user, host)) => match user.split_once(':') {
            Some((user, _password)) => format!("{scheme}://{user}:***@{host}{tail}"),
            None => location.to_string(),
        },
        None => location.to_string(),
    }
}

/// An error with the server's message (tokio-postgres's `Display` of a server error is only
/// "db error") or the cause of a connection's failure.
fn described(error: &tokio_postgres::Error) -> String {
    match error.as_db_error() {
        Some(db) => format!("{}: {}", db.severity(), db.message()),
        None => match std::error::Error::source(error) {
            Some(cause) => format!("{error}: {cause}"),
            None => error.to_string(),
        },
    }
}

fn text(r: &tokio_postgres::Row, i: usize) -> Option<String> {
    r.try_get::<_, Option<String>>(i).ok().flatten()
}

fn integer(r: &tokio_postgres::Row, i: usize) -> Option<i64> {
    r.try_get::<_, Option<i64>>(i).ok().flatten()
}

fn count(r: &tokio_postgres::Row, i: usize) -> u64 {
    integer(r, i).and_then(|n| u64::try_from(n).ok()).unwrap_or(0)
}

fn status(r: &tokio_postgres::Row, i: usize) -> Option<InstanceStatus> {
    integer(r, i).and_then(InstanceStatus::from_code)
}

/// One instance of a list ([`sql::columns`]), and its sort key.
fn instance_row(r: &tokio_postgres::Row) -> (Key, InstanceRow) {
    let workflow = text(r, 0).unwrap_or_default();
    let id = text(r, 1).unwrap_or_default();
    let started = integer(r, 4);
    let row = InstanceRow {
        workflow: workflow.clone(),
        id: id.clone(),
        state: text(r, 2),
        status: status(r, 3),
        started: started.and_then(|s| u64::try_from(s).ok()),
        updated: integer(r, 5).and_then(|s| u64::try_from(s).ok()),
        rows: count(r, 6),
    };
    (Key { started, workflow, id }, row)
}

impl Read for Postgres {
    fn workflows(&self) -> Result<Vec<String>, InspectError> {
        let s = &self.schema;
        // A loose index scan of `instances`' key: one lookup per workflow, not a row per instance.
        let sql = format!(
            "WITH RECURSIVE w(name) AS (
                 SELECT (SELECT min(workflow) FROM {s}.instances)
                 UNION ALL
                 SELECT (SELECT min(workflow) FROM {s}.instances WHERE workflow > w.name) FROM w WHERE w.name IS NOT NULL)
             SELECT name FROM w WHERE name IS NOT NULL
             UNION SELECT workflow FROM {s}.definitions"
        );
        // Sorted here, by bytes as SQLite's store sorts them, whatever the database's collation.
        let mut names: Vec<String> = self.query(&sql, &[])?.iter().filter_map(|r| text(r, 0)).collect();
        names.sort_unstable();
        Ok(names)
    }

    fn definitions(&self) -> Result<Vec<Definition>, InspectError> {
        let sql = format!(
            "SELECT workflow, fingerprint, graph, context, first_seen FROM {}.definitions",
            self.schema
        );
        // A definition whose values have the wrong types is left out, not an error: the rest of
        // the store still reads.
        Ok(self
            .query(&sql, &[])?
            .iter()
            .filter_map(|r| {
                Some(Definition {
                    workflow: text(r, 0)?,
                    fingerprint: text(r, 1)?,
                    graph: text(r, 2)?,
                    context: text(r, 3)?,
                    first_seen: integer(r, 4).and_then(|t| u64::try_from(t).ok())?,
                })
            })
            .collect())
    }

    fn status_counts(
        &self,
        workflow: Option<&str>,
    ) -> Result<Vec<(String, Option<InstanceStatus>, u64)>, InspectError> {
        let sql = format!(
            "SELECT workflow, status, count(*) FROM {}.instances WHERE $1::text IS NULL OR workflow = $1
             GROUP BY workflow, status",
            self.schema
        );
        Ok(self
            .query(&sql, &[&workflow])?
            .iter()
            .map(|r| (text(r, 0).unwrap_or_default(), status(r, 1), count(r, 2)))
            .collect())
    }

    fn state_counts(&self, workflow: &str) -> Result<StateCounts, InspectError> {
        let sql = format!(
            "SELECT state, status, count(*) FROM {}.instances WHERE workflow = $1 GROUP BY state, status",
            self.schema
        );
        Ok(self
            .query(&sql, &[&workflow])?
            .iter()
            .map(|r| (text(r, 0), status(r, 1), count(r, 2)))
            .collect())
    }

    fn dialect(&self) -> Dialect {
        POSTGRES
    }

    fn table(&self) -> &str {
        &self.table
    }

    fn columns(&self) -> &str {
        &self.columns
    }

    fn instances(&self, select: &Select) -> Result<Vec<(Key, InstanceRow)>, InspectError> {
        Ok(self.select(select)?.iter().map(instance_row).collect())
    }

    fn number(&self, select: &Select) -> Result<u64, InspectError> {
        Ok(self.select(select)?.first().map_or(0, |r| count(r, 0)))
    }

    fn instance(&self, workflow: &str, id: &str) -> Result<Option<InstanceRow>, InspectError> {
        let sql = format!("{} WHERE workflow = $1 AND instance = $2", self.columns);
        Ok(self.query(&sql, &[&workflow, &id])?.first().map(|r| instance_row(r).1))
    }

    fn journal(&self, workflow: &str, id: &str) -> Result<Vec<Row>, InspectError> {
        let rows = self.query(&journal_query(&self.schema), &[&workflow, &id])?;
        journal_rows(id, rows).map_err(|e| InspectError::Store { reason: e.to_string() })
    }

    fn started_since(&self, workflow: &str, since: i64) -> Result<u64, InspectError> {
        let sql = format!(
            "SELECT count(*) FROM {}.instances WHERE workflow = $1 AND started >= $2",
            self.schema
        );
        self.count_of(&sql, &[&workflow, &since])
    }

    fn ended_since(&self, workflow: &str, since: i64) -> Result<Vec<(Option<InstanceStatus>, u64)>, InspectError> {
        // The window's rows through the journal's BRIN index on `at` (the journal is written in
        // time order, so the window is its last pages).
        let sql = format!(
            "SELECT status, count(*) FROM {}.journal WHERE workflow = $1 AND at >= $2 AND NOT open GROUP BY status",
            self.schema
        );
        Ok(self
            .query(&sql, &[&workflow, &since])?
            .iter()
            .map(|r| (status(r, 0), count(r, 1)))
            .collect())
    }

    fn moves_since(&self, workflow: &str, since: i64, limit: u32) -> Result<Vec<Move>, InspectError> {
        let s = &self.schema;
        let sql = format!(
            "SELECT p.state, j.state, j.at - p.at FROM
               (SELECT workflow, instance, seq, state, at FROM {s}.journal
                WHERE workflow = $1 AND at >= $2 ORDER BY at DESC LIMIT $3) AS j
             LEFT JOIN {s}.journal p ON p.workflow = j.workflow AND p.instance = j.instance AND p.seq = j.seq - 1"
        );
        Ok(self
            .query(&sql, &[&workflow, &since, &i64::from(limit)])?
            .iter()
            .map(|r| (text(r, 0), text(r, 1), integer(r, 2)))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schema_parameter_is_taken_out_of_the_url() {
        let (url, schema) = split_schema("postgres://u@h/db?schema=wf%20one&sslmode=disable");
        assert_eq!(url, "postgres://u@h/db?sslmode=disable");
        assert_eq!(schema, Ok(Some("wf one".into())));
        let (url, schema) = split_schema("postgresql://u@h/db?schema=x");
        assert_eq!((url.as_str(), schema), ("postgresql://u@h/db", Ok(Some("x".into()))));
        assert_eq!(split_schema("postgres://h/db").1, Ok(None));
        assert!(split_schema("postgres://h/db?schema=%zz").1.is_err());
        assert!(split_schema("postgres://h/db?schema=").1.is_err());
    }

    #[test]
    fn passwords_stay_out_of_messages() {
        assert_eq!(redacted("postgres://u:secret@h:5432/db"), "postgres://u:***@h:5432/db");
        assert_eq!(redacted("postgres://u@h/db?schema=x"), "postgres://u@h/db?schema=x");
        assert_eq!(redacted("postgres://h"), "postgres://h");
    }
}
