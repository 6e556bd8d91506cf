//! The traits every generated workflow implements, and the outcome types of
//! its `handle` method.

use std::fmt;
use std::future::Future;
use std::hash::Hash;
use std::marker::PhantomData;

use crate::activity::{ActivityCall, ActivityError};
use crate::chart::Scheduled;
use crate::chart::StateEnum;
use crate::graph::{Graph, StateKind};

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
    ///
    /// `Clone`: the engine keeps the done event of a compensable state's
    /// activity, whose output its compensation receives.
    type Event: Clone + fmt::Debug + Send + 'static;
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

    /// The machine's configuration (active states and history), for a
    /// durable engine's journal.
    fn save(&self) -> Saved;

    /// A machine in a saved configuration owning `context`, or `None` if the
    /// configuration is not one this workflow can be in (see
    /// [`Saved::fits`]). No action runs.
    fn restore(saved: &Saved, context: Self::Context) -> Option<Self>;
}

/// A machine's configuration as graph state indices: what a durable engine
/// journals besides the context, and [`Machine::restore`] takes back.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Saved {
    /// Every active state, ancestors included, in document order.
    pub active: Vec<usize>,
    /// What each history state recorded (the history state, then the
    /// recorded states), for those that recorded something.
    pub history: Vec<(usize, Vec<usize>)>,
}

impl Saved {
    /// Whether this is a configuration `graph` can be in: exactly one active
    /// top-level state; every active state's parent active; one active child
    /// of an active compound state, every child region of an active parallel
    /// state, none of an atomic or final one; no history pseudo-state
    /// active; history recorded only by history states.
    ///
    /// ```
    /// use workflow::prelude::*;
    /// use workflow::{Machine, Saved, StateEnum};
    ///
    /// workflow! {
    ///     workflow Door {
    ///         initial Closed;
    ///         events { Open }
    ///         state Closed { on Open => Opened; }
    ///         final Opened;
    ///     }
    /// }
    /// let opened = DoorState::Opened.index();
    /// assert!(Saved { active: vec![opened], history: vec![] }.fits(Door::graph()));
    /// assert!(!Saved { active: vec![0, opened], history: vec![] }.fits(Door::graph())); // two top-level states
    /// assert!(!Saved { active: vec![7], history: vec![] }.fits(Door::graph()));
    ///
    /// let door = Door::restore(&Saved { active: vec![opened], history: vec![] }, ()).unwrap();
    /// assert_eq!(door.state(), DoorState::Opened);
    /// assert_eq!(door.save().active, vec![opened]);
    /// ```
    pub fn fits(&self, graph: &Graph<'_>) -> bool {
        let states = graph.states;
        let n = states.len();
        let mut on = vec![false; n];
        for &s in &self.active {
            match on.get_mut(s) {
                Some(slot) if !*slot => *slot = true,
                _ => return false, // out of range or listed twice
            }
        }
        let children = |p: usize| (p + 1..states[p].end).filter(move |&c| states[c].parent == Some(p));
        let tops = (0..n).filter(|&s| states[s].parent.is_none() && on[s]).count();
        let consistent = self.active.iter().all(|&s| {
            let parent_on = states[s].parent.is_none_or(|p| on[p]);
            let active_children = children(s).filter(|&c| on[c]).count();
            parent_on
                && match states[s].kind {
                    StateKind::Atomic | StateKind::Final { .. } => true,
                    StateKind::Compound { .. } => active_children == 1,
                    StateKind::Parallel => children(s)
                        .filter(|&c| !matches!(states[c].kind, StateKind::History { .. }))
                        .all(|c| on[c]),
                    StateKind::History { .. } => false,
                }
        });
        let history_ok = self.history.iter().all(|(h, recorded)| {
            matches!(states.get(*h).map(|s| s.kind), Some(StateKind::History { .. })) && recorded.iter().all(|&s| s < n)
        });
        tops == 1 && consistent && history_ok
    }
}

