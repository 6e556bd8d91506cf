//! The statechart interpreter: W3C SCXML semantics over a [`Graph`].
//!
//! Workflows with nested or parallel states, history, eventless transitions
//! or internal events run here. The macro generates only what is
//! per-workflow — the [`Chart`] dispatch of guards and actions by index —
//! and this module does the rest as ordinary generic Rust, following the
//! algorithm of the SCXML recommendation (Appendix D): macrosteps of
//! microsteps, transition selection in document order with inner transitions
//! first, conflict resolution between parallel regions, exits innermost
//! first with history recorded before any exit action, entries outermost
//! first, the least common compound ancestor as a transition's domain,
//! eventless transitions before internal events, and the internal queue
//! before the next external event.
//!
//! Speed comes from [`Tables`], derived once per workflow: for each event
//! and atomic state the candidate transitions in priority order, and for
//! each transition without history its exit and entry masks and the
//! completion events its entry may raise, so that a typical microstep is a
//! few bit operations and the calls of its actions. When an event has one
//! candidate whose microstep needs none of the general machinery (no guard,
//! history or exit action, at most one completion, nothing raised), the
//! macrostep takes a short path: that transition, then the `on done`
//! transition of the state it completed (a join) if that one is as simple,
//! the same result as the general algorithm with a fraction of its work.

use std::collections::VecDeque;
use std::time::Duration;

use crate::configuration::is_atomic;
pub use crate::configuration::{Configuration, StateEnum, StateSet};
use crate::graph::{Graph, StateKind, Trigger};
use crate::machine::{Reason, Rejected, Saved};

/// The part of a statechart instance the interpreter owns: its active
/// states and what each history state remembers (`H` of them).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Core<const W: usize, const H: usize> {
    /// Every active state: atomic ones and their ancestors.
    pub active: StateSet<W>,
    /// What each history state recorded, by its slot; empty until recorded.
    pub history: [StateSet<W>; H],
    /// The states the last macrostep exited, and those it entered: a state
    /// in both was left and re-entered (the engine restarts its activity
    /// and timers).
    pub exited: StateSet<W>,
    /// See [`exited`](Self::exited).
    pub entered: StateSet<W>,
}

impl<const W: usize, const H: usize> Core<W, H> {
    /// A core with `active` states and nothing recorded.
    pub const fn new(active: StateSet<W>) -> Self {
        Core {
            active,
            history: [StateSet::EMPTY; H],
            exited: StateSet::EMPTY,
            entered: StateSet::EMPTY,
        }
    }

    /// Whether the last macrostep left `state` and entered it again.
    pub const fn reentered(&self, state: usize) -> bool {
        self.exited.contains(state) && self.entered.contains(state)
    }

    /// The active states and what each history state recorded.
    pub fn save(&self, graph: &Graph<'_>) -> Saved {
        let history = graph
            .states
            .iter()
            .enumerate()
            .filter_map(|(h, info)| match info.kind {
                StateKind::History { slot, .. } => Some((h, self.history.get(slot)?.iter().collect::<Vec<_>>())),
                _ => None,
            })
            .filter(|(_, recorded)| !recorded.is_empty())
            .collect();
        Saved {
            active: self.active.iter().collect(),
            history,
        }
    }

    /// A core in a saved configuration, if it [fits](Saved::fits) `graph`
    /// and this width.
    pub fn restore(graph: &Graph<'_>, saved: &Saved) -> Option<Self> {
        let set = |states: &[usize]| {
            let mut set = StateSet::EMPTY;
            for &s in states {
                if s >= W * 64 {
                    return None;
                }
                set.insert(s);
            }
            Some(set)
        };
        if !saved.fits(graph) {
            return None;
        }
        let mut core = Core::new(set(&saved.active)?);
        for (h, recorded) in &saved.history {
            let StateKind::History { slot, .. } = graph.states.get(*h)?.kind else {
                return None;
            };
            *core.history.get_mut(slot)? = set(recorded)?;
        }
        Some(core)
    }
}

/// A timer or a cancellation that a `send` or `cancel` action asked for.
///
/// The machine keeps these until the driver takes them
/// (`take_scheduled()`); the engine turns them into durable timers.
#[derive(Clone, Debug, PartialEq)]
pub enum Scheduled<E> {
    /// Deliver `event` as an external event after `delay` (at once, after
    /// the current macrostep, if `delay` is zero). A later `send` with the
    /// same `id` does not replace this one.
    Send {
        /// The timer's id, for `cancel` (the event's name unless `as` gave one).
        id: &'static str,
        /// The event to deliver.
        event: E,
        /// How long to wait.
        delay: Duration,
    },
    /// Cancel every pending `send` with this id.
    Cancel {
        /// The id given to `send`.
        id: &'static str,
    },
}

/// Where a statechart runs actions: a state's entry or exit, or a transition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Site {
    /// Entering the state with this index.
    Entry(usize),
    /// Leaving the state with this index.
    Exit(usize),
    /// Taking the transition with this index.
    Transition(usize),
}

/// An event inside a macrostep: a workflow event, or the completion of a
/// compound or parallel state (`done.state.ID`).
#[derive(Debug)]
enum Internal<E> {
    Event(E),
    Done(usize),
}

/// How many entries the internal queue holds inline, and how many raised
/// events.
const INLINE_ORDER: usize = 4;
const INLINE_RAISED: usize = 2;

/// In the queue's order, a raised event (the next of the raised events).
const RAISED: u32 = u32::MAX;

/// The internal event queue of one macrostep, first in, first out. Most
/// macrosteps queue none or one or two internal events (a completion, a
/// `raise`): the order lives inline as plain integers (a completed state's
/// index, or [`RAISED`]) beside the first raised events, so that a new
/// queue is a few stores, a completion goes through it as one `u32` (not as
/// an enum copied in pieces, whose partial stores and wider loads stall
/// store forwarding), and the queue allocates only beyond them.
struct Queue<E> {
    order: [u32; INLINE_ORDER],
    /// The oldest inline entry of `order`, and how many are queued.
    head: u32,
    len: u32,
    raised: [Option<E>; INLINE_RAISED],
    /// The oldest inline raised event, and how many are queued.
    raised_head: u32,
    raised_len: u32,
    /// Entries (and raised events) queued while the inline ones were full,
    /// and every later one until those have drained (so that order is kept).
    spill: Option<Box<Spill<E>>>,
}

/// The part of a [`Queue`] beyond its inline entries.
struct Spill<E> {
    order: VecDeque<u32>,
    raised: VecDeque<E>,
}

impl<E> Queue<E> {
    #[inline(always)]
    fn new() -> Self {
        Queue {
            order: [0; INLINE_ORDER],
            head: 0,
            len: 0,
            raised: [const { None }; INLINE_RAISED],
            raised_head: 0,
            raised_len: 0,
            spill: None,
        }
    }

    fn spill(&mut self) -> &mut Spill<E> {
        self.spill.get_or_insert_with(|| {
            Box::new(Spill {
                order: VecDeque::new(),
                raised: VecDeque::new(),
            })
        })
    }

    #[inline(always)]
    fn push(&mut self, entry: u32) {
        if (self.len as usize) < INLINE_ORDER && self.spill.as_ref().is_none_or(|s| s.order.is_empty()) {
            self.order[(self.head + self.len) as usize % INLINE_ORDER] = entry;
            self.len += 1;
        } else {
            self.spill().order.push_back(entry);
        }
    }

    #[inline(always)]
    fn push_done(&mut self, state: usize) {
        // State indices fit in a `u32` (the tables are built so).
        self.push(state as u32);
    }

    fn push_event(&mut self, event: E) {
        if (self.raised_len as usize) < INLINE_RAISED && self.spill.as_ref().is_none_or(|s| s.raised.is_empty()) {
            self.raised[(self.raised_head + self.raised_len) as usize % INLINE_RAISED] = Some(event);
            self.raised_len += 1;
        } else {
            self.spill().raised.push_back(event);
        }
        self.push(RAISED);
    }

    #[inline(always)]
    fn is_empty(&self) -> bool {
        self.len == 0 && self.spill.as_ref().is_none_or(|s| s.order.is_empty())
    }

    #[inline(always)]
    fn pop(&mut self) -> Option<Internal<E>> {
        let entry = if self.len > 0 {
            let entry = self.order[self.head as usize];
            self.head = (self.head + 1) % INLINE_ORDER as u32;
            self.len -= 1;
            entry
        } else {
            self.spill.as_mut()?.order.pop_front()?
        };
        if entry != RAISED {
            return Some(Internal::Done(entry as usize));
        }
        let event = if self.raised_len > 0 {
            let event = self.raised[self.raised_head as usize].take();
            self.raised_head = (self.raised_head + 1) % INLINE_RAISED as u32;
            self.raised_len -= 1;
            event
        } else {
            self.spill.as_mut()?.raised.pop_front()
        };
        event.map(Internal::Event)
    }
}

