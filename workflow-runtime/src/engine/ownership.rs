//! Instances other processes own, on a store several processes share: requests that reach them
//! through the store's inbox, answers read from the store, and taking over the instances of
//! processes whose lease expired.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::*;
use crate::machine::Workflow;
use crate::store::Posted;

/// What one process asks of an instance another owns, queued in the store's inbox.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(super) enum Remote<E> {
    Event(E),
    Cancel,
}

/// Encodes a [`Remote`] for the inbox (where the serde bounds are known).
pub(super) type EncodeRemote<E> = fn(&Remote<&E>) -> Result<Vec<u8>, String>;
/// Decodes a [`Remote`] from the inbox.
pub(super) type DecodeRemote<E> = fn(&[u8]) -> Result<Remote<E>, String>;

pub(super) fn encode_remote<E: Serialize>(message: &Remote<&E>) -> Result<Vec<u8>, String> {
    serde_json::to_vec(message).map_err(|error| error.to_string())
}

pub(super) fn decode_remote<E: DeserializeOwned>(data: &[u8]) -> Result<Remote<E>, String> {
    serde_json::from_slice(data).map_err(|error| error.to_string())
}

impl<W, H> Engine<W, H>
where
    W: Workflow<H> + Send + 'static,
    W::Context: Clone + Send + Sync + 'static,
    W::Event: Send + 'static,
    H: Send + Sync + 'static,
{
    /// The engine's store, if several processes share it.
    pub(super) fn shared_store(&self) -> Option<&Durable<W>> {
        self.inner
            .shared
            .durable
            .as_ref()
            .filter(|durable| durable.store.takeover_interval().is_some())
    }

    /// On a store several processes share, whether instance `id`'s copy here failed and another
    /// process has retried it since ([`retry`](Self::retry) resumes a failed instance in the
    /// process that calls it): then the copy leaves, as one another process took over does, and
    /// the engine answers for the instance from the store. Only a failed copy costs a read of
    /// the journal; one that cannot be read keeps the copy.
    pub(super) async fn retried_elsewhere(&self, id: &str) -> bool {
        let Some(durable) = self.shared_store() else {
            return false;
        };
        let Ok(entry) = self.get(id) else {
            return false;
        };
        if !entry.with(|published| matches!(published.status, Status::Failed { .. })) {
            return false;
        }
        match durable.store.journal(W::graph().name, id).await {
            Ok(rows) => self.outdated(&entry, rows.last().map_or(0, |row| row.seq)),
            Err(_) => false,
        }
    }

    /// Drops `entry`, a copy of an instance whose journal's newest row is `newest`, if it is a
    /// failed copy that knew fewer rows (another process retried the instance since); whether it
    /// did.
    pub(super) fn outdated(&self, entry: &Entry<W>, newest: u64) -> bool {
        let outdated = entry.with(|published| {
            published.moved |= matches!(published.status, Status::Failed { .. }) && newest > published.seq;
            published.moved
        });
        if outdated {
            entry.close();
        }
        outdated
    }

    /// Queues `message` for instance `id`, which another process owns: `Ok` once the store has
    /// it.
    pub(super) async fn post(&self, id: &str, message: Remote<&W::Event>) -> Result<(), EngineError> {
        self.check_open()?;
        let Some(durable) = self.shared_store() else {
            return Err(self.missing(id));
        };
        let data = (durable.encode_remote)(&message).map_err(|reason| StoreError::Unencodable {
            instance: id.to_string(),
            reason,
        })?;
        match durable.store.post(W::graph().name, id, data).await? {
            Posted::Accepted => Ok(()),
            Posted::Finished => Err(EngineError::Stopped(id.to_string())),
            Posted::Unknown => Err(self.missing(id)),
        }
    }

    /// The final status of instance `id`, which another process runs, read from the store as
    /// it changes.
    pub(super) async fn wait_stored(&self, id: &str) -> Result<Status<W::State>, EngineError> {
        let every = self
            .shared_store()
            .and_then(|durable| durable.store.takeover_interval())
            .unwrap_or_default()
            .max(Duration::from_millis(10));
        loop {
            let status = self.stored(id, false).await?.status;
            if !status.is_running() {
                return Ok(status);
            }
            // It may have come to this process meanwhile (its owner died).
            if let Ok(mut status) = self.status_receiver(id) {
                let done = status.wait_for(|s| !s.is_running()).await.map(|s| s.clone());
                return done.map_err(|_| EngineError::Stopped(id.to_string()));
            }
            tokio::time::sleep(every).await;
        }
    }

    /// On a store several processes share, starts (once) the task that, at every
    /// [`Store::takeover_interval`](crate::Store::takeover_interval), drops the copies of
    /// instances others took over (every copy once the process's lease is lost, after which the
    /// process registers anew: [`Store::rejoin`](crate::Store::rejoin)) and takes over the
    /// instances of processes whose lease expired (by recovering again), and at those times and
    /// whenever something is posted to the inbox, hands this process's instances the messages
    /// other processes posted them. It holds the engine weakly and ends with it or at `shutdown`.
    pub(super) fn keep_taking_over(&self, durable: &Durable<W>) {
        let Some(every) = durable.store.takeover_interval() else {
            return;
        };
        if self.inner.takeover.swap(true, Ordering::AcqRel) {
            return;
        }
        let mut posted = durable.store.posted();
        let engine = Arc::downgrade(&self.inner);
        tokio::spawn(async move {
            let mut due = tokio::time::Instant::now() + every;
            loop {
                // A notification hands over what was posted at once; the takeover pass keeps its
                // own pace, however many notifications come.
                let (notified, closed) = match &mut posted {
                    Some(posted) => {
                        tokio::select! {
                            _ = tokio::time::sleep_until(due) => (false, false),
                            changed = posted.changed() => (true, changed.is_err()),
                        }
                    }
                    None => {
                        tokio::time::sleep_until(due).await;
                        (false, false)
                    }
                };
                if closed {
                    // The store stopped listening: the takeover pass reads the inbox too.
                    posted = None;
                }
                let Some(inner) = engine.upgrade() else {
                    return;
                };
                let engine = Engine { inner };
                if engine.check_open().is_err() {
                    return;
                }
                if !notified || tokio::time::Instant::now() >= due {
                    due = tokio::time::Instant::now() + every;
                    // Copies of instances others took over leave (all of them once the lease is
                    // lost, and then the process registers anew).
                    if engine.drop_moved() {
                        engine.rejoin().await;
                    }
                    if let Err(error) = engine.recover().await {
                        tracing::warn!(%error, "taking over instances failed");
                    }
                }
                if let Err(error) = engine.deliver_posted().await {
                    tracing::warn!(%error, "reading the inbox failed");
                }
            }
        });
    }

    /// After the store lost the process's lease (or registered anew for another engine over it)
    /// and every copy was dropped: waits for the copies' steps in flight to end (each is refused,
    /// or committed under the old id before the loss), then has the store register the process
    /// anew if no engine has yet, and let this workflow's appends through. Only then may one of
    /// them be written as the new id, so no copy from before the loss ever is; the takeover pass
    /// that follows takes over the old id's instances, as any dead process's, under new epochs.
    async fn rejoin(&self) {
        let Some(durable) = self.shared_store() else {
            return;
        };
        // Every copy was dropped and its mailbox closed: each task ends after its step in
        // flight. (A start meanwhile is refused, as the lease is lost, and ends too.)
        self.inner.shared.live.until_none().await;
        match durable.store.rejoin(W::graph().name).await {
            Ok(generation) => self.inner.lease_generation.store(generation, Ordering::Release),
            Err(error) => tracing::warn!(%error, "registering anew after the lease expired failed; trying again"),
        }
    }

    /// Hands this process's instances what other processes posted them, in the order it was
    /// posted (each handled before the next). A message leaves the inbox with the step that
    /// applied it, in the same commit (exactly once); one that committed nothing (a rejected
    /// event, an instance that has finished or is not here, a message that does not decode) is
    /// removed afterwards, if this process still owns its instance.
    async fn deliver_posted(&self) -> Result<(), EngineError> {
        let Some(durable) = self.shared_store() else {
            return Ok(());
        };
        let messages = durable.store.inbox(W::graph().name).await?;
        if messages.is_empty() {
            return Ok(());
        }
        let mut handled = Vec::with_capacity(messages.len());
        for message in messages {
            let delivered = match (durable.decode_remote)(&message.data) {
                // A rejection is the instance's business (recorded in its history).
                Ok(Remote::Event(event)) => self.send_here(&message.instance, event, Some(message.id)).await,
                Ok(Remote::Cancel) => self.cancel_here(&message.instance, Some(message.id)).await,
                Err(reason) => {
                    tracing::warn!(instance = %message.instance, %reason, "a posted message does not decode; dropped");
                    Ok(())
                }
            };
            // Shut down meanwhile: the rest is the next owner's.
            if delivered == Err(EngineError::ShutDown) {
                break;
            }
            handled.push(message.id);
        }
        durable.store.acknowledge(handled).await?;
        Ok(())
    }
}
