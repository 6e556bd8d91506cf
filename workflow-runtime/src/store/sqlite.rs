//! The embedded durable store: journals in one SQLite file.
//!
//! # File format
//!
//! One SQLite 3 database (compiled in, nothing to install) holding four
//! tables:
//!
//! ```sql
//! CREATE TABLE meta (
//!     key   TEXT PRIMARY KEY NOT NULL, -- 'schema_version'
//!     value INTEGER NOT NULL           -- 2 for this build
//! ) WITHOUT ROWID;
//!
//! CREATE TABLE journal (
//!     id       INTEGER PRIMARY KEY,    -- the rowid, named: VACUUM keeps it
//!     workflow TEXT NOT NULL,          -- the workflow's name
//!     instance TEXT NOT NULL,          -- the instance's id
//!     seq      INTEGER NOT NULL,       -- the row's number in the instance's journal: 1, 2, 3...
//!     open     INTEGER NOT NULL,       -- 1 while the instance runs after this step, else 0
//!     checksum INTEGER NOT NULL,       -- CRC-32 of `data`, computed by the engine
//!     data     BLOB NOT NULL,          -- the step and the state after it, encoded by the engine
//!     prev     INTEGER,                -- the `id` of the instance's row seq - 1; NULL for seq 1
//!     at       INTEGER,                -- the row's Summary (plaintext, even with a codec):
//!     state    TEXT,                   --   when (ms since the Unix epoch), the state after it,
//!     status   INTEGER                 --   the status (0 running, 1 finished, 2 failed, 3 cancelled)
//! );
//!
//! CREATE TABLE instances (
//!     workflow TEXT NOT NULL,
//!     instance TEXT NOT NULL,
//!     newest   INTEGER NOT NULL,       -- the `id` of the instance's newest row in `journal`
//!     seq      INTEGER NOT NULL,       -- that row's `seq`
//!     open     INTEGER NOT NULL,       -- that row's `open`
//!     state    TEXT,                   -- that row's state and status,
//!     status   INTEGER,
//!     started  INTEGER,                -- the `at` of its first row, and of its newest
//!     updated  INTEGER,
//!     PRIMARY KEY (workflow, instance)
//! ) WITHOUT ROWID;
//! CREATE INDEX instances_by_started ON instances (workflow, started);
//! CREATE INDEX instances_by_state ON instances (workflow, state, status, started);
//! CREATE INDEX instances_by_status ON instances (workflow, status, started);
//!
//! CREATE TABLE definitions (           -- each workflow's graph, once per fingerprint
//!     workflow TEXT NOT NULL, fingerprint TEXT NOT NULL,
//!     graph TEXT NOT NULL,             -- graph::text's form, which the fingerprint hashes
//!     context TEXT NOT NULL,           -- the context type's name
//!     first_seen INTEGER NOT NULL,     -- ms since the Unix epoch
//!     PRIMARY KEY (workflow, fingerprint)
//! ) WITHOUT ROWID;
//! ```
//!
//! The summaries, the definitions and `instances`' indexes are what a reader
//! without the workflows' code needs ([`inspect`](crate::inspect)): which
//! instances stand where, since when, and the diagram to draw them on. State
//! names and statuses are stored in plaintext even when a codec seals `data`.
//! The indexes cost the writer: per step, `instances_by_state` moves the
//! instance's entry when its state changed (`instances_by_status` only when
//! its status did, the update assigns only what changed); measured with the
//! `measure` test below (10,000 instances, 250-byte rows, a state change every
//! row), the writer's time per row went from 5.0 µs (schema 1) to 6.7–7.3 µs
//! and the bytes written per row from 674 to 747. `journal` still has no
//! index: an index on the rows' times cost another 1.5 µs a row, and a
//! window of time is found by bisecting the rowid instead, rows being
//! committed in nearly the order of their times.
//!
//! `journal` is only ever appended to, and has no index: rows sit in the
//! order they were committed, and a batch of appends fills a few new pages
//! at the end of the file. `instances` holds one entry per instance, which
//! each append moves on: it refuses a row that is not the next of its
//! instance, recovery joins its open entries to their newest rows by `id`
//! ([`open_rows`](Store::open_rows)), and [`journal`](Store::journal) starts
//! from it and walks the instance's rows back along `prev`, one lookup by
//! `id` per row. `id` is the table's rowid under its own name, which
//! `VACUUM` does not renumber (it may renumber an unnamed one, and break
//! every link).
//!
//! Why not an index on `journal`: the first layout of this format had a
//! unique index on `(workflow, instance, seq)`, one entry per row. The rows of
//! a batch come from as many instances, so they landed on as many leaf pages
//! of the index, and a commit writes every page it changed whole into the
//! WAL: with 10,000 live instances, about 12 MiB written per commit of 4,000
//! rows of 250 bytes (3,000 bytes per row). `instances` grows with the
//! number of instances, not of rows, and a batch rewrites at most all of it
//! (about 90 pages for 10,000 instances): 2.5 MiB per such commit, WAL and
//! checkpoints together (660 bytes per row), and the writer commits about
//! two and a half times as many rows per second (`measure` test below).
//! Also measured and rejected: clustering the rows by key (`WITHOUT ROWID`),
//! which scatters whole rows across the file (a quarter of the rate);
//! integer ids for instances and workflows instead of their names as keys
//! (about 5% less writer time, for a cache of names in the writer); pages of
//! 8 or 16 KiB (no gain on the benchmark, more bytes per small commit).
//!
//! An append is stored only if its `seq` is the next of its instance: 1 for
//! an instance with no entry, else one more than its entry's. Anything else
//! is refused with [`StoreError::Conflict`] before anything of it is
//! written, and the rest of its batch commits: a `seq` already taken (two
//! engines writing one instance, a new instance reusing a stored id), but
//! also a gap, which [`Row::seq`] rules out anyway.
//!
//! The schema version is the `schema_version` row of `meta`. This build
//! writes version 2 into a new file and opens files of version 2; a file of
//! version 1 opened for writing is upgraded in place, in one transaction: the
//! new columns are added (times unknown: NULL), each instance's state and
//! status are filled from its newest row where that row is plain JSON, and
//! the definitions table and the indexes are created (the definitions fill
//! as engines start). A read-only open of a version-1 file is refused, as it
//! cannot upgrade it. A file of a newer version is refused with
//! [`StoreError::SchemaTooNew`] and left as it is.
//!
//! The file runs in WAL mode (a `-wal` and a `-shm` file live beside it while
//! it is open) with `synchronous=FULL`: a row is in the write-ahead log and
//! synced to disk before `append` returns, so an acknowledged append survives
//! a crash or a power loss.
//!
//! # Group commit
//!
//! One writer thread owns the connection that writes. Each `append` queues
//! its row and waits; the writer takes the first queued row, then every
//! other row already queued (up to 4096), writes them all in one
//! transaction and commits once (one sync) before answering each. A lone
//! append costs one commit; a thousand concurrent appends share a few.
//! Reads go through a second connection, which WAL lets run beside the
//! writer.
//!
//! A commit writes each page it changed into the WAL: the new pages at the
//! end of `journal`, and the pages of `instances` whose entries moved (with
//! thousands of busy instances, most of that table). Hence a large page
//! cache for the writer (`instances` stays in memory) and a checkpoint every
//! 10,000 WAL pages rather than SQLite's 1,000 (a page changed by many
//! commits is copied into the database once).
//!
//! A batch that SQLite fails as a whole is written again with each row in
//! its own savepoint: a row SQLite refuses is rolled back alone and its
//! append fails; the others commit. Rows over the store's maximum size never
//! reach a batch.
//!
//! # Checkpoints
//!
//! What is committed but not yet checkpointed lives only in the `-wal` file.
//! Besides SQLite's page bound, the writer checkpoints (`PASSIVE`) whenever
//! [`SqliteOptions::checkpoint_every`] has passed since the last checkpoint
//! with something committed since, idle or not, and fully (`TRUNCATE`) once
//! the store is dropped: a lost `-wal` loses at most that much.
//!
//! # Ownership and the file's identity
//!
//! A store opened for writing holds `flock(2)` on `<file>-lock` (see
//! [`SqliteStore::open`]). The writer also checks, before it writes a batch
//! and after it commits one, that the paths of the store file and of the
//! lock file still lead to the files it opened (same device and inode);
//! either deleted or replaced fails that batch (unacknowledged) and every
//! later one with [`StoreError::FileReplaced`] (with its lock file gone,
//! another process may own the store already).

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use rusqlite::types::{Value, ValueRef};
use rusqlite::{params, Connection, ErrorCode, OpenFlags, OptionalExtension, TransactionBehavior};
use tokio::sync::oneshot;

use super::owner::Owner;
use super::{Definition, InstanceStatus, Row, Store, StoreError, Summary};

/// The schema version this build writes and reads.
pub(crate) const SCHEMA_VERSION: i64 = 2;

/// The older version this build upgrades in place when it opens a file for writing.
const SCHEMA_V1: i64 = 1;

/// The most rows the writer puts in one transaction: enough to amortise the
/// sync, small enough that the first appender of a batch is not kept waiting
/// behind a huge one.
const MAX_BATCH: usize = 4096;

/// How long SQLite itself retries a locked file (another process writing, a
/// checkpoint) before giving up on one statement.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// How long the writer keeps retrying a batch that still finds the file
/// locked; past it the appends fail.
const BUSY_RETRY_FOR: Duration = Duration::from_secs(30);

/// The writer's page cache, in KiB (SQLite's default is 2 MiB): enough to
/// keep `instances` in memory up to a million or so instances.
const WRITER_CACHE_KIB: i64 = 64 * 1024;

/// The page size of a new file, in bytes: SQLite's default, said outright
/// (larger pages were measured: see the module documentation).
const PAGE_SIZE: i64 = 4096;

/// WAL pages between checkpoints (SQLite's default is 1000), about 40 MiB:
/// the size bound of what lives only in the WAL.
const CHECKPOINT_PAGES: u32 = 10_000;

/// The time bound: the writer checkpoints when this long has passed since
/// the last checkpoint and something was committed since.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);

/// The largest row a store takes by default, in bytes (data, instance id and
/// workflow name together).
const MAX_ROW_BYTES: usize = 16 << 20;

/// The largest maximum row size a store accepts: SQLite's own limit on a
/// string, a blob or a row (`SQLITE_MAX_LENGTH`, 10^9 bytes), less room for
/// the row's other columns.
const MAX_ROW_LIMIT: usize = 999_000_000;

/// The WAL file is cut back to this size after a checkpoint, in bytes.
const WAL_SIZE_LIMIT: i64 = 64 << 20;

const CREATE_SCHEMA: &str = "\
    CREATE TABLE IF NOT EXISTS meta (
        key TEXT PRIMARY KEY NOT NULL,
        value INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS journal (
        id INTEGER PRIMARY KEY,
        workflow TEXT NOT NULL,
        instance TEXT NOT NULL,
        seq INTEGER NOT NULL,
        open INTEGER NOT NULL,
        checksum INTEGER NOT NULL,
        data BLOB NOT NULL,
        prev INTEGER,
        at INTEGER,
        state TEXT,
        status INTEGER
    );
    CREATE TABLE IF NOT EXISTS instances (
        workflow TEXT NOT NULL,
        instance TEXT NOT NULL,
        newest INTEGER NOT NULL,
        seq INTEGER NOT NULL,
        open INTEGER NOT NULL,
        state TEXT,
        status INTEGER,
        started INTEGER,
        updated INTEGER,
        PRIMARY KEY (workflow, instance)
    ) WITHOUT ROWID;";

/// What schema 2 adds to schema 1 besides columns: the definitions, and the indexes the
/// inspector's queries need (see the module documentation for what they cost the writer).
const CREATE_V2_EXTRAS: &str = "\
    CREATE TABLE IF NOT EXISTS definitions (
        workflow TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        graph TEXT NOT NULL,
        context TEXT NOT NULL,
        first_seen INTEGER NOT NULL,
        PRIMARY KEY (workflow, fingerprint)
    ) WITHOUT ROWID;
    CREATE INDEX IF NOT EXISTS instances_by_started ON instances (workflow, started);
    CREATE INDEX IF NOT EXISTS instances_by_state ON instances (workflow, state, status, started);
    CREATE INDEX IF NOT EXISTS instances_by_status ON instances (workflow, status, started);";

/// Schema 1 to 2, in place: the new columns (NULL: unknown), then [`CREATE_V2_EXTRAS`]; the
/// instances' states and statuses are filled afterwards from their newest rows where those are
/// plain JSON ([`fill_v1_summaries`]).
const UPGRADE_V1: &str = "\
    ALTER TABLE journal ADD COLUMN at INTEGER;
    ALTER TABLE journal ADD COLUMN state TEXT;
    ALTER TABLE journal ADD COLUMN status INTEGER;
    ALTER TABLE instances ADD COLUMN state TEXT;
    ALTER TABLE instances ADD COLUMN status INTEGER;
    ALTER TABLE instances ADD COLUMN started INTEGER;
    ALTER TABLE instances ADD COLUMN updated INTEGER;
    UPDATE meta SET value = 2 WHERE key = 'schema_version';";

/// Keeps a definition unless one of the same workflow and fingerprint is stored.
const DEFINE: &str = "INSERT OR IGNORE INTO definitions (workflow, fingerprint, graph, context, first_seen) \
                      VALUES (?1, ?2, ?3, ?4, ?5)";

const READ_VERSION: &str = "SELECT value FROM meta WHERE key = 'schema_version'";

const WRITE_VERSION: &str = "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?1)";

/// An instance's entry: where its newest row is, and that row's number. The
/// writer's first look at an instance, and where a journal's walk back
/// starts.
const FIND_INSTANCE: &str = "SELECT newest, seq, state, status FROM instances WHERE workflow = ?1 AND instance = ?2";

/// Appends a row; SQLite gives it the next `id` (its rowid), so the table
/// only grows at its end.
const INSERT_ROW: &str =
    "INSERT INTO journal (workflow, instance, seq, open, checksum, data, prev, at, state, status) \
                          VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)";

const ADD_INSTANCE: &str =
    "INSERT INTO instances (workflow, instance, newest, seq, open, state, status, started, updated) \
                            VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8)";

const ADVANCE_INSTANCE: &str =
    "UPDATE instances SET newest = ?3, seq = ?4, open = ?5, updated = ?6, state = ?7, status = ?8 \
     WHERE workflow = ?1 AND instance = ?2";

