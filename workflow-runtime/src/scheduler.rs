//! Resources with a concurrency limit, and the queues in front of them.
//!
//! A *resource* is a named pool of slots standing for a service's capacity
//! ("payments: 4 at a time"). An activity call asks the [`Scheduler`] for a
//! slot of its resource with [`Scheduler::acquire`], describing itself as a
//! [`Job`]; it gets a [`Permit`] when the resource's [`SchedulingPolicy`]
//! picks it for a free slot, runs while holding it, and frees the slot by
//! dropping it, which hands the slot to the job the policy picks next.
//!
//! Built-in policies: [`Fifo`] (the default), [`ShortestJobFirst`] (on the
//! declared or a learned expected duration), [`Priority`] (higher first) and
//! [`RoundRobin`] (fair across flows). The two that reorder jobs by size or
//! rank bound starvation with a maximum wait: see [`ShortestJobFirst`].
//!
//! The scheduler also keeps each resource's queueing statistics
//! ([`Scheduler::metrics`], described in [`crate::metrics`]).
//!
//! All times are on tokio's clock ([`tokio::time::Instant`]), so everything
//! runs under a paused clock too, in simulated time.
//!
//! ```
//! use std::time::Duration;
//! use workflow_runtime::scheduler::{Job, Scheduler, ShortestJobFirst};
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let scheduler = Scheduler::builder()
//!     .resource("payments", 4)
//!     .resource_with("stock", 16, ShortestJobFirst::new().max_wait(Duration::from_secs(5)))
//!     .build()?;
//!
//! // Six charges at once: four run, two wait for a slot.
//! let mut calls = Vec::new();
//! for order in 0..6u64 {
//!     let scheduler = scheduler.clone();
//!     calls.push(tokio::spawn(async move {
//!         let permit = scheduler.acquire("payments", Job::new("charge").flow(order)).await?;
//!         tokio::time::sleep(Duration::from_millis(100)).await; // call the payment service
//!         Ok::<_, workflow_runtime::scheduler::SchedulerError>(permit.queued())
//!     }));
//! }
//! let mut waited = Vec::new();
//! for call in calls {
//!     waited.push(call.await??);
//! }
//! waited.sort();
//! assert_eq!(waited[3], Duration::ZERO);
//! assert_eq!(waited[5], Duration::from_millis(100));
//!
//! let payments = scheduler.metrics().get("payments").cloned().ok_or("no payments")?;
//! assert_eq!((payments.arrivals, payments.completed), (6, 6));
//! // Little's law, L = λW, on the drained system (W is rounded to the nanosecond).
//! assert!((payments.mean_in_system - payments.little_product()).abs() < 1e-6);
//! assert!(scheduler.acquire("mail", Job::new("send")).await.is_err()); // no such resource
//! # Ok(()) }
//! ```
//!
//! # Cancellation
//!
//! The [`Acquire`] future may be dropped at any point, as the engine does
//! when it aborts an activity whose state was left. Dropped while waiting,
//! the job leaves the queue and holds nothing; dropped after it was granted
//! a slot but before it was polled again, the slot goes straight to the next
//! job. Either way the job counts as cancelled in the metrics.
//!
//! # Cost
//!
//! A free slot with nobody waiting is granted at the first poll, without
//! allocating; acquiring and releasing take one uncontended lock each (a
//! `std::sync::Mutex` per resource) and read the clock once each. A job
//! that has to wait registers its waker in a per-resource table and is
//! woken alone when it is picked.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::fmt;
use std::future::Future;
use std::hash::{BuildHasherDefault, Hasher};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use tokio::time::Instant;

use crate::metrics::{Metrics, ResourceMetrics, Stats};

// ---------------------------------------------------------------------------
// Jobs
// ---------------------------------------------------------------------------

/// What a scheduling policy knows about an activity call waiting for a slot.
///
/// ```
/// use std::time::Duration;
/// use workflow_runtime::scheduler::Job;
///
/// let job = Job::new("charge").flow(Job::flow_key("order-17")).priority(2).expected(Duration::from_millis(40));
/// assert_eq!((job.activity, job.priority), ("charge", 2));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Job {
    /// The activity's name; [`ShortestJobFirst`] learns durations per name.
    pub activity: &'static str,
    /// Which workflow instance (or any other grouping) the call belongs to;
    /// [`RoundRobin`] takes turns between flows. See [`Job::flow_key`] for
    /// string ids.
    pub flow: u64,
    /// Higher is served first under [`Priority`]; ignored by other policies.
    pub priority: i32,
    /// The declared expected duration of the call, if known; used by
    /// [`ShortestJobFirst`] before anything it learned.
    pub expected: Option<Duration>,
}

impl Job {
    /// A call of `activity` in flow 0, priority 0, with no expected duration.
    pub const fn new(activity: &'static str) -> Self {
        Self {
            activity,
            flow: 0,
            priority: 0,
            expected: None,
        }
    }

    /// The same job in flow `flow`.
    pub const fn flow(mut self, flow: u64) -> Self {
        self.flow = flow;
        self
    }

    /// The same job with priority `priority`.
    pub const fn priority(mut self, priority: i32) -> Self {
        self.priority = priority;
        self
    }

    /// The same job with a declared expected duration.
    pub const fn expected(mut self, expected: Duration) -> Self {
        self.expected = Some(expected);
        self
    }

    /// A flow key for a string id (such as an engine's instance id): its
    /// 64-bit FNV-1a hash, stable across runs and platforms.
    pub fn flow_key(id: &str) -> u64 {
        crate::fnv::fnv1a_64(id.as_bytes())
    }
}

/// Identifies one waiting job, in [`SchedulingPolicy::remove`]. Ordered by
/// arrival: an earlier arrival at the same resource has a smaller id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WaitId {
    /// Arrival number at the resource; it alone orders and identifies.
    seq: u64,
    /// Where the waiter's waker lives in the resource's table.
    slot: usize,
    /// The job's flow and priority, so that a policy finds where it keeps
    /// the job without a map of its own.
    flow: u64,
    priority: i32,
}

impl WaitId {
    fn new(seq: u64, slot: usize, job: &Job) -> Self {
        WaitId {
            seq,
            slot,
            flow: job.flow,
            priority: job.priority,
        }
    }
}

/// A job waiting for a slot, as a [`SchedulingPolicy`] holds it. Not
/// `Clone`: each waiting job is in the policy once.
#[derive(Debug)]
pub struct Waiting {
    id: WaitId,
    job: Job,
    arrived: Instant,
}

impl Waiting {
    /// Its id, for [`SchedulingPolicy::remove`].
    pub fn id(&self) -> WaitId {
        self.id
    }

    /// The job.
    pub fn job(&self) -> &Job {
        &self.job
    }

    /// When it asked for a slot.
    pub fn arrived(&self) -> Instant {
        self.arrived
    }
}

// ---------------------------------------------------------------------------
// Policies
// ---------------------------------------------------------------------------

/// Holds a resource's waiting jobs and picks the next one when a slot frees.
///
/// The scheduler calls it under the resource's lock, so every method should
/// be quick (no I/O, no blocking) and must not call the scheduler back.
/// Jobs are pushed in arrival order. A policy that hands back a job it no
/// longer holds (or never held) is tolerated: the scheduler checks every
/// job it pops against its own table and skips strangers.
///
/// ```
/// use std::collections::VecDeque;
/// use std::time::Duration;
/// use tokio::time::Instant;
/// use workflow_runtime::scheduler::{SchedulingPolicy, WaitId, Waiting};
///
/// /// Last come, first served.
/// #[derive(Default)]
/// struct Lifo(Vec<Waiting>);
///
/// impl SchedulingPolicy for Lifo {
///     fn name(&self) -> &'static str { "lifo" }
///     fn push(&mut self, waiting: Waiting) { self.0.push(waiting) }
///     fn pop(&mut self, _now: Instant) -> Option<Waiting> { self.0.pop() }
///     fn remove(&mut self, id: WaitId) -> Option<Waiting> {
///         let at = self.0.iter().position(|w| w.id() == id)?;
///         Some(self.0.remove(at))
///     }
///     fn len(&self) -> usize { self.0.len() }
/// }
///
/// let scheduler = workflow_runtime::scheduler::Scheduler::builder()
///     .resource_with("printer", 1, Lifo::default())
///     .build()
///     .unwrap();
/// ```
pub trait SchedulingPolicy: Send {
    /// A short name for metrics and tables.
    fn name(&self) -> &'static str {
        "custom"
    }

    /// A job starts waiting.
    fn push(&mut self, waiting: Waiting);

    /// A slot is free: the job to serve next, if any waits. It must return
    /// a job whenever [`len`](Self::len) is not zero; a `None` leaves the
    /// slot idle until the next arrival or release.
    fn pop(&mut self, now: Instant) -> Option<Waiting>;

    /// The waiting job `id` was cancelled: forget it and return it (`None`
    /// if it is not held).
    fn remove(&mut self, id: WaitId) -> Option<Waiting>;

    /// How many jobs wait.
    fn len(&self) -> usize;

    /// Whether no job waits.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A job of `activity` released its slot after holding it for
    /// `service`: feedback for policies that learn. Does nothing by default.
    fn completed(&mut self, activity: &'static str, service: Duration) {
        let _ = (activity, service);
    }
}

