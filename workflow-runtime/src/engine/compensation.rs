//! Undoing a failed workflow's completed steps.

use super::*;
use crate::activity::{self, ActivityError, Schedule};
use crate::chart::StateEnum;
use crate::journal::{self, Status as StatusImage};
use crate::machine::Workflow;

/// A compensable state's completed step, to undo if the workflow fails.
pub(super) struct Completed<E> {
    pub(super) node: usize,
    /// Drawn when the step completed: the compensation's idempotency key
    /// is made of it, so each completion of a state (a loop completes it
    /// again) gets its own key, the same after a restart.
    pub(super) generation: u64,
    /// The done event its activity completed with, whose output the
    /// compensation receives; `None` if it invokes nothing.
    pub(super) done: Option<E>,
}

impl<W, H> Instance<W, H>
where
    W: Workflow<H> + Send + 'static,
    W::Context: Clone + Send + Sync + 'static,
    W::Event: Send + 'static,
    H: Send + Sync + 'static,
{
    /// The top-level final state the instance is in, if any: whether it is
    /// a failure.
    pub(super) fn reached_final(&self) -> Option<bool> {
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
    pub(super) fn compensation_due(&self) -> bool {
        !self.completed().is_empty() && self.running && self.reached_final() == Some(true)
    }

    /// At a failure final with completed steps to undo: stops everything,
    /// runs their compensations in reverse order, and publishes the
    /// outcome. Abandoned if the engine shuts down meanwhile: the journal
    /// still holds what is left to compensate, for recovery.
    pub(super) async fn compensate_if_due(&mut self) {
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
    pub(super) async fn compensate(&mut self) -> Result<(), EngineError> {
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
            let mut log = AttemptLog::default();
            let engine = &*self.engine;
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
                    let record = Record {
                        at: engine.epoch.elapsed(),
                        kind: attempts::record(name, a),
                    };
                    log.keep(&record, |at| engine.wall_after(at));
                    records.push(record);
                },
            )
            .await;
            for record in records {
                self.keep(record);
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
            let row = self.row_with(step, log.attempts(), status, open);
            self.commit(row).await?;
        }
        Ok(())
    }
}
