//! One instance's task: its loop, its steps and their commits.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::sync::Arc;

use tokio::sync::oneshot;

use super::*;
use crate::chart::{Scheduled, StateEnum};
use crate::journal::{self, ActivityImage, Status as StatusImage, StepImage, TimerImage};
use crate::machine::{Machine, Reason, Workflow};
use crate::mailbox::Next;
use crate::panics;
use crate::store::{Row, StoreError, Summary};

/// How an instance's task begins.
pub(super) enum Start {
    /// A new instance: its initial step runs first, and the sender, if any,
    /// hears whether it was committed.
    Fresh(Option<oneshot::Sender<Result<(), EngineError>>>),
    /// Rebuilt from its journal: what was in flight starts again.
    Resumed,
    /// Rebuilt from its journal by [`Engine::retry`]: the retry is journaled first, and the
    /// sender hears whether it was committed.
    Retried {
        attempt: u32,
        reply: oneshot::Sender<Result<(), EngineError>>,
    },
}

/// One instance's task. Every idle instance holds one of these in its task,
/// so it is kept small: few, small fields, and vectors (a state has few
/// activities and timers) rather than hash maps.
pub(super) struct Instance<W: Machine, H> {
    pub(super) id: Arc<str>,
    pub(super) engine: Arc<Shared<W, H>>,
    pub(super) mailbox: Entry<W>,
    pub(super) machine: Option<W>,
    pub(super) history: VecDeque<Record>,
    /// Made when first needed: many instances never have any.
    pub(super) effects: Option<Box<Effects<W::Event>>>,
    pub(super) generation: u64,
    /// The number of the newest committed row of the instance's journal.
    pub(super) seq: u64,
    /// The priority of its activity calls.
    pub(super) priority: i32,
    /// Whether its published status is `Running`.
    pub(super) running: bool,
    /// The inbox message the request being handled came in (another process posted it): the
    /// first row committed for it removes it from the store's inbox in the same commit.
    pub(super) posted: Option<i64>,
    /// An engine without a store: the machine before its newest step, which
    /// [`Engine::retry`] resumes from if that step fails. (A durable engine
    /// resumes from its journal instead.)
    pub(super) checkpoint: Option<Box<retry::Checkpoint<W>>>,
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

/// A step's journal row (`None` without a store) and the final state it
/// reached, if any (whether a failure).
pub(super) type Prepared = (Result<Option<Row>, StoreError>, Option<bool>);

/// Where an event [`Instance::deliver`] hands the machine comes from.
pub(super) enum Origin<'a> {
    /// A caller's `send` (or another process's, through the store's inbox).
    Request,
    /// A timer: its rejection is journaled too, as the timer is spent.
    Timer,
    /// An activity's outcome, journaled with these attempts (see [`journal::Attempt`]).
    Activity(&'a [journal::Attempt]),
}

/// What a step planned to start once committed.
pub(super) enum Pending {
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
    pub(super) async fn run(&mut self, start: Start) {
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
            Start::Retried { attempt, reply } => {
                let retried = Box::pin(self.retried(attempt)).await;
                let ok = retried.is_ok();
                let _ = reply.send(retried);
                if ok {
                    Box::pin(self.finish_if_final()).await;
                }
            }
        }
        loop {
            if self.compensation_due() {
                Box::pin(self.compensate_if_due()).await;
            }
            let next = self.mailbox.next().await;
            if !Box::pin(self.take(next)).await || self.moved() {
                break;
            }
        }
        self.stop_all();
        // A copy another process took over leaves nothing behind: the engine answers for the
        // instance from the store.
        if self.moved() {
            return;
        }
        if let Some(machine) = &self.machine {
            let left = Box::new((machine.context().clone(), std::mem::take(&mut self.history).into()));
            self.mailbox.with(|published| published.last = Some(left));
        }
    }