/// What actions may do besides calling handlers: raise internal events and
/// schedule or cancel timers.
pub struct Effects<'a, E> {
    internal: &'a mut Queue<E>,
    scheduled: &'a mut Vec<Scheduled<E>>,
}

impl<E> Effects<'_, E> {
    /// `raise EVENT`: queue an internal event, handled before any external one.
    pub fn raise(&mut self, event: E) {
        self.internal.push_event(event);
    }

    /// `send EVENT after DELAY as ID`: ask the driver for a timer.
    pub fn send(&mut self, id: &'static str, event: E, delay: Duration) {
        self.scheduled.push(Scheduled::Send { id, event, delay });
    }

    /// `cancel ID`: ask the driver to drop pending timers with this id.
    pub fn cancel(&mut self, id: &'static str) {
        self.scheduled.push(Scheduled::Cancel { id });
    }
}

/// The per-workflow part of a statechart: dispatch of guards and actions by
/// index. Generated by the `workflow!` macro for machines with nested or
/// parallel states, history, eventless transitions or internal events; `W`
/// is the number of 64-bit words its state sets take.
pub trait Chart<H: ?Sized, const W: usize> {
    /// The workflow's event enum.
    type Event;
    /// The workflow's context.
    type Context;

    /// The tables the interpreter derives from the graph, computed once.
    fn tables() -> &'static Tables<W>;

    // What the workflow uses, known when the macro expands it, so that the
    // interpreter's code for what a workflow lacks compiles away. `true`,
    // the default, is always correct, only slower.

    /// Whether the workflow has history states.
    const HISTORY: bool = true;
    /// Whether some state has exit actions.
    const EXIT_ACTIONS: bool = true;
    /// Whether some transition is eventless (`always`).
    const EVENTLESS: bool = true;
    /// Whether some transition has a guard.
    const GUARDS: bool = true;
    /// Whether some transition is `on _`.
    const WILDCARD: bool = true;
    /// Whether some action raises an internal event (`raise`).
    const RAISES: bool = true;

    /// The variant index of `event` in the graph's `events`.
    fn event_index(event: &Self::Event) -> usize;

    /// Evaluates the guard of `transition` (true if it has none). `event` is
    /// `None` for eventless transitions and completion events.
    fn guard(handlers: &H, context: &Self::Context, transition: usize, event: Option<&Self::Event>) -> bool;

    /// Runs the actions declared at `site`, in order.
    fn act(
        handlers: &H,
        context: &mut Self::Context,
        site: Site,
        event: Option<&Self::Event>,
        effects: &mut Effects<'_, Self::Event>,
    );
}

/// What the interpreter precomputes from a graph: state masks, for each
/// event the transitions each atomic state may fire, and for each
/// transition the states it exits and enters when no history is involved,
/// so that a microstep is a few bit operations.
pub struct Tables<const W: usize> {
    graph: &'static Graph<'static>,
    /// The configuration a new instance starts in (`enter(graph.initial)`).
    initial: StateSet<W>,
    /// How many states the graph has: the stride of `offsets`.
    states: usize,
    /// How many events the graph has; eventless transitions use this index.
    events: usize,
    atomic: StateSet<W>,
    /// Compound states: exactly one child active when they are.
    compound: StateSet<W>,
    finals: StateSet<W>,
    /// States with a history child, whose exit records history.
    history_parents: StateSet<W>,
    has_entry: StateSet<W>,
    has_exit: StateSet<W>,
    /// States whose entry does more than join the configuration: entry
    /// actions, or (final states) completion events.
    entry_work: StateSet<W>,
    /// Whether any state has an `on _` transition (which sees completions too).
    wildcard: bool,
    /// States whose completion an `on done(STATE)` transition of another
    /// state listens to: their `done.state` event goes through selection.
    done_elsewhere: StateSet<W>,
    /// For each transition with `in(..)` conditions ([`IN_STATES`]), the
    /// states that must be active and those that must not (`!in(..)`);
    /// empty for the others.
    in_states: Vec<(StateSet<W>, StateSet<W>)>,
    /// The default entry transitions with actions that starting an instance
    /// takes, as `(compound state, transition)` in document order.
    initial_defaults: Vec<(usize, usize)>,
    /// Each state's proper descendants.
    subtree: Vec<StateSet<W>>,
    /// For each final state, the completion events its entry may raise.
    completions: Vec<Completion<W>>,
    /// `region_finals[start..end]` of a parallel state's [`Completion`]:
    /// the parallel state has completed when the configuration meets every
    /// mask (the final children of each compound region, nested parallel
    /// regions flattened; an atomic region gives an empty mask, never met).
    region_finals: Vec<StateSet<W>>,
    /// For each event, the atomic states from which it has a candidate
    /// transition: an event no active state is in the mask of is rejected at
    /// once, and selection visits only these states.
    reach: Vec<StateSet<W>>,
    /// The same for eventless transitions.
    eventless: StateSet<W>,
    /// For each event, then eventless transitions: where selection starts.
    lookups: Vec<Lookup<W>>,
    /// `candidates[offsets[e * states + a]..offsets[e * states + a + 1]]`:
    /// the transitions event `e` (`events` for eventless ones) may fire from
    /// atomic state `a`, in priority order: `a`'s own, then each ancestor's,
    /// each state's in document order. Each is a copy of its [`Plan`], so
    /// that selecting and taking a transition reads one record.
    offsets: Vec<u32>,
    candidates: Vec<Plan<W>>,
    /// `done_plans[done_offsets[s]..done_offsets[s + 1]]`: the `on done`
    /// transitions of state `s`, in document order.
    done_offsets: Vec<u32>,
    done_plans: Vec<Plan<W>>,
    /// Each transition's plan, by index.
    plans: Vec<Plan<W>>,
}

/// Where selection for one event starts.
#[derive(Clone, Copy)]
struct Lookup<const W: usize> {
    /// The atomic states from which the event has a candidate transition
    /// (a copy of `Tables::reach`).
    reach: StateSet<W>,
    /// Whether one atomic state alone has candidates for the event (the
    /// usual case): if it is active, its candidates are
    /// `candidates[start..end]`, of which `first` is a copy of the first, so
    /// that delivering the event reads one record.
    single: bool,
    /// Whether `single` and `first` is [`EXPRESS`] (and the only candidate
    /// or unguarded, which `EXPRESS` implies): `fast` is its short path.
    express: bool,
    fast: Express<W>,
    first: Plan<W>,
    start: u32,
    end: u32,
}

/// An [`EXPRESS`] transition as [`Run::express`] takes it, with its join
/// inline and its completion reduced to one mask test, so that the short
/// path reads one record and branches little.
#[derive(Clone, Copy)]
struct Express<const W: usize> {
    exit: StateSet<W>,
    entry: StateSet<W>,
    /// With [`X_DONE`], the transition completes `done` when the
    /// configuration after it holds all of `done_when` (empty for a
    /// compound parent, the regions' final states for a parallel one).
    done_when: StateSet<W>,
    done: u32,
    /// With [`X_JOIN`], `done`'s one `on done` transition (see
    /// [`Completion::join`]), folded with this one: the states both exit
    /// when active, those the join exits that this one enters, and the
    /// states active, and entered, after both.
    join_exit: StateSet<W>,
    join_reexit: StateSet<W>,
    join_active: StateSet<W>,
    join_entered: StateSet<W>,
    join: u32,
    transition: u32,
    /// `transition` as [`Macrostep::transition`] reports it.
    step: u16,
    /// [`X_DONE`], [`X_JOIN`], [`X_ACTIONS`], [`X_JOIN_ACTIONS`].
    flags: u8,
}

/// [`Express`] flags: the transition may complete a state; that state's
/// join is inline; the transition has actions; the join has actions.
const X_DONE: u8 = 1;
const X_JOIN: u8 = 2;
const X_ACTIONS: u8 = 4;
const X_JOIN_ACTIONS: u8 = 8;

impl<const W: usize> Express<W> {
    const NOTHING: Self = Express {
        exit: StateSet::EMPTY,
        entry: StateSet::EMPTY,
        done_when: StateSet::EMPTY,
        done: NONE,
        join_exit: StateSet::EMPTY,
        join_reexit: StateSet::EMPTY,
        join_active: StateSet::EMPTY,
        join_entered: StateSet::EMPTY,
        join: NONE,
        transition: NONE,
        step: u16::MAX,
        flags: 0,
    };

