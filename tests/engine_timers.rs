//! The engine's timers: a state's `after` fires once at the exact time and
//! is cancelled when the state is left; a statechart's `send .. after .. as
//! id` outlives the state that set it and `cancel id` stops it.

mod common;

use std::time::Duration;

use common::{exact, ms, rec, secs, transition, Order, OrderCtx, OrderEvent, OrderState, Services, SubmitOrder};
use tokio::time::Instant;
use workflow::prelude::*;
use workflow::{Engine, Record, RecordKind, Status};

workflow! {
    /// An alarm: armed, it rings after 5s unless disarmed.
    pub workflow Alarm {
        context u32; // how many times it rang
        initial Idle;
        events { Arm, Disarm, Snooze, Reset, Off }

        state Idle {
            on Arm => Armed;
            on Off => Stopped;
        }
        state Armed {
            after 5s => Ringing / ring;
            on Disarm => Idle;
            on Snooze => Armed; // a self-transition: exits and re-enters
        }
        state Ringing {
            on Reset => Idle;
            on Off => Stopped;
        }
        final Stopped;
    }
}

struct Bell;

impl AlarmHandlers for Bell {
    fn ring(&self, rings: &mut u32) {
        *rings += 1;
    }
}

workflow! {
    /// A statechart whose first state schedules a `Tick` that must arrive
    /// wherever the instance is by then, unless `Stop` cancels it.
    pub workflow Beacon {
        context u32; // ticks seen
        initial Arming;
        events { Leave, Stop, Tick, Finish }

        state Arming {
            entry send Tick after 5s as tick;
            on Leave => Away;
        }
        state Away {
            on Tick => Ticked / count_tick;
            on Stop / cancel tick;
            on Finish => Done;
        }
        state Ticked {
            on Finish => Done;
        }
        final Done;
    }
}

struct Radio;

impl BeaconHandlers for Radio {
    fn count_tick(&self, ticks: &mut u32, _event: &Tick) {
        *ticks += 1;
    }
}

/// A statechart of its own module (its event payload types would clash with
/// the alarm's).
mod nested {
    use super::*;

    workflow! {
        /// The alarm's `after` and self-transition, nested in a compound state:
        /// a statechart.
        pub workflow NestedAlarm {
            initial Clock;
            events { Snooze, Off }

            state Clock {
                initial Armed;
                state Armed {
                    after 5s => Ringing;
                    on Snooze => Armed;
                }
                state Ringing {
                    on Off => Stopped;
                }
            }
            final Stopped;
        }
    }

    impl NestedAlarmHandlers for Bell {}
}

use nested::{NestedAlarm, NestedAlarmEvent, NestedAlarmState};

workflow! {
    /// A workflow whose initial state has a timer and an activity: both must
    /// start when the instance starts.
    pub workflow Kettle {
        initial Heating;
        events { Unplug }

        state Heating {
            invoke heat -> () { done => Boiled; error => Broken; }
            after 3s => Boiled;
            on Unplug => Broken;
        }
        final Boiled;
        final Broken (failure);
    }
}

/// Heats for its number of seconds of tokio's clock.
struct Stove(u64);

impl KettleHandlers for Stove {
    async fn heat(&self, _ctx: &(), _call: &ActivityCall) -> Result<(), ActivityError> {
        tokio::time::sleep(Duration::from_secs(self.0)).await;
        Ok(())
    }
}

fn fired(history: &[Record]) -> Vec<Record> {
    history
        .iter()
        .filter(|r| matches!(r.kind, RecordKind::TimerFired(_)))
        .cloned()
        .collect()
}

