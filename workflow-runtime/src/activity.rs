//! Activities: the retry policy a block declares, the error type activities
//! return, and [`run`], which carries out one activity call under its policy.

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tracing::Instrument;

/// How an activity is retried and timed out: `retry N backoff MIN..MAX; timeout D;`.
///
/// `retry 3` means up to three retries after the first attempt, four attempts in
/// all. The delay before retry `n` (1-based) is `initial_interval * 2^(n-1)`,
/// capped at `max_interval`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (at least 1).
    pub max_attempts: u32,
    /// Delay before the first retry.
    pub initial_interval: Duration,
    /// Largest delay between two attempts.
    pub max_interval: Duration,
    /// Limit on each attempt (start-to-close); `None` lets an attempt run forever.
    pub timeout: Option<Duration>,
}

impl RetryPolicy {
    /// One attempt, no timeout: what an `invoke` without `retry` or `timeout` gets.
    pub const ONCE: RetryPolicy = RetryPolicy {
        max_attempts: 1,
        initial_interval: Duration::from_secs(1),
        max_interval: Duration::from_secs(100),
        timeout: None,
    };

    /// The delay before retry number `retry` (1 for the first retry).
    pub fn backoff(&self, retry: u32) -> Duration {
        let factor = 1u32.checked_shl(retry.saturating_sub(1)).unwrap_or(u32::MAX);
        self.initial_interval.saturating_mul(factor).min(self.max_interval)
    }
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self::ONCE
    }
}

/// Identifies one call of an activity, lent to the handler method
/// (`call: &ActivityCall`; it is `Copy`, so `*call` keeps one).
///
/// Lent rather than given: an `async fn` keeps its arguments in its future,
/// and a reference is 8 bytes where the call is 48.
///
/// What a handler sees:
/// - under the [`Engine`](crate::Engine): `attempt` counts 1, 2, 3... across the retries of one
///   invocation, and `key` is the invocation's stable idempotency key;
/// - on a machine driven by hand (`run_activity`): an activity without `retry` is lent a
///   constant call (attempt 1, key 0), so awaiting it builds nothing; with `retry`, each
///   attempt is lent its own call (attempt 1, 2, 3..., key 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ActivityCall {
    /// The activity's name.
    pub activity: &'static str,
    /// Which attempt this is, from 1.
    pub attempt: u32,
    /// The same for every attempt of one invocation, so a service can
    /// deduplicate retried requests. Zero when the machine is driven by hand.
    /// An engine computes it with a specified hash (128-bit FNV-1a of the
    /// instance's id, the state's or compensation's name and the
    /// invocation's number), so it is the same after a restart, on another
    /// platform or with another Rust release.
    pub key: u128,
}

/// Why an activity failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum ErrorKind {
    /// The activity returned an error; it may be retried.
    Failed,
    /// The activity returned an error marked non-retryable.
    NonRetryable,
    /// An attempt ran past its `timeout`.
    TimedOut,
    /// An attempt panicked.
    Panicked,
}

impl ErrorKind {
    /// Its name in snake case, as journal rows, tracing spans and the inspector write it:
    /// `failed`, `non_retryable`, `timed_out`, `panicked`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Failed => "failed",
            ErrorKind::NonRetryable => "non_retryable",
            ErrorKind::TimedOut => "timed_out",
            ErrorKind::Panicked => "panicked",
        }
    }
}

/// The error an activity returns, or the runtime reports for it.
///
/// Any `std::error::Error` converts into it, so `?` works inside an activity.
/// Like `anyhow::Error`, it does not itself implement `std::error::Error`
/// (that would conflict with the blanket conversion).
///
/// ```
/// use workflow_runtime::ActivityError;
///
/// fn parse(text: &str) -> Result<u32, ActivityError> {
///     Ok(text.parse::<u32>()?)
/// }
/// assert_eq!(parse("x").unwrap_err().to_string(), "invalid digit found in string");
/// assert!(ActivityError::non_retryable("card declined").kind() == workflow_runtime::ErrorKind::NonRetryable);
/// ```
///
/// It is one pointer wide (its details live on the heap, as `anyhow`'s do),
/// so a `Result<T, ActivityError>` comes back from an activity in registers
/// and the generated `…Failed(ActivityError)` event variants do not widen a
/// workflow's event enum or hide its tag in a niche.
#[derive(Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize), serde(transparent))]
pub struct ActivityError {
    details: Box<Details>,
}