    /// The short path of [`EXPRESS`] transition `plan`; `None` if its
    /// completion needs more than one mask test (a parallel state with a
    /// region of several final states), which the general path handles.
    fn of(plans: &[Plan<W>], plan: &Plan<W>) -> Option<Self> {
        let c = &plan.completion;
        let mut x = Express {
            exit: plan.exit,
            entry: plan.entry,
            transition: plan.transition,
            step: u16::try_from(plan.transition).unwrap_or(u16::MAX),
            ..Self::NOTHING
        };
        match (c.parent, c.parallel) {
            (NONE, NONE) => {}
            (parent, NONE) => x.done = parent,
            (NONE, parallel) if !c.all_of.is_empty() => {
                x.done = parallel;
                x.done_when = c.all_of;
            }
            _ => return None,
        }
        if x.done != NONE {
            x.flags |= X_DONE;
        }
        if plan.flags & ACTIONS != 0 {
            x.flags |= X_ACTIONS;
        }
        if x.done != NONE && c.join != NONE {
            let join = plans.get(c.join as usize)?;
            x.flags |= X_JOIN;
            // ((a - exit) + entry) - join.exit + join.entry
            //   = (a - (exit + join.exit)) + ((entry - join.exit) + join.entry)
            x.join = join.transition;
            x.join_exit = plan.exit.or(&join.exit);
            x.join_reexit = plan.entry.and(&join.exit);
            x.join_active = plan.entry.without(&join.exit).or(&join.entry);
            x.join_entered = plan.entry.or(&join.entry);
            if join.flags & ACTIONS != 0 {
                x.flags |= X_JOIN_ACTIONS;
            }
        }
        Some(x)
    }
}

/// `Completion` and `Plan` fields that hold no state or transition.
const NONE: u32 = u32::MAX;

/// The `done.state` events entering one final state may raise, each only
/// if some transition listens to it (`on done` on that state, or `on _`).
#[derive(Clone, Copy)]
struct Completion<const W: usize> {
    /// The parent, which entering the final state completes, or [`NONE`].
    parent: u32,
    /// A parallel grandparent, completed if all its regions are, or
    /// [`NONE`]; its masks are `region_finals[start..end]`.
    parallel: u32,
    start: u32,
    end: u32,
    /// When each of those masks is a single state (each region has one
    /// final state, the usual case): their union, which the configuration
    /// then contains exactly when the parallel state has completed.
    all_of: StateSet<W>,
    /// When only one of `parent` and `parallel` is set, no `on _`
    /// transition exists, and that state has a single `on done`
    /// transition, which is [`EXPRESS`] and enters no state with entry
    /// work: its index, for [`Run::express`] to take at once; or [`NONE`].
    join: u32,
}

impl<const W: usize> Completion<W> {
    const NOTHING: Self = Completion {
        parent: NONE,
        parallel: NONE,
        start: 0,
        end: 0,
        all_of: StateSet::EMPTY,
        join: NONE,
    };
}

/// One transition's precomputed effect.
#[derive(Clone, Copy)]
struct Plan<const W: usize> {
    /// The states it exits when active (the descendants of its domain);
    /// meaningless without [`STATIC_EXIT`] (its targets go through history,
    /// so the domain depends on what was recorded).
    exit: StateSet<W>,
    /// The states it enters; meaningless without [`STATIC_ENTRY`] (history
    /// is involved).
    entry: StateSet<W>,
    transition: u32,
    source: u32,
    /// [`STATIC_EXIT`], [`STATIC_ENTRY`], [`ACTIONS`], [`GUARDED`],
    /// [`ENTRY_WORK`], [`ONE_FINAL`], [`EXPRESS`], [`IN_STATES`].
    flags: u32,
    /// With [`ONE_FINAL`], what entering that final state raises.
    completion: Completion<W>,
}

/// [`Plan::exit`] holds the exit mask.
const STATIC_EXIT: u32 = 1;
/// [`Plan::entry`] holds the entry set.
const STATIC_ENTRY: u32 = 2;
/// Both: the transition's microstep needs no graph walk.
const STATIC: u32 = STATIC_EXIT | STATIC_ENTRY;
/// The transition has actions.
const ACTIONS: u32 = 4;
/// The transition has a guard or `in(..)` conditions.
const GUARDED: u32 = 8;
/// The transition has `in(..)` conditions: [`Tables::in_states`].
const IN_STATES: u32 = 128;
/// The entry set holds states whose entry does more than join the
/// configuration (entry actions, completions).
const ENTRY_WORK: u32 = 16;
/// That work is one final state's completion, no entry action: it is
/// [`Plan::completion`].
const ONE_FINAL: u32 = 32;
/// The transition is unguarded, [`STATIC`], exits no state with exit
/// actions or history, and its entry raises at most one completion: a
/// microstep [`Run::express`] can take.
const EXPRESS: u32 = 64;

impl<const W: usize> Plan<W> {
    /// No transition (a placeholder).
    const NOTHING: Self = Plan {
        exit: StateSet::EMPTY,
        entry: StateSet::EMPTY,
        transition: NONE,
        source: NONE,
        flags: 0,
        completion: Completion::NOTHING,
    };

    fn exit(&self) -> Option<StateSet<W>> {
        (self.flags & STATIC_EXIT != 0).then_some(self.exit)
    }

    fn entry(&self) -> Option<StateSet<W>> {
        (self.flags & STATIC_ENTRY != 0).then_some(self.entry)
    }

    fn index(&self) -> usize {
        self.transition as usize
    }
}

