//! Reading a store from outside the engine: the workflows it holds, their instances, an
//! instance's journal as a timeline, statistics and diagrams with live counts — without the
//! workflows' code, and without disturbing the engine that writes the store.
//!
//! An [`Inspector`] opens a SQLite store file read-only (a WAL reader: it takes no owner lock
//! and never blocks the engine's commits), or with the `postgres` feature a PostgreSQL store's
//! schema (a read-only connection of plain reads; see [`Inspector::open`]); both answer alike.
//! Everything it answers is `serde::Serialize`, for the `workflow` command's `--json` and for
//! web pages.
//!
//! What it reads: the definitions engines wrote ([`Definition`]s:
//! each workflow's graph, so state names and diagrams need no code), each instance's state,
//! status and times (kept in plaintext beside its rows, see
//! [`Summary`](crate::store::Summary)), and the rows' documents (see
//! [`journal`](mod@crate::journal)) for contexts, events and timers. Rows sealed by a codec are
//! read with [`Inspector::with_codec`]; without it their timeline entries say `sealed` and
//! carry what the plaintext summary holds.
//!
//! ```
//! use std::sync::Arc;
//! use workflow::prelude::*;
//! use workflow::{Engine, SqliteStore};
//! use workflow::inspect::{Filter, Inspector};
//!
//! workflow! {
//!     workflow Ticket {
//!         context u32;
//!         initial Open;
//!         events { Close }
//!         state Open { on Close => Closed; }
//!         final Closed;
//!     }
//! }
//! struct Desk;
//! impl TicketHandlers for Desk {}
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let path = dir.path().join("tickets.db");
//! let engine = Engine::<Ticket, Desk>::builder(Desk).store(Arc::new(SqliteStore::open(&path)?)).build();
//! engine.start("T-1", 7).await?;
//! engine.start("T-2", 8).await?;
//! engine.send("T-1", TicketEvent::Close).await?;
//!
//! // Beside the running engine:
//! let inspector = Inspector::open(path.to_str().unwrap_or_default()).await?;
//! let page = inspector.list(&Filter::default()).await?;
//! assert_eq!(page.total, 2);
//! assert_eq!(page.instances[0].id, "T-2"); // newest first
//! let t1 = inspector.show("T-1", None).await?;
//! assert_eq!(t1.row.state.as_deref(), Some("Closed"));
//! assert_eq!(t1.timeline.len(), 2); // started, then Close
//! assert!(inspector.diagram("Ticket", workflow::inspect::DiagramFormat::Mermaid).await?.text.contains("Open: 1 instance"));
//! # Ok(()) }
//! ```

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use serde::Serialize;
use serde_json::Value;

use crate::codec::Codec;
use crate::graph::{EventKind, Graph};
use crate::journal::{self, Seal};
use crate::store::{Definition, InstanceStatus, Row, StoreError};

#[cfg(feature = "postgres")]
mod postgres;
mod sql;
#[cfg(feature = "sqlite")]
mod sqlite;
mod time;

pub use time::{format_micros, format_time, parse_time};

/// How many instances a [`Filter`] lists when it says nothing else.
pub const DEFAULT_PAGE: usize = 50;

/// The most instances one page holds.
pub const MAX_PAGE: usize = 1_000;

/// A read-only view of a store. See the [module documentation](self).
pub struct Inspector {
    source: Source,
    codec: Option<Arc<dyn Codec>>,
}

/// Where an inspector reads.
enum Source {
    #[cfg(feature = "sqlite")]
    Sqlite(sqlite::Sqlite),
    #[cfg(feature = "postgres")]
    Postgres(postgres::Postgres),
}

impl fmt::Debug for Inspector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Inspector")
            .field("location", &self.location())
            .field("codec", &self.codec.is_some())
            .finish()
    }
}

/// What can go wrong inspecting a store. Each is one line for a user ([`Display`](fmt::Display)).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "error", rename_all = "snake_case")]
#[non_exhaustive]
pub enum InspectError {
    /// No file at the path.
    NoSuchFile {
        /// The path.
        path: String,
    },
    /// The file is not a SQLite database, or a database (or PostgreSQL schema) without a
    /// workflow store in it.
    NotAStore {
        /// The file.
        location: String,
        /// What was found instead.
        reason: String,
    },
    /// The store was written by a newer version of this crate.
    SchemaTooNew {
        /// The store's schema version.
        found: i64,
        /// The newest this build reads.
        supported: i64,
    },
    /// The store has an older schema, which an engine upgrades when it opens the store for
    /// writing; the inspector never writes.
    SchemaTooOld {
        /// The store's schema version.
        found: i64,
        /// The version this build reads.
        supported: i64,
    },
    /// The database server at the URL cannot be reached, or refused the connection.
    Unreachable {
        /// The URL, without its password.
        location: String,
        /// Why.
        reason: String,
    },
    /// The location is neither a file path nor a URL this build reads.
    BadLocation {
        /// The location.
        location: String,
        /// Why.
        reason: String,
    },
    /// No workflow of that name in the store.
    UnknownWorkflow {
        /// The name.
        workflow: String,
    },
    /// No instance with that id (in that workflow, if one was named).
    UnknownInstance {
        /// The id.
        id: String,
    },
    /// Instances of several workflows have that id: name the workflow.
    Ambiguous {
        /// The id.
        id: String,
        /// The workflows that have an instance with it.
        workflows: Vec<String>,
    },
    /// A page cursor this build did not write.
    BadCursor {
        /// The cursor.
        cursor: String,
    },
    /// Reading the store failed.
    Store {
        /// What failed.
        reason: String,
    },
}

