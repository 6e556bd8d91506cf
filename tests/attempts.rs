//! The attempts of activity and compensation calls, journaled with their outcome: a call that
//! failed twice then succeeded, one that spent its retries, one whose attempts timed out, a
//! non-retryable error, a panicking attempt, a compensation retried; each checked in the rows
//! (decoded with the workflow's types) and in `Inspector::show`. A call whose first attempt
//! succeeds journals none, its row as before. A crash in the middle of a call's retries loses
//! the attempts made so far: the call runs again from attempt 1, and its outcome's row keeps
//! the attempts of that run.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use workflow::inspect::Inspector;
use workflow::journal::{self, Attempt, Step};
use workflow::prelude::*;
use workflow::{Config, Engine, ErrorKind, RetryPolicy, SqliteStore, Store};

/// How the services behave for an instance: `ok`, `flaky` (charge fails twice, then succeeds),
/// `down` (every charge fails; the release that undoes the reservation fails once), `slow`
/// (every charge runs past its timeout), `declined` (non-retryable), `panics` (the first charge
/// panics), `crash` (the first charge fails, the second hangs until the test stops the engine).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    mode: String,
}

workflow! {
    workflow Payment {
        context Plan;
        initial Reserving;
        state Reserving {
            invoke reserve -> () { done => Charging; error => Declined; }
            compensate release;
        }
        state Charging {
            invoke charge -> String {
                retry 2 backoff 10ms..20ms;
                timeout 60ms;
                done => Paid;
                error => Declined;
            }
        }
        final Paid;
        final Declined (failure);
    }
}

#[derive(Default)]
struct Bank {
    /// Whether the `crash` plan's second charge hangs (the first engine's run).
    hang: AtomicBool,
}

impl PaymentHandlers for Arc<Bank> {
    async fn reserve(&self, _: &Plan, _: &ActivityCall) -> Result<(), ActivityError> {
        Ok(())
    }
    async fn charge(&self, plan: &Plan, call: &ActivityCall) -> Result<String, ActivityError> {
        tokio::time::sleep(Duration::from_millis(5)).await;
        match (plan.mode.as_str(), call.attempt) {
            ("flaky", 1 | 2) => Err(ActivityError::new("card service busy")),
            ("down", _) => Err(ActivityError::new("card service down")),
            ("slow", _) => {
                tokio::time::sleep(Duration::from_secs(5)).await;
                Ok("late".into())
            }
            ("declined", _) => Err(ActivityError::non_retryable("card declined")),
            ("panics", 1) => panic!("card reader on fire"),
            ("crash", 1) if self.hang.load(Ordering::SeqCst) => Err(ActivityError::new("lost with the crash")),
            ("crash", 2) if self.hang.load(Ordering::SeqCst) => std::future::pending().await,
            ("crash", 1) => Err(ActivityError::new("after the restart")),
            _ => Ok(format!("receipt {}", call.attempt)),
        }
    }
    async fn release(&self, plan: &Plan, call: &ActivityCall) -> Result<(), ActivityError> {
        match (plan.mode.as_str(), call.attempt) {
            ("down", 1) => Err(ActivityError::new("stock locked")),
            _ => Ok(()),
        }
    }
}

/// The engine's wall clock at build: times in the rows fall in the minute after it.
const EPOCH_MS: u64 = 1_800_000_000_000;

fn engine(store: Arc<SqliteStore>, bank: &Arc<Bank>) -> Engine<Payment, Arc<Bank>> {
    Engine::builder(bank.clone())
        .store(store)
        .clock(|| SystemTime::UNIX_EPOCH + Duration::from_millis(EPOCH_MS))
        .config(Config {
            // Backoff exactly as declared, so the gaps between attempts are known.
            jitter: 0.0,
            compensation: RetryPolicy {
                max_attempts: 3,
                initial_interval: Duration::from_millis(10),
                max_interval: Duration::from_millis(20),
                timeout: None,
            },
            ..Config::default()
        })
        .build()
}

/// Instance `id`'s rows, decoded.
async fn rows(store: &SqliteStore, id: &str) -> Vec<journal::Entry<Plan, PaymentEvent>> {
    let rows = store.journal("Payment", id).await.unwrap();
    rows.iter()
        .map(|row| journal::decode::<Payment>(row).unwrap())
        .collect()
}

/// Each attempt's number, error kind and message.
fn outcomes(attempts: &[Attempt]) -> Vec<(u32, Option<ErrorKind>, Option<&str>)> {
    attempts
        .iter()
        .map(|a| (a.attempt, a.kind, a.error.as_deref()))
        .collect()
}