impl<const W: usize> Tables<W> {
    /// Derives the tables of `graph`. Generated code calls this once per
    /// workflow and keeps the result in a static.
    pub fn new(graph: &'static Graph<'static>) -> Self {
        let n = graph.states.len();
        let start = entry_of::<W>(graph, graph.initial);
        let mut tables = Tables {
            graph,
            initial: start.states,
            states: n,
            events: graph.events.len(),
            atomic: StateSet::EMPTY,
            compound: StateSet::EMPTY,
            finals: StateSet::EMPTY,
            history_parents: StateSet::EMPTY,
            has_entry: StateSet::EMPTY,
            has_exit: StateSet::EMPTY,
            entry_work: StateSet::EMPTY,
            wildcard: false,
            done_elsewhere: StateSet::EMPTY,
            in_states: Vec::with_capacity(graph.transitions.len()),
            initial_defaults: start.defaults,
            subtree: Vec::with_capacity(n),
            completions: vec![Completion::NOTHING; n],
            region_finals: Vec::new(),
            reach: vec![StateSet::EMPTY; graph.events.len()],
            eventless: StateSet::EMPTY,
            lookups: Vec::with_capacity(graph.events.len() + 1),
            offsets: Vec::with_capacity((graph.events.len() + 1) * n + 1),
            candidates: Vec::new(),
            done_offsets: Vec::with_capacity(n + 1),
            done_plans: Vec::new(),
            plans: Vec::with_capacity(graph.transitions.len()),
        };
        for (s, info) in graph.states.iter().enumerate() {
            let mut subtree = StateSet::EMPTY;
            (s + 1..info.end).for_each(|d| subtree.insert(d));
            tables.subtree.push(subtree);
            if is_atomic(graph, s) {
                tables.atomic.insert(s);
            }
            match info.kind {
                StateKind::Compound { .. } => tables.compound.insert(s),
                StateKind::Final { .. } => {
                    tables.finals.insert(s);
                    tables.entry_work.insert(s);
                }
                StateKind::History { .. } => {
                    if let Some(p) = info.parent {
                        tables.history_parents.insert(p);
                    }
                }
                _ => {}
            }
            if !info.entry.is_empty() {
                tables.has_entry.insert(s);
                tables.entry_work.insert(s);
            }
            if !info.exit.is_empty() {
                tables.has_exit.insert(s);
            }
        }
        let history = [];
        for (t, transition) in graph.transitions.iter().enumerate() {
            let through_history = transition
                .targets
                .iter()
                .any(|&s| matches!(graph.states[s].kind, StateKind::History { .. }));
            let mut plan = Plan {
                exit: StateSet::EMPTY,
                entry: StateSet::EMPTY,
                transition: to_u32(t),
                source: to_u32(transition.source),
                flags: 0,
                completion: Completion::NOTHING,
            };
            if !transition.actions.is_empty() {
                plan.flags |= ACTIONS;
            }
            if transition.guard.is_some() {
                plan.flags |= GUARDED;
            }
            let (mut needed, mut excluded) = (StateSet::EMPTY, StateSet::EMPTY);
            transition.in_states.iter().for_each(|&s| needed.insert(s));
            transition.not_in_states.iter().for_each(|&s| excluded.insert(s));
            if !needed.is_empty() || !excluded.is_empty() {
                plan.flags |= GUARDED | IN_STATES;
            }
            tables.in_states.push((needed, excluded));
            if transition.targets.is_empty() {
                plan.flags |= STATIC;
            } else if !through_history {
                let mut walker = Walker::<W, 0> {
                    graph,
                    history: &history,
                };
                plan.exit = match walker.domain(t) {
                    None => tables.all(),
                    Some(d) => tables.subtree[d],
                };
                plan.flags |= STATIC_EXIT;
                let mut entry = Entry::<W>::default();
                walker.entry_set(t, &mut entry);
                if !entry.dynamic {
                    plan.entry = entry.states;
                    plan.flags |= STATIC_ENTRY;
                }
            }
            tables.plans.push(plan);
        }
        tables.completions_of_finals();
        // A final state whose completion nothing hears needs no visit.
        for s in tables.finals.iter() {
            let c = &tables.completions[s];
            if c.parent == NONE && c.parallel == NONE && !tables.has_entry.contains(s) {
                tables.entry_work.remove(s);
            }
        }
        let exit_work = tables.has_exit.or(&tables.history_parents);
        for plan in &mut tables.plans {
            let work = plan.entry.and(&tables.entry_work);
            if plan.flags & STATIC_ENTRY != 0 && !work.is_empty() {
                plan.flags |= ENTRY_WORK;
                if work.is_single() && !work.intersects(&tables.has_entry) {
                    plan.flags |= ONE_FINAL;
                    plan.completion = tables.completions[work.iter().next().unwrap_or_default()];
                }
            }
            let one_completion = plan.flags & ENTRY_WORK == 0
                || (plan.flags & ONE_FINAL != 0
                    && (plan.completion.parent == NONE || plan.completion.parallel == NONE));
            if plan.flags & (STATIC | GUARDED) == STATIC && !plan.exit.intersects(&exit_work) && one_completion {
                plan.flags |= EXPRESS;
            }
        }
        // The joins `express` takes at once.
        if !tables.wildcard {
            for t in 0..tables.plans.len() {
                let completion = tables.plans[t].completion;
                let done = match (completion.parent, completion.parallel) {
                    (NONE, NONE) => continue,
                    (NONE, parallel) => parallel,
                    (parent, NONE) => parent,
                    _ => continue,
                };
                if tables.done_elsewhere.contains(done as usize) {
                    continue;
                }
                if let &[join] = tables.done_plans(done as usize) {
                    if tables.plans[join.index()].flags & (EXPRESS | ENTRY_WORK) == EXPRESS {
                        tables.plans[t].completion.join = join.transition;
                    }
                }
            }
        }
        // The copies, now that the plans are complete.
        for i in 0..tables.done_plans.len() {
            tables.done_plans[i] = tables.plans[tables.done_plans[i].index()];
        }
        tables.candidates_by_event();
        for e in 0..=tables.events {
            let reach = *tables.reach.get(e).unwrap_or(&tables.eventless);
            let mut lookup = Lookup {
                reach,
                single: false,
                express: false,
                fast: Express::NOTHING,
                first: Plan::NOTHING,
                start: 0,
                end: 0,
            };
            if reach.is_single() {
                let a = reach.iter().next().unwrap_or_default();
                let i = e * n + a;
                lookup.single = true;
                lookup.start = tables.offsets[i];
                lookup.end = tables.offsets[i + 1];
                lookup.first = tables.candidates[lookup.start as usize];
                if lookup.first.flags & EXPRESS != 0 {
                    if let Some(fast) = Express::of(&tables.plans, &lookup.first) {
                        lookup.express = true;
                        lookup.fast = fast;
                    }
                }
            }
            tables.lookups.push(lookup);
        }
        tables
    }

    /// Fills `offsets`, `candidates`, `reach` and `eventless`: for each
    /// event (then eventless transitions) and atomic state, the transitions
    /// met walking from the state up to the root that the event triggers.
    fn candidates_by_event(&mut self) {
        let g = self.graph;
        self.offsets.push(0);
        for e in 0..=self.events {
            for a in 0..self.states {
                if self.atomic.contains(a) {
                    let mut state = Some(a);
                    while let Some(s) = state {
                        let range = g.states[s].transitions;
                        for t in range.start..range.end {
                            let fires = match g.transitions[t].trigger {
                                Trigger::Events(list) => list.contains(&e),
                                Trigger::Any => e < self.events,
                                Trigger::Always => e == self.events,
                                Trigger::StateDone | Trigger::DoneOf(_) | Trigger::Initial => false,
                            };
                            if fires {
                                self.candidates.push(self.plans[t]);
                            }
                        }
                        state = g.states[s].parent;
                    }
                }
                if self.candidates.len() > *self.offsets.last().unwrap_or(&0) as usize {
                    match self.reach.get_mut(e) {
                        Some(reach) => reach.insert(a),
                        None => self.eventless.insert(a),
                    }
                }
                self.offsets.push(to_u32(self.candidates.len()));
            }
        }
    }

    /// Fills `wildcard`, `done_offsets`, `done_plans`, `completions` and
    /// `region_finals`.
    fn completions_of_finals(&mut self) {
        let g = self.graph;
        let mut done_listeners = StateSet::<W>::EMPTY;
        self.done_offsets.push(0);
        for (s, info) in g.states.iter().enumerate() {
            for t in info.transitions.start..info.transitions.end {
                match g.transitions[t].trigger {
                    Trigger::StateDone => {
                        done_listeners.insert(s);
                        self.done_plans.push(self.plans[t]);
                    }
                    Trigger::DoneOf(of) => {
                        done_listeners.insert(of);
                        self.done_elsewhere.insert(of);
                    }
                    Trigger::Any => self.wildcard = true,
                    Trigger::Always | Trigger::Events(_) | Trigger::Initial => {}
                }
            }
            self.done_offsets.push(to_u32(self.done_plans.len()));
        }
        let heard = |s: usize| self.wildcard || done_listeners.contains(s);
        for s in self.finals.iter() {
            let Some(parent) = g.states[s].parent else { continue };
            let mut completion = Completion::NOTHING;
            if heard(parent) {
                completion.parent = to_u32(parent);
            }
            if let Some(grandparent) = g.states[parent].parent {
                if heard(grandparent) && g.states[grandparent].kind == StateKind::Parallel {
                    completion.parallel = to_u32(grandparent);
                    let start = self.region_finals.len();
                    add_region_finals(g, grandparent, &mut self.region_finals);
                    completion.start = to_u32(start);
                    completion.end = to_u32(self.region_finals.len());
                    let masks = &self.region_finals[start..];
                    if masks.iter().all(StateSet::is_single) {
                        completion.all_of = masks.iter().fold(StateSet::EMPTY, |all, m| all.or(m));
                    }
                }
            }
            self.completions[s] = completion;
        }
    }

    /// The candidate transitions of event `event` from atomic state `atomic`.
    #[inline(always)]
    fn candidates(&self, event: usize, atomic: usize) -> &[Plan<W>] {
        let i = event * self.states + atomic;
        &self.candidates[self.offsets[i] as usize..self.offsets[i + 1] as usize]
    }

    /// Whether the parallel state of `completion` has completed in `active`.
    #[inline(always)]
    fn completed(&self, completion: &Completion<W>, active: &StateSet<W>) -> bool {
        if completion.all_of.is_empty() {
            let masks = &self.region_finals[completion.start as usize..completion.end as usize];
            masks.iter().all(|m| active.intersects(m))
        } else {
            active.and(&completion.all_of) == completion.all_of
        }
    }

    /// The `on done` transitions of state `s`.
    #[inline(always)]
    fn done_plans(&self, s: usize) -> &[Plan<W>] {
        &self.done_plans[self.done_offsets[s] as usize..self.done_offsets[s + 1] as usize]
    }

    fn all(&self) -> StateSet<W> {
        let mut all = StateSet::EMPTY;
        (0..self.graph.states.len()).for_each(|s| all.insert(s));
        all
    }

    /// The configuration a new instance starts in: the initial state, its
    /// ancestors and default descendants.
    pub const fn initial(&self) -> StateSet<W> {
        self.initial
    }
}

/// `i` as a `u32`: the tables index states and transitions with them.
fn to_u32(i: usize) -> u32 {
    u32::try_from(i).expect("a statechart has fewer than 2^32 states and transitions")
}

