//! What a durable engine writes in each row of an instance's journal, and
//! [`decode`], which reads a row back with the workflow's types (an
//! [`Entry`]: its step, status, active states and context) so that nobody
//! needs to parse the JSON by hand.
//!
//! Every row's `data` is one JSON document, format version 1:
//!
//! ```json
//! {"v":1,"fingerprint":"9a3c…","step":{"kind":"transition","from":"Charging",
//!  "event":{"ChargePaymentDone":["r-1"]},"to":"Reserving"},"status":{"state":"running"},
//!  "active":["Reserving"],"context":{…},"activities":[{"state":"Reserving","generation":2}],
//!  "timers":[],"succeeded":[],"completed":[],"generation":2}
//! ```
//!
//! - `fingerprint`: a hash of the workflow's definition as compiled when
//!   the row was written: its graph (states, events with their fields'
//!   types, activities with their output types, transitions) and its
//!   context type's name (`std::any::type_name`, whose text may change with
//!   the compiler: a changed fingerprint costs nothing but the fit check).
//!   Recovery checks that the instance still fits (its states, activities
//!   and timers exist); a row whose checksum holds but whose context or
//!   events no longer decode is a changed definition, not corruption (a
//!   context field whose type changed changes no name);
//! - `step`: what the row records: `started`, `transition` (with the event,
//!   which carries an activity's output), `rejected` (a timer's event the
//!   state did not accept), `compensated` (with its `error` and `error_kind`
//!   if it still failed), `finished` (by recovery, for an open row standing
//!   in a final state), `failed`, `cancelled`, `retried` (with its `attempt`: a failed
//!   instance resumed by [`Engine::retry`](crate::Engine::retry) from the step before its
//!   failure);
//! - `attempts`: the attempts of the activity whose outcome a `transition` row's event is (its
//!   `…Done` or `…Failed`), or of a `compensated` row's compensation, each an [`Attempt`]:
//!   number, start time (ms since the Unix epoch), duration in microseconds, and for a failed one
//!   its `error` and `error_kind`; kept when the call took more than one attempt or failed, left
//!   out when its first attempt succeeded, so that the common row does not grow. Only the outcome
//!   carries them: the attempts of a call that a crash, a shutdown or leaving its state cut short
//!   are not journaled (after a restart the call runs again from attempt 1, and its outcome's row
//!   keeps the attempts of that run);
//! - `status`, `active`, `history` (the states each history state recorded),
//!   `context`: the instance after the step;
//! - `activities`: those in flight, by state and generation (the generation
//!   makes the idempotency key handed to every attempt, the same after a
//!   restart);
//! - `timers`: pending timers with their event and absolute `deadline` in
//!   milliseconds since the Unix epoch;
//! - `succeeded`: states whose activity succeeded while they are active;
//! - `completed`: compensable states whose step completed, each with the
//!   generation its compensation's idempotency key is made of, compensated
//!   in reverse order if the workflow fails;
//! - in both, `done`: the done event the state's activity completed with,
//!   kept for a compensable state, whose compensation receives its output
//!   after a restart too (`{"state":"Paying","generation":3,
//!   "done":{"PayDone":"r-1"}}`);
//! - `generation`: the instance's counter of activity and timer generations;
//! - `priority`: the priority of its activity calls, if not 0.
//!
//! Empty lists (`attempts`, `history`, `activities`, `timers`, `succeeded`,
//! `completed`) are left out, and read as empty: rows written before a list existed read as
//! before. Contexts, events and activity outputs appear as their serde JSON forms.
//!
//! An engine with a [`Codec`] ([`EngineBuilder::codec`](crate::EngineBuilder::codec)) stores what
//! the codec makes of this document instead (see [`codec`](crate::codec); [`decode_with`] reads such
//! a row). The row's checksum is the CRC-32 of the bytes stored.

use std::borrow::Cow;
use std::sync::Arc;

use serde::de::{DeserializeOwned, IgnoredAny};
use serde::{Deserialize, Serialize};

use crate::activity::ErrorKind;
use crate::codec::{Codec, CodecError, Header, RowId};
use crate::engine::RecordedError;
use crate::machine::Machine;
use crate::store::{InstanceStatus, Row, StoreError, Summary};

/// A state's or a timer's name, or the fingerprint: borrowed when written,
/// owned when read.
pub(crate) type Name<'a> = Cow<'a, str>;

/// The format version this build writes and reads (the rows' `v`).
pub const FORMAT: u32 = 1;

/// Writes a row's document: `encode` for a workflow's context and event types.
pub(crate) type Encode<C, E> = for<'a> fn(&Document<'a, &'a C, &'a E>) -> Result<Vec<u8>, String>;

/// Checks and reads a row: `open` for a workflow's context and event types.
pub(crate) type Open<C, E> = fn(&Row, &str, &Seal) -> Result<Document<'static, C, E>, StoreError>;

