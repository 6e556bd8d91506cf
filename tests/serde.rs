//! With the `serde` feature, states, events and payloads serialize.
//! (The feature is on by default.)
#![cfg(feature = "serde")]

use serde::{Deserialize, Serialize};
use workflow::prelude::*;

/// A charge's receipt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Receipt {
    id: String,
}

workflow! {
    workflow Pay {
        initial Idle;
        events { Charge { cents: u64 }, Cancel }
        state Idle { on Charge => Charging; on Cancel => Done; }
        state Charging { invoke charge -> Receipt { done => Done; error => Idle; } }
        final Done;
    }
}

#[test]
fn states_and_events_round_trip_through_json() {
    let json = serde_json::to_string(&PayState::Charging).unwrap();
    assert_eq!(json, "\"Charging\"");
    assert_eq!(serde_json::from_str::<PayState>(&json).unwrap(), PayState::Charging);

    let events = [
        PayEvent::from(Charge { cents: 250 }),
        PayEvent::Cancel,
        PayEvent::ChargeDone(Receipt { id: "r1".into() }),
        PayEvent::ChargeFailed(ActivityError::non_retryable("declined")),
    ];
    let json = serde_json::to_string(&events).unwrap();
    assert_eq!(
        json,
        r#"[{"Charge":{"cents":250}},"Cancel",{"ChargeDone":{"id":"r1"}},{"ChargeFailed":{"kind":"NonRetryable","message":"declined","attempts":0}}]"#
    );
    let back: Vec<PayEvent> = serde_json::from_str(&json).unwrap();
    assert_eq!(
        back.iter().map(PayEvent::name).collect::<Vec<_>>(),
        ["Charge", "Cancel", "ChargeDone", "ChargeFailed"]
    );
    assert!(matches!(&back[0], PayEvent::Charge(Charge { cents: 250 })));
}

#[test]
fn a_corrupt_event_is_an_error_not_a_panic() {
    assert!(serde_json::from_str::<PayEvent>(r#"{"Charge":{"cents":"lots"}}"#).is_err());
    assert!(serde_json::from_str::<PayState>("\"Nowhere\"").is_err());
}