/// How many microsteps one macrostep may take before it is cut short: a
/// guard against eventless transitions that loop forever. `handle` then
/// returns a [`Rejected`] whose reason is [`Reason::EventlessLoop`].
pub const MAX_MICROSTEPS: usize = 10_000;

/// The outcome of a macrostep.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Macrostep {
    /// The first transition taken.
    pub transition: u16,
    /// Whether any state was exited.
    pub exited: bool,
    /// Whether the macrostep settled; `false` if it was cut short after
    /// [`MAX_MICROSTEPS`] microsteps (an eventless loop).
    pub settled: bool,
}

/// Why [`Run::handle`] took no macrostep to completion: the state a
/// [`Rejected`] names (the innermost active state containing every active
/// atomic state), and the reason.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rejection {
    /// The state's index in the graph.
    pub state: usize,
    /// Why.
    pub reason: Reason,
}

impl Rejection {
    /// The [`Rejected`] that `handle` returns for the event with index `event`.
    pub const fn rejected<N>(self, event: usize) -> Rejected<N> {
        match self.reason {
            Reason::NotAccepted => Rejected::at(self.state, event),
            Reason::EventlessLoop => Rejected::looped(self.state, event),
        }
    }
}

/// One instance's statechart: core, context, handlers and the driver's
/// queue of scheduled timers, borrowed for one macrostep.
pub struct Run<'a, C: Chart<H, W>, H: ?Sized, const W: usize, const N: usize> {
    /// The active states and history.
    pub core: &'a mut Core<W, N>,
    /// The instance's context.
    pub context: &'a mut C::Context,
    /// The handlers.
    pub handlers: &'a H,
    /// Where `send` and `cancel` go.
    pub scheduled: &'a mut Vec<Scheduled<C::Event>>,
}

/// The configuration of an instance that has just entered `state`: the
/// state, its ancestors and its default descendants (no action runs). A new
/// instance starts in `enter(graph, graph.initial)`, which
/// [`Tables::initial`] keeps.
pub fn enter<const W: usize>(graph: &Graph<'_>, state: usize) -> StateSet<W> {
    entry_of(graph, state).states
}

/// What entering `state` from nothing enters, and the default transitions
/// it takes.
fn entry_of<const W: usize>(graph: &Graph<'_>, state: usize) -> Entry<W> {
    let mut entry = Entry::<W>::default();
    let history = [];
    let mut walker = Walker::<W, 0> {
        graph,
        history: &history,
    };
    walker.add_descendants(state, &mut entry);
    walker.add_ancestors(state, None, &mut entry);
    entry
}

/// A rejection for `reason` naming the innermost active state containing
/// every active atomic state. In document order the active compound states
/// from the top come first, each followed by its one active child: the
/// first active state that is not compound ends that chain.
#[cold]
fn rejection<const W: usize>(tables: &Tables<W>, active: &StateSet<W>, reason: Reason) -> Rejection {
    Rejection {
        state: active.without(&tables.compound).iter().next().unwrap_or(0),
        reason,
    }
}

/// How many selected transitions [`Selected`] holds without allocating.
const INLINE_SELECTED: usize = 4;

/// The transitions selected for one microstep, in selection order; a few
/// inline, so that a macrostep allocates nothing in the common case.
#[derive(Default)]
struct Selected {
    len: usize,
    inline: [usize; INLINE_SELECTED],
    /// Every transition, once there are more than fit inline.
    spill: Vec<usize>,
}

impl Selected {
    fn push(&mut self, t: usize) {
        if self.len < INLINE_SELECTED {
            self.inline[self.len] = t;
        } else {
            if self.len == INLINE_SELECTED {
                self.spill.clear();
                self.spill.extend_from_slice(&self.inline);
            }
            self.spill.push(t);
        }
        self.len += 1;
    }

    fn as_slice(&self) -> &[usize] {
        if self.len <= INLINE_SELECTED {
            &self.inline[..self.len]
        } else {
            &self.spill
        }
    }

    fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        self.as_slice().iter().copied()
    }

    fn contains(&self, t: usize) -> bool {
        self.as_slice().contains(&t)
    }

    fn first(&self) -> Option<usize> {
        self.as_slice().first().copied()
    }
}

