//! The traits every generated workflow implements, and the outcome types of
//! its `handle` method.

use std::fmt;
use std::future::Future;
use std::hash::Hash;

use crate::activity::{ActivityCall, ActivityError};
use crate::chart::Scheduled;
use crate::chart::StateEnum;
use crate::graph::Graph;

/// What the runtime knows about a generated machine without its handlers:
/// its types, its graph and its current state.
///
/// Implemented by the `workflow!` macro for the machine type (`Order` for
/// `workflow Order`); users rarely implement it by hand.
pub trait Machine: Sized {
    /// One state of the graph: the state enum (`OrderState`).
    type Node: StateEnum;
    /// What [`state`](Self::state) returns: the state enum for a flat
    /// workflow, a [`Configuration`](crate::Configuration) of active states
    /// for one with nested or parallel states.
    type State: Copy + Eq + Hash + fmt::Debug + fmt::Display + Send + Sync + 'static;
    /// The event enum (`OrderEvent`), including the generated activity and timer events.
    type Event: fmt::Debug + Send + 'static;
    /// The user's context type, owned by each instance.
    type Context;

    /// The static description of the workflow, for diagrams and introspection.
    fn graph() -> &'static Graph<'static>;

    /// A machine in the initial state owning `context`. No entry action runs.
    fn new(context: Self::Context) -> Self;

    /// The current state.
    fn state(&self) -> Self::State;

    /// The instance's context.
    fn context(&self) -> &Self::Context;

    /// Takes the machine apart, giving back its context.
    fn into_context(self) -> Self::Context;

    /// The index of `event`'s variant in the graph's `events`.
    fn event_index(event: &Self::Event) -> usize;

    /// Whether the graph state `node` is active (the current state of a flat
    /// workflow; any active state, compound ones included, of a statechart).
    fn is_active(&self, node: Self::Node) -> bool;

    /// Whether the last step left `node` and entered it again (a statechart
    /// transition that exits and re-enters it); the engine then restarts the
    /// state's activity and timers. A flat workflow's `Step` already says so.
    fn reentered(&self, node: Self::Node) -> bool {
        let _ = node;
        false
    }

    /// The event with this index in the graph's `events`, if it carries no
    /// data: the timer events, and the declared unit events.
    fn unit_event(index: usize) -> Option<Self::Event>;

    /// The event that reports `node`'s activity failing for good.
    fn failure_event(node: Self::Node, error: ActivityError) -> Option<Self::Event>;

    /// The timers that `send` and `cancel` actions asked for since the last
    /// call, oldest first (always empty for a flat workflow).
    fn take_scheduled(&mut self) -> Vec<Scheduled<Self::Event>> {
        Vec::new()
    }
}

/// A machine driven by the handlers `H` (any implementation of the
/// generated handler trait).
pub trait Workflow<H: ?Sized>: Machine {
    /// Delivers one event: runs the first enabled transition of the current
    /// state (exit actions, transition actions, entry actions) and reports it,
    /// or rejects the event and changes nothing.
    fn handle(&mut self, event: &Self::Event, handlers: &H) -> Result<Step<Self::State>, Rejected<Self::State>>;

    /// Runs the current state's activity under its retry policy and returns the
    /// event it produced (its `done` or its error event), or `None` if the
    /// state invokes nothing.
    fn run_activity<'a>(&'a self, handlers: &'a H) -> impl Future<Output = Option<Self::Event>> + Send + 'a
    where
        H: 'a;

    /// Runs the initial state's entry actions (for a statechart, the initial
    /// macrostep). Called once, before the first event.
    fn start(&mut self, handlers: &H);

    /// One attempt of `node`'s activity, its output wrapped in the activity's
    /// done event; `None` if `node` invokes nothing. The engine runs it under
    /// the declared retry policy.
    fn attempt<'a>(
        node: Self::Node,
        context: &'a Self::Context,
        handlers: &'a H,
        call: ActivityCall,
    ) -> Option<impl Future<Output = Result<Self::Event, ActivityError>> + Send + 'a>
    where
        H: 'a;

    /// One attempt of the compensation `node` declares; `None` if it
    /// declares none.
    fn compensate<'a>(
        node: Self::Node,
        context: &'a Self::Context,
        handlers: &'a H,
        call: ActivityCall,
    ) -> Option<impl Future<Output = Result<(), ActivityError>> + Send + 'a>
    where
        H: 'a;
}

/// A transition taken by `handle`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Step<S> {
    /// The state before the event.
    pub from: S,
    /// The state after it (equal to `from` for a targetless transition).
    pub to: S,
    /// Index of the transition taken in the graph's
    /// [`transitions`](Graph::transitions).
    pub transition: u16,
    /// Whether `from` was exited and `to` entered. `false` only for a
    /// targetless transition; a self-transition exits and re-enters.
    pub exited: bool,
}

/// The error `handle` returns for an event the current state does not accept
/// (no transition on it, or every guard said no). The machine is unchanged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Rejected<S> {
    /// The state that rejected the event.
    pub state: S,
    /// The event's name.
    pub event: &'static str,
}

impl<S: fmt::Display> fmt::Display for Rejected<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "event `{}` is not accepted in state `{}`", self.event, self.state)
    }
}

impl<S: fmt::Debug + fmt::Display> std::error::Error for Rejected<S> {}
