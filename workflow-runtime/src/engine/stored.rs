//! Answers about finished instances the engine does not run, from the store.

use std::time::Duration;

use super::*;
use crate::activity::ErrorKind;
use crate::journal::{self, Status as StatusImage};
use crate::machine::{Machine, Saved, Workflow};
use crate::store::StoreError;

impl<W, H> Engine<W, H>
where
    W: Workflow<H> + Send + 'static,
    W::Context: Clone + Send + Sync + 'static,
    W::Event: Send + 'static,
    H: Send + Sync + 'static,
{
    /// A finished durable instance this engine does not run, as its
    /// journal holds it: its newest row's status and context, and with
    /// `history` the steps of every row (timed zero: a record's time counts
    /// from this engine's start, which these rows predate; their wall-clock
    /// times are the rows' [`Summary::at`](crate::store::Summary::at)).
    /// Unknown or unfinished: the error for a missing instance.
    pub(super) async fn stored(&self, id: &str, history: bool) -> Result<Snapshot<W>, EngineError> {
        let Some(durable) = &self.inner.shared.durable else {
            return Err(self.missing(id));
        };
        // An instance recovery could not resume is reported by its error, which reading its
        // journal again (a damaged page, say) would hide behind another.
        if let missing @ EngineError::Store(_) = self.missing(id) {
            return Err(missing);
        }
        let rows = durable.store.journal(W::graph().name, id).await?;
        // Another process may run an unfinished one, on a store several processes share.
        let shared = durable.store.takeover_interval().is_some();
        let Some(newest) = rows.last().filter(|row| !row.open || shared) else {
            return Err(self.missing(id));
        };
        let entry = (durable.open)(newest, &durable.fingerprint, &durable.seal)?;
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
                let entry = (durable.open)(row, &durable.fingerprint, &durable.seal)?;
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
                    journal::Step::Retried { attempt } => RecordKind::Retried { attempt },
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
}

/// The state and context a journal row holds, restored in workflow `W`.
pub(super) fn restored<W: Machine>(
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
pub(super) fn event_name<W: Machine>(event: &W::Event) -> &'static str {
    W::graph().events.get(W::event_index(event)).map_or("?", |e| e.name)
}