impl fmt::Display for InspectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InspectError::NoSuchFile { path } => write!(f, "{path}: no such file"),
            InspectError::NotAStore { location, reason } => write!(f, "{location}: not a workflow store ({reason})"),
            InspectError::SchemaTooNew { found, supported } => write!(
                f,
                "the store's schema version is {found}, newer than this build reads ({supported}); upgrade the tool"
            ),
            InspectError::SchemaTooOld { found, supported } => write!(
                f,
                "the store's schema version is {found}, older than this build reads ({supported}); an engine of \
                 this version upgrades it when it opens the store"
            ),
            InspectError::Unreachable { location, reason } => write!(f, "{location}: cannot connect ({reason})"),
            InspectError::BadLocation { location, reason } => write!(f, "{location}: {reason}"),
            InspectError::UnknownWorkflow { workflow } => write!(f, "no workflow `{workflow}` in the store"),
            InspectError::UnknownInstance { id } => write!(f, "no instance `{id}` in the store"),
            InspectError::Ambiguous { id, workflows } => write!(
                f,
                "instances of several workflows have the id `{id}` ({}): name the workflow",
                workflows.join(", ")
            ),
            InspectError::BadCursor { cursor } => write!(f, "`{cursor}` is not a page cursor of this tool"),
            InspectError::Store { reason } => write!(f, "cannot read the store: {reason}"),
        }
    }
}

impl std::error::Error for InspectError {}

/// A workflow the store holds: its definitions and how many instances stand where.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct WorkflowInfo {
    /// Its name.
    pub name: String,
    /// The definitions engines wrote, oldest first (one per fingerprint); empty for a workflow
    /// whose engines predate definitions.
    pub definitions: Vec<DefinitionInfo>,
    /// Its instances.
    pub instances: u64,
    /// Those running, finished, failed and cancelled; those of unknown status (rows from
    /// before stores kept it) are in none.
    pub running: u64,
    /// Finished.
    pub finished: u64,
    /// Failed.
    pub failed: u64,
    /// Cancelled.
    pub cancelled: u64,
}

/// One definition of a workflow, as an engine wrote it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DefinitionInfo {
    /// The fingerprint its rows carry.
    pub fingerprint: String,
    /// When an engine first wrote it, in milliseconds since the Unix epoch.
    pub first_seen: u64,
    /// Its context type's name.
    pub context: String,
    /// Its states' names, in document order.
    pub states: Vec<String>,
}

/// Which instances [`Inspector::list`] lists. Every field narrows the list; the default lists
/// every instance, [`DEFAULT_PAGE`] to a page.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filter {
    /// Only this workflow's.
    pub workflow: Option<String>,
    /// Only those in this state (as [`InstanceRow::state`] shows it), or for a statechart,
    /// whose configuration is exactly this.
    pub state: Option<String>,
    /// Only those of this status.
    pub status: Option<InstanceStatus>,
    /// Only those started at or after this time (milliseconds since the Unix epoch).
    pub started_after: Option<u64>,
    /// Only those started before this time.
    pub started_before: Option<u64>,
    /// Only those whose id starts with this.
    pub id_prefix: Option<String>,
    /// How many to a page (0: [`DEFAULT_PAGE`]; at most [`MAX_PAGE`]).
    pub limit: usize,
    /// Where the page starts: a previous page's [`Page::next`].
    pub cursor: Option<String>,
}

/// One page of [`Inspector::list`], newest first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Page {
    /// The instances on this page.
    pub instances: Vec<InstanceRow>,
    /// How many instances the filter matches in all pages.
    pub total: u64,
    /// The cursor of the next page; `None` on the last.
    pub next: Option<String>,
}

/// An instance as the list shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct InstanceRow {
    /// Its workflow.
    pub workflow: String,
    /// Its id.
    pub id: String,
    /// Its state (`None`: not known, for an instance of an upgraded store).
    pub state: Option<String>,
    /// Its status (`None`: not known).
    pub status: Option<InstanceStatus>,
    /// When it started, in milliseconds since the Unix epoch (`None`: not known).
    pub started: Option<u64>,
    /// When its newest row was written.
    pub updated: Option<u64>,
    /// How many rows its journal holds.
    pub rows: u64,
}

/// One instance with its whole journal: what [`Inspector::show`] gives.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct InstanceDetail {
    /// What the list shows of it.
    #[serde(flatten)]
    pub row: InstanceRow,
    /// Why it failed, if it did.
    pub reason: Option<String>,
    /// Its context after its newest row, as JSON; `None` if that row is sealed or unreadable.
    pub context: Option<Value>,
    /// The fingerprint of the definition its newest row was written under.
    pub fingerprint: Option<String>,
    /// Its timers pending after its newest row.
    pub timers: Vec<TimerInfo>,
    /// The states whose activities are in flight after its newest row.
    pub activities: Vec<String>,
    /// Its journal, oldest first.
    pub timeline: Vec<TimelineEntry>,
}

/// One row of an instance's journal, readable.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TimelineEntry {
    /// The row's number, from 1.
    pub seq: u64,
    /// When it was written, in milliseconds since the Unix epoch.
    pub at: Option<u64>,
    /// Milliseconds since the row before.
    pub after_ms: Option<u64>,
    /// What the row records: `started`, `transition`, `rejected`, `compensated`, `finished`,
    /// `failed`, `cancelled`; `sealed` for a row sealed by a codec the inspector does not have,
    /// `unreadable` for one whose checksum or document is wrong.
    pub step: String,
    /// The event, by name.
    pub event: Option<String>,
    /// The event's payload (an activity's output or error), as JSON.
    pub payload: Option<Value>,
    /// The state before a transition.
    pub from: Option<String>,
    /// The state after the row.
    pub to: Option<String>,
    /// The status after the row.
    pub status: Option<InstanceStatus>,
    /// The activity whose outcome this row records, if its event is one's.
    pub activity: Option<ActivityOutcome>,
    /// The compensation a `compensated` row ran.
    pub compensation: Option<String>,
    /// An error: a compensation's that still failed, a failure's reason, or why the row cannot
    /// be read.
    pub error: Option<String>,
    /// The attempts of the activity whose outcome the row records (or of its compensation), with
    /// their start times, durations and errors, when the call took more than one attempt or
    /// failed; empty when its first attempt succeeded (and in rows written before attempts were
    /// journaled). See [`journal::Attempt`].
    pub attempts: Vec<journal::Attempt>,
    /// The timers pending after the row.
    pub timers: Vec<TimerInfo>,
}

