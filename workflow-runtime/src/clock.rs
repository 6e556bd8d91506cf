//! The wall clock a durable engine reads, replaceable in tests.
//!
//! Timer deadlines are journaled as wall-clock times, so that a timer set for 48 hours fires 48
//! hours after it was set even if the process was down for part of them. An engine reads the
//! wall clock once, when it is built, and measures everything after that on tokio's clock; a
//! test that injects a [`Clock`] running ahead, and drives tokio's paused clock, can replay
//! "down for 47 hours, then restarted" in milliseconds.
//!
//! ```
//! use std::time::{Duration, SystemTime};
//! use workflow_runtime::clock::{Clock, SystemClock};
//!
//! // A process restarted 47 hours after now, as a test would simulate it.
//! let later = SystemTime::now() + Duration::from_secs(47 * 3600);
//! let restarted = move || later;
//! assert!(restarted.now() > SystemClock.now());
//! ```

use std::time::SystemTime;

/// A source of wall-clock time for an engine (see [`EngineBuilder::clock`]).
///
/// Implemented by [`SystemClock`] (the default) and by every `Fn() -> SystemTime`.
///
/// [`EngineBuilder::clock`]: crate::EngineBuilder::clock
pub trait Clock: Send + Sync + 'static {
    /// The current wall-clock time.
    fn now(&self) -> SystemTime;
}

/// The operating system's clock: [`SystemTime::now`].
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

impl<F: Fn() -> SystemTime + Send + Sync + 'static> Clock for F {
    fn now(&self) -> SystemTime {
        self()
    }
}

/// Milliseconds since the Unix epoch (0 before it, `u64::MAX` past what fits).
pub(crate) fn unix_millis(clock: &dyn Clock) -> u64 {
    clock
        .now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
