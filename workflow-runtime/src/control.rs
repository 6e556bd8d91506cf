//! Steering a live engine without its workflow's types: [`Control`], which a web router (or
//! any other front end) holds as `Arc<dyn Control>` for engines of any workflow.

use std::fmt;

use async_trait::async_trait;
use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::engine::{Engine, EngineError};
use crate::graph::Graph;
use crate::machine::Workflow;
use crate::metrics::WorkflowMetrics;

/// An engine's actions and figures, its event type erased: events come as their serde JSON
/// form (`"Ship"` for an event without fields, `{"Checkout":{"total":5}}` for one with).
/// Implemented by every [`Engine`] whose event type deserializes.
///
/// ```
/// use std::sync::Arc;
/// use workflow::prelude::*;
/// use workflow::{Control, ControlError, Engine, EngineError};
///
/// workflow! {
///     workflow Ticket {
///         initial Open;
///         events { Close }
///         state Open { on Close => Closed; }
///         final Closed;
///     }
/// }
/// struct Desk;
/// impl TicketHandlers for Desk {}
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), ControlError> {
/// let engine = Engine::<Ticket, Desk>::new(Desk);
/// engine.start("T-1", ()).await?;
/// let control: Arc<dyn Control> = Arc::new(engine.clone());
/// assert_eq!(control.workflow(), "Ticket");
/// assert!(matches!(control.send("T-1", &serde_json::json!("Reopen")).await, Err(ControlError::BadEvent { .. })));
/// control.send("T-1", &serde_json::json!("Close")).await?;
/// assert_eq!(engine.wait("T-1").await?, TicketState::Closed);
/// assert_eq!(control.cancel("T-9").await, Err(ControlError::Engine(EngineError::UnknownInstance("T-9".into()))));
/// # Ok(()) }
/// ```
#[async_trait]
pub trait Control: Send + Sync {
    /// The workflow's name.
    fn workflow(&self) -> &'static str;

    /// The workflow's definition: its states, events and transitions.
    fn graph(&self) -> &'static Graph<'static>;

    /// [`Engine::cancel`].
    async fn cancel(&self, id: &str) -> Result<(), ControlError>;

    /// [`Engine::send`] of the event `event` is the JSON form of.
    async fn send(&self, id: &str, event: &serde_json::Value) -> Result<(), ControlError>;

    /// [`Engine::retry`].
    async fn retry(&self, id: &str) -> Result<(), ControlError>;

    /// [`Engine::metrics`].
    fn metrics(&self) -> WorkflowMetrics;
}

/// What a [`Control`] action can run into.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ControlError {
    /// The engine refused (an unknown instance, one that has stopped, an event its state does
    /// not accept…).
    Engine(EngineError),
    /// The JSON is not one of the workflow's events.
    BadEvent {
        /// The workflow.
        workflow: &'static str,
        /// Why it does not read as an event.
        reason: String,
    },
}

impl From<EngineError> for ControlError {
    fn from(error: EngineError) -> Self {
        ControlError::Engine(error)
    }
}

impl fmt::Display for ControlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ControlError::Engine(error) => error.fmt(f),
            ControlError::BadEvent { workflow, reason } => write!(f, "not an event of `{workflow}`: {reason}"),
        }
    }
}

impl std::error::Error for ControlError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ControlError::Engine(error) => Some(error),
            ControlError::BadEvent { .. } => None,
        }
    }
}

#[async_trait]
impl<W, H> Control for Engine<W, H>
where
    W: Workflow<H> + Send + 'static,
    W::Context: Clone + Send + Sync + 'static,
    // Sync: a send to an instance another process owns holds the event across the store's
    // post.
    W::Event: DeserializeOwned + Send + Sync + 'static,
    H: Send + Sync + 'static,
{
    fn workflow(&self) -> &'static str {
        W::graph().name
    }

    fn graph(&self) -> &'static Graph<'static> {
        W::graph()
    }

    async fn cancel(&self, id: &str) -> Result<(), ControlError> {
        Ok(Engine::cancel(self, id).await?)
    }

    async fn send(&self, id: &str, event: &serde_json::Value) -> Result<(), ControlError> {
        let event = <W::Event as Deserialize>::deserialize(event).map_err(|error| ControlError::BadEvent {
            workflow: W::graph().name,
            reason: error.to_string(),
        })?;
        Ok(Engine::send(self, id, event).await?)
    }

    async fn retry(&self, id: &str) -> Result<(), ControlError> {
        Ok(Engine::retry(self, id).await?)
    }

    fn metrics(&self) -> WorkflowMetrics {
        Engine::metrics(self)
    }
}