/// An activity's outcome in a timeline.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ActivityOutcome {
    /// The activity.
    pub name: String,
    /// `done` or `failed` (after its retries).
    pub outcome: String,
    /// Milliseconds from the row that entered its state to this one: its attempts, their
    /// back-off and any queueing together (each attempt's own duration is in the entry's
    /// [`attempts`](TimelineEntry::attempts), when there was more than one).
    pub duration_ms: Option<u64>,
}

/// A pending timer.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TimerInfo {
    /// The state whose `after` it is.
    pub state: Option<String>,
    /// The `send` id it was set with.
    pub send: Option<String>,
    /// The event it will send, by name.
    pub event: Option<String>,
    /// When it fires, in milliseconds since the Unix epoch.
    pub deadline: u64,
}

/// What [`Inspector::stats`] counts for one workflow.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Stats {
    /// The workflow.
    pub workflow: String,
    /// The window's start, in milliseconds since the Unix epoch.
    pub since: u64,
    /// Instances by state and status, most first.
    pub states: Vec<StateCount>,
    /// Instances started in the window.
    pub started: u64,
    /// Instances that finished in the window.
    pub finished: u64,
    /// Instances that failed in the window.
    pub failed: u64,
    /// Instances cancelled in the window.
    pub cancelled: u64,
    /// Per activity, the durations of those that ended in the window (of its newest
    /// [`DURATION_ROWS`] rows, if [`sampled`](Self::sampled)).
    pub activities: Vec<ActivityStats>,
    /// Whether the window holds [`DURATION_ROWS`] rows or more, so that the activities'
    /// durations are those of its newest [`DURATION_ROWS`] rows only. The counts are exact
    /// whatever the window.
    pub sampled: bool,
}

/// How many of a window's newest journal rows [`Inspector::stats`] reads for the activities'
/// durations: enough for a steady p99, few enough that a busy day's window answers in well
/// under a second (each row is paired with the row before it, one index lookup each).
pub const DURATION_ROWS: u32 = 10_000;

/// How many instances stand in one state with one status.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StateCount {
    /// The state (`None`: not known).
    pub state: Option<String>,
    /// The status (`None`: not known).
    pub status: Option<InstanceStatus>,
    /// How many.
    pub count: u64,
}

/// Durations of one activity: from the row that entered its state to the row that left it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ActivityStats {
    /// The state that invokes it.
    pub state: String,
    /// The activity.
    pub activity: String,
    /// How many ended in the window.
    pub count: u64,
    /// The median duration, in milliseconds.
    pub p50_ms: u64,
    /// The 99th percentile.
    pub p99_ms: u64,
}

/// Mermaid, Graphviz DOT or SVG.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DiagramFormat {
    /// A Mermaid `stateDiagram-v2`.
    Mermaid,
    /// A Graphviz `digraph`.
    Dot,
    /// An SVG drawing ([`Graph::to_svg_counted`]), each state's box coloured by its count.
    Svg,
}

/// A workflow's diagram with the live count of instances in each state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Diagram {
    /// The workflow.
    pub workflow: String,
    /// The definition drawn: the newest one.
    pub fingerprint: String,
    /// Its format.
    pub format: DiagramFormat,
    /// The diagram's text.
    pub text: String,
    /// Per state of the graph, in document order, how many instances stand in it (a compound
    /// state counts those in its descendants) and how many of them are running.
    pub counts: Vec<DiagramCount>,
}

/// One state's count in a [`Diagram`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DiagramCount {
    /// The state.
    pub state: String,
    /// Instances in it.
    pub instances: u64,
    /// Of those, running.
    pub running: u64,
}

/// Where a page starts: the sort key of the last instance of the page before, newest first by
/// start time (unknown times last), then by workflow and id, descending.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Key {
    /// `None` sorts last.
    started: Option<i64>,
    workflow: String,
    id: String,
}

impl Key {
    /// Written as `started.hex(workflow).hex(id)`, `-` for an unknown time: opaque, and safe in
    /// a URL.
    fn cursor(&self) -> String {
        let started = self.started.map_or_else(|| "-".to_string(), |s| s.to_string());
        format!("{started}.{}.{}", hex(&self.workflow), hex(&self.id))
    }

    fn parse(cursor: &str) -> Result<Key, InspectError> {
        let bad = || InspectError::BadCursor {
            cursor: cursor.to_string(),
        };
        let mut parts = cursor.split('.');
        let (Some(started), Some(workflow), Some(id), None) = (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad());
        };
        let started = match started {
            "-" => None,
            number => Some(number.parse().map_err(|_| bad())?),
        };
        Ok(Key {
            started,
            workflow: unhex(workflow).ok_or_else(bad)?,
            id: unhex(id).ok_or_else(bad)?,
        })
    }

    /// The order of a list: newest first, unknown times last.
    fn newest_first(a: &Key, b: &Key) -> std::cmp::Ordering {
        let started = match (a.started, b.started) {
            (Some(x), Some(y)) => y.cmp(&x),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => std::cmp::Ordering::Equal,
        };
        started
            .then_with(|| b.workflow.cmp(&a.workflow))
            .then_with(|| b.id.cmp(&a.id))
    }
}

fn hex(text: &str) -> String {
    text.bytes().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<String> {
    if text.len() % 2 != 0 {
        return None;
    }
    let bytes = (0..text.len())
        .step_by(2)
        .map(|i| text.get(i..i + 2).and_then(|pair| u8::from_str_radix(pair, 16).ok()))
        .collect::<Option<Vec<u8>>>()?;
    String::from_utf8(bytes).ok()
}

/// What one workflow's part of a list reads: the filter and where the page starts, for that
/// workflow.
#[derive(Clone, Debug)]
pub(crate) struct ListQuery<'a> {
    workflow: &'a str,
    filter: &'a Filter,
    /// The page starts after this key.
    after: Option<&'a Key>,
    /// How many to read at most.
    limit: usize,
}

