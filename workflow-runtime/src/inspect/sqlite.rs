//! The inspector's reads of a SQLite store file: one read-only connection (a WAL reader, which
//! neither takes the store's owner lock nor blocks its writer), and the queries, each served by
//! one of schema 2's indexes (see [`crate::store::SqliteStore`]).

use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rusqlite::types::ValueRef;
use rusqlite::{params_from_iter, Connection, ErrorCode, OpenFlags, OptionalExtension, ToSql};

use super::sql::{self, Dialect, Param, Select, SQLITE};
use super::{InspectError, InstanceRow, Key, Move, Read, StateCounts};
use crate::store::sqlite::{walk_back, SCHEMA_VERSION};
use crate::store::{Definition, InstanceStatus, Row};

/// How long a read waits for a lock SQLite holds briefly (a checkpoint's, a WAL recovery's).
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Every workflow's name: a loose index scan of `instances`' key (one lookup per workflow, not
/// one row per instance), with those of the definitions.
const WORKFLOWS: &str = "\
    WITH RECURSIVE w(name) AS (
        SELECT (SELECT min(workflow) FROM instances)
        UNION ALL
        SELECT (SELECT min(workflow) FROM instances WHERE workflow > w.name) FROM w WHERE w.name IS NOT NULL
    )
    SELECT name FROM w WHERE name IS NOT NULL
    UNION SELECT workflow FROM definitions
    ORDER BY 1";

const DEFINITIONS: &str = "SELECT workflow, fingerprint, graph, context, first_seen FROM definitions";

const STATUS_COUNTS: &str = "SELECT workflow, status, count(*) FROM instances GROUP BY workflow, status";

const STATE_COUNTS: &str = "SELECT state, status, count(*) FROM instances WHERE workflow = ?1 GROUP BY state, status";

const STARTED_SINCE: &str = "SELECT count(*) FROM instances WHERE workflow = ?1 AND started >= ?2";

/// The rows of a window that ended their instance, from the window's first row on (`?3`, a
/// range of `journal`'s rowid: the table has no other index, see [`Sqlite::window_start`]).
const ENDED_SINCE: &str = "SELECT status, count(*) FROM journal \
                           WHERE id >= ?3 AND workflow = ?1 AND at >= ?2 AND open = 0 GROUP BY status";

/// The window's newest `?4` rows, each with the row before it.
const MOVES_SINCE: &str = "\
    SELECT p.state, j.state, j.at - p.at FROM
      (SELECT prev, state, at FROM journal WHERE id >= ?3 AND workflow = ?1 AND at >= ?2 ORDER BY id DESC LIMIT ?4) AS j
    LEFT JOIN journal AS p ON p.id = j.prev";

/// How far out of order rows' times may be in commit order: an engine takes a row's time just
/// before it queues the row for the store's one writer, so rows commit in time order within a
/// batch's worth of milliseconds.
const WINDOW_SLACK_MS: i64 = 60_000;

/// A store file opened read-only.
#[derive(Clone)]
pub(super) struct Sqlite {
    /// Behind a mutex because a connection is not `Sync`; each read holds it for its queries.
    conn: Arc<Mutex<Connection>>,
    name: Arc<str>,
    /// [`sql::columns`] of this store.
    columns: Arc<str>,
}