/// What an [`ActivityError`] carries; serialized as the error itself.
#[derive(Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
struct Details {
    kind: ErrorKind,
    message: String,
    attempts: u32,
}

impl ActivityError {
    /// A failure that may be retried.
    pub fn new(message: impl Into<String>) -> Self {
        Self::with_kind(ErrorKind::Failed, message)
    }

    /// A failure that retrying cannot mend: the policy stops at once.
    pub fn non_retryable(message: impl Into<String>) -> Self {
        Self::with_kind(ErrorKind::NonRetryable, message)
    }

    fn with_kind(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            details: Box::new(Details {
                kind,
                message: message.into(),
                attempts: 0,
            }),
        }
    }

    /// Why the activity failed.
    pub fn kind(&self) -> ErrorKind {
        self.details.kind
    }

    /// The error's message.
    pub fn message(&self) -> &str {
        &self.details.message
    }

    /// How many attempts were made before giving up (0 if the error did not
    /// come from [`run`]).
    pub fn attempts(&self) -> u32 {
        self.details.attempts
    }

    /// Whether another attempt could succeed.
    pub fn is_retryable(&self) -> bool {
        self.details.kind != ErrorKind::NonRetryable
    }
}

impl<E: std::error::Error + Send + Sync + 'static> From<E> for ActivityError {
    fn from(error: E) -> Self {
        Self::new(error.to_string())
    }
}

impl fmt::Display for ActivityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.details.message)
    }
}

impl fmt::Debug for ActivityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ActivityError")
            .field("kind", &self.details.kind)
            .field("message", &self.details.message)
            .field("attempts", &self.details.attempts)
            .finish()
    }
}

/// Runs one activity invocation under `policy`: each attempt is timed out,
/// a panic counts as a failed attempt, and failures are retried with
/// exponential backoff until the attempts run out or an error is
/// non-retryable.
///
/// Timeouts and backoff sleep on tokio's clock, so a policy with either needs
/// a runtime with time enabled (and tests can pause it).
///
/// ```
/// use workflow_runtime::{activity, ActivityError, RetryPolicy};
/// use std::time::Duration;
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
/// let policy = RetryPolicy { max_attempts: 3, ..RetryPolicy::ONCE };
/// let result: Result<u32, _> = activity::run("flaky", &policy, 7, |call| async move {
///     if call.attempt < 3 { Err(ActivityError::new("busy")) } else { Ok(call.attempt) }
/// })
/// .await;
/// assert_eq!(result.unwrap(), 3);
/// # }
/// ```
pub async fn run<T, F, Fut>(
    activity: &'static str,
    policy: &RetryPolicy,
    key: u128,
    attempt: F,
) -> Result<T, ActivityError>
where
    F: FnMut(ActivityCall) -> Fut,
    Fut: Future<Output = Result<T, ActivityError>>,
{
    run_observed(
        activity,
        policy,
        &Schedule::default(),
        key,
        admit_at_once,
        attempt,
        |_| {},
    )
    .await
}

/// The admission of [`run_observed`] for an activity that needs no
/// resource: at once, holding nothing.
pub async fn admit_at_once() -> Result<((), Duration), ActivityError> {
    Ok(((), Duration::ZERO))
}

/// Runs a single attempt of an activity, with no retry and no timeout: what
/// an `invoke` without `retry` or `timeout` gets when a machine is driven by
/// hand. A panic in the attempt is caught and becomes an
/// [`ErrorKind::Panicked`] error. Unlike [`run`], it needs no tokio timer and
/// keeps no backoff state, so it costs next to nothing over awaiting the
/// attempt itself.
///
/// The attempt is the activity's future, already called with its
/// [`ActivityCall`]; a generated `run_activity` passes a constant one
/// (attempt 1, key 0), so the future holds a pointer rather than the call.
///
/// ```
/// use workflow_runtime::{activity, ActivityCall, ActivityError, ErrorKind};
///
/// async fn pay(call: &ActivityCall) -> Result<u32, ActivityError> {
///     if call.key == 0 { panic!("no key") } else { Ok(call.attempt) }
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let call = ActivityCall { activity: "pay", attempt: 1, key: 7 };
/// assert_eq!(activity::once(pay(&call)).await.unwrap(), 1);
/// let unkeyed = ActivityCall { key: 0, ..call };
/// let error = activity::once(pay(&unkeyed)).await.unwrap_err();
/// assert_eq!((error.kind(), error.attempts()), (ErrorKind::Panicked, 1));
/// # }
/// ```
pub fn once<T, Fut>(attempt: Fut) -> Once<Fut>
where
    Fut: Future<Output = Result<T, ActivityError>>,
{
    Once {
        inner: CatchUnwind { future: attempt },
    }
}