impl Inspector {
    /// Opens the store at `location`, read-only (no owner lock, no write, never in the way of
    /// the engines that write it):
    ///
    /// - a SQLite store's file path: a WAL reader of the file;
    /// - with the `postgres` feature, a PostgreSQL URL (`postgres://` or `postgresql://`, any URL
    ///   tokio-postgres reads) with the store's schema as its `schema` parameter, default
    ///   `workflow` as `PostgresOptions::schema`:
    ///   `postgres://user@host/db?schema=orders`. One connection of its own, on which the
    ///   server refuses writes (`default_transaction_read_only`); plain reads, each query at
    ///   most 30 s (`statement_timeout`).
    ///
    /// # Errors
    ///
    /// [`InspectError::NoSuchFile`], [`InspectError::NotAStore`] (not a database, or one without
    /// a workflow store: for PostgreSQL, no store in the schema), [`InspectError::SchemaTooNew`],
    /// [`InspectError::SchemaTooOld`], [`InspectError::Unreachable`] (the server cannot be
    /// reached or refused the connection), and [`InspectError::BadLocation`] for a URL this
    /// build does not read.
    pub async fn open(location: &str) -> Result<Inspector, InspectError> {
        if let Some((scheme, _)) = location.split_once("://") {
            if scheme == "postgres" || scheme == "postgresql" {
                #[cfg(feature = "postgres")]
                {
                    let url = location.to_string();
                    let source = blocking(move || postgres::Postgres::open(&url)).await?;
                    return Ok(Inspector {
                        source: Source::Postgres(source),
                        codec: None,
                    });
                }
                #[cfg(not(feature = "postgres"))]
                return Err(InspectError::BadLocation {
                    location: location.to_string(),
                    reason: "this build reads no PostgreSQL store (the `postgres` feature is off)".into(),
                });
            }
            return Err(InspectError::BadLocation {
                location: location.to_string(),
                reason: format!(
                    "`{scheme}://` is not a store this build reads (give a SQLite file's path or a postgres:// URL)"
                ),
            });
        }
        #[cfg(feature = "sqlite")]
        {
            let path = std::path::PathBuf::from(location);
            let source = blocking(move || sqlite::Sqlite::open(&path)).await?;
            Ok(Inspector {
                source: Source::Sqlite(source),
                codec: None,
            })
        }
        #[cfg(not(feature = "sqlite"))]
        Err(InspectError::BadLocation {
            location: location.to_string(),
            reason: "this build reads no SQLite store (the `sqlite` feature is off)".into(),
        })
    }

    /// Reads rows sealed by `codec` (the one the engines were built with, from the same keys):
    /// without it, their contexts and events are reported as sealed.
    pub fn with_codec(mut self, codec: Arc<dyn Codec>) -> Inspector {
        self.codec = Some(codec);
        self
    }

    /// What was opened, for messages.
    pub fn location(&self) -> &str {
        match &self.source {
            #[cfg(feature = "sqlite")]
            Source::Sqlite(source) => source.name(),
            #[cfg(feature = "postgres")]
            Source::Postgres(source) => source.name(),
        }
    }

    /// Every workflow in the store, by name, with its definitions and counts.
    ///
    /// # Errors
    ///
    /// [`InspectError::Store`] if the store cannot be read.
    pub async fn workflows(&self) -> Result<Vec<WorkflowInfo>, InspectError> {
        let (names, definitions, counts) = self
            .read(|s| Ok((s.workflows()?, s.definitions()?, s.status_counts(None)?)))
            .await?;
        let mut by_name: BTreeMap<String, WorkflowInfo> = BTreeMap::new();
        for name in names {
            by_name.insert(
                name.clone(),
                WorkflowInfo {
                    name,
                    definitions: Vec::new(),
                    instances: 0,
                    running: 0,
                    finished: 0,
                    failed: 0,
                    cancelled: 0,
                },
            );
        }
        for definition in definitions {
            let Some(info) = by_name.get_mut(&definition.workflow) else {
                continue;
            };
            let states = graph_of(&definition.graph)
                .map(|g| g.states.iter().map(|s| s.name.to_string()).collect())
                .unwrap_or_default();
            info.definitions.push(DefinitionInfo {
                fingerprint: definition.fingerprint,
                first_seen: definition.first_seen,
                context: definition.context,
                states,
            });
        }
        for (workflow, status, count) in counts {
            let Some(info) = by_name.get_mut(&workflow) else {
                continue;
            };
            info.instances += count;
            match status {
                Some(InstanceStatus::Running) => info.running += count,
                Some(InstanceStatus::Finished) => info.finished += count,
                Some(InstanceStatus::Failed) => info.failed += count,
                Some(InstanceStatus::Cancelled) => info.cancelled += count,
                None => {}
            }
        }
        Ok(by_name.into_values().collect())
    }

    /// One page of the instances `filter` matches, newest first (by start time; those whose
    /// start time is unknown last), with the total and the next page's cursor.
    ///
    /// # Errors
    ///
    /// [`InspectError::BadCursor`], [`InspectError::UnknownWorkflow`], [`InspectError::Store`].
    pub async fn list(&self, filter: &Filter) -> Result<Page, InspectError> {
        let after = filter.cursor.as_deref().map(Key::parse).transpose()?;
        let limit = match filter.limit {
            0 => DEFAULT_PAGE,
            n => n.min(MAX_PAGE),
        };
        let filter = filter.clone();
        self.read(move |s| {
            let workflows = match &filter.workflow {
                Some(workflow) => {
                    if !s.workflows()?.contains(workflow) {
                        return Err(InspectError::UnknownWorkflow {
                            workflow: workflow.clone(),
                        });
                    }
                    vec![workflow.clone()]
                }
                None => s.workflows()?,
            };
            let mut found: Vec<(Key, InstanceRow)> = Vec::new();
            let mut total = 0;
            for workflow in &workflows {
                let query = ListQuery {
                    workflow,
                    filter: &filter,
                    after: after.as_ref(),
                    limit: limit + 1,
                };
                found.extend(s.list(&query)?);
                total += s.count(&query)?;
            }
            found.sort_by(|a, b| Key::newest_first(&a.0, &b.0));
            let next = (found.len() > limit).then(|| found[limit - 1].0.cursor());
            found.truncate(limit);
            Ok(Page {
                instances: found.into_iter().map(|(_, row)| row).collect(),
                total,
                next,
            })
        })
        .await
    }