/// One row's document; `C` and `E` are the context and event types, or
/// references to them when writing.
#[derive(Serialize, Deserialize)]
#[serde(bound(
    serialize = "C: Serialize, E: Serialize",
    deserialize = "C: DeserializeOwned, E: DeserializeOwned"
))]
pub(crate) struct Document<'a, C, E> {
    pub v: u32,
    pub fingerprint: Name<'a>,
    pub step: Step<E>,
    #[serde(default, skip_serializing_if = "no_attempts")]
    pub attempts: Cow<'a, [Attempt]>,
    pub status: Status,
    pub active: Vec<Name<'a>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<(Name<'a>, Vec<Name<'a>>)>,
    pub context: C,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub activities: Vec<ActivityImage<'a>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub timers: Vec<TimerImage<'a, E>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub succeeded: Vec<StepImage<'a, E>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub completed: Vec<StepImage<'a, E>>,
    pub generation: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub priority: i32,
}

fn is_zero(priority: &i32) -> bool {
    *priority == 0
}

fn no_attempts(attempts: &[Attempt]) -> bool {
    attempts.is_empty()
}

/// One attempt of an activity's or a compensation's call, as the row of its outcome keeps it
/// (the document's `attempts`): kept for every attempt of a call that took more than one or
/// failed, none for a call whose first attempt succeeded.
///
/// ```json
/// {"attempt":1,"at":1800000000123,"duration_us":20113,"error":"card service busy","error_kind":"failed"}
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Attempt {
    /// Its number, from 1.
    pub attempt: u32,
    /// When it started (once its resource admitted it), in milliseconds since the Unix epoch,
    /// on the engine's clock (the clock of the rows' times).
    pub at: u64,
    /// How long it ran, in microseconds (for a timed-out attempt, its timeout and the timer's
    /// lag).
    pub duration_us: u64,
    /// Its error's message, if it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Its error's kind, if it failed: [`ErrorKind::TimedOut`] for an attempt that ran past its
    /// `timeout`, [`ErrorKind::Panicked`] for one that panicked.
    #[serde(
        rename = "error_kind",
        default,
        skip_serializing_if = "Option::is_none",
        with = "kind"
    )]
    pub kind: Option<ErrorKind>,
}

impl Attempt {
    /// Attempt `attempt`, started at `at` (ms since the Unix epoch), which ran for `took` and
    /// ended with `error`, if any.
    pub(crate) fn new(attempt: u32, at: u64, took: std::time::Duration, error: Option<&RecordedError>) -> Self {
        Attempt {
            attempt,
            at,
            duration_us: u64::try_from(took.as_micros()).unwrap_or(u64::MAX),
            error: error.map(|e| e.message.clone()),
            kind: error.map(|e| e.kind),
        }
    }
}

/// What a row records: the step that led to it. `E` is the workflow's event
/// type.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[serde(bound(serialize = "E: Serialize", deserialize = "E: DeserializeOwned"))]
#[non_exhaustive]
pub enum Step<E> {
    /// The instance started (its initial entry actions ran).
    Started,
    /// A transition (a statechart's macrostep) on `event`; an activity's
    /// outcome is its `…Done` or `…Failed` event, carrying its output.
    Transition {
        /// The state (configuration) before.
        from: String,
        /// The event.
        event: E,
        /// The state (configuration) after.
        to: String,
    },
    /// A timer's event that the state did not accept (the timer is spent).
    Rejected {
        /// The state (configuration).
        state: String,
        /// The event.
        event: E,
    },
    /// A compensation ran, with its retries.
    Compensated {
        /// The compensation.
        compensation: String,
        /// Its error's message, if it still failed.
        error: Option<String>,
        /// Its error's kind, if it still failed (`None` in rows written
        /// before kinds were journaled).
        #[serde(
            rename = "error_kind",
            default,
            skip_serializing_if = "Option::is_none",
            with = "kind"
        )]
        kind: Option<ErrorKind>,
    },
    /// The instance was finished by recovery: its row was open although it
    /// stood in a final state.
    Finished,
    /// A guard or an action panicked.
    Failed {
        /// The panic's message.
        reason: String,
    },
    /// The instance was cancelled.
    Cancelled,
    /// A failed instance was resumed by [`Engine::retry`](crate::Engine::retry) from its last
    /// committed step (the row before its failure): this row holds that step's state again.
    /// Rows written before retries existed never hold it, so they read as before.
    Retried {
        /// Which retry of the instance this is, from 1.
        attempt: u32,
    },
}

/// An [`ErrorKind`] in a row, by name (`failed`, `non_retryable`,
/// `timed_out`, `panicked`), whatever the crate's `serde` feature.
mod kind {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use crate::activity::ErrorKind;

    #[derive(Serialize, Deserialize)]
    #[serde(rename_all = "snake_case")]
    enum Name {
        Failed,
        NonRetryable,
        TimedOut,
        Panicked,
    }