pin_project_lite::pin_project! {
    /// The future of [`once`].
    pub struct Once<F> {
        #[pin]
        inner: CatchUnwind<F>,
    }
}

impl<T, F: Future<Output = Result<T, ActivityError>>> Future for Once<F> {
    type Output = Result<T, ActivityError>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.project().inner.poll(cx).map(|outcome| {
            outcome.map_err(|mut error| {
                error.details.attempts = 1;
                error
            })
        })
    }
}

pin_project_lite::pin_project! {
    /// One of two futures with the same output. A flat workflow's
    /// `run_activity` returns these nested, one arm per state that invokes
    /// an activity: picking the state's activity then happens in the call,
    /// with no `async` state machine of its own around the activity's.
    #[project = EitherProj]
    #[allow(missing_docs)] // pin_project_lite takes no docs on variant fields
    pub enum Either<A, B> {
        /// The first future.
        Left {
            #[pin]
            future: A,
        },
        /// The second future.
        Right {
            #[pin]
            future: B,
        },
    }
}

impl<A: Future, B: Future<Output = A::Output>> Future for Either<A, B> {
    type Output = A::Output;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            EitherProj::Left { future } => future.poll(cx),
            EitherProj::Right { future } => future.poll(cx),
        }
    }
}

/// The future a generated `run_activity` returns for a state that invokes
/// nothing: ready at once with `None`, and again if polled again (it holds
/// nothing, unlike `core::future::ready`, which must guard a second poll).
#[derive(Clone, Copy, Debug, Default)]
pub struct Idle<T>(PhantomData<fn() -> T>);

impl<T> Idle<T> {
    /// The idle future.
    pub const fn new() -> Self {
        Self(PhantomData)
    }
}

impl<T> Future for Idle<T> {
    type Output = Option<T>;

    #[inline]
    fn poll(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Option<T>> {
        Poll::Ready(None)
    }
}

/// `future` with its output passed through `map`: how a generated
/// `run_activity` turns an activity's outcome into its done or failed event.
pub fn map<F: Future, T, G: FnMut(F::Output) -> T>(future: F, map: G) -> Map<F, G> {
    Map { future, map }
}

pin_project_lite::pin_project! {
    /// The future of [`map`].
    pub struct Map<F, G> {
        #[pin]
        future: F,
        map: G,
    }
}

impl<F: Future, T, G: FnMut(F::Output) -> T> Future for Map<F, G> {
    type Output = T;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        let this = self.project();
        this.future.poll(cx).map(this.map)
    }
}

pin_project_lite::pin_project! {
    /// Polls `future`, turning a panic in any poll into an
    /// [`ErrorKind::Panicked`] error.
    struct CatchUnwind<F> {
        #[pin]
        future: F,
    }
}

impl<T, F: Future<Output = Result<T, ActivityError>>> Future for CatchUnwind<F> {
    type Output = Result<T, ActivityError>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let future = self.project().future;
        match crate::panics::catch(|| future.poll(cx)) {
            Ok(poll) => poll,
            Err(payload) => Poll::Ready(Err(panicked(payload))),
        }
    }
}

/// The error for a panic caught in an activity. Out of line and cold, so
/// that the landing pad in each activity's `poll` is one call: the poll stays
/// small enough for the caller to inline.
#[cold]
#[inline(never)]
fn panicked(payload: Box<dyn Any + Send>) -> ActivityError {
    ActivityError::with_kind(ErrorKind::Panicked, panic_message(&*payload))
}