    /// Handles what the mailbox gave; `false` when the task is to end.
    pub(super) async fn take(&mut self, next: Next<Command<W>, Internal<W::Event>>) -> bool {
        match next {
            Next::Own(message) => self.internal(message).await,
            Next::Request(Command::Event { event, reply, posted }) => {
                self.posted = posted;
                let result = self.deliver(event, Origin::Request).await;
                self.posted = None;
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
            Next::Request(Command::Cancel(reply, _)) if !self.running => drop(reply),
            Next::Request(Command::Cancel(reply, posted)) => {
                self.posted = posted;
                self.cancel().await;
                if self.moved() {
                    // Not cancelled: the step was not committed, and the instance runs elsewhere.
                    return false;
                }
                let _ = reply.send(());
                return false;
            }
            Next::Request(Command::Retry(reply)) => {
                let _ = reply.send(self.retry());
            }
            // Shut down: the mailbox was closed and is drained.
            Next::Closed => return false,
        }
        true
    }

    /// Cancelled: stops everything, journals it and publishes it.
    pub(super) async fn cancel(&mut self) {
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
    pub(super) fn published_state(&self) -> W::State {
        self.mailbox.with(|published| *published.status.state())
    }

    /// Publishes the instance's status (not any more once the copy was dropped).
    pub(super) fn publish(&mut self, status: Status<W::State>) {
        self.running = status.is_running();
        let seq = self.seq;
        self.mailbox.with(|published| {
            if !published.moved {
                published.set(status);
                published.seq = seq;
            }
        });
    }

    /// Whether this copy was dropped: another process owns the instance now.
    pub(super) fn moved(&self) -> bool {
        self.mailbox.with(|published| published.moved)
    }

    /// Runs the initial entry actions, commits the start, then starts the
    /// initial activities and timers.
    pub(super) async fn begin(&mut self) -> Result<(), EngineError> {
        // Nothing is active before an instance starts. `W::new` already holds
        // the initial configuration, so comparing with it would make the
        // initial states look "already entered" and `settle` would never
        // start their activities and `after` timers.
        let before = vec![false; self.engine.watched.nodes.len()];
        let Some(machine) = self.machine.as_mut() else {
            return Err(EngineError::Stopped(self.id.to_string()));
        };
        let handlers = &*self.engine.handlers;
        let started = panics::catch(|| machine.start(handlers));
        match started {
            Ok(()) => {
                let prepared = self.prepare(before, false, journal::Step::Started, &[]);
                self.settle(prepared).await
            }
            Err(panic) => Err(self.fail(panic_text(&*panic)).await),
        }
    }

    /// The instance's tracing span, parent of its transitions' and
    /// activity attempts' spans.
    pub(super) fn span(&self) -> tracing::Span {
        tracing::info_span!("instance", workflow = W::graph().name, id = %self.id)
    }

    pub(super) fn record(&mut self, kind: RecordKind) {
        self.keep(Record {
            at: self.engine.epoch.elapsed(),
            kind,
        });
    }

    /// Appends `record` to the history, dropping the oldest beyond its
    /// capacity.
    pub(super) fn keep(&mut self, record: Record) {
        if self.history.len() >= self.engine.config.history.max(1) {
            self.history.pop_front();
        }
        self.history.push_back(record);
    }

    /// Which watched states are active.
    pub(super) fn active(&self, machine: &W) -> Vec<bool> {
        self.engine
            .watched
            .nodes
            .iter()
            .map(|&s| W::Node::from_index(s).is_some_and(|n| machine.is_active(n)))
            .collect()
    }

    /// Handles one event and what follows from it.
    pub(super) async fn deliver(&mut self, event: W::Event, origin: Origin<'_>) -> Result<(), EngineError> {
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
        if self.engine.durable.is_none() && self.engine.config.checkpoints {
            retry::Checkpoint::keep(&mut self.checkpoint, machine);
        }
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
        let handled = span.in_scope(|| panics::catch(|| machine.handle(&event, &*handlers)));
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
                if let Origin::Timer = origin {
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
                let attempts = match origin {
                    Origin::Activity(attempts) => attempts,
                    Origin::Request | Origin::Timer => &[],
                };
                let prepared = self.prepare(before, reentered, step, attempts);
                self.settle(prepared).await
            }
        }
    }

    /// After a step: stops what left states had and plans what entered
    /// states need, then gives the step's journal row (encoded now: the step
    /// borrows the event), with the `attempts` of the activity whose outcome it is, and the
    /// final state reached, if any.
    pub(super) fn prepare(
        &mut self,
        before: Vec<bool>,
        reentered: bool,
        step: journal::Step<&W::Event>,
        attempts: &[journal::Attempt],
    ) -> Prepared {
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
        (self.row_with(step, attempts, status, open), reached)
    }

    /// Commits a prepared step, then starts the planned activities and
    /// timers and publishes where the instance stands. A failure final's
    /// compensations run later, once the step is acknowledged (see
    /// [`compensate_if_due`](Self::compensate_if_due)).
    pub(super) async fn settle(&mut self, (row, reached): Prepared) -> Result<(), EngineError> {
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
    pub(super) async fn finish_if_final(&mut self) {
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
    pub(super) fn plan(&mut self, before: Vec<bool>, reentered: bool) {
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
    pub(super) async fn commit(&mut self, row: Result<Option<Row>, StoreError>) -> Result<(), EngineError> {
        let engine = self.engine.clone();
        let error = match (row, &engine.durable) {
            (Ok(None), _) | (_, None) => return Ok(()),
            // Before an instance's first row, the workflow's definition (written once per engine).
            (Ok(Some(row)), Some(durable)) => {
                let name = W::graph().name;
                let posted = self.posted.take();
                let appended = match define_first(durable, self.seq, engine.wall(Instant::now())).await {
                    Err(error) => Err(error),
                    Ok(()) => match posted {
                        Some(message) => durable.store.append_consuming(name, row, message).await,
                        None => durable.store.append(name, row).await,
                    },
                };
                match appended {
                    Ok(()) => {
                        self.seq += 1;
                        return Ok(());
                    }
                    Err(error) => error,
                }
            }
            (Err(error), _) => error,
        };
        if self.seq == 0 {
            // A start the store refused: nothing of the instance exists,
            // so there is nothing to fail (`start` reports the error).
            return Err(EngineError::Store(error));
        }
        if let StoreError::Fenced { .. } = error {
            // Another process owns the instance now: this copy stops and leaves the engine,
            // which reads the instance from the store from now on. Nothing failed.
            self.stop_all();
            self.running = false;
            self.mailbox.with(|published| published.moved = true);
            self.mailbox.close();
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

    /// The next row of the instance's journal (`None` without a store), for a step that is no
    /// call's outcome.
    pub(super) fn row(
        &self,
        step: journal::Step<&W::Event>,
        status: StatusImage,
        open: bool,
    ) -> Result<Option<Row>, StoreError> {
        self.row_with(step, &[], status, open)
    }

    /// The next row of the instance's journal (`None` without a store), journaling the
    /// `attempts` of the activity or compensation whose outcome `step` is.
    pub(super) fn row_with(
        &self,
        step: journal::Step<&W::Event>,
        attempts: &[journal::Attempt],
        status: StatusImage,
        open: bool,
    ) -> Result<Option<Row>, StoreError> {
        let Some(durable) = &self.engine.durable else {
            return Ok(None);
        };
        let status_kind = status.kind();
        let data = self
            .image(durable, step, attempts, status)
            .map_err(|reason| StoreError::Unencodable {
                instance: self.id.to_string(),
                reason,
            })?;
        let summary = Summary {
            at: Some(self.engine.wall(Instant::now())),
            state: self.machine.as_ref().map(|machine| machine.state().to_string()),
            status: Some(status_kind),
        };
        durable.seal.row(&self.id, self.seq + 1, open, data, summary).map(Some)
    }

    /// The journal document of the instance as it stands, after `step`.
    pub(super) fn image(
        &self,
        durable: &Durable<W>,
        step: journal::Step<&W::Event>,
        attempts: &[journal::Attempt],
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
            attempts: Cow::Borrowed(attempts),
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

    /// A guard or an action panicked: the instance stops, failed.
    pub(super) async fn fail(&mut self, reason: String) -> EngineError {
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

async fn define_first<W: Machine>(durable: &Durable<W>, seq: u64, now: u64) -> Result<(), StoreError> {
    if seq > 0 {
        return Ok(());
    }
    durable.define(now).await
}

pub(super) fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    panics::message(payload).unwrap_or("panic").to_string()
}
