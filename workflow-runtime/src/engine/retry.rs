//! Resuming a failed instance from its last committed step: [`Engine::retry`].

use tracing::Instrument;

use super::*;
use crate::machine::{Saved, Workflow};
use crate::store::Row;

/// An engine without a store: an instance's machine as it stood before its newest step, what
/// [`Engine::retry`] resumes if that step fails (a durable engine reads its journal instead).
pub(super) struct Checkpoint<W: Machine> {
    saved: Saved,
    context: W::Context,
    /// How many times the instance was retried.
    retried: u32,
}

impl<W: Machine> Checkpoint<W>
where
    W::Context: Clone,
{
    /// Keeps `machine` as it stands, in the box `slot` already holds if any.
    pub(super) fn keep(slot: &mut Option<Box<Self>>, machine: &W) {
        let saved = machine.save();
        let context = machine.context().clone();
        match slot {
            Some(checkpoint) => {
                checkpoint.saved = saved;
                checkpoint.context = context;
            }
            None => {
                *slot = Some(Box::new(Checkpoint {
                    saved,
                    context,
                    retried: 0,
                }))
            }
        }
    }
}

/// The error for retrying an instance whose status is `status`, not failed.
fn not_failed<S>(id: &str, status: &Status<S>) -> EngineError {
    EngineError::NotFailed {
        id: id.to_string(),
        status: match status {
            Status::Running(_) => "running",
            Status::Finished(_) => "finished",
            Status::Cancelled(_) => "cancelled",
            Status::Failed { .. } => "failed",
        },
    }
}

fn first_step(id: &str) -> EngineError {
    EngineError::NotRetryable {
        id: id.to_string(),
        reason: "it failed in its first step, before anything of it was committed".into(),
    }
}