/// [`ADVANCE_INSTANCE`] for a step that left the instance's status as it was (the common one):
/// SQLite updates an index only when the statement assigns one of its columns, so
/// `instances_by_status` is left alone.
const ADVANCE_STATE: &str = "UPDATE instances SET newest = ?3, seq = ?4, open = ?5, updated = ?6, state = ?7 \
                             WHERE workflow = ?1 AND instance = ?2";

/// [`ADVANCE_INSTANCE`] for a step that left state and status as they were: no index changes.
const ADVANCE_SAME: &str = "UPDATE instances SET newest = ?3, seq = ?4, open = ?5, updated = ?6 \
                            WHERE workflow = ?1 AND instance = ?2";

/// What recovery reads of an open instance, joined to its entry `i`: the
/// entry's instance id, the row's `seq, open, checksum, data`, whether the
/// row found is the one the entry promises, the entry's `seq`, and whether a
/// row was found at all. A `LEFT JOIN`, so that an entry whose row is
/// missing still comes back (and is reported) rather than silently not at
/// all.
macro_rules! open_row_columns {
    () => {
        "SELECT i.instance, j.seq, j.open, j.checksum, j.data, \
                j.workflow IS i.workflow AND j.instance IS i.instance \
                AND j.seq IS i.seq AND j.open IS i.open, i.seq, j.id IS NOT NULL, j.at, j.state, j.status "
    };
}

/// The newest row of each open instance. The open entries are sorted by
/// `id` first (a materialized `ORDER BY`), so their rows are fetched in
/// file order: on 100,000 instances whose names and rows are in unrelated
/// orders, 0.1 s, against 0.2 s in name order. `IS NOT 0` rather than `= 1`:
/// an entry whose `open` is garbage is returned, and checked, instead of
/// counting as finished.
const OPEN_ROWS: &str = concat!(
    "WITH i AS MATERIALIZED (SELECT workflow, instance, newest, seq, open FROM instances \
                            WHERE workflow = ?1 AND open IS NOT 0 ORDER BY newest) ",
    open_row_columns!(),
    "FROM i LEFT JOIN journal AS j ON j.id = i.newest"
);

/// [`OPEN_ROWS`] for one entry already read (workflow, instance, newest,
/// seq, open): how a damaged file is read, one instance at a time.
const OPEN_ROW: &str = concat!(
    open_row_columns!(),
    "FROM (SELECT ?1 AS workflow, ?2 AS instance, ?3 AS newest, ?4 AS seq, ?5 AS open) AS i \
     LEFT JOIN journal AS j ON j.id = i.newest"
);

/// The open entries, in key order or its reverse: read from both ends, so
/// that a damaged page of `instances` hides only the entries on it.
const OPEN_ENTRIES: &str = "SELECT instance, newest, seq, open FROM instances \
                            WHERE workflow = ?1 AND open IS NOT 0 ORDER BY instance";
const OPEN_ENTRIES_BACK: &str = "SELECT instance, newest, seq, open FROM instances \
                                 WHERE workflow = ?1 AND open IS NOT 0 ORDER BY instance DESC";

/// One row of a walk back, with its link to the one before and its owner.
const ROW_AT: &str =
    "SELECT instance, seq, open, checksum, data, prev, workflow, at, state, status FROM journal WHERE id = ?1";

/// Journals in one SQLite file: the embedded durable store.
///
/// [`append`](Store::append) returns once its row is committed and synced:
/// the file is in WAL mode with `synchronous=FULL`. One writer thread commits
/// for every appender, and appends that arrive while it is busy share its
/// next commit (group commit, up to 4096 rows in one transaction; see
/// [`commits`](Self::commits)). Reads use a second connection, beside the
/// writer. Dropping the store lets the writer finish the rows already
/// queued and checkpoint the WAL into the main file, then waits for it to
/// stop.
///
/// One store at a time owns a file (an OS lock, released when its process
/// dies: see [`open`](Self::open)); a row over the maximum size
/// ([`SqliteOptions::max_row_bytes`]) is refused before it reaches a batch;
/// the WAL is checkpointed at least every [`SqliteOptions::checkpoint_every`]
/// while rows are committed; [`backup_to`](Self::backup_to) copies the
/// store while it runs; a file deleted or replaced under the store fails
/// every later write with [`StoreError::FileReplaced`]; and on a damaged
/// file [`open_rows`](Store::open_rows) returns every instance it can still
/// read, and each one it cannot as an error by id.
///
/// # File format
///
/// Three tables:
///
/// ```sql
/// CREATE TABLE meta (key TEXT PRIMARY KEY NOT NULL, value INTEGER NOT NULL) WITHOUT ROWID;
/// CREATE TABLE journal (
///     id INTEGER PRIMARY KEY,
///     workflow TEXT NOT NULL, instance TEXT NOT NULL, seq INTEGER NOT NULL, open INTEGER NOT NULL,
///     checksum INTEGER NOT NULL, data BLOB NOT NULL, prev INTEGER
/// );
/// CREATE TABLE instances (
///     workflow TEXT NOT NULL, instance TEXT NOT NULL,
///     newest INTEGER NOT NULL, seq INTEGER NOT NULL, open INTEGER NOT NULL,
///     PRIMARY KEY (workflow, instance)
/// ) WITHOUT ROWID;
/// ```
///
/// (Schema 2 adds the rows' [`Summary`](crate::store::Summary) columns, the
/// instances' state, status and times, a `definitions` table and three
/// indexes on `instances`: see the module documentation.)
///
/// `meta` holds `('schema_version', 2)`; a file of a newer version is
/// refused with [`StoreError::SchemaTooNew`] and left unchanged. `journal`
/// holds one [`Row`] per line, with its workflow's name, `open` as 0 or 1,
/// and in `prev` the `id` of the instance's previous row (NULL for its
/// first); it is only appended to, and has no index, so that a batch of
/// appends from many instances writes a few new pages. `instances` holds one
/// entry per instance: the `id`, `seq` and `open` of its newest row. Recovery
/// joins the open entries to their rows; an instance's journal is read
/// back from its entry along the `prev` links. An append must be its
/// instance's next row (1 for a new instance, else one more than the
/// newest), or it is refused with [`StoreError::Conflict`]: a taken `seq`,
/// and a gap too.
///
/// A row whose values have the wrong SQLite type reads back with empty or
/// zero values (a garbled `open` as true) and a checksum that does not
/// match, so the engine reports that instance as corrupt and recovers the
/// others; so does an instance whose entry points to a missing row or
/// another instance's. A journal whose chain of `prev` links is broken
/// reads as [`StoreError::Corrupt`].
///
/// ```
/// use workflow_runtime::{Row, SqliteStore, Store};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("journal.db");
///
/// let store = SqliteStore::open(&path)?;
/// let row = Row { instance: "o-1".into(), seq: 1, open: true, checksum: 0, data: b"{}".to_vec(), summary: Default::default() };
/// store.append("Order", row.clone()).await?;
/// assert!(store.append("Order", row.clone()).await.is_err()); // seq 1 is taken
/// drop(store);
///
/// // The row outlives the store that wrote it.
/// let store = SqliteStore::open(&path)?;
/// assert_eq!(store.open_rows("Order").await?, vec![Ok(row.clone())]);
/// assert_eq!(store.journal("Order", "o-1").await?, vec![row]);
/// # Ok(()) }
/// ```
pub struct SqliteStore {
    /// Where requests go to the writer; `None` once dropping.
    requests: Option<Sender<Request>>,
    writer: Option<JoinHandle<()>>,
    /// Behind a mutex because a connection is not `Sync`; reads hold it only
    /// for one query, and the writer has its own connection.
    reader: Arc<Mutex<Connection>>,
    commits: Arc<AtomicU64>,
    /// What was opened, for messages and `Debug`.
    name: String,
    /// The largest row `append` takes, in bytes.
    max_row: usize,
    /// The lock that makes this store the file's only writer (`None` for a
    /// read-only or in-memory store). Last, so it is let go after both
    /// connections are closed.
    _owner: Option<Owner>,
    /// Where [`define`](Store::define) connects: a connection of its own, once per engine, so
    /// that the writer's queue carries nothing but appends.
    location: (PathBuf, OpenFlags),
}

/// How a [`SqliteStore`] is opened: its maximum row size and checkpoint
/// schedule. The defaults are what [`SqliteStore::open`] uses.
///
/// ```
/// use std::time::Duration;
/// use workflow_runtime::{SqliteOptions, SqliteStore};
///
/// # fn main() -> Result<(), workflow_runtime::StoreError> {
/// # let dir = tempfile::tempdir().unwrap();
/// let options = SqliteOptions::new()
///     .max_row_bytes(1 << 20)                        // refuse rows over 1 MiB
///     .checkpoint_every(Duration::from_millis(200)); // the WAL alone holds at most 0.2 s of commits
/// let store = SqliteStore::open_with(dir.path().join("orders.db"), options)?;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SqliteOptions {
    max_row_bytes: usize,
    checkpoint_every: Duration,
    checkpoint_pages: u32,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions {
            max_row_bytes: MAX_ROW_BYTES,
            checkpoint_every: CHECKPOINT_EVERY,
            checkpoint_pages: CHECKPOINT_PAGES,
        }
    }
}

impl SqliteOptions {
    /// The defaults: rows up to 16 MiB, a checkpoint every second (when
    /// something was committed) and every 10,000 WAL pages.
    pub fn new() -> Self {
        Self::default()
    }

    /// The largest row [`append`](Store::append) takes, in bytes: its data,
    /// instance id and workflow name together (default 16 MiB, at most
    /// 999,000,000, below SQLite's own limit of 10^9). A larger row is
    /// refused with [`StoreError::RowTooLarge`] before it reaches a batch,
    /// so it fails only its own instance.
    pub fn max_row_bytes(mut self, bytes: usize) -> Self {
        self.max_row_bytes = bytes;
        self
    }

    /// The time bound of the checkpoint schedule (default 1 s): once this
    /// long has passed since the last checkpoint, the writer copies what was
    /// committed since from the WAL into the main file. Commits newer than
    /// that live only in the `-wal` file.
    pub fn checkpoint_every(mut self, every: Duration) -> Self {
        self.checkpoint_every = every;
        self
    }

    /// The size bound of the checkpoint schedule, in WAL pages of 4 KiB
    /// (default 10,000, about 40 MiB; SQLite's own default is 1,000): SQLite
    /// checkpoints once the WAL holds this many pages.
    pub fn checkpoint_pages(mut self, pages: u32) -> Self {
        self.checkpoint_pages = pages;
        self
    }
}

/// What `start` needs besides the connections.
struct Setup {
    name: String,
    options: SqliteOptions,
    /// The store file and its lock file as opened, for the writer to notice
    /// either deleted or replaced (none in memory or read-only).
    files: Vec<FileIdentity>,
    owner: Option<Owner>,
    /// How [`define`](Store::define) connects: the path (or URI) and flags.
    location: (PathBuf, OpenFlags),
}

/// One append waiting for the writer.
struct Request {
    workflow: String,
    row: Row,
    reply: oneshot::Sender<Result<(), StoreError>>,
}

/// What became of one row of a committed batch.
enum Outcome {
    Stored,
    /// Not the next row of its instance: taken, out of order, or the first
    /// row of an instance that does not start at 1.
    Conflict,
    /// The instance's entry in `instances` holds garbage: it cannot go on.
    Unreadable,
    /// SQLite integers are signed; a `seq` above `i64::MAX` cannot be stored.
    SeqTooLarge,
    /// SQLite refused the row itself (isolated by a savepoint); the rest of
    /// the batch committed.
    Failed(String),
}

/// How the connections are opened.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Access {
    ReadWrite,
    ReadOnly,
}

impl SqliteStore {
    /// Opens the store in the file at `path`, creating the file and its
    /// tables if needed.
    ///
    /// # Errors
    ///
    /// - [`StoreError::SchemaTooNew`] if the file was written by a newer
    ///   version of this crate; the file is left unchanged.
    /// - [`StoreError::Backend`] if the file cannot be opened (its directory
    ///   does not exist, it is not a SQLite database) or cannot be written:
    ///   a file the process may not write fails here, at `open`, rather than
    ///   at the first append.
    /// - [`StoreError::InUse`] if another process, or another `SqliteStore`
    ///   of this process, has the file open for writing: one store at a
    ///   time owns a file. The error names the owner's process id and host.
    ///   The ownership is a lock the operating system drops when its process
    ///   ends, however it ends, so the file of a process that was killed is
    ///   taken over by the next `open` (which recovers what the WAL holds).
    pub fn open(path: impl AsRef<Path>) -> Result<SqliteStore, StoreError> {
        Self::open_with(path, SqliteOptions::default())
    }

