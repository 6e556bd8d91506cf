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
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{oneshot, watch, Notify};
use tokio::time::Instant;
use tracing::Instrument;

use crate::activity::ActivityError;
use crate::clock::SystemClock;
use crate::graph::{EventKind, Graph, StateKind};
use crate::journal;
use crate::machine::{Machine, Workflow};
use crate::mailbox::{Mailbox, Refused};
use crate::metrics::WorkflowMetrics;
use crate::scheduler::{Resource, Scheduler};
use crate::store::{Store, StoreError};

mod attempts;
mod builder;
mod compensation;
mod config;
mod effects;
mod error;
mod instance;
mod keys;
mod ownership;
mod recovery;
mod retry;
mod status;
mod stored;

use attempts::AttemptLog;
pub use builder::EngineBuilder;
use compensation::Completed;
pub use config::Config;
use effects::Effects;
use effects::{Running, Timer};
pub use error::EngineError;
use instance::{Instance, Origin, Pending, Start};
use keys::idempotency_key;
pub use recovery::Recovery;
pub use status::{Record, RecordKind, RecordedError, Snapshot, Status};
use stored::event_name;

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
    /// Whether the task that takes over other processes' instances runs.
    takeover: AtomicBool,
    /// The store's [`Store::lease_generation`] this engine's copies are of: when the store's
    /// differs, the process registered anew since, and every copy here is of the old id.
    lease_generation: AtomicU64,
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
    retried: AtomicU64,
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
    /// The workflow's name and the codec its rows pass through.
    seal: journal::Seal,
    fingerprint: String,
    encode: journal::Encode<W::Context, W::Event>,
    open: journal::Open<W::Context, W::Event>,
    encode_remote: ownership::EncodeRemote<W::Event>,
    decode_remote: ownership::DecodeRemote<W::Event>,
    /// Set once the workflow's definition is in the store ([`Store::define`]).
    defined: tokio::sync::OnceCell<()>,
}

impl<W: Machine> Durable<W> {
    /// Writes the workflow's definition into the store, once per engine (when it recovers or
    /// first writes), with `now` as its first-seen time if the store has not seen it.
    async fn define(&self, now: u64) -> Result<(), StoreError> {
        self.defined
            .get_or_try_init(|| async {
                let graph = W::graph();
                let definition = crate::store::Definition {
                    workflow: graph.name.to_string(),
                    fingerprint: self.fingerprint.clone(),
                    graph: crate::graph::text::encode(graph),
                    context: std::any::type_name::<W::Context>().to_string(),
                    first_seen: now,
                };
                self.store.define(&definition).await
            })
            .await
            .map(|_| ())
    }
}

impl<W: Machine, H> Shared<W, H> {
    /// A tokio deadline as milliseconds since the Unix epoch.
    fn wall(&self, deadline: Instant) -> u64 {
        self.wall_after(deadline.saturating_duration_since(self.epoch))
    }

    /// A time `since` the engine's epoch (a [`Record::at`]) as milliseconds since the Unix epoch.
    fn wall_after(&self, since: Duration) -> u64 {
        self.wall_epoch
            .saturating_add(u64::try_from(since.as_millis()).unwrap_or(u64::MAX))
    }

    /// A journaled deadline on tokio's clock (the epoch itself if it is
    /// older: the timer fires at once).
    fn instant(&self, wall: u64) -> Instant {
        self.epoch + Duration::from_millis(wall.saturating_sub(self.wall_epoch))
    }
}