impl<W, H> Engine<W, H>
where
    W: Workflow<H> + Send + 'static,
    W::Context: Clone + Send + Sync + 'static,
    W::Event: Send + 'static,
    H: Send + Sync + 'static,
{
    /// Resumes failed instance `id` from its last committed step: the state it failed in,
    /// with the context it had there, its history states, the activities that were in flight
    /// (started again: a new attempt, counted from 1) and its timers. The step that failed is
    /// not taken again: the event that led to it is not delivered a second time (send it
    /// again if you want it). The retry is journaled as a step of its own
    /// ([`journal::Step::Retried`] with its attempt number, [`RecordKind::Retried`] in the
    /// history) and counted in [`WorkflowMetrics::retried`].
    ///
    /// It applies to the instances whose status is [`Status::Failed`]:
    /// - a guard or an action panicked in a transition (or an activity's outcome led to such
    ///   a transition), or an event led into an eventless loop;
    /// - the store could not commit a step (a durable engine; the instance resumes from the
    ///   newest row the store did commit).
    ///
    /// It does not apply to (and gives [`EngineError::NotFailed`] for) an instance that is
    /// running, one that was cancelled, or one that finished, which includes a workflow that
    /// reached a failure final state by design: an activity that exhausted its retries
    /// delivers its `…Failed` event, and where the workflow goes from there is its own
    /// decision (if the state does not accept that event, the instance stays running). An
    /// instance that failed in its very first step (an entry action of its initial state
    /// panicked) has no committed step to resume from: [`EngineError::NotRetryable`].
    ///
    /// A durable engine resumes from its journal, also an instance that failed before a
    /// restart (which recovery leaves alone). An engine without a store resumes from the
    /// machine it kept before each step if [`Config::checkpoints`] is set (one context clone
    /// per step; off by default, and then its `retry` answers [`EngineError::NotRetryable`]);
    /// its activities start again with a new idempotency generation and its timers with
    /// their full delay, where a durable engine's keep theirs.
    ///
    /// On a store several processes share (the `postgres` feature's `PostgresStore`), a
    /// failed instance runs nowhere (its newest row closed it), and any process may retry it:
    /// the one that ran it, or another, whether that one is alive, paused past its lease or
    /// dead (no need to wait for its lease to expire). It resumes in the process that calls
    /// `retry`, which owns it from then on: the retry's row claims it, under a new fencing
    /// epoch, in the same fenced write as every step. Of concurrent retries, from this process
    /// or others, the journal's next row number lets exactly one in; the others give
    /// [`EngineError::NotFailed`] with status `running`, count no failure and leave nothing
    /// behind. The process that ran it drops its failed copy the next time it answers for the
    /// instance ([`status`](Self::status), [`snapshot`](Self::snapshot), [`wait`](Self::wait),
    /// [`send`](Self::send), [`cancel`](Self::cancel), `retry`; [`list`](Self::list) and
    /// [`metrics`](Self::metrics) count it until then), and from then on reads it from the store
    /// and posts requests to its new owner. A step the store did not commit is not such a
    /// failure: the instance failed in its own process, but its newest row is still open, so
    /// it is running for every other process (their `retry` gives `NotFailed`); its own process
    /// retries it, or, if that process dies, takeover resumes it as any unfinished instance. A
    /// process that lost its lease retries nothing ([`StoreError::Fenced`]) until it has
    /// registered anew ([`Store::rejoin`]).
    ///
    /// ```
    /// # use workflow::prelude::*;
    /// # use workflow::{Engine, EngineError, Status};
    /// workflow! {
    ///     workflow Job {
    ///         initial Waiting;
    ///         events { Go }
    ///         state Waiting { on Go => Done / fragile; }
    ///         final Done;
    ///     }
    /// }
    /// struct Flaky(std::sync::atomic::AtomicBool);
    /// impl JobHandlers for Flaky {
    ///     fn fragile(&self, _: &mut (), _: &Go) {
    ///         // Fails the first time only.
    ///         assert!(self.0.swap(true, std::sync::atomic::Ordering::SeqCst), "not yet");
    ///     }
    /// }
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), EngineError> {
    /// // Without a store, the engine keeps a checkpoint before each step only when told to.
    /// let config = workflow::Config { checkpoints: true, ..Default::default() };
    /// let engine = Engine::<Job, Flaky>::with_config(Flaky(Default::default()), config);
    /// engine.start("J-1", ()).await?;
    /// assert!(engine.send("J-1", JobEvent::Go).await.is_err());
    /// engine.retry("J-1").await?;
    /// assert_eq!(engine.status("J-1").await?, Status::Running(JobState::Waiting));
    /// engine.send("J-1", JobEvent::Go).await?;
    /// assert_eq!(engine.wait("J-1").await?, JobState::Done);
    /// assert_eq!(engine.retry("J-1").await, Err(EngineError::NotFailed { id: "J-1".into(), status: "finished" }));
    /// # Ok(()) }
    /// ```
    pub async fn retry(&self, id: &str) -> Result<(), EngineError> {
        self.check_open()?;
        if let Some(durable) = &self.inner.shared.durable {
            return self.retry_stored(durable, id).await;
        }
        let mailbox = self.get(id)?;
        let status = mailbox.with(Published::current);
        if !matches!(status, Status::Failed { .. }) {
            return Err(not_failed(id, &status));
        }
        let (reply, answer) = oneshot::channel();
        // A failed task that has ended failed in its first step (an engine without a store
        // has nothing of it to keep).
        mailbox.send(Command::Retry(reply)).await.map_err(|_| first_step(id))?;
        answer.await.map_err(|_| first_step(id))?
    }

    /// [`retry`](Self::retry) with a store: the instance is rebuilt from the newest open row of
    /// its journal (the step before the failure), replacing the failed task if this engine
    /// still holds it.
    async fn retry_stored(&self, durable: &Durable<W>, id: &str) -> Result<(), EngineError> {
        let mut here = self.get(id).ok();
        if let Some(entry) = &here {
            let status = entry.with(Published::current);
            if !matches!(status, Status::Failed { .. }) {
                return Err(not_failed(id, &status));
            }
        }
        let rows = durable.store.journal(W::graph().name, id).await?;
        let Some(newest) = rows.last() else {
            return Err(self.missing(id));
        };
        let mut attempt: u32 = 1;
        let mut status = journal::Status::Running;
        for row in &rows {
            let document = (durable.open)(row, &durable.fingerprint, &durable.seal)?;
            if matches!(document.step, journal::Step::Retried { .. }) {
                attempt = attempt.saturating_add(1);
            }
            status = document.status;
        }
        // A failed copy here whose journal has grown since: another process retried it, and
        // runs it (or ran it) now. The copy leaves; the journal tells.
        let shared = self.shared_store().is_some();
        if shared && here.as_ref().is_some_and(|entry| self.outdated(entry, newest.seq)) {
            here = None;
        }
        // Held here, the instance failed (its status says so, and a store error left the
        // newest row open); else its newest row tells.
        if here.is_none() {
            let state = match status {
                journal::Status::Failed { .. } => None,
                journal::Status::Running => Some("running"),
                journal::Status::Finished => Some("finished"),
                _ => Some("cancelled"),
            };
            if let Some(status) = state {
                return Err(EngineError::NotFailed {
                    id: id.to_string(),
                    status,
                });
            }
        }
        let newest_seq = newest.seq;
        let Some(from) = rows.iter().rev().find(|row| row.open) else {
            return Err(first_step(id));
        };
        let from: Row = from.clone();
        let mut instance = self.rebuild(durable, from)?;
        instance.seq = newest_seq;
        // The failed task's history goes on in the new one (in place of "recovered").
        if here.is_some() {
            if let Ok(failed) = self.snapshot(id).await {
                instance.history = failed.history.into();
            }
        }
        {
            let mut shard = self.shard(id);
            self.check_open()?;
            let unchanged = match (shard.get(id), &here) {
                (Some(current), Some(old)) => Arc::ptr_eq(current, old),
                (None, None) => true,
                _ => false,
            };
            if !unchanged {
                // Retried, recovered or started meanwhile.
                return Err(EngineError::NotFailed {
                    id: id.to_string(),
                    status: "running",
                });
            }
            shard.insert(instance.id.clone(), instance.mailbox.clone());
        }
        if let Some(old) = here {
            // The failed task ends once it has answered what its mailbox holds.
            old.close();
        }
        let (reply, answer) = oneshot::channel();
        let span = instance.span();
        tokio::spawn(async move { instance.run(Start::Retried { attempt, reply }).await }.instrument(span));
        match answer.await.map_err(|_| EngineError::Stopped(id.to_string()))? {
            // On a store several processes share, the retry's row is refused when another
            // process wrote that row first: it retried the instance at the same time and runs it
            // (the copy made here has left). Else the refusal is this process's own (its lease
            // expired): that error stands.
            Err(EngineError::Store(StoreError::Fenced { .. }))
                if shared
                    && durable
                        .store
                        .journal(W::graph().name, id)
                        .await
                        .is_ok_and(|rows| rows.last().is_some_and(|row| row.seq > newest_seq)) =>
            {
                Err(EngineError::NotFailed {
                    id: id.to_string(),
                    status: "running",
                })
            }
            retried => retried,
        }
    }
}

