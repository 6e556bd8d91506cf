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

/// The same three states with serde's own derive: the generated impls must
/// read and write exactly what it does.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
enum Derived {
    Idle,
    Charging,
    Done,
}

#[test]
fn states_serialize_as_the_derive_would() {
    for (state, derived) in [
        (PayState::Idle, Derived::Idle),
        (PayState::Charging, Derived::Charging),
        (PayState::Done, Derived::Done),
    ] {
        let json = serde_json::to_string(&state).unwrap();
        assert_eq!(json, serde_json::to_string(&derived).unwrap());
        assert_eq!(serde_json::from_str::<PayState>(&json).unwrap(), state);
        // The map form of a unit variant, which the derive accepts too.
        let map = format!("{{{json}:null}}");
        assert_eq!(serde_json::from_str::<PayState>(&map).unwrap(), state);
        assert_eq!(serde_json::from_str::<Derived>(&map).unwrap(), derived);
    }
    let unknown = serde_json::from_str::<PayState>("\"Chargin\"").unwrap_err().to_string();
    let derived = serde_json::from_str::<Derived>("\"Chargin\"").unwrap_err().to_string();
    assert_eq!(unknown, derived);
    assert!(unknown.contains("unknown variant `Chargin`, expected one of `Idle`, `Charging`, `Done`"));
    // A state carries no data.
    assert!(serde_json::from_str::<PayState>(r#"{"Charging":{"cents":1}}"#).is_err());
    assert!(serde_json::from_str::<PayState>("7").is_err());
}

#[test]
fn unit_payloads_serialize_as_the_derive_would() {
    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Derived;
    let json = serde_json::to_string(&Cancel).unwrap();
    assert_eq!(json, serde_json::to_string(&Derived).unwrap());
    assert_eq!(serde_json::from_str::<Cancel>(&json).unwrap(), Cancel);
    for text in ["[]", "[1]", "{}", "0"] {
        let ours = serde_json::from_str::<Cancel>(text).map_err(|e| e.to_string());
        let derived = serde_json::from_str::<Derived>(text).map_err(|e| e.to_string());
        assert_eq!(ours.is_ok(), derived.is_ok(), "{text}: {ours:?} / {derived:?}");
    }
    assert!(serde_json::from_str::<Cancel>("\"Cancel\"").is_err());
    assert!(serde_json::from_str::<Derived>("\"Cancel\"").is_err());
}
