//! The engine: many instances of one workflow on tokio, with their
//! activities, timers and compensations.
//!
//! Each instance is a tokio task that owns its machine and handles what
//! reaches it strictly in order: events from a bounded mailbox (the
//! backpressure of [`Engine::send`] and [`Engine::try_send`]), and the
//! outcomes of its own activities and timers. Activities and timers are tasks
//! of their own, aborted when their state is left. A panic in a guard or an
//! action fails that instance only; a panic in an activity is a failed
//! attempt.

use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::{AbortHandle, JoinHandle};
use tokio::time::Instant;

use crate::activity::{self, ActivityCall, ActivityError, Attempt, RetryPolicy, Schedule};
use crate::chart::{Scheduled, StateEnum};
use crate::graph::{EventKind, Graph, StateKind};
use crate::machine::{Machine, Workflow};

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
    /// The instance failed: a guard or an action panicked.
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
        }
    }
}

impl std::error::Error for EngineError {}

/// Where an instance stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Status<S> {
    /// Running, in this state.
    Running(S),
    /// Reached this final state (after its compensations, for a failure final).
    Finished(S),
    /// A guard or an action panicked in this state; the instance stopped.
    Failed {
        /// The state it was in.
        state: S,
        /// The panic's message.
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
    /// An activity attempt started.
    AttemptStarted {
        /// The activity.
        activity: &'static str,
        /// The attempt's number, from 1.
        attempt: u32,
    },
    /// An activity attempt ended.
    AttemptEnded {
        /// The activity.
        activity: &'static str,
        /// The attempt's number, from 1.
        attempt: u32,
        /// How long it ran.
        duration: Duration,
        /// Its error, if it failed.
        error: Option<String>,
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
        error: Option<String>,
    },
    /// A guard or an action panicked; the instance stopped.
    Panicked(String),
    /// The instance was cancelled.
    Cancelled,
}

/// An instance's state, context and history, as [`Engine::snapshot`] gives them.
#[derive(Clone)]
pub struct Snapshot<W: Machine> {
    /// Where it stands.
    pub status: Status<W::State>,
    /// Its context now.
    pub context: W::Context,
    /// Everything that happened to it, oldest first.
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

/// Settings of an [`Engine`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Config {
    /// Events an instance's mailbox holds before `send` waits and `try_send` fails.
    pub mailbox: usize,
    /// Jitter of activity backoff delays, in `0..=1` (see [`Schedule::jitter`]).
    pub jitter: f64,
    /// Overall limit on each activity invocation, retries included
    /// (schedule-to-close); `None` for none.
    pub activity_deadline: Option<Duration>,
    /// How compensations are retried.
    pub compensation: RetryPolicy,
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
    shared: Arc<Shared<H>>,
    shards: Vec<Mutex<HashMap<String, Entry<W>>>>,
    open: AtomicBool,
}

/// What instance tasks need of their engine. Kept apart from the map of
/// instances, which holds their mailboxes: a task holding the whole engine
/// would keep it alive after the last `Engine` is dropped, and with it every
/// instance.
struct Shared<H> {
    handlers: Arc<H>,
    config: Config,
    epoch: Instant,
    watched: Watched,
}

/// What the engine keeps of an instance.
struct Entry<W: Machine> {
    mailbox: Option<mpsc::Sender<Command<W>>>,
    status: watch::Receiver<Status<W::State>>,
    task: Option<JoinHandle<()>>,
    /// The context and history the task leaves when it ends (cancelled or
    /// shut down), so snapshots keep working.
    last: Last<W>,
}

type Last<W> = Arc<Mutex<Option<(<W as Machine>::Context, Vec<Record>)>>>;

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
    Attempt {
        node: usize,
        generation: u64,
        // Boxed: it would double the size of every message in the queue.
        record: Box<RecordKind>,
    },
    Outcome {
        node: usize,
        generation: u64,
        result: Result<E, ActivityError>,
    },
    Timer {
        key: TimerKey,
        generation: u64,
        event: E,
    },
}

