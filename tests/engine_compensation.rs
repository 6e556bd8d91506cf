//! The engine's compensations: a failure final undoes the completed
//! compensable steps in reverse order, each with the configured retries; a
//! compensation that still fails is recorded and the instance still
//! finishes; a non-failure final undoes nothing.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{ms, Order, OrderCtx, OrderEvent, OrderHandlers, OrderState, Services, SubmitOrder};
use tokio::time::Instant;
use workflow::prelude::*;
use workflow::{Config, Engine, Record, RecordKind, RecordedError, Status};

workflow! {
    /// A trip booked in three compensable steps, then reviewed.
    pub workflow Trip {
        initial Start;
        events { Go, Abort, Finish }

        state Start { on Go => Flight; }
        state Flight {
            invoke book_flight -> () { done => Hotel; error => Failed; }
            compensate cancel_flight;
        }
        state Hotel {
            invoke book_hotel -> () { done => Car; error => Failed; }
            compensate cancel_hotel;
        }
        state Car {
            invoke book_car -> () { done => Review; error => Failed; }
            compensate cancel_car;
        }
        state Review {
            on Finish => Done;
            on Abort => Failed;
        }
        final Done;
        final Failed (failure);
    }
}

/// What one call of the travel agency does.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Act {
    Ok,
    Fail,
    Fatal,
    Hang,
}

/// A scripted travel agency: `script(name, attempt)` says what each call
/// does; every call is recorded with its start on tokio's clock.
#[derive(Clone)]
struct Agency(Arc<AgencyInner>);

type Script = Box<dyn Fn(&str, u32) -> Act + Send + Sync>;

struct AgencyInner {
    script: Script,
    calls: Mutex<Vec<(&'static str, u32, Duration)>>,
    epoch: Instant,
}

impl Agency {
    fn new(script: impl Fn(&str, u32) -> Act + Send + Sync + 'static) -> Self {
        Agency(Arc::new(AgencyInner {
            script: Box::new(script),
            calls: Mutex::new(Vec::new()),
            epoch: Instant::now(),
        }))
    }

    fn names(&self) -> Vec<&'static str> {
        self.0.calls.lock().unwrap().iter().map(|c| c.0).collect()
    }

    /// The start times of `name`'s attempts.
    fn starts(&self, name: &str) -> Vec<Duration> {
        self.0
            .calls
            .lock()
            .unwrap()
            .iter()
            .filter(|c| c.0 == name)
            .map(|c| c.2)
            .collect()
    }

    async fn call(&self, call: &ActivityCall) -> Result<(), ActivityError> {
        let at = self.0.epoch.elapsed();
        self.0.calls.lock().unwrap().push((call.activity, call.attempt, at));
        match (self.0.script)(call.activity, call.attempt) {
            Act::Ok => Ok(()),
            Act::Fail => Err(ActivityError::new(format!("{} desk closed", call.activity))),
            Act::Fatal => Err(ActivityError::non_retryable("sold out")),
            Act::Hang => std::future::pending().await,
        }
    }
}

impl TripHandlers for Agency {
    async fn book_flight(&self, _ctx: &(), call: &ActivityCall) -> Result<(), ActivityError> {
        self.call(call).await
    }
    async fn book_hotel(&self, _ctx: &(), call: &ActivityCall) -> Result<(), ActivityError> {
        self.call(call).await
    }
    async fn book_car(&self, _ctx: &(), call: &ActivityCall) -> Result<(), ActivityError> {
        self.call(call).await
    }
    async fn cancel_flight(&self, _ctx: &(), call: &ActivityCall) -> Result<(), ActivityError> {
        self.call(call).await
    }
    async fn cancel_hotel(&self, _ctx: &(), call: &ActivityCall) -> Result<(), ActivityError> {
        self.call(call).await
    }
    async fn cancel_car(&self, _ctx: &(), call: &ActivityCall) -> Result<(), ActivityError> {
        self.call(call).await
    }
}