/// Turns a policy into the boxed form a resource keeps; implemented for
/// every [`SchedulingPolicy`] and for `Box<dyn SchedulingPolicy>`.
pub trait IntoPolicy {
    /// The boxed policy.
    fn into_policy(self) -> Box<dyn SchedulingPolicy>;
}

impl<P: SchedulingPolicy + 'static> IntoPolicy for P {
    fn into_policy(self) -> Box<dyn SchedulingPolicy> {
        Box::new(self)
    }
}

impl IntoPolicy for Box<dyn SchedulingPolicy> {
    fn into_policy(self) -> Box<dyn SchedulingPolicy> {
        self
    }
}

/// A first-in, first-out queue that removes jobs from the middle (cancelled
/// ones, or the ones a ranking picks) in O(log n): it leaves a tombstone,
/// found by binary search on the arrival number, and skips it when it
/// reaches the front.
#[derive(Debug)]
struct Queue<T> {
    items: VecDeque<(u64, Option<T>)>,
    len: usize,
}

impl<T> Default for Queue<T> {
    fn default() -> Self {
        Self {
            items: VecDeque::new(),
            len: 0,
        }
    }
}

impl<T> Queue<T> {
    /// Appends `item`, which arrived as number `seq` (increasing).
    fn push(&mut self, seq: u64, item: T) {
        self.items.push_back((seq, Some(item)));
        self.len += 1;
    }

    fn pop(&mut self) -> Option<T> {
        while let Some((_, item)) = self.items.pop_front() {
            if let Some(item) = item {
                self.len -= 1;
                return Some(item);
            }
        }
        None
    }

    /// The oldest item; the front is never a tombstone.
    fn front(&self) -> Option<&T> {
        self.items.front().and_then(|(_, item)| item.as_ref())
    }

    fn remove(&mut self, seq: u64) -> Option<T> {
        let at = self.items.binary_search_by_key(&seq, |(seq, _)| *seq).ok()?;
        let item = self.items.get_mut(at)?.1.take()?;
        self.len -= 1;
        // Keep the ends live, so that the front is a job and an idle queue
        // holds no tombstones.
        while matches!(self.items.back(), Some((_, None))) {
            self.items.pop_back();
        }
        while matches!(self.items.front(), Some((_, None))) {
            self.items.pop_front();
        }
        // And tombstones from the middle, if an old job stays put while
        // younger ones are picked past it.
        if self.items.len() > 2 * self.len + 64 {
            self.items.retain(|(_, item)| item.is_some());
        }
        Some(item)
    }
}

/// First come, first served: the default policy.
#[derive(Debug, Default)]
pub struct Fifo {
    queue: Queue<Waiting>,
}

impl Fifo {
    /// An empty queue.
    pub fn new() -> Self {
        Self::default()
    }
}

impl SchedulingPolicy for Fifo {
    fn name(&self) -> &'static str {
        "fifo"
    }

    fn push(&mut self, waiting: Waiting) {
        self.queue.push(waiting.id.seq, waiting);
    }

    fn pop(&mut self, _now: Instant) -> Option<Waiting> {
        self.queue.pop()
    }

    fn remove(&mut self, id: WaitId) -> Option<Waiting> {
        self.queue.remove(id.seq)
    }

    fn len(&self) -> usize {
        self.queue.len
    }
}

/// The default [`ShortestJobFirst::max_wait`] and [`Priority::max_wait`].
pub const DEFAULT_MAX_WAIT: Duration = Duration::from_secs(10);

/// Jobs ordered by a rank (smallest first, then by arrival) that also
/// finds the oldest, for the starvation cap.
///
/// The jobs live in a table indexed by their scheduler slot (unique among
/// waiting jobs), so taking the job the heap of ranks picks touches only
/// that job; a list in arrival order finds the oldest. Heap and list
/// entries of jobs already gone (served, or cancelled) are skipped when
/// they come up, and dropped in bulk once they outnumber the live ones.
#[derive(Debug)]
struct Ranked<K> {
    jobs: Vec<Option<Waiting>>,
    heap: BinaryHeap<Reverse<(K, u64, usize)>>,
    /// `(seq, slot, arrived)`, oldest first.
    arrivals: VecDeque<(u64, usize, Instant)>,
    len: usize,
}

impl<K: Ord + Copy> Default for Ranked<K> {
    fn default() -> Self {
        Self {
            jobs: Vec::new(),
            heap: BinaryHeap::new(),
            arrivals: VecDeque::new(),
            len: 0,
        }
    }
}

impl<K: Ord + Copy> Ranked<K> {
    fn push(&mut self, rank: K, waiting: Waiting) {
        let (seq, slot, arrived) = (waiting.id.seq, waiting.id.slot, waiting.arrived);
        if self.jobs.len() <= slot {
            self.jobs.resize_with(slot + 1, || None);
        }
        // A slot is only reused once its job left the queue; if the
        // scheduler ever said otherwise, the old job is replaced, not counted twice.
        if self.jobs[slot].replace(waiting).is_none() {
            self.len += 1;
        }
        self.heap.push(Reverse((rank, seq, slot)));
        self.arrivals.push_back((seq, slot, arrived));
    }

    /// Takes job `seq` from `slot`, if it is still there.
    fn take(&mut self, seq: u64, slot: usize) -> Option<Waiting> {
        if !holds(&self.jobs, seq, slot) {
            return None;
        }
        self.len -= 1;
        self.jobs[slot].take()
    }

    fn live(&self, seq: u64, slot: usize) -> bool {
        holds(&self.jobs, seq, slot)
    }

    /// When the oldest job arrived, and its arrival number.
    fn oldest(&mut self) -> Option<(Instant, u64)> {
        while let Some(&(seq, slot, arrived)) = self.arrivals.front() {
            if self.live(seq, slot) {
                return Some((arrived, seq));
            }
            self.arrivals.pop_front();
        }
        None
    }

    /// The smallest rank, and the arrival number of its job.
    fn first(&mut self) -> Option<(K, u64)> {
        while let Some(&Reverse((rank, seq, slot))) = self.heap.peek() {
            if self.live(seq, slot) {
                return Some((rank, seq));
            }
            self.heap.pop();
        }
        None
    }

    fn pop_oldest(&mut self) -> Option<Waiting> {
        self.oldest()?;
        let (seq, slot, _) = self.arrivals.pop_front()?;
        let picked = self.take(seq, slot);
        self.prune();
        picked
    }

    fn pop_first(&mut self) -> Option<Waiting> {
        self.first()?;
        let Reverse((_, seq, slot)) = self.heap.pop()?;
        let picked = self.take(seq, slot);
        self.prune();
        picked
    }

    fn remove(&mut self, id: WaitId) -> Option<Waiting> {
        let removed = self.take(id.seq, id.slot)?;
        self.prune();
        Some(removed)
    }

