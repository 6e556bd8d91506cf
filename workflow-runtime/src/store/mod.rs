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
use std::time::Duration;

use async_trait::async_trait;

mod memory;
#[cfg(feature = "sqlite")]
mod owner;
#[cfg(feature = "postgres")]
pub(crate) mod postgres;
#[cfg(feature = "sqlite")]
pub(crate) mod sqlite;

pub use memory::MemoryStore;
#[cfg(feature = "postgres")]
pub use postgres::{PostgresOptions, PostgresStore};
#[cfg(feature = "sqlite")]
pub use sqlite::{SqliteOptions, SqliteStore};

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
    /// What a reader outside the engine may see of the row without decoding `data`.
    pub summary: Summary,
}

/// What the store keeps of a row beside its `data`, for readers without the workflow's code (the
/// [`inspect`](crate::inspect) module, the `workflow` command): when it was written, and the
/// instance's state and status after it.
///
/// Stored **in plaintext even when a codec seals `data`**
/// ([`EngineBuilder::codec`](crate::EngineBuilder::codec)): state names and statuses are the
/// workflow's shape, not its payload; contexts, events and activity outputs stay sealed.
///
/// ```
/// use workflow_runtime::store::{InstanceStatus, Summary};
///
/// let summary = Summary { at: Some(1_700_000_000_000), state: Some("Charging".into()), status: Some(InstanceStatus::Running) };
/// assert_eq!(summary.status.map(InstanceStatus::as_str), Some("running"));
/// assert_eq!(Summary::default().at, None); // a row of a schema-1 store: not known
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// When the row was written, in milliseconds since the Unix epoch on the engine's clock
    /// ([`EngineBuilder::clock`](crate::EngineBuilder::clock)); `None` for rows written before
    /// stores kept it.
    pub at: Option<u64>,
    /// The instance's state after the step, as its state type displays it (`Charging`, or
    /// `{Paying, Packing}` for a configuration of a statechart's atomic states); `None` if not
    /// known.
    pub state: Option<String>,
    /// The instance's status after the step; `None` if not known.
    pub status: Option<InstanceStatus>,
}

/// Where an instance stands: running, or how it ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InstanceStatus {
    /// Still running.
    Running,
    /// Reached a final state.
    Finished,
    /// Failed: a guard or an action panicked, or the store refused a step.
    Failed,
    /// Cancelled.
    Cancelled,
}

impl InstanceStatus {
    /// Every status, in the order of their stored codes.
    pub const ALL: [InstanceStatus; 4] = [
        InstanceStatus::Running,
        InstanceStatus::Finished,
        InstanceStatus::Failed,
        InstanceStatus::Cancelled,
    ];

    /// Its name: `running`, `finished`, `failed`, `cancelled`.
    pub const fn as_str(self) -> &'static str {
        match self {
            InstanceStatus::Running => "running",
            InstanceStatus::Finished => "finished",
            InstanceStatus::Failed => "failed",
            InstanceStatus::Cancelled => "cancelled",
        }
    }

    /// The status of a name [`as_str`](Self::as_str) gives.
    pub fn from_name(name: &str) -> Option<InstanceStatus> {
        InstanceStatus::ALL.into_iter().find(|s| s.as_str() == name)
    }

    /// The small integer a store keeps (0 running, 1 finished, 2 failed, 3 cancelled).
    pub const fn code(self) -> i64 {
        self as i64
    }

    /// The status of a stored code.
    pub fn from_code(code: i64) -> Option<InstanceStatus> {
        usize::try_from(code)
            .ok()
            .and_then(|i| InstanceStatus::ALL.get(i).copied())
    }
}

