//! Where durable instances keep their journal.
//!
//! An engine built with a [`Store`] commits every step of every instance
//! (a row of its journal) before it acts on it: before `send` returns, before
//! the next activity starts, before `wait` resolves. After a crash,
//! [`Engine::recover`](crate::Engine::recover) resumes every unfinished
//! instance from the newest row of its journal.
//!
//! Two stores come with the crate: [`MemoryStore`], for tests and for
//! engines that need the journal but not the disk, and [`SqliteStore`], the
//! embedded durable default (one file, WAL mode, `synchronous=FULL`, group
//! commit). The store sees rows as opaque bytes; what they hold, and its
//! version, is the engine's business (see the [`journal`](crate::journal)
//! module).

use std::fmt;

use async_trait::async_trait;

mod memory;
#[cfg(feature = "sqlite")]
mod sqlite;

pub use memory::MemoryStore;
#[cfg(feature = "sqlite")]
pub use sqlite::SqliteStore;

/// One committed step of one instance: a row of its journal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    /// The instance's id.
    pub instance: String,
    /// The row's number in the instance's journal: 1 for its start, then
    /// one more for each step, with no gap.
    pub seq: u64,
    /// Whether the instance is still running after this step; the store
    /// hands rows whose instance is open to recovery.
    pub open: bool,
    /// The CRC-32 of `data`, computed by the engine, checked when read.
    pub checksum: u32,
    /// The step and the instance's state after it, encoded by the engine.
    pub data: Vec<u8>,
}

/// A durable home for journals of any number of workflows.
///
/// Implementations must make [`append`](Self::append) durable before it
/// returns `Ok`, keep each instance's rows in `seq` order, and refuse with
/// [`StoreError::Conflict`] a row whose `seq` is not the instance's next
/// one (1 for a new instance, else one more than its newest row): a taken
/// number means two engines write one instance, or a new instance reuses a
/// stored id; a skipped one would leave a gap. They should batch concurrent appends into
/// one commit (group commit), and must retry transient failures themselves:
/// an error from `append` stops the instance.
#[async_trait]
pub trait Store: Send + Sync {
    /// Commits `row` to `workflow`'s journal.
    async fn append(&self, workflow: &str, row: Row) -> Result<(), StoreError>;

    /// The newest row of every instance of `workflow` whose newest row is
    /// open, in no particular order.
    async fn open_rows(&self, workflow: &str) -> Result<Vec<Row>, StoreError>;

    /// Every row of one instance's journal, oldest first; empty for an
    /// unknown instance.
    async fn journal(&self, workflow: &str, instance: &str) -> Result<Vec<Row>, StoreError>;
}

/// What can go wrong storing or reading journals.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreError {
    /// A row failed its checksum or is not a journal row at all. (A row
    /// whose checksum holds but whose context or events no longer decode
    /// with the types compiled now is [`DefinitionChanged`](Self::DefinitionChanged).)
    /// The instance is marked failed; every other instance goes on.
    Corrupt {
        /// The instance.
        instance: String,
        /// The row's number in its journal.
        seq: u64,
        /// What was wrong.
        reason: String,
    },
    /// The row `(instance, seq)` is already stored.
    Conflict {
        /// The instance.
        instance: String,
        /// The row's number in its journal.
        seq: u64,
    },
    /// The instance's stored state does not fit the workflow as compiled now
    /// (a state was removed or changed kind, an activity or timer changed);
    /// the instance is left untouched.
    DefinitionChanged {
        /// The instance.
        instance: String,
        /// The state that no longer fits.
        state: String,
        /// How it changed.
        reason: String,
    },
    /// The file was written by a newer version of this crate.
    SchemaTooNew {
        /// The file's schema version.
        found: i64,
        /// The newest this build reads.
        supported: i64,
    },
    /// The store itself failed: the disk is full, the file is read-only or
    /// not a database, the writer stopped.
    Backend(String),
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Corrupt { instance, seq, reason } => {
                write!(f, "instance `{instance}`: journal row {seq} is corrupt: {reason}")
            }
            StoreError::Conflict { instance, seq } => {
                write!(f, "instance `{instance}`: journal row {seq} is already stored")
            }
            StoreError::DefinitionChanged {
                instance,
                state,
                reason,
            } => write!(
                f,
                "instance `{instance}` cannot resume in state `{state}`: the workflow changed ({reason})"
            ),
            StoreError::SchemaTooNew { found, supported } => write!(
                f,
                "the store's schema version is {found}, newer than this build reads ({supported}); \
                 upgrade the crate to open it"
            ),
            StoreError::Backend(message) => write!(f, "store failure: {message}"),
        }
    }
}

impl std::error::Error for StoreError {}