    pub(super) fn serialize<S: Serializer>(kind: &Option<ErrorKind>, serializer: S) -> Result<S::Ok, S::Error> {
        kind.map(|kind| match kind {
            ErrorKind::Failed => Name::Failed,
            ErrorKind::NonRetryable => Name::NonRetryable,
            ErrorKind::TimedOut => Name::TimedOut,
            ErrorKind::Panicked => Name::Panicked,
        })
        .serialize(serializer)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<ErrorKind>, D::Error> {
        Ok(Option::<Name>::deserialize(deserializer)?.map(|name| match name {
            Name::Failed => ErrorKind::Failed,
            Name::NonRetryable => ErrorKind::NonRetryable,
            Name::TimedOut => ErrorKind::TimedOut,
            Name::Panicked => ErrorKind::Panicked,
        }))
    }
}

impl Status {
    /// The status without its reason: what the store keeps in plaintext beside the row.
    pub fn kind(&self) -> InstanceStatus {
        match self {
            Status::Running => InstanceStatus::Running,
            Status::Finished => InstanceStatus::Finished,
            Status::Failed { .. } => InstanceStatus::Failed,
            Status::Cancelled => InstanceStatus::Cancelled,
        }
    }
}

/// An instance's status after a row's step.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Status {
    /// Still running: the row is open, recovery resumes it.
    Running,
    /// Reached a final state (after its compensations, for a failure final).
    Finished,
    /// Failed: a guard or an action panicked.
    Failed {
        /// The panic's message.
        reason: String,
    },
    /// Cancelled.
    Cancelled,
}

/// An activity in flight.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ActivityImage<'a> {
    pub state: Name<'a>,
    pub generation: u64,
}

/// A state's step whose activity succeeded (in `succeeded`) or which
/// completed (in `completed`): the state; for a completed step, the
/// generation its compensation's idempotency key is made of; and the done
/// event of its activity, kept if the state has a compensation (which
/// receives its output). Rows written before these were kept hold the
/// state's name alone (read as generation 0, no done event).
#[derive(Serialize, Deserialize)]
#[serde(from = "StepForm<'a, E>")]
#[serde(bound(serialize = "E: Serialize", deserialize = "E: DeserializeOwned"))]
pub(crate) struct StepImage<'a, E> {
    pub state: Name<'a>,
    #[serde(skip_serializing_if = "is_zero_u64")]
    pub generation: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub done: Option<E>,
}

fn is_zero_u64(n: &u64) -> bool {
    *n == 0
}

/// How a step is read: as written now, or as a bare name.
#[derive(Deserialize)]
#[serde(untagged)]
#[serde(bound(deserialize = "E: DeserializeOwned"))]
enum StepForm<'a, E> {
    Full {
        state: Name<'a>,
        #[serde(default)]
        generation: u64,
        #[serde(default = "none")]
        done: Option<E>,
    },
    Name(Name<'a>),
}

fn none<E>() -> Option<E> {
    None
}

impl<'a, E> From<StepForm<'a, E>> for StepImage<'a, E> {
    fn from(form: StepForm<'a, E>) -> Self {
        match form {
            StepForm::Full {
                state,
                generation,
                done,
            } => StepImage {
                state,
                generation,
                done,
            },
            StepForm::Name(state) => StepImage {
                state,
                generation: 0,
                done: None,
            },
        }
    }
}

/// A pending timer: a state's `after` (`state` set) or a `send` (`send` set).
#[derive(Serialize, Deserialize)]
#[serde(bound(serialize = "E: Serialize", deserialize = "E: DeserializeOwned"))]
pub(crate) struct TimerImage<'a, E> {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<Name<'a>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub send: Option<Name<'a>>,
    pub generation: u64,
    pub event: E,
    pub deadline: u64,
}

/// A row's document, written. A float that is NaN or infinite is refused:
/// JSON has no number for it (serde_json would write `null`, which does not
/// read back as a float), and a row must read back as it was written.
pub(crate) fn encode<C: Serialize, E: Serialize>(entry: &Document<'_, &C, &E>) -> Result<Vec<u8>, String> {
    entry.serialize(finite::Finite).map_err(|e| e.to_string())?;
    // Most rows fit: one allocation instead of a series of regrowths.
    let mut out = Vec::with_capacity(512);
    serde_json::to_writer(&mut out, entry).map_err(|e| e.to_string())?;
    Ok(out)
}

/// A row's document, read with the types of the workflow as compiled now.
fn read<C: DeserializeOwned, E: DeserializeOwned>(data: &[u8]) -> Result<Document<'static, C, E>, String> {
    serde_json::from_slice(data).map_err(|e| e.to_string())
}

/// A row's document without its contexts and events: what recovery can
/// still tell about a row the current types cannot read.
fn peek(data: &[u8]) -> Result<Document<'static, IgnoredAny, IgnoredAny>, String> {
    serde_json::from_slice(data).map_err(|e| e.to_string())
}

/// What a row's plain (unsealed) document says of the instance's state and status: the state a
/// transition or a rejection names, else its one active state (`None` for a configuration of
/// several, which needs the graph to display); `None` for a row that is not a plain journal
/// document. What a store upgraded from schema 1 fills its instances' summaries with.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) fn plain_summary(data: &[u8]) -> Option<(Option<String>, Option<InstanceStatus>)> {
    let document = peek(data).ok()?;
    let state = match (&document.step, document.active.as_slice()) {
        (Step::Transition { to, .. }, _) => Some(to.clone()),
        (Step::Rejected { state, .. }, _) => Some(state.clone()),
        (_, [only]) => Some(only.to_string()),
        _ => None,
    };
    Some((state, Some(document.status.kind())))
}

