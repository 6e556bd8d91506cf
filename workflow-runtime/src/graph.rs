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
    /// Every state in document order: a state comes before its children,
    /// and its descendants are exactly the states `index + 1 .. end`.
    pub states: &'a [StateInfo<'a>],
    /// Every variant of the event enum, in order: the declared events, then
    /// each activity's done and failed events, then the timer events.
    pub events: &'a [EventInfo<'a>],
    /// Every transition, grouped by source state in document order, in
    /// declaration order within a state.
    pub transitions: &'a [TransitionInfo<'a>],
}

/// One state of a [`Graph`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StateInfo<'a> {
    /// The state's name.
    pub name: &'a str,
    /// Atomic, compound, parallel, final or history.
    pub kind: StateKind,
    /// The enclosing state, if the state is nested (`None` for top-level states).
    pub parent: Option<usize>,
    /// One past the index of the state's last descendant.
    pub end: usize,
    /// The state's transitions in [`Graph::transitions`].
    pub transitions: TransitionRange,
    /// Actions run, in order, when the state is entered.
    pub entry: &'a [&'a str],
    /// Actions run, in order, when the state is left.
    pub exit: &'a [&'a str],
    /// The activity the state runs while it is active.
    pub invoke: Option<InvokeInfo<'a>>,
    /// The compensation that undoes this state's step if the workflow fails later.
    pub compensate: Option<&'a str>,
}

/// A range of indices into [`Graph::transitions`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct TransitionRange {
    /// The first index.
    pub start: usize,
    /// One past the last index.
    pub end: usize,
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
    /// A state without child states.
    Atomic,
    /// A state with child states, exactly one of them active; `initial` is
    /// the child (possibly a history state) entered by default.
    Compound {
        /// Index of the default child.
        initial: usize,
    },
    /// A state whose child states (regions) are all active at once.
    Parallel,
    /// A final state; `failure` is set for `final NAME (failure);`, whose
    /// reaching runs the workflow's compensations.
    Final {
        /// Whether reaching this state means the workflow failed.
        failure: bool,
    },
    /// A history pseudo-state: entering it restores what its parent had
    /// active when last left. Its one transition, if any, is the default.
    History {
        /// Deep history remembers atomic descendants, shallow the children.
        deep: bool,
        /// Its memory's index among the workflow's history states.
        slot: usize,
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

/// One variant of the event enum.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EventInfo<'a> {
    /// The variant's name.
    pub name: &'a str,
    /// The payload's fields as `(name, type)`, empty for a unit event.
    pub fields: &'a [(&'a str, &'a str)],
    /// Declared, or made by the machine.
    pub kind: EventKind<'a>,
}

/// Where an event comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind<'a> {
    /// Declared in the `events` block.
    Declared,
    /// The activity named here completed (the variant carries its output).
    Done(&'a str),
    /// The activity named here failed for good.
    Failed(&'a str),
    /// The state with this index has been active for this long.
    Timer {
        /// The state whose `after` this is.
        state: usize,
        /// The delay.
        delay: Duration,
    },
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
    /// Indices of the target states; empty for a targetless transition,
    /// which runs its actions without leaving the state.
    pub targets: &'a [usize],
    /// `=> internal TARGET`: the source is not exited when the targets are
    /// its descendants.
    pub internal: bool,
    /// Actions run, in order, between the exits and the entries.
    pub actions: &'a [&'a str],
}

/// What makes a transition fire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trigger<'a> {
    /// Any of these events (indices into [`Graph::events`]): declared ones,
    /// an activity's done or failed event, a timer.
    Events(&'a [usize]),
    /// Every event (`on _`).
    Any,
    /// No event: taken as soon as the source is active and the guard holds.
    Always,
    /// The source, a compound or parallel state, completed (`on done`).
    StateDone,
}

impl<'a> Graph<'a> {
    /// The index of the state called `name`.
    pub fn state_index(&self, name: &str) -> Option<usize> {
        self.states.iter().position(|s| s.name == name)
    }

    /// The transitions leaving state `index`, in priority order.
    pub fn transitions_from(&self, index: usize) -> &'a [TransitionInfo<'a>] {
        let range = self.states[index].transitions;
        &self.transitions[range.start..range.end]
    }

    /// Whether the workflow has nested or parallel states (the state is then
    /// a configuration of several active states).
    pub fn is_hierarchical(&self) -> bool {
        self.states.iter().any(|s| s.parent.is_some())
    }
}
