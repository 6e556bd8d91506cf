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

use std::collections::VecDeque;
use std::time::Duration;

use crate::graph::{Graph, StateKind, Trigger};

/// A set of states of one workflow, as a bitset of `W` 64-bit words.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct StateSet<const W: usize>([u64; W]);

impl<const W: usize> StateSet<W> {
    /// The empty set.
    pub const EMPTY: Self = StateSet([0; W]);

    /// Whether state `index` is in the set.
    pub const fn contains(&self, index: usize) -> bool {
        index < W * 64 && self.0[index / 64] & (1 << (index % 64)) != 0
    }

    /// Adds state `index`.
    pub fn insert(&mut self, index: usize) {
        self.0[index / 64] |= 1 << (index % 64);
    }

    /// Removes state `index`.
    pub fn remove(&mut self, index: usize) {
        self.0[index / 64] &= !(1 << (index % 64));
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.0.iter().all(|w| *w == 0)
    }

    /// Whether the two sets share a state.
    pub fn intersects(&self, other: &Self) -> bool {
        self.0.iter().zip(&other.0).any(|(a, b)| a & b != 0)
    }

    /// The states of the set, in increasing (document) order.
    pub fn iter(self) -> impl DoubleEndedIterator<Item = usize> {
        (0..W).flat_map(move |w| {
            let word = self.0[w];
            (0..64).filter(move |b| word & (1 << b) != 0).map(move |b| w * 64 + b)
        })
    }

    /// The states of `self` within `range` (a subtree in document order).
    fn within(&self, start: usize, end: usize) -> Self {
        let mut out = Self::EMPTY;
        for i in self.iter().filter(|&i| i >= start && i < end) {
            out.insert(i);
        }
        out
    }
}

impl<const W: usize> Default for StateSet<W> {
    fn default() -> Self {
        Self::EMPTY
    }
}

impl<const W: usize> std::fmt::Debug for StateSet<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

/// Implemented by every generated state enum: the link between its
/// variants and the graph's state indices.
pub trait StateEnum: Copy + Eq + std::hash::Hash + std::fmt::Debug + std::fmt::Display + Send + Sync + 'static {
    /// The workflow's graph.
    fn graph() -> &'static Graph<'static>;
    /// The state's index in the graph.
    fn index(self) -> usize;
    /// The state with this index, if there is one.
    fn from_index(index: usize) -> Option<Self>;
}

/// The active states of a statechart instance: what `state()` returns for a
/// workflow with nested or parallel states.
///
/// Displayed as its active atomic states: `{Charging, Reserving}`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Configuration<S, const W: usize> {
    active: StateSet<W>,
    state: std::marker::PhantomData<S>,
}

impl<S: StateEnum, const W: usize> Configuration<S, W> {
    /// The configuration with these active states.
    pub const fn new(active: StateSet<W>) -> Self {
        Self {
            active,
            state: std::marker::PhantomData,
        }
    }

    /// Whether `state` is active (the SCXML `In()` predicate).
    pub fn is_in(&self, state: S) -> bool {
        self.active.contains(state.index())
    }

    /// Every active state, ancestors included, in document order.
    pub fn states(&self) -> impl Iterator<Item = S> {
        self.active.iter().filter_map(S::from_index)
    }

    /// The active atomic states (those without children), in document order.
    pub fn atomic(&self) -> impl Iterator<Item = S> {
        atomic_states(self.active)
    }

    /// The active states as a set of graph indices.
    pub const fn set(&self) -> StateSet<W> {
        self.active
    }
}

impl<S: StateEnum, const W: usize> std::fmt::Display for Configuration<S, W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<String> = self.atomic().map(|s| s.to_string()).collect();
        f.pad(&format!("{{{}}}", names.join(", ")))
    }
}

impl<S: StateEnum, const W: usize> std::fmt::Debug for Configuration<S, W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.states()).finish()
    }
}

/// The part of a statechart instance the interpreter owns: its active
/// states and what each history state remembers (`H` of them).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Core<const W: usize, const H: usize> {
    /// Every active state: atomic ones and their ancestors.
    pub active: StateSet<W>,
    /// What each history state recorded, by its slot; empty until recorded.
    pub history: [StateSet<W>; H],
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