/// How one workflow's rows are sealed: the CRC-32 of the stored bytes, for
/// accidental damage, over what the engine's [`Codec`] (if any) made of the
/// document, bound to the row's identity.
pub(crate) struct Seal {
    pub workflow: Cow<'static, str>,
    pub codec: Option<Arc<dyn Codec>>,
}

impl Seal {
    /// Row `seq` of `instance` holding the document `data`, with its plaintext `summary`.
    pub fn row(
        &self,
        instance: &str,
        seq: u64,
        open: bool,
        data: Vec<u8>,
        summary: Summary,
    ) -> Result<Row, StoreError> {
        let data = match &self.codec {
            None => data,
            Some(codec) => {
                let at = RowId {
                    workflow: &self.workflow,
                    instance,
                    seq,
                    open,
                };
                codec.encode(&at, &data).map_err(|error| StoreError::Unencodable {
                    instance: instance.to_string(),
                    reason: format!("row {seq}: {error}"),
                })?
            }
        };
        Ok(Row {
            instance: instance.to_string(),
            seq,
            open,
            checksum: crc32fast::hash(&data),
            data,
            summary,
        })
    }

    /// The document `row` holds, its checksum checked and its codec undone.
    /// Bytes the codec refuses are [`StoreError::Corrupt`]; a row written
    /// with a key (or a codec) this engine does not have is
    /// [`StoreError::UnknownKey`].
    pub fn open<'a>(&self, row: &'a Row) -> Result<Cow<'a, [u8]>, StoreError> {
        let corrupt = |reason: String| StoreError::Corrupt {
            instance: row.instance.clone(),
            seq: row.seq,
            reason,
        };
        if crc32fast::hash(&row.data) != row.checksum {
            return Err(corrupt("checksum mismatch".into()));
        }
        let at = RowId {
            workflow: &self.workflow,
            instance: &row.instance,
            seq: row.seq,
            open: row.open,
        };
        let decoded = match &self.codec {
            Some(codec) => codec.decode(&at, &row.data),
            None => match Header::read(&row.data) {
                Some((header, _)) => Err(CodecError::UnknownKey {
                    written_by: Some(header),
                    have: "no codec".into(),
                }),
                None => Ok(Cow::Borrowed(&row.data[..])),
            },
        };
        decoded.map_err(|error| match error {
            CodecError::UnknownKey { .. } => StoreError::UnknownKey {
                instance: row.instance.clone(),
                seq: row.seq,
                reason: error.to_string(),
            },
            other => corrupt(other.to_string()),
        })
    }
}

/// Checks `row` and reads its document with the types compiled now, for
/// a workflow whose fingerprint is `fingerprint`, sealed by `seal`. A failed
/// checksum, bytes the codec refuses, a document that is not a journal row,
/// or another format version is [`StoreError::Corrupt`]; a row whose
/// checksum holds but whose context or events no longer decode is
/// [`StoreError::DefinitionChanged`]: these are the bytes written, and the
/// types reading them changed (a context field whose type changed changes no
/// name the fingerprint covers).
pub(crate) fn open<C: DeserializeOwned, E: DeserializeOwned>(
    row: &Row,
    fingerprint: &str,
    seal: &Seal,
) -> Result<Document<'static, C, E>, StoreError> {
    let corrupt = |reason: String| StoreError::Corrupt {
        instance: row.instance.clone(),
        seq: row.seq,
        reason,
    };
    let data = seal.open(row)?;
    let envelope = peek(&data).map_err(corrupt)?;
    if envelope.v != FORMAT {
        return Err(corrupt(format!(
            "journal format {} (this build reads {FORMAT})",
            envelope.v
        )));
    }
    read(&data).map_err(|reason| {
        let under = if envelope.fingerprint == fingerprint {
            String::new()
        } else {
            format!("written under definition {}, now {fingerprint}; ", envelope.fingerprint)
        };
        StoreError::DefinitionChanged {
            instance: row.instance.clone(),
            state: envelope.active.last().map_or_else(String::new, |s| s.to_string()),
            reason: format!(
                "{under}its context or events no longer decode: {}",
                without_value(reason)
            ),
        }
    })
}

/// serde's message without the value it quotes (`invalid type: string
/// "4111…", expected u64`): the value may be a secret, and the error goes to
/// logs; the expectation and the position stay.
fn without_value(reason: String) -> String {
    for prefix in ["invalid type: ", "invalid value: "] {
        if let Some(at) = reason.strip_prefix(prefix).and_then(|rest| rest.find(", expected")) {
            return format!("{prefix}a value (not shown){}", &reason[prefix.len() + at..]);
        }
    }
    reason
}