    /// [`open`](Self::open) with other limits or checkpoint schedule.
    ///
    /// # Errors
    ///
    /// Those of [`open`](Self::open), and [`StoreError::Backend`] for a
    /// maximum row size of 0 or above 999,000,000 bytes.
    pub fn open_with(path: impl AsRef<Path>, options: SqliteOptions) -> Result<SqliteStore, StoreError> {
        let path = path.as_ref();
        check_directory(path)?;
        let name = path.display().to_string();
        if options.max_row_bytes == 0 || options.max_row_bytes > MAX_ROW_LIMIT {
            return Err(StoreError::Backend(format!(
                "{name}: the maximum row size must be between 1 and {MAX_ROW_LIMIT} bytes, not {}",
                options.max_row_bytes
            )));
        }
        // Before SQLite touches the file: a refused open changes nothing.
        let owner = Owner::take(path, &name)?;
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let writer = connect(path, flags, &name)?;
        let reader_flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        // A lock file deleted under the store would let a second owner in:
        // it is watched like the store file.
        let files = [path.to_path_buf(), super::owner::lock_path(path)]
            .into_iter()
            .map(|file| FileIdentity::of(&file))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| StoreError::Backend(format!("{name}: cannot read the file's identity: {e}")))?;
        Self::start(
            writer,
            || connect(path, reader_flags, &name),
            Access::ReadWrite,
            Setup {
                name: name.clone(),
                options,
                files,
                owner: Some(owner),
                location: (path.to_path_buf(), reader_flags),
            },
        )
    }

    /// Opens an existing store without ever writing to it: reads work, and
    /// every [`append`](Store::append) fails with [`StoreError::Backend`]
    /// (SQLite refuses the write). For inspecting a journal, or one on
    /// read-only media; it takes no ownership, so it opens beside the
    /// store that owns the file.
    ///
    /// # Errors
    ///
    /// [`StoreError::SchemaTooNew`] for a file of a newer version;
    /// [`StoreError::Backend`] if the file does not exist, is not a
    /// SQLite database, or holds no journal.
    pub fn open_read_only(path: impl AsRef<Path>) -> Result<SqliteStore, StoreError> {
        let path = path.as_ref();
        check_directory(path)?;
        let name = path.display().to_string();
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let writer = connect(path, flags, &name)?;
        Self::start(
            writer,
            || connect(path, flags, &name),
            Access::ReadOnly,
            Setup {
                name: name.clone(),
                options: SqliteOptions::default(),
                files: Vec::new(),
                owner: None,
                location: (path.to_path_buf(), flags),
            },
        )
    }

    /// A store in memory, gone when it is dropped: for tests that want the
    /// SQLite code path without a file. It is not in WAL mode (SQLite's
    /// in-memory databases have no WAL), so reads and commits take turns.
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] if SQLite cannot create the database.
    pub fn open_in_memory() -> Result<SqliteStore, StoreError> {
        // Two connections can share an in-memory database only through the
        // `memdb` VFS with a name starting with '/', unique per store.
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let uri = format!(
            "file:/workflow-store-{}-{}?vfs=memdb",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_URI
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let name = ":memory:".to_string();
        let writer = connect(Path::new(&uri), flags, &name)?;
        Self::start(
            writer,
            || connect(Path::new(&uri), flags, &name),
            Access::ReadWrite,
            Setup {
                name: name.clone(),
                options: SqliteOptions::default(),
                files: Vec::new(),
                owner: None,
                location: (PathBuf::from(&uri), flags),
            },
        )
    }

    /// How many transactions the writer has committed so far. With group
    /// commit this grows more slowly than the number of appends when they
    /// are concurrent; tests and benchmarks use it to see batches form.
    pub fn commits(&self) -> u64 {
        self.commits.load(Ordering::Relaxed)
    }

    /// Prepares the file through the writer connection, opens the reader
    /// (only after the tables exist, so its statements can be checked), and
    /// starts the writer thread.
    fn start(
        mut writer: Connection,
        reader: impl FnOnce() -> Result<Connection, StoreError>,
        access: Access,
        setup: Setup,
    ) -> Result<SqliteStore, StoreError> {
        let Setup {
            name,
            options,
            files,
            owner,
            location,
        } = setup;
        prepare_file(&mut writer, access, &name)?;
        if access == Access::ReadWrite {
            writer
                .pragma_update(None, "wal_autocheckpoint", options.checkpoint_pages)
                .map_err(|e| backend(&name, "cannot configure the writer", e))?;
        }
        let reader = reader()?;
        // A second guard against writing through the read path.
        reader
            .pragma_update(None, "query_only", true)
            .map_err(|e| backend(&name, "cannot configure the reader", e))?;
        for sql in [OPEN_ROWS, FIND_INSTANCE, ROW_AT] {
            reader
                .prepare_cached(sql)
                .map_err(|e| backend(&name, "the journal table does not have the expected columns", e))?;
        }

        let commits = Arc::new(AtomicU64::new(0));
        let (requests, queue) = mpsc::channel();
        let writer = Writer {
            conn: writer,
            commits: Arc::clone(&commits),
            name: name.clone(),
            checkpoint_every: options.checkpoint_every,
            files,
            gone: None,
        };
        let writer = std::thread::Builder::new()
            .name("workflow-sqlite-writer".into())
            .spawn(move || writer.run(queue))
            .map_err(|e| StoreError::Backend(format!("{name}: cannot start the writer thread: {e}")))?;
        Ok(SqliteStore {
            requests: Some(requests),
            writer: Some(writer),
            reader: Arc::new(Mutex::new(reader)),
            commits,
            name,
            max_row: options.max_row_bytes,
            _owner: owner,
            location,
        })
    }

    /// Copies the store, as it stands at the call, into a new file at `dest`
    /// through SQLite's online backup API: a consistent copy of every
    /// committed row (those still in the WAL included), taken while the
    /// store goes on writing. The copy is a store file like any other: open
    /// it with [`open`](Self::open) to read or resume from it. This is how to
    /// back a store up; copying the file alone misses what is only in its
    /// `-wal` file, and copying both while the store runs can catch them out
    /// of step.
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] if `dest` already exists (a backup never
    /// overwrites a file) or cannot be written.
    pub async fn backup_to(&self, dest: impl AsRef<Path>) -> Result<(), StoreError> {
        let dest = dest.as_ref().to_path_buf();
        if dest.exists() {
            return Err(StoreError::Backend(format!(
                "{}: cannot back up to {}: the file already exists",
                self.name,
                dest.display()
            )));
        }
        check_directory(&dest)?;
        self.read(move |conn| {
            let mut copy = Connection::open(&dest)?;
            // One step of every page: the copy is read in one read
            // transaction, a snapshot that commits meanwhile do not restart.
            rusqlite::backup::Backup::new(conn, &mut copy)?.step(-1)?;
            Ok(())
        })
        .await
    }

    /// Runs `read` on the reader connection, on tokio's blocking pool when
    /// there is a runtime (so a long scan does not stall the async workers),
    /// inline otherwise (so the store works under any executor).
    async fn read<T: Send + 'static>(
        &self,
        read: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, StoreError> {
        let reader = Arc::clone(&self.reader);
        let name = self.name.clone();
        let run = move || {
            // A panic while the lock was held cannot leave the connection
            // half-changed: reads change nothing.
            let reader = reader.lock().unwrap_or_else(PoisonError::into_inner);
            read(&reader).map_err(|e| backend(&name, "read failed", e))
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => runtime
                .spawn_blocking(run)
                .await
                .map_err(|e| StoreError::Backend(format!("{}: read failed: {e}", self.name)))?,
            Err(_) => run(),
        }
    }
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore")
            .field("file", &self.name)
            .field("commits", &self.commits())
            .finish_non_exhaustive()
    }
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        // Closing the channel ends the writer's loop once it has written
        // what is queued; joining makes sure it has.
        drop(self.requests.take());
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn append(&self, workflow: &str, row: Row) -> Result<(), StoreError> {
        let stopped = || StoreError::Backend(format!("{}: the writer thread has stopped", self.name));
        let size = row.data.len() + row.instance.len() + workflow.len();
        if size > self.max_row {
            return Err(StoreError::RowTooLarge {
                instance: row.instance,
                seq: row.seq,
                size,
                limit: self.max_row,
            });
        }
        let (reply, answer) = oneshot::channel();
        let request = Request {
            workflow: workflow.to_string(),
            row,
            reply,
        };
        self.requests
            .as_ref()
            .ok_or_else(stopped)?
            .send(request)
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }

    async fn open_rows(&self, workflow: &str) -> Result<Vec<Result<Row, StoreError>>, StoreError> {
        let workflow = workflow.to_string();
        self.read(move |conn| {
            let all_at_once = || -> rusqlite::Result<Vec<Result<Row, StoreError>>> {
                let mut statement = conn.prepare_cached(OPEN_ROWS)?;
                let mut rows = statement.query(params![workflow])?;
                let mut open = Vec::new();
                while let Some(row) = rows.next()? {
                    open.push(open_row(row)?);
                }
                Ok(open)
            };
            match all_at_once() {
                Err(error) if error.sqlite_error_code() == Some(ErrorCode::DatabaseCorrupt) => {
                    salvage_open_rows(conn, &workflow)
                }
                result => result,
            }
        })
        .await
    }

    async fn journal(&self, workflow: &str, instance: &str) -> Result<Vec<Row>, StoreError> {
        let workflow = workflow.to_string();
        let instance = instance.to_string();
        self.read(move |conn| walk_back(conn, &workflow, &instance)).await?
    }

    async fn define(&self, definition: &Definition) -> Result<(), StoreError> {
        let (path, flags) = self.location.clone();
        let name = self.name.clone();
        let definition = definition.clone();
        let write = move || -> Result<(), StoreError> {
            let conn = connect(&path, flags, &name)?;
            let first_seen = i64::try_from(definition.first_seen).unwrap_or(i64::MAX);
            conn.execute(
                DEFINE,
                params![
                    definition.workflow,
                    definition.fingerprint,
                    definition.graph,
                    definition.context,
                    first_seen
                ],
            )
            .map_err(|e| backend(&name, "cannot write the workflow's definition", e))?;
            Ok(())
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => runtime
                .spawn_blocking(write)
                .await
                .map_err(|e| StoreError::Backend(format!("{}: cannot write the definition: {e}", self.name)))?,
            Err(_) => write(),
        }
    }
}

/// One open instance's newest row from a row of [`OPEN_ROWS`] or
/// [`OPEN_ROW`], or what is wrong with it, by its id.
fn open_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Result<Row, StoreError>> {
    let entry_seq = integer(row.get_ref(6)?).and_then(|s| u64::try_from(s).ok());
    let instance = match row.get_ref(0)? {
        ValueRef::Text(id) => match std::str::from_utf8(id) {
            Ok(id) => id.to_string(),
            // Under another id it would resume as another instance: report
            // it by its bytes instead.
            Err(_) => {
                return Ok(Err(StoreError::Corrupt {
                    instance: id.escape_ascii().to_string(),
                    seq: entry_seq.unwrap_or(0),
                    reason: "its id is not valid UTF-8 (shown with its bytes escaped)".into(),
                }))
            }
        },
        ValueRef::Blob(id) => {
            return Ok(Err(StoreError::Corrupt {
                instance: id.escape_ascii().to_string(),
                seq: entry_seq.unwrap_or(0),
                reason: "its id is a blob, not text (shown with its bytes escaped)".into(),
            }))
        }
        _ => {
            return Ok(Err(StoreError::Corrupt {
                instance: String::new(),
                seq: entry_seq.unwrap_or(0),
                reason: "an entry of table `instances` has no id".into(),
            }))
        }
    };
    let corrupt = |seq: u64, reason: &str| {
        Ok(Err(StoreError::Corrupt {
            instance: instance.clone(),
            seq,
            reason: reason.into(),
        }))
    };
    let Some(seq) = entry_seq else {
        return corrupt(0, "its entry in table `instances` is unreadable");
    };
    if integer(row.get_ref(7)?) != Some(1) {
        return corrupt(
            seq,
            "its newest row is missing: its entry in table `instances` points to no row",
        );
    }
    if integer(row.get_ref(5)?) != Some(1) {
        return corrupt(
            seq,
            "its entry in table `instances` points to another row (another instance's, or another number)",
        );
    }
    let (read, damaged) = read_row(row, 8);
    if damaged {
        return corrupt(seq, "a value of its newest row has the wrong type");
    }
    Ok(Ok(read))
}

/// The open rows of a file with damaged pages, read entry by entry: every
/// instance whose entry and newest row can still be read comes back, each
/// one whose newest row cannot is reported by id, and a damaged page of
/// `instances` itself, whose entries cannot be named, is one error without
/// an id.
fn salvage_open_rows(conn: &Connection, workflow: &str) -> rusqlite::Result<Vec<Result<Row, StoreError>>> {
    // From the front until the damage, then from the back until the damage
    // (or the entries already read).
    let mut entries = Vec::new();
    let hidden = match scan_entries(conn, OPEN_ENTRIES, workflow, &mut entries) {
        Ok(()) => None,
        Err(_) => scan_entries(conn, OPEN_ENTRIES_BACK, workflow, &mut entries).err(),
    };
    let mut open = Vec::with_capacity(entries.len() + 1);
    let mut statement = conn.prepare(OPEN_ROW)?;
    for Entry {
        id,
        newest,
        seq,
        open: entry_open,
    } in entries
    {
        let seq_number = integer((&seq).into()).and_then(|s| u64::try_from(s).ok()).unwrap_or(0);
        let Ok(instance) = String::from_utf8(id.clone()) else {
            open.push(Err(StoreError::Corrupt {
                instance: id.escape_ascii().to_string(),
                seq: seq_number,
                reason: "its id is not valid UTF-8 (shown with its bytes escaped)".into(),
            }));
            continue;
        };
        let read = statement.query_row(params![workflow, instance, newest, seq, entry_open], open_row);
        open.push(match read {
            Ok(row) => row,
            Err(error) => Err(StoreError::Corrupt {
                instance,
                seq: seq_number,
                reason: format!("its newest row cannot be read: {error}"),
            }),
        });
    }
    if let Some(error) = hidden {
        open.push(Err(StoreError::Backend(format!(
            "part of table `instances` cannot be read ({error}): the instances listed there cannot be named"
        ))));
    }
    Ok(open)
}

/// An entry of `instances` as stored, values unchecked: what the salvage
/// reads first, then joins to its row.
struct Entry {
    id: Vec<u8>,
    newest: Value,
    seq: Value,
    open: Value,
}

/// Adds the open entries that `sql` lists to `entries`, until the first one
/// already there; an `Err` where it meets a damaged page.
fn scan_entries(conn: &Connection, sql: &str, workflow: &str, entries: &mut Vec<Entry>) -> rusqlite::Result<()> {
    let seen: std::collections::HashSet<Vec<u8>> = entries.iter().map(|e| e.id.clone()).collect();
    let mut statement = conn.prepare(sql)?;
    let mut rows = statement.query(params![workflow])?;
    while let Some(row) = rows.next()? {
        let id = match row.get_ref(0)? {
            ValueRef::Text(id) | ValueRef::Blob(id) => id.to_vec(),
            _ => Vec::new(),
        };
        if seen.contains(&id) {
            break;
        }
        entries.push(Entry {
            id,
            newest: row.get(1)?,
            seq: row.get(2)?,
            open: row.get(3)?,
        });
    }
    Ok(())
}