/// What actions may do besides calling handlers: raise internal events and
/// schedule or cancel timers.
pub struct Effects<'a, E> {
    internal: &'a mut VecDeque<Internal<E>>,
    scheduled: &'a mut Vec<Scheduled<E>>,
}

impl<E> Effects<'_, E> {
    /// `raise EVENT`: queue an internal event, handled before any external one.
    pub fn raise(&mut self, event: E) {
        self.internal.push_back(Internal::Event(event));
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
/// parallel states, history, eventless transitions or internal events.
pub trait Chart<H: ?Sized> {
    /// The workflow's event enum.
    type Event;
    /// The workflow's context.
    type Context;

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

/// How many microsteps one macrostep may take before it is cut short: a
/// guard against eventless transitions that loop forever.
pub const MAX_MICROSTEPS: usize = 10_000;

/// The outcome of a macrostep.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Macrostep {
    /// The first transition taken.
    pub transition: u16,
    /// Whether any state was exited.
    pub exited: bool,
}

/// One instance's statechart: graph, core, context and the driver's queue of
/// scheduled timers, borrowed for one macrostep.
pub struct Run<'a, C: Chart<H>, H: ?Sized, const W: usize, const N: usize> {
    /// The workflow's graph.
    pub graph: &'static Graph<'static>,
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
/// instance starts in `enter(graph, graph.initial)`.
pub fn enter<const W: usize>(graph: &Graph<'_>, state: usize) -> StateSet<W> {
    let mut entry = Entry::<W>::default();
    let history = [];
    let mut walker = Walker::<W, 0> {
        graph,
        history: &history,
    };
    walker.add_descendants(state, &mut entry);
    walker.add_ancestors(state, None, &mut entry);
    entry.states
}

/// The atomic states of `active` as state enum values, in document order.
pub fn atomic_states<S: StateEnum, const W: usize>(active: StateSet<W>) -> impl Iterator<Item = S> {
    let graph = S::graph();
    active
        .iter()
        .filter(move |&i| is_atomic(graph, i))
        .filter_map(S::from_index)
}

impl<C: Chart<H>, H: ?Sized, const W: usize, const N: usize> Run<'_, C, H, W, N> {
    /// Runs the entry actions of the initial configuration, then every
    /// eventless transition and internal event that follows: the first
    /// macrostep of an instance created with [`initial`].
    pub fn start(&mut self) {
        let mut queue = VecDeque::new();
        let states = self.core.active;
        for s in states.iter() {
            self.act(Site::Entry(s), None, &mut queue);
            self.completion(s, &mut queue);
        }
        self.settle(&mut queue);
    }

    /// One macrostep for an external `event`; `None` if it enables no
    /// transition (nothing changes then).
    pub fn handle(&mut self, event: &C::Event) -> Option<Macrostep> {
        let index = C::event_index(event);
        let enabled = self.select(Some((index, Some(event))));
        let first = *enabled.first()?;
        let mut queue = VecDeque::new();
        let exited = self.microstep(&enabled, Some(event), &mut queue);
        self.settle(&mut queue);
        Some(Macrostep {
            transition: u16::try_from(first).unwrap_or(u16::MAX),
            exited,
        })
    }

    /// Eventless transitions, then queued internal events, until neither
    /// enables anything.
    fn settle(&mut self, queue: &mut VecDeque<Internal<C::Event>>) {
        for _ in 0..MAX_MICROSTEPS {
            let enabled = self.select(None);
            if !enabled.is_empty() {
                self.microstep(&enabled, None, queue);
                continue;
            }
            let Some(internal) = queue.pop_front() else { return };
            let (enabled, event) = match &internal {
                Internal::Event(e) => (self.select(Some((C::event_index(e), Some(e)))), Some(e)),
                Internal::Done(s) => (self.select_done(*s), None),
            };
            if !enabled.is_empty() {
                self.microstep(&enabled, event, queue);
            }
        }
    }

    fn act(&mut self, site: Site, event: Option<&C::Event>, queue: &mut VecDeque<Internal<C::Event>>) {
        let mut effects = Effects {
            internal: queue,
            scheduled: self.scheduled,
        };
        C::act(self.handlers, self.context, site, event, &mut effects);
    }

    /// The transitions `event` enables (eventless ones for `None`), one per
    /// active atomic state at most, conflicts removed.
    fn select(&self, event: Option<(usize, Option<&C::Event>)>) -> Vec<usize> {
        let fires = |trigger: Trigger<'_>, _source: usize| match (trigger, event) {
            (Trigger::Always, None) => true,
            (Trigger::Events(list), Some((index, _))) => list.contains(&index),
            (Trigger::Any, Some(_)) => true,
            _ => false,
        };
        self.select_by(fires, event.and_then(|(_, e)| e))
    }

    /// The transitions the completion of state `done` enables.
    fn select_done(&self, done: usize) -> Vec<usize> {
        let fires = |trigger: Trigger<'_>, source: usize| match trigger {
            Trigger::StateDone => source == done,
            Trigger::Any => true,
            _ => false,
        };
        self.select_by(fires, None)
    }

    fn select_by(&self, matches: impl Fn(Trigger<'_>, usize) -> bool, event: Option<&C::Event>) -> Vec<usize> {
        let g = self.graph;
        let mut enabled: Vec<usize> = Vec::new();
        for atomic in self.core.active.iter().filter(|&s| is_atomic(g, s)) {
            let mut state = Some(atomic);
            'search: while let Some(s) = state {
                let info = &g.states[s];
                for t in info.transitions.start..info.transitions.end {
                    let transition = &g.transitions[t];
                    if matches(transition.trigger, s) && C::guard(self.handlers, self.context, t, event) {
                        if !enabled.contains(&t) {
                            enabled.push(t);
                        }
                        break 'search;
                    }
                }
                state = info.parent;
            }
        }
        self.remove_conflicts(enabled)
    }

    /// Keeps, of transitions whose exit sets overlap, the one selected first,
    /// unless the later one's source is a descendant of the earlier's.
    fn remove_conflicts(&self, enabled: Vec<usize>) -> Vec<usize> {
        if enabled.len() < 2 {
            return enabled;
        }
        let walker = self.walker();
        let mut kept: Vec<(usize, StateSet<W>)> = Vec::new();
        for t1 in enabled {
            let exit1 = walker.exit_set(t1, &self.core.active);
            let mut preempted = false;
            let mut replaced = Vec::new();
            for (i, (t2, exit2)) in kept.iter().enumerate() {
                if exit1.intersects(exit2) {
                    if is_descendant(
                        self.graph,
                        self.graph.transitions[t1].source,
                        self.graph.transitions[*t2].source,
                    ) {
                        replaced.push(i);
                    } else {
                        preempted = true;
                        break;
                    }
                }
            }
            if !preempted {
                for i in replaced.into_iter().rev() {
                    kept.remove(i);
                }
                kept.push((t1, exit1));
            }
        }
        kept.into_iter().map(|(t, _)| t).collect()
    }

    fn walker(&self) -> Walker<'_, W, N> {
        Walker {
            graph: self.graph,
            history: &self.core.history,
        }
    }

    /// Exits, transition actions, entries. Returns whether any state was exited.
    fn microstep(
        &mut self,
        enabled: &[usize],
        event: Option<&C::Event>,
        queue: &mut VecDeque<Internal<C::Event>>,
    ) -> bool {
        let g = self.graph;
        // Exit: innermost first, every history recorded before any exit action.
        let mut exit = StateSet::<W>::EMPTY;
        {
            let walker = self.walker();
            for &t in enabled {
                let set = walker.exit_set(t, &self.core.active);
                for s in set.iter() {
                    exit.insert(s);
                }
            }
        }
        for s in exit.iter() {
            let info = &g.states[s];
            for h in s + 1..info.end {
                if let StateKind::History { deep, slot } = g.states[h].kind {
                    if g.states[h].parent == Some(s) {
                        self.core.history[slot] = if deep {
                            let mut atomic = self.core.active.within(s + 1, info.end);
                            for x in atomic.iter().collect::<Vec<_>>() {
                                if !is_atomic(g, x) {
                                    atomic.remove(x);
                                }
                            }
                            atomic
                        } else {
                            let mut children = StateSet::EMPTY;
                            for c in self.core.active.iter().filter(|&c| g.states[c].parent == Some(s)) {
                                children.insert(c);
                            }
                            children
                        };
                    }
                }
            }
        }
        for s in exit.iter().rev() {
            self.act(Site::Exit(s), event, queue);
            self.core.active.remove(s);
        }
        // Transition actions, in selection order.
        for &t in enabled {
            self.act(Site::Transition(t), event, queue);
        }
        // Entry: outermost first.
        let mut entry = Entry::<W>::default();
        {
            let mut walker = self.walker();
            for &t in enabled {
                let transition = &g.transitions[t];
                for &target in transition.targets {
                    walker.add_descendants(target, &mut entry);
                }
                let domain = walker.domain(t);
                for target in walker.effective_targets(t) {
                    walker.add_ancestors(target, domain, &mut entry);
                }
            }
        }
        for s in entry.states.iter() {
            self.core.active.insert(s);
            self.act(Site::Entry(s), event, queue);
            if let Some(&(_, t)) = entry.history_defaults.iter().find(|(parent, _)| *parent == s) {
                self.act(Site::Transition(t), event, queue);
            }
            self.completion(s, queue);
        }
        !exit.is_empty()
    }

    /// Raises `done.state` events when entering final state `s` completes its
    /// parent (and a parallel grandparent whose regions are all final).
    fn completion(&self, s: usize, queue: &mut VecDeque<Internal<C::Event>>) {
        let g = self.graph;
        if !matches!(g.states[s].kind, StateKind::Final { .. }) {
            return;
        }
        let Some(parent) = g.states[s].parent else { return };
        queue.push_back(Internal::Done(parent));
        if let Some(grandparent) = g.states[parent].parent {
            if g.states[grandparent].kind == StateKind::Parallel && self.in_final(grandparent) {
                queue.push_back(Internal::Done(grandparent));
            }
        }
    }

    /// Whether `s` has completed: a compound with an active final child, a
    /// parallel whose regions all have.
    fn in_final(&self, s: usize) -> bool {
        let g = self.graph;
        let children = || children(g, s).filter(|&c| !matches!(g.states[c].kind, StateKind::History { .. }));
        match g.states[s].kind {
            StateKind::Compound { .. } => {
                children().any(|c| self.core.active.contains(c) && matches!(g.states[c].kind, StateKind::Final { .. }))
            }
            StateKind::Parallel => children().all(|c| self.in_final(c)),
            _ => false,
        }
    }
}

