//! The engine's activities: retries with exact backoff, jitter, per-attempt
//! timeouts, panics, non-retryable errors, exhaustion, the overall deadline,
//! and cancellation when the state is left.
//!
//! Every test runs on tokio's paused clock, so times are exact.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{exact, ms, rec, transition, Order, OrderCtx, OrderEvent, OrderState, Services, SubmitOrder};
use tokio::time::Instant;
use workflow::activity::Schedule;
use workflow::prelude::*;
use workflow::{Config, Engine, Record, RecordKind, RecordedError, Status};

/// What a job instance keeps of its activity's outcome.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct JobCtx {
    pub output: Option<u32>,
    /// The final error: its kind, how many attempts were made, its message.
    pub error: Option<(ErrorKind, u32, String)>,
}

workflow! {
    /// One activity under three policies, picked by the first event.
    pub workflow Job {
        context JobCtx;
        initial Idle;
        events { Retry, Time, Limit }

        state Idle {
            on Retry => Retrying;
            on Time => Timed;
            on Limit => Limited;
        }
        // 4 attempts; backoff 100ms, 200ms, 400ms; no per-attempt timeout.
        state Retrying {
            invoke flaky -> u32 {
                retry 3 backoff 100ms..1s;
                done => Done / keep_output;
                error => Gave / keep_error;
            }
        }
        // 2 attempts of at most 1s each, 500ms apart.
        state Timed {
            invoke timed -> u32 {
                retry 1 backoff 500ms..500ms;
                timeout 1s;
                done => Done / keep_output;
                error => Gave / keep_error;
            }
        }
        // 11 attempts 300ms apart: only the engine's deadline stops it early.
        state Limited {
            invoke limited -> u32 {
                retry 10 backoff 300ms..300ms;
                done => Done / keep_output;
                error => Gave / keep_error;
            }
        }
        final Done;
        final Gave;
    }
}

workflow! {
    /// What `retry N` means: N retries after the first attempt, so at most
    /// N + 1 calls; without `retry`, one call.
    pub workflow Counted {
        context JobCtx;
        initial Idle;
        events { Plain, Zero, Two }
        state Idle {
            on Plain => Once;
            on Zero => NoRetry;
            on Two => ThreeCalls;
        }
        state Once {
            invoke once -> u32 { done => Done; error => Gave / keep_error; }
        }
        state NoRetry {
            invoke zero -> u32 { retry 0; done => Done; error => Gave / keep_error; }
        }
        state ThreeCalls {
            invoke two -> u32 { retry 2 backoff 10ms..10ms; done => Done; error => Gave / keep_error; }
        }
        final Done;
        final Gave;
    }
}

impl CountedHandlers for Service {
    fn keep_error(&self, ctx: &mut JobCtx, error: &ActivityError) {
        ctx.error = Some((error.kind(), error.attempts(), error.message().to_string()));
    }
    async fn once(&self, _ctx: &JobCtx, call: &ActivityCall) -> Result<u32, ActivityError> {
        self.attempt(call).await
    }
    async fn zero(&self, _ctx: &JobCtx, call: &ActivityCall) -> Result<u32, ActivityError> {
        self.attempt(call).await
    }
    async fn two(&self, _ctx: &JobCtx, call: &ActivityCall) -> Result<u32, ActivityError> {
        self.attempt(call).await
    }
}

/// What one attempt of the fake service does.
#[derive(Clone, Copy, Debug)]
enum Act {
    Answer(u32),
    Fail,
    Fatal,
    Panic,
    Hang,
}

/// One attempt, as the fake service saw it.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Call {
    activity: &'static str,
    attempt: u32,
    key: u128,
    /// When it started, since the service was built (with the engine).
    at: Duration,
}

/// A fake service scripted by attempt number; it records every attempt's
/// start on tokio's clock.
#[derive(Clone)]
struct Service(Arc<ServiceInner>);

struct ServiceInner {
    script: Box<dyn Fn(u32) -> Act + Send + Sync>,
    calls: Mutex<Vec<Call>>,
    epoch: Instant,
}

impl Service {
    fn new(script: impl Fn(u32) -> Act + Send + Sync + 'static) -> Self {
        Service(Arc::new(ServiceInner {
            script: Box::new(script),
            calls: Mutex::new(Vec::new()),
            epoch: Instant::now(),
        }))
    }

    fn calls(&self) -> Vec<Call> {
        self.0.calls.lock().unwrap().clone()
    }