    /// Instance `id` (of `workflow`, if given) with its context and whole journal.
    ///
    /// # Errors
    ///
    /// [`InspectError::UnknownInstance`]; [`InspectError::Ambiguous`] if instances of several
    /// workflows have the id and none is named; [`InspectError::Store`].
    pub async fn show(&self, id: &str, workflow: Option<&str>) -> Result<InstanceDetail, InspectError> {
        let id = id.to_string();
        let workflow = workflow.map(str::to_string);
        let (row, rows, definitions) = self
            .read(move |s| {
                let candidates = match workflow {
                    Some(workflow) => vec![workflow],
                    None => s.workflows()?,
                };
                let mut found = Vec::new();
                for workflow in candidates {
                    if let Some(row) = s.instance(&workflow, &id)? {
                        found.push(row);
                    }
                }
                let row = match found.len() {
                    0 => return Err(InspectError::UnknownInstance { id }),
                    1 => found.remove(0),
                    _ => {
                        return Err(InspectError::Ambiguous {
                            id,
                            workflows: found.into_iter().map(|r| r.workflow).collect(),
                        })
                    }
                };
                let rows = s.journal(&row.workflow, &row.id)?;
                let definitions = s.definitions()?;
                Ok((row, rows, definitions))
            })
            .await?;
        Ok(self.detail(row, rows, &definitions))
    }