    /// Drops stale heap and list entries once they outnumber the live ones
    /// (amortised O(1) per job), and everything once the queue is empty.
    fn prune(&mut self) {
        if self.len == 0 {
            self.heap.clear();
            self.arrivals.clear();
            return;
        }
        let jobs = &self.jobs;
        if self.heap.len() > 2 * self.len + 64 {
            self.heap.retain(|&Reverse((_, seq, slot))| holds(jobs, seq, slot));
        }
        if self.arrivals.len() > 2 * self.len + 64 {
            self.arrivals.retain(|&(seq, slot, _)| holds(jobs, seq, slot));
        }
    }

    fn len(&self) -> usize {
        self.len
    }
}

/// Whether `jobs` still holds job `seq` at `slot` (a slot is reused once
/// its job is gone).
fn holds(jobs: &[Option<Waiting>], seq: u64, slot: usize) -> bool {
    matches!(jobs.get(slot), Some(Some(w)) if w.id.seq == seq)
}

/// Shortest job first: the waiting job with the smallest expected duration
/// goes next (ties by arrival), which minimises the mean time in system
/// when sizes vary.
///
/// A job's expected duration is, in this order: its declared
/// [`Job::expected`]; else the duration learned for its activity, an
/// exponential moving average of the service times observed on this
/// resource (weight [`smoothing`](Self::smoothing) for the newest, 0.25 by
/// default); else, for an activity not seen yet, the
/// [`unknown`](Self::unknown) estimate if one was set, or the moving average
/// over all activities of the resource (zero before the first completion, so
/// that a new activity runs soon and gets measured). A declared duration
/// ranks its job once, when it arrives; jobs without one wait in a queue per
/// activity, ranked by what is known of the activity when a slot frees, so
/// calls of one activity keep their arrival order.
///
/// # Starvation
///
/// Shortest-first alone can starve a long job for as long as shorter ones
/// keep arriving. Here a job that has waited [`max_wait`](Self::max_wait)
/// ([`DEFAULT_MAX_WAIT`], 10 s, unless set) or longer is served at the next
/// free slot, before any shorter job; several such jobs go oldest first. So
/// a job waits at most `max_wait` plus the time for a slot to free and for
/// the older overdue jobs to get theirs; under sustained overload, when
/// every job becomes overdue, the queue degrades gracefully into FIFO.
/// `max_wait(Duration::MAX)` lifts the cap, and the bound with it.
#[derive(Debug)]
pub struct ShortestJobFirst {
    /// Jobs with a declared duration.
    declared: Ranked<Duration>,
    /// Jobs without, a queue per activity (few: one per activity that runs
    /// on the resource).
    by_activity: Vec<Lane<&'static str>>,
    max_wait: Duration,
    smoothing: f64,
    unknown: Option<Duration>,
    learned: HashMap<&'static str, f64, BuildHasherDefault<Fnv>>,
    /// The moving average over all activities, in seconds.
    overall: Option<f64>,
}

impl Default for ShortestJobFirst {
    fn default() -> Self {
        Self::new()
    }
}

impl ShortestJobFirst {
    /// Shortest first, with the default maximum wait and learning weight.
    pub fn new() -> Self {
        Self {
            declared: Ranked::default(),
            by_activity: Vec::new(),
            max_wait: DEFAULT_MAX_WAIT,
            smoothing: 0.25,
            unknown: None,
            learned: HashMap::default(),
            overall: None,
        }
    }

    /// A job that has waited this long goes before shorter ones.
    pub fn max_wait(mut self, max_wait: Duration) -> Self {
        self.max_wait = max_wait;
        self
    }

    /// The weight of the newest observation in the learned averages, in
    /// `(0, 1]` (clamped); 1 remembers only the last service time.
    pub fn smoothing(mut self, weight: f64) -> Self {
        self.smoothing = if weight.is_nan() {
            0.25
        } else {
            weight.clamp(f64::MIN_POSITIVE, 1.0)
        };
        self
    }

    /// The expected duration of an activity not observed yet (instead of
    /// the average over all activities).
    pub fn unknown(mut self, expected: Duration) -> Self {
        self.unknown = Some(expected);
        self
    }

    /// The expected duration this policy would give `job` now.
    pub fn estimate(&self, job: &Job) -> Duration {
        job.expected.unwrap_or_else(|| self.estimate_of(job.activity))
    }

    /// What is known now of `activity`'s duration.
    fn estimate_of(&self, activity: &str) -> Duration {
        let learned = self.learned.get(activity).copied();
        match (learned, self.unknown) {
            (Some(seconds), _) => seconds_to_duration(seconds),
            (None, Some(unknown)) => unknown,
            (None, None) => self.overall.map_or(Duration::ZERO, seconds_to_duration),
        }
    }

    /// The duration learned for `activity`, if it completed on this
    /// resource before.
    pub fn learned(&self, activity: &str) -> Option<Duration> {
        self.learned.get(activity).copied().map(seconds_to_duration)
    }
}

fn seconds_to_duration(seconds: f64) -> Duration {
    Duration::try_from_secs_f64(seconds).unwrap_or(Duration::ZERO)
}

impl SchedulingPolicy for ShortestJobFirst {
    fn name(&self) -> &'static str {
        "sjf"
    }

    fn push(&mut self, waiting: Waiting) {
        match waiting.job.expected {
            Some(expected) => self.declared.push(expected, waiting),
            None => {
                Lane::push_into(&mut self.by_activity, waiting.job.activity, waiting);
            }
        }
    }

    fn pop(&mut self, now: Instant) -> Option<Waiting> {
        // Overdue: the oldest job, wherever it waits.
        let oldest_lane = self
            .by_activity
            .iter()
            .enumerate()
            .filter_map(|(i, lane)| Some((lane.oldest?, i)))
            .min();
        let ((arrived, _), at) = match (self.declared.oldest(), oldest_lane) {
            (Some(declared), Some((lane, i))) if lane < declared => (lane, Some(i)),
            (Some(declared), _) => (declared, None),
            (None, Some((lane, i))) => (lane, Some(i)),
            (None, None) => return None,
        };
        if now.saturating_duration_since(arrived) >= self.max_wait {
            return match at {
                Some(i) => self.by_activity[i].pop(),
                None => self.declared.pop_oldest(),
            };
        }
        // Else the smallest rank, ties by arrival.
        let declared = self.declared.first().map(|rank| (rank, None));
        let lanes = self.by_activity.iter().enumerate().filter_map(|(i, lane)| {
            let (_, seq) = lane.oldest?;
            Some(((self.estimate_of(lane.key), seq), Some(i)))
        });
        let first = declared.into_iter().chain(lanes).min()?;
        match first.1 {
            Some(i) => self.by_activity[i].pop(),
            None => self.declared.pop_first(),
        }
    }

    fn remove(&mut self, id: WaitId) -> Option<Waiting> {
        self.declared
            .remove(id)
            .or_else(|| self.by_activity.iter_mut().find_map(|lane| lane.remove(id.seq)))
    }

    fn len(&self) -> usize {
        self.declared.len() + self.by_activity.iter().map(|lane| lane.queue.len).sum::<usize>()
    }

    fn completed(&mut self, activity: &'static str, service: Duration) {
        let observed = service.as_secs_f64();
        let weight = self.smoothing;
        let blend = |old: Option<f64>| old.map_or(observed, |old| old + weight * (observed - old));
        let learned = self.learned.entry(activity).or_insert(observed);
        *learned = blend(Some(*learned));
        self.overall = Some(blend(self.overall));
    }
}

/// A first-in, first-out queue of the jobs sharing a key (a priority, an
/// activity), and when the oldest arrived: kept beside the queue, so that
/// comparing lanes reads no queue.
#[derive(Debug)]
struct Lane<K> {
    key: K,
    queue: Queue<Waiting>,
    oldest: Option<(Instant, u64)>,
}

impl<K: PartialEq + Copy> Lane<K> {
    /// Appends `waiting` to the lane of `key` in `lanes`, making the lane
    /// if needed; returns its index. Empty lanes are kept for reuse, unless
    /// they pile up. A new lane goes last (the caller may move it).
    fn push_into(lanes: &mut Vec<Lane<K>>, key: K, waiting: Waiting) -> usize {
        let at = match lanes.iter().position(|lane| lane.key == key) {
            Some(at) => at,
            None => {
                if lanes.len() >= 16 {
                    lanes.retain(|lane| lane.queue.len > 0);
                }
                lanes.push(Lane {
                    key,
                    queue: Queue::default(),
                    oldest: None,
                });
                lanes.len() - 1
            }
        };
        lanes[at].push(waiting);
        at
    }

