//! Building an engine.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Mutex};

use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::clock::{self, Clock};
use crate::codec::Codec;
use crate::journal;
use crate::machine::{Machine, Workflow};
use crate::scheduler::{Scheduler, SchedulerError};
use crate::store::Store;

use super::*;

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
    pub(super) handlers: H,
    pub(super) config: Config,
    pub(super) durable: Option<Durable<W>>,
    pub(super) codec: Option<Arc<dyn Codec>>,
    pub(super) scheduler: Option<Scheduler>,
    pub(super) clock: Arc<dyn Clock>,
}

impl<W: Machine, H> EngineBuilder<W, H> {
    /// Uses `config` instead of the default.
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// Passes every journal row through `codec` before the store sees it
    /// and after the store reads it, so that the store holds only what the
    /// codec wrote: with `codec::Aead` (feature
    /// `encryption`) nothing of a context, an event or an activity output is
    /// in clear in the store, and a row altered, moved to another instance or
    /// position of its journal, or replayed is refused
    /// ([`StoreError::Corrupt`](crate::StoreError::Corrupt)). Ids, state
    /// names, row numbers and timings stay visible to whoever reads the
    /// store. Without [`store`](Self::store) there are no rows and the codec
    /// is unused.
    ///
    /// Rows written with a key the codec does not have, or without a codec,
    /// are [`StoreError::UnknownKey`](crate::StoreError::UnknownKey) at
    /// [`Engine::recover`] and stay as they are. To rotate keys, make the new
    /// key the active one and keep the old ones beside it
    /// (`codec::Keys`).
    pub fn codec(mut self, codec: Arc<dyn Codec>) -> Self {
        self.codec = Some(codec);
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
            seal: journal::Seal {
                workflow: std::borrow::Cow::Borrowed(W::graph().name),
                codec: None,
            },
            fingerprint: journal::definition::<W>(),
            encode: journal::encode::<W::Context, W::Event>,
            open: journal::open::<W::Context, W::Event>,
            encode_remote: super::ownership::encode_remote::<W::Event>,
            decode_remote: super::ownership::decode_remote::<W::Event>,
            defined: tokio::sync::OnceCell::new(),
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
    pub fn build(mut self) -> Engine<W, H> {
        if let Some(durable) = &mut self.durable {
            durable.seal.codec = self.codec.take();
        }
        let resources = W::graph()
            .states
            .iter()
            .map(|info| {
                let name = info.invoke.and_then(|i| i.resource)?;
                self.scheduler.as_ref()?.resource(name).ok()
            })
            .collect();
        if let Some(durable) = &self.durable {
            durable.store.lease(self.config.lease, self.config.lease_renewal);
        }
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
                takeover: AtomicBool::new(false),
                lease_generation: AtomicU64::new(0),
            }),
        }
    }
}
