//! What can go wrong talking to an engine.

use std::fmt;

use crate::store::StoreError;

/// What can go wrong talking to an engine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EngineError {
    /// No instance has this id.
    UnknownInstance(String),
    /// An instance with this id already exists.
    DuplicateId(String),
    /// The instance's current state does not accept the event; nothing changed.
    Rejected {
        /// The instance.
        id: String,
        /// Its state, displayed.
        state: String,
        /// The event's name.
        event: &'static str,
    },
    /// The instance's mailbox is full (from [`Engine::try_send`](super::Engine::try_send)).
    MailboxFull(String),
    /// [`Engine::try_send`](super::Engine::try_send) on a store several processes share, for an
    /// instance this process does not run: another process may own it, and an event reaches
    /// that one only through the store, which `try_send` (it never waits) does not write. Use
    /// [`Engine::send`](super::Engine::send), which stores it for the owner.
    NotHere(String),
    /// The instance has stopped: it finished, failed or was cancelled.
    Stopped(String),
    /// The instance failed: a guard or an action panicked, or an event led
    /// into an eventless loop ([`Reason::EventlessLoop`](crate::Reason::EventlessLoop)).
    InstanceFailed {
        /// The instance.
        id: String,
        /// What happened.
        reason: String,
    },
    /// The instance was cancelled before it finished.
    Cancelled(String),
    /// The engine is shut down and takes nothing new.
    ShutDown,
    /// [`Engine::retry`](super::Engine::retry) of an instance that has not failed: it is
    /// running (also when another call, or another process sharing the store, retried it
    /// first), finished (a failure final state reached by design is finished, not failed) or
    /// cancelled.
    NotFailed {
        /// The instance.
        id: String,
        /// Its status: `running`, `finished` or `cancelled`.
        status: &'static str,
    },
    /// [`Engine::retry`](super::Engine::retry) of a failed instance that has no step to resume
    /// from: it failed in its first step (an entry action of its initial state panicked), before
    /// anything of it was committed.
    NotRetryable {
        /// The instance.
        id: String,
        /// Why.
        reason: String,
    },
    /// The store failed to commit the instance's step (the instance
    /// stopped; its journal holds its last committed step), or recovery
    /// could not resume it.
    Store(StoreError),
}

impl From<StoreError> for EngineError {
    fn from(error: StoreError) -> Self {
        EngineError::Store(error)
    }
}

impl fmt::Display for EngineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EngineError::UnknownInstance(id) => write!(f, "no instance `{id}`"),
            EngineError::DuplicateId(id) => write!(f, "an instance `{id}` already exists"),
            EngineError::Rejected { id, state, event } => {
                write!(f, "instance `{id}`: event `{event}` is not accepted in state `{state}`")
            }
            EngineError::MailboxFull(id) => write!(f, "the mailbox of instance `{id}` is full"),
            EngineError::NotHere(id) => write!(
                f,
                "instance `{id}` is not run by this process (another may own it): `try_send` reaches only \
                 this process's instances; use `send`"
            ),
            EngineError::Stopped(id) => write!(f, "instance `{id}` has stopped"),
            EngineError::InstanceFailed { id, reason } => write!(f, "instance `{id}` failed: {reason}"),
            EngineError::Cancelled(id) => write!(f, "instance `{id}` was cancelled"),
            EngineError::ShutDown => f.write_str("the engine is shut down"),
            EngineError::NotFailed { id, status } => write!(f, "instance `{id}` has not failed: it is {status}"),
            EngineError::NotRetryable { id, reason } => write!(f, "instance `{id}` cannot be retried: {reason}"),
            EngineError::Store(error) => error.fmt(f),
        }
    }
}

impl std::error::Error for EngineError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            EngineError::Store(error) => Some(error),
            _ => None,
        }
    }
}
