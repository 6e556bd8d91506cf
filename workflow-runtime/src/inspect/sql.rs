//! The list's SQL, one text for both stores: a filter's conditions, a page's bounds after its
//! cursor and the order (newest first), over the `instances` table both stores keep with the same
//! columns. Parameters are numbered (`?1` for SQLite, `$1` for PostgreSQL), and ids compare by
//! their bytes in both, as [`Key::newest_first`] does (SQLite's default; PostgreSQL's
//! `COLLATE "C"`, whatever the database's collation).

use super::{Key, ListQuery};
use crate::store::InstanceStatus;

/// A value bound to a parameter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Param {
    Text(String),
    Integer(i64),
}

/// What differs between the stores' SQL.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Dialect {
    /// Before a parameter's number.
    pub(crate) mark: char,
    /// After an id, so that it compares and sorts by its bytes.
    pub(crate) bytes: &'static str,
}

/// SQLite: `?1`; text compares by its bytes (`BINARY`) unless told otherwise.
#[cfg(feature = "sqlite")]
pub(crate) const SQLITE: Dialect = Dialect { mark: '?', bytes: "" };

/// PostgreSQL: `$1`; text compares by the database's collation unless told `C`.
#[cfg(feature = "postgres")]
pub(crate) const POSTGRES: Dialect = Dialect {
    mark: '$',
    bytes: " COLLATE \"C\"",
};

/// The instance columns a list reads from `table`, in [`InstanceRow`](super::InstanceRow)'s
/// order, then the number of rows (`rows`, the store's column for its newest row's number).
pub(crate) fn columns(table: &str, rows: &str) -> String {
    format!("SELECT workflow, instance, state, status, started, updated, {rows} FROM {table}")
}

/// A statement and its parameters.
#[derive(Clone, Debug)]
pub(crate) struct Select {
    pub(crate) sql: String,
    pub(crate) params: Vec<Param>,
    dialect: Dialect,
}

impl Select {
    fn new(dialect: Dialect, sql: &str) -> Select {
        Select {
            sql: sql.to_string(),
            params: Vec::new(),
            dialect,
        }
    }

    /// Appends `fragment`, each `#` in it a new parameter bound to the next of `values`.
    fn push(&mut self, fragment: &str, values: impl IntoIterator<Item = Param>) {
        let mut values = values.into_iter();
        for (i, piece) in fragment.split('#').enumerate() {
            if i > 0 {
                if let Some(value) = values.next() {
                    self.params.push(value);
                }
                self.sql.push(self.dialect.mark);
                self.sql.push_str(&self.params.len().to_string());
            }
            self.sql.push_str(piece);
        }
    }

    /// `instance`, compared by its bytes.
    fn id(&self) -> String {
        format!("instance{}", self.dialect.bytes)
    }
}

/// `count(*)` of the instances of one workflow a filter matches (without its cursor).
pub(crate) fn count(dialect: Dialect, table: &str, query: &ListQuery<'_>) -> Select {
    let mut select = Select::new(dialect, &format!("SELECT count(*) FROM {table}"));
    conditions(&mut select, query, None);
    select
}

/// The partitions of one workflow's part of a list page, each read by [`dated`] then (see
/// [`wants_undated`]) [`undated`]. With a state but no status, one per status, so that each
/// reads the index (workflow, state, status, started) in order; the inspector merges them.
pub(crate) fn partitions(query: &ListQuery<'_>) -> Vec<Option<Option<InstanceStatus>>> {
    if query.filter.state.is_some() && query.filter.status.is_none() {
        InstanceStatus::ALL
            .into_iter()
            .map(|s| Some(Some(s)))
            .chain([Some(None)])
            .collect()
    } else {
        vec![None]
    }
}

/// One partition's instances with a known start time after the cursor, newest first; `None`
/// when none can follow the cursor.
pub(crate) fn dated(
    dialect: Dialect,
    columns: &str,
    query: &ListQuery<'_>,
    status: Option<Option<InstanceStatus>>,
) -> Option<Select> {
    let mut select = Select::new(dialect, columns);
    conditions(&mut select, query, status);
    select.push(" AND started IS NOT NULL", []);
    let id = select.id();
    match query.after {
        None => {}
        // The page starts among the undated: none of these is after it.
        Some(Key { started: None, .. }) => return None,
        // After (at, workflow, id) in the order (started, workflow, id) descending.
        Some(Key {
            started: Some(at),
            workflow,
            id: after,
        }) => match query.workflow.cmp(workflow.as_str()) {
            std::cmp::Ordering::Greater => select.push(" AND started < #", [Param::Integer(*at)]),
            std::cmp::Ordering::Equal => select.push(
                &format!(" AND started <= # AND (started < # OR {id} < #)"),
                [Param::Integer(*at), Param::Integer(*at), Param::Text(after.clone())],
            ),
            std::cmp::Ordering::Less => select.push(" AND started <= #", [Param::Integer(*at)]),
        },
    }
    select.push(&format!(" ORDER BY started DESC, {id} DESC LIMIT #"), [limit(query)]);
    Some(select)
}

