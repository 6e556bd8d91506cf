//! Where an instance stands, and what it remembers.

use std::fmt;
use std::time::Duration;

use crate::activity::{ActivityError, ErrorKind};
use crate::machine::Machine;

/// Where an instance stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Status<S> {
    /// Running, in this state.
    Running(S),
    /// Reached this final state (after its compensations, for a failure final).
    Finished(S),
    /// A guard or an action panicked in this state, or the store could not
    /// commit its step; the instance stopped.
    Failed {
        /// The state it was in.
        state: S,
        /// The panic's message, or the store's error.
        reason: String,
    },
    /// Cancelled in this state.
    Cancelled(S),
}

impl<S> Status<S> {
    /// The state, whatever the status.
    pub fn state(&self) -> &S {
        match self {
            Status::Running(s) | Status::Finished(s) | Status::Cancelled(s) => s,
            Status::Failed { state, .. } => state,
        }
    }

    /// Whether the instance is still running.
    pub fn is_running(&self) -> bool {
        matches!(self, Status::Running(_))
    }
}

/// One entry of an instance's history.
#[derive(Clone, Debug, PartialEq)]
pub struct Record {
    /// When, since the engine was built (on tokio's clock).
    pub at: Duration,
    /// What.
    pub kind: RecordKind,
}

/// What a history [`Record`] says.
#[derive(Clone, Debug, PartialEq)]
pub enum RecordKind {
    /// The instance started in this state.
    Started(String),
    /// A transition (for a statechart, a macrostep).
    Transition {
        /// The state before.
        from: String,
        /// The event.
        event: &'static str,
        /// The state after.
        to: String,
    },
    /// An event the state did not accept.
    Rejected {
        /// The state.
        state: String,
        /// The event.
        event: &'static str,
    },
    /// An activity's (or a compensation's) attempt started.
    AttemptStarted {
        /// The activity (or compensation).
        activity: &'static str,
        /// The attempt's number, from 1.
        attempt: u32,
    },
    /// An activity's (or a compensation's) attempt ended.
    AttemptEnded {
        /// The activity (or compensation).
        activity: &'static str,
        /// The attempt's number, from 1.
        attempt: u32,
        /// How long it ran.
        duration: Duration,
        /// Its error, if it failed.
        error: Option<RecordedError>,
    },
    /// A running activity was cancelled because its state was left.
    ActivityCancelled(&'static str),
    /// A timer was set.
    TimerSet {
        /// The event it will deliver.
        event: &'static str,
        /// After how long.
        delay: Duration,
    },
    /// A timer fired.
    TimerFired(&'static str),
    /// A compensation ran (with its retries).
    Compensated {
        /// The compensation.
        compensation: &'static str,
        /// Its error, if it still failed after its retries.
        error: Option<RecordedError>,
    },
    /// A guard or an action panicked; the instance stopped.
    Panicked(String),
    /// The store could not commit a step; the instance stopped.
    StoreFailed(String),
    /// The instance was cancelled.
    Cancelled,
    /// A durable engine resumed the instance from its journal row `seq`.
    Recovered {
        /// The row's number.
        seq: u64,
    },
    /// [`Engine::retry`](super::Engine::retry) resumed the failed instance from its last
    /// committed step.
    Retried {
        /// Which retry of the instance this is, from 1.
        attempt: u32,
    },
}

/// An activity's or a compensation's error in the history: its kind
/// (failed, non-retryable, timed out, panicked) and its message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordedError {
    /// Why it failed.
    pub kind: ErrorKind,
    /// What it said.
    pub message: String,
}

impl RecordedError {
    /// `kind` with `message`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }
}

impl From<&ActivityError> for RecordedError {
    fn from(error: &ActivityError) -> Self {
        Self::new(error.kind(), error.message())
    }
}

impl fmt::Display for RecordedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// An instance's state, context and history, as [`Engine::snapshot`](super::Engine::snapshot) gives them.
#[derive(Clone)]
pub struct Snapshot<W: Machine> {
    /// Where it stands.
    pub status: Status<W::State>,
    /// Its context now.
    pub context: W::Context,
    /// What happened to it, oldest first: the newest
    /// [`Config::history`](super::Config::history) records.
    pub history: Vec<Record>,
}

impl<W: Machine> fmt::Debug for Snapshot<W>
where
    W::Context: fmt::Debug,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Snapshot")
            .field("status", &self.status)
            .field("context", &self.context)
            .field("history", &self.history)
            .finish()
    }
}