/// A machine driven by the handlers `H` (any implementation of the
/// generated handler trait).
pub trait Workflow<H: ?Sized>: Machine {
    /// Delivers one event: runs the first enabled transition of the current
    /// state (exit actions, transition actions, entry actions) and reports it,
    /// or rejects the event and changes nothing. A statechart whose macrostep
    /// never settles (an eventless loop) is cut short and the event rejected
    /// with [`Reason::EventlessLoop`].
    fn handle(&mut self, event: &Self::Event, handlers: &H) -> Result<Step<Self::Node>, Rejected<Self::Node>>;

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
    /// declares none. `done` is the event `node`'s activity completed with
    /// (given, not lent: the future owns it, so it need not be `Sync`): a
    /// compensation receives the output it carries (and fails,
    /// non-retryable, without it); one whose state invokes nothing, or an
    /// activity with output `()`, ignores it.
    fn compensate<'a>(
        node: Self::Node,
        context: &'a Self::Context,
        done: Option<Self::Event>,
        handlers: &'a H,
        call: ActivityCall,
    ) -> Option<impl Future<Output = Result<(), ActivityError>> + Send + 'a>
    where
        H: 'a;
}

/// A transition taken by `handle`: which one, from where to where.
///
/// `N` is the workflow's state enum. A `Step` is four bytes (the
/// transition's index and whether states were exited): `from` and `to` are
/// read from the workflow's graph when asked for, so `handle` returns its
/// result in a register, as a hand-written `match` returning the new state
/// does.
///
/// For a statechart, the step describes the first transition of the
/// macrostep; the whole configuration after it is the machine's `state()`.
///
/// ```
/// use workflow::prelude::*;
///
/// workflow! {
///     workflow Door {
///         initial Closed;
///         events { Open, Knock }
///         state Closed {
///             on Open => Opened;
///             on Knock / listen;     // targetless: nothing is exited
///         }
///         final Opened;
///     }
/// }
/// struct Ears;
/// impl DoorHandlers for Ears {
///     fn listen(&self, _: &mut (), _: &Knock) {}
/// }
///
/// let mut door = Door::new(());
/// let knock = door.handle(&Knock.into(), &Ears).unwrap();
/// assert_eq!((knock.from(), knock.to(), knock.exited()), (DoorState::Closed, DoorState::Closed, false));
/// let open = door.handle(&Open.into(), &Ears).unwrap();
/// assert_eq!((open.from(), open.to(), open.exited()), (DoorState::Closed, DoorState::Opened, true));
/// assert_eq!(Door::graph().transitions[open.transition()].targets, [DoorState::Opened.index()]);
/// ```
pub struct Step<N> {
    /// The transition's index in the low 16 bits, [`EXITED`](Self::EXITED) above.
    raw: Bits,
    /// Always zero: the byte where `Result<Step, Rejected>` keeps its tag.
    _niche: Niche,
    state: PhantomData<fn() -> N>,
}

impl<N> Step<N> {
    /// The bit of `raw` saying whether states were exited.
    const EXITED: u32 = 1 << 16;

    /// The step that took transition `transition` (its index in the graph's
    /// [`transitions`](Graph::transitions)) and exited states or not.
    /// Generated code builds steps; a hand-made one with an index the graph
    /// does not have reports the graph's initial state as `from` and `to`.
    pub const fn new(transition: u16, exited: bool) -> Self {
        let exited = if exited { Self::EXITED } else { 0 };
        Self {
            raw: Bits::new(transition as u32 | exited),
            _niche: Niche::Zero,
            state: PhantomData,
        }
    }

    /// Index of the transition taken in the graph's
    /// [`transitions`](Graph::transitions).
    pub const fn transition(&self) -> usize {
        (self.raw.get() & 0xFFFF) as usize
    }

    /// Whether states were exited and entered: `false` only for a
    /// targetless transition (and, in a statechart, an internal one that
    /// leaves nothing); a self-transition exits and re-enters.
    pub const fn exited(&self) -> bool {
        self.raw.get() & Self::EXITED != 0
    }
}