    fn push(&mut self, waiting: Waiting) {
        self.oldest.get_or_insert((waiting.arrived, waiting.id.seq));
        self.queue.push(waiting.id.seq, waiting);
    }

    fn pop(&mut self) -> Option<Waiting> {
        let picked = self.queue.pop();
        self.oldest = self.queue.front().map(|w| (w.arrived, w.id.seq));
        picked
    }

    fn remove(&mut self, seq: u64) -> Option<Waiting> {
        let removed = self.queue.remove(seq);
        self.oldest = self.queue.front().map(|w| (w.arrived, w.id.seq));
        removed
    }
}

/// Highest priority first ([`Job::priority`]), first come first served
/// within a priority.
///
/// # Starvation
///
/// As with [`ShortestJobFirst`], a job that has waited
/// [`max_wait`](Self::max_wait) ([`DEFAULT_MAX_WAIT`], 10 s, unless set) or
/// longer is served at the next free slot, whatever its priority, oldest
/// first; so a low-priority job waits at most about `max_wait` plus the time
/// for a slot to free, however many higher-priority jobs keep coming.
#[derive(Debug)]
pub struct Priority {
    /// A first-in, first-out queue per priority, highest first: priorities
    /// are few, so finding one is a short scan.
    levels: Vec<Lane<i32>>,
    len: usize,
    max_wait: Duration,
}

impl Default for Priority {
    fn default() -> Self {
        Self::new()
    }
}

impl Priority {
    /// Highest first, with the default maximum wait.
    pub fn new() -> Self {
        Self {
            levels: Vec::new(),
            len: 0,
            max_wait: DEFAULT_MAX_WAIT,
        }
    }

    /// A job that has waited this long goes before higher-priority ones.
    pub fn max_wait(mut self, max_wait: Duration) -> Self {
        self.max_wait = max_wait;
        self
    }

    fn level(&mut self, priority: i32) -> Option<&mut Lane<i32>> {
        self.levels.iter_mut().find(|level| level.key == priority)
    }
}

impl SchedulingPolicy for Priority {
    fn name(&self) -> &'static str {
        "priority"
    }

    fn push(&mut self, waiting: Waiting) {
        let priority = waiting.job.priority;
        self.len += 1;
        let at = Lane::push_into(&mut self.levels, priority, waiting);
        // A new level moves to its place: highest first.
        if at + 1 == self.levels.len() {
            let place = self.levels[..at].partition_point(|level| level.key > priority);
            self.levels[place..].rotate_right(1);
        }
    }

    fn pop(&mut self, now: Instant) -> Option<Waiting> {
        let oldest = self
            .levels
            .iter_mut()
            .filter_map(|level| Some((level.oldest?, level)))
            .min_by_key(|(oldest, _)| *oldest);
        let picked = match oldest {
            Some(((arrived, _), level)) if now.saturating_duration_since(arrived) >= self.max_wait => level.pop(),
            _ => self.levels.iter_mut().find_map(Lane::pop),
        };
        self.len -= usize::from(picked.is_some());
        picked
    }

    fn remove(&mut self, id: WaitId) -> Option<Waiting> {
        let removed = self.level(id.priority)?.remove(id.seq)?;
        self.len -= 1;
        Some(removed)
    }

    fn len(&self) -> usize {
        self.len
    }
}

/// Fair sharing between flows ([`Job::flow`]): the flows with waiting jobs
/// take turns, one job per turn, in the order they started waiting; within
/// a flow, first come first served. A flow with a hundred queued jobs
/// delays another flow's single job by at most one job.
#[derive(Debug, Default)]
pub struct RoundRobin {
    /// The turns to come, in order: each waiting flow's next job (a flow
    /// is here at most once). A job cancelled here leaves its flow's turn,
    /// which its flow's next job takes if one arrives in time.
    ring: VecDeque<Turn>,
    /// How many turns have been taken since the start: `ring[i]` is turn
    /// `taken + i`.
    taken: u64,
    /// The turn each flow was last given. A flow is waiting if that turn is
    /// still in the ring; older entries are stale, pruned in bulk. Serving
    /// the turn of a flow with a single job (every instance its own flow)
    /// touches no map: the job is in the ring itself.
    turns: HashMap<u64, u64, BuildHasherDefault<Fnv>>,
    /// The jobs after the first of flows with more than one waiting.
    backlog: HashMap<u64, Queue<Waiting>, BuildHasherDefault<Fnv>>,
    len: usize,
}

#[derive(Debug)]
struct Turn {
    flow: u64,
    /// `None` once cancelled.
    job: Option<Waiting>,
    /// Whether the flow has jobs in `backlog`.
    more: bool,
}

impl RoundRobin {
    /// No flows yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The ring index of `flow`'s turn, if it has one to come.
    fn turn_of(&self, flow: u64) -> Option<usize> {
        let turn = *self.turns.get(&flow)?;
        let at = usize::try_from(turn.checked_sub(self.taken)?).ok()?;
        (self.ring.get(at)?.flow == flow).then_some(at)
    }

    /// Gives `flow` the last turn, for `job`.
    fn enqueue(&mut self, flow: u64, job: Waiting, more: bool) {
        self.turns.insert(flow, self.taken + self.ring.len() as u64);
        self.ring.push_back(Turn {
            flow,
            job: Some(job),
            more,
        });
    }

    /// The next job of a flow whose turn came, and whether it has more.
    fn next_of(&mut self, flow: u64) -> Option<(Waiting, bool)> {
        let queue = self.backlog.get_mut(&flow)?;
        let job = queue.pop();
        let more = queue.len > 0;
        if !more {
            self.backlog.remove(&flow);
        }
        Some((job?, more))
    }
}

impl SchedulingPolicy for RoundRobin {
    fn name(&self) -> &'static str {
        "fair"
    }

    fn push(&mut self, waiting: Waiting) {
        let flow = waiting.job.flow;
        self.len += 1;
        match self.turn_of(flow) {
            Some(at) => {
                self.ring[at].more = true;
                self.backlog.entry(flow).or_default().push(waiting.id.seq, waiting);
            }
            None => {
                // Stale entries are dropped once they outnumber the live
                // ones: amortised O(1) per job.
                if self.turns.len() > 2 * self.ring.len() + 64 {
                    let taken = self.taken;
                    self.turns.retain(|_, turn| *turn >= taken);
                }
                self.enqueue(flow, waiting, false);
            }
        }
    }

    fn pop(&mut self, _now: Instant) -> Option<Waiting> {
        while let Some(Turn { flow, job, mut more }) = self.ring.pop_front() {
            self.taken += 1;
            // A cancelled job's turn goes to its flow's next one.
            let job = match job {
                Some(job) => job,
                None if more => match self.next_of(flow) {
                    Some((next, rest)) => {
                        more = rest;
                        next
                    }
                    None => continue,
                },
                None => continue,
            };
            // The flow goes to the back of the ring with its next job.
            if more {
                if let Some((next, rest)) = self.next_of(flow) {
                    self.enqueue(flow, next, rest);
                }
            }
            self.len -= 1;
            return Some(job);
        }
        None
    }

    fn remove(&mut self, id: WaitId) -> Option<Waiting> {
        let flow = id.flow;
        let in_turn = self
            .turn_of(flow)
            .filter(|&at| self.ring[at].job.as_ref().is_some_and(|job| job.id.seq == id.seq));
        let removed = match in_turn {
            Some(at) => self.ring[at].job.take(),
            None => {
                let queue = self.backlog.get_mut(&flow)?;
                let removed = queue.remove(id.seq);
                if queue.len == 0 {
                    self.backlog.remove(&flow);
                }
                removed
            }
        }?;
        self.len -= 1;
        Some(removed)
    }

    fn len(&self) -> usize {
        self.len
    }
}