/// An instance's queue of its own activities' and timers' messages.
type OwnQueue<E> = (mpsc::UnboundedSender<Internal<E>>, mpsc::UnboundedReceiver<Internal<E>>);

/// A timer's owner: a state's `after` (cancelled when the state is left), or
/// a `send` id (cancelled by `cancel` or the instance's end).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum TimerKey {
    State(usize),
    Send(&'static str),
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
    /// An engine with the default [`Config`].
    pub fn new(handlers: H) -> Self {
        Self::with_config(handlers, Config::default())
    }

    /// An engine with `config`.
    pub fn with_config(handlers: H, config: Config) -> Self {
        Engine {
            inner: Arc::new(Inner {
                shared: Arc::new(Shared {
                    handlers: Arc::new(handlers),
                    config,
                    epoch: Instant::now(),
                    watched: Watched::new(W::graph()),
                }),
                shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
                open: AtomicBool::new(true),
            }),
        }
    }

    fn shard(&self, id: &str) -> std::sync::MutexGuard<'_, HashMap<String, Entry<W>>> {
        let mut hasher = DefaultHasher::new();
        id.hash(&mut hasher);
        let shard = &self.inner.shards[(hasher.finish() as usize) % SHARDS];
        // A poisoned shard only means another thread panicked while holding
        // it; the map itself is still consistent.
        shard.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn check_open(&self) -> Result<(), EngineError> {
        if self.inner.open.load(Ordering::Acquire) {
            Ok(())
        } else {
            Err(EngineError::ShutDown)
        }
    }

    /// Starts instance `id` with `context`: runs its initial entry actions
    /// and its initial activities and timers.
    pub async fn start(&self, id: impl Into<String>, context: W::Context) -> Result<(), EngineError> {
        self.check_open()?;
        let id = id.into();
        let machine = W::new(context);
        let last: Last<W> = Arc::new(Mutex::new(None));
        let (status_tx, status_rx) = watch::channel(Status::Running(machine.state()));
        let (mailbox_tx, mailbox_rx) = mpsc::channel(self.inner.shared.config.mailbox.max(1));
        {
            let mut shard = self.shard(&id);
            if shard.contains_key(&id) {
                return Err(EngineError::DuplicateId(id));
            }
            shard.insert(
                id.clone(),
                Entry {
                    mailbox: Some(mailbox_tx),
                    status: status_rx,
                    task: None,
                    last: last.clone(),
                },
            );
        }
        let mut instance = Instance {
            last,
            id: id.clone(),
            engine: self.inner.shared.clone(),
            history: Vec::with_capacity(1),
            activities: HashMap::new(),
            timers: HashMap::new(),
            succeeded: Vec::new(),
            completed: Vec::new(),
            generation: 0,
            internal: None,
            status: status_tx,
            machine: None,
        };
        instance.record(RecordKind::Started(machine.state().to_string()));
        // The instance's first steps run in its own task, like all the
        // others: `start` awaits nothing of the workflow's own futures.
        let task = tokio::spawn(async move {
            instance.begin(machine).await;
            instance.run(mailbox_rx).await;
        });
        if let Some(entry) = self.shard(&id).get_mut(&id) {
            entry.task = Some(task);
        }
        Ok(())
    }

    fn mailbox(&self, id: &str) -> Result<mpsc::Sender<Command<W>>, EngineError> {
        self.check_open()?;
        let shard = self.shard(id);
        let entry = shard
            .get(id)
            .ok_or_else(|| EngineError::UnknownInstance(id.to_string()))?;
        entry.mailbox.clone().ok_or(EngineError::ShutDown)
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
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => EngineError::MailboxFull(id.to_string()),
                mpsc::error::TrySendError::Closed(_) => EngineError::Stopped(id.to_string()),
            })
    }

    fn status_receiver(&self, id: &str) -> Result<watch::Receiver<Status<W::State>>, EngineError> {
        let shard = self.shard(id);
        let entry = shard
            .get(id)
            .ok_or_else(|| EngineError::UnknownInstance(id.to_string()))?;
        Ok(entry.status.clone())
    }

    /// The handlers the engine calls.
    pub fn handlers(&self) -> &H {
        &self.inner.shared.handlers
    }

    /// A receiver of instance `id`'s status, updated after every step: await
    /// `changed()` on it to follow the instance.
    pub fn subscribe(&self, id: &str) -> Result<watch::Receiver<Status<W::State>>, EngineError> {
        self.status_receiver(id)
    }

    /// Where instance `id` stands now.
    pub fn status(&self, id: &str) -> Result<Status<W::State>, EngineError> {
        Ok(self.status_receiver(id)?.borrow().clone())
    }

    /// Instance `id`'s current state.
    pub fn state(&self, id: &str) -> Result<W::State, EngineError> {
        Ok(*self.status(id)?.state())
    }

    /// Instance `id`'s status, context and history, once every event queued
    /// before this call has been handled.
    pub async fn snapshot(&self, id: &str) -> Result<Snapshot<W>, EngineError> {
        let (status, mailbox, last) = {
            let shard = self.shard(id);
            let entry = shard
                .get(id)
                .ok_or_else(|| EngineError::UnknownInstance(id.to_string()))?;
            (entry.status.clone(), entry.mailbox.clone(), entry.last.clone())
        };
        let mut asked = None;
        if let Some(mailbox) = mailbox {
            let (reply, answer) = oneshot::channel();
            if mailbox.send(Command::Snapshot(reply)).await.is_ok() {
                asked = answer.await.ok();
            }
        }
        // A task that has ended left its context and history behind.
        let left = || last.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone();
        let (context, history) = asked
            .or_else(left)
            .ok_or_else(|| EngineError::Stopped(id.to_string()))?;
        let status = status.borrow().clone();
        Ok(Snapshot {
            status,
            context,
            history,
        })
    }

    /// Waits until instance `id` reaches a final state, and gives it.
    pub async fn wait(&self, id: &str) -> Result<W::State, EngineError> {
        let mut status = self.status_receiver(id)?;
        let done = status
            .wait_for(|s| !s.is_running())
            .await
            .map(|s| s.clone())
            .map_err(|_| EngineError::Stopped(id.to_string()))?;
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
                    .map(|(id, entry)| (id.clone(), entry.status.borrow().clone())),
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
        let mut tasks = Vec::new();
        for shard in &self.inner.shards {
            let mut shard = shard.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            for entry in shard.values_mut() {
                entry.mailbox = None;
                tasks.extend(entry.task.take());
            }
        }
        for task in tasks {
            let _ = task.await;
        }
    }
}

