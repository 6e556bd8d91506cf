//! The engine: many instances of one workflow on tokio, with their
//! activities, timers and compensations.
//!
//! Each instance is a tokio task that owns its machine and handles what
//! reaches it strictly in order: events from a bounded mailbox (the
//! backpressure of [`Engine::send`] and [`Engine::try_send`]), and the
//! outcomes of its own activities and timers, which go first. Activities and timers are tasks
//! of their own, aborted when their state is left. A panic in a guard or an
//! action fails that instance only; a panic in an activity is a failed
//! attempt.

use std::borrow::Cow;
use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::hash::{Hash, Hasher};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::sync::{oneshot, watch, Notify};
use tokio::task::AbortHandle;
use tokio::time::Instant;
use tracing::Instrument;

use crate::activity::{self, ActivityCall, ActivityError, Attempt, ErrorKind, RetryPolicy, Schedule};
use crate::chart::{Scheduled, StateEnum};
use crate::clock::{self, Clock, SystemClock};
use crate::graph::{EventKind, Graph, StateKind};
use crate::journal::{self, ActivityImage, Status as StatusImage, StepImage, TimerImage};
use crate::machine::{Machine, Reason, Saved, Workflow};
use crate::mailbox::{Mailbox, Next, Refused};
use crate::metrics::WorkflowMetrics;
use crate::scheduler::{Job, Permit, Resource, Scheduler, SchedulerError, Submitted};
use crate::store::{Row, Store, StoreError};

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
    /// The instance's mailbox is full (from [`Engine::try_send`]).
    MailboxFull(String),
    /// The instance has stopped: it finished, failed or was cancelled.
    Stopped(String),
    /// The instance failed: a guard or an action panicked, or an event led
    /// into an eventless loop ([`Reason::EventlessLoop`]).
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
            EngineError::Stopped(id) => write!(f, "instance `{id}` has stopped"),
            EngineError::InstanceFailed { id, reason } => write!(f, "instance `{id}` failed: {reason}"),
            EngineError::Cancelled(id) => write!(f, "instance `{id}` was cancelled"),
            EngineError::ShutDown => f.write_str("the engine is shut down"),
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

/// Where an instance stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Status<S> {
    /// Running, in this state.
    Running(S),
    /// Reached this final state (after its compensations, for a failure final).
    Finished(S),
    /// A guard or an action panicked in this state, or the store could not
    /// commit its step; the instance stopped.
    Failed {
        /// The state it was in.
        state: S,
        /// The panic's message, or the store's error.
        reason: String,
    },
    /// Cancelled in this state.
    Cancelled(S),
}

impl<S> Status<S> {
    /// The state, whatever the status.
    pub fn state(&self) -> &S {
        match self {
            Status::Running(s) | Status::Finished(s) | Status::Cancelled(s) => s,
            Status::Failed { state, .. } => state,
        }
    }

    /// Whether the instance is still running.
    pub fn is_running(&self) -> bool {
        matches!(self, Status::Running(_))
    }
}

/// One entry of an instance's history.
#[derive(Clone, Debug, PartialEq)]
pub struct Record {
    /// When, since the engine was built (on tokio's clock).
    pub at: Duration,
    /// What.
    pub kind: RecordKind,
}

/// What a history [`Record`] says.
#[derive(Clone, Debug, PartialEq)]
pub enum RecordKind {
    /// The instance started in this state.
    Started(String),
    /// A transition (for a statechart, a macrostep).
    Transition {
        /// The state before.
        from: String,
        /// The event.
        event: &'static str,
        /// The state after.
        to: String,
    },
    /// An event the state did not accept.
    Rejected {
        /// The state.
        state: String,
        /// The event.
        event: &'static str,
    },
    /// An activity's (or a compensation's) attempt started.
    AttemptStarted {
        /// The activity (or compensation).
        activity: &'static str,
        /// The attempt's number, from 1.
        attempt: u32,
    },
    /// An activity's (or a compensation's) attempt ended.
    AttemptEnded {
        /// The activity (or compensation).
        activity: &'static str,
        /// The attempt's number, from 1.
        attempt: u32,
        /// How long it ran.
        duration: Duration,
        /// Its error, if it failed.
        error: Option<RecordedError>,
    },
    /// A running activity was cancelled because its state was left.
    ActivityCancelled(&'static str),
    /// A timer was set.
    TimerSet {
        /// The event it will deliver.
        event: &'static str,
        /// After how long.
        delay: Duration,
    },
    /// A timer fired.
    TimerFired(&'static str),
    /// A compensation ran (with its retries).
    Compensated {
        /// The compensation.
        compensation: &'static str,
        /// Its error, if it still failed after its retries.
        error: Option<RecordedError>,
    },
    /// A guard or an action panicked; the instance stopped.
    Panicked(String),
    /// The store could not commit a step; the instance stopped.
    StoreFailed(String),
    /// The instance was cancelled.
    Cancelled,
    /// A durable engine resumed the instance from its journal row `seq`.
    Recovered {
        /// The row's number.
        seq: u64,
    },
}

/// An activity's or a compensation's error in the history: its kind
/// (failed, non-retryable, timed out, panicked) and its message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordedError {
    /// Why it failed.
    pub kind: ErrorKind,
    /// What it said.
    pub message: String,
}

impl RecordedError {
    /// `kind` with `message`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }
}

impl From<&ActivityError> for RecordedError {
    fn from(error: &ActivityError) -> Self {
        Self::new(error.kind(), error.message())
    }
}

impl fmt::Display for RecordedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// An instance's state, context and history, as [`Engine::snapshot`] gives them.
#[derive(Clone)]
pub struct Snapshot<W: Machine> {
    /// Where it stands.
    pub status: Status<W::State>,
    /// Its context now.
    pub context: W::Context,
    /// What happened to it, oldest first: the newest
    /// [`Config::history`] records.
    pub history: Vec<Record>,
}

impl<W: Machine> fmt::Debug for Snapshot<W>
where
    W::Context: fmt::Debug,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Snapshot")
            .field("status", &self.status)
            .field("context", &self.context)
            .field("history", &self.history)
            .finish()
    }
}

/// Settings of an [`Engine`]. Every field has a default ([`Config::default`]); change the ones
/// you need with struct update syntax:
///
/// ```
/// use std::time::Duration;
/// use workflow::Config;
///
/// // Backoff delays exactly as the workflow declares them, and a 30 s cap on every activity.
/// let config = Config { jitter: 0.0, activity_deadline: Some(Duration::from_secs(30)), ..Config::default() };
/// assert_eq!(config.mailbox, 64);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Config {
    /// Events an instance's mailbox holds before `send` waits and `try_send` fails.
    ///
    /// Default: `64`.
    pub mailbox: usize,
    /// Jitter of activity backoff delays, in `0..=1` (see [`Schedule::jitter`]): each delay is
    /// drawn from `delay * (1 - jitter) ..= delay * (1 + jitter)`, so that many instances failing
    /// together do not retry in lockstep.
    ///
    /// Default: `0.1`, so delays differ from the declared `backoff` by up to 10%; set `0.0` for
    /// exactly the declared delays.
    pub jitter: f64,
    /// Overall limit on each activity invocation, retries included
    /// (schedule-to-close); `None` for none.
    ///
    /// Default: `None` (each attempt is still bounded by the workflow's `timeout`, if declared).
    pub activity_deadline: Option<Duration>,
    /// How compensations are retried.
    ///
    /// Default: at most 3 attempts in all, backoff from 100 ms doubling up to 10 s, no
    /// per-attempt timeout. A compensation that still fails is recorded and the next one runs.
    pub compensation: RetryPolicy,
    /// How many history records an instance keeps in memory (the oldest go
    /// first): a long-lived instance's memory stays bounded. A durable
    /// engine's journal keeps every step.
    ///
    /// Default: `256`.
    pub history: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            mailbox: 64,
            jitter: 0.1,
            activity_deadline: None,
            compensation: RetryPolicy {
                max_attempts: 3,
                initial_interval: Duration::from_millis(100),
                max_interval: Duration::from_secs(10),
                timeout: None,
            },
            history: 256,
        }
    }
}

/// Hosts instances of workflow `W` driven by handlers `H`.
///
/// ```
/// use workflow::prelude::*;
/// use workflow::Engine;
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
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), workflow::EngineError> {
/// let engine = Engine::<Ticket, Desk>::new(Desk);
/// engine.start("T-1", ()).await?;
/// engine.send("T-1", TicketEvent::Close).await?;
/// assert_eq!(engine.wait("T-1").await?, TicketState::Closed);
/// # Ok(()) }
/// ```
pub struct Engine<W: Machine, H> {
    inner: Arc<Inner<W, H>>,
}

impl<W: Machine, H> Clone for Engine<W, H> {
    fn clone(&self) -> Self {
        Engine {
            inner: self.inner.clone(),
        }
    }
}

struct Inner<W: Machine, H> {
    shared: Arc<Shared<W, H>>,
    shards: Vec<Mutex<HashMap<Arc<str>, Entry<W>>>>,
    /// Instances recovery could not resume, with why.
    broken: Mutex<HashMap<String, StoreError>>,
    open: AtomicBool,
}

/// What instance tasks need of their engine. Kept apart from the map of
/// instances, which holds their mailboxes: a task holding the whole engine
/// would keep it alive after the last `Engine` is dropped, and with it every
/// instance.
struct Shared<W: Machine, H> {
    handlers: Arc<H>,
    config: Config,
    epoch: Instant,
    /// Milliseconds since the Unix epoch at `epoch`, from the builder's [`Clock`]: timers'
    /// deadlines are journaled as wall-clock times.
    wall_epoch: u64,
    watched: Watched,
    durable: Option<Durable<W>>,
    /// Set by `shutdown`: what instances wait on besides their mailbox
    /// (compensations) is abandoned.
    closing: watch::Sender<bool>,
    scheduler: Option<Scheduler>,
    /// The resource each state's activity queues on, by state index.
    resources: Vec<Option<Resource>>,
    counters: Counters,
    live: Live,
}

/// The number of instance tasks alive, for `shutdown` to wait on without
/// keeping a join handle (and with it the ended task's memory) per instance.
#[derive(Default)]
struct Live {
    count: AtomicUsize,
    none: Notify,
}

impl Live {
    fn enter(&self) {
        self.count.fetch_add(1, Ordering::AcqRel);
    }

    fn leave(&self) {
        if self.count.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.none.notify_waiters();
        }
    }

    async fn until_none(&self) {
        loop {
            let none = self.none.notified();
            tokio::pin!(none);
            none.as_mut().enable();
            if self.count.load(Ordering::Acquire) == 0 {
                return;
            }
            none.await;
        }
    }
}

impl<W: Machine, H> Inner<W, H> {
    /// Closes every mailbox: each instance ends once it has handled what
    /// its mailbox holds.
    fn close_all(&self) {
        for shard in &self.shards {
            let shard = shard.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            shard.values().for_each(|mailbox| mailbox.close());
        }
    }
}

impl<W: Machine, H> Drop for Inner<W, H> {
    /// Dropping the last `Engine` ends its instances.
    fn drop(&mut self) {
        self.close_all();
    }
}