/// The attempts are timed on the engine's clock, in order: each starts after the one before
/// ended and its backoff (10 ms, then 20 ms) passed.
fn timed_in_order(attempts: &[Attempt], row_at: u64) {
    for a in attempts {
        assert!((EPOCH_MS..EPOCH_MS + 60_000).contains(&a.at), "{a:?}");
        assert!(
            a.at <= row_at,
            "started before its outcome's row: {a:?}, row at {row_at}"
        );
    }
    for (pair, backoff) in attempts.windows(2).zip([10, 20]) {
        let ran_ms = pair[0].duration_us / 1_000;
        assert!(pair[1].at >= pair[0].at + ran_ms + backoff, "{pair:?}");
    }
}

#[tokio::test]
async fn each_calls_attempts_are_journaled_with_its_outcome() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("payments.db");
    let store = Arc::new(SqliteStore::open(&path).unwrap());
    let bank = Arc::new(Bank::default());
    let engine = engine(store.clone(), &bank);
    let plans = ["ok", "flaky", "down", "slow", "declined", "panics"];
    for mode in plans {
        engine.start(mode, Plan { mode: mode.into() }).await.unwrap();
    }
    for (mode, end) in plans.iter().zip([
        PaymentState::Paid,
        PaymentState::Paid,
        PaymentState::Declined,
        PaymentState::Declined,
        PaymentState::Declined,
        PaymentState::Paid,
    ]) {
        assert_eq!(engine.wait(mode).await.unwrap(), end, "{mode}");
    }
    let inspector = Inspector::open(path.to_str().unwrap()).await.unwrap();

    // One attempt that succeeded: nothing journaled, the rows as before.
    for row in store.journal("Payment", "ok").await.unwrap() {
        let text = String::from_utf8(row.data.clone()).unwrap();
        assert!(!text.contains("attempts"), "{text}");
    }
    let ok = rows(&store, "ok").await;
    assert!(ok.iter().all(|entry| entry.attempts.is_empty()));
    let shown = inspector.show("ok", None).await.unwrap();
    assert!(shown.timeline.iter().all(|entry| entry.attempts.is_empty()));
    assert_eq!(shown.timeline[2].activity.as_ref().unwrap().outcome, "done");

    // Failed twice, then succeeded: the three attempts, in the row of `ChargeDone`.
    let flaky = rows(&store, "flaky").await;
    assert!(
        matches!(flaky[2].step, Step::Transition { event: PaymentEvent::ChargeDone(ref r), .. } if r == "receipt 3")
    );
    let busy = Some("card service busy");
    assert_eq!(
        outcomes(&flaky[2].attempts),
        [
            (1, Some(ErrorKind::Failed), busy),
            (2, Some(ErrorKind::Failed), busy),
            (3, None, None)
        ]
    );
    timed_in_order(&flaky[2].attempts, flaky[2].at.unwrap());
    assert!(
        flaky[2].attempts.iter().all(|a| a.duration_us >= 5_000),
        "each slept 5 ms"
    );
    assert!(flaky[1].attempts.is_empty(), "the reservation succeeded at once");
    let shown = inspector.show("flaky", Some("Payment")).await.unwrap();
    assert_eq!(shown.timeline[2].attempts, flaky[2].attempts);
    assert_eq!(shown.timeline[2].event.as_deref(), Some("ChargeDone"));

    // Every attempt failed: all three, in the row of `ChargeFailed`; then the release that
    // undoes the reservation, which failed once, in the row of its compensation.
    let down = rows(&store, "down").await;
    assert!(matches!(
        down[2].step,
        Step::Transition {
            event: PaymentEvent::ChargeFailed(_),
            ..
        }
    ));
    let failed = Some("card service down");
    assert_eq!(
        outcomes(&down[2].attempts),
        [
            (1, Some(ErrorKind::Failed), failed),
            (2, Some(ErrorKind::Failed), failed),
            (3, Some(ErrorKind::Failed), failed)
        ]
    );
    timed_in_order(&down[2].attempts, down[2].at.unwrap());
    assert!(matches!(down[3].step, Step::Compensated { error: None, .. }));
    assert_eq!(
        outcomes(&down[3].attempts),
        [(1, Some(ErrorKind::Failed), Some("stock locked")), (2, None, None)]
    );
    timed_in_order(&down[3].attempts, down[3].at.unwrap());
    let shown = inspector.show("down", None).await.unwrap();
    assert_eq!(shown.timeline[2].attempts, down[2].attempts);
    assert_eq!(shown.timeline[2].activity.as_ref().unwrap().outcome, "failed");
    assert_eq!(shown.timeline[3].compensation.as_deref(), Some("release"));
    assert_eq!(shown.timeline[3].attempts, down[3].attempts);

    // Timed out: each attempt ran its 60 ms and was stopped.
    let slow = rows(&store, "slow").await;
    assert_eq!(
        slow[2].attempts.iter().map(|a| (a.attempt, a.kind)).collect::<Vec<_>>(),
        [1, 2, 3].map(|n| (n, Some(ErrorKind::TimedOut)))
    );
    for a in &slow[2].attempts {
        assert!((60_000..1_000_000).contains(&a.duration_us), "{a:?}");
        let expected = format!("attempt {} of `charge` timed out after 60ms", a.attempt);
        assert_eq!(a.error.as_deref(), Some(expected.as_str()));
    }
    timed_in_order(&slow[2].attempts, slow[2].at.unwrap());
    assert_eq!(
        inspector.show("slow", None).await.unwrap().timeline[2].attempts,
        slow[2].attempts
    );

    // A non-retryable error: its one attempt; a panic: a failed attempt, then the one that
    // succeeded.
    let declined = rows(&store, "declined").await;
    assert_eq!(
        outcomes(&declined[2].attempts),
        [(1, Some(ErrorKind::NonRetryable), Some("card declined"))]
    );
    assert!(declined[3].attempts.is_empty(), "its release succeeded at once");
    let panics = rows(&store, "panics").await;
    assert_eq!(
        outcomes(&panics[2].attempts),
        [
            (
                1,
                Some(ErrorKind::Panicked),
                Some("activity panicked: card reader on fire")
            ),
            (2, None, None)
        ]
    );
    drop(engine);
}