impl<C: Chart<H, W>, H: ?Sized, const W: usize, const N: usize> Run<'_, C, H, W, N> {
    /// Runs the entry actions of the initial configuration, then every
    /// eventless transition and internal event that follows: the first
    /// macrostep of an instance created with [`enter`]. An eventless loop
    /// entered here is cut short as in [`handle`](Self::handle), with no
    /// error to return (the `eventless_loop` lint reports unguarded loops).
    pub fn start(&mut self) {
        let tables = C::tables();
        let mut queue = Queue::new();
        let states = self.core.active;
        let mut work = states.and(&tables.has_entry);
        tables.initial_defaults.iter().for_each(|&(s, _)| work.insert(s));
        for s in work.iter() {
            if tables.has_entry.contains(s) {
                self.act(Site::Entry(s), None, &mut queue);
            }
            for &(_, t) in tables.initial_defaults.iter().filter(|(state, _)| *state == s) {
                self.act(Site::Transition(t), None, &mut queue);
            }
        }
        for s in states.and(&tables.finals).iter() {
            self.completion(tables, s, &states, &mut queue);
        }
        let _settled = self.settle(tables, &mut queue);
    }

    /// One macrostep for an external `event`, or, if it enables no
    /// transition (nothing changes then), the state that rejects it: the
    /// innermost active state containing every active atomic state (the
    /// atomic state itself when only one is active, else the parallel state
    /// whose regions hold them), which a [`Rejected`] names. A macrostep cut
    /// short after [`MAX_MICROSTEPS`] is a [`Reason::EventlessLoop`], naming
    /// the state the same way.
    #[inline(always)]
    pub fn handle(&mut self, event: &C::Event) -> Result<Macrostep, Rejection> {
        let tables = C::tables();
        let index = C::event_index(event);
        let step = match tables.lookups.get(index) {
            Some(lookup) if lookup.reach.intersects(&self.core.active) => {
                if !C::RAISES && lookup.express {
                    Some(self.express(tables, &lookup.fast, event))
                } else {
                    self.macrostep(tables, index, event)
                }
            }
            _ => None,
        };
        match step {
            Some(step) if step.settled => Ok(step),
            Some(_) => Err(rejection(tables, &self.core.active, Reason::EventlessLoop)),
            None => Err(rejection(tables, &self.core.active, Reason::NotAccepted)),
        }
    }

    /// The macrostep of an event whose one candidate is an [`EXPRESS`]
    /// transition, in a workflow whose actions raise nothing: the
    /// transition, then, if it completed a state whose `on done` transition
    /// is known ([`Completion::join`]) and no eventless transition is
    /// enabled, that one; anything else goes through the queue as usual.
    /// The same semantics as [`macrostep`](Self::macrostep), without its
    /// generality. Actions cannot observe the configuration, so it is
    /// computed first and the actions run after, in their order. Out of
    /// line, so that `handle`, which callers inline, stays small.
    #[inline(never)]
    fn express(&mut self, tables: &Tables<W>, x: &Express<W>, event: &C::Event) -> Macrostep {
        let eventless = |active: &StateSet<W>| C::EVENTLESS && active.intersects(&tables.eventless);
        let before = self.core.active;
        let exit = before.and(&x.exit);
        let active = before.without(&x.exit).or(&x.entry);
        let mut step = Macrostep {
            transition: x.step,
            exited: !exit.is_empty(),
            settled: true,
        };
        if x.flags & X_DONE != 0 && active.and(&x.done_when) == x.done_when {
            if x.flags & X_JOIN == 0 || eventless(&active) {
                return self.express_done(tables, x, event, active, exit);
            }
            // The join, in the same macrostep.
            self.core.active = before.without(&x.join_exit).or(&x.join_active);
            self.core.exited = before.and(&x.join_exit).or(&x.join_reexit);
            self.core.entered = x.join_entered;
            // Nothing raises: the queue the actions get stays empty.
            if x.flags & X_ACTIONS != 0 {
                self.act(Site::Transition(x.transition as usize), Some(event), &mut Queue::new());
            }
            if x.flags & X_JOIN_ACTIONS != 0 {
                self.act(Site::Transition(x.join as usize), None, &mut Queue::new());
            }
        } else {
            self.core.active = active;
            self.core.exited = exit;
            self.core.entered = x.entry;
            if x.flags & X_ACTIONS != 0 {
                self.act(Site::Transition(x.transition as usize), Some(event), &mut Queue::new());
            }
        }
        if eventless(&self.core.active) {
            step.settled = self.settle_after(tables, NONE);
        }
        step
    }

    /// An [`express`](Self::express) transition that completed a state
    /// without a join to take at once: the transition, then its completion
    /// through the queue.
    #[cold]
    #[inline(never)]
    fn express_done(
        &mut self,
        tables: &Tables<W>,
        x: &Express<W>,
        event: &C::Event,
        active: StateSet<W>,
        exit: StateSet<W>,
    ) -> Macrostep {
        self.core.active = active;
        self.core.exited = exit;
        self.core.entered = x.entry;
        if x.flags & X_ACTIONS != 0 {
            self.act(Site::Transition(x.transition as usize), Some(event), &mut Queue::new());
        }
        let settled = self.settle_after(tables, x.done);
        Macrostep {
            transition: x.step,
            exited: !exit.is_empty(),
            settled,
        }
    }

    /// The rest of an [`express`](Self::express) macrostep that did not end
    /// with its transitions: `done`, a completion (or [`NONE`]), and what
    /// follows it. Out of line, so that `express` needs no queue. Whether it
    /// settled, as [`settle_loop`](Self::settle_loop).
    #[cold]
    #[inline(never)]
    fn settle_after(&mut self, tables: &Tables<W>, done: u32) -> bool {
        let mut queue = Queue::new();
        if done != NONE {
            queue.push_done(done as usize);
        }
        self.settle_loop(tables, &mut queue)
    }

    /// The macrostep of an event some active state listens to. Kept out of
    /// [`handle`](Self::handle) so that rejecting an event stays a few
    /// instructions, without this function's prologue.
    #[inline(never)]
    fn macrostep(&mut self, tables: &Tables<W>, index: usize, event: &C::Event) -> Option<Macrostep> {
        self.core.exited = StateSet::EMPTY;
        self.core.entered = StateSet::EMPTY;
        let mut queue = Queue::new();
        let (first, exited) = self.step(tables, index, Some(event), &mut queue)?;
        let settled = self.settle(tables, &mut queue);
        Some(Macrostep {
            transition: u16::try_from(first).unwrap_or(u16::MAX),
            exited,
            settled,
        })
    }

    /// Eventless transitions, then queued internal events, until neither
    /// enables anything. Whether it settled, as [`settle_loop`](Self::settle_loop).
    #[inline(always)]
    fn settle(&mut self, tables: &Tables<W>, queue: &mut Queue<C::Event>) -> bool {
        // Most macrosteps end here: nothing raised, no eventless transition.
        if !queue.is_empty() || (C::EVENTLESS && self.core.active.intersects(&tables.eventless)) {
            return self.settle_loop(tables, queue);
        }
        true
    }

    /// [`settle`](Self::settle)'s loop: `true` once nothing is enabled,
    /// `false` if it was cut short after [`MAX_MICROSTEPS`] microsteps.
    #[inline(never)]
    fn settle_loop(&mut self, tables: &Tables<W>, queue: &mut Queue<C::Event>) -> bool {
        for _ in 0..MAX_MICROSTEPS {
            if C::EVENTLESS
                && self.core.active.intersects(&tables.eventless)
                && self.step(tables, tables.events, None, queue).is_some()
            {
                continue;
            }
            let Some(internal) = queue.pop() else { return true };
            match &internal {
                Internal::Event(e) => {
                    // (`tables.events` would mean the eventless transitions.)
                    let index = C::event_index(e);
                    if index < tables.events {
                        self.step(tables, index, Some(e), queue);
                    }
                }
                Internal::Done(s) if !Self::done_selects(tables, *s) => {
                    if let Some(plan) = self.done_transition(tables, *s) {
                        self.take(tables, plan, None, queue);
                    }
                }
                Internal::Done(s) => {
                    let mut enabled = Selected::default();
                    self.select_done(tables, *s, &mut enabled);
                    if enabled.len > 0 {
                        self.microstep(tables, &enabled, None, queue);
                    }
                }
            }
        }
        false
    }

    /// Selects the transitions event `index` (`tables.events`: eventless
    /// ones) enables and takes them in one microstep; returns the first and
    /// whether any state was exited, `None` if none is enabled.
    #[inline(always)]
    fn step(
        &mut self,
        tables: &Tables<W>,
        index: usize,
        event: Option<&C::Event>,
        queue: &mut Queue<C::Event>,
    ) -> Option<(usize, bool)> {
        let lookup = &tables.lookups[index];
        let from = lookup.reach.and(&self.core.active);
        if from.is_empty() {
            return None;
        }
        if lookup.single {
            // The usual case: one atomic state has candidates, and it is
            // active. Its first candidate is at hand.
            let plan = if self.guard(&lookup.first, event) {
                &lookup.first
            } else {
                tables.candidates[lookup.start as usize + 1..lookup.end as usize]
                    .iter()
                    .find(|plan| self.guard(plan, event))?
            };
            return Some((plan.index(), self.take(tables, plan, event, queue)));
        }
        if from.is_single() {
            // The usual case: one active atomic state can take the event, so
            // there are neither duplicates nor conflicts to weigh.
            let atomic = from.iter().next()?;
            let plan = tables
                .candidates(index, atomic)
                .iter()
                .find(|plan| self.guard(plan, event))?;
            return Some((plan.index(), self.take(tables, plan, event, queue)));
        }
        let mut enabled = Selected::default();
        self.select(tables, index, event, &mut enabled);
        let first = enabled.first()?;
        Some((first, self.microstep(tables, &enabled, event, queue)))
    }

    fn act(&mut self, site: Site, event: Option<&C::Event>, queue: &mut Queue<C::Event>) {
        let mut effects = Effects {
            internal: queue,
            scheduled: self.scheduled,
        };
        C::act(self.handlers, self.context, site, event, &mut effects);
    }

    #[inline(always)]
    fn guard(&self, plan: &Plan<W>, event: Option<&C::Event>) -> bool {
        !(C::GUARDS && plan.flags & GUARDED != 0)
            || ((plan.flags & IN_STATES == 0 || self.in_states(plan))
                && C::guard(self.handlers, self.context, plan.index(), event))
    }

    /// Whether every state the `in(..)` conditions of `plan` name is active
    /// and none of the `!in(..)` ones (SCXML `In()`, on the configuration at
    /// selection time).
    fn in_states(&self, plan: &Plan<W>) -> bool {
        let (needed, excluded) = &C::tables().in_states[plan.index()];
        self.core.active.and(needed) == *needed && !self.core.active.intersects(excluded)
    }

    /// Adds to `enabled` the transitions event `index` (`tables.events`:
    /// eventless ones) enables, one per active atomic state at most,
    /// conflicts removed.
    fn select(&self, tables: &Tables<W>, index: usize, event: Option<&C::Event>, enabled: &mut Selected) {
        let from = tables.reach.get(index).unwrap_or(&tables.eventless);
        for atomic in self.core.active.and(from).iter() {
            for plan in tables.candidates(index, atomic) {
                let t = plan.index();
                // Selected already from another atomic state (an ancestor's
                // transition): its guard held, and it is selected once.
                if enabled.contains(t) {
                    break;
                }
                if self.guard(plan, event) {
                    enabled.push(t);
                    break;
                }
            }
        }
        if enabled.len > 1 {
            self.remove_conflicts(tables, enabled);
        }
    }

    /// Adds to `enabled` the transitions the completion of state `done` enables.
    fn select_done(&self, tables: &Tables<W>, done: usize, enabled: &mut Selected) {
        if Self::done_selects(tables, done) {
            // `on _` or `on done(STATE)` transitions anywhere may take it:
            // the full walk.
            let fires = |trigger: Trigger<'_>, source: usize| match trigger {
                Trigger::StateDone => source == done,
                Trigger::DoneOf(of) => of == done,
                Trigger::Any => true,
                _ => false,
            };
            return self.select_by(tables, fires, enabled);
        }
        if let Some(plan) = self.done_transition(tables, done) {
            enabled.push(plan.index());
        }
    }

    /// Whether the completion of `done` goes through full selection: an
    /// `on _` or an `on done(done)` of another state may take it. Otherwise
    /// only `done`'s own `on done` transitions can ([`done_transition`](Self::done_transition)).
    #[inline(always)]
    fn done_selects(tables: &Tables<W>, done: usize) -> bool {
        (C::WILDCARD && tables.wildcard) || tables.done_elsewhere.contains(done)
    }

    /// The transition the completion of `done` enables when no `on _`
    /// transition exists: only `done`'s own `on done` transitions match, and
    /// every active atomic state below `done` reaches the same first enabled one.
    #[inline(always)]
    fn done_transition<'t>(&self, tables: &'t Tables<W>, done: usize) -> Option<&'t Plan<W>> {
        if !self.core.active.contains(done) {
            return None;
        }
        tables.done_plans(done).iter().find(|plan| self.guard(plan, None))
    }

    /// Selection by walking from each active atomic state to the root.
    fn select_by(&self, tables: &Tables<W>, matches: impl Fn(Trigger<'_>, usize) -> bool, enabled: &mut Selected) {
        let g = tables.graph;
        for atomic in self.core.active.and(&tables.atomic).iter() {
            let mut state = Some(atomic);
            'search: while let Some(s) = state {
                let info = &g.states[s];
                for t in info.transitions.start..info.transitions.end {
                    if matches(g.transitions[t].trigger, s) && self.guard(&tables.plans[t], None) {
                        if !enabled.contains(t) {
                            enabled.push(t);
                        }
                        break 'search;
                    }
                }
                state = info.parent;
            }
        }
        if enabled.len > 1 {
            self.remove_conflicts(tables, enabled);
        }
    }

    /// Keeps, of transitions whose exit sets overlap, the one selected first,
    /// unless the later one's source is a descendant of the earlier's.
    fn remove_conflicts(&self, tables: &Tables<W>, enabled: &mut Selected) {
        let g = tables.graph;
        let mut kept = Selected::default();
        for t1 in enabled.iter() {
            let exit1 = self.exit_set(tables, t1);
            let mut preempted = false;
            let mut replaced = Selected::default();
            for t2 in kept.iter() {
                if exit1.intersects(&self.exit_set(tables, t2)) {
                    if is_descendant(g, tables.plans[t1].source as usize, tables.plans[t2].source as usize) {
                        replaced.push(t2);
                    } else {
                        preempted = true;
                        break;
                    }
                }
            }
            if !preempted {
                if replaced.len > 0 {
                    let mut rest = Selected::default();
                    kept.iter()
                        .filter(|&t| !replaced.contains(t))
                        .for_each(|t| rest.push(t));
                    kept = rest;
                }
                kept.push(t1);
            }
        }
        *enabled = kept;
    }

    /// The active states transition `t` exits.
    #[inline]
    fn exit_set(&self, tables: &Tables<W>, t: usize) -> StateSet<W> {
        match &tables.plans[t].exit() {
            Some(mask) => self.core.active.and(mask),
            None => Walker {
                graph: tables.graph,
                history: &self.core.history,
            }
            .exit_set(t, &self.core.active),
        }
    }

    /// Exits, transition actions, entries. Returns whether any state was exited.
    fn microstep(
        &mut self,
        tables: &Tables<W>,
        enabled: &Selected,
        event: Option<&C::Event>,
        queue: &mut Queue<C::Event>,
    ) -> bool {
        match enabled.as_slice() {
            &[t] => self.take(tables, &tables.plans[t], event, queue),
            _ => self.microstep_general(tables, enabled, event, queue),
        }
    }

    /// A microstep of the transition of `plan` alone. Returns whether any
    /// state was exited.
    #[inline(always)]
    fn take(
        &mut self,
        tables: &Tables<W>,
        plan: &Plan<W>,
        event: Option<&C::Event>,
        queue: &mut Queue<C::Event>,
    ) -> bool {
        // The common case: exit and entry sets that do not depend on history.
        if plan.flags & STATIC != STATIC {
            let mut enabled = Selected::default();
            enabled.push(plan.index());
            return self.microstep_general(tables, &enabled, event, queue);
        }
        let exit = self.core.active.and(&plan.exit);
        self.exit_states(tables, exit, event, queue);
        if plan.flags & ACTIONS != 0 {
            self.act(Site::Transition(plan.index()), event, queue);
        }
        if plan.flags & ENTRY_WORK == 0 {
            self.core.active = self.core.active.or(&plan.entry);
            self.core.entered = self.core.entered.or(&plan.entry);
        } else if plan.flags & ONE_FINAL != 0 {
            // One final state is entered, without entry actions: its
            // completion sees the whole entry set (the others are not
            // final, so they cannot complete a region).
            self.core.active = self.core.active.or(&plan.entry);
            self.core.entered = self.core.entered.or(&plan.entry);
            Self::complete(tables, &plan.completion, &self.core.active, queue);
        } else {
            self.enter_states(tables, plan.entry, &[], event, queue);
        }
        !exit.is_empty()
    }

    /// Any microstep: several transitions, or history involved.
    fn microstep_general(
        &mut self,
        tables: &Tables<W>,
        enabled: &Selected,
        event: Option<&C::Event>,
        queue: &mut Queue<C::Event>,
    ) -> bool {
        // Exit: innermost first, every history recorded before any exit action.
        let mut exit = StateSet::<W>::EMPTY;
        for t in enabled.iter() {
            exit = exit.or(&self.exit_set(tables, t));
        }
        self.exit_states(tables, exit, event, queue);
        // Transition actions, in selection order.
        for t in enabled.iter() {
            if tables.plans[t].flags & ACTIONS != 0 {
                self.act(Site::Transition(t), event, queue);
            }
        }
        // Entry: outermost first.
        let mut entry = Entry::<W>::default();
        let mut dynamic = false;
        for t in enabled.iter() {
            match &tables.plans[t].entry() {
                Some(states) => entry.states = entry.states.or(states),
                None => dynamic = true,
            }
        }
        if dynamic {
            let mut walker = Walker {
                graph: tables.graph,
                history: &self.core.history,
            };
            for t in enabled.iter().filter(|&t| tables.plans[t].entry().is_none()) {
                walker.entry_set(t, &mut entry);
            }
        }
        self.enter_states(tables, entry.states, &entry.defaults, event, queue);
        !exit.is_empty()
    }

    /// Leaves the active states `exit`: records history, then runs exit
    /// actions innermost first.
    #[inline(always)]
    fn exit_states(
        &mut self,
        tables: &Tables<W>,
        exit: StateSet<W>,
        event: Option<&C::Event>,
        queue: &mut Queue<C::Event>,
    ) {
        if C::HISTORY && exit.intersects(&tables.history_parents) {
            self.record_history(tables, exit.and(&tables.history_parents));
        }
        self.core.exited = self.core.exited.or(&exit);
        let exiting = if C::EXIT_ACTIONS {
            exit.and(&tables.has_exit)
        } else {
            StateSet::EMPTY
        };
        for s in exiting.iter().rev() {
            self.act(Site::Exit(s), event, queue);
        }
        self.core.active = self.core.active.without(&exit);
    }

    /// Enters `states` outermost first: entry actions, the default
    /// transitions of history states that recorded nothing (`(parent,
    /// transition)`), and completions.
    #[inline(always)]
    fn enter_states(
        &mut self,
        tables: &Tables<W>,
        states: StateSet<W>,
        defaults: &[(usize, usize)],
        event: Option<&C::Event>,
        queue: &mut Queue<C::Event>,
    ) {
        let before = self.core.active;
        self.core.active = before.or(&states);
        self.core.entered = self.core.entered.or(&states);
        // Only states with entry actions, completions or history defaults
        // need a visit; states join the configuration in document order, so
        // a completion sees those entered before it (`up_to`).
        let mut work = states.and(&tables.entry_work);
        defaults
            .iter()
            .filter(|(parent, _)| states.contains(*parent))
            .for_each(|&(parent, _)| work.insert(parent));
        for s in work.iter() {
            if tables.has_entry.contains(s) {
                self.act(Site::Entry(s), event, queue);
            }
            for &(_, t) in defaults.iter().filter(|(state, _)| *state == s) {
                self.act(Site::Transition(t), event, queue);
            }
            if tables.finals.contains(s) {
                let visible = before.or(&states.up_to(s));
                self.completion(tables, s, &visible, queue);
            }
        }
    }

    /// Records, for each history child of the states in `parents`, what
    /// they have active now.
    fn record_history(&mut self, tables: &Tables<W>, parents: StateSet<W>) {
        let g = tables.graph;
        for s in parents.iter() {
            let inside = self.core.active.and(&tables.subtree[s]);
            for h in s + 1..g.states[s].end {
                if g.states[h].parent != Some(s) {
                    continue;
                }
                if let StateKind::History { deep, slot } = g.states[h].kind {
                    self.core.history[slot] = if deep {
                        inside.and(&tables.atomic)
                    } else {
                        let mut children = StateSet::EMPTY;
                        inside
                            .iter()
                            .filter(|&c| g.states[c].parent == Some(s))
                            .for_each(|c| children.insert(c));
                        children
                    };
                }
            }
        }
    }

    /// Raises `done.state` events when entering final state `s` completes its
    /// parent (and a parallel grandparent whose regions are all final), with
    /// `active` the configuration so far. A completion nothing listens to
    /// would be discarded, so the tables leave it out.
    #[inline(always)]
    fn completion(&self, tables: &Tables<W>, s: usize, active: &StateSet<W>, queue: &mut Queue<C::Event>) {
        Self::complete(tables, &tables.completions[s], active, queue);
    }

    /// The completions of `completion`, with `active` the configuration so far.
    #[inline(always)]
    fn complete(tables: &Tables<W>, completion: &Completion<W>, active: &StateSet<W>, queue: &mut Queue<C::Event>) {
        if completion.parent != NONE {
            queue.push_done(completion.parent as usize);
        }
        if completion.parallel != NONE && tables.completed(completion, active) {
            queue.push_done(completion.parallel as usize);
        }
    }
}