/// 64-bit FNV-1a: a fast hash for short keys (activity names, flow keys).
#[derive(Clone, Copy, Debug)]
struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = (self.0 ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
        }
    }

    fn write_u64(&mut self, n: u64) {
        // Whole words at a time: flow keys and arrival numbers.
        self.0 = (self.0 ^ n).wrapping_mul(0x0100_0000_01b3);
        self.0 ^= self.0 >> 29;
    }
}

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

/// What the scheduler refuses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SchedulerError {
    /// No resource has this name.
    UnknownResource(String),
    /// Two resources were declared with this name.
    DuplicateResource(String),
    /// This resource was declared with a limit of 0, which would block
    /// every job forever.
    ZeroLimit(String),
}

impl fmt::Display for SchedulerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownResource(name) => write!(f, "unknown resource `{name}`"),
            Self::DuplicateResource(name) => write!(f, "resource `{name}` is declared twice"),
            Self::ZeroLimit(name) => write!(f, "resource `{name}` has a limit of 0"),
        }
    }
}

impl std::error::Error for SchedulerError {}

// ---------------------------------------------------------------------------
// The scheduler
// ---------------------------------------------------------------------------

/// Declares a [`Scheduler`]'s resources; from [`Scheduler::builder`].
#[must_use]
pub struct SchedulerBuilder {
    resources: Vec<(String, usize, Box<dyn SchedulingPolicy>)>,
}

impl fmt::Debug for SchedulerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(
                self.resources
                    .iter()
                    .map(|(name, limit, policy)| (name, limit, policy.name())),
            )
            .finish()
    }
}

impl SchedulerBuilder {
    /// A resource serving `limit` jobs at a time, first come first served.
    pub fn resource(self, name: impl Into<String>, limit: usize) -> Self {
        self.resource_with(name, limit, Fifo::new())
    }

    /// A resource serving `limit` jobs at a time under `policy`.
    pub fn resource_with(mut self, name: impl Into<String>, limit: usize, policy: impl IntoPolicy) -> Self {
        self.resources.push((name.into(), limit, policy.into_policy()));
        self
    }

    /// The scheduler; its metrics window opens now. Fails on a name
    /// declared twice or a limit of 0.
    pub fn build(self) -> Result<Scheduler, SchedulerError> {
        let now = Instant::now();
        let mut pools: Vec<Arc<Pool>> = Vec::with_capacity(self.resources.len());
        let mut by_name = HashMap::with_capacity(self.resources.len());
        for (name, limit, policy) in self.resources {
            if limit == 0 {
                return Err(SchedulerError::ZeroLimit(name));
            }
            if by_name.contains_key(name.as_str()) {
                return Err(SchedulerError::DuplicateResource(name));
            }
            let pool = Arc::new(Pool {
                name: name.as_str().into(),
                limit,
                state: Mutex::new(PoolState {
                    stats: Stats::new(now),
                    policy_name: policy.name(),
                    policy,
                    entries: Vec::new(),
                    free: None,
                    next_seq: 0,
                }),
            });
            by_name.insert(name.into_boxed_str(), pools.len());
            pools.push(pool);
        }
        Ok(Scheduler {
            inner: Arc::new(Inner { pools, by_name }),
        })
    }
}

/// Queues activity calls for their resources' slots. Cloning it is cheap
/// (a reference count) and every clone shares the same resources.
///
/// See the [module documentation](self) for an example.
#[derive(Clone)]
pub struct Scheduler {
    inner: Arc<Inner>,
}

struct Inner {
    /// In declaration order.
    pools: Vec<Arc<Pool>>,
    by_name: HashMap<Box<str>, usize>,
}

impl fmt::Debug for Scheduler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.inner.pools.iter()).finish()
    }
}

impl Scheduler {
    /// Starts declaring resources.
    pub fn builder() -> SchedulerBuilder {
        SchedulerBuilder { resources: Vec::new() }
    }

    /// Waits until `resource`'s policy picks `job` for a free slot; fails at
    /// once with [`SchedulerError::UnknownResource`] if there is no such
    /// resource.
    ///
    /// The job arrives when the future is first polled. Dropping the future
    /// before it is ready cancels the job (see the
    /// [module documentation](self#cancellation)).
    pub fn acquire(&self, resource: &str, job: Job) -> Acquire {
        match self.pool(resource) {
            Some(pool) => Acquire::new(pool.clone(), job),
            None => Acquire {
                state: AcquireState::Failed(SchedulerError::UnknownResource(resource.to_owned())),
            },
        }
    }

    /// A handle on one resource, which acquires without looking the name
    /// up each time.
    pub fn resource(&self, name: &str) -> Result<Resource, SchedulerError> {
        match self.pool(name) {
            Some(pool) => Ok(Resource { pool: pool.clone() }),
            None => Err(SchedulerError::UnknownResource(name.to_owned())),
        }
    }

    /// Every resource, in declaration order.
    pub fn resources(&self) -> impl Iterator<Item = Resource> + '_ {
        self.inner.pools.iter().map(|pool| Resource { pool: pool.clone() })
    }

    /// Every resource's statistics over its window, up to now.
    pub fn metrics(&self) -> Metrics {
        let now = Instant::now();
        Metrics {
            resources: self.inner.pools.iter().map(|pool| pool.metrics(now)).collect(),
        }
    }

    /// Opens a new metrics window for every resource, now (for instance
    /// after a warm-up). Jobs in the system count as its first arrivals.
    pub fn reset_metrics(&self) {
        let now = Instant::now();
        for pool in &self.inner.pools {
            pool.lock().stats.reset(now);
        }
    }

    fn pool(&self, name: &str) -> Option<&Arc<Pool>> {
        let index = *self.inner.by_name.get(name)?;
        self.inner.pools.get(index)
    }
}

/// One resource of a [`Scheduler`]; cheap to clone.
#[derive(Clone)]
pub struct Resource {
    pool: Arc<Pool>,
}

impl fmt::Debug for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.pool.fmt(f)
    }
}

impl Resource {
    /// As [`Scheduler::acquire`], on this resource.
    pub fn acquire(&self, job: Job) -> Acquire {
        Acquire::new(self.pool.clone(), job)
    }

    /// Queues `job` without a task waiting for it: `granted` is called with
    /// the permit when the policy picks the job, on the thread that freed
    /// the slot (on this one, before `submit` returns, if a slot is free
    /// and nobody waits; then there is no ticket). Dropping the returned
    /// [`Submitted`] while the job waits cancels it.
    ///
    /// For a caller that would otherwise spawn a task just to await
    /// [`acquire`](Self::acquire): the task is spawned by `granted`, and no
    /// task sits parked in the queue. `granted` should be quick (spawn, send):
    /// it runs where a permit was dropped.
    ///
    /// ```
    /// use std::sync::mpsc;
    /// use workflow::{Job, Scheduler};
    ///
    /// let scheduler = Scheduler::builder().resource("payments", 1).build()?;
    /// let payments = scheduler.resource("payments")?;
    /// let (tx, rx) = mpsc::channel();
    /// let first = payments.submit(Job::new("charge"), { let tx = tx.clone(); move |permit| tx.send(permit).unwrap() });
    /// assert!(first.is_none()); // a free slot: granted at once
    /// let second = payments.submit(Job::new("charge"), move |permit| tx.send(permit).unwrap());
    /// assert!(second.is_some()); // waits for the slot
    /// let held = rx.recv()?;
    /// assert!(rx.try_recv().is_err());
    /// drop(held); // frees the slot: the second job is called with it
    /// assert_eq!(rx.recv()?.activity(), "charge");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn submit(&self, job: Job, granted: impl FnOnce(Permit) + Send + 'static) -> Option<Submitted> {
        let pool = &self.pool;
        let mut state = pool.lock();
        let now = Instant::now();
        let activity = job.activity;
        if state.start_at_once(pool.limit, now) {
            drop(state);
            granted(Permit {
                pool: pool.clone(),
                activity,
                arrived: now,
                started: now,
            });
            return None;
        }
        let id = state.queue(job, now, |seq| Entry::Submitted {
            seq,
            activity,
            arrived: now,
            granted: Box::new(granted),
        });
        // A slot may be free with jobs waiting, if the policy once declined
        // to pick: give it out now.
        let mut wakes = Wakes::default();
        state.dispatch(pool, now, &mut wakes);
        drop(state);
        wakes.wake();
        Some(Submitted {
            pool: pool.clone(),
            id,
            arrived: now,
            armed: true,
        })
    }

    /// The resource's name.
    pub fn name(&self) -> &str {
        &self.pool.name
    }

    /// How many jobs it serves at a time.
    pub fn limit(&self) -> usize {
        self.pool.limit
    }

    /// Jobs waiting now.
    pub fn queue_len(&self) -> usize {
        self.pool.lock().stats.waiting
    }

    /// Slots held now (granted to a job).
    pub fn in_service(&self) -> usize {
        self.pool.lock().stats.busy
    }

    /// Its statistics over its window, up to now.
    pub fn metrics(&self) -> ResourceMetrics {
        self.pool.metrics(Instant::now())
    }
}