/// One instance's journal, read from its newest row back along the `prev`
/// links, then put oldest first. Rows whose values are garbled come back as
/// they are (their checksum then fails); a broken chain (a link to a missing
/// row, to another instance's row, or not to an older row) is
/// [`StoreError::Corrupt`], rather than a journal silently cut short.
pub(crate) fn walk_back(
    conn: &Connection,
    workflow: &str,
    instance: &str,
) -> rusqlite::Result<Result<Vec<Row>, StoreError>> {
    let entry = conn
        .prepare_cached(FIND_INSTANCE)?
        .query_row(params![workflow, instance], |r| {
            Ok((integer(r.get_ref(0)?), integer(r.get_ref(1)?)))
        })
        .optional()?;
    let Some((newest, stored_seq)) = entry else {
        return Ok(Ok(Vec::new()));
    };
    let stored_seq = stored_seq.and_then(|s| u64::try_from(s).ok()).unwrap_or(0);
    let corrupt = |seq: u64, reason: &str| StoreError::Corrupt {
        instance: instance.to_string(),
        seq,
        reason: reason.to_string(),
    };
    let Some(mut at) = newest else {
        return Ok(Err(corrupt(
            stored_seq,
            "the instance's entry does not say where its newest row is",
        )));
    };
    let mut statement = conn.prepare_cached(ROW_AT)?;
    let mut rows = Vec::with_capacity(usize::try_from(stored_seq).unwrap_or(0).min(1024));
    loop {
        // The number the row should have, for messages.
        let seq = stored_seq.saturating_sub(rows.len() as u64);
        let found = statement
            .query_row([at], |r| {
                let text = |index: usize, expected: &str| {
                    matches!(r.get_ref(index), Ok(ValueRef::Text(t)) if t == expected.as_bytes())
                };
                let owned = text(6, workflow) && text(0, instance);
                let (mut row, damaged) = read_row(r, 7);
                if damaged {
                    // Garbled values read as a row whose checksum fails.
                    row.checksum = !crc32fast::hash(&row.data);
                }
                Ok((row, owned, prev_link(r.get_ref(5)?)))
            })
            .optional()?;
        let Some((row, owned, prev)) = found else {
            return Ok(Err(corrupt(seq, "the row is missing")));
        };
        if !owned {
            return Ok(Err(corrupt(seq, "the link to the row leads to another instance's row")));
        }
        rows.push(row);
        match prev {
            Link::None => break,
            Link::To(prev) if prev < at => at = prev,
            Link::To(_) | Link::Garbled => {
                return Ok(Err(corrupt(seq, "the row's link to the one before it is broken")));
            }
        }
    }
    rows.reverse();
    Ok(Ok(rows))
}

/// A journal row's `prev`.
enum Link {
    /// NULL: the instance's first row.
    None,
    To(i64),
    Garbled,
}

fn prev_link(value: ValueRef<'_>) -> Link {
    match value {
        ValueRef::Null => Link::None,
        ValueRef::Integer(id) => Link::To(id),
        _ => Link::Garbled,
    }
}

/// An SQLite integer, or `None` for a value of another type.
fn integer(value: ValueRef<'_>) -> Option<i64> {
    match value {
        ValueRef::Integer(v) => Some(v),
        _ => None,
    }
}

/// SQLite's own message for a missing directory is "unable to open database
/// file"; say which directory instead.
fn check_directory(path: &Path) -> Result<(), StoreError> {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() && !dir.is_dir() => Err(StoreError::Backend(format!(
            "cannot open {}: the directory {} does not exist",
            path.display(),
            dir.display()
        ))),
        _ => Ok(()),
    }
}

fn connect(path: &Path, flags: OpenFlags, name: &str) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(path, flags).map_err(|e| backend(name, "cannot open", e))?;
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(|e| backend(name, "cannot set the busy timeout", e))?;
    Ok(conn)
}

/// Checks the schema version before changing anything, then (read-write)
/// switches to WAL and creates the tables.
fn prepare_file(conn: &mut Connection, access: Access, name: &str) -> Result<(), StoreError> {
    // The first read is where SQLite finds out the file is not a database.
    let found = read_version(conn, name)?;
    check_version(found, access, name)?;
    if access == Access::ReadOnly {
        return Ok(());
    }
    // SQLite quietly opens a file it may not write read-only; refuse it now
    // rather than at the first append.
    if conn.is_readonly("main").unwrap_or(false) {
        return Err(StoreError::Backend(format!(
            "cannot open {name} for writing: the file is read-only"
        )));
    }

    if found.is_none() {
        // Only a file with no page yet takes a page size (in WAL mode it is
        // fixed for good once the first page is written).
        conn.pragma_update(None, "page_size", PAGE_SIZE)
            .map_err(|e| backend(name, "cannot set the page size", e))?;
    }
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
        .map_err(|e| backend(name, "cannot switch to WAL mode", e))?;
    // In-memory databases have no WAL and say "memory"; a file must be WAL.
    if !mode.eq_ignore_ascii_case("wal") && !mode.eq_ignore_ascii_case("memory") {
        return Err(StoreError::Backend(format!(
            "{name}: cannot switch to WAL mode (journal mode is {mode})"
        )));
    }
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(|e| backend(name, "cannot set synchronous=FULL", e))?;
    for (pragma, value) in [
        ("cache_size", -WRITER_CACHE_KIB),
        ("journal_size_limit", WAL_SIZE_LIMIT),
    ] {
        conn.pragma_update(None, pragma, value)
            .map_err(|e| backend(name, "cannot configure the writer", e))?;
    }

    // Immediate, so that two processes creating the same file take turns,
    // and the version read back is the one that counts.
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(|e| backend(name, "cannot write the schema", e))?;
    let found = read_version(&tx, name)?;
    if found == Some(SCHEMA_V1) {
        tx.execute_batch(UPGRADE_V1)
            .map_err(|e| backend(name, "cannot upgrade the file from schema 1 to 2", e))?;
        fill_v1_summaries(&tx).map_err(|e| backend(name, "cannot upgrade the file from schema 1 to 2", e))?;
    }
    tx.execute_batch(CREATE_SCHEMA)
        .map_err(|e| backend(name, "cannot create the tables", e))?;
    tx.execute_batch(CREATE_V2_EXTRAS)
        .map_err(|e| backend(name, "cannot create the tables", e))?;
    tx.execute(WRITE_VERSION, params![SCHEMA_VERSION])
        .map_err(|e| backend(name, "cannot write the schema version", e))?;
    let found = read_version(&tx, name)?;
    check_version(found, access, name)?;
    // Checks the tables' columns before committing anything (a file with
    // tables of another shape is left as it was), and fills the cache.
    for sql in WRITER_STATEMENTS {
        tx.prepare_cached(sql)
            .map_err(|e| backend(name, "the tables do not have the expected columns", e))?;
    }
    tx.commit().map_err(|e| backend(name, "cannot write the schema", e))?;
    Ok(())
}

/// Fills, in a file upgraded from schema 1, each instance's state and status from its newest
/// row, where that row is plain JSON (not sealed by a codec) with a status and one active state
/// or a transition's target; the rest stays NULL (unknown), and so do all times, which schema 1
/// did not keep.
fn fill_v1_summaries(tx: &Connection) -> rusqlite::Result<()> {
    let mut read =
        tx.prepare("SELECT i.workflow, i.instance, j.data FROM instances AS i JOIN journal AS j ON j.id = i.newest")?;
    let mut update =
        tx.prepare("UPDATE instances SET state = ?3, status = ?4 WHERE workflow = ?1 AND instance = ?2")?;
    let mut rows = read.query([])?;
    while let Some(row) = rows.next()? {
        // As text: bound as the bytes they are, they would match no key.
        let (ValueRef::Text(workflow), ValueRef::Text(instance)) = (row.get_ref(0)?, row.get_ref(1)?) else {
            continue;
        };
        let (Ok(workflow), Ok(instance)) = (std::str::from_utf8(workflow), std::str::from_utf8(instance)) else {
            continue;
        };
        let data = match row.get_ref(2)? {
            ValueRef::Blob(data) | ValueRef::Text(data) => data,
            _ => continue,
        };
        let Some((state, status)) = crate::journal::plain_summary(data) else {
            continue;
        };
        update.execute(params![workflow, instance, state, status.map(InstanceStatus::code)])?;
    }
    Ok(())
}

/// The file's schema version: `None` for a file without one (new or empty).
fn read_version(conn: &Connection, name: &str) -> Result<Option<i64>, StoreError> {
    let has_meta: bool = conn
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta')",
            [],
            |row| row.get(0),
        )
        .map_err(|e| backend(name, "cannot read the file", e))?;
    if !has_meta {
        return Ok(None);
    }
    let value = conn
        .query_row(READ_VERSION, [], |row| row.get::<_, rusqlite::types::Value>(0))
        .optional()
        .map_err(|e| backend(name, "cannot read the schema version", e))?;
    match value {
        None => Ok(None),
        Some(rusqlite::types::Value::Integer(version)) => Ok(Some(version)),
        Some(other) => Err(StoreError::Backend(format!(
            "{name}: the schema version is not an integer ({other:?})"
        ))),
    }
}

fn check_version(found: Option<i64>, access: Access, name: &str) -> Result<(), StoreError> {
    match found {
        Some(SCHEMA_VERSION) => Ok(()),
        // Upgraded in place by a store that may write it (`prepare_file`).
        Some(SCHEMA_V1) if access == Access::ReadWrite => Ok(()),
        Some(SCHEMA_V1) => Err(StoreError::Backend(format!(
            "{name}: the file has schema version 1; open it once for writing (SqliteStore::open, \
             which upgrades it in place to version {SCHEMA_VERSION}) before reading it read-only"
        ))),
        Some(found) if found > SCHEMA_VERSION => Err(StoreError::SchemaTooNew {
            found,
            supported: SCHEMA_VERSION,
        }),
        Some(found) => Err(StoreError::Backend(format!("{name}: unknown schema version {found}"))),
        // A new file gets its schema, unless it may not be written.
        None if access == Access::ReadWrite => Ok(()),
        None => Err(StoreError::Backend(format!(
            "{name}: not a workflow store (no schema version in table `meta`)"
        ))),
    }
}

fn backend(name: &str, what: &str, error: rusqlite::Error) -> StoreError {
    StoreError::Backend(format!("{name}: {what}: {error}"))
}

/// The writer thread's state: the connection that writes, and what it
/// watches besides the queue.
struct Writer {
    conn: Connection,
    commits: Arc<AtomicU64>,
    name: String,
    /// The time bound of the checkpoint schedule.
    checkpoint_every: Duration,
    /// The store file and its lock file as opened (none in memory).
    files: Vec<FileIdentity>,
    /// Set once the file was found deleted or replaced: every later append
    /// gets it, and nothing more is written.
    gone: Option<StoreError>,
}

impl Writer {
    /// One transaction per batch of queued appends, until the store is
    /// dropped and the queue is empty; a checkpoint whenever the time bound
    /// has passed with something committed, and a last one at the end.
    fn run(mut self, queue: Receiver<Request>) {
        let mut batch: Vec<Request> = Vec::with_capacity(MAX_BATCH);
        let mut outcomes: Vec<Outcome> = Vec::with_capacity(MAX_BATCH);
        let mut last_checkpoint = Instant::now();
        let mut unsaved = false;
        loop {
            // `recv` still hands out what was queued after the store let go
            // of the sender, and fails only once the queue is empty too.
            let first = if unsaved {
                match queue.recv_timeout(self.checkpoint_every.saturating_sub(last_checkpoint.elapsed())) {
                    Ok(request) => request,
                    Err(RecvTimeoutError::Timeout) => {
                        self.checkpoint("PASSIVE");
                        (last_checkpoint, unsaved) = (Instant::now(), false);
                        continue;
                    }
                    Err(RecvTimeoutError::Disconnected) => break,
                }
            } else {
                match queue.recv() {
                    Ok(request) => request,
                    Err(_) => break,
                }
            };
            batch.push(first);
            while batch.len() < MAX_BATCH {
                match queue.try_recv() {
                    Ok(request) => batch.push(request),
                    Err(_) => break,
                }
            }
            self.commit(&mut batch, &mut outcomes);
            unsaved = true;
            if last_checkpoint.elapsed() >= self.checkpoint_every {
                self.checkpoint("PASSIVE");
                (last_checkpoint, unsaved) = (Instant::now(), false);
            }
        }
        // The main file alone holds everything, and the WAL is emptied.
        self.checkpoint("TRUNCATE");
    }

    /// Copies what the WAL holds into the main file. A checkpoint that fails
    /// or cannot finish (a reader on an old snapshot) leaves the rows in the
    /// WAL, durable still; the next one tries again.
    fn checkpoint(&self, mode: &str) {
        if self.gone.is_some() {
            return;
        }
        let done = self
            .conn
            .query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |r| r.get::<_, i64>(0));
        if let Err(error) = done {
            tracing::warn!(file = %self.name, %error, "WAL checkpoint failed");
        }
    }

    /// Whether the store file and its lock file are still the ones opened;
    /// once either is not, every later call fails the same.
    fn verify(&mut self) -> Result<(), StoreError> {
        if let Some(gone) = &self.gone {
            return Err(gone.clone());
        }
        let changed = self.files.iter().find_map(|file| Some((file, file.check().err()?)));
        let Some((file, reason)) = changed else {
            return Ok(());
        };
        let gone = StoreError::FileReplaced {
            file: file.path.display().to_string(),
            reason,
        };
        self.gone = Some(gone.clone());
        Err(gone)
    }

    /// Writes one batch and answers each of its appends.
    fn commit(&mut self, batch: &mut Vec<Request>, outcomes: &mut Vec<Outcome>) {
        // Checked before writing (a store whose lock file is gone may no
        // longer own the file: it writes nothing) and after committing
        // (rows committed to a file deleted meanwhile are seen by no one, so
        // they are not acknowledged).
        let written = self.verify().and_then(|()| {
            let name = &self.name;
            write_with_retry(&mut self.conn, batch, outcomes, false)
                .or_else(|error| {
                    // Something in the batch failed it: write it again with
                    // each row isolated, so only that row's append fails.
                    if batch.len() > 1 && !is_busy(&error) {
                        write_with_retry(&mut self.conn, batch, outcomes, true)
                    } else {
                        Err(error)
                    }
                })
                .map_err(|e| backend(name, "cannot write", e))
        });
        let written = written.and_then(|()| {
            self.commits.fetch_add(1, Ordering::Relaxed);
            self.verify()
        });
        if let Err(error) = written {
            for request in batch.drain(..) {
                let _ = request.reply.send(Err(error.clone()));
            }
            return;
        }
        let name = &self.name;
        for (request, outcome) in batch.drain(..).zip(outcomes.drain(..)) {
            let answer = match outcome {
                Outcome::Stored => Ok(()),
                Outcome::Conflict => Err(StoreError::Conflict {
                    instance: request.row.instance,
                    seq: request.row.seq,
                }),
                Outcome::Unreadable => Err(StoreError::Corrupt {
                    seq: request.row.seq.saturating_sub(1),
                    instance: request.row.instance,
                    reason: "its entry in table `instances` is unreadable".into(),
                }),
                Outcome::SeqTooLarge => Err(StoreError::Backend(format!(
                    "{name}: instance `{}`: seq {} is too large to store",
                    request.row.instance, request.row.seq
                ))),
                Outcome::Failed(error) => Err(StoreError::Backend(format!(
                    "{name}: instance `{}`: cannot write row {}: {error}",
                    request.row.instance, request.row.seq
                ))),
            };
            // The appender may have given up waiting; nothing to do.
            let _ = request.reply.send(answer);
        }
    }
}

/// A file a store opened, as the operating system knows it (device and
/// inode on Unix): a file deleted, or replaced by another under the same
/// name, no longer matches.
struct FileIdentity {
    path: PathBuf,
    #[cfg(unix)]
    id: (u64, u64),
}