    /// Counts for `workflow`: instances by state and status now, and over the window from
    /// `since` (milliseconds since the Unix epoch) on: instances started, finished, failed and
    /// cancelled, and each activity's durations (p50, p99).
    ///
    /// # Errors
    ///
    /// [`InspectError::UnknownWorkflow`], [`InspectError::Store`].
    pub async fn stats(&self, workflow: &str, since: u64) -> Result<Stats, InspectError> {
        let name = workflow.to_string();
        let (states, started, ended, moves, definitions) = self
            .read(move |s| {
                if !s.workflows()?.contains(&name) {
                    return Err(InspectError::UnknownWorkflow { workflow: name });
                }
                let since = i64::try_from(since).unwrap_or(i64::MAX);
                Ok((
                    s.state_counts(&name)?,
                    s.started_since(&name, since)?,
                    s.ended_since(&name, since)?,
                    s.moves_since(&name, since, DURATION_ROWS)?,
                    s.definitions()?,
                ))
            })
            .await?;
        let mut states: Vec<StateCount> = states
            .into_iter()
            .map(|(state, status, count)| StateCount { state, status, count })
            .collect();
        states.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.state.cmp(&b.state)));
        let ended_with = |status| ended.iter().filter(|(s, _)| *s == Some(status)).map(|(_, n)| n).sum();
        // Which states invoke which activity, by every definition of the workflow.
        let mut invokes: HashMap<String, String> = HashMap::new();
        for definition in definitions.iter().filter(|d| d.workflow == workflow) {
            if let Some(graph) = graph_of(&definition.graph) {
                for state in graph.states {
                    if let Some(invoke) = state.invoke {
                        invokes.insert(state.name.to_string(), invoke.activity.to_string());
                    }
                }
            }
        }
        let sampled = moves.len() >= DURATION_ROWS as usize;
        let mut durations: BTreeMap<(String, String), Vec<u64>> = BTreeMap::new();
        let moves = moves.into_iter().filter_map(|(before, after, took)| {
            Some((before?, after?, u64::try_from(took?).ok()?)).filter(|(before, after, _)| before != after)
        });
        for (before, after, took) in moves {
            let after = state_names(&after);
            for left in state_names(&before).into_iter().filter(|s| !after.contains(s)) {
                if let Some(activity) = invokes.get(left) {
                    durations
                        .entry((left.to_string(), activity.clone()))
                        .or_default()
                        .push(took);
                }
            }
        }
        let activities = durations
            .into_iter()
            .map(|((state, activity), mut took)| {
                took.sort_unstable();
                ActivityStats {
                    state,
                    activity,
                    count: took.len() as u64,
                    p50_ms: percentile(&took, 50),
                    p99_ms: percentile(&took, 99),
                }
            })
            .collect();
        Ok(Stats {
            workflow: workflow.to_string(),
            since,
            states,
            started,
            finished: ended_with(InstanceStatus::Finished),
            failed: ended_with(InstanceStatus::Failed),
            cancelled: ended_with(InstanceStatus::Cancelled),
            activities,
            sampled,
        })
    }

    /// `workflow`'s diagram (its newest definition's graph, drawn by
    /// [`Graph::to_mermaid_counted`], [`Graph::to_dot_counted`] or [`Graph::to_svg_counted`])
    /// with the number of instances in each state.
    ///
    /// # Errors
    ///
    /// [`InspectError::UnknownWorkflow`] if the store holds no definition of it,
    /// [`InspectError::Store`].
    pub async fn diagram(&self, workflow: &str, format: DiagramFormat) -> Result<Diagram, InspectError> {
        let name = workflow.to_string();
        let (definitions, counts) = self
            .read(move |s| {
                let definitions = s.definitions()?;
                if !definitions.iter().any(|d| d.workflow == name) {
                    return Err(InspectError::UnknownWorkflow { workflow: name });
                }
                Ok((definitions, s.state_counts(&name)?))
            })
            .await?;
        let unknown = || InspectError::UnknownWorkflow {
            workflow: workflow.to_string(),
        };
        let definition = definitions
            .into_iter()
            .filter(|d| d.workflow == workflow)
            .max_by_key(|d| d.first_seen)
            .ok_or_else(unknown)?;
        let graph = graph_of(&definition.graph).ok_or_else(|| InspectError::Store {
            reason: format!(
                "the definition {} of `{workflow}` cannot be read: its graph does not decode",
                definition.fingerprint
            ),
        })?;
        let mut instances = vec![0_u64; graph.states.len()];
        let mut running = vec![0_u64; graph.states.len()];
        for (state, status, count) in counts {
            let Some(state) = state else { continue };
            let mut counted = vec![false; graph.states.len()];
            for name in state_names(&state) {
                // A state and its ancestors, each once per configuration.
                let mut at = graph.state_index(name);
                while let Some(s) = at {
                    if !counted[s] {
                        counted[s] = true;
                        instances[s] += count;
                        if status == Some(InstanceStatus::Running) {
                            running[s] += count;
                        }
                    }
                    at = graph.states[s].parent;
                }
            }
        }
        let text = match format {
            DiagramFormat::Mermaid => graph.to_mermaid_counted(&instances),
            DiagramFormat::Dot => graph.to_dot_counted(&instances),
            DiagramFormat::Svg => graph.to_svg_counted(&instances),
        };
        Ok(Diagram {
            workflow: workflow.to_string(),
            fingerprint: definition.fingerprint,
            format,
            text,
            counts: graph
                .states
                .iter()
                .zip(instances.iter().zip(&running))
                .map(|(s, (&instances, &running))| DiagramCount {
                    state: s.name.to_string(),
                    instances,
                    running,
                })
                .collect(),
        })
    }

    /// Runs `read` against the source, off the async workers.
    async fn read<T: Send + 'static>(
        &self,
        read: impl FnOnce(&dyn Read) -> Result<T, InspectError> + Send + 'static,
    ) -> Result<T, InspectError> {
        match &self.source {
            #[cfg(feature = "sqlite")]
            Source::Sqlite(source) => {
                let source = source.clone();
                blocking(move || read(&source)).await
            }
            #[cfg(feature = "postgres")]
            Source::Postgres(source) => {
                let source = source.clone();
                blocking(move || read(&source)).await
            }
        }
    }

    /// The readable form of an instance's journal.
    fn detail(&self, row: InstanceRow, rows: Vec<Row>, definitions: &[Definition]) -> InstanceDetail {
        let seal = Seal {
            workflow: row.workflow.clone().into(),
            codec: self.codec.clone(),
        };
        let graphs: HashMap<&str, Graph<'static>> = definitions
            .iter()
            .filter(|d| d.workflow == row.workflow)
            .filter_map(|d| Some((d.fingerprint.as_str(), graph_of(&d.graph)?)))
            .collect();
        let mut timeline: Vec<TimelineEntry> = Vec::with_capacity(rows.len());
        let mut newest = None;
        // When each state was last entered, for activities' durations.
        let mut entered: HashMap<String, u64> = HashMap::new();
        let mut previous_at: Option<u64> = None;
        for stored in &rows {
            let at = stored.summary.at;
            let mut entry = TimelineEntry {
                seq: stored.seq,
                at,
                after_ms: at.zip(previous_at).map(|(now, before)| now.saturating_sub(before)),
                step: String::new(),
                event: None,
                payload: None,
                from: None,
                to: stored.summary.state.clone(),
                status: stored.summary.status,
                activity: None,
                compensation: None,
                error: None,
                attempts: Vec::new(),
                timers: Vec::new(),
            };
            previous_at = at.or(previous_at);
            let document = seal.open(stored).and_then(|data| {
                serde_json::from_slice::<journal::Document<'static, Value, Value>>(&data).map_err(|e| {
                    StoreError::Corrupt {
                        instance: stored.instance.clone(),
                        seq: stored.seq,
                        reason: e.to_string(),
                    }
                })
            });
            match document {
                Ok(document) => {
                    let graph = graphs.get(&*document.fingerprint);
                    describe(&mut entry, &document, graph, &entered);
                    entry.status = entry.status.or(Some(document.status.kind()));
                    if let Some(at) = at {
                        for state in &document.active {
                            entered.entry(state.to_string()).or_insert(at);
                        }
                        entered.retain(|state, _| document.active.iter().any(|a| a == state));
                    }
                    newest = Some(document);
                }
                Err(StoreError::UnknownKey { reason, .. }) => {
                    entry.step = "sealed".into();
                    entry.error = Some(reason);
                    newest = None;
                }
                Err(error) => {
                    entry.step = "unreadable".into();
                    entry.error = Some(error.to_string());
                    newest = None;
                }
            }
            timeline.push(entry);
        }
        let reason = match newest.as_ref().map(|d| &d.status) {
            Some(journal::Status::Failed { reason }) => Some(reason.clone()),
            _ => None,
        };
        InstanceDetail {
            reason,
            context: newest.as_ref().map(|d| d.context.clone()),
            fingerprint: newest.as_ref().map(|d| d.fingerprint.to_string()),
            timers: newest.as_ref().map(timers).unwrap_or_default(),
            activities: newest
                .as_ref()
                .map(|d| d.activities.iter().map(|a| a.state.to_string()).collect())
                .unwrap_or_default(),
            timeline,
            row,
        }
    }
}