#[tokio::test]
async fn a_crash_mid_retries_loses_the_attempts_so_far_and_the_call_runs_again() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(dir.path().join("payments.db")).unwrap());
    let bank = Arc::new(Bank::default());
    bank.hang.store(true, Ordering::SeqCst);
    let first = engine(store.clone(), &bank);
    first.start("crash", Plan { mode: "crash".into() }).await.unwrap();
    // Attempt 1 failed, attempt 2 hangs: the process stops there.
    let mut tries = 0;
    while !first.snapshot("crash").await.unwrap().history.iter().any(|r| {
        matches!(
            r.kind,
            workflow::RecordKind::AttemptStarted {
                activity: "charge",
                attempt: 2
            }
        )
    }) {
        tries += 1;
        assert!(tries < 500, "attempt 2 never started");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    first.shutdown().await;
    drop(first);
    let before = rows(&store, "crash").await;
    assert_eq!(before.len(), 2, "nothing journaled of the call in flight");
    assert!(before.iter().all(|entry| entry.attempts.is_empty()));

    bank.hang.store(false, Ordering::SeqCst);
    let second = engine(store.clone(), &bank);
    assert_eq!(second.recover().await.unwrap().resumed, 1);
    assert_eq!(second.wait("crash").await.unwrap(), PaymentState::Paid);
    let after = rows(&store, "crash").await;
    assert_eq!(
        outcomes(&after[2].attempts),
        [(1, Some(ErrorKind::Failed), Some("after the restart")), (2, None, None)],
        "the run after the restart, from attempt 1"
    );
    for row in store.journal("Payment", "crash").await.unwrap() {
        let text = String::from_utf8(row.data.clone()).unwrap();
        assert!(!text.contains("lost with the crash"), "{text}");
    }
}

/// Rows sealed by the AEAD codec: the attempts (their errors' messages too) are in the sealed
/// document, not in the plaintext the store keeps beside it; the inspector reads them with the
/// codec and shows none without it.
#[cfg(feature = "encryption")]
#[tokio::test]
async fn sealed_rows_keep_their_attempts_sealed() {
    use workflow::codec::{Aead, Codec, Keys};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("payments.db");
    let store = Arc::new(SqliteStore::open(&path).unwrap());
    let codec: Arc<dyn Codec> = Arc::new(Aead::new(Keys::new(1, [7; 32])).unwrap());
    let bank = Arc::new(Bank::default());
    let engine = Engine::<Payment, _>::builder(bank.clone())
        .store(store.clone())
        .codec(codec.clone())
        .build();
    engine.start("flaky", Plan { mode: "flaky".into() }).await.unwrap();
    assert_eq!(engine.wait("flaky").await.unwrap(), PaymentState::Paid);
    let rows = store.journal("Payment", "flaky").await.unwrap();
    assert!(rows.iter().all(|row| !row.data.windows(4).any(|w| w == b"busy")));
    let outcome = journal::decode_with::<Payment>(&rows[2], &codec).unwrap();
    assert_eq!(outcome.attempts.len(), 3);

    let inspector = Inspector::open(path.to_str().unwrap()).await.unwrap();
    let sealed = inspector.show("flaky", None).await.unwrap();
    assert_eq!(sealed.timeline[2].step, "sealed");
    assert!(sealed.timeline[2].attempts.is_empty());
    let open = inspector.with_codec(codec).show("flaky", None).await.unwrap();
    assert_eq!(open.timeline[2].attempts, outcome.attempts);
    drop(engine);
}