/// What [`Engine::metrics`] counts, since the engine was built.
#[derive(Default)]
struct Counters {
    transitions: AtomicU64,
    completions: AtomicU64,
    failures: AtomicU64,
    cancellations: AtomicU64,
    retries: AtomicU64,
    compensations: AtomicU64,
}

impl Counters {
    fn add(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// A durable engine's store, and the journal codec for `W`'s types (chosen
/// where the serde bounds are known, so the engine needs none).
struct Durable<W: Machine> {
    store: Arc<dyn Store>,
    fingerprint: String,
    encode: journal::Encode<W::Context, W::Event>,
    open: journal::Open<W::Context, W::Event>,
}

impl<W: Machine, H> Shared<W, H> {
    /// A tokio deadline as milliseconds since the Unix epoch.
    fn wall(&self, deadline: Instant) -> u64 {
        let since = deadline.saturating_duration_since(self.epoch).as_millis();
        self.wall_epoch.saturating_add(u64::try_from(since).unwrap_or(u64::MAX))
    }

    /// A journaled deadline on tokio's clock (the epoch itself if it is
    /// older: the timer fires at once).
    fn instant(&self, wall: u64) -> Instant {
        self.epoch + Duration::from_millis(wall.saturating_sub(self.wall_epoch))
    }
}

/// Builds an [`Engine`]: its [`Config`] and, for durable instances, its
/// [`Store`].
///
/// ```
/// use std::sync::Arc;
/// use workflow::prelude::*;
/// use workflow::{Engine, MemoryStore, Store};
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
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), workflow::EngineError> {
/// let store = Arc::new(MemoryStore::new());
/// let engine = Engine::<Ticket, Desk>::builder(Desk).store(store.clone()).build();
/// engine.start("T-1", ()).await?; // committed before `start` returns
/// engine.send("T-1", TicketEvent::Close).await?;
/// assert_eq!(store.journal("Ticket", "T-1").await?.len(), 2);
///
/// // Another engine over the same store resumes what was unfinished.
/// engine.start("T-2", ()).await?;
/// let again = Engine::<Ticket, Desk>::builder(Desk).store(store).build();
/// assert_eq!(again.recover().await?.resumed, 1);
/// assert_eq!(again.state("T-2").await?, TicketState::Open);
/// # Ok(()) }
/// ```
pub struct EngineBuilder<W: Machine, H> {
    handlers: H,
    config: Config,
    durable: Option<Durable<W>>,
    scheduler: Option<Scheduler>,
    clock: Arc<dyn Clock>,
}

impl<W: Machine, H> EngineBuilder<W, H> {
    /// Uses `config` instead of the default.
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// Reads the wall clock from `clock` instead of the operating system's ([`SystemClock`]).
    ///
    /// The engine reads it once, in [`build`](Self::build), to place journaled timer deadlines
    /// (wall-clock times) on tokio's clock. A test injects a clock running ahead to simulate a
    /// process that was down for a while, and drives tokio's paused clock from there:
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::time::{Duration, SystemTime};
    /// use workflow::prelude::*;
    /// use workflow::{Engine, MemoryStore, Status};
    ///
    /// workflow! {
    ///     workflow Approval {
    ///         initial Waiting;
    ///         state Waiting { after 48h => Expired; }
    ///         final Expired;
    ///     }
    /// }
    /// struct Desk;
    /// impl ApprovalHandlers for Desk {}
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let store = Arc::new(MemoryStore::new());
    /// let first = Engine::<Approval, Desk>::builder(Desk).store(store.clone()).build();
    /// first.start("a-1", ()).await?; // the timer's deadline is journaled: now + 48 h
    /// first.shutdown().await;
    ///
    /// // Restarted 47 hours later: one hour is left.
    /// let later = SystemTime::now() + Duration::from_secs(47 * 3600);
    /// let second = Engine::<Approval, Desk>::builder(Desk).store(store).clock(move || later).build();
    /// second.recover().await?;
    /// tokio::time::sleep(Duration::from_secs(59 * 60)).await;
    /// assert_eq!(second.status("a-1").await?, Status::Running(ApprovalState::Waiting));
    /// tokio::time::sleep(Duration::from_secs(2 * 60)).await;
    /// assert_eq!(second.status("a-1").await?, Status::Finished(ApprovalState::Expired));
    /// # Ok(()) }
    /// ```
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Queues every activity attempt of a state that names a `resource` on
    /// that resource of `scheduler`, under its policy; the attempt runs
    /// once it holds a slot (its `timeout` counts from then). Without a
    /// scheduler, `resource` clauses are ignored: activities run at once.
    /// Fails with [`SchedulerError::UnknownResource`] if the workflow names
    /// a resource the scheduler does not have. A scheduler may be shared by
    /// several engines (it is a handle).
    ///
    /// ```
    /// use workflow::prelude::*;
    /// use workflow::scheduler::{Scheduler, ShortestJobFirst};
    /// use workflow::Engine;
    ///
    /// workflow! {
    ///     workflow Charge {
    ///         initial Paying;
    ///         state Paying {
    ///             invoke pay -> () { resource payments; expected 200ms; done => Paid; error => Failed; }
    ///         }
    ///         final Paid;
    ///         final Failed (failure);
    ///     }
    /// }
    /// struct Bank;
    /// impl ChargeHandlers for Bank {
    ///     async fn pay(&self, _: &(), _: &ActivityCall) -> Result<(), ActivityError> { Ok(()) }
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let scheduler = Scheduler::builder().resource_with("payments", 4, ShortestJobFirst::new()).build()?;
    /// let engine = Engine::<Charge, Bank>::builder(Bank).scheduler(scheduler.clone())?.build();
    /// engine.start("c-1", ()).await?;
    /// assert_eq!(engine.wait("c-1").await?, ChargeState::Paid);
    /// assert_eq!(scheduler.metrics().get("payments").map(|m| m.completed), Some(1));
    ///
    /// let none = Scheduler::builder().resource("stock", 1).build()?;
    /// assert!(Engine::<Charge, Bank>::builder(Bank).scheduler(none).is_err()); // no `payments`
    /// # Ok(()) }
    /// ```
    pub fn scheduler(mut self, scheduler: Scheduler) -> Result<Self, SchedulerError> {
        for info in W::graph().states {
            if let Some(resource) = info.invoke.and_then(|i| i.resource) {
                scheduler.resource(resource)?;
            }
        }
        self.scheduler = Some(scheduler);
        Ok(self)
    }
}

impl<W, H> EngineBuilder<W, H>
where
    W: Machine,
    W::Context: Serialize + DeserializeOwned,
    W::Event: Serialize + DeserializeOwned,
{
    /// Makes every instance durable: each step is committed to `store`
    /// before the engine acts on it, and [`Engine::recover`] resumes
    /// unfinished instances after a restart. Contexts, events and activity
    /// outputs are journaled as JSON (the `serde` feature's derives).
    pub fn store(mut self, store: Arc<dyn Store>) -> Self {
        self.durable = Some(Durable {
            store,
            fingerprint: journal::definition::<W>(),
            encode: journal::encode::<W::Context, W::Event>,
            open: journal::open::<W::Context, W::Event>,
        });
        self
    }
}

impl<W, H> EngineBuilder<W, H>
where
    W: Workflow<H> + Send + 'static,
    W::Context: Clone + Send + Sync + 'static,
    W::Event: Send + 'static,
    H: Send + Sync + 'static,
{
    /// The engine.
    pub fn build(self) -> Engine<W, H> {
        let resources = W::graph()
            .states
            .iter()
            .map(|info| {
                let name = info.invoke.and_then(|i| i.resource)?;
                self.scheduler.as_ref()?.resource(name).ok()
            })
            .collect();
        Engine {
            inner: Arc::new(Inner {
                shared: Arc::new(Shared {
                    handlers: Arc::new(self.handlers),
                    config: self.config,
                    epoch: Instant::now(),
                    wall_epoch: clock::unix_millis(self.clock.as_ref()),
                    watched: Watched::new(W::graph()),
                    durable: self.durable,
                    closing: watch::channel(false).0,
                    scheduler: self.scheduler,
                    resources,
                    counters: Counters::default(),
                    live: Live::default(),
                }),
                shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
                broken: Mutex::new(HashMap::new()),
                open: AtomicBool::new(true),
            }),
        }
    }
}

/// A started instance whose durable start may still be committing.
struct Launched<W: Machine> {
    id: Arc<str>,
    entry: Entry<W>,
    answer: Option<oneshot::Receiver<Result<(), EngineError>>>,
}

/// The largest generation counter a journal row may hold.
const MAX_GENERATION: u64 = 1 << 63;

/// What [`Engine::recover`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recovery {
    /// How many unfinished instances it resumed.
    pub resumed: usize,
    /// The instances it could not resume, and why: a corrupt journal row
    /// ([`StoreError::Corrupt`]) or a workflow that changed under them
    /// ([`StoreError::DefinitionChanged`]). Their journals are left as they
    /// are; every query about them reports the error. On a damaged store
    /// file, every instance that can still be read resumes and each one
    /// that cannot is reported by id; a damaged part of the store's index
    /// of instances, whose instances cannot be named, is one error without
    /// an id ([`StoreError::Backend`]).
    pub errors: Vec<StoreError>,
}

/// What the engine keeps of an instance: its mailbox, which also holds
/// what it publishes.
type Entry<W> = Arc<Mailbox<Command<W>, Internal<<W as Machine>::Event>, Published<W>>>;

/// What an instance publishes, kept with its mailbox.
struct Published<W: Machine> {
    status: Status<W::State>,
    /// Made on the first `subscribe` or `wait`: most instances have no
    /// watcher, and a watch channel costs several hundred bytes.
    watch: Option<watch::Sender<Status<W::State>>>,
    /// The task has ended: no status changes any more.
    ended: bool,
    /// The context and history the task left when it ended (cancelled or
    /// shut down), so snapshots keep working.
    last: Option<Box<(W::Context, Vec<Record>)>>,
}

impl<W: Machine> Published<W> {
    fn set(&mut self, status: Status<W::State>) {
        if let Some(watch) = &self.watch {
            watch.send_replace(status.clone());
        }
        self.status = status;
    }

    fn current(&mut self) -> Status<W::State> {
        self.status.clone()
    }