/// Fills a timeline entry from its row's document.
fn describe(
    entry: &mut TimelineEntry,
    document: &journal::Document<'static, Value, Value>,
    graph: Option<&Graph<'static>>,
    entered: &HashMap<String, u64>,
) {
    let (step, event) = match &document.step {
        journal::Step::Started => ("started", None),
        journal::Step::Transition { from, event, to } => {
            entry.from = Some(from.clone());
            entry.to = Some(to.clone());
            ("transition", Some(event))
        }
        journal::Step::Rejected { state, event } => {
            entry.from = Some(state.clone());
            ("rejected", Some(event))
        }
        journal::Step::Compensated {
            compensation, error, ..
        } => {
            entry.compensation = Some(compensation.clone());
            entry.error = error.clone();
            ("compensated", None)
        }
        journal::Step::Finished => ("finished", None),
        journal::Step::Failed { reason } => {
            entry.error = Some(reason.clone());
            ("failed", None)
        }
        journal::Step::Cancelled => ("cancelled", None),
        journal::Step::Retried { .. } => ("retried", None),
    };
    entry.step = match document.step {
        // Which retry it was, past the first: `retried 2`…
        journal::Step::Retried { attempt } if attempt > 1 => format!("retried {attempt}"),
        _ => step.to_string(),
    };
    if let Some(event) = event {
        let (name, payload) = event_parts(event);
        entry.payload = payload;
        if let Some(name) = &name {
            let kind = graph
                .and_then(|g| g.events.iter().find(|e| e.name == name))
                .map(|e| e.kind);
            let outcome = match kind {
                Some(EventKind::Done(activity)) => Some((activity, "done")),
                Some(EventKind::Failed(activity)) => Some((activity, "failed")),
                _ => None,
            };
            if let (Some((activity, outcome)), Some(graph)) = (outcome, graph) {
                // The state that invokes it, and when the instance entered it.
                let state = graph
                    .states
                    .iter()
                    .find(|s| s.invoke.is_some_and(|i| i.activity == activity))
                    .map(|s| s.name);
                let since = state.and_then(|s| entered.get(s));
                entry.activity = Some(ActivityOutcome {
                    name: activity.to_string(),
                    outcome: outcome.to_string(),
                    duration_ms: entry.at.zip(since).map(|(at, since)| at.saturating_sub(*since)),
                });
            }
        }
        entry.event = name;
    }
    entry.attempts = document.attempts.to_vec();
    entry.timers = timers(document);
}

/// How an attempt ended, for a reader: `ok`, or its error's kind and message
/// (`timed out: attempt 2 of `charge` timed out after 50ms`), as the `workflow` command and the
/// web view show it.
pub fn attempt_outcome(attempt: &journal::Attempt) -> String {
    match (attempt.kind, &attempt.error) {
        (None, None) => "ok".to_string(),
        (kind, error) => format!(
            "{}: {}",
            kind.map_or("failed", crate::ErrorKind::as_str).replace('_', " "),
            error.as_deref().unwrap_or_default()
        ),
    }
}

/// A document's pending timers.
fn timers(document: &journal::Document<'static, Value, Value>) -> Vec<TimerInfo> {
    document
        .timers
        .iter()
        .map(|t| TimerInfo {
            state: t.state.as_ref().map(|s| s.to_string()),
            send: t.send.as_ref().map(|s| s.to_string()),
            event: event_parts(&t.event).0,
            deadline: t.deadline,
        })
        .collect()
}

/// An event's variant name and payload, from its serde JSON form (`"Close"`, or
/// `{"PayDone": …}`).
fn event_parts(event: &Value) -> (Option<String>, Option<Value>) {
    match event {
        Value::String(name) => (Some(name.clone()), None),
        Value::Object(map) if map.len() == 1 => match map.iter().next() {
            Some((name, payload)) => (Some(name.clone()), Some(payload.clone())),
            None => (None, None),
        },
        other => (None, Some(other.clone())),
    }
}

/// The state names in a state's display: `Charging`, or a configuration's `{Paying, Packing}`.
pub(crate) fn state_names(display: &str) -> Vec<&str> {
    display
        .trim_start_matches('{')
        .trim_end_matches('}')
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect()
}

/// The `p`th percentile of sorted durations (nearest rank); 0 for none.
fn percentile(sorted: &[u64], p: usize) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (sorted.len() * p).div_ceil(100).max(1);
    sorted[rank.min(sorted.len()) - 1]
}

/// The graph a definition's text holds, decoded once per text and kept for the process (graphs
/// borrow `'static` names: each distinct definition is kept once).
fn graph_of(text: &str) -> Option<Graph<'static>> {
    static GRAPHS: OnceLock<Mutex<HashMap<String, Option<Graph<'static>>>>> = OnceLock::new();
    let graphs = GRAPHS.get_or_init(Mutex::default);
    let mut graphs = graphs.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(graph) = graphs.get(text) {
        return *graph;
    }
    let kept: &'static str = Box::leak(text.to_string().into_boxed_str());
    let graph = crate::graph::text::decode(kept).ok().filter(|g| valid(g));
    graphs.insert(text.to_string(), graph);
    graph
}

/// Whether a decoded graph's indices stay in bounds, so that drawing it cannot panic: the text
/// comes from a store, which anyone may have edited.
fn valid(graph: &Graph<'_>) -> bool {
    let states = graph.states.len();
    let state = |s: &usize| *s < states;
    graph.initial < states.max(1)
        && graph.states.iter().all(|s| {
            s.parent.is_none_or(|p| p < states)
                && s.end <= states
                && s.transitions.start <= s.transitions.end
                && s.transitions.end <= graph.transitions.len()
                && match s.kind {
                    crate::graph::StateKind::Compound { initial } => initial < states,
                    _ => true,
                }
        })
        && graph.transitions.iter().all(|t| {
            state(&t.source)
                && t.targets.iter().all(state)
                && t.in_states.iter().all(state)
                && t.not_in_states.iter().all(state)
                && match t.trigger {
                    crate::graph::Trigger::Events(events) => events.iter().all(|e| *e < graph.events.len()),
                    crate::graph::Trigger::DoneOf(s) => s < states,
                    _ => true,
                }
        })
        && graph.events.iter().all(|e| match e.kind {
            EventKind::Timer { state, .. } => state < states,
            _ => true,
        })
}

/// Instances by state and status, as a source counts them.
pub(crate) type StateCounts = Vec<(Option<String>, Option<InstanceStatus>, u64)>;

