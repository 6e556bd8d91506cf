//! Sets of active states and the configuration type statechart machines expose.

use crate::graph::{Graph, StateKind};

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

    /// The states in both sets.
    pub fn and(mut self, other: &Self) -> Self {
        self.0.iter_mut().zip(&other.0).for_each(|(a, b)| *a &= b);
        self
    }

    /// The states in either set.
    pub fn or(mut self, other: &Self) -> Self {
        self.0.iter_mut().zip(&other.0).for_each(|(a, b)| *a |= b);
        self
    }

    /// The states of `self` not in `other`.
    pub fn without(mut self, other: &Self) -> Self {
        self.0.iter_mut().zip(&other.0).for_each(|(a, b)| *a &= !b);
        self
    }

    /// The states of the set up to `index`, included.
    pub(crate) fn up_to(mut self, index: usize) -> Self {
        for (w, word) in self.0.iter_mut().enumerate() {
            match (w * 64).cmp(&(index - index % 64)) {
                std::cmp::Ordering::Less => {}
                std::cmp::Ordering::Equal => *word &= u64::MAX >> (63 - index % 64),
                std::cmp::Ordering::Greater => *word = 0,
            }
        }
        self
    }

    /// The states of the set, in increasing (document) order.
    pub fn iter(self) -> impl DoubleEndedIterator<Item = usize> {
        Bits {
            words: self.0,
            front: 0,
            back: W,
        }
    }

    /// Whether the set has exactly one state.
    pub(crate) fn is_single(&self) -> bool {
        self.0.iter().map(|w| w.count_ones()).sum::<u32>() == 1
    }
}

/// The set bits of a set's words, lowest first (or highest first from the
/// back): a plain loop over the words, which the interpreter's hot paths
/// iterate (a `flat_map` of per-word iterators compiles to more branches).
struct Bits<const W: usize> {
    words: [u64; W],
    /// The words `front..back` may still hold bits.
    front: usize,
    back: usize,
}

impl<const W: usize> Iterator for Bits<W> {
    type Item = usize;
    #[inline]
    fn next(&mut self) -> Option<usize> {
        while self.front < self.back {
            let word = &mut self.words[self.front];
            if *word != 0 {
                let bit = word.trailing_zeros() as usize;
                *word &= *word - 1;
                return Some(self.front * 64 + bit);
            }
            self.front += 1;
        }
        None
    }
}

impl<const W: usize> DoubleEndedIterator for Bits<W> {
    #[inline]
    fn next_back(&mut self) -> Option<usize> {
        while self.back > self.front {
            let word = &mut self.words[self.back - 1];
            if *word != 0 {
                let bit = 63 - word.leading_zeros() as usize;
                *word &= !(1 << bit);
                return Some((self.back - 1) * 64 + bit);
            }
            self.back -= 1;
        }
        None
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
        let graph = S::graph();
        self.active
            .iter()
            .filter(move |&i| is_atomic(graph, i))
            .filter_map(S::from_index)
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

/// Whether state `s` has no child states.
pub(crate) fn is_atomic(g: &Graph<'_>, s: usize) -> bool {
    matches!(g.states[s].kind, StateKind::Atomic | StateKind::Final { .. })
}