    fn subscribe(&mut self) -> watch::Receiver<Status<W::State>> {
        if self.ended {
            // A receiver whose sender is gone: it reads the status, and
            // waiting for a change ends at once.
            return watch::channel(self.status.clone()).1;
        }
        let status = &self.status;
        self.watch
            .get_or_insert_with(|| watch::channel(status.clone()).0)
            .subscribe()
    }
}

/// A request to an instance's task.
enum Command<W: Machine> {
    Event {
        event: W::Event,
        reply: Option<oneshot::Sender<Result<(), EngineError>>>,
    },
    Snapshot(oneshot::Sender<(W::Context, Vec<Record>)>),
    Cancel(oneshot::Sender<()>),
}

/// What an instance's own activity and timer tasks tell it.
enum Internal<E> {
    /// Queued without waking the instance: the outcome (or any other
    /// message) follows and wakes it, and the instance handles its own
    /// messages first, so the history reads the same; the record is timed
    /// where it was made.
    Attempt {
        node: usize,
        generation: u64,
        // Boxed: it would double the size of every message in the queue.
        record: Box<Record>,
    },
    Outcome {
        node: usize,
        generation: u64,
        result: Result<E, ActivityError>,
    },
    Timer {
        key: TimerKey,
        generation: u64,
    },
}

/// A timer's owner: a state's `after` (cancelled when the state is left), or
/// a `send` id (cancelled by `cancel` or the instance's end).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum TimerKey {
    State(usize),
    /// Owned once recovered from a journal.
    Send(Cow<'static, str>),
}

/// The graph's states that need the engine: those with an activity,
/// timers or a compensation, and the finals.
struct Watched {
    nodes: Vec<usize>,
    timers: Vec<(usize, usize, Duration)>,
    finals: Vec<(usize, bool)>,
}

impl Watched {
    fn new(graph: &Graph<'_>) -> Self {
        let timers: Vec<(usize, usize, Duration)> = graph
            .events
            .iter()
            .enumerate()
            .filter_map(|(e, info)| match info.kind {
                EventKind::Timer { state, delay } => Some((state, e, delay)),
                _ => None,
            })
            .collect();
        let nodes = (0..graph.states.len())
            .filter(|&s| {
                let info = &graph.states[s];
                info.invoke.is_some() || info.compensate.is_some() || timers.iter().any(|t| t.0 == s)
            })
            .collect();
        let finals = graph
            .states
            .iter()
            .enumerate()
            .filter_map(|(s, info)| match info.kind {
                StateKind::Final { failure } if info.parent.is_none() => Some((s, failure)),
                _ => None,
            })
            .collect();
        Watched { nodes, timers, finals }
    }
}

const SHARDS: usize = 16;

impl<W, H> Engine<W, H>
where
    W: Workflow<H> + Send + 'static,
    W::Context: Clone + Send + Sync + 'static,
    W::Event: Send + 'static,
    H: Send + Sync + 'static,
{
    /// An engine with the default [`Config`] and no store.
    pub fn new(handlers: H) -> Self {
        Self::builder(handlers).build()
    }

    /// An engine with `config` and no store.
    pub fn with_config(handlers: H, config: Config) -> Self {
        Self::builder(handlers).config(config).build()
    }

    /// A builder, for an engine with a [`Store`].
    pub fn builder(handlers: H) -> EngineBuilder<W, H> {
        EngineBuilder {
            handlers,
            config: Config::default(),
            durable: None,
            scheduler: None,
            clock: Arc::new(SystemClock),
        }
    }

    fn shard(&self, id: &str) -> std::sync::MutexGuard<'_, HashMap<Arc<str>, Entry<W>>> {
        let mut hasher = DefaultHasher::new();
        id.hash(&mut hasher);
        let shard = &self.inner.shards[(hasher.finish() as usize) % SHARDS];
        // A poisoned shard only means another thread panicked while holding
        // it; the map itself is still consistent.
        shard.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The error for an id the engine does not run: recovery's reason if it
    /// could not resume it, else unknown.
    fn missing(&self, id: &str) -> EngineError {
        let broken = self
            .inner
            .broken
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        match broken.get(id) {
            Some(error) => EngineError::Store(error.clone()),
            None => EngineError::UnknownInstance(id.to_string()),
        }
    }

    fn check_open(&self) -> Result<(), EngineError> {
        if self.inner.open.load(Ordering::Acquire) {
            Ok(())
        } else {
            Err(EngineError::ShutDown)
        }
    }

    /// Puts a new instance's mailbox in the map, unless the id is taken or
    /// the engine is shut down.
    fn register(&self, id: &Arc<str>, entry: Entry<W>) -> Result<(), EngineError> {
        let mut shard = self.shard(id);
        // Checked under the shard's lock: `shutdown` marks the engine
        // closed, then closes the mailboxes shard by shard, so an instance
        // registered in a shard already closed would never be closed (and
        // `shutdown` would wait for it forever).
        self.check_open()?;
        if shard.contains_key(id) {
            return Err(EngineError::DuplicateId(id.to_string()));
        }
        shard.insert(id.clone(), entry);
        Ok(())
    }

    /// Starts instance `id` with `context`: runs its initial entry actions
    /// and its initial activities and timers. With a store, the start is
    /// committed before this returns, and an id already in the store gives
    /// [`EngineError::DuplicateId`]. A start the store does not take (a
    /// stored id, a context that cannot be encoded, a failing store) leaves
    /// no trace: no row, no status, and the id is free for another start.
    pub async fn start(&self, id: impl Into<String>, context: W::Context) -> Result<(), EngineError> {
        self.start_with_priority(id, context, 0).await
    }

    /// [`start`](Self::start) with a priority for the instance's activity
    /// calls: under the [`Priority`](crate::scheduler::Priority) policy,
    /// higher goes first (the default is 0).
    pub async fn start_with_priority(
        &self,
        id: impl Into<String>,
        context: W::Context,
        priority: i32,
    ) -> Result<(), EngineError> {
        let launched = self.launch(id.into(), context, priority)?;
        self.started(launched).await
    }

    /// Starts many instances at once, each as [`start`](Self::start)
    /// would, and gives each one's result in order. With a store, their
    /// starts share a few commits instead of taking one round trip each,
    /// so a batch is acknowledged far sooner than the same starts one by
    /// one.
    ///
    /// ```
    /// # use workflow::prelude::*;
    /// # use workflow::{Engine, EngineError};
    /// # workflow! { workflow Ticket { initial Open; events { Close } state Open { on Close => Closed; } final Closed; } }
    /// # struct Desk;
    /// # impl TicketHandlers for Desk {}
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let engine = Engine::<Ticket, Desk>::new(Desk);
    /// let results = engine.start_many([("T-1".to_string(), ()), ("T-1".to_string(), ()), ("T-2".to_string(), ())]).await;
    /// assert_eq!(results, vec![Ok(()), Err(EngineError::DuplicateId("T-1".into())), Ok(())]);
    /// # }
    /// ```
    pub async fn start_many(
        &self,
        instances: impl IntoIterator<Item = (String, W::Context)>,
    ) -> Vec<Result<(), EngineError>> {
        let launched: Vec<_> = instances
            .into_iter()
            .map(|(id, context)| self.launch(id, context, 0))
            .collect();
        let mut results = Vec::with_capacity(launched.len());
        for launched in launched {
            results.push(match launched {
                Ok(launched) => self.started(launched).await,
                Err(error) => Err(error),
            });
        }
        results
    }

    /// Registers instance `id` and spawns its task, which runs its first
    /// step; the answer of a durable start comes through [`started`](Self::started).
    fn launch(&self, id: String, context: W::Context, priority: i32) -> Result<Launched<W>, EngineError> {
        self.check_open()?;
        let machine = W::new(context);
        let id: Arc<str> = id.into();
        let (entry, mut instance) = self.entry(id.clone(), machine.state());
        instance.priority = priority;
        self.register(&id, entry.clone())?;
        instance.record(RecordKind::Started(machine.state().to_string()));
        // A durable start answers once committed; otherwise `start` awaits
        // nothing of the workflow's own futures.
        let (ready, answer) = match self.inner.shared.durable {
            Some(_) => {
                let (ready, answer) = oneshot::channel();
                (Some(ready), Some(answer))
            }
            None => (None, None),
        };
        let span = instance.span();
        instance.machine = Some(machine);
        tokio::spawn(async move { instance.run(Start::Fresh(ready)).await }.instrument(span));
        Ok(Launched { id, entry, answer })
    }

    /// Waits for a launched instance's durable start to be committed. A
    /// start the store did not take (the id is stored already, the context
    /// cannot be encoded, the store failed) leaves no trace: its id is
    /// free again and no query knows it.
    async fn started(&self, launched: Launched<W>) -> Result<(), EngineError> {
        let Launched { id, entry, answer } = launched;
        let Some(answer) = answer else {
            return Ok(());
        };
        let refused = match answer.await {
            Err(_) => return Err(EngineError::Stopped(id.to_string())),
            // A panic in an entry action fails the instance, which exists.
            Ok(Err(EngineError::InstanceFailed { .. })) | Ok(Ok(())) => return Ok(()),
            Ok(Err(EngineError::Store(StoreError::Conflict { .. }))) => EngineError::DuplicateId(id.to_string()),
            Ok(Err(error)) => error,
        };
        let mut shard = self.shard(&id);
        if shard.get(&id).is_some_and(|e| Arc::ptr_eq(e, &entry)) {
            shard.remove(&id);
        }
        Err(refused)
    }

    /// The map entry of a new instance in `state`, and the task's side of it.
    fn entry(&self, id: Arc<str>, state: W::State) -> (Entry<W>, Instance<W, H>) {
        let shared = &self.inner.shared;
        let published = Published {
            status: Status::Running(state),
            watch: None,
            ended: false,
            last: None,
        };
        let mailbox = Arc::new(Mailbox::new(shared.config.mailbox, published));
        shared.live.enter();
        let instance = Instance {
            id,
            engine: shared.clone(),
            mailbox: mailbox.clone(),
            history: VecDeque::with_capacity(1),
            effects: None,
            generation: 0,
            seq: 0,
            priority: 0,
            running: true,
            machine: None,
        };
        (mailbox, instance)
    }

    /// Instance `id`'s mailbox.
    fn get(&self, id: &str) -> Result<Entry<W>, EngineError> {
        let shard = self.shard(id);
        shard.get(id).cloned().ok_or_else(|| self.missing(id))
    }

    /// Instance `id`'s mailbox, to send it something.
    fn mailbox(&self, id: &str) -> Result<Entry<W>, EngineError> {
        self.check_open()?;
        self.get(id)
    }

    /// Delivers `event` to instance `id`: waits for room in its mailbox, then
    /// for the instance to handle the event, and reports a rejection.
    pub async fn send(&self, id: &str, event: W::Event) -> Result<(), EngineError> {
        let mailbox = self.mailbox(id)?;
        let (reply, answer) = oneshot::channel();
        mailbox
            .send(Command::Event {
                event,
                reply: Some(reply),
            })
            .await
            .map_err(|_| EngineError::Stopped(id.to_string()))?;
        answer.await.map_err(|_| EngineError::Stopped(id.to_string()))?
    }

    /// Queues `event` for instance `id` without waiting: fails with
    /// [`EngineError::MailboxFull`] if its mailbox is full. A rejection is
    /// recorded in the instance's history.
    pub fn try_send(&self, id: &str, event: W::Event) -> Result<(), EngineError> {
        let mailbox = self.mailbox(id)?;
        mailbox
            .try_send(Command::Event { event, reply: None })
            .map_err(|refused| match refused {
                Refused::Full(_) => EngineError::MailboxFull(id.to_string()),
                Refused::Closed(_) => EngineError::Stopped(id.to_string()),
            })
    }

    fn status_receiver(&self, id: &str) -> Result<watch::Receiver<Status<W::State>>, EngineError> {
        Ok(self.get(id)?.with(Published::subscribe))
    }

    /// The handlers the engine calls.
    pub fn handlers(&self) -> &H {
        &self.inner.shared.handlers
    }

    /// A receiver of instance `id`'s status, updated after every step: await
    /// `changed()` on it to follow the instance. Once the instance's task has
    /// ended (cancelled, or the engine shut down or dropped), the receiver
    /// holds its last status and `changed()` returns an error at once.
    pub fn subscribe(&self, id: &str) -> Result<watch::Receiver<Status<W::State>>, EngineError> {
        self.status_receiver(id)
    }

    /// Where instance `id` stands now. A durable engine answers for a
    /// finished instance it does not run (it finished before a restart)
    /// from the store: the status of its journal's newest row. An
    /// unfinished one it does not run is unknown until
    /// [`recover`](Self::recover) resumes it.
    pub async fn status(&self, id: &str) -> Result<Status<W::State>, EngineError> {
        match self.get(id) {
            Ok(mailbox) => Ok(mailbox.with(Published::current)),
            Err(_) => Ok(self.stored(id, false).await?.status),
        }
    }

    /// Instance `id`'s current state (read from the store as
    /// [`status`](Self::status) is).
    pub async fn state(&self, id: &str) -> Result<W::State, EngineError> {
        Ok(*self.status(id).await?.state())
    }

    /// A finished durable instance this engine does not run, as its
    /// journal holds it: its newest row's status and context, and with
    /// `history` the steps of every row (timed zero: the journal keeps no
    /// times). Unknown or unfinished: the error for a missing instance.
    async fn stored(&self, id: &str, history: bool) -> Result<Snapshot<W>, EngineError> {
        let Some(durable) = &self.inner.shared.durable else {
            return Err(self.missing(id));
        };
        // Recovery's reason, for an instance it could not resume, before the store's word.
        if let error @ EngineError::Store(_) = self.missing(id) {
            return Err(error);
        }
        let rows = durable.store.journal(W::graph().name, id).await?;
        let Some(newest) = rows.last().filter(|row| !row.open) else {
            return Err(self.missing(id));
        };
        let entry = (durable.open)(newest, &durable.fingerprint)?;
        let status = entry.status.clone();
        let (state, context) = restored::<W>(id, entry)?;
        let status = match status {
            StatusImage::Running => Status::Running(state),
            StatusImage::Finished => Status::Finished(state),
            StatusImage::Failed { reason } => Status::Failed { state, reason },
            StatusImage::Cancelled => Status::Cancelled(state),
        };
        let mut records = Vec::new();
        if history {
            for row in &rows {
                let entry = (durable.open)(row, &durable.fingerprint)?;
                let kind = match entry.step {
                    journal::Step::Started => RecordKind::Started(restored::<W>(id, entry)?.0.to_string()),
                    journal::Step::Transition { from, event, to } => RecordKind::Transition {
                        from,
                        event: event_name::<W>(&event),
                        to,
                    },
                    journal::Step::Rejected { state, event } => RecordKind::Rejected {
                        state,
                        event: event_name::<W>(&event),
                    },
                    journal::Step::Compensated {
                        compensation,
                        error,
                        kind,
                    } => RecordKind::Compensated {
                        compensation: W::graph()
                            .states
                            .iter()
                            .find_map(|s| s.compensate.filter(|c| *c == compensation))
                            .unwrap_or("?"),
                        // Rows written before kinds were journaled say only `Failed`.
                        error: error.map(|message| RecordedError::new(kind.unwrap_or(ErrorKind::Failed), message)),
                    },
                    journal::Step::Failed { reason } => RecordKind::Panicked(reason),
                    journal::Step::Cancelled => RecordKind::Cancelled,
                    journal::Step::Finished => continue,
                };
                records.push(Record {
                    at: Duration::ZERO,
                    kind,
                });
            }
        }
        Ok(Snapshot {
            status,
            context,
            history: records,
        })
    }

    /// Instance `id`'s status, context and history, once every event queued
    /// before this call has been handled. A durable engine answers for a
    /// finished instance it does not run from the store (as
    /// [`status`](Self::status) does): the history then holds its journal's
    /// steps (starts, transitions, rejected timer events, compensations,
    /// failure, cancellation), each timed zero.
    pub async fn snapshot(&self, id: &str) -> Result<Snapshot<W>, EngineError> {
        let mailbox = match self.get(id) {
            Ok(mailbox) => mailbox,
            Err(_) => return self.stored(id, true).await,
        };
        let mut asked = None;
        let (reply, answer) = oneshot::channel();
        // A closed mailbox (shut down) refuses at once.
        if mailbox.send(Command::Snapshot(reply)).await.is_ok() {
            asked = answer.await.ok();
        }
        // A task that has ended left its context and history behind.
        let left = || mailbox.with(|published| published.last.as_deref().cloned());
        let (context, history) = asked
            .or_else(left)
            .ok_or_else(|| EngineError::Stopped(id.to_string()))?;
        let status = mailbox.with(Published::current);
        Ok(Snapshot {
            status,
            context,
            history,
        })
    }

    /// Waits until instance `id` reaches a final state, and gives it. A
    /// durable engine answers for a finished instance it does not run from
    /// the store (as [`status`](Self::status) does).
    pub async fn wait(&self, id: &str) -> Result<W::State, EngineError> {
        let done = match self.status_receiver(id) {
            Ok(mut status) => status
                .wait_for(|s| !s.is_running())
                .await
                .map(|s| s.clone())
                .map_err(|_| EngineError::Stopped(id.to_string()))?,
            Err(_) => self.stored(id, false).await?.status,
        };
        match done {
            Status::Finished(state) => Ok(state),
            Status::Failed { reason, .. } => Err(EngineError::InstanceFailed {
                id: id.to_string(),
                reason,
            }),
            Status::Cancelled(_) => Err(EngineError::Cancelled(id.to_string())),
            Status::Running(_) => Err(EngineError::Stopped(id.to_string())),
        }
    }

    /// Cancels instance `id`: its activities and timers stop, it handles
    /// nothing more, and `wait` reports [`EngineError::Cancelled`]. An
    /// instance that already finished or failed keeps its outcome: that gives
    /// [`EngineError::Stopped`].
    pub async fn cancel(&self, id: &str) -> Result<(), EngineError> {
        let mailbox = self.mailbox(id)?;
        let (reply, answer) = oneshot::channel();
        mailbox
            .send(Command::Cancel(reply))
            .await
            .map_err(|_| EngineError::Stopped(id.to_string()))?;
        answer.await.map_err(|_| EngineError::Stopped(id.to_string()))
    }

    /// Every instance's id and status.
    pub fn list(&self) -> Vec<(String, Status<W::State>)> {
        let mut all = Vec::new();
        for shard in &self.inner.shards {
            let shard = shard.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            all.extend(
                shard
                    .iter()
                    .map(|(id, mailbox)| (id.to_string(), mailbox.with(Published::current))),
            );
        }
        all
    }

    /// The ids of the instances whose status satisfies `pick`, for example
    /// `|s| s.is_running() && *s.state() == OrderState::Shipping`.
    pub fn list_where(&self, pick: impl Fn(&Status<W::State>) -> bool) -> Vec<String> {
        self.list()
            .into_iter()
            .filter(|(_, s)| pick(s))
            .map(|(id, _)| id)
            .collect()
    }

    /// Stops taking anything new, lets every instance handle what its
    /// mailbox already holds, then stops their activities and timers.
    /// Queries (`status`, `state`, `snapshot`, `list`, `wait`) keep working
    /// afterwards.
    pub async fn shutdown(&self) {
        self.inner.open.store(false, Ordering::Release);
        self.inner.shared.closing.send_replace(true);
        self.inner.close_all();
        self.inner.shared.live.until_none().await;
    }

    /// The engine's counts since it was built, its instances by state, and
    /// its scheduler's resource statistics.
    ///
    /// ```
    /// # use workflow::prelude::*;
    /// # use workflow::Engine;
    /// # workflow! { workflow Ticket { initial Open; events { Close } state Open { on Close => Closed; } final Closed; } }
    /// # struct Desk;
    /// # impl TicketHandlers for Desk {}
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), workflow::EngineError> {
    /// let engine = Engine::<Ticket, Desk>::new(Desk);
    /// engine.start("T-1", ()).await?;
    /// engine.start("T-2", ()).await?;
    /// engine.send("T-1", TicketEvent::Close).await?;
    /// let metrics = engine.metrics();
    /// assert_eq!((metrics.transitions, metrics.completions, metrics.running), (1, 1, 1));
    /// assert_eq!(metrics.instances, vec![("Closed".to_string(), 1), ("Open".to_string(), 1)]);
    /// # Ok(()) }
    /// ```
    pub fn metrics(&self) -> WorkflowMetrics {
        let shared = &self.inner.shared;
        let mut by_state: HashMap<String, usize> = HashMap::new();
        let mut running = 0;
        for (_, status) in self.list() {
            let key = match &status {
                Status::Running(state) => {
                    running += 1;
                    state.to_string()
                }
                Status::Finished(state) => state.to_string(),
                Status::Failed { .. } => "failed".to_string(),
                Status::Cancelled(_) => "cancelled".to_string(),
            };
            *by_state.entry(key).or_default() += 1;
        }
        let mut instances: Vec<(String, usize)> = by_state.into_iter().collect();
        instances.sort();
        let count = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let counters = &shared.counters;
        let window = shared.epoch.elapsed();
        let transitions = count(&counters.transitions);
        WorkflowMetrics {
            workflow: W::graph().name,
            window,
            instances,
            running,
            transitions,
            transitions_per_second: transitions as f64 / window.as_secs_f64().max(f64::MIN_POSITIVE),
            completions: count(&counters.completions),
            failures: count(&counters.failures),
            cancellations: count(&counters.cancellations),
            retries: count(&counters.retries),
            compensations: count(&counters.compensations),
            resources: shared
                .scheduler
                .as_ref()
                .map(|s| s.metrics().resources)
                .unwrap_or_default(),
        }
    }

    /// Resumes every unfinished instance in the engine's store (none without
    /// a store), from the newest row of its journal: its configuration,
    /// context and history states come back as they were committed, no
    /// entry action runs again, each activity that was in flight starts
    /// again with the same idempotency key, each timer fires at its
    /// journaled deadline (at once if that has passed), and a failed
    /// workflow's remaining compensations run.
    ///
    /// An instance this engine already runs is left alone, so calling it
    /// twice is harmless. An instance whose row is corrupt, or which no
    /// longer fits the workflow as compiled now, is reported in
    /// [`Recovery::errors`] and left untouched in the store; the others
    /// resume. Only a failure to read the store at all is an `Err`
    /// ([`EngineError::Store`]); after [`shutdown`](Self::shutdown) it
    /// resumes nothing and gives [`EngineError::ShutDown`], as every other
    /// call that would run something does.
    pub async fn recover(&self) -> Result<Recovery, EngineError> {
        self.check_open()?;
        let Some(durable) = &self.inner.shared.durable else {
            return Ok(Recovery::default());
        };
        let rows = durable.store.open_rows(W::graph().name).await?;
        let mut report = Recovery::default();
        for row in rows {
            // A row the store could not read comes as its error, by id.
            let resumed = match row {
                Ok(row) if self.shard(&row.instance).contains_key(row.instance.as_str()) => continue,
                Ok(row) => self.resume(durable, row),
                Err(error) => Err(EngineError::Store(error)),
            };
            match resumed {
                Ok(()) => report.resumed += 1,
                Err(EngineError::Store(error)) => {
                    if let Some(id) = error.instance() {
                        let mut broken = self
                            .inner
                            .broken
                            .lock()
                            .unwrap_or_else(|poisoned| poisoned.into_inner());
                        broken.insert(id.to_string(), error.clone());
                    }
                    report.errors.push(error);
                }
                Err(EngineError::DuplicateId(_)) => {} // started here meanwhile
                Err(error) => return Err(error),
            }
        }
        Ok(report)
    }

    /// Rebuilds one instance from its newest row and starts its task.
    fn resume(&self, durable: &Durable<W>, row: Row) -> Result<(), EngineError> {
        let mut instance = self.rebuild(durable, row)?;
        self.register(&instance.id.clone(), instance.mailbox.clone())?;
        let span = instance.span();
        tokio::spawn(async move { instance.run(Start::Resumed).await }.instrument(span));
        Ok(())
    }

    /// One instance as its newest row left it, not yet registered.
    fn rebuild(&self, durable: &Durable<W>, row: Row) -> Result<Instance<W, H>, StoreError> {
        let entry = (durable.open)(&row, &durable.fingerprint)?;
        let Row { instance: id, seq, .. } = row;
        let changed = |state: &str, reason: String| StoreError::DefinitionChanged {
            instance: id.clone(),
            state: state.to_string(),
            reason,
        };
        let corrupt = |reason: String| StoreError::Corrupt {
            instance: id.clone(),
            seq,
            reason,
        };
        let here = entry.active.last().map_or_else(String::new, |s| s.to_string());
        let graph = W::graph();
        let index = |name: &str| {
            graph
                .state_index(name)
                .ok_or_else(|| changed(name, "no such state".into()))
        };
        let indices = |names: &[Cow<str>]| names.iter().map(|n| index(n)).collect::<Result<Vec<_>, _>>();
        let saved = Saved {
            active: indices(&entry.active)?,
            history: entry
                .history
                .iter()
                .map(|(h, recorded)| Ok((index(h)?, indices(recorded)?)))
                .collect::<Result<_, StoreError>>()?,
        };
        let machine = W::restore(&saved, entry.context)
            .ok_or_else(|| changed(&here, "its active states are no longer a valid configuration".into()))?;
        let (_, mut instance) = self.entry(id.as_str().into(), machine.state());
        for activity in &entry.activities {
            let node = index(&activity.state)?;
            if graph.states[node].invoke.is_none() {
                return Err(changed(&activity.state, "it no longer invokes an activity".into()));
            }
            instance.fx().activities.push((
                node,
                Running {
                    generation: activity.generation,
                    task: None,
                },
            ));
            instance.fx().pending.push(Pending::Activity(node));
        }
        for timer in entry.timers {
            let key = match (&timer.state, timer.send) {
                (Some(state), _) => {
                    let node = index(state)?;
                    let fits = matches!(
                        graph.events.get(W::event_index(&timer.event)).map(|e| e.kind),
                        Some(EventKind::Timer { state, .. }) if state == node
                    );
                    if !fits {
                        return Err(changed(state, "its timer changed".into()));
                    }
                    TimerKey::State(node)
                }
                (None, Some(send)) => TimerKey::Send(Cow::Owned(send.into_owned())),
                (None, None) => return Err(corrupt("a timer with no owner".into())),
            };
            let deadline = self.inner.shared.instant(timer.deadline);
            instance
                .fx()
                .pending
                .push(Pending::Timer(key.clone(), timer.generation));
            instance.fx().timers.push((
                key,
                Timer {
                    generation: timer.generation,
                    deadline,
                    event: timer.event,
                    task: None,
                },
            ));
        }
        for succeeded in entry.succeeded {
            let node = index(&succeeded.state)?;
            instance.fx().succeeded.push((node, succeeded.done));
        }
        for completed in entry.completed {
            let node = index(&completed.state)?;
            if graph.states[node].compensate.is_none() {
                return Err(changed(&completed.state, "it no longer declares a compensation".into()));
            }
            instance.fx().completed.push(Completed {
                node,
                generation: completed.generation,
                done: completed.done,
            });
        }
        // The counter grows by one per activity or timer started: a value
        // past 2^63 was damaged, not counted, and counting on from it could
        // overflow (and repeat idempotency keys).
        if entry.generation > MAX_GENERATION {
            return Err(corrupt(format!(
                "its generation counter {} is past 2^63, more than an instance counts",
                entry.generation
            )));
        }
        instance.generation = entry.generation;
        instance.priority = entry.priority;
        instance.seq = seq;
        instance.machine = Some(machine);
        instance.record(RecordKind::Recovered { seq });
        Ok(instance)
    }
}

/// How an instance's task begins.
enum Start {
    /// A new instance: its initial step runs first, and the sender, if any,
    /// hears whether it was committed.
    Fresh(Option<oneshot::Sender<Result<(), EngineError>>>),
    /// Rebuilt from its journal: what was in flight starts again.
    Resumed,
}

/// One instance's task. Every idle instance holds one of these in its task,
/// so it is kept small: few, small fields, and vectors (a state has few
/// activities and timers) rather than hash maps.
struct Instance<W: Machine, H> {
    id: Arc<str>,
    engine: Arc<Shared<W, H>>,
    mailbox: Entry<W>,
    machine: Option<W>,
    history: VecDeque<Record>,
    /// Made when first needed: many instances never have any.
    effects: Option<Box<Effects<W::Event>>>,
    generation: u64,
    /// The number of the newest committed row of the instance's journal.
    seq: u64,
    /// The priority of its activity calls.
    priority: i32,
    /// Whether its published status is `Running`.
    running: bool,
}

impl<W: Machine, H> Drop for Instance<W, H> {
    /// However the task ends (or is dropped with its runtime), its mailbox
    /// takes nothing more and watchers learn it stopped.
    fn drop(&mut self) {
        self.mailbox.end(|published| {
            published.ended = true;
            published.watch = None;
        });
        self.engine.live.leave();
    }
}

/// What an instance has going on besides its machine.
struct Effects<E> {
    /// Activities by state: running, or planned until the step commits.
    activities: Vec<(usize, Running)>,
    /// Pending timers by owner, in the order they were set.
    timers: Vec<(TimerKey, Timer<E>)>,
    /// Activities and timers a step planned, started once it is committed.
    pending: Vec<Pending>,
    /// States whose activity completed while they were active, with the
    /// done event if the state is compensable (its compensation receives
    /// the output).
    succeeded: Vec<(usize, Option<E>)>,
    /// Compensable states whose step completed, in order.
    completed: Vec<Completed<E>>,
}

impl<E> Default for Effects<E> {
    fn default() -> Self {
        Effects {
            activities: Vec::new(),
            timers: Vec::new(),
            pending: Vec::new(),
            succeeded: Vec::new(),
            completed: Vec::new(),
        }
    }
}

/// A compensable state's completed step, to undo if the workflow fails.
struct Completed<E> {
    node: usize,
    /// Drawn when the step completed: the compensation's idempotency key
    /// is made of it, so each completion of a state (a loop completes it
    /// again) gets its own key, the same after a restart.
    generation: u64,
    /// The done event its activity completed with, whose output the
    /// compensation receives; `None` if it invokes nothing.
    done: Option<E>,
}

/// An activity of an active state: its generation, and its task once started.
struct Running {
    generation: u64,
    task: Option<ActivityTask>,
}

/// An activity's task, or its place in its resource's queue: a call that
/// must wait for a slot gets its task only once granted, so that no parked
/// task sits in the queue.
enum ActivityTask {
    Spawned(AbortHandle),
    Queued(Arc<Launch>, Option<Submitted>),
}

impl ActivityTask {
    fn abort(self) {
        match self {
            ActivityTask::Spawned(task) => task.abort(),
            ActivityTask::Queued(launch, ticket) => {
                let was = std::mem::replace(&mut *launch.lock(), LaunchState::Cancelled);
                match was {
                    // Granted: the queue has nothing of it left to withdraw.
                    LaunchState::Running(task) => {
                        if let Some(ticket) = ticket {
                            ticket.detach();
                        }
                        task.abort();
                    }
                    // Leaves the queue if it still waits; a grant on its
                    // way finds it cancelled and passes the slot on.
                    LaunchState::Waiting | LaunchState::Cancelled => drop(ticket),
                }
            }
        }
    }
}

/// What an instance and its resource's grant share about a queued call.
struct Launch(Mutex<LaunchState>);

enum LaunchState {
    Waiting,
    Running(AbortHandle),
    /// Its state was left: a grant passes the slot on.
    Cancelled,
}

impl Launch {
    fn lock(&self) -> std::sync::MutexGuard<'_, LaunchState> {
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The call's slot was granted: `start` spawns its task, unless the
    /// call was cancelled meanwhile; then `start` is dropped unrun, with
    /// the permit it holds, which passes the slot on (after the lock is
    /// released: a parameter outlives the guard).
    fn grant(&self, start: impl FnOnce() -> AbortHandle) {
        let mut state = self.lock();
        if matches!(*state, LaunchState::Waiting) {
            *state = LaunchState::Running(start());
        }
    }
}

/// A pending timer: what it delivers and when, and its task once started.
struct Timer<E> {
    generation: u64,
    deadline: Instant,
    event: E,
    task: Option<AbortHandle>,
}

/// A step's journal row (`None` without a store) and the final state it
/// reached, if any (whether a failure).
type Prepared = (Result<Option<Row>, StoreError>, Option<bool>);

/// What a step planned to start once committed.
enum Pending {
    Activity(usize),
    Timer(TimerKey, u64),
}

impl<W, H> Instance<W, H>
where
    W: Workflow<H> + Send + 'static,
    W::Context: Clone + Send + Sync + 'static,
    W::Event: Send + 'static,
    H: Send + Sync + 'static,
{
    /// The task: begins, then handles what reaches the mailbox until it is
    /// closed or the instance is cancelled. Every longer step is boxed: the
    /// future of this loop is what each idle instance holds. (It borrows
    /// the instance rather than taking it: an `async fn` keeps a by-value
    /// argument twice.)
    async fn run(&mut self, start: Start) {
        match start {
            Start::Fresh(ready) => {
                let begun = Box::pin(self.begin()).await;
                // The store took nothing of it: the instance does not exist.
                let refused = begun.is_err() && self.seq == 0;
                if let Some(ready) = ready {
                    let _ = ready.send(begun);
                }
                if refused {
                    return;
                }
            }
            Start::Resumed => {
                self.launch();
                Box::pin(self.finish_if_final()).await;
            }
        }
        loop {
            if self.compensation_due() {
                Box::pin(self.compensate_if_due()).await;
            }
            let next = self.mailbox.next().await;
            if !Box::pin(self.take(next)).await {
                break;
            }
        }
        self.stop_all();
        if let Some(machine) = &self.machine {
            let left = Box::new((machine.context().clone(), std::mem::take(&mut self.history).into()));
            self.mailbox.with(|published| published.last = Some(left));
        }
    }

    /// Handles what the mailbox gave; `false` when the task is to end.
    async fn take(&mut self, next: Next<Command<W>, Internal<W::Event>>) -> bool {
        match next {
            Next::Own(message) => self.internal(message).await,
            Next::Request(Command::Event { event, reply }) => {
                let result = self.deliver(event, false).await;
                if let Some(reply) = reply {
                    let _ = reply.send(result);
                }
            }
            Next::Request(Command::Snapshot(reply)) => {
                if let Some(machine) = &self.machine {
                    let _ = reply.send((machine.context().clone(), self.history.iter().cloned().collect()));
                }
            }
            // A finished or failed instance keeps its outcome (and its task,
            // for snapshots): dropping the reply makes `cancel` report
            // `Stopped`, as `send` does.
            Next::Request(Command::Cancel(reply)) if !self.running => drop(reply),
            Next::Request(Command::Cancel(reply)) => {
                self.cancel().await;
                let _ = reply.send(());
                return false;
            }
            // Shut down: the mailbox was closed and is drained.
            Next::Closed => return false,
        }
        true
    }

    /// Cancelled: stops everything, journals it and publishes it.
    async fn cancel(&mut self) {
        self.record(RecordKind::Cancelled);
        Counters::add(&self.engine.counters.cancellations);
        self.stop_all();
        // Cancelled in any case; a store error is in the history.
        let row = self.row(journal::Step::Cancelled, StatusImage::Cancelled, false);
        let _ = self.commit(row).await;
        let state = self.published_state();
        self.publish(Status::Cancelled(state));
    }

    /// The state of the published status.
    fn published_state(&self) -> W::State {
        self.mailbox.with(|published| *published.status.state())
    }

    /// Publishes the instance's status.
    fn publish(&mut self, status: Status<W::State>) {
        self.running = status.is_running();
        self.mailbox.with(|published| published.set(status));
    }

    /// Runs the initial entry actions, commits the start, then starts the
    /// initial activities and timers.
    async fn begin(&mut self) -> Result<(), EngineError> {
        // Nothing is active before an instance starts. `W::new` already holds
        // the initial configuration, so comparing with it would make the
        // initial states look "already entered" and `settle` would never
        // start their activities and `after` timers.
        let before = vec![false; self.engine.watched.nodes.len()];
        let Some(machine) = self.machine.as_mut() else {
            return Err(EngineError::Stopped(self.id.to_string()));
        };
        let handlers = &*self.engine.handlers;
        let started = catch_unwind(AssertUnwindSafe(|| machine.start(handlers)));
        match started {
            Ok(()) => {
                let prepared = self.prepare(before, false, journal::Step::Started);
                self.settle(prepared).await
            }
            Err(panic) => Err(self.fail(panic_text(&*panic)).await),
        }
    }

    /// The instance's tracing span, parent of its transitions' and
    /// activity attempts' spans.
    fn span(&self) -> tracing::Span {
        tracing::info_span!("instance", workflow = W::graph().name, id = %self.id)
    }

    fn record(&mut self, kind: RecordKind) {
        self.keep(Record {
            at: self.engine.epoch.elapsed(),
            kind,
        });
    }

    /// Appends `record` to the history, dropping the oldest beyond its
    /// capacity.
    fn keep(&mut self, record: Record) {
        if self.history.len() >= self.engine.config.history.max(1) {
            self.history.pop_front();
        }
        self.history.push_back(record);
    }

    /// Which watched states are active.
    fn active(&self, machine: &W) -> Vec<bool> {
        self.engine
            .watched
            .nodes
            .iter()
            .map(|&s| W::Node::from_index(s).is_some_and(|n| machine.is_active(n)))
            .collect()
    }

    /// Handles one event and what follows from it. `timer` says the event
    /// is a timer's: its rejection is journaled too, as the timer is spent.
    async fn deliver(&mut self, event: W::Event, timer: bool) -> Result<(), EngineError> {
        if !self.running {
            // Nothing accepted is dropped silently: the history says so.
            let state = self.published_state().to_string();
            self.record(RecordKind::Rejected {
                state,
                event: event_name::<W>(&event),
            });
            return Err(EngineError::Stopped(self.id.to_string()));
        }
        let Some(machine) = self.machine.as_ref() else {
            return Err(EngineError::Stopped(self.id.to_string()));
        };
        let name = event_name::<W>(&event);
        let handlers = self.engine.handlers.clone();
        let before_state = machine.state();
        let flat = !W::graph().is_hierarchical();
        let before = self.active(machine);
        let Some(machine) = self.machine.as_mut() else {
            return Err(EngineError::Stopped(self.id.to_string()));
        };
        let span = tracing::info_span!(
            "transition",
            workflow = W::graph().name,
            instance = %self.id,
            from = %before_state,
            event = name,
            to = tracing::field::Empty,
        );
        let handled = span.in_scope(|| catch_unwind(AssertUnwindSafe(|| machine.handle(&event, &*handlers))));
        let after = machine.state();
        if let Ok(Ok(_)) = &handled {
            span.record("to", tracing::field::display(after));
        }
        match handled {
            Err(panic) => {
                let reason = panic_text(&*panic);
                Err(self.fail(reason).await)
            }
            Ok(Err(rejected)) if rejected.reason() == Reason::EventlessLoop => {
                // The machine took the loop's microsteps, so it is not where
                // it was and would loop again: the instance fails rather than
                // report that nothing changed.
                Err(self.fail(rejected.to_string()).await)
            }
            Ok(Err(_)) => {
                // The whole configuration, not the one state `Rejected` names.
                let state = before_state.to_string();
                self.record(RecordKind::Rejected {
                    state: state.clone(),
                    event: name,
                });
                if timer {
                    let step = journal::Step::Rejected {
                        state: state.clone(),
                        event: &event,
                    };
                    let row = self.row(step, StatusImage::Running, true);
                    self.commit(row).await?;
                }
                Err(EngineError::Rejected {
                    id: self.id.to_string(),
                    state,
                    event: name,
                })
            }
            Ok(Ok(step)) => {
                Counters::add(&self.engine.counters.transitions);
                let (from, to) = (before_state.to_string(), after.to_string());
                // The journal's copy of the names, only when there is a journal:
                // this is every transition's path.
                let journaled = |name: &String| match self.engine.durable {
                    Some(_) => name.clone(),
                    None => String::new(),
                };
                let step_names = (journaled(&from), journaled(&to));
                self.record(RecordKind::Transition { from, event: name, to });
                // A flat self-transition exits and re-enters its state.
                let reentered = flat && step.exited() && after == before_state;
                let step = journal::Step::Transition {
                    from: step_names.0,
                    event: &event,
                    to: step_names.1,
                };
                let prepared = self.prepare(before, reentered, step);
                self.settle(prepared).await
            }
        }
    }

    /// After a step: stops what left states had and plans what entered
    /// states need, then gives the step's journal row (encoded now: the step
    /// borrows the event) and the final state reached, if any.
    fn prepare(&mut self, before: Vec<bool>, reentered: bool, step: journal::Step<&W::Event>) -> Prepared {
        self.plan(before, reentered);
        let reached = self.reached_final();
        // A failure final with compensations to run stays open until they ran.
        let open = match reached {
            None => true,
            Some(failure) => failure && !self.completed().is_empty(),
        };
        let status = if open {
            StatusImage::Running
        } else {
            StatusImage::Finished
        };
        (self.row(step, status, open), reached)
    }

    /// Commits a prepared step, then starts the planned activities and
    /// timers and publishes where the instance stands. A failure final's
    /// compensations run later, once the step is acknowledged (see
    /// [`compensate_if_due`](Self::compensate_if_due)).
    async fn settle(&mut self, (row, reached): Prepared) -> Result<(), EngineError> {
        self.commit(row).await?;
        self.launch();
        let Some(machine) = &self.machine else { return Ok(()) };
        let state = machine.state();
        match reached {
            Some(failure) if !failure || self.completed().is_empty() => {
                self.stop_all();
                let counters = &self.engine.counters;
                Counters::add(if failure {
                    &counters.failures
                } else {
                    &counters.completions
                });
                self.publish(Status::Finished(state));
            }
            _ => {
                // Publish only a change: an unchanged status needs no
                // watcher woken.
                self.mailbox.with(|published| {
                    if published.status != Status::Running(state) {
                        published.set(Status::Running(state));
                    }
                });
            }
        }
        Ok(())
    }

    /// A resumed instance whose newest row is open although it stands in a
    /// top-level final state with nothing left to compensate (a row a crash
    /// or an older build left): finishes it, closing its journal, instead of
    /// letting it run forever. A failure final with compensations left runs
    /// them first, as usual.
    async fn finish_if_final(&mut self) {
        let Some(failure) = self.reached_final() else {
            return;
        };
        if failure && !self.completed().is_empty() {
            return;
        }
        let row = self.row(journal::Step::Finished, StatusImage::Finished, false);
        // A store error stops the instance and is in its history.
        let _ = self.settle((row, Some(failure))).await;
    }

    /// Stops what left states had, plans what entered states need, and
    /// takes the timers `send` and `cancel` asked for.
    fn plan(&mut self, before: Vec<bool>, reentered: bool) {
        let Some(machine) = self.machine.as_mut() else { return };
        let scheduled = machine.take_scheduled();
        let Some(machine) = self.machine.as_ref() else { return };
        let after = self.active(machine);
        let nodes = self.engine.watched.nodes.clone();
        let again: Vec<bool> = nodes
            .iter()
            .map(|&s| reentered || W::Node::from_index(s).is_some_and(|n| machine.reentered(n)))
            .collect();
        for (i, &node) in nodes.iter().enumerate() {
            if before[i] && (!after[i] || again[i]) {
                self.left(node);
            }
        }
        for (i, &node) in nodes.iter().enumerate() {
            if after[i] && (!before[i] || again[i]) {
                self.entered(node);
            }
        }
        for command in scheduled {
            match command {
                Scheduled::Send { id, event, delay } => self.set_timer(TimerKey::Send(Cow::Borrowed(id)), event, delay),
                Scheduled::Cancel { id } => self.cancel_timers(&TimerKey::Send(Cow::Borrowed(id))),
            }
        }
    }

    /// Commits a row of the instance's journal (`None`: the engine has no
    /// store). A failure stops the instance.
    async fn commit(&mut self, row: Result<Option<Row>, StoreError>) -> Result<(), EngineError> {
        let engine = self.engine.clone();
        let error = match (row, &engine.durable) {
            (Ok(None), _) | (_, None) => return Ok(()),
            (Ok(Some(row)), Some(durable)) => match durable.store.append(W::graph().name, row).await {
                Ok(()) => {
                    self.seq += 1;
                    return Ok(());
                }
                Err(error) => error,
            },
            (Err(error), _) => error,
        };
        if self.seq == 0 {
            // A start the store refused: nothing of the instance exists,
            // so there is nothing to fail (`start` reports the error).
            return Err(EngineError::Store(error));
        }
        self.record(RecordKind::StoreFailed(error.to_string()));
        Counters::add(&self.engine.counters.failures);
        self.stop_all();
        let state = self.published_state();
        self.publish(Status::Failed {
            state,
            reason: error.to_string(),
        });
        Err(EngineError::Store(error))
    }

    /// The next row of the instance's journal (`None` without a store).
    fn row(&self, step: journal::Step<&W::Event>, status: StatusImage, open: bool) -> Result<Option<Row>, StoreError> {
        let Some(durable) = &self.engine.durable else {
            return Ok(None);
        };
        let data = self
            .image(durable, step, status)
            .map_err(|reason| StoreError::Unencodable {
                instance: self.id.to_string(),
                reason,
            })?;
        Ok(Some(Row {
            instance: self.id.to_string(),
            seq: self.seq + 1,
            open,
            checksum: crc32fast::hash(&data),
            data,
        }))
    }

    /// The journal document of the instance as it stands, after `step`.
    fn image(
        &self,
        durable: &Durable<W>,
        step: journal::Step<&W::Event>,
        status: StatusImage,
    ) -> Result<Vec<u8>, String> {
        let machine = self.machine.as_ref().ok_or("the instance has no machine")?;
        let states = W::graph().states;
        // Names borrowed from the graph: no allocation per name.
        let name = |node: &usize| Cow::Borrowed(states.get(*node).map_or("", |s| s.name));
        let saved = machine.save();
        let effects = self.effects.as_deref();
        let timers = effects.iter().flat_map(|e| &e.timers).map(|(key, timer)| TimerImage {
            state: match key {
                TimerKey::State(node) => Some(name(node)),
                TimerKey::Send(_) => None,
            },
            send: match key {
                TimerKey::State(_) => None,
                TimerKey::Send(id) => Some(Cow::Borrowed(id.as_ref())),
            },
            generation: timer.generation,
            event: &timer.event,
            deadline: self.engine.wall(timer.deadline),
        });
        let entry = journal::Document {
            v: journal::FORMAT,
            fingerprint: Cow::Borrowed(&durable.fingerprint),
            step,
            status,
            active: saved.active.iter().map(name).collect(),
            history: saved
                .history
                .iter()
                .map(|(h, recorded)| (name(h), recorded.iter().map(name).collect()))
                .collect(),
            context: machine.context(),
            activities: effects
                .iter()
                .flat_map(|e| &e.activities)
                .map(|(node, running)| ActivityImage {
                    state: name(node),
                    generation: running.generation,
                })
                .collect(),
            timers: timers.collect(),
            succeeded: effects
                .iter()
                .flat_map(|e| &e.succeeded)
                .map(|(node, done)| StepImage {
                    state: name(node),
                    generation: 0,
                    done: done.as_ref(),
                })
                .collect(),
            completed: self
                .completed()
                .iter()
                .map(|c| StepImage {
                    state: name(&c.node),
                    generation: c.generation,
                    done: c.done.as_ref(),
                })
                .collect(),
            generation: self.generation,
            priority: self.priority,
        };
        (durable.encode)(&entry)
    }

    /// The instance's effects, made on first use.
    fn fx(&mut self) -> &mut Effects<W::Event> {
        self.effects.get_or_insert_with(Box::default)
    }

    /// The compensable states whose step completed, in order.
    fn completed(&self) -> &[Completed<W::Event>] {
        self.effects.as_deref().map_or(&[], |e| &e.completed)
    }

    /// `node`'s activity, if it has one running or planned.
    fn activity(&self, node: usize) -> Option<&Running> {
        let effects = self.effects.as_deref()?;
        effects
            .activities
            .iter()
            .find(|(n, _)| *n == node)
            .map(|(_, running)| running)
    }

    fn take_activity(&mut self, node: usize) -> Option<Running> {
        let activities = &mut self.effects.as_deref_mut()?.activities;
        let at = activities.iter().position(|(n, _)| *n == node)?;
        Some(activities.remove(at).1)
    }

    fn left(&mut self, node: usize) {
        if let Some(running) = self.take_activity(node) {
            if let Some(task) = running.task {
                task.abort();
            }
            let activity = W::graph().states[node].invoke.map_or("?", |i| i.activity);
            self.record(RecordKind::ActivityCancelled(activity));
        }
        self.cancel_timers(&TimerKey::State(node));
        let info = &W::graph().states[node];
        let succeeded = self.effects.as_deref_mut().and_then(|e| {
            let at = e.succeeded.iter().position(|(s, _)| *s == node)?;
            Some(e.succeeded.remove(at).1)
        });
        if info.compensate.is_some() && (info.invoke.is_none() || succeeded.is_some()) {
            let generation = self.next_generation();
            let done = succeeded.flatten();
            self.fx().completed.push(Completed { node, generation, done });
        }
    }

    fn entered(&mut self, node: usize) {
        let timers: Vec<(usize, Duration)> = self
            .engine
            .watched
            .timers
            .iter()
            .filter(|t| t.0 == node)
            .map(|t| (t.1, t.2))
            .collect();
        for (event, delay) in timers {
            if let Some(event) = W::unit_event(event) {
                self.set_timer(TimerKey::State(node), event, delay);
            }
        }
        if W::graph().states[node].invoke.is_some() {
            let generation = self.next_generation();
            if let Some(stale) = self.take_activity(node).and_then(|running| running.task) {
                stale.abort();
            }
            let effects = self.fx();
            effects.activities.push((node, Running { generation, task: None }));
            effects.pending.push(Pending::Activity(node));
        }
    }

    fn next_generation(&mut self) -> u64 {
        // No overflow: a resumed counter is at most MAX_GENERATION (2^63),
        // and one instance does not start 2^63 activities and timers.
        self.generation += 1;
        self.generation
    }

    /// Starts what the committed step planned (and is still wanted).
    fn launch(&mut self) {
        let Some(effects) = self.effects.as_deref_mut() else {
            return;
        };
        for pending in std::mem::take(&mut effects.pending) {
            match pending {
                Pending::Activity(node) => self.start_activity(node),
                Pending::Timer(key, generation) => self.start_timer(key, generation),
            }
        }
    }

    fn start_activity(&mut self, node: usize) {
        let Some(generation) = self.activity(node).filter(|r| r.task.is_none()).map(|r| r.generation) else {
            return;
        };
        let info = &W::graph().states[node];
        let (Some(machine), Some(state), Some(invoke)) = (&self.machine, W::Node::from_index(node), info.invoke) else {
            return;
        };
        let context = machine.context().clone();
        let handlers = self.engine.handlers.clone();
        let internal = self.mailbox.clone();
        let schedule = Schedule {
            jitter: self.engine.config.jitter,
            deadline: self.engine.config.activity_deadline,
            resource: invoke.resource,
        };
        let key = idempotency_key(&self.id, info.name, generation);
        let activity = invoke.activity;
        let policy = invoke.policy;
        let resource = self.engine.resources.get(node).cloned().flatten();
        let mut job = Job::new(activity).flow(Job::flow_key(&self.id)).priority(self.priority);
        if let Some(expected) = invoke.expected {
            job = job.expected(expected);
        }
        let engine = self.engine.clone();
        // Its attempts' spans belong to the instance's, wherever it is spawned.
        let span = tracing::Span::current();
        // The task, given the permit of its first attempt if it queued for it.
        let task = move |mut first: Option<Permit>| {
            let mut schedule = schedule;
            if let Some(permit) = &first {
                // The overall deadline counts the first wait too.
                schedule.deadline = schedule.deadline.map(|d| d.saturating_sub(permit.queued()));
            }
            async move {
                let report = internal.clone();
                // Each attempt, retries included, queues for a slot anew.
                let admit = || {
                    let first = first.take();
                    let acquire = match first {
                        Some(_) => None,
                        None => resource.as_ref().map(|r| r.acquire(job)),
                    };
                    async move {
                        if let Some(permit) = first {
                            let queued = permit.queued();
                            return Ok((Some(permit), queued));
                        }
                        let Some(acquire) = acquire else {
                            return Ok((None, Duration::ZERO));
                        };
                        let permit = acquire.await.map_err(|e| ActivityError::non_retryable(e.to_string()))?;
                        let queued = permit.queued();
                        Ok((Some(permit), queued))
                    }
                };
                let attempt = |call: ActivityCall| {
                    let (context, handlers) = (&context, &*handlers);
                    async move {
                        match W::attempt(state, context, handlers, call) {
                            Some(future) => future.await,
                            None => Err(ActivityError::non_retryable("the state invokes nothing")),
                        }
                    }
                };
                let observe = |a: Attempt<'_>| {
                    let record = match a {
                        Attempt::Started { attempt, .. } => {
                            if attempt > 1 {
                                Counters::add(&engine.counters.retries);
                            }
                            RecordKind::AttemptStarted { activity, attempt }
                        }
                        Attempt::Ended {
                            attempt,
                            elapsed,
                            error,
                        } => RecordKind::AttemptEnded {
                            activity,
                            attempt,
                            duration: elapsed,
                            error: error.map(RecordedError::from),
                        },
                    };
                    report.push_own_quietly(Internal::Attempt {
                        node,
                        generation,
                        record: Box::new(Record {
                            at: engine.epoch.elapsed(),
                            kind: record,
                        }),
                    });
                };
                let result = activity::run_observed(activity, &policy, &schedule, key, admit, attempt, observe).await;
                internal.push_own(Internal::Outcome {
                    node,
                    generation,
                    result,
                });
            }
            .instrument(span)
        };
        let handle = match self.engine.resources.get(node).and_then(Option::as_ref) {
            None => ActivityTask::Spawned(tokio::spawn(task(None)).abort_handle()),
            Some(queue) => {
                let launch = Arc::new(Launch(Mutex::new(LaunchState::Waiting)));
                let granted = launch.clone();
                let runtime = tokio::runtime::Handle::current();
                let ticket = queue.submit(job, move |permit| {
                    granted.grant(|| runtime.spawn(task(Some(permit))).abort_handle());
                });
                ActivityTask::Queued(launch, ticket)
            }
        };
        if let Some((_, running)) = self.fx().activities.iter_mut().find(|(n, _)| *n == node) {
            running.task = Some(handle);
        }
    }