/// Adds what parallel state `s` needs to have completed: for each region, the
/// mask of states of which one must be active (see `Tables::region_finals`).
fn add_region_finals<const W: usize>(g: &Graph<'_>, s: usize, out: &mut Vec<StateSet<W>>) {
    for region in children(g, s) {
        match g.states[region].kind {
            StateKind::Compound { .. } => {
                let mut finals = StateSet::EMPTY;
                children(g, region)
                    .filter(|&c| g.states[c].is_final())
                    .for_each(|c| finals.insert(c));
                out.push(finals);
            }
            StateKind::Parallel => add_region_finals(g, region, out),
            StateKind::History { .. } => {}
            StateKind::Atomic | StateKind::Final { .. } => out.push(StateSet::EMPTY),
        }
    }
}

/// States to enter in one microstep.
#[derive(Default)]
struct Entry<const W: usize> {
    states: StateSet<W>,
    /// Whether the entry cannot be precomputed: a history state was entered
    /// (the set then depends on memory), or a default transition with
    /// actions was taken (they run in the microstep).
    dynamic: bool,
    /// Default transitions taken whose actions run after `state`'s entry,
    /// as `(state, transition)`: those of history states used before they
    /// recorded anything (`state` the history's parent), and the default
    /// entry transitions of compound states (`initial A, B / act;`).
    defaults: Vec<(usize, usize)>,
}