/// 24 bits in three bytes, aligned to one: with [`Niche`] beside them in a
/// [`Step`], and alone in a [`Rejected`], `Result<Step, Rejected>` is four
/// bytes (the tag in the niche byte), one register and one store, as a
/// hand-written `match` returning the new state is. The benchmark's happy
/// path measured 1.006x the hand-written floor with an 8-byte result (tag and
/// value stored apart) and 0.82x with this one.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct Bits([u8; 3]);

impl Bits {
    const fn new(value: u32) -> Self {
        let [a, b, c, _] = value.to_le_bytes();
        Self([a, b, c])
    }

    const fn get(self) -> u32 {
        let [a, b, c] = self.0;
        u32::from_le_bytes([a, b, c, 0])
    }
}

/// A byte that is always zero, so its other 255 values are free for an
/// enum's tag.
#[derive(Clone, Copy)]
#[repr(u8)]
enum Niche {
    Zero = 0,
}

impl<N: StateEnum> Step<N> {
    /// The transition's source: the state before the event (in a
    /// statechart, the state whose transition was taken).
    pub fn from(&self) -> N {
        let graph = N::graph();
        node(graph.transitions.get(self.transition()).map(|t| t.source))
    }

    /// The transition's target: the state after the event, equal to
    /// [`from`](Self::from) for a targetless transition (in a statechart,
    /// the first target; the machine's `state()` is the whole configuration).
    pub fn to(&self) -> N {
        let graph = N::graph();
        let transition = graph.transitions.get(self.transition());
        node(transition.map(|t| t.targets.first().copied().unwrap_or(t.source)))
    }
}

/// The state with graph index `index`, or the graph's initial state for an
/// index a hand-made step or rejection invented.
fn node<N: StateEnum>(index: Option<usize>) -> N {
    match index.and_then(N::from_index) {
        Some(state) => state,
        None => initial_state(),
    }
}

fn initial_state<N: StateEnum>() -> N {
    let graph = N::graph();
    match N::from_index(graph.initial) {
        Some(state) => state,
        // A graph's initial index is one of its own states.
        None => unreachable!("the graph of `{}` has no state {}", graph.name, graph.initial),
    }
}

/// The error `handle` returns, for one of two [`Reason`]s:
///
/// - [`Reason::NotAccepted`]: the current state does not accept the event
///   (no transition on it, or every guard said no). The machine is
///   unchanged. Displays as ``event `Cancel` is not accepted in state `Shipping` ``.
/// - [`Reason::EventlessLoop`] (statecharts only): the event started a
///   macrostep that never settled, an eventless loop, and the interpreter
///   cut it short after [`MAX_MICROSTEPS`](crate::chart::MAX_MICROSTEPS)
///   microsteps. The machine has taken those microsteps: its state is
///   wherever the loop was, and [`state`](Self::state) names it. The
///   `eventless_loop` lint reports unguarded loops at compile time.
///
/// Three bytes: the reason (1 bit), the state's index (11 bits; a workflow
/// has at most 2047 states) and the event's (12 bits; at most 4095 events);
/// names are read from the graph.
pub struct Rejected<N> {
    /// The loop bit, then the state's index in 11 bits, then the event's in 12.
    raw: Bits,
    state: PhantomData<fn() -> N>,
}

/// Why [`handle`](Workflow::handle) returned a [`Rejected`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reason {
    /// No transition of the active states takes the event (or every guard
    /// said no); nothing changed.
    NotAccepted,
    /// The event led into an eventless loop that the interpreter cut short
    /// after [`MAX_MICROSTEPS`](crate::chart::MAX_MICROSTEPS) microsteps;
    /// the machine changed.
    EventlessLoop,
}

impl<N> Rejected<N> {
    /// The largest state index a `Rejected` holds; one past the last a
    /// workflow may have, standing for any index too large to hold.
    const NO_STATE: usize = 0x7FF;
    /// The same for event indices.
    const NO_EVENT: usize = 0xFFF;
    /// The bit of `raw` that marks [`Reason::EventlessLoop`].
    const LOOP: u32 = 1 << 23;