    fn starts(&self) -> Vec<Duration> {
        self.calls().iter().map(|c| c.at).collect()
    }

    async fn attempt(&self, call: &ActivityCall) -> Result<u32, ActivityError> {
        let at = self.0.epoch.elapsed();
        self.0.calls.lock().unwrap().push(Call {
            activity: call.activity,
            attempt: call.attempt,
            key: call.key,
            at,
        });
        match (self.0.script)(call.attempt) {
            Act::Answer(value) => Ok(value),
            Act::Fail => Err(ActivityError::new(format!("attempt {} failed", call.attempt))),
            Act::Fatal => Err(ActivityError::non_retryable("card declined")),
            Act::Panic => panic!("service exploded"),
            Act::Hang => std::future::pending().await,
        }
    }
}

impl JobHandlers for Service {
    fn keep_output(&self, ctx: &mut JobCtx, output: &u32) {
        ctx.output = Some(*output);
    }
    fn keep_error(&self, ctx: &mut JobCtx, error: &ActivityError) {
        ctx.error = Some((error.kind(), error.attempts(), error.message().to_string()));
    }
    async fn flaky(&self, _ctx: &JobCtx, call: &ActivityCall) -> Result<u32, ActivityError> {
        self.attempt(call).await
    }
    async fn timed(&self, _ctx: &JobCtx, call: &ActivityCall) -> Result<u32, ActivityError> {
        self.attempt(call).await
    }
    async fn limited(&self, _ctx: &JobCtx, call: &ActivityCall) -> Result<u32, ActivityError> {
        self.attempt(call).await
    }
}

fn started(activity: &'static str, attempt: u32) -> RecordKind {
    RecordKind::AttemptStarted { activity, attempt }
}

fn ended(activity: &'static str, attempt: u32, duration: Duration, error: Option<(ErrorKind, &str)>) -> RecordKind {
    RecordKind::AttemptEnded {
        activity,
        attempt,
        duration,
        error: error.map(|(kind, message)| RecordedError::new(kind, message)),
    }
}

/// The attempt records of a history, with their times.
fn attempt_records(history: &[Record]) -> Vec<Record> {
    history
        .iter()
        .filter(|r| {
            matches!(
                r.kind,
                RecordKind::AttemptStarted { .. } | RecordKind::AttemptEnded { .. }
            )
        })
        .cloned()
        .collect()
}

/// Builds a service and an engine at the same instant, starts `id` and sends
/// it `event` (which enters the state whose activity the test is about).
async fn launch(
    script: impl Fn(u32) -> Act + Send + Sync + 'static,
    config: Config,
    event: JobEvent,
) -> (Engine<Job, Service>, Service) {
    let service = Service::new(script);
    let engine = Engine::<Job, Service>::with_config(service.clone(), config);
    engine.start("job", JobCtx::default()).await.unwrap();
    engine.send("job", event).await.unwrap();
    (engine, service)
}