/// Graph walks that need the history memory but not the context.
struct Walker<'a, const W: usize, const N: usize> {
    graph: &'a Graph<'a>,
    history: &'a [StateSet<W>; N],
}

impl<const W: usize, const N: usize> Walker<'_, W, N> {
    /// The default (first) transition of a history state: its targets when
    /// nothing was recorded.
    fn history_default(&self, h: usize) -> Option<usize> {
        let range = self.graph.states[h].transitions;
        (range.start < range.end).then_some(range.start)
    }

    fn effective_targets(&self, t: usize) -> Vec<usize> {
        let mut out = Vec::new();
        self.collect_targets(self.graph.transitions[t].targets, &mut out);
        out
    }

    fn collect_targets(&self, targets: &[usize], out: &mut Vec<usize>) {
        for &s in targets {
            match self.graph.states[s].kind {
                StateKind::History { slot, .. } => {
                    let memory = self.history.get(slot).copied().unwrap_or_default();
                    if memory.is_empty() {
                        if let Some(d) = self.history_default(s) {
                            self.collect_targets(self.graph.transitions[d].targets, out);
                        }
                    } else {
                        out.extend(memory.iter().filter(|x| !out.contains(x)).collect::<Vec<_>>());
                    }
                }
                _ if !out.contains(&s) => out.push(s),
                _ => {}
            }
        }
    }

    /// The transition's domain: `None` for the root (every state is inside it).
    fn domain(&self, t: usize) -> Option<usize> {
        let g = self.graph;
        let transition = &g.transitions[t];
        let targets = self.effective_targets(t);
        if targets.is_empty() {
            return Some(transition.source);
        }
        let source = transition.source;
        if transition.internal
            && matches!(g.states[source].kind, StateKind::Compound { .. })
            && targets.iter().all(|&s| is_descendant(g, s, source))
        {
            return Some(source);
        }
        // The least common compound ancestor of the source and the targets.
        let mut ancestor = g.states[source].parent;
        while let Some(a) = ancestor {
            if matches!(g.states[a].kind, StateKind::Compound { .. }) && targets.iter().all(|&s| is_descendant(g, s, a))
            {
                return Some(a);
            }
            ancestor = g.states[a].parent;
        }
        None
    }

    /// The active states a transition exits: the active descendants of its domain.
    fn exit_set(&self, t: usize, active: &StateSet<W>) -> StateSet<W> {
        if self.graph.transitions[t].targets.is_empty() {
            return StateSet::EMPTY;
        }
        match self.domain(t) {
            None => *active,
            Some(d) => {
                let mut inside = StateSet::EMPTY;
                active
                    .iter()
                    .filter(|&s| is_descendant(self.graph, s, d))
                    .for_each(|s| inside.insert(s));
                inside
            }
        }
    }

    /// Adds the states transition `t` enters.
    fn entry_set(&mut self, t: usize, entry: &mut Entry<W>) {
        let transition = &self.graph.transitions[t];
        for &target in transition.targets {
            self.add_descendants(target, entry);
        }
        let domain = self.domain(t);
        for target in self.effective_targets(t) {
            self.add_ancestors(target, domain, entry);
        }
    }

    fn add_descendants(&mut self, s: usize, entry: &mut Entry<W>) {
        let g = self.graph;
        match g.states[s].kind {
            StateKind::History { slot, .. } => {
                entry.dynamic = true;
                let parent = g.states[s].parent;
                let memory = self.history.get(slot).copied().unwrap_or_default();
                let targets: Vec<usize> = if memory.is_empty() {
                    let Some(d) = self.history_default(s) else { return };
                    if let Some(p) = parent {
                        entry.defaults.push((p, d));
                    }
                    g.transitions[d].targets.to_vec()
                } else {
                    memory.iter().collect()
                };
                for &target in &targets {
                    self.add_descendants(target, entry);
                }
                for &target in &targets {
                    self.add_ancestors(target, parent, entry);
                }
            }
            StateKind::Compound { initial } => {
                entry.states.insert(s);
                let Some(t) = initial_transition(g, s) else {
                    self.add_descendants(initial, entry);
                    self.add_ancestors(initial, Some(s), entry);
                    return;
                };
                let transition = &g.transitions[t];
                if !transition.actions.is_empty() {
                    entry.dynamic = true;
                    entry.defaults.push((s, t));
                }
                for &target in transition.targets {
                    self.add_descendants(target, entry);
                }
                for &target in transition.targets {
                    self.add_ancestors(target, Some(s), entry);
                }
            }
            StateKind::Parallel => {
                entry.states.insert(s);
                self.enter_regions(s, entry);
            }
            StateKind::Atomic | StateKind::Final { .. } => entry.states.insert(s),
        }
    }

    /// Enters every region of parallel `s` not already being entered.
    fn enter_regions(&mut self, s: usize, entry: &mut Entry<W>) {
        let g = self.graph;
        let regions: Vec<usize> = children(g, s)
            .filter(|&c| !matches!(g.states[c].kind, StateKind::History { .. }))
            .collect();
        for child in regions {
            let end = g.states[child].end;
            if !entry.states.iter().any(|x| x >= child && x < end) {
                self.add_descendants(child, entry);
            }
        }
    }

    /// Adds the ancestors of `s` below `stop` (`None`: the root), entering the
    /// other regions of any parallel among them.
    fn add_ancestors(&mut self, s: usize, stop: Option<usize>, entry: &mut Entry<W>) {
        let g = self.graph;
        let mut ancestor = g.states[s].parent;
        while let Some(a) = ancestor {
            if Some(a) == stop {
                break;
            }
            entry.states.insert(a);
            if g.states[a].kind == StateKind::Parallel {
                self.enter_regions(a, entry);
            }
            ancestor = g.states[a].parent;
        }
    }
}

/// The default entry transition of compound state `s` (`Trigger::Initial`,
/// always its first), if it has one.
fn initial_transition(g: &Graph<'_>, s: usize) -> Option<usize> {
    let range = g.states[s].transitions;
    (range.start < range.end && g.transitions[range.start].trigger == Trigger::Initial).then_some(range.start)
}

/// Whether `s` is a proper descendant of `ancestor`.
fn is_descendant(g: &Graph<'_>, s: usize, ancestor: usize) -> bool {
    s > ancestor && s < g.states[ancestor].end
}

fn children<'g>(g: &'g Graph<'_>, s: usize) -> impl Iterator<Item = usize> + 'g {
    (s + 1..g.states[s].end).filter(move |&c| g.states[c].parent == Some(s))
}