    /// Plans a timer: it starts once the step is committed.
    fn set_timer(&mut self, key: TimerKey, event: W::Event, delay: Duration) {
        let generation = self.next_generation();
        let name = event_name::<W>(&event);
        let timer = Timer {
            generation,
            deadline: Instant::now() + delay,
            event,
            task: None,
        };
        let effects = self.fx();
        effects.timers.push((key.clone(), timer));
        effects.pending.push(Pending::Timer(key, generation));
        self.record(RecordKind::TimerSet { event: name, delay });
    }

    fn start_timer(&mut self, key: TimerKey, generation: u64) {
        let internal = self.mailbox.clone();
        let Some((_, timer)) = self
            .fx()
            .timers
            .iter_mut()
            .find(|(k, t)| *k == key && t.generation == generation && t.task.is_none())
        else {
            return;
        };
        let deadline = timer.deadline;
        let task = tokio::spawn(async move {
            tokio::time::sleep_until(deadline).await;
            internal.push_own(Internal::Timer { key, generation });
        });
        timer.task = Some(task.abort_handle());
    }

    fn cancel_timers(&mut self, key: &TimerKey) {
        let Some(effects) = self.effects.as_deref_mut() else {
            return;
        };
        effects.timers.retain(|(k, timer)| {
            if k != key {
                return true;
            }
            if let Some(task) = &timer.task {
                task.abort();
            }
            false
        });
    }