    /// The state with index `state` in the graph's [`states`](Graph::states)
    /// rejected the event with index `event` in its [`events`](Graph::events)
    /// ([`Reason::NotAccepted`]). A state index above 2046 or an event index
    /// above 4094 (no workflow has one) is kept as 2047 or 4095, which name
    /// the graph's initial state and the event `?`.
    pub const fn at(state: usize, event: usize) -> Self {
        let (state, event) = (clamp(state, Self::NO_STATE), clamp(event, Self::NO_EVENT));
        Self {
            raw: Bits::new((state << 12 | event) as u32),
            state: PhantomData,
        }
    }

    /// The event with index `event` led into an eventless loop, cut short
    /// with the state with index `state` (as [`at`](Self::at) names one)
    /// active ([`Reason::EventlessLoop`]).
    pub const fn looped(state: usize, event: usize) -> Self {
        let at = Self::at(state, event);
        Self {
            raw: Bits::new(at.raw.get() | Self::LOOP),
            state: PhantomData,
        }
    }

    /// The event's index in the graph's [`events`](Graph::events).
    pub const fn event_index(&self) -> usize {
        self.raw.get() as usize & Self::NO_EVENT
    }

    /// Why the event was rejected.
    pub const fn reason(&self) -> Reason {
        if self.raw.get() & Self::LOOP != 0 {
            Reason::EventlessLoop
        } else {
            Reason::NotAccepted
        }
    }
}

const fn clamp(index: usize, max: usize) -> usize {
    if index < max {
        index
    } else {
        max
    }
}

impl<N: StateEnum> Rejected<N> {
    /// `state` rejected the event with index `event` in the graph's
    /// [`events`](Graph::events).
    pub fn new(state: N, event: usize) -> Self {
        Self::at(state.index(), event)
    }

    /// The state that rejected the event (in a statechart, the innermost
    /// active state containing every active atomic state; the whole
    /// configuration is the machine's `state()`, unchanged). For an
    /// [`EventlessLoop`](Reason::EventlessLoop), that state when the loop
    /// was cut short.
    pub fn state(&self) -> N {
        node(Some(self.raw.get() as usize >> 12 & Self::NO_STATE))
    }

    /// The event's name.
    pub fn event(&self) -> &'static str {
        N::graph().events.get(self.event_index()).map_or("?", |e| e.name)
    }
}

/// `Clone`, `Copy`, `Eq` and `Hash` on the packed bits, for any `N`:
/// written out because a derive would require them of `N` too.
macro_rules! packed_value {
    ($($name:ident),*) => {$(
        impl<N> Clone for $name<N> {
            fn clone(&self) -> Self {
                *self
            }
        }
        impl<N> Copy for $name<N> {}
        impl<N> PartialEq for $name<N> {
            fn eq(&self, other: &Self) -> bool {
                self.raw == other.raw
            }
        }
        impl<N> Eq for $name<N> {}
        impl<N> Hash for $name<N> {
            fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
                self.raw.hash(state);
            }
        }
    )*};
}

packed_value!(Step, Rejected);

impl<N: StateEnum> fmt::Debug for Step<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Step")
            .field("from", &self.from())
            .field("to", &self.to())
            .field("transition", &self.transition())
            .field("exited", &self.exited())
            .finish()
    }
}

impl<N: StateEnum> fmt::Debug for Rejected<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut debug = f.debug_struct("Rejected");
        debug.field("state", &self.state()).field("event", &self.event());
        if self.reason() != Reason::NotAccepted {
            debug.field("reason", &self.reason());
        }
        debug.finish()
    }
}

impl<N: StateEnum> fmt::Display for Rejected<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.reason() {
            Reason::NotAccepted => write!(
                f,
                "event `{}` is not accepted in state `{}`",
                self.event(),
                self.state()
            ),
            Reason::EventlessLoop => write!(
                f,
                "event `{}` led into an eventless loop, cut short after {} microsteps in state `{}`",
                self.event(),
                crate::chart::MAX_MICROSTEPS,
                self.state()
            ),
        }
    }
}

impl<N: StateEnum> std::error::Error for Rejected<N> {}