/// What a source answers; each call one or a few queries.
pub(crate) trait Read {
    /// Every workflow's name, sorted.
    fn workflows(&self) -> Result<Vec<String>, InspectError>;
    /// Every definition.
    fn definitions(&self) -> Result<Vec<Definition>, InspectError>;
    /// Instances by workflow and status (of one workflow, if given).
    fn status_counts(&self, workflow: Option<&str>)
        -> Result<Vec<(String, Option<InstanceStatus>, u64)>, InspectError>;
    /// Instances by state and status.
    fn state_counts(&self, workflow: &str) -> Result<StateCounts, InspectError>;
    /// How the source's SQL differs.
    fn dialect(&self) -> sql::Dialect;
    /// Its `instances` table's name.
    fn table(&self) -> &str;
    /// Its `SELECT` of [`InstanceRow`]s' columns (see [`sql::columns`]).
    fn columns(&self) -> &str;
    /// The instances `select` selects, with their sort keys.
    fn instances(&self, select: &sql::Select) -> Result<Vec<(Key, InstanceRow)>, InspectError>;
    /// The one number `select` selects.
    fn number(&self, select: &sql::Select) -> Result<u64, InspectError>;
    /// One workflow's part of a list page.
    fn list(&self, query: &ListQuery<'_>) -> Result<Vec<(Key, InstanceRow)>, InspectError> {
        let mut found = Vec::new();
        for status in sql::partitions(query) {
            let dated = match sql::dated(self.dialect(), self.columns(), query, status) {
                Some(select) => self.instances(&select)?,
                None => Vec::new(),
            };
            let undated = sql::wants_undated(query, dated.len());
            found.extend(dated);
            if undated {
                if let Some(select) = sql::undated(self.dialect(), self.columns(), query, status) {
                    found.extend(self.instances(&select)?);
                }
            }
        }
        Ok(found)
    }
    /// How many of one workflow's instances the filter matches.
    fn count(&self, query: &ListQuery<'_>) -> Result<u64, InspectError> {
        self.number(&sql::count(self.dialect(), self.table(), query))
    }
    /// One instance, if the workflow has it.
    fn instance(&self, workflow: &str, id: &str) -> Result<Option<InstanceRow>, InspectError>;
    /// An instance's journal.
    fn journal(&self, workflow: &str, id: &str) -> Result<Vec<Row>, InspectError>;
    /// Instances started at or after `since`.
    fn started_since(&self, workflow: &str, since: i64) -> Result<u64, InspectError>;
    /// Rows at or after `since` that ended their instance, by status.
    fn ended_since(&self, workflow: &str, since: i64) -> Result<Vec<(Option<InstanceStatus>, u64)>, InspectError>;
    /// The newest `limit` rows at or after `since`, each with the row before it: the state
    /// before and after, and the milliseconds between the two rows (`None` where a row is
    /// missing or lacks its summary).
    fn moves_since(&self, workflow: &str, since: i64, limit: u32) -> Result<Vec<Move>, InspectError>;
}

/// A row of a window beside the row before it: the state before, after, and the milliseconds
/// between them, as far as the rows tell.
type Move = (Option<String>, Option<String>, Option<i64>);

/// Runs `work` on tokio's blocking pool when there is a runtime, inline otherwise.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, InspectError> + Send + 'static,
) -> Result<T, InspectError> {
    match tokio::runtime::Handle::try_current() {
        Ok(runtime) => runtime.spawn_blocking(work).await.map_err(|e| InspectError::Store {
            reason: format!("the read stopped: {e}"),
        })?,
        Err(_) => work(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_garbage() {
        let key = Key {
            started: Some(1_700),
            workflow: "Order".into(),
            id: "o.1/é".into(),
        };
        assert_eq!(Key::parse(&key.cursor()).unwrap(), key);
        let unknown = Key { started: None, ..key };
        assert_eq!(Key::parse(&unknown.cursor()).unwrap(), unknown);
        for bad in ["", "1.2", "x.4f.41", "1.4f.4", "1.zz.41", "1.4f.41.0"] {
            assert!(matches!(Key::parse(bad), Err(InspectError::BadCursor { .. })), "{bad}");
        }
    }

    #[test]
    fn newest_first_puts_unknown_times_last() {
        let key = |started, id: &str| Key {
            started,
            workflow: "W".into(),
            id: id.into(),
        };
        let mut keys = [
            key(None, "a"),
            key(Some(1), "b"),
            key(Some(2), "a"),
            key(Some(2), "b"),
            key(None, "b"),
        ];
        keys.sort_by(Key::newest_first);
        let order: Vec<(Option<i64>, &str)> = keys.iter().map(|k| (k.started, k.id.as_str())).collect();
        assert_eq!(
            order,
            [(Some(2), "b"), (Some(2), "a"), (Some(1), "b"), (None, "b"), (None, "a")]
        );
    }

    #[test]
    fn percentiles_and_state_names() {
        let took: Vec<u64> = (1..=100).collect();
        assert_eq!((percentile(&took, 50), percentile(&took, 99)), (50, 99));
        assert_eq!(percentile(&[7], 99), 7);
        assert_eq!(percentile(&[], 50), 0);
        assert_eq!(state_names("{Paying, Packing}"), ["Paying", "Packing"]);
        assert_eq!(state_names("Charging"), ["Charging"]);
    }

    #[test]
    fn a_graph_text_that_would_draw_out_of_bounds_is_refused() {
        assert!(graph_of("W\u{1f}0\nS\u{1f}A\u{1f}a\u{1f}\u{1f}1\u{1f}0\u{1f}0\u{1f}\u{1f}\u{1f}\u{1f}\n").is_some());
        // A transition to state 7 of a graph of one state.
        let bad = "W\u{1f}0\nS\u{1f}A\u{1f}a\u{1f}\u{1f}1\u{1f}0\u{1f}1\u{1f}\u{1f}\u{1f}\u{1f}\nT\u{1f}0\u{1f}a\u{1f}\u{1f}\u{1f}\u{1f}7\u{1f}0\u{1f}\n";
        assert!(graph_of(bad).is_none());
        assert!(graph_of("not a graph").is_none());
    }
}