    async fn internal(&mut self, message: Internal<W::Event>) {
        match message {
            Internal::Attempt {
                node,
                generation,
                record,
            } => {
                if self.activity(node).is_some_and(|a| a.generation == generation) {
                    self.keep(*record);
                }
            }
            Internal::Outcome {
                node,
                generation,
                result,
            } => {
                if self.activity(node).is_none_or(|a| a.generation != generation) {
                    return; // its state was left meanwhile
                }
                self.take_activity(node);
                let event = match result {
                    Ok(done) => {
                        // Kept for the compensation, which receives its output.
                        let kept = W::graph().states[node].compensate.map(|_| done.clone());
                        self.fx().succeeded.push((node, kept));
                        Some(done)
                    }
                    Err(error) => W::Node::from_index(node).and_then(|n| W::failure_event(n, error)),
                };
                if let Some(event) = event {
                    let _ = self.deliver(event, false).await;
                }
            }
            Internal::Timer { key, generation } => {
                let Some(position) = self
                    .fx()
                    .timers
                    .iter()
                    .position(|(k, t)| *k == key && t.generation == generation)
                else {
                    return;
                };
                let (_, timer) = self.fx().timers.remove(position);
                let name = event_name::<W>(&timer.event);
                self.record(RecordKind::TimerFired(name));
                let _ = self.deliver(timer.event, true).await;
            }
        }
    }