/// States to enter in one microstep.
#[derive(Default)]
struct Entry<const W: usize> {
    states: StateSet<W>,
    /// `(parent, default transition)` of history states used before they recorded anything.
    history_defaults: Vec<(usize, usize)>,
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
            Some(d) => active.within(d + 1, self.graph.states[d].end),
        }
    }

    fn add_descendants(&mut self, s: usize, entry: &mut Entry<W>) {
        let g = self.graph;
        match g.states[s].kind {
            StateKind::History { slot, .. } => {
                let parent = g.states[s].parent;
                let memory = self.history.get(slot).copied().unwrap_or_default();
                let targets: Vec<usize> = if memory.is_empty() {
                    let Some(d) = self.history_default(s) else { return };
                    if let Some(p) = parent {
                        entry.history_defaults.push((p, d));
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
                self.add_descendants(initial, entry);
                self.add_ancestors(initial, Some(s), entry);
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

fn is_atomic(g: &Graph<'_>, s: usize) -> bool {
    matches!(g.states[s].kind, StateKind::Atomic | StateKind::Final { .. })
}

/// Whether `s` is a proper descendant of `ancestor`.
fn is_descendant(g: &Graph<'_>, s: usize, ancestor: usize) -> bool {
    s > ancestor && s < g.states[ancestor].end
}

fn children<'g>(g: &'g Graph<'_>, s: usize) -> impl Iterator<Item = usize> + 'g {
    (s + 1..g.states[s].end).filter(move |&c| g.states[c].parent == Some(s))
}