#[tokio::test(start_paused = true)]
async fn an_after_timer_fires_once_at_the_exact_time() {
    let t0 = Instant::now();
    let engine = Engine::<Alarm, Bell>::with_config(Bell, exact());
    engine.start("a", 0).await.unwrap();
    tokio::time::sleep(secs(1)).await;
    engine.send("a", AlarmEvent::Arm).await.unwrap();

    // One millisecond before it is due, nothing has fired.
    tokio::time::sleep_until(t0 + ms(5999)).await;
    let snapshot = engine.snapshot("a").await.unwrap();
    assert_eq!(snapshot.status, Status::Running(AlarmState::Armed));
    assert!(fired(&snapshot.history).is_empty());

    // Long after: it fired once, at 1s + 5s.
    tokio::time::sleep(Duration::from_secs(3600)).await;
    let snapshot = engine.snapshot("a").await.unwrap();
    assert_eq!(snapshot.status, Status::Running(AlarmState::Ringing));
    assert_eq!(snapshot.context, 1);
    assert_eq!(
        snapshot.history,
        [
            rec(ms(0), RecordKind::Started("Idle".into())),
            rec(ms(1000), transition("Idle", "Arm", "Armed")),
            rec(
                ms(1000),
                RecordKind::TimerSet {
                    event: "ArmedAfter5s",
                    delay: secs(5)
                }
            ),
            rec(ms(6000), RecordKind::TimerFired("ArmedAfter5s")),
            rec(ms(6000), transition("Armed", "ArmedAfter5s", "Ringing")),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn leaving_a_state_cancels_its_timer() {
    let engine = Engine::<Alarm, Bell>::with_config(Bell, exact());
    engine.start("a", 0).await.unwrap();
    engine.send("a", AlarmEvent::Arm).await.unwrap();
    tokio::time::sleep(secs(3)).await;
    engine.send("a", AlarmEvent::Disarm).await.unwrap();

    // The timer set at 0 would have fired at 5s: it never does.
    tokio::time::sleep(secs(3600)).await;
    let snapshot = engine.snapshot("a").await.unwrap();
    assert_eq!(snapshot.status, Status::Running(AlarmState::Idle));
    assert_eq!(snapshot.context, 0);
    assert!(fired(&snapshot.history).is_empty(), "{:?}", snapshot.history);

    // Armed again: a fresh timer, due 5s after the new entry only.
    engine.send("a", AlarmEvent::Arm).await.unwrap();
    tokio::time::sleep(secs(2)).await;
    engine.send("a", AlarmEvent::Disarm).await.unwrap();
    engine.send("a", AlarmEvent::Arm).await.unwrap();
    let rearmed = ms(3_603_000 + 2_000);
    tokio::time::sleep(secs(60)).await;
    let snapshot = engine.snapshot("a").await.unwrap();
    assert_eq!(snapshot.status, Status::Running(AlarmState::Ringing));
    assert_eq!(snapshot.context, 1);
    assert_eq!(
        fired(&snapshot.history),
        [rec(rearmed + secs(5), RecordKind::TimerFired("ArmedAfter5s"))]
    );
}

#[tokio::test(start_paused = true)]
async fn a_timer_of_a_finished_or_cancelled_instance_never_fires() {
    // Order's Shipping has `after 48h => Escalated`.
    let engine = Engine::<Order, Services>::with_config(Services::default(), exact());
    for id in ["cancelled", "delivered"] {
        engine.start(id, OrderCtx::default()).await.unwrap();
        engine.send(id, SubmitOrder { id: 1, amount: 1 }.into()).await.unwrap();
    }
    tokio::time::sleep(secs(1)).await;
    assert_eq!(engine.state("cancelled").await.unwrap(), OrderState::Shipping);
    engine.cancel("cancelled").await.unwrap();
    engine.send("delivered", OrderEvent::ShipmentReady).await.unwrap();
    engine.send("delivered", OrderEvent::OrderDelivered).await.unwrap();

    tokio::time::sleep(Duration::from_secs(49 * 3600)).await;
    assert_eq!(
        engine.status("cancelled").await.unwrap(),
        Status::Cancelled(OrderState::Shipping)
    );
    assert_eq!(
        engine.status("delivered").await.unwrap(),
        Status::Finished(OrderState::Completed)
    );
    let history = engine.snapshot("delivered").await.unwrap().history;
    assert!(fired(&history).is_empty(), "{history:?}");
}

#[tokio::test(start_paused = true)]
async fn a_send_timer_fires_after_its_state_was_left() {
    let engine = Engine::<Beacon, Radio>::with_config(Radio, exact());
    engine.start("b", 0).await.unwrap();
    tokio::time::sleep(secs(1)).await;
    engine.send("b", BeaconEvent::Leave).await.unwrap();
    assert!(engine.state("b").await.unwrap().is_in(BeaconState::Away));

    tokio::time::sleep(secs(60)).await;
    let snapshot = engine.snapshot("b").await.unwrap();
    assert!(snapshot.status.state().is_in(BeaconState::Ticked));
    assert_eq!(snapshot.context, 1);
    assert_eq!(
        snapshot.history,
        [
            rec(ms(0), RecordKind::Started("{Arming}".into())),
            rec(
                ms(0),
                RecordKind::TimerSet {
                    event: "Tick",
                    delay: secs(5)
                }
            ),
            rec(ms(1000), transition("{Arming}", "Leave", "{Away}")),
            rec(ms(5000), RecordKind::TimerFired("Tick")),
            rec(ms(5000), transition("{Away}", "Tick", "{Ticked}")),
        ]
    );
    engine.send("b", BeaconEvent::Finish).await.unwrap();
    assert!(engine.wait("b").await.unwrap().is_in(BeaconState::Done));
}

#[tokio::test(start_paused = true)]
async fn cancel_stops_a_send_timer() {
    let engine = Engine::<Beacon, Radio>::with_config(Radio, exact());
    engine.start("b", 0).await.unwrap();
    tokio::time::sleep(secs(1)).await;
    engine.send("b", BeaconEvent::Leave).await.unwrap();
    tokio::time::sleep(secs(1)).await;
    engine.send("b", BeaconEvent::Stop).await.unwrap();

    tokio::time::sleep(secs(3600)).await;
    let snapshot = engine.snapshot("b").await.unwrap();
    assert!(snapshot.status.state().is_in(BeaconState::Away));
    assert_eq!(snapshot.context, 0);
    assert!(fired(&snapshot.history).is_empty(), "{:?}", snapshot.history);
    assert_eq!(
        snapshot.history.last(),
        Some(&rec(ms(2000), transition("{Away}", "Stop", "{Away}")))
    );
    engine.send("b", BeaconEvent::Finish).await.unwrap();
    assert!(engine.wait("b").await.unwrap().is_in(BeaconState::Done));
}

#[tokio::test(start_paused = true)]
async fn the_initial_state_starts_its_timer_and_activity() {
    // The timer (3s) beats the activity (10s).
    let engine = Engine::<Kettle, Stove>::with_config(Stove(10), exact());
    engine.start("k", ()).await.unwrap();
    // (Bounded: were neither started, the instance would wait forever.)
    let done = tokio::time::timeout(secs(60), engine.wait("k"))
        .await
        .expect("neither the timer nor the activity ran");
    assert_eq!(done.unwrap(), KettleState::Boiled);
    let history = engine.snapshot("k").await.unwrap().history;
    assert_eq!(
        history,
        [
            rec(ms(0), RecordKind::Started("Heating".into())),
            rec(
                ms(0),
                RecordKind::TimerSet {
                    event: "HeatingAfter3s",
                    delay: secs(3)
                }
            ),
            rec(
                ms(0),
                RecordKind::AttemptStarted {
                    activity: "heat",
                    attempt: 1
                }
            ),
            rec(ms(3000), RecordKind::TimerFired("HeatingAfter3s")),
            rec(ms(3000), transition("Heating", "HeatingAfter3s", "Boiled")),
            rec(ms(3000), RecordKind::ActivityCancelled("heat")),
        ]
    );

    // The activity (1s) beats the timer.
    let engine = Engine::<Kettle, Stove>::with_config(Stove(1), exact());
    engine.start("k", ()).await.unwrap();
    let done = tokio::time::timeout(secs(60), engine.wait("k"))
        .await
        .expect("neither the timer nor the activity ran");
    assert_eq!(done.unwrap(), KettleState::Boiled);
    let history = engine.snapshot("k").await.unwrap().history;
    assert_eq!(
        history.last(),
        Some(&rec(ms(1000), transition("Heating", "HeatDone", "Boiled")))
    );
    tokio::time::sleep(secs(10)).await;
    assert!(fired(&engine.snapshot("k").await.unwrap().history).is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_self_transition_restarts_the_after_timer() {
    let engine = Engine::<Alarm, Bell>::with_config(Bell, exact());
    engine.start("a", 0).await.unwrap();
    engine.send("a", AlarmEvent::Arm).await.unwrap();
    tokio::time::sleep(secs(3)).await;
    engine.send("a", AlarmEvent::Snooze).await.unwrap();
    tokio::time::sleep(secs(60)).await;
    let snapshot = engine.snapshot("a").await.unwrap();
    assert_eq!(snapshot.status, Status::Running(AlarmState::Ringing));
    assert_eq!(snapshot.context, 1);
    // Re-entered at 3s: due at 8s, not at 5s.
    assert_eq!(
        fired(&snapshot.history),
        [rec(ms(8000), RecordKind::TimerFired("ArmedAfter5s"))]
    );
    assert!(snapshot.history.contains(&rec(
        ms(3000),
        RecordKind::TimerSet {
            event: "ArmedAfter5s",
            delay: secs(5)
        }
    )));
}

/// The same in a statechart: the interpreter reports the states a macrostep
/// exited and entered again, and the engine restarts their timers.
#[tokio::test(start_paused = true)]
async fn a_statechart_self_transition_restarts_the_after_timer() {
    let engine = Engine::<NestedAlarm, Bell>::with_config(Bell, exact());
    engine.start("a", ()).await.unwrap();
    tokio::time::sleep(secs(3)).await;
    engine.send("a", NestedAlarmEvent::Snooze).await.unwrap();
    tokio::time::sleep(secs(60)).await;
    let snapshot = engine.snapshot("a").await.unwrap();
    assert!(snapshot.status.state().is_in(NestedAlarmState::Ringing));
    assert_eq!(
        fired(&snapshot.history),
        [rec(ms(8000), RecordKind::TimerFired("ArmedAfter5s"))]
    );
}

workflow! {
    /// An approval that expires 48 hours after it was asked for.
    pub workflow Approval {
        initial Waiting;
        events { Approve }
        state Waiting {
            on Approve => Approved;
            after 48h => Expired;
        }
        final Approved;
        final Expired;
    }
}

struct Approver;
impl ApprovalHandlers for Approver {}

/// A durable timer keeps its wall-clock deadline across a restart: a process down for 47 hours
/// finds one hour left (the injected clock says how long it was down; tokio's paused clock runs
/// the hour).
#[tokio::test(start_paused = true)]
async fn a_process_down_for_47_hours_finds_one_hour_left() {
    use std::sync::Arc;
    use std::time::SystemTime;
    use workflow::SqliteStore;

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("approvals.db");
    let asked = SystemTime::now();
    let first = Engine::<Approval, Approver>::builder(Approver)
        .store(Arc::new(SqliteStore::open(&path).unwrap()))
        .clock(move || asked)
        .build();
    first.start("a-1", ()).await.unwrap();
    first.shutdown().await;
    drop(first);

    let restarted = asked + Duration::from_secs(47 * 3600);
    let second = Engine::<Approval, Approver>::builder(Approver)
        .store(Arc::new(SqliteStore::open(&path).unwrap()))
        .clock(move || restarted)
        .build();
    assert_eq!(second.recover().await.unwrap().resumed, 1);
    let resumed = Instant::now();
    assert_eq!(second.wait("a-1").await.unwrap(), ApprovalState::Expired);
    assert_eq!(
        resumed.elapsed(),
        Duration::from_secs(3600),
        "fired one hour after the restart"
    );

    // Down for longer than the timer: it fires at once.
    let third_store = Arc::new(SqliteStore::open(dir.path().join("late.db")).unwrap());
    let third = Engine::<Approval, Approver>::builder(Approver)
        .store(third_store.clone())
        .clock(move || asked)
        .build();
    third.start("a-2", ()).await.unwrap();
    third.shutdown().await;
    drop(third);
    let much_later = asked + Duration::from_secs(50 * 3600);
    let fourth = Engine::<Approval, Approver>::builder(Approver)
        .store(third_store)
        .clock(move || much_later)
        .build();
    fourth.recover().await.unwrap();
    let resumed = Instant::now();
    assert_eq!(fourth.wait("a-2").await.unwrap(), ApprovalState::Expired);
    assert_eq!(
        resumed.elapsed(),
        Duration::ZERO,
        "a deadline passed while down fires at once"
    );
}