    /// The top-level final state the instance is in, if any: whether it is
    /// a failure.
    fn reached_final(&self) -> Option<bool> {
        let machine = self.machine.as_ref()?;
        self.engine
            .watched
            .finals
            .iter()
            .copied()
            .find(|&(s, _)| W::Node::from_index(s).is_some_and(|n| machine.is_active(n)))
            .map(|(_, failure)| failure)
    }

    /// Whether the instance is at a failure final with completed steps to
    /// undo.
    fn compensation_due(&self) -> bool {
        !self.completed().is_empty() && self.running && self.reached_final() == Some(true)
    }

    /// At a failure final with completed steps to undo: stops everything,
    /// runs their compensations in reverse order, and publishes the
    /// outcome. Abandoned if the engine shuts down meanwhile: the journal
    /// still holds what is left to compensate, for recovery.
    async fn compensate_if_due(&mut self) {
        if !self.compensation_due() {
            return;
        }
        self.stop_all();
        let mut closing = self.engine.closing.subscribe();
        tokio::select! {
            done = self.compensate() => {
                if done.is_err() {
                    return; // the store failed: the instance stopped
                }
            }
            _ = closing.wait_for(|closing| *closing) => return,
        }
        if let Some(machine) = &self.machine {
            Counters::add(&self.engine.counters.failures);
            let state = machine.state();
            self.publish(Status::Finished(state));
        }
    }

