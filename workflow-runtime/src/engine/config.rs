//! An engine's settings.

use std::time::Duration;

use crate::activity::RetryPolicy;

/// Settings of an [`Engine`](super::Engine). Every field has a default ([`Config::default`]); change the ones
/// you need with struct update syntax:
///
/// ```
/// use std::time::Duration;
/// use workflow::Config;
///
/// // Backoff delays exactly as the workflow declares them, and a 30 s cap on every activity.
/// let config = Config { jitter: 0.0, activity_deadline: Some(Duration::from_secs(30)), ..Config::default() };
/// assert_eq!(config.mailbox, 64);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Config {
    /// Events an instance's mailbox holds before `send` waits and `try_send` fails.
    ///
    /// Default: `64`.
    pub mailbox: usize,
    /// Jitter of activity backoff delays, in `0..=1` (see [`Schedule::jitter`](crate::activity::Schedule::jitter)): each delay is
    /// drawn from `delay * (1 - jitter) ..= delay * (1 + jitter)`, so that many instances failing
    /// together do not retry in lockstep.
    ///
    /// Default: `0.1`, so delays differ from the declared `backoff` by up to 10%; set `0.0` for
    /// exactly the declared delays.
    pub jitter: f64,
    /// Overall limit on each activity invocation, retries included
    /// (schedule-to-close); `None` for none.
    ///
    /// Default: `None` (each attempt is still bounded by the workflow's `timeout`, if declared).
    pub activity_deadline: Option<Duration>,
    /// How compensations are retried.
    ///
    /// Default: at most 3 attempts in all, backoff from 100 ms doubling up to 10 s, no
    /// per-attempt timeout. A compensation that still fails is recorded and the next one runs.
    pub compensation: RetryPolicy,
    /// How many history records an instance keeps in memory (the oldest go
    /// first): a long-lived instance's memory stays bounded. A durable
    /// engine's journal keeps every step.
    ///
    /// Default: `256`.
    pub history: usize,
    /// On a store several processes share ([`PostgresStore`](crate::store)): how long this
    /// process owns its instances after its last lease renewal. Once it expires (the process died,
    /// paused or lost the database), another process takes its instances over, and nothing this
    /// one writes for them commits; once it finds out, it drops its copies and registers anew
    /// under a new process id, and serves again. Ignored by stores one process owns.
    ///
    /// Default: 1.5 s, so a dead process's instances run again elsewhere within 2 s.
    pub lease: Duration,
    /// How often the lease is renewed: a fraction of [`lease`](Self::lease), so that a renewal
    /// or two may be late without losing it. Engines that have recovered once look for
    /// instances to take over twice as often.
    ///
    /// Default: 0.5 s.
    pub lease_renewal: Duration,
    /// Whether an engine without a store keeps each instance's machine as it stood before its
    /// newest step, so that [`Engine::retry`](super::Engine::retry) can resume a failed instance
    /// from there: one context clone per step. A durable engine resumes from its journal and
    /// ignores this.
    ///
    /// Default: `false`, so the in-memory engine's steps cost nothing for a retry that may never
    /// come; its `retry` then answers [`EngineError::NotRetryable`](crate::EngineError::NotRetryable).
    pub checkpoints: bool,
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
            history: 256,
            lease: Duration::from_millis(1500),
            lease_renewal: Duration::from_millis(500),
            checkpoints: false,
        }
    }
}