impl FileIdentity {
    fn of(path: &Path) -> std::io::Result<FileIdentity> {
        #[cfg(unix)]
        let id = {
            use std::os::unix::fs::MetadataExt;
            let meta = std::fs::metadata(path)?;
            (meta.dev(), meta.ino())
        };
        Ok(FileIdentity {
            path: path.to_path_buf(),
            #[cfg(unix)]
            id,
        })
    }

    /// Whether the path still leads to the file opened: one `stat`, twice
    /// per file and batch. `Err` says what became of it.
    fn check(&self) -> Result<(), String> {
        match FileIdentity::of(&self.path) {
            #[cfg(unix)]
            Ok(now) if now.id != self.id => Err("was replaced by another file".into()),
            Ok(_) => Ok(()),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Err("was deleted".into()),
            Err(error) => Err(format!("can no longer be found ({error})")),
        }
    }
}

fn is_busy(error: &rusqlite::Error) -> bool {
    matches!(
        error.sqlite_error_code(),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
    )
}

/// Retries a batch that finds the file locked (SQLite's busy timeout has
/// already waited once per statement) until [`BUSY_RETRY_FOR`] has passed.
fn write_with_retry(
    conn: &mut Connection,
    batch: &[Request],
    outcomes: &mut Vec<Outcome>,
    isolated: bool,
) -> rusqlite::Result<()> {
    let started = Instant::now();
    loop {
        match write_batch(conn, batch, outcomes, isolated) {
            Err(error) if is_busy(&error) && started.elapsed() < BUSY_RETRY_FOR => {
                std::thread::sleep(Duration::from_millis(10));
            }
            result => return result,
        }
    }
}

/// Writes the batch in one transaction; on error the transaction rolls back
/// (on drop) and no row of the batch is stored. `isolated` puts each row in
/// its own savepoint, so that a row SQLite refuses is rolled back alone
/// (the second try of a batch that failed whole).
fn write_batch(
    conn: &mut Connection,
    batch: &[Request],
    outcomes: &mut Vec<Outcome>,
    isolated: bool,
) -> rusqlite::Result<()> {
    outcomes.clear();
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    {
        let mut statements = Statements {
            find: tx.prepare_cached(FIND_INSTANCE)?,
            insert_row: tx.prepare_cached(INSERT_ROW)?,
            add: tx.prepare_cached(ADD_INSTANCE)?,
            advance: tx.prepare_cached(ADVANCE_INSTANCE)?,
            advance_state: tx.prepare_cached(ADVANCE_STATE)?,
            advance_same: tx.prepare_cached(ADVANCE_SAME)?,
        };
        for request in batch {
            if !isolated {
                outcomes.push(statements.append(&tx, &request.workflow, &request.row)?);
                continue;
            }
            tx.execute_batch("SAVEPOINT row")?;
            match statements.append(&tx, &request.workflow, &request.row) {
                Ok(outcome) => {
                    tx.execute_batch("RELEASE row")?;
                    outcomes.push(outcome);
                }
                Err(error) => {
                    // Fails if SQLite rolled the whole transaction back
                    // (a full disk, an I/O error): then the batch fails.
                    tx.execute_batch("ROLLBACK TO row; RELEASE row")?;
                    outcomes.push(Outcome::Failed(error.to_string()));
                }
            }
        }
    }
    tx.commit()
}

/// The writer's statements, prepared once per batch (from the cache).
struct Statements<'conn> {
    find: rusqlite::CachedStatement<'conn>,
    insert_row: rusqlite::CachedStatement<'conn>,
    add: rusqlite::CachedStatement<'conn>,
    advance: rusqlite::CachedStatement<'conn>,
    advance_state: rusqlite::CachedStatement<'conn>,
    advance_same: rusqlite::CachedStatement<'conn>,
}

/// Every statement the writer runs, checked when the file is opened.
const WRITER_STATEMENTS: [&str; 6] = [
    FIND_INSTANCE,
    INSERT_ROW,
    ADD_INSTANCE,
    ADVANCE_INSTANCE,
    ADVANCE_STATE,
    ADVANCE_SAME,
];

impl Statements<'_> {
    /// Appends one row if it is the next of its instance: 1 for an instance
    /// not stored yet, else one more than its newest row. Anything else is
    /// refused before the row is written, and the rest of the batch goes on.
    fn append(&mut self, conn: &Connection, workflow: &str, row: &Row) -> rusqlite::Result<Outcome> {
        let Ok(seq) = i64::try_from(row.seq) else {
            return Ok(Outcome::SeqTooLarge);
        };
        let entry = self
            .find
            .query_row(params![workflow, row.instance], |r| {
                let same_state = match (r.get_ref(2)?, &row.summary.state) {
                    (ValueRef::Text(stored), Some(state)) => stored == state.as_bytes(),
                    (ValueRef::Null, None) => true,
                    _ => false,
                };
                Ok((
                    integer(r.get_ref(0)?),
                    integer(r.get_ref(1)?),
                    same_state,
                    integer(r.get_ref(3)?),
                ))
            })
            .optional()?;
        // The newest row's id, whether the step left the entry's state as it was, and the
        // entry's status (the update leaves alone what the step did not change).
        let prev = match entry {
            None if seq == 1 => None,
            None => return Ok(Outcome::Conflict),
            Some((Some(newest), Some(stored), state, status)) => {
                if stored.checked_add(1) != Some(seq) {
                    return Ok(Outcome::Conflict);
                }
                Some((newest, state, status))
            }
            Some(_) => return Ok(Outcome::Unreadable),
        };
        let Summary { at, state, status } = &row.summary;
        // A time past i64::MAX milliseconds is no time at all: stored as unknown.
        let at = at.and_then(|at| i64::try_from(at).ok());
        let status = status.map(InstanceStatus::code);
        self.insert_row.execute(params![
            workflow,
            row.instance,
            seq,
            row.open,
            i64::from(row.checksum),
            row.data,
            prev.as_ref().map(|p| p.0),
            at,
            state,
            status
        ])?;
        let id = conn.last_insert_rowid();
        let key = (workflow, &row.instance, id, seq, row.open, at);
        match prev {
            None => self
                .add
                .execute(params![key.0, key.1, key.2, key.3, key.4, state, status, at])?,
            Some((_, true, before_status)) if before_status == status => self
                .advance_same
                .execute(params![key.0, key.1, key.2, key.3, key.4, key.5])?,
            Some((_, _, before_status)) if before_status == status => self
                .advance_state
                .execute(params![key.0, key.1, key.2, key.3, key.4, key.5, state])?,
            Some(_) => self
                .advance
                .execute(params![key.0, key.1, key.2, key.3, key.4, key.5, state, status])?,
        };
        Ok(Outcome::Stored)
    }
}

