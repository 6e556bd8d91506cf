//! An instance's activities and timers.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::task::AbortHandle;
use tokio::time::Instant;
use tracing::Instrument;

use super::*;
use crate::activity::{self, ActivityCall, ActivityError, Attempt, Schedule};
use crate::chart::StateEnum;
use crate::machine::Workflow;
use crate::scheduler::{Job, Permit, Submitted};

/// What an instance has going on besides its machine.
pub(super) struct Effects<E> {
    /// Activities by state: running, or planned until the step commits.
    pub(super) activities: Vec<(usize, Running)>,
    /// Pending timers by owner, in the order they were set.
    pub(super) timers: Vec<(TimerKey, Timer<E>)>,
    /// Activities and timers a step planned, started once it is committed.
    pub(super) pending: Vec<Pending>,
    /// States whose activity completed while they were active, with the
    /// done event if the state is compensable (its compensation receives
    /// the output).
    pub(super) succeeded: Vec<(usize, Option<E>)>,
    /// Compensable states whose step completed, in order.
    pub(super) completed: Vec<Completed<E>>,
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

/// An activity of an active state: its generation, its task once started, and what its outcome's
/// row is to journal of its attempts (kept as their records come in).
pub(super) struct Running {
    pub(super) generation: u64,
    pub(super) task: Option<ActivityTask>,
    pub(super) log: AttemptLog,
}

impl Running {
    /// The activity of `generation`, planned.
    pub(super) fn new(generation: u64) -> Self {
        Running {
            generation,
            task: None,
            log: AttemptLog::default(),
        }
    }
}

/// An activity's task, or its place in its resource's queue: a call that
/// must wait for a slot gets its task only once granted, so that no parked
/// task sits in the queue.
pub(super) enum ActivityTask {
    Spawned(AbortHandle),
    Queued(Arc<Launch>, Option<Submitted>),
}

impl ActivityTask {
    pub(super) fn abort(self) {
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
pub(super) struct Launch(Mutex<LaunchState>);

pub(super) enum LaunchState {
    Waiting,
    Running(AbortHandle),
    /// Its state was left: a grant passes the slot on.
    Cancelled,
}

impl Launch {
    pub(super) fn lock(&self) -> std::sync::MutexGuard<'_, LaunchState> {
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The call's slot was granted: `start` spawns its task, unless the
    /// call was cancelled meanwhile; then `start` is dropped unrun, with
    /// the permit it holds, which passes the slot on (after the lock is
    /// released: a parameter outlives the guard).
    pub(super) fn grant(&self, start: impl FnOnce() -> AbortHandle) {
        let mut state = self.lock();
        if matches!(*state, LaunchState::Waiting) {
            *state = LaunchState::Running(start());
        }
    }
}

/// A pending timer: what it delivers and when, and its task once started.
pub(super) struct Timer<E> {
    pub(super) generation: u64,
    pub(super) deadline: Instant,
    pub(super) event: E,
    pub(super) task: Option<AbortHandle>,
}

impl<W, H> Instance<W, H>
where
    W: Workflow<H> + Send + 'static,
    W::Context: Clone + Send + Sync + 'static,
    W::Event: Send + 'static,
    H: Send + Sync + 'static,
{
    /// The instance's effects, made on first use.
    pub(super) fn fx(&mut self) -> &mut Effects<W::Event> {
        self.effects.get_or_insert_with(Box::default)
    }

    /// The compensable states whose step completed, in order.
    pub(super) fn completed(&self) -> &[Completed<W::Event>] {
        self.effects.as_deref().map_or(&[], |e| &e.completed)
    }

    /// `node`'s activity, if it has one running or planned.
    pub(super) fn activity(&self, node: usize) -> Option<&Running> {
        let effects = self.effects.as_deref()?;
        effects
            .activities
            .iter()
            .find(|(n, _)| *n == node)
            .map(|(_, running)| running)
    }

    pub(super) fn take_activity(&mut self, node: usize) -> Option<Running> {
        let activities = &mut self.effects.as_deref_mut()?.activities;
        let at = activities.iter().position(|(n, _)| *n == node)?;
        Some(activities.remove(at).1)
    }

    pub(super) fn left(&mut self, node: usize) {
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

    pub(super) fn entered(&mut self, node: usize) {
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
            effects.activities.push((node, Running::new(generation)));
            effects.pending.push(Pending::Activity(node));
        }
    }

    pub(super) fn next_generation(&mut self) -> u64 {
        // No overflow: a resumed counter is at most MAX_GENERATION (2^63),
        // and one instance does not start 2^63 activities and timers.
        self.generation += 1;
        self.generation
    }

    /// Starts what the committed step planned (and is still wanted).
    pub(super) fn launch(&mut self) {
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

    pub(super) fn start_activity(&mut self, node: usize) {
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
                    if let Attempt::Started { attempt: 2.., .. } = a {
                        Counters::add(&engine.counters.retries);
                    }
                    report.push_own_quietly(Internal::Attempt {
                        node,
                        generation,
                        record: Box::new(Record {
                            at: engine.epoch.elapsed(),
                            kind: attempts::record(activity, a),
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
    pub(super) fn set_timer(&mut self, key: TimerKey, event: W::Event, delay: Duration) {
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

    pub(super) fn start_timer(&mut self, key: TimerKey, generation: u64) {
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

    pub(super) fn cancel_timers(&mut self, key: &TimerKey) {
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

    pub(super) async fn internal(&mut self, message: Internal<W::Event>) {
        match message {
            Internal::Attempt {
                node,
                generation,
                record,
            } => {
                let engine = &self.engine;
                let running = self.effects.as_deref_mut().and_then(|effects| {
                    effects
                        .activities
                        .iter_mut()
                        .find(|(n, running)| *n == node && running.generation == generation)
                });
                if let Some((_, running)) = running {
                    running.log.keep(&record, |at| engine.wall_after(at));
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
                let Some(Running { log, .. }) = self.take_activity(node) else {
                    return;
                };
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
                    let _ = self.deliver(event, Origin::Activity(log.attempts())).await;
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
                let _ = self.deliver(timer.event, Origin::Timer).await;
            }
        }
    }

    pub(super) fn stop_all(&mut self) {
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