/// One instance's task.
struct Instance<W: Machine, H> {
    last: Last<W>,
    id: String,
    engine: Arc<Shared<H>>,
    machine: Option<W>,
    history: Vec<Record>,
    /// Running activities by state: their generation and task.
    activities: HashMap<usize, (u64, AbortHandle)>,
    timers: HashMap<TimerKey, Vec<(u64, AbortHandle)>>,
    /// States whose activity completed while they were active.
    succeeded: Vec<usize>,
    /// Compensable states whose step completed, in order.
    completed: Vec<usize>,
    generation: u64,
    /// The queue of the instance's own activities and timers, made on first
    /// use: an idle instance without either needs none.
    internal: Option<OwnQueue<W::Event>>,
    status: watch::Sender<Status<W::State>>,
}

impl<W, H> Instance<W, H>
where
    W: Workflow<H> + Send + 'static,
    W::Context: Clone + Send + Sync + 'static,
    W::Event: Send + 'static,
    H: Send + Sync + 'static,
{
    async fn run(mut self, mut mailbox: mpsc::Receiver<Command<W>>) {
        loop {
            let own = async {
                match &mut self.internal {
                    Some((_, receiver)) => receiver.recv().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                biased;
                Some(message) = own => self.internal(message).await,
                command = mailbox.recv() => match command {
                    Some(Command::Event { event, reply }) => {
                        let result = self.deliver(event).await;
                        if let Some(reply) = reply {
                            let _ = reply.send(result);
                        }
                    }
                    Some(Command::Snapshot(reply)) => {
                        if let Some(machine) = &self.machine {
                            let _ = reply.send((machine.context().clone(), self.history.clone()));
                        }
                    }
                    // A finished or failed instance keeps its outcome (and
                    // its task, for snapshots): dropping the reply makes
                    // `cancel` report `Stopped`, as `send` does.
                    Some(Command::Cancel(reply)) if !self.status.borrow().is_running() => drop(reply),
                    Some(Command::Cancel(reply)) => {
                        self.record(RecordKind::Cancelled);
                        self.stop_all();
                        let state = *self.status.borrow().state();
                        self.status.send_replace(Status::Cancelled(state));
                        let _ = reply.send(());
                        break;
                    }
                    // Shut down: the mailbox was closed and is drained.
                    None => break,
                },
            }
        }
        self.stop_all();
        if let Some(machine) = &self.machine {
            let left = (machine.context().clone(), std::mem::take(&mut self.history));
            *self.last.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(left);
        }
    }

    /// Runs the initial entry actions, then starts the initial activities and timers.
    async fn begin(&mut self, mut machine: W) {
        // Nothing is active before an instance starts. `W::new` already holds
        // the initial configuration, so comparing with it would make the
        // initial states look "already entered" and `settle` would never
        // start their activities and `after` timers.
        let before = vec![false; self.engine.watched.nodes.len()];
        let started = catch_unwind(AssertUnwindSafe(|| machine.start(&*self.engine.handlers)));
        self.machine = Some(machine);
        match started {
            Ok(()) => self.settle(before, false).await,
            Err(panic) => self.fail(panic_text(&*panic)),
        }
    }

    fn record(&mut self, kind: RecordKind) {
        let at = self.engine.epoch.elapsed();
        self.history.push(Record { at, kind });
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

    /// Handles one event and what follows from it.
    async fn deliver(&mut self, event: W::Event) -> Result<(), EngineError> {
        if !self.status.borrow().is_running() {
            // Nothing accepted is dropped silently: the history says so.
            let state = self.status.borrow().state().to_string();
            self.record(RecordKind::Rejected {
                state,
                event: event_name::<W>(&event),
            });
            return Err(EngineError::Stopped(self.id.clone()));
        }
        let Some(machine) = self.machine.as_ref() else {
            return Err(EngineError::Stopped(self.id.clone()));
        };
        let name = event_name::<W>(&event);
        let handlers = self.engine.handlers.clone();
        let before_state = machine.state();
        let flat = !W::graph().is_hierarchical();
        let before = self.active(machine);
        let Some(machine) = self.machine.as_mut() else {
            return Err(EngineError::Stopped(self.id.clone()));
        };
        match catch_unwind(AssertUnwindSafe(|| machine.handle(&event, &*handlers))) {
            Err(panic) => {
                let reason = panic_text(&*panic);
                self.fail(reason.clone());
                Err(EngineError::InstanceFailed {
                    id: self.id.clone(),
                    reason,
                })
            }
            Ok(Err(rejected)) => {
                let state = rejected.state.to_string();
                self.record(RecordKind::Rejected {
                    state: state.clone(),
                    event: rejected.event,
                });
                Err(EngineError::Rejected {
                    id: self.id.clone(),
                    state,
                    event: rejected.event,
                })
            }
            Ok(Ok(step)) => {
                let to = step.to.to_string();
                self.record(RecordKind::Transition {
                    from: before_state.to_string(),
                    event: name,
                    to,
                });
                // A flat self-transition exits and re-enters its state.
                let reentered = flat && step.exited && step.from == step.to;
                self.settle(before, reentered).await;
                Ok(())
            }
        }
    }

    /// After a step: stops what left states had, starts what entered states
    /// need, takes the timers `send` asked for, and finishes the instance at
    /// a final state.
    async fn settle(&mut self, before: Vec<bool>, reentered: bool) {
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
                Scheduled::Send { id, event, delay } => self.set_timer(TimerKey::Send(id), event, delay),
                Scheduled::Cancel { id } => self.cancel_timers(&TimerKey::Send(id)),
            }
        }
        self.finish_if_final().await;
    }

    fn left(&mut self, node: usize) {
        if let Some((_, task)) = self.activities.remove(&node) {
            task.abort();
            let activity = W::graph().states[node].invoke.map_or("?", |i| i.activity);
            self.record(RecordKind::ActivityCancelled(activity));
        }
        self.cancel_timers(&TimerKey::State(node));
        let info = &W::graph().states[node];
        let done = info.invoke.is_none() || self.succeeded.contains(&node);
        if info.compensate.is_some() && done {
            self.completed.push(node);
        }
        self.succeeded.retain(|&s| s != node);
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
            self.start_activity(node);
        }
    }

    /// A sender to the instance's own queue, made on first use.
    fn sender(&mut self) -> mpsc::UnboundedSender<Internal<W::Event>> {
        self.internal.get_or_insert_with(mpsc::unbounded_channel).0.clone()
    }

    fn next_generation(&mut self) -> u64 {
        self.generation += 1;
        self.generation
    }

    fn start_activity(&mut self, node: usize) {
        let (Some(machine), Some(state), Some(invoke)) =
            (&self.machine, W::Node::from_index(node), W::graph().states[node].invoke)
        else {
            return;
        };
        let context = machine.context().clone();
        let generation = self.next_generation();
        let handlers = self.engine.handlers.clone();
        let internal = self.sender();
        let schedule = Schedule {
            jitter: self.engine.config.jitter,
            deadline: self.engine.config.activity_deadline,
        };
        let key = idempotency_key(&self.id, node, generation);
        let activity = invoke.activity;
        let policy = invoke.policy;
        let task = tokio::spawn(async move {
            let report = internal.clone();
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
                    Attempt::Started { attempt } => RecordKind::AttemptStarted { activity, attempt },
                    Attempt::Ended {
                        attempt,
                        elapsed,
                        error,
                    } => RecordKind::AttemptEnded {
                        activity,
                        attempt,
                        duration: elapsed,
                        error: error.map(ToString::to_string),
                    },
                };
                let _ = report.send(Internal::Attempt {
                    node,
                    generation,
                    record: Box::new(record),
                });
            };
            let result = activity::run_observed(activity, &policy, &schedule, key, attempt, observe).await;
            let _ = internal.send(Internal::Outcome {
                node,
                generation,
                result,
            });
        });
        self.activities.insert(node, (generation, task.abort_handle()));
    }

    fn set_timer(&mut self, key: TimerKey, event: W::Event, delay: Duration) {
        let generation = self.next_generation();
        let name = event_name::<W>(&event);
        let internal = self.sender();
        let timer_key = key.clone();
        let task = tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let _ = internal.send(Internal::Timer {
                key: timer_key,
                generation,
                event,
            });
        });
        self.timers
            .entry(key)
            .or_default()
            .push((generation, task.abort_handle()));
        self.record(RecordKind::TimerSet { event: name, delay });
    }

    fn cancel_timers(&mut self, key: &TimerKey) {
        for (_, task) in self.timers.remove(key).unwrap_or_default() {
            task.abort();
        }
    }

    async fn internal(&mut self, message: Internal<W::Event>) {
        match message {
            Internal::Attempt {
                node,
                generation,
                record,
            } => {
                if self.activities.get(&node).is_some_and(|a| a.0 == generation) {
                    self.record(*record);
                }
            }
            Internal::Outcome {
                node,
                generation,
                result,
            } => {
                if self.activities.get(&node).is_none_or(|a| a.0 != generation) {
                    return; // its state was left meanwhile
                }
                self.activities.remove(&node);
                let event = match result {
                    Ok(done) => {
                        self.succeeded.push(node);
                        Some(done)
                    }
                    Err(error) => W::Node::from_index(node).and_then(|n| W::failure_event(n, error)),
                };
                if let Some(event) = event {
                    let _ = self.deliver(event).await;
                }
            }
            Internal::Timer { key, generation, event } => {
                let Some(list) = self.timers.get_mut(&key) else { return };
                let Some(position) = list.iter().position(|t| t.0 == generation) else {
                    return;
                };
                list.remove(position);
                let name = event_name::<W>(&event);
                self.record(RecordKind::TimerFired(name));
                let _ = self.deliver(event).await;
            }
        }
    }

    /// At a top-level final state: runs the compensations of a failure final
    /// in reverse order, stops everything, and publishes the outcome.
    async fn finish_if_final(&mut self) {
        let Some(machine) = &self.machine else { return };
        let reached = self
            .engine
            .watched
            .finals
            .iter()
            .copied()
            .find(|&(s, _)| W::Node::from_index(s).is_some_and(|n| machine.is_active(n)));
        let Some((_, failure)) = reached else {
            // Publish only a change: most steps of a busy instance keep
            // nobody waiting, and an unchanged status needs no wake-up.
            let state = machine.state();
            self.status.send_if_modified(|status| {
                let changed = *status != Status::Running(state);
                if changed {
                    *status = Status::Running(state);
                }
                changed
            });
            return;
        };
        self.stop_all();
        if failure {
            // Boxed: this rare path would otherwise size every idle
            // instance's task future.
            Box::pin(self.compensate()).await;
        }
        if let Some(machine) = &self.machine {
            self.status.send_replace(Status::Finished(machine.state()));
        }
    }

    async fn compensate(&mut self) {
        let completed = std::mem::take(&mut self.completed);
        for node in completed.into_iter().rev() {
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
            };
            let key = idempotency_key(&self.id, node, u64::MAX);
            let policy = self.engine.config.compensation;
            let mut records = Vec::new();
            let result = activity::run_observed(
                name,
                &policy,
                &schedule,
                key,
                |call| {
                    let (context, handlers) = (&context, &*handlers);
                    async move {
                        match W::compensate(state, context, handlers, call) {
                            Some(future) => future.await,
                            None => Ok(()),
                        }
                    }
                },
                |a| {
                    if let Attempt::Ended {
                        attempt,
                        elapsed,
                        error,
                    } = a
                    {
                        records.push(RecordKind::AttemptEnded {
                            activity: name,
                            attempt,
                            duration: elapsed,
                            error: error.map(ToString::to_string),
                        });
                    }
                },
            )
            .await;
            for record in records {
                self.record(record);
            }
            self.record(RecordKind::Compensated {
                compensation: name,
                error: result.err().map(|e| e.to_string()),
            });
        }
    }

    fn stop_all(&mut self) {
        for (_, (_, task)) in self.activities.drain() {
            task.abort();
        }
        for (_, list) in self.timers.drain() {
            list.into_iter().for_each(|(_, task)| task.abort());
        }
    }

    fn fail(&mut self, reason: String) {
        self.record(RecordKind::Panicked(reason.clone()));
        self.stop_all();
        let state = *self.status.borrow().state();
        self.status.send_replace(Status::Failed { state, reason });
    }
}

/// The same for every attempt of one invocation, distinct across
/// instances, states and invocations.
fn idempotency_key(id: &str, node: usize, generation: u64) -> u128 {
    let mut a = DefaultHasher::new();
    (id, node, generation).hash(&mut a);
    let mut b = DefaultHasher::new();
    (generation, node, id).hash(&mut b);
    (u128::from(a.finish()) << 64) | u128::from(b.finish())
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