/// Compensations: 3 attempts, 100ms then 200ms apart, at most 1s each.
fn config() -> Config {
    Config {
        jitter: 0.0,
        compensation: RetryPolicy {
            max_attempts: 3,
            initial_interval: Duration::from_millis(100),
            max_interval: Duration::from_secs(10),
            timeout: Some(Duration::from_secs(1)),
        },
        ..Config::default()
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

fn compensated(compensation: &'static str, error: Option<(ErrorKind, &str)>) -> RecordKind {
    RecordKind::Compensated {
        compensation,
        error: error.map(|(kind, message)| RecordedError::new(kind, message)),
    }
}

/// What the history says from the transition into the failure final on.
fn from_failure(history: &[Record]) -> Vec<RecordKind> {
    let at = history
        .iter()
        .position(|r| matches!(&r.kind, RecordKind::Transition { to, .. } if to == "Failed"))
        .expect("the instance never reached Failed");
    history[at + 1..].iter().map(|r| r.kind.clone()).collect()
}

/// Books everything and waits in Review.
async fn booked(agency: &Agency, config: Config) -> Engine<Trip, Agency> {
    let engine = Engine::<Trip, Agency>::with_config(agency.clone(), config);
    engine.start("trip", ()).await.unwrap();
    engine.send("trip", TripEvent::Go).await.unwrap();
    let mut status = engine.subscribe("trip").unwrap();
    status
        .wait_for(|s| *s == Status::Running(TripState::Review))
        .await
        .unwrap();
    engine
}

#[tokio::test(start_paused = true)]
async fn a_failure_final_compensates_completed_steps_in_reverse() {
    let agency = Agency::new(|_, _| Act::Ok);
    let engine = booked(&agency, config()).await;
    engine.send("trip", TripEvent::Abort).await.unwrap();
    assert_eq!(engine.wait("trip").await, Ok(TripState::Failed));
    assert_eq!(
        engine.status("trip").await.unwrap(),
        Status::Finished(TripState::Failed)
    );
    assert_eq!(
        agency.names(),
        [
            "book_flight",
            "book_hotel",
            "book_car",
            "cancel_car",
            "cancel_hotel",
            "cancel_flight"
        ]
    );
    let history = engine.snapshot("trip").await.unwrap().history;
    assert_eq!(
        from_failure(&history),
        [
            started("cancel_car", 1),
            ended("cancel_car", 1, ms(0), None),
            compensated("cancel_car", None),
            started("cancel_hotel", 1),
            ended("cancel_hotel", 1, ms(0), None),
            compensated("cancel_hotel", None),
            started("cancel_flight", 1),
            ended("cancel_flight", 1, ms(0), None),
            compensated("cancel_flight", None),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn only_completed_steps_are_compensated() {
    // The car cannot be booked: the error arm goes to the failure final, and
    // only the hotel and the flight are undone.
    let agency = Agency::new(|name, _| if name == "book_car" { Act::Fatal } else { Act::Ok });
    let engine = Engine::<Trip, Agency>::with_config(agency.clone(), config());
    engine.start("trip", ()).await.unwrap();
    engine.send("trip", TripEvent::Go).await.unwrap();
    assert_eq!(engine.wait("trip").await, Ok(TripState::Failed));
    assert_eq!(
        agency.names(),
        ["book_flight", "book_hotel", "book_car", "cancel_hotel", "cancel_flight"]
    );
    let history = engine.snapshot("trip").await.unwrap().history;
    assert_eq!(
        from_failure(&history),
        [
            started("cancel_hotel", 1),
            ended("cancel_hotel", 1, ms(0), None),
            compensated("cancel_hotel", None),
            started("cancel_flight", 1),
            ended("cancel_flight", 1, ms(0), None),
            compensated("cancel_flight", None),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn compensations_are_retried_with_the_configured_policy() {
    let agency = Agency::new(|name, attempt| {
        if name == "cancel_hotel" && attempt < 3 {
            Act::Fail
        } else {
            Act::Ok
        }
    });
    let engine = booked(&agency, config()).await;
    let aborted = Instant::now() - agency.0.epoch;
    engine.send("trip", TripEvent::Abort).await.unwrap();
    assert_eq!(engine.wait("trip").await, Ok(TripState::Failed));

    // The hotel's cancellation: three attempts, 100ms then 200ms apart; the
    // flight's starts only after it.
    assert_eq!(agency.starts("cancel_car"), [aborted]);
    assert_eq!(
        agency.starts("cancel_hotel"),
        [aborted, aborted + ms(100), aborted + ms(300)]
    );
    assert_eq!(agency.starts("cancel_flight"), [aborted + ms(300)]);
    let history = engine.snapshot("trip").await.unwrap().history;
    assert_eq!(
        from_failure(&history),
        [
            started("cancel_car", 1),
            ended("cancel_car", 1, ms(0), None),
            compensated("cancel_car", None),
            started("cancel_hotel", 1),
            ended(
                "cancel_hotel",
                1,
                ms(0),
                Some((ErrorKind::Failed, "cancel_hotel desk closed"))
            ),
            started("cancel_hotel", 2),
            ended(
                "cancel_hotel",
                2,
                ms(0),
                Some((ErrorKind::Failed, "cancel_hotel desk closed"))
            ),
            started("cancel_hotel", 3),
            ended("cancel_hotel", 3, ms(0), None),
            compensated("cancel_hotel", None),
            started("cancel_flight", 1),
            ended("cancel_flight", 1, ms(0), None),
            compensated("cancel_flight", None),
        ]
    );
    // The instance is published as finished only after its compensations.
    assert_eq!(history.last().unwrap().at, aborted + ms(300));
}

#[tokio::test(start_paused = true)]
async fn a_compensation_that_still_fails_is_recorded_and_the_instance_finishes() {
    // The hotel's cancellation always fails; the car's hangs past its 1s
    // timeout every time.
    let agency = Agency::new(|name, _| match name {
        "cancel_hotel" => Act::Fail,
        "cancel_car" => Act::Hang,
        _ => Act::Ok,
    });
    let engine = booked(&agency, config()).await;
    let aborted = Instant::now() - agency.0.epoch;
    engine.send("trip", TripEvent::Abort).await.unwrap();
    assert_eq!(engine.wait("trip").await, Ok(TripState::Failed));
    assert_eq!(
        engine.status("trip").await.unwrap(),
        Status::Finished(TripState::Failed)
    );

    // cancel_car: 1s, +100ms, 1s, +200ms, 1s. Then cancel_hotel: three
    // immediate failures 100ms and 200ms apart. Then cancel_flight.
    assert_eq!(
        agency.starts("cancel_car"),
        [aborted, aborted + ms(1100), aborted + ms(2300)]
    );
    let car_done = aborted + ms(3300);
    assert_eq!(
        agency.starts("cancel_hotel"),
        [car_done, car_done + ms(100), car_done + ms(300)]
    );
    assert_eq!(agency.starts("cancel_flight"), [car_done + ms(300)]);

    let history = engine.snapshot("trip").await.unwrap().history;
    let timed_out = |n: u32| format!("attempt {n} of `cancel_car` timed out after 1s");
    assert_eq!(
        from_failure(&history),
        [
            started("cancel_car", 1),
            ended("cancel_car", 1, ms(1000), Some((ErrorKind::TimedOut, &timed_out(1)))),
            started("cancel_car", 2),
            ended("cancel_car", 2, ms(1000), Some((ErrorKind::TimedOut, &timed_out(2)))),
            started("cancel_car", 3),
            ended("cancel_car", 3, ms(1000), Some((ErrorKind::TimedOut, &timed_out(3)))),
            compensated("cancel_car", Some((ErrorKind::TimedOut, &timed_out(3)))),
            started("cancel_hotel", 1),
            ended(
                "cancel_hotel",
                1,
                ms(0),
                Some((ErrorKind::Failed, "cancel_hotel desk closed"))
            ),
            started("cancel_hotel", 2),
            ended(
                "cancel_hotel",
                2,
                ms(0),
                Some((ErrorKind::Failed, "cancel_hotel desk closed"))
            ),
            started("cancel_hotel", 3),
            ended(
                "cancel_hotel",
                3,
                ms(0),
                Some((ErrorKind::Failed, "cancel_hotel desk closed"))
            ),
            compensated("cancel_hotel", Some((ErrorKind::Failed, "cancel_hotel desk closed"))),
            started("cancel_flight", 1),
            ended("cancel_flight", 1, ms(0), None),
            compensated("cancel_flight", None),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_non_failure_final_runs_no_compensation() {
    let agency = Agency::new(|_, _| Act::Ok);
    let engine = booked(&agency, config()).await;
    engine.send("trip", TripEvent::Finish).await.unwrap();
    assert_eq!(engine.wait("trip").await, Ok(TripState::Done));
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(agency.names(), ["book_flight", "book_hotel", "book_car"]);
    let history = engine.snapshot("trip").await.unwrap().history;
    assert!(
        !history.iter().any(|r| matches!(r.kind, RecordKind::Compensated { .. })),
        "{history:?}"
    );
    assert!(matches!(
        &history.last().unwrap().kind,
        RecordKind::Transition { from, event: "Finish", to } if from == "Review" && to == "Done"
    ));
}

#[tokio::test(start_paused = true)]
async fn the_shared_order_compensates_reserved_stock_only_on_failure() {
    // Order: Reserving is compensable; Refunding's refund failing leads to
    // the failure final `Failed`, which releases the stock. When the refund
    // succeeds the order ends in `Cancelled` and nothing is released.
    let mut outcomes = HashMap::new();
    for refund_fails in [false, true] {
        let services = Arc::new(Services::default());
        let engine = Engine::<Order, Arc<RefundDesk>>::with_config(
            Arc::new(RefundDesk {
                services: services.clone(),
                refund_fails,
            }),
            config(),
        );
        engine.start("o", OrderCtx::default()).await.unwrap();
        engine.send("o", SubmitOrder { id: 2, amount: 5 }.into()).await.unwrap();
        tokio::time::sleep(ms(10)).await;
        engine.send("o", OrderEvent::ShipmentReady).await.unwrap();
        engine
            .send(
                "o",
                common::DeliveryFailed {
                    reason: "address unknown".into(),
                }
                .into(),
            )
            .await
            .unwrap();
        let done = engine.wait("o").await.unwrap();
        outcomes.insert(refund_fails, (done, services.calls.lock().unwrap().clone()));
    }
    assert_eq!(
        outcomes[&false],
        (
            OrderState::Cancelled,
            vec!["reserve_stock".to_string(), "refund".into()]
        )
    );
    assert_eq!(
        outcomes[&true],
        (
            OrderState::Failed,
            vec!["reserve_stock".to_string(), "refund".into(), "release_stock".into()]
        )
    );
}

/// The shared Order's services, with a refund that can be made to fail.
struct RefundDesk {
    services: Arc<Services>,
    refund_fails: bool,
}

impl OrderHandlers for RefundDesk {
    fn can_redeliver(&self, ctx: &OrderCtx, event: &common::DeliveryFailed) -> bool {
        self.services.can_redeliver(ctx, event)
    }
    fn save_order(&self, ctx: &mut OrderCtx, event: &SubmitOrder) {
        self.services.save_order(ctx, event)
    }
    fn log_entry(&self, ctx: &mut OrderCtx) {
        self.services.log_entry(ctx)
    }
    fn log_exit(&self, ctx: &mut OrderCtx) {
        self.services.log_exit(ctx)
    }
    fn keep_receipt(&self, ctx: &mut OrderCtx, output: &common::Receipt) {
        self.services.keep_receipt(ctx, output)
    }
    fn note_error(&self, ctx: &mut OrderCtx, error: &ActivityError) {
        self.services.note_error(ctx, error)
    }
    fn log_ping(&self, ctx: &mut OrderCtx, event: &common::Ping) {
        self.services.log_ping(ctx, event)
    }
    fn count_attempt(&self, ctx: &mut OrderCtx, event: &common::DeliveryFailed) {
        self.services.count_attempt(ctx, event)
    }
    async fn charge_payment(&self, ctx: &OrderCtx, call: &ActivityCall) -> Result<common::Receipt, ActivityError> {
        self.services.charge_payment(ctx, call).await
    }
    async fn reserve_stock(&self, ctx: &OrderCtx, call: &ActivityCall) -> Result<(), ActivityError> {
        self.services.reserve_stock(ctx, call).await
    }
    async fn refund(&self, ctx: &OrderCtx, call: &ActivityCall) -> Result<(), ActivityError> {
        self.services.refund(ctx, call).await?;
        if self.refund_fails {
            return Err(ActivityError::non_retryable("bank refuses"));
        }
        Ok(())
    }
    async fn release_stock(&self, ctx: &OrderCtx, call: &ActivityCall) -> Result<(), ActivityError> {
        self.services.release_stock(ctx, call).await
    }
}

workflow! {
    /// A lap run again and again, each lap compensable, until aborted.
    pub workflow Laps {
        initial Start;
        events { Begin, Again, Quit }
        state Start { on Begin => Lap; }
        state Lap {
            invoke run_lap -> u32 { done => Between; error => Failed; }
            compensate undo_lap;
        }
        state Between {
            on Again => Lap;
            on Quit => Failed;
        }
        final Failed (failure);
    }
}

/// A service that deduplicates by idempotency key: a call with a key it
/// has seen succeed is acknowledged but not performed again. Laps are
/// numbered from 1; the first attempt of the first undo fails, so that it
/// is retried.
#[derive(Default)]
struct Track {
    laps: Mutex<u32>,
    /// `(lap undone, attempt, key)` of every undo call.
    calls: Mutex<Vec<(u32, u32, u128)>>,
    performed: Mutex<std::collections::HashSet<u128>>,
}

impl LapsHandlers for Arc<Track> {
    async fn run_lap(&self, _ctx: &(), _call: &ActivityCall) -> Result<u32, ActivityError> {
        let mut laps = self.laps.lock().unwrap();
        *laps += 1;
        Ok(*laps)
    }
    async fn undo_lap(&self, _ctx: &(), lap: &u32, call: &ActivityCall) -> Result<(), ActivityError> {
        let first = {
            let mut calls = self.calls.lock().unwrap();
            calls.push((*lap, call.attempt, call.key));
            calls.len() == 1
        };
        if first {
            return Err(ActivityError::new("busy"));
        }
        self.performed.lock().unwrap().insert(call.key);
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn each_completion_of_a_step_is_undone_under_its_own_key_with_its_output() {
    let track = Arc::new(Track::default());
    let engine = Engine::<Laps, Arc<Track>>::with_config(track.clone(), config());
    engine.start("laps", ()).await.unwrap();
    engine.send("laps", LapsEvent::Begin).await.unwrap();
    for _ in 0..2 {
        let mut status = engine.subscribe("laps").unwrap();
        status
            .wait_for(|s| *s == Status::Running(LapsState::Between))
            .await
            .unwrap();
        engine.send("laps", LapsEvent::Again).await.unwrap();
    }
    let mut status = engine.subscribe("laps").unwrap();
    status
        .wait_for(|s| *s == Status::Running(LapsState::Between))
        .await
        .unwrap();
    engine.send("laps", LapsEvent::Quit).await.unwrap();
    assert_eq!(engine.wait("laps").await, Ok(LapsState::Failed));

    let calls = track.calls.lock().unwrap().clone();
    // Three undos, newest first, each given the output of the lap it
    // undoes; the first retried once under its own key.
    let laps_and_attempts: Vec<(u32, u32)> = calls.iter().map(|c| (c.0, c.1)).collect();
    assert_eq!(laps_and_attempts, [(3, 1), (3, 2), (2, 1), (1, 1)]);
    assert_eq!(calls[0].2, calls[1].2, "retries of one undo share its key");
    // The service performed all three: each lap's undo has its own key.
    assert_eq!(track.performed.lock().unwrap().len(), 3);
}