impl Sqlite {
    pub(super) fn open(path: &Path) -> Result<Sqlite, InspectError> {
        let name = path.display().to_string();
        let not_a_store = |reason: &str| InspectError::NotAStore {
            location: name.clone(),
            reason: reason.to_string(),
        };
        match std::fs::metadata(path) {
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                return Err(InspectError::NoSuchFile { path: name });
            }
            Err(error) => return Err(not_a_store(&error.to_string())),
            Ok(meta) if meta.is_dir() => return Err(not_a_store("it is a directory")),
            Ok(_) => {}
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags).map_err(|e| store_error(&name, e))?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(|e| store_error(&name, e))?;
        // The first read is where SQLite finds out the file is not a database.
        let has_meta = conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta')",
            [],
            |r| r.get::<_, bool>(0),
        );
        match has_meta {
            Ok(true) => {}
            Ok(false) => return Err(not_a_store("no table `meta`: not written by a workflow store")),
            Err(e) if e.sqlite_error_code() == Some(ErrorCode::NotADatabase) => {
                return Err(not_a_store("not a SQLite database"))
            }
            Err(e) => return Err(store_error(&name, e)),
        }
        let version = conn
            .query_row("SELECT value FROM meta WHERE key = 'schema_version'", [], |r| {
                Ok(integer(r.get_ref(0)?))
            })
            .optional()
            .map_err(|e| store_error(&name, e))?;
        match version {
            Some(Some(SCHEMA_VERSION)) => {}
            Some(Some(found)) if found > SCHEMA_VERSION => {
                return Err(InspectError::SchemaTooNew {
                    found,
                    supported: SCHEMA_VERSION,
                })
            }
            Some(Some(found)) if found >= 1 => {
                return Err(InspectError::SchemaTooOld {
                    found,
                    supported: SCHEMA_VERSION,
                })
            }
            _ => return Err(not_a_store("no valid schema version in table `meta`")),
        }
        Ok(Sqlite {
            conn: Arc::new(Mutex::new(conn)),
            name: name.into(),
            columns: sql::columns("instances", "seq").into(),
        })
    }

    pub(super) fn name(&self) -> &str {
        &self.name
    }

    /// Runs `read` on the connection.
    fn with<T>(&self, read: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Result<T, InspectError> {
        // Reads change nothing: a panic while the lock was held leaves nothing half-done.
        let conn = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
        read(&conn).map_err(|e| store_error(&self.name, e))
    }

    /// `sql` with `values`, each row read by `row`.
    fn rows<T>(
        &self,
        sql: &str,
        values: &[&dyn ToSql],
        mut row: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<Vec<T>, InspectError> {
        self.with(|conn| {
            let mut statement = conn.prepare_cached(sql)?;
            let mut rows = statement.query(values)?;
            let mut out = Vec::new();
            while let Some(r) = rows.next()? {
                out.push(row(r)?);
            }
            Ok(out)
        })
    }

    /// The id of the first journal row of a window starting at `since`: `journal` has no index
    /// but its rowid (each index on it cost the writer a B-tree insert per row), and rows commit
    /// in nearly the order of their times, so the window's start is bisected on `at` over the
    /// rowid, less [`WINDOW_SLACK_MS`]; rows without a time (written before stores kept it)
    /// count as older than any window. A few dozen lookups by rowid for millions of rows.
    fn window_start(&self, conn: &Connection, since: i64) -> rusqlite::Result<i64> {
        let target = since.saturating_sub(WINDOW_SLACK_MS);
        // Two statements: SQLite reads a lone min() or max() of the rowid from the B-tree's edge,
        // but both in one statement from a scan of the whole table.
        let first: Option<i64> = conn.query_row("SELECT min(id) FROM journal", [], |r| r.get(0))?;
        let last: Option<i64> = conn.query_row("SELECT max(id) FROM journal", [], |r| r.get(0))?;
        let (Some(mut low), Some(last)) = (first, last) else {
            return Ok(0);
        };
        let mut high = last.saturating_add(1);
        let mut at = conn.prepare_cached("SELECT id, at FROM journal WHERE id >= ?1 ORDER BY id LIMIT 1")?;
        // Invariant: rows before `low` are older than the target; rows from `high` on are not.
        while low < high {
            let middle = low + (high - low) / 2;
            let found = at
                .query_row([middle], |r| Ok((r.get::<_, i64>(0)?, integer(r.get_ref(1)?))))
                .optional()?;
            match found {
                Some((_, Some(time))) if time >= target => high = middle,
                Some((id, _)) => low = id + 1,
                None => high = middle,
            }
        }
        Ok(low)
    }

    fn count_of(&self, sql: &str, values: &[&dyn ToSql]) -> Result<u64, InspectError> {
        Ok(self
            .rows(sql, values, |r| Ok(count(r.get_ref(0)?)))?
            .into_iter()
            .next()
            .unwrap_or(0))
    }
}

/// One instance of a list, and its sort key.
fn instance_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(Key, InstanceRow)> {
    let text = |value: ValueRef<'_>| match value {
        ValueRef::Text(t) | ValueRef::Blob(t) => Some(String::from_utf8_lossy(t).into_owned()),
        _ => None,
    };
    let workflow = text(r.get_ref(0)?).unwrap_or_default();
    let id = text(r.get_ref(1)?).unwrap_or_default();
    let started = integer(r.get_ref(4)?);
    let row = InstanceRow {
        workflow: workflow.clone(),
        id: id.clone(),
        state: text(r.get_ref(2)?),
        status: integer(r.get_ref(3)?).and_then(InstanceStatus::from_code),
        started: started.and_then(|s| u64::try_from(s).ok()),
        updated: integer(r.get_ref(5)?).and_then(|s| u64::try_from(s).ok()),
        rows: count(r.get_ref(6)?),
    };
    Ok((Key { started, workflow, id }, row))
}

impl Read for Sqlite {
    fn workflows(&self) -> Result<Vec<String>, InspectError> {
        self.rows(WORKFLOWS, &[], |r| {
            Ok(match r.get_ref(0)? {
                ValueRef::Text(t) => String::from_utf8_lossy(t).into_owned(),
                _ => String::new(),
            })
        })
    }

    fn definitions(&self) -> Result<Vec<Definition>, InspectError> {
        let rows = self.rows(DEFINITIONS, &[], |r| {
            let text = |i: usize| -> rusqlite::Result<Option<String>> {
                Ok(match r.get_ref(i)? {
                    ValueRef::Text(t) => std::str::from_utf8(t).ok().map(str::to_string),
                    _ => None,
                })
            };
            Ok((text(0)?, text(1)?, text(2)?, text(3)?, integer(r.get_ref(4)?)))
        })?;
        // A definition whose values have the wrong types is left out, not an error: the rest of
        // the store still reads.
        Ok(rows
            .into_iter()
            .filter_map(|(workflow, fingerprint, graph, context, first_seen)| {
                Some(Definition {
                    workflow: workflow?,
                    fingerprint: fingerprint?,
                    graph: graph?,
                    context: context?,
                    first_seen: first_seen.and_then(|t| u64::try_from(t).ok())?,
                })
            })
            .collect())
    }