/// One row of an instance's journal, decoded with its workflow's types:
/// what [`decode`] gives. `C` is the context type, `E` the event type.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Entry<C, E> {
    /// The instance's id.
    pub instance: String,
    /// The row's number in the instance's journal, from 1.
    pub seq: u64,
    /// The step the row records.
    pub step: Step<E>,
    /// The instance's status after the step.
    pub status: Status,
    /// Its active states after the step, ancestors included, in document
    /// order.
    pub active: Vec<String>,
    /// Its context after the step.
    pub context: C,
    /// The fingerprint of the workflow's definition that wrote the row.
    pub fingerprint: String,
    /// When the row was written, in milliseconds since the Unix epoch (`None` for rows of a
    /// store that did not keep it): the row's [`Summary::at`].
    pub at: Option<u64>,
    /// The attempts of the activity or compensation whose outcome the step records, if it took
    /// more than one or failed (see [`Attempt`]); empty otherwise, and in rows written before
    /// attempts were kept.
    pub attempts: Vec<Attempt>,
}

/// Decodes one row of a journal (as [`Store::journal`](crate::Store::journal)
/// gives them) with workflow `W`'s types as compiled now: what a user
/// reads instead of parsing the JSON. The checks are recovery's: a failed
/// checksum or a document that is not a journal row is
/// [`StoreError::Corrupt`]; a context or event that no longer decodes is
/// [`StoreError::DefinitionChanged`].
///
/// ```
/// use std::sync::Arc;
/// use workflow::prelude::*;
/// use workflow::journal::{self, Status, Step};
/// use workflow::{Engine, MemoryStore, Store};
///
/// workflow! {
///     workflow Ticket {
///         context u32;
///         initial Open;
///         events { Close }
///         state Open { on Close => Closed; }
///         final Closed;
///     }
/// }
/// struct Desk;
/// impl TicketHandlers for Desk {}
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let store = Arc::new(MemoryStore::new());
/// let engine = Engine::<Ticket, Desk>::builder(Desk).store(store.clone()).build();
/// engine.start("T-1", 7).await?;
/// engine.send("T-1", TicketEvent::Close).await?;
///
/// let rows = store.journal("Ticket", "T-1").await?;
/// let last = journal::decode::<Ticket>(&rows[1])?;
/// assert!(matches!(last.step, Step::Transition { event: TicketEvent::Close, .. }));
/// assert_eq!((last.status, last.active, last.context), (Status::Finished, vec!["Closed".to_string()], 7));
/// # Ok(()) }
/// ```
pub fn decode<W>(row: &Row) -> Result<Entry<W::Context, W::Event>, StoreError>
where
    W: Machine,
    W::Context: DeserializeOwned,
    W::Event: DeserializeOwned,
{
    entry::<W>(row, None)
}

/// [`decode`] for a row written by an engine with a [`Codec`]
/// ([`EngineBuilder::codec`](crate::EngineBuilder::codec)): the codec is
/// undone first, with the same checks as recovery's (a row refused by the
/// codec is [`StoreError::Corrupt`], one written with a key the codec does
/// not have is [`StoreError::UnknownKey`]).
pub fn decode_with<W>(row: &Row, codec: &Arc<dyn Codec>) -> Result<Entry<W::Context, W::Event>, StoreError>
where
    W: Machine,
    W::Context: DeserializeOwned,
    W::Event: DeserializeOwned,
{
    entry::<W>(row, Some(codec.clone()))
}

fn entry<W>(row: &Row, codec: Option<Arc<dyn Codec>>) -> Result<Entry<W::Context, W::Event>, StoreError>
where
    W: Machine,
    W::Context: DeserializeOwned,
    W::Event: DeserializeOwned,
{
    let seal = Seal {
        workflow: Cow::Borrowed(W::graph().name),
        codec,
    };
    let document = open::<W::Context, W::Event>(row, &definition::<W>(), &seal)?;
    Ok(Entry {
        instance: row.instance.clone(),
        seq: row.seq,
        step: document.step,
        status: document.status,
        active: document.active.into_iter().map(Cow::into_owned).collect(),
        context: document.context,
        fingerprint: document.fingerprint.into_owned(),
        at: row.summary.at,
        attempts: document.attempts.into_owned(),
    })
}

/// Workflow `W`'s fingerprint as compiled now.
pub(crate) fn definition<W: Machine>() -> String {
    fingerprint(
        &crate::graph::text::encode(W::graph()),
        std::any::type_name::<W::Context>(),
    )
}

/// The workflow's fingerprint: a 64-bit FNV-1a hash of its graph's text
/// (states, events with their fields' types, activities with their output
/// types, transitions) and of its context type's name.
pub(crate) fn fingerprint(graph_text: &str, context_type: &str) -> String {
    let text = format!("{graph_text}\ncontext {context_type}");
    format!("{:016x}", crate::fnv::fnv1a_64(text.as_bytes()))
}

/// A serializer that writes nothing and fails on a float that is not
/// finite, naming the fields that lead to it: the check [`encode`] runs
/// before writing (one walk over the values; the path is gathered only on
/// the way out of a failure, so a row that passes costs no allocation).
mod finite {
    use std::fmt::{self, Display};

    use serde::ser::{self, Serialize};

    pub(super) struct Finite;