/// Reads one row of `instance, seq, open, checksum, data` without failing,
/// and says whether a value had the wrong type: such a value reads as empty
/// or 0 (`open` as true: a damaged newest row must still reach recovery, to
/// be reported). Its summary's `at, state, status` are the columns from
/// `summary` on; a summary value of the wrong type reads as unknown (it is
/// no part of what the checksum guards).
fn read_row(row: &rusqlite::Row<'_>, summary: usize) -> (Row, bool) {
    let mut damaged = false;
    let value = |index: usize| row.get_ref(index).unwrap_or(ValueRef::Null);
    let mut integer = |index: usize| match value(index) {
        ValueRef::Integer(v) => Some(v),
        _ => {
            damaged = true;
            None
        }
    };
    let seq = integer(1).and_then(|v| u64::try_from(v).ok());
    let open = integer(2) != Some(0);
    let checksum = integer(3).and_then(|v| u32::try_from(v).ok());
    let instance = match value(0) {
        ValueRef::Text(text) | ValueRef::Blob(text) => String::from_utf8_lossy(text).into_owned(),
        _ => String::new(),
    };
    // Text is bytes too; whether they are the right ones is the checksum's
    // business.
    let data = match value(4) {
        ValueRef::Blob(bytes) | ValueRef::Text(bytes) => Some(bytes.to_vec()),
        _ => None,
    };
    let damaged = damaged || seq.is_none() || checksum.is_none() || data.is_none();
    let row = Row {
        instance,
        seq: seq.unwrap_or(0),
        open,
        checksum: checksum.unwrap_or(0),
        data: data.unwrap_or_default(),
        summary: Summary {
            at: match value(summary) {
                ValueRef::Integer(at) => u64::try_from(at).ok(),
                _ => None,
            },
            state: match value(summary + 1) {
                ValueRef::Text(state) => std::str::from_utf8(state).ok().map(str::to_string),
                _ => None,
            },
            status: match value(summary + 2) {
                ValueRef::Integer(code) => InstanceStatus::from_code(code),
                _ => None,
            },
        },
    };
    (row, damaged)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(instance: &str, seq: u64, open: bool) -> Row {
        let data = format!("{{\"{instance}\":{seq}}}").into_bytes();
        Row {
            instance: instance.to_string(),
            seq,
            open,
            checksum: crc32fast::hash(&data),
            data,
            summary: Default::default(),
        }
    }

    /// The open rows, every one of which must be readable.
    async fn readable(store: &SqliteStore, workflow: &str) -> Vec<Row> {
        let rows = store.open_rows(workflow).await.unwrap();
        rows.into_iter().collect::<Result<_, _>>().unwrap()
    }

    fn sorted(mut rows: Vec<Row>) -> Vec<Row> {
        rows.sort_by(|a, b| a.instance.cmp(&b.instance).then(a.seq.cmp(&b.seq)));
        rows
    }

    #[tokio::test]
    async fn round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path().join("j.db")).unwrap();
        for r in [
            row("a", 1, true),
            row("a", 2, true),
            row("b", 1, true),
            row("a", 3, true),
        ] {
            store.append("Order", r).await.unwrap();
        }
        store.append("Other", row("a", 1, true)).await.unwrap();

        assert_eq!(
            sorted(readable(&store, "Order").await),
            vec![row("a", 3, true), row("b", 1, true)]
        );
        assert_eq!(
            store.journal("Order", "a").await.unwrap(),
            vec![row("a", 1, true), row("a", 2, true), row("a", 3, true)]
        );
        assert_eq!(store.journal("Order", "nobody").await.unwrap(), vec![]);
        assert_eq!(readable(&store, "Nothing").await, vec![]);
        assert_eq!(readable(&store, "Other").await, vec![row("a", 1, true)]);
    }

    #[tokio::test]
    async fn conflict_fails_only_its_own_row() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path().join("j.db")).unwrap();
        store.append("Order", row("a", 1, true)).await.unwrap();

        // Queued together, so they land in one batch (the writer is idle and
        // takes whatever is queued when it wakes).
        let taken = Row {
            data: b"other".to_vec(),
            ..row("a", 1, true)
        };
        let (first, duplicate, second, in_batch_duplicate) = tokio::join!(
            store.append("Order", row("b", 1, true)),
            store.append("Order", taken),
            store.append("Order", row("c", 1, true)),
            store.append("Order", row("b", 1, false)),
        );
        assert_eq!(first, Ok(()));
        assert_eq!(
            duplicate,
            Err(StoreError::Conflict {
                instance: "a".into(),
                seq: 1
            })
        );
        assert_eq!(second, Ok(()));
        assert_eq!(
            in_batch_duplicate,
            Err(StoreError::Conflict {
                instance: "b".into(),
                seq: 1
            })
        );
        assert_eq!(store.journal("Order", "a").await.unwrap(), vec![row("a", 1, true)]);
        assert_eq!(
            sorted(readable(&store, "Order").await),
            vec![row("a", 1, true), row("b", 1, true), row("c", 1, true)]
        );
    }

    #[test]
    fn one_batch_commits_all_but_its_conflicts() {
        let mut conn = Connection::open_in_memory().unwrap();
        prepare_file(&mut conn, Access::ReadWrite, "test").unwrap();
        let request = |r: Row| Request {
            workflow: "Order".into(),
            row: r,
            reply: oneshot::channel().0,
        };
        let mut outcomes = Vec::new();
        write_batch(&mut conn, &[request(row("a", 1, true))], &mut outcomes, false).unwrap();
        let batch = [
            request(row("b", 1, true)),
            request(row("a", 1, false)),
            request(row("c", 1, true)),
            request(row("b", 1, false)),
            request(row("d", u64::MAX, true)),
            request(row("d", 1, true)),
            // Gaps: a new instance must start at 1, and each row must be the
            // next; two rows of one instance in a batch follow each other.
            request(row("e", 2, true)),
            request(row("a", 3, true)),
            request(row("a", 2, true)),
            request(row("a", 3, false)),
            request(row("a", 0, true)),
        ];
        write_batch(&mut conn, &batch, &mut outcomes, false).unwrap();
        let outcomes: Vec<&str> = outcomes
            .iter()
            .map(|o| match o {
                Outcome::Stored => "stored",
                Outcome::Conflict => "conflict",
                Outcome::Unreadable => "unreadable",
                Outcome::SeqTooLarge => "too large",
                Outcome::Failed(_) => "failed",
            })
            .collect();
        assert_eq!(
            outcomes,
            [
                "stored",
                "conflict",
                "stored",
                "conflict",
                "too large",
                "stored",
                "conflict",
                "conflict",
                "stored",
                "stored",
                "conflict"
            ]
        );
        let query = |sql: &str| -> Vec<(String, i64, bool)> {
            conn.prepare(sql)
                .unwrap()
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap()
        };
        let expected = [
            ("a", 1, true),
            ("a", 2, true),
            ("a", 3, false),
            ("b", 1, true),
            ("c", 1, true),
            ("d", 1, true),
        ];
        let stored = query("SELECT instance, seq, open FROM journal ORDER BY instance, seq");
        assert_eq!(stored, expected.map(|(i, s, o)| (i.to_string(), s, o)));
        // One entry per instance, for its newest row, which links back.
        let entries = query(
            "SELECT i.instance, i.seq, i.open FROM instances AS i JOIN journal AS j ON j.id = i.newest \
             WHERE j.instance = i.instance AND j.seq = i.seq ORDER BY i.instance",
        );
        let expected = [("a", 3, false), ("b", 1, true), ("c", 1, true), ("d", 1, true)];
        assert_eq!(entries, expected.map(|(i, s, o)| (i.to_string(), s, o)));
        let links: Vec<(i64, Option<i64>)> = conn
            .prepare("SELECT id, prev FROM journal WHERE instance = 'a' ORDER BY seq")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(links[0].1, None);
        assert_eq!(links[1].1, Some(links[0].0));
        assert_eq!(links[2].1, Some(links[1].0));
    }

    #[tokio::test]
    async fn closed_instances_are_not_open() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path().join("j.db")).unwrap();
        for r in [
            row("done", 1, true),
            row("done", 2, false),
            row("running", 1, true),
            row("running", 2, true),
            row("short", 1, false),
        ] {
            store.append("Order", r).await.unwrap();
        }
        assert_eq!(readable(&store, "Order").await, vec![row("running", 2, true)]);
        assert_eq!(store.journal("Order", "done").await.unwrap().len(), 2);
    }

    #[tokio::test]
    async fn data_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.db");
        {
            let store = SqliteStore::open(&path).unwrap();
            store.append("Order", row("a", 1, true)).await.unwrap();
            store.append("Order", row("a", 2, true)).await.unwrap();
        }
        let store = SqliteStore::open(&path).unwrap();
        assert_eq!(readable(&store, "Order").await, vec![row("a", 2, true)]);
        assert!(matches!(
            store.append("Order", row("a", 2, true)).await,
            Err(StoreError::Conflict { .. })
        ));
        store.append("Order", row("a", 3, false)).await.unwrap();
        assert_eq!(readable(&store, "Order").await, vec![]);
        assert_eq!(store.journal("Order", "a").await.unwrap().len(), 3);

        // The pragmas this store promises.
        let conn = Connection::open(&path).unwrap();
        let mode: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
        assert_eq!(mode, "wal");
        let version: i64 = conn.query_row(READ_VERSION, [], |r| r.get(0)).unwrap();
        assert_eq!(version, SCHEMA_VERSION);
    }

    #[tokio::test]
    async fn summaries_and_definitions_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.db");
        let store = SqliteStore::open(&path).unwrap();
        let summary = |at: u64, state: &str, status| Summary {
            at: Some(at),
            state: Some(state.into()),
            status: Some(status),
        };
        let first = Row {
            summary: summary(1_000, "Charging", InstanceStatus::Running),
            ..row("a", 1, true)
        };
        let second = Row {
            summary: summary(1_500, "Paid", InstanceStatus::Finished),
            ..row("a", 2, false)
        };
        store.append("Order", first.clone()).await.unwrap();
        store.append("Order", second.clone()).await.unwrap();
        assert_eq!(store.journal("Order", "a").await.unwrap(), vec![first, second]);
        let definition = Definition {
            workflow: "Order".into(),
            fingerprint: "f1".into(),
            graph: "Order\u{1f}0\n".into(),
            context: "u32".into(),
            first_seen: 900,
        };
        store.define(&definition).await.unwrap();
        // Once per fingerprint: the first-seen time stays.
        store
            .define(&Definition {
                first_seen: 2_000,
                ..definition.clone()
            })
            .await
            .unwrap();
        drop(store);
        let conn = Connection::open(&path).unwrap();
        let entry: (String, i64, i64, i64) = conn
            .query_row(
                "SELECT state, status, started, updated FROM instances WHERE instance = 'a'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .unwrap();
        assert_eq!(entry, ("Paid".into(), InstanceStatus::Finished.code(), 1_000, 1_500));
        let seen: i64 = conn
            .query_row("SELECT first_seen FROM definitions WHERE fingerprint = 'f1'", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(seen, 900);
    }

    #[tokio::test]
    async fn a_schema_1_file_is_upgraded_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v1.db");
        let plain = br#"{"v":1,"fingerprint":"f","step":{"kind":"transition","from":"A","event":"Go","to":"B"},"status":{"state":"running"},"active":["B"],"context":1,"generation":0}"#;
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(
                "CREATE TABLE meta (key TEXT PRIMARY KEY NOT NULL, value INTEGER NOT NULL) WITHOUT ROWID;
                 CREATE TABLE journal (id INTEGER PRIMARY KEY, workflow TEXT NOT NULL, instance TEXT NOT NULL,
                     seq INTEGER NOT NULL, open INTEGER NOT NULL, checksum INTEGER NOT NULL, data BLOB NOT NULL,
                     prev INTEGER);
                 CREATE TABLE instances (workflow TEXT NOT NULL, instance TEXT NOT NULL, newest INTEGER NOT NULL,
                     seq INTEGER NOT NULL, open INTEGER NOT NULL, PRIMARY KEY (workflow, instance)) WITHOUT ROWID;
                 INSERT INTO meta VALUES ('schema_version', 1);",
            )
            .unwrap();
            for (instance, data) in [("plain", &plain[..]), ("sealed", &b"\x00sealed bytes"[..])] {
                conn.execute(
                    "INSERT INTO journal (workflow, instance, seq, open, checksum, data, prev) VALUES ('Order', ?1, 1, 1, ?2, ?3, NULL)",
                    params![instance, crc32fast::hash(data), data],
                )
                .unwrap();
                conn.execute(
                    "INSERT INTO instances VALUES ('Order', ?1, last_insert_rowid(), 1, 1)",
                    params![instance],
                )
                .unwrap();
            }
        }
        // A reader may not upgrade it.
        let refused = SqliteStore::open_read_only(&path).unwrap_err();
        assert!(refused.to_string().contains("schema version 1"), "{refused}");

        let store = SqliteStore::open(&path).unwrap();
        assert_eq!(readable(&store, "Order").await.len(), 2, "the rows read as before");
        let rows = store.journal("Order", "plain").await.unwrap();
        assert_eq!(rows[0].summary, Summary::default(), "rows keep no summary of schema 1");

        let conn = Connection::open(&path).unwrap();
        let version: i64 = conn.query_row(READ_VERSION, [], |r| r.get(0)).unwrap();
        assert_eq!(version, SCHEMA_VERSION);
        // The state and status a plain row tells, nothing of a sealed one, no times.
        let entry = |id: &str| -> (Option<String>, Option<i64>, bool) {
            conn.query_row(
                "SELECT state, status, started IS NULL AND updated IS NULL FROM instances WHERE instance = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .unwrap()
        };
        assert_eq!(
            entry("plain"),
            (Some("B".into()), Some(InstanceStatus::Running.code()), true)
        );
        assert_eq!(entry("sealed"), (None, None, true));
        // And the store goes on writing.
        store.append("Order", row("plain", 2, true)).await.unwrap();
        drop(store);
        let indexes: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name LIKE '%_by_%'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(indexes, 3);
    }

    #[test]
    fn a_schema_1_instance_summary_is_filled_from_its_plain_row() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE journal (id INTEGER PRIMARY KEY, workflow TEXT, instance TEXT, data BLOB);
             CREATE TABLE instances (workflow TEXT, instance TEXT, newest INTEGER, state TEXT, status INTEGER);",
        )
        .unwrap();
        let plain = br#"{"v":1,"fingerprint":"f","step":{"kind":"transition","from":"A","event":"Go","to":"B"},"status":{"state":"failed","reason":"x"},"active":["B"],"context":1,"generation":0}"#;
        for (i, data) in [&plain[..], b"\x00sealed"].into_iter().enumerate() {
            conn.execute(
                "INSERT INTO journal VALUES (?1, 'W', ?3, ?2)",
                params![i as i64, data, format!("i{i}")],
            )
            .unwrap();
            conn.execute(
                "INSERT INTO instances VALUES ('W', ?2, ?1, NULL, NULL)",
                params![i as i64, format!("i{i}")],
            )
            .unwrap();
        }
        fill_v1_summaries(&conn).unwrap();
        let filled: Vec<(Option<String>, Option<i64>)> = conn
            .prepare("SELECT state, status FROM instances ORDER BY newest")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            filled,
            [(Some("B".into()), Some(InstanceStatus::Failed.code())), (None, None)]
        );
    }

    #[tokio::test]
    async fn vacuum_keeps_the_links() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.db");
        {
            let store = SqliteStore::open(&path).unwrap();
            for r in [
                row("gone", 1, true),
                row("a", 1, true),
                row("gone", 2, false),
                row("a", 2, true),
            ] {
                store.append("Order", r).await.unwrap();
            }
        }
        // Someone prunes a finished instance and compacts the file: VACUUM
        // may renumber an unnamed rowid, not a named one.
        Connection::open(&path)
            .unwrap()
            .execute_batch(
                "DELETE FROM journal WHERE instance = 'gone';
                 DELETE FROM instances WHERE instance = 'gone';
                 VACUUM;",
            )
            .unwrap();
        let store = SqliteStore::open(&path).unwrap();
        store.append("Order", row("a", 3, true)).await.unwrap();
        assert_eq!(
            store.journal("Order", "a").await.unwrap(),
            vec![row("a", 1, true), row("a", 2, true), row("a", 3, true)]
        );
        assert_eq!(readable(&store, "Order").await, vec![row("a", 3, true)]);
    }

    #[tokio::test]
    async fn writer_connection_syncs_fully() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = connect(
            &dir.path().join("j.db"),
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE,
            "test",
        )
        .unwrap();
        conn.pragma_update(None, "synchronous", "OFF").unwrap();
        prepare_file(&mut conn, Access::ReadWrite, "test").unwrap();
        let pragma = |name: &str| -> i64 { conn.query_row(&format!("PRAGMA {name}"), [], |r| r.get(0)).unwrap() };
        assert_eq!(pragma("synchronous"), 2, "FULL");
        assert_eq!(pragma("cache_size"), -WRITER_CACHE_KIB);
        assert_eq!(pragma("page_size"), PAGE_SIZE);
        assert_eq!(pragma("busy_timeout"), 5000);
    }

    #[tokio::test]
    async fn a_locked_file_is_waited_for() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.db");
        let store = SqliteStore::open(&path).unwrap();
        // Another process (here a connection) holds the write lock a while.
        let other = Connection::open(&path).unwrap();
        other.execute_batch("BEGIN IMMEDIATE").unwrap();
        let holder = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            other.execute_batch("COMMIT").unwrap();
        });
        let started = Instant::now();
        store.append("Order", row("a", 1, true)).await.unwrap();
        assert!(started.elapsed() >= Duration::from_millis(250));
        holder.join().unwrap();
        assert_eq!(store.journal("Order", "a").await.unwrap(), vec![row("a", 1, true)]);
    }

    #[tokio::test]
    async fn newer_schema_is_refused_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.db");
        drop(SqliteStore::open(&path).unwrap());
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute("UPDATE meta SET value = 3 WHERE key = 'schema_version'", [])
                .unwrap();
            // Back to a rollback journal, to see that `open` does not switch
            // it to WAL.
            conn.query_row("PRAGMA journal_mode = DELETE", [], |r| r.get::<_, String>(0))
                .unwrap();
        }
        let before = std::fs::read(&path).unwrap();
        assert_eq!(
            SqliteStore::open(&path).unwrap_err(),
            StoreError::SchemaTooNew { found: 3, supported: 2 }
        );
        assert_eq!(
            SqliteStore::open_read_only(&path).unwrap_err(),
            StoreError::SchemaTooNew { found: 3, supported: 2 }
        );
        assert!(std::fs::read(&path).unwrap() == before, "the file changed");
    }

    #[tokio::test]
    async fn not_a_database_is_a_backend_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notes.txt");
        let text = "not a database, just some text that is long enough to have a header\n".repeat(100);
        std::fs::write(&path, &text).unwrap();
        match SqliteStore::open(&path) {
            Err(StoreError::Backend(message)) => assert!(message.contains("not a database"), "{message}"),
            other => panic!("expected a backend error, got {other:?}"),
        }
        assert_eq!(std::fs::read_to_string(&path).unwrap(), text, "the file changed");
    }

    #[tokio::test]
    async fn missing_directory_is_a_backend_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing").join("j.db");
        match SqliteStore::open(&path) {
            Err(StoreError::Backend(message)) => assert!(message.contains("does not exist"), "{message}"),
            other => panic!("expected a backend error, got {other:?}"),
        }
        assert!(matches!(
            SqliteStore::open_read_only(dir.path().join("absent.db")),
            Err(StoreError::Backend(_))
        ));
    }

    #[tokio::test]
    async fn read_only_store_reads_but_refuses_appends() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.db");
        {
            let store = SqliteStore::open(&path).unwrap();
            store.append("Order", row("a", 1, true)).await.unwrap();
        }
        let store = SqliteStore::open_read_only(&path).unwrap();
        assert_eq!(readable(&store, "Order").await, vec![row("a", 1, true)]);
        match store.append("Order", row("a", 2, true)).await {
            Err(StoreError::Backend(message)) => assert!(message.contains("readonly"), "{message}"),
            other => panic!("expected a backend error, got {other:?}"),
        }
        assert_eq!(store.commits(), 0);
        assert_eq!(store.journal("Order", "a").await.unwrap(), vec![row("a", 1, true)]);

        // A plain SQLite file with no journal is not a store to read.
        let empty = dir.path().join("empty.db");
        Connection::open(&empty)
            .unwrap()
            .execute_batch("CREATE TABLE t (x)")
            .unwrap();
        assert!(matches!(
            SqliteStore::open_read_only(&empty),
            Err(StoreError::Backend(_))
        ));
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn read_only_file_fails_at_open() {
        use std::os::unix::fs::PermissionsExt;

        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("ro");
        std::fs::create_dir(&sub).unwrap();
        let path = sub.join("j.db");
        {
            let store = SqliteStore::open(&path).unwrap();
            store.append("Order", row("a", 1, true)).await.unwrap();
        }
        let set = |p: &Path, mode| std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
        set(&path, 0o444);
        set(&sub, 0o555);
        // Root (or CAP_DAC_OVERRIDE) writes through permissions: then this
        // case cannot be produced, and `read_only_store_reads_but_refuses_appends`
        // covers SQLite refusing the write.
        let privileged = std::fs::OpenOptions::new().append(true).open(&path).is_ok();
        let opened = SqliteStore::open(&path);
        set(&sub, 0o755);
        set(&path, 0o644);
        if privileged {
            eprintln!("note: running with permission to write read-only files; read-only file case not checked");
            return;
        }
        match opened {
            Err(StoreError::Backend(message)) => assert!(message.contains("read"), "{message}"),
            other => panic!("expected a backend error, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn unreadable_values_read_as_corrupt_rows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.db");
        let store = SqliteStore::open(&path).unwrap();
        store.append("Order", row("good", 1, true)).await.unwrap();
        {
            // Each garbled row is the newest (and only) row of its instance.
            let conn = Connection::open(&path).unwrap();
            for (instance, seq, open, checksum, data) in [
                ("int-data", "1", "1", "0", "42"),
                ("text-checksum", "1", "1", "'x'", "x'00'"),
                ("huge-checksum", "1", "1", "99999999999", "x'00'"),
                ("text-seq", "'one'", "1", "0", "x'00'"),
                ("real-open", "1", "0.5", "0", "x'00'"),
                ("text-open", "1", "'yes'", "0", "x'00'"),
                ("closed", "1", "0", "0", "x'00'"),
            ] {
                conn.execute_batch(&format!(
                    "INSERT INTO journal VALUES (NULL, 'Order', '{instance}', {seq}, {open}, {checksum}, {data}, NULL, NULL, NULL, NULL);
                     INSERT INTO instances VALUES ('Order', '{instance}', last_insert_rowid(), {seq}, {open}, NULL, NULL, NULL, NULL);"
                ))
                .unwrap();
            }
        }
        let mut rows = store.open_rows("Order").await.unwrap();
        rows.sort_by_key(|r| format!("{r:?}"));
        // Only a clean `open = 0` is finished; a garbled flag still reaches
        // recovery, reported as corrupt by id.
        let wrong_type = |instance: &str, seq: u64| {
            Err(StoreError::Corrupt {
                instance: instance.into(),
                seq,
                reason: "a value of its newest row has the wrong type".into(),
            })
        };
        let unreadable = Err(StoreError::Corrupt {
            instance: "text-seq".into(),
            seq: 0,
            reason: "its entry in table `instances` is unreadable".into(),
        });
        assert_eq!(
            rows,
            [
                wrong_type("huge-checksum", 1),
                wrong_type("int-data", 1),
                wrong_type("real-open", 1),
                wrong_type("text-checksum", 1),
                wrong_type("text-open", 1),
                unreadable,
                Ok(row("good", 1, true)),
            ]
        );
        assert_eq!(store.journal("Order", "real-open").await.unwrap().len(), 1);

        // NULLs, which this schema refuses but another writer's might not.
        let conn = Connection::open_in_memory().unwrap();
        let (r, damaged) = conn
            .query_row("SELECT NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL", [], |r| {
                Ok(read_row(r, 5))
            })
            .unwrap();
        assert_eq!((r.instance.as_str(), r.seq, r.open, r.data.len()), ("", 0, true, 0));
        assert_eq!(r.summary, Summary::default(), "an unknown summary is no damage");
        assert!(damaged);
    }

    #[tokio::test]
    async fn broken_links_read_as_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.db");
        let store = SqliteStore::open(&path).unwrap();
        for name in [
            "lost",
            "stray",
            "loop",
            "garbled",
            "missing",
            "elsewhere",
            "unreadable",
            "good",
        ] {
            for seq in 1..=3 {
                store.append("Order", row(name, seq, true)).await.unwrap();
            }
        }
        store.append("Other", row("good", 1, true)).await.unwrap();
        {
            let conn = Connection::open(&path).unwrap();
            let id = |name: &str, seq: u64| -> i64 {
                conn.query_row(
                    "SELECT id FROM journal WHERE workflow = 'Order' AND instance = ?1 AND seq = ?2",
                    params![name, seq as i64],
                    |r| r.get(0),
                )
                .unwrap()
            };
            let (lost, loops, other) = (id("lost", 2), id("loop", 3), id("good", 2));
            let earlier = id("lost", 1);
            let (missing, elsewhere) = (id("missing", 3), id("elsewhere", 3));
            conn.execute_batch(&format!(
                "DELETE FROM journal WHERE id = {lost};
                 UPDATE journal SET prev = {earlier} WHERE instance = 'stray' AND seq = 3;
                 UPDATE journal SET prev = {loops} WHERE instance = 'loop' AND seq = 2;
                 UPDATE journal SET prev = 'x' WHERE instance = 'garbled' AND seq = 2;
                 DELETE FROM journal WHERE id = {missing};
                 UPDATE instances SET newest = {other} WHERE instance = 'elsewhere';
                 DELETE FROM journal WHERE id = {elsewhere};
                 UPDATE instances SET newest = 'x', seq = 'y' WHERE instance = 'unreadable';"
            ))
            .unwrap();
        }
        let corrupt = |seq: u64, reason: &str| -> Result<Vec<Row>, StoreError> {
            Err(StoreError::Corrupt {
                instance: String::new(),
                seq,
                reason: reason.into(),
            })
        };
        let journal = |name: &'static str| {
            let store = &store;
            async move {
                store.journal("Order", name).await.map_err(|e| match e {
                    StoreError::Corrupt { instance, seq, reason } => {
                        assert_eq!(instance, name);
                        StoreError::Corrupt {
                            instance: String::new(),
                            seq,
                            reason,
                        }
                    }
                    other => other,
                })
            }
        };
        assert_eq!(journal("lost").await, corrupt(2, "the row is missing"));
        let wrong = "the link to the row leads to another instance's row";
        assert_eq!(journal("stray").await, corrupt(2, wrong));
        let broken = "the row's link to the one before it is broken";
        assert_eq!(journal("loop").await, corrupt(2, broken));
        assert_eq!(journal("garbled").await, corrupt(2, broken));
        assert_eq!(journal("missing").await, corrupt(3, "the row is missing"));
        assert_eq!(journal("elsewhere").await, corrupt(3, wrong));
        let nowhere = "the instance's entry does not say where its newest row is";
        assert_eq!(journal("unreadable").await, corrupt(0, nowhere));
        assert_eq!(journal("good").await.unwrap().len(), 3);

        // Recovery still sees every open instance; those whose newest row
        // is not where their entry points are reported by id, saying what
        // is wrong.
        let rows = store.open_rows("Order").await.unwrap();
        assert_eq!(rows.len(), 8);
        let mut damaged: Vec<StoreError> = rows.into_iter().filter_map(Result::err).collect();
        damaged.sort_by_key(|e| e.to_string());
        let corrupt = |instance: &str, seq: u64, reason: &str| StoreError::Corrupt {
            instance: instance.into(),
            seq,
            reason: reason.into(),
        };
        assert_eq!(
            damaged,
            [
                corrupt(
                    "elsewhere",
                    3,
                    "its entry in table `instances` points to another row (another instance's, or another number)"
                ),
                corrupt(
                    "missing",
                    3,
                    "its newest row is missing: its entry in table `instances` points to no row"
                ),
                corrupt("unreadable", 0, "its entry in table `instances` is unreadable"),
            ]
        );

        // The writer refuses to go on from a garbled entry, and only there.
        let (garbled, fine) = tokio::join!(
            store.append("Order", row("unreadable", 4, true)),
            store.append("Order", row("good", 4, true)),
        );
        assert_eq!(
            garbled,
            Err(StoreError::Corrupt {
                instance: "unreadable".into(),
                seq: 3,
                reason: "its entry in table `instances` is unreadable".into()
            })
        );
        assert_eq!(fine, Ok(()));
    }

    #[tokio::test]
    async fn concurrent_appends_share_commits() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SqliteStore::open(dir.path().join("j.db")).unwrap());
        let tasks: Vec<_> = (0..200)
            .map(|task| {
                let store = Arc::clone(&store);
                tokio::spawn(async move {
                    for seq in 1..=100 {
                        store
                            .append("Order", row(&format!("i-{task}"), seq, seq < 100))
                            .await
                            .unwrap();
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        let commits = store.commits();
        assert!(commits < 20_000, "{commits} commits for 20000 rows: no batching");
        assert!(commits >= 100, "each task waits for its previous row");
        assert_eq!(readable(&store, "Order").await, vec![]);
        let journal = store.journal("Order", "i-7").await.unwrap();
        assert_eq!(journal.len(), 100);
        assert!(journal.iter().enumerate().all(|(i, r)| r.seq == i as u64 + 1));
    }

    #[tokio::test]
    async fn queued_appends_finish_when_the_store_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.db");
        let store = SqliteStore::open(&path).unwrap();
        // Queue rows whose appenders never wait for the answer.
        for seq in 1..=500 {
            let (reply, _) = oneshot::channel();
            let request = Request {
                workflow: "Order".into(),
                row: row("a", seq, true),
                reply,
            };
            store.requests.as_ref().unwrap().send(request).unwrap();
        }
        drop(store);
        let store = SqliteStore::open(&path).unwrap();
        assert_eq!(store.journal("Order", "a").await.unwrap().len(), 500);
    }

    #[tokio::test]
    async fn a_stopped_writer_is_a_backend_error() {
        let mut store = SqliteStore::open_in_memory().unwrap();
        drop(store.requests.take());
        store.writer.take().unwrap().join().unwrap();
        assert!(matches!(
            store.append("Order", row("a", 1, true)).await,
            Err(StoreError::Backend(_))
        ));

        // The writer gone while the sender lives: the send fails.
        let (requests, queue) = mpsc::channel::<Request>();
        drop(queue);
        store.requests = Some(requests);
        assert!(matches!(
            store.append("Order", row("a", 1, true)).await,
            Err(StoreError::Backend(_))
        ));
    }

    #[tokio::test]
    async fn one_store_at_a_time_owns_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.db");
        let store = SqliteStore::open(&path).unwrap();
        store.append("Order", row("a", 1, true)).await.unwrap();
        let name = path.display().to_string();
        match SqliteStore::open(&path) {
            Err(StoreError::InUse { file, pid, host }) => {
                assert_eq!(file, name);
                assert_eq!(pid, Some(std::process::id()));
                assert!(host.is_some());
            }
            other => panic!("expected InUse, got {other:?}"),
        }
        // Reading beside the owner takes no ownership.
        let reader = SqliteStore::open_read_only(&path).unwrap();
        assert_eq!(readable(&reader, "Order").await, vec![row("a", 1, true)]);
        drop(store);
        let store = SqliteStore::open(&path).unwrap();
        assert_eq!(readable(&store, "Order").await, vec![row("a", 1, true)]);
    }

    #[tokio::test]
    async fn a_row_sqlite_refuses_fails_alone_and_its_batch_commits() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.db");
        let store = SqliteStore::open(&path).unwrap();
        // A row SQLite itself refuses (here by a trigger, as it would one
        // too big for it): the batch is written again with that row alone
        // rolled back.
        Connection::open(&path)
            .unwrap()
            .execute_batch(
                "CREATE TRIGGER poison BEFORE INSERT ON journal WHEN NEW.instance = 'poison'
                 BEGIN SELECT RAISE(ABORT, 'poisoned row'); END;",
            )
            .unwrap();
        let (a, poison, b, c) = tokio::join!(
            store.append("Order", row("a", 1, true)),
            store.append("Order", row("poison", 1, true)),
            store.append("Order", row("b", 1, true)),
            store.append("Order", row("c", 1, true)),
        );
        assert_eq!((a, b, c), (Ok(()), Ok(()), Ok(())));
        match poison {
            Err(StoreError::Backend(message)) => assert!(
                message.ends_with("instance `poison`: cannot write row 1: poisoned row"),
                "{message}"
            ),
            other => panic!("expected a backend error, got {other:?}"),
        }
        let names: Vec<String> = sorted(readable(&store, "Order").await)
            .into_iter()
            .map(|r| r.instance)
            .collect();
        assert_eq!(names, ["a", "b", "c"]);
    }

    #[tokio::test]
    async fn rows_over_the_maximum_are_refused_before_the_batch() {
        let dir = tempfile::tempdir().unwrap();
        let options = SqliteOptions::new().max_row_bytes(100);
        let store = SqliteStore::open_with(dir.path().join("j.db"), options).unwrap();
        let big = Row {
            data: vec![b'x'; 100],
            ..row("big", 1, true)
        };
        let (fine, refused) = tokio::join!(store.append("Order", row("a", 1, true)), store.append("Order", big));
        assert_eq!(fine, Ok(()));
        let refused = refused.unwrap_err();
        assert_eq!(
            refused,
            StoreError::RowTooLarge {
                instance: "big".into(),
                seq: 1,
                size: 108,
                limit: 100
            }
        );
        assert_eq!(
            refused.to_string(),
            "instance `big`: journal row 1 is 108 bytes, more than the store's maximum of 100"
        );
        assert_eq!(store.journal("Order", "big").await.unwrap(), vec![]);
        for bytes in [0, MAX_ROW_LIMIT + 1] {
            let options = SqliteOptions::new().max_row_bytes(bytes);
            assert!(matches!(
                SqliteStore::open_with(dir.path().join("k.db"), options),
                Err(StoreError::Backend(m)) if m.contains("maximum row size")
            ));
        }
    }

    /// The size of a store's `-wal` file (0 if there is none).
    fn wal_size(path: &Path) -> u64 {
        let mut wal = path.as_os_str().to_owned();
        wal.push("-wal");
        std::fs::metadata(wal).map_or(0, |m| m.len())
    }

    #[tokio::test]
    async fn the_wal_is_checkpointed_on_schedule_and_emptied_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.db");
        let options = SqliteOptions::new().checkpoint_every(Duration::from_millis(50));
        let store = SqliteStore::open_with(&path, options).unwrap();
        for seq in 1..=20 {
            store.append("Order", row("a", seq, true)).await.unwrap();
        }
        assert!(wal_size(&path) > 0);
        // Past the time bound, the main file alone holds every row: a copy
        // of it without the WAL (what a naive backup takes) has them all.
        std::thread::sleep(Duration::from_millis(300));
        let copy = dir.path().join("copy.db");
        std::fs::copy(&path, &copy).unwrap();
        let copy = SqliteStore::open_read_only(&copy).unwrap();
        assert_eq!(copy.journal("Order", "a").await.unwrap().len(), 20);
        drop(store);
        assert_eq!(wal_size(&path), 0, "the WAL is emptied when the store is dropped");
    }

    #[tokio::test]
    async fn a_backup_is_a_consistent_copy_taken_while_writing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.db");
        let store = Arc::new(SqliteStore::open(&path).unwrap());
        for seq in 1..=50 {
            store.append("Order", row("a", seq, true)).await.unwrap();
        }
        let writing = {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                for seq in 1..=200 {
                    store.append("Order", row("b", seq, true)).await.unwrap();
                }
            })
        };
        let backup = dir.path().join("backup.db");
        store.backup_to(&backup).await.unwrap();
        writing.await.unwrap();
        let copy = SqliteStore::open(&backup).unwrap();
        assert_eq!(copy.journal("Order", "a").await.unwrap().len(), 50);
        // Whatever part of `b` it caught is a whole journal, rows 1..=n.
        let b = copy.journal("Order", "b").await.unwrap();
        assert!(b.iter().enumerate().all(|(i, r)| r.seq == i as u64 + 1));
        // A backup never overwrites a file.
        match store.backup_to(&backup).await {
            Err(StoreError::Backend(message)) => assert!(message.contains("already exists"), "{message}"),
            other => panic!("expected a backend error, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_deleted_or_replaced_file_fails_every_later_write() {
        let dir = tempfile::tempdir().unwrap();
        for replaced in [false, true] {
            let path = dir.path().join(format!("j-{replaced}.db"));
            let store = SqliteStore::open(&path).unwrap();
            store.append("Order", row("a", 1, true)).await.unwrap();
            std::fs::remove_file(&path).unwrap();
            if replaced {
                std::fs::write(&path, b"another file").unwrap();
            }
            let reason = if replaced {
                "was replaced by another file"
            } else {
                "was deleted"
            };
            let expected = Err(StoreError::FileReplaced {
                file: path.display().to_string(),
                reason: reason.into(),
            });
            assert_eq!(store.append("Order", row("a", 2, true)).await, expected);
            assert_eq!(store.append("Order", row("b", 1, true)).await, expected);
        }
        // The lock file deleted: a second store owns the file now (with a
        // new lock file), so this one stops writing.
        let path = dir.path().join("locked.db");
        let store = SqliteStore::open(&path).unwrap();
        store.append("Order", row("a", 1, true)).await.unwrap();
        let lock = super::super::owner::lock_path(&path);
        std::fs::remove_file(&lock).unwrap();
        let second = SqliteStore::open(&path).unwrap();
        assert_eq!(
            store.append("Order", row("a", 2, true)).await,
            Err(StoreError::FileReplaced {
                file: lock.display().to_string(),
                reason: "was replaced by another file".into()
            })
        );
        second.append("Order", row("a", 2, true)).await.unwrap();
    }

    /// Overwrites the b-tree page holding `marker` with garbage.
    fn damage_page_holding(path: &Path, marker: &[u8]) {
        let mut bytes = std::fs::read(path).unwrap();
        let at = bytes.windows(marker.len()).position(|w| w == marker).unwrap();
        let page = at / PAGE_SIZE as usize * PAGE_SIZE as usize;
        bytes[page..page + 16].fill(0xee);
        std::fs::write(path, bytes).unwrap();
    }

    #[tokio::test]
    async fn a_damaged_page_hides_only_the_rows_on_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.db");
        {
            let store = SqliteStore::open(&path).unwrap();
            // Rows of 1 KiB: four to a page, 40 instances over about ten pages.
            for i in 0..40 {
                let data = format!("<{i:03}>{}", "x".repeat(1000)).into_bytes();
                let r = Row {
                    checksum: crc32fast::hash(&data),
                    data,
                    ..row(&format!("i-{i:03}"), 1, true)
                };
                store.append("Order", r).await.unwrap();
            }
        }
        let store = SqliteStore::open(&path).unwrap();
        assert_eq!(readable(&store, "Order").await.len(), 40);
        drop(store);
        damage_page_holding(&path, b"<017>");

        let store = SqliteStore::open(&path).unwrap();
        let rows = store.open_rows("Order").await.unwrap();
        assert_eq!(rows.len(), 40, "every instance is accounted for");
        let lost: Vec<&str> = rows
            .iter()
            .filter_map(|r| match r {
                Err(StoreError::Corrupt { instance, reason, .. }) => {
                    assert!(reason.contains("malformed"), "{reason}");
                    Some(instance.as_str())
                }
                Err(other) => panic!("{other:?}"),
                Ok(_) => None,
            })
            .collect();
        assert!(lost.contains(&"i-017"), "{lost:?}");
        assert!(
            !lost.is_empty() && lost.len() <= 5,
            "only the rows on the page: {lost:?}"
        );
    }

    #[tokio::test]
    async fn a_damaged_page_of_instances_hides_only_the_entries_on_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.db");
        // Long ids: about a dozen entries to a page of `instances`.
        let id = |i: usize| format!("{i:03}-{}", "k".repeat(300));
        {
            let store = SqliteStore::open(&path).unwrap();
            for i in 0..60 {
                store.append("Order", row(&id(i), 1, true)).await.unwrap();
            }
        }
        // The leaf page of `instances` (a WITHOUT ROWID table: an index
        // b-tree leaf, type 0x0a) that holds entry 30; not one of the
        // indexes' pages, which hold the id too.
        let leaves: Vec<usize> = {
            let conn = Connection::open(&path).unwrap();
            let mut pages = conn
                .prepare("SELECT pageno FROM dbstat WHERE name = 'instances' AND pagetype = 'leaf'")
                .unwrap();
            let leaves = pages.query_map([], |r| r.get::<_, usize>(0)).unwrap();
            leaves.map(|p| (p.unwrap() - 1) * PAGE_SIZE as usize).collect()
        };
        let mut bytes = std::fs::read(&path).unwrap();
        let marker = id(30).into_bytes();
        let page = (0..bytes.len() - marker.len())
            .filter(|&at| bytes[at..].starts_with(&marker))
            .map(|at| at / PAGE_SIZE as usize * PAGE_SIZE as usize)
            .find(|&page| bytes[page] == 0x0a && leaves.contains(&page))
            .expect("an entry page");
        bytes[page..page + 16].fill(0xee);
        std::fs::write(&path, bytes).unwrap();

        let store = SqliteStore::open(&path).unwrap();
        let rows = store.open_rows("Order").await.unwrap();
        let (read, errors): (Vec<_>, Vec<_>) = rows.into_iter().partition(Result::is_ok);
        let read: Vec<String> = read.into_iter().map(|r| r.unwrap().instance).collect();
        assert!(!read.contains(&id(30)));
        assert!(read.contains(&id(0)) && read.contains(&id(59)), "both ends are read");
        assert!(
            read.len() >= 40,
            "only one page of entries is lost: {} read",
            read.len()
        );
        match &errors[..] {
            [Err(StoreError::Backend(message))] => assert!(message.contains("cannot be named"), "{message}"),
            other => panic!("expected one error without an id, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn an_id_that_is_not_utf8_is_reported_by_its_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.db");
        let store = SqliteStore::open(&path).unwrap();
        store.append("Order", row("good", 1, true)).await.unwrap();
        Connection::open(&path)
            .unwrap()
            .execute_batch(
                "INSERT INTO journal VALUES (NULL, 'Order', CAST(x'6f2dff' AS TEXT), 1, 1, 0, x'00', NULL, NULL, NULL, NULL);
                 INSERT INTO instances VALUES ('Order', CAST(x'6f2dff' AS TEXT), last_insert_rowid(), 1, 1, NULL, NULL, NULL, NULL);
                 INSERT INTO journal VALUES (NULL, 'Order', x'6201', 2, 1, 0, x'00', NULL, NULL, NULL, NULL);
                 INSERT INTO instances VALUES ('Order', x'6201', last_insert_rowid(), 2, 1, NULL, NULL, NULL, NULL);",
            )
            .unwrap();
        let mut rows = store.open_rows("Order").await.unwrap();
        rows.sort_by_key(|r| format!("{:?}", r.as_ref().err()));
        let corrupt = |instance: &str, seq: u64, reason: &str| {
            Err(StoreError::Corrupt {
                instance: instance.into(),
                seq,
                reason: reason.into(),
            })
        };
        assert_eq!(
            rows,
            [
                Ok(row("good", 1, true)),
                corrupt("b\\x01", 2, "its id is a blob, not text (shown with its bytes escaped)"),
                corrupt("o-\\xff", 1, "its id is not valid UTF-8 (shown with its bytes escaped)"),
            ]
        );
    }

    #[tokio::test]
    async fn in_memory_store_works() {
        let store = SqliteStore::open_in_memory().unwrap();
        let other = SqliteStore::open_in_memory().unwrap();
        store.append("Order", row("a", 1, true)).await.unwrap();
        store.append("Order", row("a", 2, false)).await.unwrap();
        store.append("Order", row("b", 1, true)).await.unwrap();
        assert_eq!(readable(&store, "Order").await, vec![row("b", 1, true)]);
        assert_eq!(store.journal("Order", "a").await.unwrap().len(), 2);
        assert_eq!(other.open_rows("Order").await.unwrap(), vec![]);
    }

    #[test]
    fn works_without_a_tokio_runtime() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path().join("j.db")).unwrap();
        // Polled by a minimal executor: the store must not need tokio's.
        block_on(store.append("Order", row("a", 1, true))).unwrap();
        let rows = block_on(store.open_rows("Order")).unwrap();
        assert_eq!(rows, vec![Ok(row("a", 1, true))]);
    }

    /// Polls a future to completion on this thread, outside any runtime.
    fn block_on<F: std::future::Future>(future: F) -> F::Output {
        use std::task::{Context, Poll, Wake, Waker};
        struct Unpark(std::thread::Thread);
        impl Wake for Unpark {
            fn wake(self: Arc<Self>) {
                self.0.unpark();
            }
        }
        let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
        let mut cx = Context::from_waker(&waker);
        let mut future = std::pin::pin!(future);
        loop {
            if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
                return output;
            }
            std::thread::park();
        }
    }

    /// Bytes this process has handed to `write` so far (Linux), else 0.
    fn written() -> u64 {
        std::fs::read_to_string("/proc/self/io")
            .ok()
            .and_then(|io| io.lines().find_map(|l| l.strip_prefix("wchar: ")?.trim().parse().ok()))
            .unwrap_or(0)
    }

    /// CPU time of this process's store writer threads so far (Linux), in
    /// clock ticks of (usually) 10 ms.
    fn writer_ticks() -> u64 {
        let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
            return 0;
        };
        tasks
            .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("stat")).ok())
            .filter(|stat| stat.contains("(workflow-sqlite"))
            .map(|stat| {
                // After the `(name)`: state, then 10 fields, then utime and stime.
                let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
                fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
            })
            .sum()
    }

    /// `tasks` instances appending `per_task` rows of `len` bytes each, all
    /// at once, as an engine's instances do: rows/s, rows per commit, and
    /// bytes written (WAL and checkpoints) per commit.
    fn measure_appends(runtime: &tokio::runtime::Runtime, path: &Path, tasks: u64, per_task: u64, len: usize) {
        let store = Arc::new(SqliteStore::open(path).unwrap());
        let written_before = written();
        let started = Instant::now();
        runtime.block_on(async {
            let handles: Vec<_> = (0..tasks)
                .map(|task| {
                    let store = Arc::clone(&store);
                    tokio::spawn(async move {
                        let instance = format!("i-{task:08}");
                        for seq in 1..=per_task {
                            let data = vec![b'x'; len];
                            // What an engine's rows carry: a time, a state that changes
                            // each step, a status.
                            let summary = Summary {
                                at: Some(1_800_000_000_000 + seq),
                                state: Some(if seq % 2 == 0 { "Even" } else { "Odd" }.into()),
                                status: Some(InstanceStatus::Running),
                            };
                            let r = Row {
                                instance: instance.clone(),
                                seq,
                                open: true,
                                checksum: crc32fast::hash(&data),
                                data,
                                summary,
                            };
                            store.append("Counter", r).await.unwrap();
                        }
                    })
                })
                .collect();
            for handle in handles {
                handle.await.unwrap();
            }
        });
        let ticks = writer_ticks();
        let elapsed = started.elapsed();
        let written = written() - written_before;
        let rows = tasks * per_task;
        let commits = store.commits().max(1);
        println!(
            "append: {rows} rows of {len} bytes from {tasks} tasks in {elapsed:?}: {:.0} rows/s, {commits} commits, \
             {:.0} rows per commit, {:.2} MiB written per commit ({:.0} bytes per row), \
             writer thread busy {:.0}% ({:.2} µs per row)",
            rows as f64 / elapsed.as_secs_f64(),
            rows as f64 / commits as f64,
            written as f64 / commits as f64 / (1024.0 * 1024.0),
            written as f64 / rows as f64,
            ticks as f64 * 10.0 / elapsed.as_millis() as f64 * 100.0,
            ticks as f64 * 10_000.0 / rows as f64,
        );
    }

    /// Throughput and recovery-load figures, not a timed assertion:
    /// `cargo test --release -p workflow-runtime --features sqlite -- --ignored --nocapture measure`.
    #[test]
    #[ignore]
    fn measure() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        measure_appends(&runtime, &dir.path().join("small.db"), 1_000, 100, 20);
        measure_appends(&runtime, &dir.path().join("bench.db"), 10_000, 100, 250);

        // 100,000 instances of 5 rows, written round by round (rows of an
        // instance far apart, as an engine writes them), each round in
        // another order (instances far apart from their neighbours by name),
        // through the writer's own batches; one in ten finished.
        let path = dir.path().join("open.db");
        {
            let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE;
            let mut conn = connect(&path, flags, "open.db").unwrap();
            prepare_file(&mut conn, Access::ReadWrite, "open.db").unwrap();
            let started = Instant::now();
            let mut outcomes = Vec::new();
            let mut batch = Vec::with_capacity(MAX_BATCH);
            for seq in 1..=5u64 {
                for k in 0..100_003u64 {
                    // A permutation of 0..100,000 (7919 and 100,003 are prime).
                    let i = (k * 7919 + seq * 12_345) % 100_003;
                    if i >= 100_000 {
                        continue;
                    }
                    let data = vec![b'x'; 200];
                    let r = Row {
                        instance: format!("instance-{i:08}"),
                        seq,
                        open: i % 10 != 0 || seq < 5,
                        checksum: crc32fast::hash(&data),
                        data,
                        summary: Default::default(),
                    };
                    batch.push(Request {
                        workflow: "Order".into(),
                        row: r,
                        reply: oneshot::channel().0,
                    });
                    if batch.len() == MAX_BATCH {
                        write_batch(&mut conn, &batch, &mut outcomes, false).unwrap();
                        batch.clear();
                    }
                }
            }
            write_batch(&mut conn, &batch, &mut outcomes, false).unwrap();
            println!("wrote 500,000 rows of 100,000 instances in {:?}", started.elapsed());
        }
        let store = SqliteStore::open(&path).unwrap();
        for _ in 0..3 {
            let started = Instant::now();
            let open = runtime.block_on(store.open_rows("Order")).unwrap();
            println!("open_rows: {} open instances in {:?}", open.len(), started.elapsed());
        }
        let plan: Vec<String> = runtime
            .block_on(store.read(|conn| {
                let mut plan = conn.prepare(&format!("EXPLAIN QUERY PLAN {OPEN_ROWS}"))?;
                let rows = plan.query_map(["Order"], |r| r.get::<_, String>(3))?;
                rows.collect()
            }))
            .unwrap();
        println!("open_rows plan: {plan:?}");
        let started = Instant::now();
        for i in (0..100_000u64).step_by(100) {
            let journal = runtime
                .block_on(store.journal("Order", &format!("instance-{i:08}")))
                .unwrap();
            assert_eq!(journal.iter().map(|r| r.seq).collect::<Vec<_>>(), [1, 2, 3, 4, 5]);
        }
        println!("journal: 1,000 journals of 5 rows in {:?}", started.elapsed());
    }
}