    fn status_counts(
        &self,
        workflow: Option<&str>,
    ) -> Result<Vec<(String, Option<InstanceStatus>, u64)>, InspectError> {
        let all = self.rows(STATUS_COUNTS, &[], |r| {
            let workflow = match r.get_ref(0)? {
                ValueRef::Text(t) => String::from_utf8_lossy(t).into_owned(),
                _ => String::new(),
            };
            Ok((
                workflow,
                integer(r.get_ref(1)?).and_then(InstanceStatus::from_code),
                count(r.get_ref(2)?),
            ))
        })?;
        Ok(all
            .into_iter()
            .filter(|(w, _, _)| workflow.is_none_or(|x| x == w))
            .collect())
    }

    fn state_counts(&self, workflow: &str) -> Result<StateCounts, InspectError> {
        self.rows(STATE_COUNTS, &[&workflow], |r| {
            let state = match r.get_ref(0)? {
                ValueRef::Text(t) => Some(String::from_utf8_lossy(t).into_owned()),
                _ => None,
            };
            Ok((
                state,
                integer(r.get_ref(1)?).and_then(InstanceStatus::from_code),
                count(r.get_ref(2)?),
            ))
        })
    }

    fn dialect(&self) -> Dialect {
        SQLITE
    }

    fn table(&self) -> &str {
        "instances"
    }

    fn columns(&self) -> &str {
        &self.columns
    }

    fn instances(&self, select: &Select) -> Result<Vec<(Key, InstanceRow)>, InspectError> {
        self.with(|conn| {
            let mut statement = conn.prepare_cached(&select.sql)?;
            let rows = statement.query_map(params_from_iter(select.params.iter().map(param)), instance_row)?;
            rows.collect()
        })
    }

    fn number(&self, select: &Select) -> Result<u64, InspectError> {
        let params: Vec<rusqlite::types::Value> = select.params.iter().map(param).collect();
        let refs: Vec<&dyn ToSql> = params.iter().map(|v| v as &dyn ToSql).collect();
        self.count_of(&select.sql, &refs)
    }

    fn instance(&self, workflow: &str, id: &str) -> Result<Option<InstanceRow>, InspectError> {
        let sql = format!("{} WHERE workflow = ?1 AND instance = ?2", self.columns);
        Ok(self
            .rows(&sql, &[&workflow, &id], instance_row)?
            .into_iter()
            .next()
            .map(|(_, row)| row))
    }

    fn journal(&self, workflow: &str, id: &str) -> Result<Vec<Row>, InspectError> {
        self.with(|conn| walk_back(conn, workflow, id))?
            .map_err(|e| InspectError::Store { reason: e.to_string() })
    }

    fn started_since(&self, workflow: &str, since: i64) -> Result<u64, InspectError> {
        self.count_of(STARTED_SINCE, &[&workflow, &since])
    }

    fn ended_since(&self, workflow: &str, since: i64) -> Result<Vec<(Option<InstanceStatus>, u64)>, InspectError> {
        let start = self.with(|conn| self.window_start(conn, since))?;
        self.rows(ENDED_SINCE, &[&workflow, &since, &start], |r| {
            Ok((
                integer(r.get_ref(0)?).and_then(InstanceStatus::from_code),
                count(r.get_ref(1)?),
            ))
        })
    }

    fn moves_since(&self, workflow: &str, since: i64, limit: u32) -> Result<Vec<Move>, InspectError> {
        let start = self.with(|conn| self.window_start(conn, since))?;
        self.rows(MOVES_SINCE, &[&workflow, &since, &start, &limit], |r| {
            let text = |v: ValueRef<'_>| match v {
                ValueRef::Text(t) => Some(String::from_utf8_lossy(t).into_owned()),
                _ => None,
            };
            Ok((text(r.get_ref(0)?), text(r.get_ref(1)?), integer(r.get_ref(2)?)))
        })
    }
}

fn param(value: &Param) -> rusqlite::types::Value {
    match value {
        Param::Text(text) => rusqlite::types::Value::Text(text.clone()),
        Param::Integer(number) => rusqlite::types::Value::Integer(*number),
    }
}

fn integer(value: ValueRef<'_>) -> Option<i64> {
    match value {
        ValueRef::Integer(v) => Some(v),
        _ => None,
    }
}

fn count(value: ValueRef<'_>) -> u64 {
    integer(value).and_then(|v| u64::try_from(v).ok()).unwrap_or(0)
}

fn store_error(name: &str, error: rusqlite::Error) -> InspectError {
    match error.sqlite_error_code() {
        Some(ErrorCode::NotADatabase) => InspectError::NotAStore {
            location: name.to_string(),
            reason: "not a SQLite database".into(),
        },
        _ => InspectError::Store {
            reason: format!("{name}: {error}"),
        },
    }
}