fn panic_message(payload: &(dyn Any + Send)) -> String {
    let text = crate::panics::message(payload).unwrap_or("(no message)");
    format!("activity panicked: {text}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn policy(max_attempts: u32, timeout: Option<Duration>) -> RetryPolicy {
        RetryPolicy {
            max_attempts,
            initial_interval: Duration::from_millis(100),
            max_interval: Duration::from_millis(250),
            timeout,
        }
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let p = policy(10, None);
        let delays: Vec<u128> = (1..=4).map(|n| p.backoff(n).as_millis()).collect();
        assert_eq!(delays, [100, 200, 250, 250]);
        assert_eq!(p.backoff(u32::MAX), Duration::from_millis(250));
    }

    #[tokio::test(start_paused = true)]
    async fn retries_with_backoff_then_gives_up() {
        let start = tokio::time::Instant::now();
        let calls = AtomicU32::new(0);
        let result: Result<(), _> = run("pay", &policy(3, None), 9, |call| {
            calls.fetch_add(1, Ordering::SeqCst);
            assert_eq!((call.activity, call.key), ("pay", 9));
            async { Err(ActivityError::new("down")) }
        })
        .await;
        let error = result.unwrap_err();
        assert_eq!(
            (error.kind(), error.attempts(), error.message()),
            (ErrorKind::Failed, 3, "down")
        );
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        assert_eq!(start.elapsed(), Duration::from_millis(300));
    }

    #[tokio::test(start_paused = true)]
    async fn non_retryable_errors_stop_at_once() {
        let calls = AtomicU32::new(0);
        let result: Result<(), _> = run("pay", &policy(5, None), 0, |_| {
            calls.fetch_add(1, Ordering::SeqCst);
            async { Err(ActivityError::non_retryable("declined")) }
        })
        .await;
        assert_eq!(result.unwrap_err().kind(), ErrorKind::NonRetryable);
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_hanging_attempt_times_out() {
        let result: Result<(), _> = run("ship", &policy(2, Some(Duration::from_secs(1))), 0, |_| {
            std::future::pending()
        })
        .await;
        let error = result.unwrap_err();
        assert_eq!((error.kind(), error.attempts()), (ErrorKind::TimedOut, 2));
        assert!(error.message().contains("timed out after 1s"), "{error}");
    }

    #[tokio::test]
    async fn once_runs_one_attempt_and_catches_panics() {
        let ok: Result<u32, _> = once(async { Ok(15) }).await;
        assert_eq!(ok.unwrap(), 15);
        let failed: Result<(), _> = once(async { Err(ActivityError::new("down")) }).await;
        assert_eq!(failed.unwrap_err().attempts(), 1);
        let panicked: Result<(), _> = once(async { panic!("boom") }).await;
        let error = panicked.unwrap_err();
        assert_eq!(
            (error.kind(), error.message(), error.attempts()),
            (ErrorKind::Panicked, "activity panicked: boom", 1)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_panic_is_a_failed_attempt() {
        let result: Result<u8, _> = run("boom", &policy(2, None), 0, |call| async move {
            if call.attempt == 1 {
                panic!("first attempt explodes");
            }
            Ok(call.attempt as u8)
        })
        .await;
        assert_eq!(result.unwrap(), 2);
        let result: Result<u8, _> = run("boom", &RetryPolicy::ONCE, 0, |_| async { panic!("always") }).await;
        let error = result.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Panicked);
        assert_eq!(error.message(), "activity panicked: always");
    }
}

/// What [`run_observed`] reports about each attempt, as it happens.
#[derive(Debug)]
pub enum Attempt<'a> {
    /// Attempt number `attempt` (from 1) started, after waiting `queued`
    /// for its resource.
    Started {
        /// The attempt's number.
        attempt: u32,
        /// How long it waited to be admitted.
        queued: Duration,
    },
    /// Attempt number `attempt` ended after `elapsed`.
    Ended {
        /// The attempt's number.
        attempt: u32,
        /// How long it ran.
        elapsed: Duration,
        /// Its error, if it failed.
        error: Option<&'a ActivityError>,
    },
}

/// How [`run_observed`] goes beyond the declared policy: the engine's jitter
/// and the activity's overall deadline.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Schedule {
    /// Each backoff delay is scaled by a factor drawn in `1 ± jitter`
    /// (0 for exact delays), from the call's key and attempt number, so the
    /// same invocation always waits the same.
    pub jitter: f64,
    /// Limit on the whole invocation, retries and backoff included
    /// (schedule-to-close). `None` for no limit.
    pub deadline: Option<Duration>,
    /// The resource the attempts queue on, for their tracing spans.
    pub resource: Option<&'static str>,
}