struct Pool {
    name: Arc<str>,
    limit: usize,
    state: Mutex<PoolState>,
}

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.lock();
        f.debug_struct("Resource")
            .field("name", &self.name)
            .field("limit", &self.limit)
            .field("policy", &state.policy_name)
            .field("waiting", &state.stats.waiting)
            .field("in_service", &state.stats.busy)
            .finish()
    }
}

impl Pool {
    /// The state, even if a policy panicked while holding the lock: the
    /// counters stay consistent, and a scheduler that stops serving would
    /// be worse than one whose policy lost a job.
    #[inline]
    fn lock(&self) -> MutexGuard<'_, PoolState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn metrics(&self, now: Instant) -> ResourceMetrics {
        let state = self.lock();
        state.stats.snapshot(now, &self.name, state.policy_name, self.limit)
    }
}

struct PoolState {
    policy: Box<dyn SchedulingPolicy>,
    policy_name: &'static str,
    /// The gauges (waiting, busy) and the statistics.
    stats: Stats,
    /// The wakers of waiting jobs, and the grants not yet collected; a
    /// vector with a free list, indexed by [`WaitId::slot`].
    entries: Vec<Entry>,
    free: Option<usize>,
    next_seq: u64,
}

enum Entry {
    Free {
        next: Option<usize>,
    },
    Waiting {
        seq: u64,
        waker: Waker,
    },
    Granted {
        seq: u64,
        at: Instant,
    },
    /// A job submitted with [`Resource::submit`]: called when granted.
    Submitted {
        seq: u64,
        activity: &'static str,
        arrived: Instant,
        granted: Box<dyn FnOnce(Permit) + Send>,
    },
}

impl PoolState {
    fn insert(&mut self, entry: Entry) -> usize {
        match self.free {
            Some(slot) => {
                if let Some(old) = self.entries.get_mut(slot) {
                    if let Entry::Free { next } = *old {
                        self.free = next;
                        *old = entry;
                        return slot;
                    }
                }
                // A corrupted free list (cannot happen): start a new entry.
                self.free = None;
                self.entries.push(entry);
                self.entries.len() - 1
            }
            None => {
                self.entries.push(entry);
                self.entries.len() - 1
            }
        }
    }

    fn release_entry(&mut self, slot: usize) {
        if let Some(entry) = self.entries.get_mut(slot) {
            *entry = Entry::Free { next: self.free };
            self.free = Some(slot);
        }
    }

    /// The state of waiter `id`'s entry.
    fn entry(&self, id: WaitId) -> Option<&Entry> {
        match self.entries.get(id.slot)? {
            entry @ (Entry::Waiting { seq, .. } | Entry::Granted { seq, .. } | Entry::Submitted { seq, .. })
                if *seq == id.seq =>
            {
                Some(entry)
            }
            _ => None,
        }
    }

    /// Whether a job arriving now takes a free slot at once (nobody is
    /// ahead of it); if so, it is counted as started.
    fn start_at_once(&mut self, limit: usize, now: Instant) -> bool {
        let free = self.stats.waiting == 0 && self.stats.busy < limit;
        if free {
            self.stats.arrive_started(now);
        }
        free
    }

    /// Queues a job arriving now, with the entry `waiting` makes from its
    /// arrival number; gives its id.
    fn queue(&mut self, job: Job, now: Instant, waiting: impl FnOnce(u64) -> Entry) -> WaitId {
        self.stats.arrive_waiting(now);
        let seq = self.next_seq;
        self.next_seq += 1;
        let slot = self.insert(waiting(seq));
        let id = WaitId::new(seq, slot, &job);
        self.policy.push(Waiting { id, job, arrived: now });
        id
    }

    /// Takes waiting job `id` out of the queue and the statistics; gives
    /// back its entry, to drop once the lock is released.
    fn withdraw(&mut self, id: WaitId, arrived: Instant, now: Instant) -> Option<Entry> {
        self.policy.remove(id);
        self.stats.abandon_waiting(now, arrived);
        let entry = std::mem::replace(self.entries.get_mut(id.slot)?, Entry::Free { next: None });
        self.release_entry(id.slot);
        Some(entry)
    }

    /// Hands free slots to the jobs the policy picks, collecting their
    /// wakers to wake (and submitted jobs' calls to make) once the lock is
    /// released.
    fn dispatch(&mut self, pool: &Arc<Pool>, now: Instant, wakes: &mut Wakes) {
        while self.stats.busy < pool.limit && self.stats.waiting > 0 {
            let Some(next) = self.policy.pop(now) else {
                break;
            };
            let Some(entry) = self.entries.get_mut(next.id.slot) else {
                continue;
            };
            // A policy could hand back a job it was told to forget: skip it.
            match entry {
                Entry::Waiting { seq, .. } if *seq == next.id.seq => {
                    let granted = Entry::Granted {
                        seq: next.id.seq,
                        at: now,
                    };
                    if let Entry::Waiting { waker, .. } = std::mem::replace(entry, granted) {
                        wakes.push(Wake::Task(waker));
                    }
                }
                Entry::Submitted { seq, .. } if *seq == next.id.seq => {
                    let taken = std::mem::replace(entry, Entry::Free { next: None });
                    self.release_entry(next.id.slot);
                    if let Entry::Submitted {
                        activity,
                        arrived,
                        granted,
                        ..
                    } = taken
                    {
                        let permit = Permit {
                            pool: pool.clone(),
                            activity,
                            arrived,
                            started: now,
                        };
                        wakes.push(Wake::Call(granted, permit));
                    }
                }
                _ => continue,
            }
            self.stats.start(now);
        }
    }
}

/// A job granted a slot: a waiting task to wake, or a submitted job's call.
enum Wake {
    Task(Waker),
    Call(Box<dyn FnOnce(Permit) + Send>, Permit),
}

/// What to do once the lock is released; no allocation for one.
#[derive(Default)]
struct Wakes {
    first: Option<Wake>,
    rest: Vec<Wake>,
}

impl Wakes {
    fn push(&mut self, wake: Wake) {
        match self.first {
            None => self.first = Some(wake),
            Some(_) => self.rest.push(wake),
        }
    }

    fn wake(self) {
        let run = |wake| match wake {
            Wake::Task(waker) => Waker::wake(waker),
            Wake::Call(granted, permit) => granted(permit),
        };
        if let Some(wake) = self.first {
            run(wake);
        }
        self.rest.into_iter().for_each(run);
    }
}

// ---------------------------------------------------------------------------
// Acquiring and holding a slot
// ---------------------------------------------------------------------------

/// The future of [`Scheduler::acquire`] and [`Resource::acquire`]: a
/// [`Permit`] once the job gets a slot. Dropping it first cancels the job.
///
/// It is `Send`, `Unpin` and `'static` (it holds the resource, not a borrow
/// of the scheduler). Polled again after it completed, it stays pending.
#[must_use = "a job only joins the queue when its `Acquire` is polled"]
pub struct Acquire {
    state: AcquireState,
}

enum AcquireState {
    /// Not polled yet.
    New { pool: Arc<Pool>, job: Job },
    /// In the queue (or granted, not yet collected).
    Queued {
        pool: Arc<Pool>,
        id: WaitId,
        activity: &'static str,
        arrived: Instant,
    },
    /// The resource does not exist.
    Failed(SchedulerError),
    /// Ready was returned.
    Done,
}

