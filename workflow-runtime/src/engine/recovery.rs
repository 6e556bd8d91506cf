//! Resuming unfinished instances from the store.

use std::borrow::Cow;

use tracing::Instrument;

use super::*;
use crate::graph::EventKind;
use crate::machine::{Saved, Workflow};
use crate::store::{Row, StoreError};

/// The largest generation counter a journal row may hold.
pub(super) const MAX_GENERATION: u64 = 1 << 63;

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

impl<W, H> Engine<W, H>
where
    W: Workflow<H> + Send + 'static,
    W::Context: Clone + Send + Sync + 'static,
    W::Event: Send + 'static,
    H: Send + Sync + 'static,
{
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
        durable.define(self.inner.shared.wall(Instant::now())).await?;
        let rows = durable.store.open_rows(W::graph().name).await?;
        let mut report = Recovery::default();
        for row in rows {
            // A row the store could not read comes as its error, by id.
            let resumed = match row {
                Ok(row) if self.get(&row.instance).is_ok() => continue,
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
        self.keep_taking_over(durable);
        Ok(report)
    }

    /// Rebuilds one instance from its newest row and starts its task.
    pub(super) fn resume(&self, durable: &Durable<W>, row: Row) -> Result<(), EngineError> {
        let mut instance = self.rebuild(durable, row)?;
        self.register(&instance.id.clone(), instance.mailbox.clone())?;
        let span = instance.span();
        tokio::spawn(async move { instance.run(Start::Resumed).await }.instrument(span));
        Ok(())
    }

    /// One instance as its newest row left it, not yet registered.
    pub(super) fn rebuild(&self, durable: &Durable<W>, row: Row) -> Result<Instance<W, H>, StoreError> {
        let entry = (durable.open)(&row, &durable.fingerprint, &durable.seal)?;
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
            instance.fx().activities.push((node, Running::new(activity.generation)));
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