#[tokio::test(start_paused = true)]
async fn failed_attempts_are_retried_after_exact_exponential_backoff() {
    let began = Instant::now();
    let (engine, service) = launch(
        |attempt| if attempt < 4 { Act::Fail } else { Act::Answer(7) },
        exact(),
        JobEvent::Retry,
    )
    .await;
    assert_eq!(engine.wait("job").await.unwrap(), JobState::Done);
    assert_eq!(began.elapsed(), ms(700));

    // Four attempts, 100ms, 200ms then 400ms apart, all with one key.
    assert_eq!(service.starts(), [ms(0), ms(100), ms(300), ms(700)]);
    let calls = service.calls();
    assert_eq!(calls.iter().map(|c| c.attempt).collect::<Vec<_>>(), [1, 2, 3, 4]);
    assert!(calls.iter().all(|c| c.activity == "flaky" && c.key == calls[0].key));

    let snapshot = engine.snapshot("job").await.unwrap();
    assert_eq!(snapshot.status, Status::Finished(JobState::Done));
    assert_eq!(
        snapshot.context,
        JobCtx {
            output: Some(7),
            error: None
        }
    );
    assert_eq!(
        snapshot.history,
        [
            rec(ms(0), RecordKind::Started("Idle".into())),
            rec(ms(0), transition("Idle", "Retry", "Retrying")),
            rec(ms(0), started("flaky", 1)),
            rec(
                ms(0),
                ended("flaky", 1, ms(0), Some((ErrorKind::Failed, "attempt 1 failed")))
            ),
            rec(ms(100), started("flaky", 2)),
            rec(
                ms(100),
                ended("flaky", 2, ms(0), Some((ErrorKind::Failed, "attempt 2 failed")))
            ),
            rec(ms(300), started("flaky", 3)),
            rec(
                ms(300),
                ended("flaky", 3, ms(0), Some((ErrorKind::Failed, "attempt 3 failed")))
            ),
            rec(ms(700), started("flaky", 4)),
            rec(ms(700), ended("flaky", 4, ms(0), None)),
            rec(ms(700), transition("Retrying", "FlakyDone", "Done")),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn retry_n_calls_an_activity_that_always_fails_n_plus_one_times() {
    for (event, state, calls) in [
        (CountedEvent::Plain, CountedState::Once, 1),
        (CountedEvent::Zero, CountedState::NoRetry, 1),
        (CountedEvent::Two, CountedState::ThreeCalls, 3),
    ] {
        let service = Service::new(|_| Act::Fail);
        let engine = Engine::<Counted, Service>::with_config(service.clone(), exact());
        engine.start("job", JobCtx::default()).await.unwrap();
        engine.send("job", event).await.unwrap();
        assert_eq!(engine.wait("job").await.unwrap(), CountedState::Gave);
        let attempts: Vec<u32> = service.calls().iter().map(|c| c.attempt).collect();
        assert_eq!(attempts, (1..=calls).collect::<Vec<_>>(), "{state}");
        let error = engine.snapshot("job").await.unwrap().context.error;
        assert_eq!(
            error,
            Some((ErrorKind::Failed, calls, format!("attempt {calls} failed"))),
            "{state}"
        );
        // The graph states the same policy.
        let invoke = Counted::graph().states[state.index()].invoke.as_ref().unwrap();
        assert_eq!(invoke.policy.max_attempts, calls, "{state}");
    }
}

#[tokio::test(start_paused = true)]
async fn each_invocation_has_its_own_idempotency_key() {
    let service = Service::new(|attempt| if attempt < 2 { Act::Fail } else { Act::Answer(1) });
    let engine = Engine::<Job, Service>::with_config(service.clone(), exact());
    for id in ["a", "b"] {
        engine.start(id, JobCtx::default()).await.unwrap();
        engine.send(id, JobEvent::Retry).await.unwrap();
    }
    for id in ["a", "b"] {
        assert_eq!(engine.wait(id).await.unwrap(), JobState::Done);
    }
    let keys: Vec<u128> = service.calls().iter().map(|c| c.key).collect();
    assert_eq!(keys.len(), 4);
    let distinct: std::collections::BTreeSet<u128> = keys.iter().copied().collect();
    assert_eq!(distinct.len(), 2, "two invocations, two attempts each: {keys:?}");
}

#[tokio::test(start_paused = true)]
async fn exhausted_retries_take_the_error_arm() {
    let began = Instant::now();
    let (engine, service) = launch(|_| Act::Fail, exact(), JobEvent::Retry).await;
    assert_eq!(engine.wait("job").await.unwrap(), JobState::Gave);
    assert_eq!(began.elapsed(), ms(700));
    assert_eq!(service.starts(), [ms(0), ms(100), ms(300), ms(700)]);

    let snapshot = engine.snapshot("job").await.unwrap();
    assert_eq!(
        snapshot.context,
        JobCtx {
            output: None,
            error: Some((ErrorKind::Failed, 4, "attempt 4 failed".into()))
        }
    );
    assert_eq!(
        snapshot.history.last(),
        Some(&rec(ms(700), transition("Retrying", "FlakyFailed", "Gave")))
    );
    let ends = snapshot
        .history
        .iter()
        .filter(|r| matches!(r.kind, RecordKind::AttemptEnded { .. }))
        .count();
    assert_eq!(ends, 4);
}

#[tokio::test(start_paused = true)]
async fn a_non_retryable_error_stops_at_once() {
    let began = Instant::now();
    let (engine, service) = launch(
        |attempt| if attempt == 1 { Act::Fail } else { Act::Fatal },
        exact(),
        JobEvent::Retry,
    )
    .await;
    assert_eq!(engine.wait("job").await.unwrap(), JobState::Gave);
    // One retryable failure, then the non-retryable one: no third attempt
    // although the policy allows four.
    assert_eq!(service.starts(), [ms(0), ms(100)]);
    assert_eq!(began.elapsed(), ms(100));
    let snapshot = engine.snapshot("job").await.unwrap();
    assert_eq!(
        snapshot.context.error,
        Some((ErrorKind::NonRetryable, 2, "card declined".into()))
    );
    assert_eq!(
        attempt_records(&snapshot.history),
        [
            rec(ms(0), started("flaky", 1)),
            rec(
                ms(0),
                ended("flaky", 1, ms(0), Some((ErrorKind::Failed, "attempt 1 failed")))
            ),
            rec(ms(100), started("flaky", 2)),
            rec(
                ms(100),
                ended("flaky", 2, ms(0), Some((ErrorKind::NonRetryable, "card declined")))
            ),
        ]
    );
    // Let any (wrongly) scheduled retry come due: nothing more happens.
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(service.calls().len(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_panicking_attempt_is_a_failed_attempt() {
    let (engine, service) = launch(
        |attempt| if attempt == 1 { Act::Panic } else { Act::Answer(5) },
        exact(),
        JobEvent::Retry,
    )
    .await;
    assert_eq!(engine.wait("job").await.unwrap(), JobState::Done);
    assert_eq!(service.starts(), [ms(0), ms(100)]);
    let snapshot = engine.snapshot("job").await.unwrap();
    assert_eq!(snapshot.context.output, Some(5));
    assert_eq!(
        attempt_records(&snapshot.history),
        [
            rec(ms(0), started("flaky", 1)),
            rec(
                ms(0),
                ended(
                    "flaky",
                    1,
                    ms(0),
                    Some((ErrorKind::Panicked, "activity panicked: service exploded"))
                )
            ),
            rec(ms(100), started("flaky", 2)),
            rec(ms(100), ended("flaky", 2, ms(0), None)),
        ]
    );

    // Panicking every time: the retries run out and the error arm is taken;
    // the instance itself does not fail.
    let (engine, service) = launch(|_| Act::Panic, exact(), JobEvent::Retry).await;
    assert_eq!(engine.wait("job").await.unwrap(), JobState::Gave);
    assert_eq!(service.calls().len(), 4);
    let snapshot = engine.snapshot("job").await.unwrap();
    assert_eq!(snapshot.status, Status::Finished(JobState::Gave));
    assert_eq!(
        snapshot.context.error,
        Some((ErrorKind::Panicked, 4, "activity panicked: service exploded".into()))
    );
}

#[tokio::test(start_paused = true)]
async fn a_hanging_attempt_times_out_and_is_retried() {
    let began = Instant::now();
    let (engine, service) = launch(|_| Act::Hang, exact(), JobEvent::Time).await;
    assert_eq!(engine.wait("job").await.unwrap(), JobState::Gave);
    // 1s attempt, 500ms backoff, 1s attempt.
    assert_eq!(began.elapsed(), ms(2500));
    assert_eq!(service.starts(), [ms(0), ms(1500)]);
    let snapshot = engine.snapshot("job").await.unwrap();
    assert_eq!(
        snapshot.context.error,
        Some((ErrorKind::TimedOut, 2, "attempt 2 of `timed` timed out after 1s".into()))
    );
    assert_eq!(
        attempt_records(&snapshot.history),
        [
            rec(ms(0), started("timed", 1)),
            rec(
                ms(1000),
                ended(
                    "timed",
                    1,
                    ms(1000),
                    Some((ErrorKind::TimedOut, "attempt 1 of `timed` timed out after 1s"))
                )
            ),
            rec(ms(1500), started("timed", 2)),
            rec(
                ms(2500),
                ended(
                    "timed",
                    2,
                    ms(1000),
                    Some((ErrorKind::TimedOut, "attempt 2 of `timed` timed out after 1s"))
                )
            ),
        ]
    );
    assert_eq!(
        snapshot.history.last(),
        Some(&rec(ms(2500), transition("Timed", "TimedFailed", "Gave")))
    );

    // A hanging first attempt, then an answer.
    let (engine, service) = launch(
        |attempt| if attempt == 1 { Act::Hang } else { Act::Answer(9) },
        exact(),
        JobEvent::Time,
    )
    .await;
    assert_eq!(engine.wait("job").await.unwrap(), JobState::Done);
    assert_eq!(service.starts(), [ms(0), ms(1500)]);
    assert_eq!(engine.snapshot("job").await.unwrap().context.output, Some(9));
}

#[tokio::test(start_paused = true)]
async fn jitter_scales_each_backoff_within_its_bounds() {
    const JITTER: f64 = 0.5;
    let service = Service::new(|_| Act::Fail);
    let engine = Engine::<Job, Service>::with_config(
        service.clone(),
        Config {
            jitter: JITTER,
            ..Config::default()
        },
    );
    let ids: Vec<String> = (0..20).map(|i| format!("j-{i}")).collect();
    for id in &ids {
        engine.start(id.as_str(), JobCtx::default()).await.unwrap();
        engine.send(id, JobEvent::Retry).await.unwrap();
    }
    for id in &ids {
        assert_eq!(engine.wait(id).await.unwrap(), JobState::Gave);
    }

    let policy = RetryPolicy {
        max_attempts: 4,
        initial_interval: ms(100),
        max_interval: ms(1000),
        timeout: None,
    };
    let declared = Job::graph()
        .states
        .iter()
        .find(|s| s.name == "Retrying")
        .unwrap()
        .invoke
        .unwrap()
        .policy;
    assert_eq!(declared, policy);
    let schedule = Schedule {
        jitter: JITTER,
        ..Schedule::default()
    };

    let mut by_key: BTreeMap<u128, Vec<Call>> = BTreeMap::new();
    for call in service.calls() {
        by_key.entry(call.key).or_default().push(call);
    }
    assert_eq!(by_key.len(), ids.len());
    let mut jittered = 0;
    for (key, calls) in by_key {
        assert_eq!(calls.iter().map(|c| c.attempt).collect::<Vec<_>>(), [1, 2, 3, 4]);
        for retry in 1..=3u32 {
            let waited = calls[retry as usize].at - calls[retry as usize - 1].at;
            let base = policy.backoff(retry);
            let (low, high) = (base.mul_f64(1.0 - JITTER), base.mul_f64(1.0 + JITTER));
            assert!(
                low <= waited && waited <= high,
                "retry {retry}: waited {waited:?}, outside {low:?}..={high:?}"
            );
            // Exactly the schedule's delay for this call's key, up to tokio's
            // 1ms timer resolution.
            let expected = schedule.backoff(&policy, key, retry);
            assert!(
                expected <= waited && waited < expected + ms(1),
                "retry {retry}: waited {waited:?}, expected {expected:?}"
            );
            if waited != base {
                jittered += 1;
            }
        }
    }
    assert!(
        jittered > 30,
        "only {jittered} of 60 delays differ from the plain backoff"
    );
}

#[tokio::test(start_paused = true)]
async fn the_activity_deadline_stops_retries() {
    let config = Config {
        activity_deadline: Some(ms(1000)),
        ..exact()
    };
    let began = Instant::now();
    let (engine, service) = launch(|_| Act::Fail, config, JobEvent::Limit).await;
    assert_eq!(engine.wait("job").await.unwrap(), JobState::Gave);
    // The policy allows 11 attempts 300ms apart; after the one at 900ms the
    // next would start past the 1s deadline, so it stops there.
    assert_eq!(service.starts(), [ms(0), ms(300), ms(600), ms(900)]);
    assert_eq!(began.elapsed(), ms(900));
    let snapshot = engine.snapshot("job").await.unwrap();
    assert_eq!(
        snapshot.context.error,
        Some((ErrorKind::Failed, 4, "attempt 4 failed".into()))
    );
    assert_eq!(
        snapshot.history.last(),
        Some(&rec(ms(900), transition("Limited", "LimitedFailed", "Gave")))
    );
}

#[tokio::test(start_paused = true)]
async fn the_activity_deadline_cuts_a_hanging_attempt() {
    // No per-attempt timeout: the deadline alone ends the hanging attempt.
    let config = Config {
        activity_deadline: Some(ms(1000)),
        ..exact()
    };
    let (engine, service) = launch(|_| Act::Hang, config, JobEvent::Limit).await;
    assert_eq!(engine.wait("job").await.unwrap(), JobState::Gave);
    assert_eq!(service.starts(), [ms(0)]);
    let snapshot = engine.snapshot("job").await.unwrap();
    assert_eq!(
        snapshot.context.error,
        Some((
            ErrorKind::TimedOut,
            1,
            "attempt 1 of `limited` timed out after 1s".into()
        ))
    );
    assert_eq!(
        snapshot.history.last(),
        Some(&rec(ms(1000), transition("Limited", "LimitedFailed", "Gave")))
    );

    // With a per-attempt timeout of 1s and a 2s deadline, the second attempt
    // (started at 1.5s) only gets the 500ms left.
    let config = Config {
        activity_deadline: Some(ms(2000)),
        ..exact()
    };
    let (engine, service) = launch(|_| Act::Hang, config, JobEvent::Time).await;
    assert_eq!(engine.wait("job").await.unwrap(), JobState::Gave);
    assert_eq!(service.starts(), [ms(0), ms(1500)]);
    let snapshot = engine.snapshot("job").await.unwrap();
    assert_eq!(
        attempt_records(&snapshot.history),
        [
            rec(ms(0), started("timed", 1)),
            rec(
                ms(1000),
                ended(
                    "timed",
                    1,
                    ms(1000),
                    Some((ErrorKind::TimedOut, "attempt 1 of `timed` timed out after 1s"))
                )
            ),
            rec(ms(1500), started("timed", 2)),
            rec(
                ms(2000),
                ended(
                    "timed",
                    2,
                    ms(500),
                    Some((ErrorKind::TimedOut, "attempt 2 of `timed` timed out after 500ms"))
                )
            ),
        ]
    );
    assert_eq!(
        snapshot.history.last(),
        Some(&rec(ms(2000), transition("Timed", "TimedFailed", "Gave")))
    );
}

#[tokio::test(start_paused = true)]
async fn leaving_a_state_cancels_its_running_activity() {
    let services = Arc::new(Services::slow_payments(Duration::from_secs(5)));
    let engine = Engine::<Order, Arc<Services>>::with_config(services.clone(), exact());
    engine.start("o", OrderCtx::default()).await.unwrap();
    engine
        .send("o", SubmitOrder { id: 3, amount: 30 }.into())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(services.payment_calls.load(Ordering::SeqCst), 1);

    // Cancel while charge_payment is still waiting on the payment service.
    engine.send("o", OrderEvent::Cancel).await.unwrap();
    assert_eq!(engine.wait("o").await.unwrap(), OrderState::Cancelled);
    tokio::time::sleep(Duration::from_secs(60)).await;

    // The payment never went through, no attempt ended, nothing was retried.
    assert_eq!(services.payment_calls.load(Ordering::SeqCst), 1);
    assert_eq!(services.payments_completed.load(Ordering::SeqCst), 0);
    let snapshot = engine.snapshot("o").await.unwrap();
    assert_eq!(snapshot.context.log, ["enter Charging", "exit Charging"]);
    assert_eq!(snapshot.context.receipt, None);
    assert_eq!(
        snapshot.history,
        [
            rec(ms(0), RecordKind::Started("Start".into())),
            rec(ms(0), transition("Start", "SubmitOrder", "Charging")),
            rec(ms(0), started("charge_payment", 1)),
            rec(ms(1000), transition("Charging", "Cancel", "Cancelled")),
            rec(ms(1000), RecordKind::ActivityCancelled("charge_payment")),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_targetless_transition_keeps_the_activity_running() {
    let services = Arc::new(Services::slow_payments(Duration::from_secs(5)));
    let engine = Engine::<Order, Arc<Services>>::with_config(services.clone(), exact());
    engine.start("o", OrderCtx::default()).await.unwrap();
    engine
        .send("o", SubmitOrder { id: 4, amount: 40 }.into())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    engine.send("o", OrderEvent::Ping).await.unwrap();
    tokio::time::sleep(Duration::from_secs(10)).await;

    // The payment finished at 5s (one attempt), then stock was reserved.
    assert_eq!(engine.state("o").await.unwrap(), OrderState::Shipping);
    assert_eq!(services.payment_calls.load(Ordering::SeqCst), 1);
    assert_eq!(services.payments_completed.load(Ordering::SeqCst), 1);
    let snapshot = engine.snapshot("o").await.unwrap();
    assert_eq!(
        snapshot.context.log,
        ["enter Charging", "ping", "exit Charging", "keep receipt"]
    );
    assert!(!snapshot
        .history
        .iter()
        .any(|r| matches!(r.kind, RecordKind::ActivityCancelled(_))));
    assert!(snapshot
        .history
        .contains(&rec(ms(1000), transition("Charging", "Ping", "Charging"))));
    assert!(snapshot
        .history
        .contains(&rec(ms(5000), ended("charge_payment", 1, ms(5000), None))));
    assert!(snapshot
        .history
        .contains(&rec(ms(5000), transition("Charging", "ChargePaymentDone", "Reserving"))));
}