impl fmt::Debug for Acquire {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            AcquireState::New { .. } => "new",
            AcquireState::Queued { .. } => "queued",
            AcquireState::Failed(_) => "failed",
            AcquireState::Done => "done",
        };
        f.debug_struct("Acquire").field("state", &state).finish()
    }
}

impl Acquire {
    fn new(pool: Arc<Pool>, job: Job) -> Self {
        Self {
            state: AcquireState::New { pool, job },
        }
    }
}

impl Future for Acquire {
    type Output = Result<Permit, SchedulerError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match std::mem::replace(&mut self.state, AcquireState::Done) {
            AcquireState::New { pool, job } => {
                let mut state = pool.lock();
                let now = Instant::now();
                let activity = job.activity;
                if state.start_at_once(pool.limit, now) {
                    // The fast path: a free slot and nobody ahead.
                    drop(state);
                    return Poll::Ready(Ok(Permit {
                        pool,
                        activity,
                        arrived: now,
                        started: now,
                    }));
                }
                let waker = cx.waker().clone();
                let id = state.queue(job, now, |seq| Entry::Waiting { seq, waker });
                // A slot may be free with jobs waiting, if the policy once
                // declined to pick: give it out now.
                let mut wakes = Wakes::default();
                state.dispatch(&pool, now, &mut wakes);
                let granted = match state.entry(id) {
                    Some(Entry::Granted { at, .. }) => Some(*at),
                    _ => None,
                };
                if granted.is_some() {
                    state.release_entry(id.slot);
                }
                drop(state);
                wakes.wake();
                match granted {
                    Some(started) => Poll::Ready(Ok(Permit {
                        pool,
                        activity,
                        arrived: now,
                        started,
                    })),
                    None => {
                        self.state = AcquireState::Queued {
                            pool,
                            id,
                            activity,
                            arrived: now,
                        };
                        Poll::Pending
                    }
                }
            }
            AcquireState::Queued {
                pool,
                id,
                activity,
                arrived,
            } => {
                let mut state = pool.lock();
                let started = match state.entries.get_mut(id.slot) {
                    Some(Entry::Granted { seq, at }) if *seq == id.seq => Some(*at),
                    Some(Entry::Waiting { seq, waker }) if *seq == id.seq => {
                        if !waker.will_wake(cx.waker()) {
                            waker.clone_from(cx.waker());
                        }
                        None
                    }
                    // Our entry is gone (cannot happen): give up the wait
                    // rather than hang; the job gets a slot of its own.
                    _ => {
                        drop(state);
                        self.state = AcquireState::New {
                            pool,
                            job: Job::new(activity),
                        };
                        return self.poll(cx);
                    }
                };
                match started {
                    Some(started) => {
                        state.release_entry(id.slot);
                        drop(state);
                        Poll::Ready(Ok(Permit {
                            pool,
                            activity,
                            arrived,
                            started,
                        }))
                    }
                    None => {
                        drop(state);
                        self.state = AcquireState::Queued {
                            pool,
                            id,
                            activity,
                            arrived,
                        };
                        Poll::Pending
                    }
                }
            }
            AcquireState::Failed(error) => Poll::Ready(Err(error)),
            AcquireState::Done => Poll::Pending,
        }
    }
}

impl Drop for Acquire {
    fn drop(&mut self) {
        let AcquireState::Queued { pool, id, arrived, .. } = &self.state else {
            return;
        };
        let mut state = pool.lock();
        let now = Instant::now();
        let mut wakes = Wakes::default();
        match state.entry(*id) {
            Some(Entry::Waiting { .. }) => {
                state.withdraw(*id, *arrived, now);
            }
            Some(Entry::Granted { .. }) => {
                // Granted but never collected: the slot goes on at once.
                state.release_entry(id.slot);
                state.stats.abandon_granted(now, *arrived);
                state.dispatch(pool, now, &mut wakes);
            }
            _ => {}
        }
        drop(state);
        wakes.wake();
    }
}

/// A job queued with [`Resource::submit`]. Dropping it while the job waits
/// cancels the job; once granted, dropping it does nothing.
#[must_use = "dropping it cancels the job if it still waits"]
pub struct Submitted {
    pool: Arc<Pool>,
    id: WaitId,
    arrived: Instant,
    /// Cleared by `detach`: dropping it then does nothing.
    armed: bool,
}

impl fmt::Debug for Submitted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Submitted")
            .field("resource", &self.pool.name)
            .field("waiting", &self.is_waiting())
            .finish()
    }
}

impl Submitted {
    /// Whether the job still waits for a slot.
    pub fn is_waiting(&self) -> bool {
        matches!(self.pool.lock().entry(self.id), Some(Entry::Submitted { .. }))
    }

    /// Drops the ticket of a job known to be granted without looking at
    /// the queue (which takes the resource's lock).
    pub(crate) fn detach(mut self) {
        self.armed = false;
    }
}

impl Drop for Submitted {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let mut state = self.pool.lock();
        if !matches!(state.entry(self.id), Some(Entry::Submitted { .. })) {
            return; // granted: its call has the permit
        }
        let entry = state.withdraw(self.id, self.arrived, Instant::now());
        drop(state);
        // Dropped outside the lock: the call may own anything.
        drop(entry);
    }
}

/// A slot of a resource, held until dropped: dropping it records the time
/// it was held (the service time), tells the policy, and hands the slot to
/// the job the policy picks next.
#[must_use = "dropping the permit frees the slot at once"]
pub struct Permit {
    pool: Arc<Pool>,
    activity: &'static str,
    arrived: Instant,
    started: Instant,
}

impl fmt::Debug for Permit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Permit")
            .field("resource", &self.pool.name)
            .field("activity", &self.activity)
            .field("queued", &self.queued())
            .finish()
    }
}

impl Permit {
    /// How long the job waited for its slot.
    pub fn queued(&self) -> Duration {
        self.started.saturating_duration_since(self.arrived)
    }

    /// How long it has held the slot so far.
    pub fn held(&self) -> Duration {
        Instant::now().saturating_duration_since(self.started)
    }

    /// The resource's name.
    pub fn resource(&self) -> &str {
        &self.pool.name
    }

    /// The activity the slot was acquired for.
    pub fn activity(&self) -> &'static str {
        self.activity
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut state = self.pool.lock();
        let now = Instant::now();
        state.stats.depart(now, self.arrived, self.started);
        let service = now.saturating_duration_since(self.started);
        state.policy.completed(self.activity, service);
        if state.stats.waiting == 0 {
            return; // nobody to hand the slot to; the common uncontended case
        }
        let mut wakes = Wakes::default();
        state.dispatch(&self.pool, now, &mut wakes);
        drop(state);
        wakes.wake();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn waiting(seq: u64, job: Job, arrived: Instant) -> Waiting {
        Waiting {
            id: WaitId::new(seq, seq as usize, &job),
            job,
            arrived,
        }
    }

    fn drain(policy: &mut dyn SchedulingPolicy, now: Instant) -> Vec<u64> {
        std::iter::from_fn(|| policy.pop(now)).map(|w| w.id.seq).collect()
    }

    #[test]
    fn fifo_skips_removed_jobs() {
        let now = Instant::now();
        let mut fifo = Fifo::new();
        (0..5).for_each(|seq| fifo.push(waiting(seq, Job::new("a"), now)));
        assert_eq!(
            fifo.remove(WaitId::new(2, 2, &Job::new("a"))).map(|w| w.id.seq),
            Some(2)
        );
        assert!(fifo.remove(WaitId::new(2, 2, &Job::new("a"))).is_none());
        assert_eq!(
            fifo.remove(WaitId::new(4, 4, &Job::new("a"))).map(|w| w.id.seq),
            Some(4)
        );
        assert_eq!(fifo.len(), 3);
        assert_eq!(drain(&mut fifo, now), [0, 1, 3]);
        assert!(fifo.is_empty() && fifo.queue.items.is_empty());
    }