impl fmt::Display for InstanceStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// A workflow's definition as an engine over the store compiled it, written once per fingerprint
/// ([`Store::define`]): enough for a reader without the workflow's code to draw its diagram and
/// name its states.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Definition {
    /// The workflow's name.
    pub workflow: String,
    /// The fingerprint its journal rows carry.
    pub fingerprint: String,
    /// Its graph in the text form [`graph::text`](crate::graph::text) writes, the form its
    /// fingerprint hashes (with `context`).
    pub graph: String,
    /// Its context type's name (`std::any::type_name`).
    pub context: String,
    /// When an engine first wrote it, in milliseconds since the Unix epoch.
    pub first_seen: u64,
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
    /// open, in no particular order. An instance whose newest row cannot be
    /// read as a row (missing, on a damaged page, an id that is not UTF-8)
    /// comes back as an error naming it, [`StoreError::Corrupt`], beside the
    /// others; only a store that cannot be read at all is an `Err`.
    async fn open_rows(&self, workflow: &str) -> Result<Vec<Result<Row, StoreError>>, StoreError>;

    /// Commits `row` as [`append`](Self::append) does, and removes the inbox message `message`
    /// (a [`Message::id`]) in the same commit: the step that applied a message another process
    /// posted and the message's removal are one, so a crash between them cannot hand the
    /// message to the instance twice. Nothing is removed unless the row is committed. The
    /// default, for a store without an inbox, appends and then [acknowledges](Self::acknowledge).
    async fn append_consuming(&self, workflow: &str, row: Row, message: i64) -> Result<(), StoreError> {
        self.append(workflow, row).await?;
        self.acknowledge(vec![message]).await
    }

    /// Every row of one instance's journal, oldest first; empty for an
    /// unknown instance.
    async fn journal(&self, workflow: &str, instance: &str) -> Result<Vec<Row>, StoreError>;

    /// Keeps `definition` unless the store holds one of the same workflow and fingerprint
    /// already (whose first-seen time stays). An engine calls it when it recovers or first
    /// writes. Nothing to do for a store no outside reader opens (the default).
    async fn define(&self, _definition: &Definition) -> Result<(), StoreError> {
        Ok(())
    }

    /// Hands `workflow`'s instances this process owns back to the cluster, for another process to
    /// take over at once; [`Engine::shutdown`](crate::Engine::shutdown) calls it once its
    /// instances have stopped. Nothing to do for a store one process owns (the default).
    async fn release(&self, _workflow: &str) -> Result<(), StoreError> {
        Ok(())
    }

    /// The lease the engines over a shared store ask for: how long the process owns its instances
    /// after its last renewal, and how often it renews ([`Config::lease`](crate::Config::lease)).
    /// Ignored by a store one process owns (the default).
    fn lease(&self, _length: Duration, _renewal: Duration) {}

    /// For a store several processes share: how often an engine that has recovered once looks
    /// for instances to take over (whose owner's lease expired, or which were handed back). `None`
    /// (the default): one process owns the store, and `recover` at start is all it needs.
    fn takeover_interval(&self) -> Option<Duration> {
        None
    }

    /// For a store several processes share: whether this process's lease expired, so that every
    /// write of its is refused and other processes own its instances, until it registers anew
    /// ([`rejoin`](Self::rejoin)). An engine over it drops its copies of them. `false` for a store
    /// one process owns (the default).
    fn lease_lost(&self) -> bool {
        false
    }

    /// For a store several processes share, called by the engine of `workflow` once the lease
    /// was lost ([`lease_lost`](Self::lease_lost)) or the process registered anew since its copies
    /// were made ([`lease_generation`](Self::lease_generation) changed), and it has dropped every
    /// copy and waited for their steps in flight to end: registers the process anew if its lease
    /// is lost (a new id, a fresh lease: the instances of its old id are a dead process's, for any
    /// process to take over under new epochs), and lets `workflow`'s appends through again, which
    /// after registering anew are refused ([`StoreError::Fenced`]) until its engine has called
    /// this: the store cannot tell an old copy's append from a new one's. The generation now in
    /// effect. An engine over the store does all of it in its takeover pass. Nothing to do for a
    /// store one process owns (the default).
    async fn rejoin(&self, _workflow: &str) -> Result<u64, StoreError> {
        Ok(0)
    }

    /// For a store several processes share: how many times the process has registered anew after
    /// losing its lease ([`rejoin`](Self::rejoin)). Always `0` for a store one process owns (the
    /// default).
    fn lease_generation(&self) -> u64 {
        0
    }

    /// Queues `message` (an event or a cancellation, encoded by the engine) for `workflow`'s
    /// instance `instance`, which another process may own; `Ok` once it is durably stored. A
    /// store one process owns has no inbox (the default: [`Posted::Unknown`]).
    async fn post(&self, _workflow: &str, _instance: &str, _message: Vec<u8>) -> Result<Posted, StoreError> {
        Ok(Posted::Unknown)
    }

    /// The queued messages for the instances of `workflow` this process owns, oldest first.
    async fn inbox(&self, _workflow: &str) -> Result<Vec<Message>, StoreError> {
        Ok(Vec::new())
    }

    /// Removes messages the engine has handled without committing a step (an event the instance
    /// rejected, a message for an instance that has finished); a message whose step was committed
    /// left with it ([`append_consuming`](Self::append_consuming)).
    async fn acknowledge(&self, _ids: Vec<i64>) -> Result<(), StoreError> {
        Ok(())
    }

    /// A receiver that changes when messages were posted to the store's inbox (PostgreSQL's
    /// LISTEN/NOTIFY), for the engine to read them without waiting for its next poll. `None`: no
    /// inbox (the default).
    fn posted(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        None
    }
}