    /// A float that is not finite, and the fields around it, innermost
    /// first; or a custom error of a `Serialize` impl.
    #[derive(Debug)]
    pub(super) enum NotFinite {
        Float { value: f64, path: Vec<&'static str> },
        Custom(String),
    }

    impl Display for NotFinite {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            match self {
                NotFinite::Float { value, path } => {
                    f.write_str("the float at `")?;
                    for (i, field) in path.iter().rev().enumerate() {
                        if i > 0 {
                            f.write_str(".")?;
                        }
                        f.write_str(field)?;
                    }
                    write!(f, "` is {value}, which JSON cannot hold (it would read back as null)")
                }
                NotFinite::Custom(message) => f.write_str(message),
            }
        }
    }

    impl std::error::Error for NotFinite {}

    impl ser::Error for NotFinite {
        fn custom<T: Display>(message: T) -> Self {
            NotFinite::Custom(message.to_string())
        }
    }

    fn float(value: f64) -> Result<(), NotFinite> {
        if value.is_finite() {
            return Ok(());
        }
        Err(NotFinite::Float {
            value,
            path: Vec::new(),
        })
    }

    /// Checks a field's value, naming the field on the way out of a failure.
    fn inside<T: Serialize + ?Sized>(name: &'static str, value: &T) -> Result<(), NotFinite> {
        value.serialize(Finite).map_err(|mut error| {
            if let NotFinite::Float { path, .. } = &mut error {
                path.push(name);
            }
            error
        })
    }

    impl ser::Serializer for Finite {
        type Ok = ();
        type Error = NotFinite;
        type SerializeSeq = Self;
        type SerializeTuple = Self;
        type SerializeTupleStruct = Self;
        type SerializeTupleVariant = Self;
        type SerializeMap = Self;
        type SerializeStruct = Self;
        type SerializeStructVariant = Self;