    #[test]
    fn priority_then_arrival_and_the_age_cap() {
        let t0 = Instant::now();
        let mut policy = Priority::new().max_wait(Duration::from_secs(1));
        for (seq, priority) in [(0, 1), (1, 3), (2, 2), (3, 3), (4, 1)] {
            let at = t0 + Duration::from_millis(seq * 10);
            policy.push(waiting(seq, Job::new("a").priority(priority), at));
        }
        assert_eq!(drain(&mut policy, t0 + Duration::from_millis(100)), [1, 3, 2, 0, 4]);
        for (seq, priority) in [(5, 0), (6, 9), (7, 9)] {
            policy.push(waiting(seq, Job::new("a").priority(priority), t0));
        }
        // After a second, the low-priority job is overdue: it goes first.
        assert_eq!(drain(&mut policy, t0 + Duration::from_secs(1)), [5, 6, 7]);
    }

    #[test]
    fn priority_levels_are_reused_and_do_not_pile_up() {
        let t0 = Instant::now();
        let mut policy = Priority::new();
        for round in 0..10u64 {
            for priority in 0..40 {
                let seq = round * 100 + priority as u64;
                policy.push(waiting(seq, Job::new("a").priority(priority), t0));
            }
            let served = drain(&mut policy, t0);
            assert_eq!(served.len(), 40);
            assert_eq!(served[0], round * 100 + 39, "highest first");
            assert!(policy.levels.len() <= 16 + 40, "{}", policy.levels.len());
        }
        assert!(policy.is_empty());
    }

    #[test]
    fn ranked_queues_stay_compact_while_a_job_stays_put() {
        let t0 = Instant::now();
        let mut sjf = ShortestJobFirst::new().max_wait(Duration::MAX);
        sjf.push(waiting(0, Job::new("long").expected(Duration::from_secs(60)), t0));
        for seq in 1..10_000 {
            sjf.push(waiting(seq, Job::new("short").expected(Duration::from_millis(1)), t0));
            if seq % 3 == 0 {
                assert!(sjf.remove(WaitId::new(seq, seq as usize, &Job::new("a"))).is_some());
            // cancelled
            } else {
                assert_eq!(sjf.pop(t0).map(|w| w.id.seq), Some(seq));
            }
            assert_eq!(sjf.len(), 1);
        }
        assert!(
            sjf.declared.arrivals.len() <= 2 + 64 + 1,
            "{}",
            sjf.declared.arrivals.len()
        );
        assert!(sjf.declared.heap.len() <= 2 + 64 + 1, "{}", sjf.declared.heap.len());
        // Overdue jobs leave stale heap entries behind; they are skipped.
        let mut capped = ShortestJobFirst::new().max_wait(Duration::from_secs(1));
        for seq in 0..5 {
            capped.push(waiting(
                seq,
                Job::new("a").expected(Duration::from_millis(10 - seq)),
                t0,
            ));
        }
        let late = t0 + Duration::from_secs(1);
        assert_eq!(capped.pop(late).map(|w| w.id.seq), Some(0)); // overdue, oldest first
        assert_eq!(capped.pop(late).map(|w| w.id.seq), Some(1));
        capped.push(waiting(5, Job::new("a").expected(Duration::ZERO), late));
        // Before the cap only ranks count: 5 (0 ms), then 4, 3, 2; the
        // heap's entries for 0 and 1 are stale and skipped.
        assert_eq!(drain(&mut capped, t0), [5, 4, 3, 2]);
        assert_eq!(capped.len(), 0);
    }

    #[test]
    fn sjf_learns_per_activity_and_defaults_to_the_overall_average() {
        let mut sjf = ShortestJobFirst::new().smoothing(0.5);
        let ms = Duration::from_millis;
        assert_eq!(sjf.estimate(&Job::new("new")), Duration::ZERO);
        sjf.completed("slow", ms(400));
        sjf.completed("slow", ms(200));
        sjf.completed("fast", ms(10));
        assert_eq!(sjf.learned("slow"), Some(ms(300)));
        assert_eq!(sjf.estimate(&Job::new("fast")), ms(10));
        assert_eq!(sjf.estimate(&Job::new("slow").expected(ms(1))), ms(1));
        // Overall: 400, then 300, then 155.
        assert_eq!(sjf.estimate(&Job::new("new")).as_millis(), 155);
        let sjf = sjf.unknown(ms(50));
        assert_eq!(sjf.estimate(&Job::new("new")), ms(50));
    }

    #[test]
    fn sjf_keeps_an_activity_in_order_and_ranks_it_by_what_is_known_now() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut sjf = ShortestJobFirst::new().smoothing(1.0).max_wait(Duration::from_secs(1));
        sjf.completed("slow", ms(50));
        sjf.push(waiting(0, Job::new("slow"), t0)); // 50 ms when it arrived
        sjf.push(waiting(1, Job::new("mid").expected(ms(20)), t0));
        sjf.completed("slow", ms(10)); // now 10 ms
        sjf.push(waiting(2, Job::new("slow"), t0));
        sjf.push(waiting(3, Job::new("fast").expected(ms(5)), t0));
        assert!(sjf.remove(WaitId::new(2, 2, &Job::new("slow"))).is_some());
        assert!(sjf.remove(WaitId::new(2, 2, &Job::new("slow"))).is_none());
        sjf.push(waiting(4, Job::new("slow"), t0));
        assert_eq!(sjf.len(), 4);
        // 5 ms, then both `slow` calls at 10 ms in arrival order, then 20 ms.
        assert_eq!(drain(&mut sjf, t0), [3, 0, 4, 1]);
        // Overdue jobs go oldest first, declared or not.
        sjf.push(waiting(5, Job::new("mid").expected(ms(20)), t0));
        sjf.push(waiting(6, Job::new("slow"), t0 + ms(10)));
        sjf.push(waiting(7, Job::new("fast").expected(ms(1)), t0 + ms(900)));
        assert_eq!(drain(&mut sjf, t0 + ms(1_010)), [5, 6, 7]);
        assert!(sjf.is_empty());
    }

    #[test]
    fn round_robin_takes_turns_and_survives_removals() {
        let now = Instant::now();
        let mut fair = RoundRobin::new();
        for seq in 0..4 {
            fair.push(waiting(seq, Job::new("a").flow(1), now));
        }
        fair.push(waiting(4, Job::new("a").flow(2), now));
        fair.push(waiting(5, Job::new("a").flow(3), now));
        assert!(fair.remove(WaitId::new(5, 5, &Job::new("a").flow(3))).is_some());
        fair.push(waiting(6, Job::new("a").flow(3), now));
        assert_eq!(fair.len(), 6);
        assert_eq!(drain(&mut fair, now), [0, 4, 6, 1, 2, 3]);
        assert!(fair.backlog.is_empty() && fair.ring.is_empty() && fair.len == 0);
    }

    #[test]
    fn round_robin_passes_a_cancelled_turn_on_and_forgets_old_flows() {
        let now = Instant::now();
        let mut fair = RoundRobin::new();
        let job = |flow| Job::new("a").flow(flow);
        for seq in 0..3 {
            fair.push(waiting(seq, job(1), now));
        }
        fair.push(waiting(3, job(2), now));
        assert!(fair.remove(WaitId::new(0, 0, &job(1))).is_some()); // flow 1's turn: job 1 takes it
        assert!(fair.remove(WaitId::new(2, 2, &job(1))).is_some()); // from its backlog
        assert!(fair.remove(WaitId::new(2, 2, &job(1))).is_none());
        assert_eq!(drain(&mut fair, now), [1, 3]);
        // Every job its own flow: the turns of served flows are forgotten.
        for seq in 10..1_010 {
            fair.push(waiting(seq, job(seq), now));
            assert_eq!(fair.pop(now).map(|w| w.id.seq), Some(seq));
        }
        assert!(fair.turns.len() <= 65, "{} turns kept", fair.turns.len());
    }

    #[test]
    fn builder_rejects_duplicates_and_zero_limits() {
        let twice = Scheduler::builder().resource("a", 1).resource("a", 2).build();
        assert_eq!(twice.unwrap_err(), SchedulerError::DuplicateResource("a".into()));
        let zero = Scheduler::builder().resource("z", 0).build().unwrap_err();
        assert_eq!(zero.to_string(), "resource `z` has a limit of 0");
    }

    #[test]
    fn flow_keys_are_fnv1a() {
        assert_eq!(Job::flow_key(""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(Job::flow_key("a"), 0xaf63_dc4c_8601_ec8c);
    }
}