    /// Runs the compensations of the completed steps, newest first,
    /// committing each, then the instance's end.
    async fn compensate(&mut self) -> Result<(), EngineError> {
        while let Some(Completed {
            node,
            generation,
            mut done,
        }) = self.fx().completed.pop()
        {
            let (Some(machine), Some(state)) = (&self.machine, W::Node::from_index(node)) else {
                continue;
            };
            let Some(name) = W::graph().states[node].compensate else {
                continue;
            };
            let context = machine.context().clone();
            let handlers = self.engine.handlers.clone();
            let schedule = Schedule {
                jitter: self.engine.config.jitter,
                deadline: None,
                resource: None,
            };
            let key = idempotency_key(&self.id, name, generation);
            let policy = self.engine.config.compensation;
            let mut records = Vec::new();
            let (context, handlers) = (&context, &*handlers);
            // Lent uniquely: `&mut E` is `Send` where `&E` would need `E: Sync`.
            let done = &mut done;
            let result = activity::run_observed(
                name,
                &policy,
                &schedule,
                key,
                activity::admit_at_once,
                move |call| {
                    // Each attempt gets its own copy of the done event.
                    let done = (*done).clone();
                    async move {
                        match W::compensate(state, context, done, handlers, call) {
                            Some(future) => future.await,
                            None => Ok(()),
                        }
                    }
                },
                |a| {
                    records.push(match a {
                        Attempt::Started { attempt, .. } => RecordKind::AttemptStarted {
                            activity: name,
                            attempt,
                        },
                        Attempt::Ended {
                            attempt,
                            elapsed,
                            error,
                        } => RecordKind::AttemptEnded {
                            activity: name,
                            attempt,
                            duration: elapsed,
                            error: error.map(RecordedError::from),
                        },
                    });
                },
            )
            .await;
            for record in records {
                self.record(record);
            }
            Counters::add(&self.engine.counters.compensations);
            let error = result.err();
            self.record(RecordKind::Compensated {
                compensation: name,
                error: error.as_ref().map(RecordedError::from),
            });
            let step = journal::Step::Compensated {
                compensation: name.to_string(),
                kind: error.as_ref().map(ActivityError::kind),
                error: error.map(|e| e.to_string()),
            };
            let open = !self.completed().is_empty();
            let status = if open {
                StatusImage::Running
            } else {
                StatusImage::Finished
            };
            let row = self.row(step, status, open);
            self.commit(row).await?;
        }
        Ok(())
    }