/// Whether to read the undated after `found` dated ones: they come after every dated one,
/// unless the filter asks for times.
pub(crate) fn wants_undated(query: &ListQuery<'_>, found: usize) -> bool {
    found < query.limit && query.filter.started_after.is_none() && query.filter.started_before.is_none()
}

/// One partition's instances whose start time is unknown, after the cursor; `None` when none
/// can follow it.
pub(crate) fn undated(
    dialect: Dialect,
    columns: &str,
    query: &ListQuery<'_>,
    status: Option<Option<InstanceStatus>>,
) -> Option<Select> {
    let mut select = Select::new(dialect, columns);
    conditions(&mut select, query, status);
    select.push(" AND started IS NULL", []);
    let id = select.id();
    if let Some(Key {
        started: None,
        workflow,
        id: after,
    }) = query.after
    {
        match query.workflow.cmp(workflow.as_str()) {
            std::cmp::Ordering::Greater => return None,
            std::cmp::Ordering::Equal => select.push(&format!(" AND {id} < #"), [Param::Text(after.clone())]),
            std::cmp::Ordering::Less => {}
        }
    }
    select.push(&format!(" ORDER BY {id} DESC LIMIT #"), [limit(query)]);
    Some(select)
}

fn limit(query: &ListQuery<'_>) -> Param {
    Param::Integer(i64::try_from(query.limit).unwrap_or(i64::MAX))
}

/// The `WHERE` clause of a filter (without a cursor).
fn conditions(select: &mut Select, query: &ListQuery<'_>, status: Option<Option<InstanceStatus>>) {
    let filter = query.filter;
    select.push(" WHERE workflow = #", [Param::Text(query.workflow.to_string())]);
    if let Some(state) = &filter.state {
        select.push(" AND state = #", [Param::Text(state.clone())]);
    }
    match status.or(filter.status.map(Some)) {
        Some(Some(status)) => select.push(" AND status = #", [Param::Integer(status.code())]),
        Some(None) => select.push(" AND status IS NULL", []),
        None => {}
    }
    let time = |t: u64| Param::Integer(i64::try_from(t).unwrap_or(i64::MAX));
    if let Some(after) = filter.started_after {
        select.push(" AND started >= #", [time(after)]);
    }
    if let Some(before) = filter.started_before {
        select.push(" AND started < #", [time(before)]);
    }
    if let Some(prefix) = filter.id_prefix.as_ref().filter(|p| !p.is_empty()) {
        // A range of the key, not a scan: every id with the prefix sorts between the prefix and
        // the prefix followed by the greatest code point.
        let id = select.id();
        select.push(
            &format!(" AND {id} >= # AND {id} < #"),
            [
                Param::Text(prefix.clone()),
                Param::Text(format!("{prefix}{}", char::MAX)),
            ],
        );
    }
}

#[cfg(all(test, feature = "sqlite"))]
mod tests {
    use super::*;
    use crate::inspect::Filter;

    #[test]
    fn parameters_are_numbered_in_order() {
        let filter = Filter {
            state: Some("A".into()),
            id_prefix: Some("o-".into()),
            ..Filter::default()
        };
        let after = Key {
            started: Some(5),
            workflow: "W".into(),
            id: "o-9".into(),
        };
        let query = ListQuery {
            workflow: "W",
            filter: &filter,
            after: Some(&after),
            limit: 3,
        };
        let select = dated(SQLITE, "SELECT 1 FROM instances", &query, None).unwrap();
        assert_eq!(
            select.sql,
            "SELECT 1 FROM instances WHERE workflow = ?1 AND state = ?2 AND instance >= ?3 AND instance < ?4 \
             AND started IS NOT NULL AND started <= ?5 AND (started < ?6 OR instance < ?7) \
             ORDER BY started DESC, instance DESC LIMIT ?8"
        );
        assert_eq!(select.params.len(), 8);
        assert_eq!(select.params[7], Param::Integer(3));
    }
}