impl Schedule {
    /// The delay before retry `retry` of the call with `key`.
    pub fn backoff(&self, policy: &RetryPolicy, key: u128, retry: u32) -> Duration {
        let base = policy.backoff(retry);
        if self.jitter <= 0.0 {
            return base;
        }
        // splitmix64 of (key, retry): a fraction in [0, 1).
        let mut x = (key as u64) ^ ((key >> 64) as u64) ^ u64::from(retry).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        let fraction = ((x ^ (x >> 31)) >> 11) as f64 / (1u64 << 53) as f64;
        base.mul_f64((1.0 + self.jitter.min(1.0) * (2.0 * fraction - 1.0)).max(0.0))
    }
}

/// [`run`] with jitter, an overall deadline, admission to a resource and a
/// report of every attempt: what the engine runs each activity with.
///
/// Before each attempt, `admit` waits for a slot of the activity's resource
/// and gives what holds it (dropped when the attempt ends) with the time it
/// waited; its error ends the invocation. The per-attempt `timeout` counts
/// from admission; the overall deadline counts the waits too. Each attempt
/// runs in a `tracing` span `activity_attempt` with the fields `activity`,
/// `attempt`, `resource`, `queued_us` (the wait, in microseconds) and
/// `outcome` (`ok`, or the [`ErrorKind`] in snake case).
pub async fn run_observed<T, F, Fut, A, AFut, P>(
    activity: &'static str,
    policy: &RetryPolicy,
    schedule: &Schedule,
    key: u128,
    mut admit: A,
    mut attempt: F,
    mut observe: impl FnMut(Attempt<'_>),
) -> Result<T, ActivityError>
where
    F: FnMut(ActivityCall) -> Fut,
    Fut: Future<Output = Result<T, ActivityError>>,
    A: FnMut() -> AFut,
    AFut: Future<Output = Result<(P, Duration), ActivityError>>,
{
    let start = tokio::time::Instant::now();
    let remaining = || schedule.deadline.map(|d| d.saturating_sub(start.elapsed()));
    let mut number = 1;
    loop {
        let call = ActivityCall {
            activity,
            attempt: number,
            key,
        };
        let (permit, queued) = admit().await?;
        observe(Attempt::Started {
            attempt: number,
            queued,
        });
        let span = tracing::info_span!(
            "activity_attempt",
            activity,
            attempt = number,
            resource = schedule.resource.unwrap_or(""),
            queued_us = u64::try_from(queued.as_micros()).unwrap_or(u64::MAX),
            outcome = tracing::field::Empty,
        );
        let began = tokio::time::Instant::now();
        let limit = match (policy.timeout, remaining()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let future = CatchUnwind { future: attempt(call) }.instrument(span.clone());
        let outcome = match limit {
            None => future.await,
            Some(limit) => match tokio::time::timeout(limit, future).await {
                Ok(outcome) => outcome,
                Err(_) => Err(ActivityError::with_kind(
                    ErrorKind::TimedOut,
                    format!("attempt {number} of `{activity}` timed out after {limit:?}"),
                )),
            },
        };
        drop(permit);
        span.record(
            "outcome",
            match &outcome {
                Ok(_) => "ok",
                Err(error) => error.kind().as_str(),
            },
        );
        observe(Attempt::Ended {
            attempt: number,
            elapsed: began.elapsed(),
            error: outcome.as_ref().err(),
        });
        let mut error = match outcome {
            Ok(value) => return Ok(value),
            Err(error) => error,
        };
        let delay = schedule.backoff(policy, key, number);
        let past_deadline = remaining().is_some_and(|left| left <= delay);
        if !error.is_retryable() || number >= policy.max_attempts || past_deadline {
            error.details.attempts = number;
            return Err(error);
        }
        tokio::time::sleep(delay).await;
        number += 1;
    }
}