    fn stop_all(&mut self) {
        let Some(effects) = self.effects.as_deref_mut() else {
            return;
        };
        for (_, running) in effects.activities.drain(..) {
            if let Some(task) = running.task {
                task.abort();
            }
        }
        for (_, timer) in effects.timers.drain(..) {
            if let Some(task) = timer.task {
                task.abort();
            }
        }
        effects.pending.clear();
    }

    /// A guard or an action panicked: the instance stops, failed.
    async fn fail(&mut self, reason: String) -> EngineError {
        self.record(RecordKind::Panicked(reason.clone()));
        Counters::add(&self.engine.counters.failures);
        self.stop_all();
        let failed = StatusImage::Failed { reason: reason.clone() };
        let step = journal::Step::Failed { reason: reason.clone() };
        let row = self.row(step, failed, false);
        if let Err(error) = self.commit(row).await {
            return error;
        }
        let state = self.published_state();
        self.publish(Status::Failed {
            state,
            reason: reason.clone(),
        });
        EngineError::InstanceFailed {
            id: self.id.to_string(),
            reason,
        }
    }
}

/// The same for every attempt of one invocation, distinct across
/// instances, states and invocations: the 128-bit FNV-1a hash of the
/// instance's id, the state's (or the compensation's) name and the
/// invocation's generation, strings length-prefixed, numbers as 8
/// little-endian bytes. Stable across processes, platforms and Rust
/// releases (see `fnv`): a call in flight across an upgrade keeps its key.
fn idempotency_key(id: &str, name: &str, generation: u64) -> u128 {
    crate::fnv::Fnv128::new().str(id).str(name).u64(generation).finish()
}

/// The state and context a journal row holds, restored in workflow `W`.
fn restored<W: Machine>(
    id: &str,
    entry: journal::Document<'static, W::Context, W::Event>,
) -> Result<(W::State, W::Context), StoreError> {
    let graph = W::graph();
    let here = entry.active.last().map_or_else(String::new, |s| s.to_string());
    let active = entry
        .active
        .iter()
        .map(|name| graph.state_index(name))
        .collect::<Option<Vec<_>>>();
    let saved = Saved {
        active: active.unwrap_or_default(),
        history: Vec::new(),
    };
    let machine = W::restore(&saved, entry.context).ok_or_else(|| StoreError::DefinitionChanged {
        instance: id.to_string(),
        state: here,
        reason: "its active states are no longer a valid configuration".into(),
    })?;
    Ok((machine.state(), machine.into_context()))
}

/// An event's name, from the graph.
fn event_name<W: Machine>(event: &W::Event) -> &'static str {
    W::graph().events.get(W::event_index(event)).map_or("?", |e| e.name)
}

fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::{Job, Resource, Scheduler};

    /// A scheduler with one resource of one slot, and that resource.
    fn one_slot() -> (Scheduler, Resource) {
        let scheduler = Scheduler::builder().resource("r", 1).build().unwrap();
        let r = scheduler.resource("r").unwrap();
        (scheduler, r)
    }

    fn queued() -> Arc<Launch> {
        Arc::new(Launch(Mutex::new(LaunchState::Waiting)))
    }

    #[tokio::test]
    async fn a_call_cancelled_while_it_waits_leaves_the_queue_and_never_starts() {
        let (_scheduler, r) = one_slot();
        let held = r.acquire(Job::new("a")).await.unwrap();
        let launch = queued();
        let granted = launch.clone();
        let ticket = r.submit(Job::new("b"), move |permit| {
            granted.grant(|| tokio::spawn(async move { drop(permit) }).abort_handle());
        });
        assert!(ticket.is_some() && r.queue_len() == 1);
        ActivityTask::Queued(launch.clone(), ticket).abort();
        assert_eq!((r.queue_len(), r.in_service()), (0, 1));
        drop(held);
        assert_eq!(r.in_service(), 0, "nobody was granted the slot");
        assert!(matches!(*launch.lock(), LaunchState::Cancelled));
    }

    #[tokio::test]
    async fn a_grant_that_arrives_after_the_cancel_passes_the_slot_on() {
        let (_scheduler, r) = one_slot();
        // The grant raced the cancel: the queue already handed the call its
        // permit, and the instance had left the state.
        let launch = queued();
        ActivityTask::Queued(launch.clone(), None).abort();
        let permit = r.acquire(Job::new("b")).await.unwrap();
        assert_eq!(r.in_service(), 1);
        let mut started = false;
        launch.grant(|| {
            started = true;
            drop(permit);
            tokio::spawn(async {}).abort_handle()
        });
        assert!(!started, "a cancelled call does not start");
        assert_eq!(r.in_service(), 0, "its permit was dropped");
    }

    #[tokio::test]
    async fn a_granted_call_is_aborted_on_cancel() {
        let (_scheduler, r) = one_slot();
        let held = r.acquire(Job::new("a")).await.unwrap();
        let launch = queued();
        let granted = launch.clone();
        let (tx, rx) = tokio::sync::oneshot::channel();
        let ticket = r.submit(Job::new("b"), move |permit| {
            granted.grant(|| {
                let task = tokio::spawn(async move {
                    let _permit = permit;
                    std::future::pending::<()>().await;
                });
                let abort = task.abort_handle();
                let _ = tx.send(task);
                abort
            });
        });
        drop(held); // grants the call: its task starts, holding the slot
        let task = rx.await.unwrap();
        assert!(matches!(*launch.lock(), LaunchState::Running(_)));
        ActivityTask::Queued(launch, ticket).abort();
        assert!(task.await.unwrap_err().is_cancelled());
        assert_eq!(r.in_service(), 0, "the aborted call freed its slot");
    }
}