/// What became of a message [`Store::post`]ed to an instance.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Posted {
    /// Stored: its owner will handle it.
    Accepted,
    /// The instance has finished: nothing was stored.
    Finished,
    /// No such instance (or the store has no inbox): nothing was stored.
    Unknown,
}

/// A message queued in a shared store's inbox for an instance ([`Store::inbox`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// Its number: messages to one instance are handled in this order.
    pub id: i64,
    /// The instance it is for.
    pub instance: String,
    /// What the engine encoded.
    pub data: Vec<u8>,
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
    /// The row was written with a key, or by a codec, that the engine does
    /// not have (or by a codec, read by an engine without one, or the other
    /// way round): the engine cannot tell whether it is genuine, so the
    /// instance is left as it is, not resumed and not overwritten; every
    /// other instance goes on. Give the engine the key that wrote it (see
    /// [`codec::Keys`](crate::codec)).
    UnknownKey {
        /// The instance.
        instance: String,
        /// The row's number in its journal.
        seq: u64,
        /// Which key wrote the row, and which keys the engine has.
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
    /// Another process, or another store in this process, owns the file:
    /// one store at a time writes a file. The owner is named when its record
    /// could be read.
    InUse {
        /// The store's file.
        file: String,
        /// The owner's process id.
        pid: Option<u32>,
        /// The owner's host name.
        host: Option<String>,
    },
    /// A row larger than the store's maximum row size was refused before it
    /// reached the store; the instance it belongs to stops, no other.
    RowTooLarge {
        /// The instance.
        instance: String,
        /// The row's number in its journal.
        seq: u64,
        /// The row's size in bytes.
        size: usize,
        /// The largest row the store takes, in bytes.
        limit: usize,
    },
    /// An instance's step has a value its journal cannot hold so that it
    /// reads back as written (a map with non-string keys, a float that is NaN
    /// or infinite); nothing was stored.
    Unencodable {
        /// The instance.
        instance: String,
        /// What could not be encoded.
        reason: String,
    },
    /// The store's file was deleted or replaced while the store had it open:
    /// whatever is written now reaches a file no later process sees, so every
    /// write is refused from then on.
    FileReplaced {
        /// The store's file.
        file: String,
        /// What became of it.
        reason: String,
    },
    /// Another process owns the instance now (this process's lease expired, or the instance
    /// was taken over or handed back): the step was not committed, and this process drops its
    /// copy of the instance (it reads it from the store from then on, as any instance another
    /// process runs).
    Fenced {
        /// The instance.
        instance: String,
    },
    /// The store itself failed: the disk is full, the file is read-only or
    /// not a database, the writer stopped.
    Backend(String),
}

impl StoreError {
    /// The instance the error is about, if it is about one.
    pub fn instance(&self) -> Option<&str> {
        match self {
            StoreError::Corrupt { instance, .. }
            | StoreError::UnknownKey { instance, .. }
            | StoreError::Conflict { instance, .. }
            | StoreError::DefinitionChanged { instance, .. }
            | StoreError::RowTooLarge { instance, .. }
            | StoreError::Unencodable { instance, .. }
            | StoreError::Fenced { instance } => Some(instance),
            _ => None,
        }
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Corrupt { instance, seq, reason } => {
                write!(f, "instance `{instance}`: journal row {seq} is corrupt: {reason}")
            }
            StoreError::UnknownKey { instance, seq, reason } => {
                write!(f, "instance `{instance}`: journal row {seq} cannot be read: {reason}")
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
            StoreError::InUse { file, pid, host } => {
                write!(f, "{file} is in use by ")?;
                match (pid, host) {
                    (Some(pid), Some(host)) => write!(f, "process {pid} on host `{host}`")?,
                    (Some(pid), None) => write!(f, "process {pid}")?,
                    _ => write!(f, "another process (its owner record is not readable yet)")?,
                }
                write!(f, ": one store at a time owns a file")
            }
            StoreError::RowTooLarge {
                instance,
                seq,
                size,
                limit,
            } => write!(
                f,
                "instance `{instance}`: journal row {seq} is {size} bytes, more than the store's maximum of {limit}"
            ),
            StoreError::Unencodable { instance, reason } => {
                write!(f, "instance `{instance}` cannot be encoded: {reason}")
            }
            StoreError::FileReplaced { file, reason } => {
                write!(f, "{file} {reason} while the store had it open; writes are refused")
            }
            StoreError::Fenced { instance } => write!(
                f,
                "instance `{instance}` is owned by another process now (this process's lease expired or \
                 the instance was handed over); the step was not committed"
            ),
            StoreError::Backend(message) => write!(f, "store failure: {message}"),
        }
    }
}

impl std::error::Error for StoreError {}