        fn serialize_f32(self, v: f32) -> Result<(), NotFinite> {
            float(f64::from(v))
        }
        fn serialize_f64(self, v: f64) -> Result<(), NotFinite> {
            float(v)
        }
        fn serialize_bool(self, _: bool) -> Result<(), NotFinite> {
            Ok(())
        }
        fn serialize_i8(self, _: i8) -> Result<(), NotFinite> {
            Ok(())
        }
        fn serialize_i16(self, _: i16) -> Result<(), NotFinite> {
            Ok(())
        }
        fn serialize_i32(self, _: i32) -> Result<(), NotFinite> {
            Ok(())
        }
        fn serialize_i64(self, _: i64) -> Result<(), NotFinite> {
            Ok(())
        }
        fn serialize_i128(self, _: i128) -> Result<(), NotFinite> {
            Ok(())
        }
        fn serialize_u8(self, _: u8) -> Result<(), NotFinite> {
            Ok(())
        }
        fn serialize_u16(self, _: u16) -> Result<(), NotFinite> {
            Ok(())
        }
        fn serialize_u32(self, _: u32) -> Result<(), NotFinite> {
            Ok(())
        }
        fn serialize_u64(self, _: u64) -> Result<(), NotFinite> {
            Ok(())
        }
        fn serialize_u128(self, _: u128) -> Result<(), NotFinite> {
            Ok(())
        }
        fn serialize_char(self, _: char) -> Result<(), NotFinite> {
            Ok(())
        }
        fn serialize_str(self, _: &str) -> Result<(), NotFinite> {
            Ok(())
        }
        fn serialize_bytes(self, _: &[u8]) -> Result<(), NotFinite> {
            Ok(())
        }
        fn serialize_none(self) -> Result<(), NotFinite> {
            Ok(())
        }
        fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), NotFinite> {
            value.serialize(self)
        }
        fn serialize_unit(self) -> Result<(), NotFinite> {
            Ok(())
        }
        fn serialize_unit_struct(self, _: &'static str) -> Result<(), NotFinite> {
            Ok(())
        }
        fn serialize_unit_variant(self, _: &'static str, _: u32, _: &'static str) -> Result<(), NotFinite> {
            Ok(())
        }
        fn serialize_newtype_struct<T: Serialize + ?Sized>(self, _: &'static str, value: &T) -> Result<(), NotFinite> {
            value.serialize(self)
        }
        fn serialize_newtype_variant<T: Serialize + ?Sized>(
            self,
            _: &'static str,
            _: u32,
            variant: &'static str,
            value: &T,
        ) -> Result<(), NotFinite> {
            inside(variant, value)
        }
        fn serialize_seq(self, _: Option<usize>) -> Result<Self, NotFinite> {
            Ok(self)
        }
        fn serialize_tuple(self, _: usize) -> Result<Self, NotFinite> {
            Ok(self)
        }
        fn serialize_tuple_struct(self, _: &'static str, _: usize) -> Result<Self, NotFinite> {
            Ok(self)
        }
        fn serialize_tuple_variant(
            self,
            _: &'static str,
            _: u32,
            _: &'static str,
            _: usize,
        ) -> Result<Self, NotFinite> {
            Ok(self)
        }
        fn serialize_map(self, _: Option<usize>) -> Result<Self, NotFinite> {
            Ok(self)
        }
        fn serialize_struct(self, _: &'static str, _: usize) -> Result<Self, NotFinite> {
            Ok(self)
        }
        fn serialize_struct_variant(
            self,
            _: &'static str,
            _: u32,
            _: &'static str,
            _: usize,
        ) -> Result<Self, NotFinite> {
            Ok(self)
        }
    }

    /// The compound serializers: each element checked as a value of its own, each struct field
    /// under its name.
    macro_rules! unnamed {
        ($($kind:ident::$method:ident),*) => {$(
            impl ser::$kind for Finite {
                type Ok = ();
                type Error = NotFinite;
                fn $method<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), NotFinite> {
                    value.serialize(Finite)
                }
                fn end(self) -> Result<(), NotFinite> {
                    Ok(())
                }
            }
        )*};
    }
    macro_rules! named_fields {
        ($($kind:ident),*) => {$(
            impl ser::$kind for Finite {
                type Ok = ();
                type Error = NotFinite;
                fn serialize_field<T: Serialize + ?Sized>(&mut self, key: &'static str, value: &T) -> Result<(), NotFinite> {
                    inside(key, value)
                }
                fn end(self) -> Result<(), NotFinite> {
                    Ok(())
                }
            }
        )*};
    }
    unnamed!(
        SerializeSeq::serialize_element,
        SerializeTuple::serialize_element,
        SerializeTupleStruct::serialize_field,
        SerializeTupleVariant::serialize_field
    );
    named_fields!(SerializeStruct, SerializeStructVariant);

    impl ser::SerializeMap for Finite {
        type Ok = ();
        type Error = NotFinite;
        fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), NotFinite> {
            key.serialize(Finite)
        }
        fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), NotFinite> {
            value.serialize(Finite)
        }
        fn end(self) -> Result<(), NotFinite> {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_peek() {
        let event = "Go".to_string();
        let context = 7_u32;
        let entry = Document {
            v: FORMAT,
            fingerprint: fingerprint("W", "u32").into(),
            step: Step::Transition {
                from: "A".into(),
                event: &event,
                to: "B".into(),
            },
            attempts: Cow::Borrowed(&[]),
            status: Status::Running,
            active: vec!["B".into()],
            history: vec![],
            context: &context,
            activities: vec![ActivityImage {
                state: "B".into(),
                generation: 3,
            }],
            timers: vec![TimerImage {
                state: Some("B".into()),
                send: None,
                generation: 4,
                event: &event,
                deadline: 1_000,
            }],
            succeeded: vec![],
            completed: vec![StepImage {
                state: "A".into(),
                generation: 2,
                done: Some(&event),
            }],
            generation: 4,
            priority: 0,
        };
        let bytes = encode(&entry).unwrap();
        let back: Document<'static, u32, String> = read(&bytes).unwrap();
        assert_eq!(back.context, 7);
        assert!(matches!(back.step, Step::Transition { ref event, .. } if event == "Go"));
        assert_eq!(back.timers[0].deadline, 1_000);
        assert_eq!(back.activities, entry.activities);
        // A different context type fails the typed decode but not the peek.
        assert!(read::<String, String>(&bytes).is_err());
        assert_eq!(peek(&bytes).unwrap().active, vec![Name::from("B")]);
        assert!(peek(b"{not json").is_err());
    }

    #[test]
    fn floats_that_json_cannot_hold_are_refused_where_they_are() {
        #[derive(Serialize)]
        struct Price {
            amount: f64,
            rates: Vec<(u8, f32)>,
        }
        let encode_context = |price: &Price| {
            let event = ();
            encode(&Document {
                v: FORMAT,
                fingerprint: "f".into(),
                step: Step::Transition {
                    from: "A".into(),
                    event: &event,
                    to: "B".into(),
                },
                attempts: Cow::Borrowed(&[]),
                status: Status::Running,
                active: vec!["B".into()],
                history: vec![],
                context: price,
                activities: vec![],
                timers: vec![],
                succeeded: vec![],
                completed: vec![],
                generation: 0,
                priority: 0,
            })
        };
        let fine = Price {
            amount: 1.5,
            rates: vec![(1, -0.0)],
        };
        assert!(encode_context(&fine).is_ok());
        let nan = Price {
            amount: f64::NAN,
            ..fine
        };
        assert_eq!(
            encode_context(&nan).unwrap_err(),
            "the float at `context.amount` is NaN, which JSON cannot hold (it would read back as null)"
        );
        let infinite = Price {
            amount: 0.0,
            rates: vec![(1, 2.0), (2, f32::NEG_INFINITY)],
        };
        assert_eq!(
            encode_context(&infinite).unwrap_err(),
            "the float at `context.rates` is -inf, which JSON cannot hold (it would read back as null)"
        );
    }

    /// A transition row of an activity's outcome, after `attempts`.
    fn outcome(attempts: &[Attempt]) -> Vec<u8> {
        let (event, context) = ("PayDone".to_string(), 7_u32);
        encode(&Document {
            v: FORMAT,
            fingerprint: "f".into(),
            step: Step::Transition {
                from: "Paying".into(),
                event: &event,
                to: "Paid".into(),
            },
            attempts: Cow::Borrowed(attempts),
            status: Status::Running,
            active: vec!["Paid".into()],
            history: vec![],
            context: &context,
            activities: vec![],
            timers: vec![],
            succeeded: vec![],
            completed: vec![],
            generation: 1,
            priority: 0,
        })
        .unwrap()
    }

    #[test]
    fn attempts_are_kept_in_the_outcomes_row_and_left_out_when_there_are_none() {
        let busy = RecordedError::new(ErrorKind::Failed, "busy");
        let attempts = [
            Attempt::new(
                1,
                1_800_000_000_000,
                std::time::Duration::from_micros(2_500),
                Some(&busy),
            ),
            Attempt::new(2, 1_800_000_000_013, std::time::Duration::from_micros(900), None),
        ];
        let bytes = outcome(&attempts);
        let text = std::str::from_utf8(&bytes).unwrap();
        assert!(
            text.contains(
                r#""attempts":[{"attempt":1,"at":1800000000000,"duration_us":2500,"error":"busy","error_kind":"failed"},{"attempt":2,"at":1800000000013,"duration_us":900}]"#
            ),
            "{text}"
        );
        let back: Document<'static, u32, String> = read(&bytes).unwrap();
        assert_eq!(*back.attempts, attempts);
        assert_eq!(peek(&bytes).unwrap().attempts.len(), 2);
        // The common row, one attempt that succeeded, is written as before.
        let plain = outcome(&[]);
        assert!(!std::str::from_utf8(&plain).unwrap().contains("attempts"));
        assert_eq!(
            bytes.len() - plain.len(),
            text.find(r#","status""#).unwrap() - text.find(r#","attempts""#).unwrap()
        );
    }

    #[test]
    fn a_row_written_before_attempts_were_kept_reads_with_none() {
        // A `…Failed` outcome as builds before this field wrote it.
        let old = br#"{"v":1,"fingerprint":"f","step":{"kind":"transition","from":"Paying",
            "event":{"PayFailed":{"kind":"Failed","message":"down","attempts":3}},"to":"Declined"},
            "status":{"state":"finished"},"active":["Declined"],"context":1,"generation":1}"#;
        let entry: Document<'static, u32, serde_json::Value> = read(old).unwrap();
        assert!(entry.attempts.is_empty());
        assert!(matches!(entry.step, Step::Transition { ref to, .. } if to == "Declined"));
        let compensated = br#"{"v":1,"fingerprint":"f","step":{"kind":"compensated","compensation":"refund",
            "error":"down"},"status":{"state":"finished"},"active":["Declined"],"context":1,"generation":1}"#;
        assert!(read::<u32, String>(compensated).unwrap().attempts.is_empty());
    }

    #[test]
    fn attempts_that_do_not_decode_are_a_corrupt_row() {
        let bytes = outcome(&[]);
        let text = std::str::from_utf8(&bytes).unwrap().replacen(
            r#""status""#,
            r#""attempts":[{"attempt":"one"}],"status""#,
            1,
        );
        let seal = Seal {
            workflow: "W".into(),
            codec: None,
        };
        let row = seal.row("i-1", 2, true, text.into_bytes(), Summary::default()).unwrap();
        let error = open::<u32, String>(&row, "f", &seal).err().unwrap();
        assert!(matches!(error, StoreError::Corrupt { seq: 2, .. }), "{error}");
    }

    #[test]
    fn a_completed_step_written_as_a_bare_name_still_reads() {
        let old = br#"{"v":1,"fingerprint":"f","step":{"kind":"started"},"status":{"state":"running"},
            "active":["B"],"context":1,"completed":["A",{"state":"B","generation":4}],"generation":4}"#;
        let entry: Document<'static, u32, String> = read(old).unwrap();
        let completed: Vec<(&str, u64)> = entry.completed.iter().map(|c| (&*c.state, c.generation)).collect();
        assert_eq!(completed, [("A", 0), ("B", 4)]);
    }

    #[test]
    fn a_value_that_no_longer_decodes_is_not_quoted() {
        let reason = read::<u64, String>(
            br#"{"v":1,"fingerprint":"f","step":{"kind":"started"},
            "status":{"state":"running"},"active":["A"],"context":"4111-1111","generation":0}"#,
        )
        .err()
        .unwrap();
        assert!(reason.contains("4111-1111"), "serde quotes it: {reason}");
        let shown = without_value(reason);
        assert!(
            shown.starts_with("invalid type: a value (not shown), expected u64"),
            "{shown}"
        );
        assert_eq!(without_value("missing field `id`".into()), "missing field `id`");
    }

    #[test]
    fn fingerprints_are_stable_and_distinct() {
        assert_eq!(fingerprint("W", "u32"), fingerprint("W", "u32"));
        assert_ne!(fingerprint("a", "u32"), fingerprint("b", "u32"));
        assert_ne!(
            fingerprint("a", "u32"),
            fingerprint("a", "u64"),
            "the context type counts"
        );
    }
}
