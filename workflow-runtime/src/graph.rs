//! The static description of a workflow: its states, events and transitions.
//!
//! Every `workflow!` block produces one [`Graph`] (reachable through
//! [`Machine::graph`](crate::Machine::graph)); diagrams, introspection and the
//! engine read it. Indices into [`Graph::states`] identify states.

use std::time::Duration;

use crate::activity::RetryPolicy;

/// A workflow's states, events and transitions, as declared in its `workflow!` block.
///
/// The lifetime lets the macro build a graph from borrowed data at compile time;
/// generated code always exposes a `Graph<'static>`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Graph<'a> {
    /// The workflow's name.
    pub name: &'a str,
    /// Index in [`states`](Self::states) of the initial state.
    pub initial: usize,
    /// Every state, in declaration order.
    pub states: &'a [StateInfo<'a>],
    /// Every declared event, in declaration order.
    pub events: &'a [EventInfo<'a>],
    /// Every transition, grouped by source state, in declaration order within a state.
    pub transitions: &'a [TransitionInfo<'a>],
}

/// One state of a [`Graph`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StateInfo<'a> {
    /// The state's name.
    pub name: &'a str,
    /// Whether the state is an ordinary or a final one.
    pub kind: StateKind,
    /// The enclosing state, if the state is nested (`None` for top-level states).
    pub parent: Option<usize>,
    /// Actions run, in order, when the state is entered.
    pub entry: &'a [&'a str],
    /// Actions run, in order, when the state is left.
    pub exit: &'a [&'a str],
    /// The activity the state runs while it is active.
    pub invoke: Option<InvokeInfo<'a>>,
    /// The compensation that undoes this state's step if the workflow fails later.
    pub compensate: Option<&'a str>,
}

impl StateInfo<'_> {
    /// Whether this is a final state (of either kind).
    pub const fn is_final(&self) -> bool {
        matches!(self.kind, StateKind::Final { .. })
    }
}

/// What kind of state a [`StateInfo`] describes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StateKind {
    /// A state with transitions out of it.
    Atomic,
    /// A final state; `failure` is set for `final NAME (failure);`, whose
    /// reaching runs the workflow's compensations.
    Final {
        /// Whether reaching this state means the workflow failed.
        failure: bool,
    },
}

/// The activity a state invokes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct InvokeInfo<'a> {
    /// The activity's name (a method of the handler trait).
    pub activity: &'a str,
    /// The activity's output type, as written in the block.
    pub output: &'a str,
    /// Retry and timeout policy.
    pub policy: RetryPolicy,
}

/// One declared event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EventInfo<'a> {
    /// The event's name.
    pub name: &'a str,
    /// The payload's fields as `(name, type)`, empty for a unit event.
    pub fields: &'a [(&'a str, &'a str)],
}

/// One transition of a [`Graph`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TransitionInfo<'a> {
    /// Index of the state the transition leaves.
    pub source: usize,
    /// What makes the transition fire.
    pub trigger: Trigger<'a>,
    /// The guard that must hold for it to fire.
    pub guard: Option<&'a str>,
    /// Index of the target state; `None` for a targetless transition, which
    /// runs its actions without leaving the state.
    pub target: Option<usize>,
    /// Actions run, in order, between the source's exit and the target's entry.
    pub actions: &'a [&'a str],
}

/// What makes a transition fire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trigger<'a> {
    /// A declared event, by name.
    Event(&'a str),
    /// The state's activity (named here) completed.
    Done(&'a str),
    /// The state's activity (named here) failed for good.
    Error(&'a str),
    /// The state has been active for this long.
    After(Duration),
}

impl<'a> Graph<'a> {
    /// The index of the state called `name`.
    pub fn state_index(&self, name: &str) -> Option<usize> {
        self.states.iter().position(|s| s.name == name)
    }

    /// The transitions leaving state `index`, in priority order.
    pub fn transitions_from(&self, index: usize) -> impl Iterator<Item = &TransitionInfo<'a>> {
        self.transitions.iter().filter(move |t| t.source == index)
    }
}