impl<W, H> Instance<W, H>
where
    W: Workflow<H> + Send + 'static,
    W::Context: Clone + Send + Sync + 'static,
    W::Event: Send + 'static,
    H: Send + Sync + 'static,
{
    /// A durable instance rebuilt by [`Engine::retry`]: journals the retry, then starts what
    /// its row had in flight.
    pub(super) async fn retried(&mut self, attempt: u32) -> Result<(), EngineError> {
        self.record(RecordKind::Retried { attempt });
        let row = self.row(journal::Step::Retried { attempt }, journal::Status::Running, true);
        self.commit(row).await?;
        // Counted once committed: a retry another process made first is not this one's.
        Counters::add(&self.engine.counters.retried);
        self.launch();
        Ok(())
    }

    /// [`Engine::retry`] of an instance of an engine without a store, in its task: back to
    /// its checkpoint, with the activities and timers of the states it is in started again.
    pub(super) fn retry(&mut self) -> Result<(), EngineError> {
        let status = self.mailbox.with(Published::current);
        if !matches!(status, Status::Failed { .. }) {
            return Err(not_failed(&self.id, &status));
        }
        if !self.engine.config.checkpoints {
            return Err(EngineError::NotRetryable {
                id: self.id.to_string(),
                reason: "the engine has no store and keeps no checkpoints (set `Config::checkpoints`)".into(),
            });
        }
        let Some(checkpoint) = self.checkpoint.as_deref_mut() else {
            return Err(first_step(&self.id));
        };
        checkpoint.retried = checkpoint.retried.saturating_add(1);
        let attempt = checkpoint.retried;
        let machine =
            W::restore(&checkpoint.saved, checkpoint.context.clone()).ok_or_else(|| EngineError::NotRetryable {
                id: self.id.to_string(),
                reason: "its checkpoint is not a configuration of the workflow".into(),
            })?;
        let state = machine.state();
        self.machine = Some(machine);
        // The activities of the states it is in run again: their outcome, if any, was the
        // failed step's.
        if let Some(effects) = self.effects.as_deref_mut() {
            effects.succeeded.clear();
        }
        self.plan(vec![false; self.engine.watched.nodes.len()], false);
        self.launch();
        self.record(RecordKind::Retried { attempt });
        Counters::add(&self.engine.counters.retried);
        self.publish(Status::Running(state));
        Ok(())
    }
}