/// A started instance whose durable start may still be committing.
struct Launched<W: Machine> {
    id: Arc<str>,
    entry: Entry<W>,
    answer: Option<oneshot::Receiver<Result<(), EngineError>>>,
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
    /// Another process owns the instance now (on a store several processes share): this copy
    /// is dropped, and the engine answers for the instance from the store.
    moved: bool,
    /// The newest row of its journal the copy had committed when it published its status: a
    /// failed copy whose journal has grown since was retried by another process.
    seq: u64,
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
        /// The inbox message it came in, if another process posted it.
        posted: Option<i64>,
    },
    Snapshot(oneshot::Sender<(W::Context, Vec<Record>)>),
    /// A cancellation, and the inbox message it came in, if another process posted it.
    Cancel(oneshot::Sender<()>, Option<i64>),
    /// Resume a failed instance of an engine without a store from its checkpoint.
    Retry(oneshot::Sender<Result<(), EngineError>>),
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
            codec: None,
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
            moved: false,
            seq: 0,
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
            posted: None,
            machine: None,
            checkpoint: None,
        };
        (mailbox, instance)
    }

    /// Instance `id`'s mailbox. A copy that another process took over is dropped from the map
    /// here: the instance is one this engine does not run.
    fn get(&self, id: &str) -> Result<Entry<W>, EngineError> {
        let mut shard = self.shard(id);
        match shard.get(id) {
            Some(entry) if entry.with(|published| published.moved) => {
                shard.remove(id);
                Err(self.missing(id))
            }
            Some(entry) => Ok(entry.clone()),
            None => Err(self.missing(id)),
        }
    }

    /// Drops the copies of instances other processes took over from the map; when the store
    /// says this process's lease expired, or it has registered anew since this engine's copies
    /// were made, every copy (their writes are all refused now), and then it says so.
    pub(super) fn drop_moved(&self) -> bool {
        let lease_lost = self.inner.shared.durable.as_ref().is_some_and(|durable| {
            durable.store.lease_lost()
                || durable.store.lease_generation() != self.inner.lease_generation.load(Ordering::Acquire)
        });
        for shard in &self.inner.shards {
            let mut shard = shard.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            shard.retain(|_, entry| {
                let moved = entry.with(|published| {
                    published.moved |= lease_lost;
                    published.moved
                });
                if moved {
                    entry.close();
                }
                !moved
            });
        }
        lease_lost
    }

    /// Instance `id`'s mailbox, to send it something.
    fn mailbox(&self, id: &str) -> Result<Entry<W>, EngineError> {
        self.check_open()?;
        self.get(id)
    }

    /// Delivers `event` to instance `id`: waits for room in its mailbox, then
    /// for the instance to handle the event, and reports a rejection.
    ///
    /// On a store several processes share, an instance another process owns gets the event
    /// through the store's inbox: `send` returns once the event is stored, and the owner handles
    /// the events each sender sent in the order it sent them (a rejection is then recorded in
    /// the instance's history, not returned).
    pub async fn send(&self, id: &str, event: W::Event) -> Result<(), EngineError> {
        match self.mailbox(id) {
            Err(EngineError::UnknownInstance(_)) if self.shared_store().is_some() => {
                self.post(id, ownership::Remote::Event(&event)).await
            }
            Ok(_) if self.retried_elsewhere(id).await => self.post(id, ownership::Remote::Event(&event)).await,
            _ => self.send_here(id, event, None).await,
        }
    }

    /// [`send`](Self::send) to an instance this engine runs; `posted`: the inbox message the
    /// event came in, removed from the store with the step that applies it.
    async fn send_here(&self, id: &str, event: W::Event, posted: Option<i64>) -> Result<(), EngineError> {
        let mailbox = self.mailbox(id)?;
        let (reply, answer) = oneshot::channel();
        mailbox
            .send(Command::Event {
                event,
                reply: Some(reply),
                posted,
            })
            .await
            .map_err(|_| EngineError::Stopped(id.to_string()))?;
        answer.await.map_err(|_| EngineError::Stopped(id.to_string()))?
    }

    /// Queues `event` for instance `id` without waiting: fails with
    /// [`EngineError::MailboxFull`] if its mailbox is full. A rejection is
    /// recorded in the instance's history.
    ///
    /// It reaches only instances this engine runs: on a store several processes share, an id it
    /// does not run gives [`EngineError::NotHere`] (another process may own it; nothing was
    /// stored), and [`send`](Self::send) is the call that reaches it.
    pub fn try_send(&self, id: &str, event: W::Event) -> Result<(), EngineError> {
        let mailbox = match self.mailbox(id) {
            Err(EngineError::UnknownInstance(_)) if self.shared_store().is_some() => {
                return Err(EngineError::NotHere(id.to_string()))
            }
            found => found?,
        };
        mailbox
            .try_send(Command::Event {
                event,
                reply: None,
                posted: None,
            })
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
    /// [`recover`](Self::recover) resumes it, except on a store several processes share, where
    /// it is read from the store as its owner last committed it.
    pub async fn status(&self, id: &str) -> Result<Status<W::State>, EngineError> {
        match self.get(id).map(|mailbox| mailbox.with(Published::current)) {
            Ok(Status::Failed { .. }) if self.retried_elsewhere(id).await => Ok(self.stored(id, false).await?.status),
            Ok(status) => Ok(status),
            Err(_) => Ok(self.stored(id, false).await?.status),
        }
    }

    /// Instance `id`'s current state (read from the store as
    /// [`status`](Self::status) is).
    pub async fn state(&self, id: &str) -> Result<W::State, EngineError> {
        Ok(*self.status(id).await?.state())
    }

    /// Instance `id`'s status, context and history, once every event queued
    /// before this call has been handled. A durable engine answers for a
    /// finished instance it does not run from the store (as
    /// [`status`](Self::status) does): the history then holds its journal's
    /// steps (starts, transitions, rejected timer events, compensations,
    /// failure, cancellation), each timed zero (records count from this engine's start; the
    /// rows' wall-clock times are in the store, [`Summary::at`](crate::store::Summary::at)).
    pub async fn snapshot(&self, id: &str) -> Result<Snapshot<W>, EngineError> {
        let mailbox = match self.get(id) {
            Ok(mailbox) if !self.retried_elsewhere(id).await => mailbox,
            _ => return self.stored(id, true).await,
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
    /// the store (as [`status`](Self::status) does); on a store several processes share, it
    /// follows an instance another process runs in the store until it finishes.
    pub async fn wait(&self, id: &str) -> Result<W::State, EngineError> {
        let done = match self.status_receiver(id) {
            Ok(mut status) => match status.wait_for(|s| !s.is_running()).await.map(|s| s.clone()) {
                Ok(done) => done,
                // Its copy here was dropped: another process runs it now.
                Err(_) if self.shared_store().is_some() && self.get(id).is_err() => self.wait_stored(id).await?,
                Err(_) => return Err(EngineError::Stopped(id.to_string())),
            },
            Err(_) if self.shared_store().is_some() => self.wait_stored(id).await?,
            Err(_) => self.stored(id, false).await?.status,
        };
        let done = match done {
            Status::Failed { .. } if self.retried_elsewhere(id).await => self.wait_stored(id).await?,
            done => done,
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
    ///
    /// On a store several processes share, an instance another process owns gets the
    /// cancellation through the store's inbox, as [`send`](Self::send) describes: `cancel`
    /// returns once it is stored. So does one whose copy here turns out, as it cancels, to be
    /// owned by another process now (the cancellation was not committed here).
    pub async fn cancel(&self, id: &str) -> Result<(), EngineError> {
        let remote = || self.post(id, ownership::Remote::Cancel);
        match self.mailbox(id) {
            Err(EngineError::UnknownInstance(_)) if self.shared_store().is_some() => remote().await,
            Ok(_) if self.retried_elsewhere(id).await => remote().await,
            _ => match self.cancel_here(id, None).await {
                // The copy was dropped rather than cancelled.
                Err(EngineError::Stopped(_)) if self.shared_store().is_some() && self.get(id).is_err() => {
                    remote().await
                }
                cancelled => cancelled,
            },
        }
    }

    /// [`cancel`](Self::cancel) of an instance this engine runs (`posted`: as for
    /// [`send_here`](Self::send_here)).
    async fn cancel_here(&self, id: &str, posted: Option<i64>) -> Result<(), EngineError> {
        let mailbox = self.mailbox(id)?;
        let (reply, answer) = oneshot::channel();
        mailbox
            .send(Command::Cancel(reply, posted))
            .await
            .map_err(|_| EngineError::Stopped(id.to_string()))?;
        answer.await.map_err(|_| EngineError::Stopped(id.to_string()))
    }

    /// Every instance's id and status.
    pub fn list(&self) -> Vec<(String, Status<W::State>)> {
        let mut all = Vec::new();
        for shard in &self.inner.shards {
            let shard = shard.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            all.extend(shard.iter().filter_map(|(id, mailbox)| {
                mailbox.with(|published| (!published.moved).then(|| (id.to_string(), published.current())))
            }));
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
        if let Some(durable) = &self.inner.shared.durable {
            // Handed back at once: another process takes them over without waiting for the
            // lease to expire. Failing that, the lease expires.
            let _ = durable.store.release(W::graph().name).await;
        }
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
            retried: count(&counters.retried),
            compensations: count(&counters.compensations),
            resources: shared
                .scheduler
                .as_ref()
                .map(|s| s.metrics().resources)
                .unwrap_or_default(),
        }
    }
}
