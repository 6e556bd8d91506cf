// `after` in every unit; each delay becomes a `{State}After{literal}` event.
#![deny(warnings)]

use std::time::Duration;

use workflow::prelude::*;

workflow! {
    workflow Reminder {
        initial Fresh;
        events { Answer }
        state Fresh {
            on Answer => Done;
            after 500ms => Nudged;
        }
        state Nudged {
            on Answer => Done;
            after 30s => Pinged;
            after 5m => Called / call;
        }
        state Pinged {
            on Answer => Done;
            after 2h => Called;
        }
        state Called {
            on Answer => Done;
            after 7d => Expired;
        }
        final Done;
        final Expired (failure);
    }
}

struct Phone;

impl ReminderHandlers for Phone {
    fn call(&self, _ctx: &mut ()) {}
}

fn main() {
    let timers = [
        ReminderEvent::FreshAfter500ms,
        ReminderEvent::NudgedAfter30s,
        ReminderEvent::NudgedAfter5m,
        ReminderEvent::PingedAfter2h,
        ReminderEvent::CalledAfter7d,
    ];
    let names: Vec<&str> = timers.iter().map(ReminderEvent::name).collect();
    assert_eq!(
        names,
        [
            "FreshAfter500ms",
            "NudgedAfter30s",
            "NudgedAfter5m",
            "PingedAfter2h",
            "CalledAfter7d"
        ]
    );
    let delays: Vec<Duration> = Reminder::graph()
        .events
        .iter()
        .filter_map(|e| match e.kind {
            workflow::graph::EventKind::Timer { delay, .. } => Some(delay),
            _ => None,
        })
        .collect();
    let minute = Duration::from_secs(60);
    assert_eq!(
        delays,
        [
            Duration::from_millis(500),
            Duration::from_secs(30),
            5 * minute,
            120 * minute,
            7 * 24 * 60 * minute
        ]
    );

    let mut reminder = Reminder::default();
    reminder.handle(&ReminderEvent::FreshAfter500ms, &Phone).unwrap();
    assert!(
        reminder.handle(&ReminderEvent::FreshAfter500ms, &Phone).is_err(),
        "a timer belongs to its state"
    );
    reminder.handle(&ReminderEvent::NudgedAfter5m, &Phone).unwrap();
    reminder.handle(&ReminderEvent::CalledAfter7d, &Phone).unwrap();
    assert_eq!(reminder.state(), ReminderState::Expired);
}
