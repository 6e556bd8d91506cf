//! What a durable engine writes in each row of an instance's journal.
//!
//! Every row's `data` is one JSON document, format version 1:
//!
//! ```json
//! {"v":1,"fingerprint":"9a3c…","step":{"kind":"transition","from":"Charging",
//!  "event":{"ChargePaymentDone":["r-1"]},"to":"Reserving"},"status":{"state":"running"},
//!  "active":["Reserving"],"context":{…},"activities":[{"state":"Reserving","generation":2}],
//!  "timers":[],"succeeded":[],"completed":[],"generation":2}
//! ```
//!
//! - `fingerprint`: a hash of the workflow's graph as compiled when the row
//!   was written; recovery under a different one checks that the instance
//!   still fits (its states, activities and timers exist);
//! - `step`: what the row records: `started`, `transition` (with the event,
//!   which carries an activity's output), `rejected` (a timer's event the
//!   state did not accept), `compensated`, `finished`, `failed`, `cancelled`;
//! - `status`, `active`, `history` (the states each history state recorded),
//!   `context`: the instance after the step;
//! - `activities`: those in flight, by state and generation (the generation
//!   makes the idempotency key handed to every attempt, the same after a
//!   restart);
//! - `timers`: pending timers with their event and absolute `deadline` in
//!   milliseconds since the Unix epoch;
//! - `succeeded`, `completed`: states whose activity succeeded, and
//!   compensable states whose step completed (compensated in reverse order
//!   if the workflow fails);
//! - `generation`: the instance's counter of activity and timer generations;
//! - `priority`: the priority of its activity calls, if not 0.
//!
//! Empty lists (`history`, `activities`, `timers`, `succeeded`,
//! `completed`) are left out. The row's checksum is the CRC-32 of these bytes. Contexts, events and
//! activity outputs appear as their serde JSON forms.

use std::borrow::Cow;

use serde::de::{DeserializeOwned, IgnoredAny};
use serde::{Deserialize, Serialize};

/// A state's or a timer's name, or the fingerprint: borrowed when written,
/// owned when read.
pub(crate) type Name<'a> = Cow<'a, str>;

/// The format version this build writes and reads (the rows' `v`).
pub const FORMAT: u32 = 1;

/// Writes a row's document: `encode` for a workflow's context and event types.
pub(crate) type Encode<C, E> = for<'a> fn(&Entry<'a, &'a C, &'a E>) -> Result<Vec<u8>, String>;

/// Reads a row's document: `decode` for a workflow's context and event types.
pub(crate) type Decode<C, E> = fn(&[u8]) -> Result<Entry<'static, C, E>, String>;

/// One row's document; `C` and `E` are the context and event types, or
/// references to them when writing.
#[derive(Serialize, Deserialize)]
#[serde(bound(
    serialize = "C: Serialize, E: Serialize",
    deserialize = "C: DeserializeOwned, E: DeserializeOwned"
))]
pub(crate) struct Entry<'a, C, E> {
    pub v: u32,
    pub fingerprint: Name<'a>,
    pub step: Step<E>,
    pub status: StatusImage,
    pub active: Vec<Name<'a>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<(Name<'a>, Vec<Name<'a>>)>,
    pub context: C,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub activities: Vec<ActivityImage<'a>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub timers: Vec<TimerImage<'a, E>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub succeeded: Vec<Name<'a>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub completed: Vec<Name<'a>>,
    pub generation: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub priority: i32,
}

fn is_zero(priority: &i32) -> bool {
    *priority == 0
}

/// What a row records.
#[derive(Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[serde(bound(serialize = "E: Serialize", deserialize = "E: DeserializeOwned"))]
pub(crate) enum Step<E> {
    Started,
    Transition {
        from: String,
        event: E,
        to: String,
    },
    Rejected {
        state: String,
        event: E,
    },
    Compensated {
        compensation: String,
        error: Option<String>,
    },
    Finished,
    Failed {
        reason: String,
    },
    Cancelled,
}

/// An instance's status after a step.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub(crate) enum StatusImage {
    Running,
    Finished,
    Failed { reason: String },
    Cancelled,
}

/// An activity in flight.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ActivityImage<'a> {
    pub state: Name<'a>,
    pub generation: u64,
}

/// A pending timer: a state's `after` (`state` set) or a `send` (`send` set).
#[derive(Serialize, Deserialize)]
#[serde(bound(serialize = "E: Serialize", deserialize = "E: DeserializeOwned"))]
pub(crate) struct TimerImage<'a, E> {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<Name<'a>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub send: Option<Name<'a>>,
    pub generation: u64,
    pub event: E,
    pub deadline: u64,
}

/// A row's document, written. A float that is NaN or infinite is refused:
/// JSON has no number for it (serde_json would write `null`, which does not
/// read back as a float), and a row must read back as it was written.
pub(crate) fn encode<C: Serialize, E: Serialize>(entry: &Entry<'_, &C, &E>) -> Result<Vec<u8>, String> {
    entry.serialize(finite::Finite).map_err(|e| e.to_string())?;
    // Most rows fit: one allocation instead of a series of regrowths.
    let mut out = Vec::with_capacity(512);
    serde_json::to_writer(&mut out, entry).map_err(|e| e.to_string())?;
    Ok(out)
}

/// A row's document, read with the types of the workflow as compiled now.
pub(crate) fn decode<C: DeserializeOwned, E: DeserializeOwned>(data: &[u8]) -> Result<Entry<'static, C, E>, String> {
    serde_json::from_slice(data).map_err(|e| e.to_string())
}

/// A row's document without its contexts and events: what recovery can
/// still tell about a row the current types cannot read.
pub(crate) fn peek(data: &[u8]) -> Result<Entry<'static, IgnoredAny, IgnoredAny>, String> {
    serde_json::from_slice(data).map_err(|e| e.to_string())
}

/// A stable 64-bit FNV-1a hash of a graph's text: the workflow's fingerprint.
pub(crate) fn fingerprint(graph_text: &str) -> String {
    let hash = graph_text.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("{hash:016x}")
}

/// A serializer that writes nothing and fails on a float that is not
/// finite, naming the fields that lead to it: the check [`encode`] runs
/// before writing (one walk over the values; the path is gathered only on
/// the way out of a failure, so a row that passes costs no allocation).
mod finite {
    use std::fmt::{self, Display};

    use serde::ser::{self, Serialize};

    pub(super) struct Finite;

    /// A float that is not finite, and the fields around it, innermost
    /// first; or a custom error of a `Serialize` impl.
    #[derive(Debug)]
    pub(super) enum NotFinite {
        Float { value: f64, path: Vec<&'static str> },
        Custom(String),
    }

    impl Display for NotFinite {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            match self {
                NotFinite::Float { value, path } => {
                    f.write_str("the float at `")?;
                    for (i, field) in path.iter().rev().enumerate() {
                        if i > 0 {
                            f.write_str(".")?;
                        }
                        f.write_str(field)?;
                    }
                    write!(f, "` is {value}, which JSON cannot hold (it would read back as null)")
                }
                NotFinite::Custom(message) => f.write_str(message),
            }
        }
    }

    impl std::error::Error for NotFinite {}

    impl ser::Error for NotFinite {
        fn custom<T: Display>(message: T) -> Self {
            NotFinite::Custom(message.to_string())
        }
    }

    fn float(value: f64) -> Result<(), NotFinite> {
        if value.is_finite() {
            return Ok(());
        }
        Err(NotFinite::Float {
            value,
            path: Vec::new(),
        })
    }

    /// Checks a field's value, naming the field on the way out of a failure.
    fn inside<T: Serialize + ?Sized>(name: &'static str, value: &T) -> Result<(), NotFinite> {
        value.serialize(Finite).map_err(|mut error| {
            if let NotFinite::Float { path, .. } = &mut error {
                path.push(name);
            }
            error
        })
    }

    impl ser::Serializer for Finite {
        type Ok = ();
        type Error = NotFinite;
        type SerializeSeq = Self;
        type SerializeTuple = Self;
        type SerializeTupleStruct = Self;
        type SerializeTupleVariant = Self;
        type SerializeMap = Self;
        type SerializeStruct = Self;
        type SerializeStructVariant = Self;

        fn serialize_f32(self, v: f32) -> Result<(), NotFinite> {
            float(f64::from(v))
        }
        fn serialize_f64(self, v: f64) -> Result<(), NotFinite> {
            float(v)
        }
        fn serialize_bool(self, _: bool) -> Result<(), NotFinite> {
            Ok(())
        }
        fn serialize_i8(self, _: i8) -> Result<(), NotFinite> {
            Ok(())
        }
        fn serialize_i16(self, _: i16) -> Result<(), NotFinite> {
            Ok(())
        }
        fn serialize_i32(self, _: i32) -> Result<(), NotFinite> {
            Ok(())
        }
        fn serialize_i64(self, _: i64) -> Result<(), NotFinite> {
            Ok(())
        }
        fn serialize_i128(self, _: i128) -> Result<(), NotFinite> {
            Ok(())
        }
        fn serialize_u8(self, _: u8) -> Result<(), NotFinite> {
            Ok(())
        }
        fn serialize_u16(self, _: u16) -> Result<(), NotFinite> {
            Ok(())
        }
        fn serialize_u32(self, _: u32) -> Result<(), NotFinite> {
            Ok(())
        }
        fn serialize_u64(self, _: u64) -> Result<(), NotFinite> {
            Ok(())
        }
        fn serialize_u128(self, _: u128) -> Result<(), NotFinite> {
            Ok(())
        }
        fn serialize_char(self, _: char) -> Result<(), NotFinite> {
            Ok(())
        }
        fn serialize_str(self, _: &str) -> Result<(), NotFinite> {
            Ok(())
        }
        fn serialize_bytes(self, _: &[u8]) -> Result<(), NotFinite> {
            Ok(())
        }
        fn serialize_none(self) -> Result<(), NotFinite> {
            Ok(())
        }
        fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), NotFinite> {
            value.serialize(self)
        }
        fn serialize_unit(self) -> Result<(), NotFinite> {
            Ok(())
        }
        fn serialize_unit_struct(self, _: &'static str) -> Result<(), NotFinite> {
            Ok(())
        }
        fn serialize_unit_variant(self, _: &'static str, _: u32, _: &'static str) -> Result<(), NotFinite> {
            Ok(())
        }
        fn serialize_newtype_struct<T: Serialize + ?Sized>(self, _: &'static str, value: &T) -> Result<(), NotFinite> {
            value.serialize(self)
        }
        fn serialize_newtype_variant<T: Serialize + ?Sized>(
            self,
            _: &'static str,
            _: u32,
            variant: &'static str,
            value: &T,
        ) -> Result<(), NotFinite> {
            inside(variant, value)
        }
        fn serialize_seq(self, _: Option<usize>) -> Result<Self, NotFinite> {
            Ok(self)
        }
        fn serialize_tuple(self, _: usize) -> Result<Self, NotFinite> {
            Ok(self)
        }
        fn serialize_tuple_struct(self, _: &'static str, _: usize) -> Result<Self, NotFinite> {
            Ok(self)
        }
        fn serialize_tuple_variant(
            self,
            _: &'static str,
            _: u32,
            _: &'static str,
            _: usize,
        ) -> Result<Self, NotFinite> {
            Ok(self)
        }
        fn serialize_map(self, _: Option<usize>) -> Result<Self, NotFinite> {
            Ok(self)
        }
        fn serialize_struct(self, _: &'static str, _: usize) -> Result<Self, NotFinite> {
            Ok(self)
        }
        fn serialize_struct_variant(
            self,
            _: &'static str,
            _: u32,
            _: &'static str,
            _: usize,
        ) -> Result<Self, NotFinite> {
            Ok(self)
        }
    }

    impl ser::SerializeSeq for Finite {
        type Ok = ();
        type Error = NotFinite;
        fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), NotFinite> {
            value.serialize(Finite)
        }
        fn end(self) -> Result<(), NotFinite> {
            Ok(())
        }
    }

    impl ser::SerializeTuple for Finite {
        type Ok = ();
        type Error = NotFinite;
        fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), NotFinite> {
            value.serialize(Finite)
        }
        fn end(self) -> Result<(), NotFinite> {
            Ok(())
        }
    }

    impl ser::SerializeTupleStruct for Finite {
        type Ok = ();
        type Error = NotFinite;
        fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), NotFinite> {
            value.serialize(Finite)
        }
        fn end(self) -> Result<(), NotFinite> {
            Ok(())
        }
    }

    impl ser::SerializeTupleVariant for Finite {
        type Ok = ();
        type Error = NotFinite;
        fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), NotFinite> {
            value.serialize(Finite)
        }
        fn end(self) -> Result<(), NotFinite> {
            Ok(())
        }
    }

    impl ser::SerializeMap for Finite {
        type Ok = ();
        type Error = NotFinite;
        fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), NotFinite> {
            key.serialize(Finite)
        }
        fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), NotFinite> {
            value.serialize(Finite)
        }
        fn end(self) -> Result<(), NotFinite> {
            Ok(())
        }
    }

    impl ser::SerializeStruct for Finite {
        type Ok = ();
        type Error = NotFinite;
        fn serialize_field<T: Serialize + ?Sized>(&mut self, key: &'static str, value: &T) -> Result<(), NotFinite> {
            inside(key, value)
        }
        fn end(self) -> Result<(), NotFinite> {
            Ok(())
        }
    }

    impl ser::SerializeStructVariant for Finite {
        type Ok = ();
        type Error = NotFinite;
        fn serialize_field<T: Serialize + ?Sized>(&mut self, key: &'static str, value: &T) -> Result<(), NotFinite> {
            inside(key, value)
        }
        fn end(self) -> Result<(), NotFinite> {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_peek() {
        let event = "Go".to_string();
        let context = 7_u32;
        let entry = Entry {
            v: FORMAT,
            fingerprint: fingerprint("W").into(),
            step: Step::Transition {
                from: "A".into(),
                event: &event,
                to: "B".into(),
            },
            status: StatusImage::Running,
            active: vec!["B".into()],
            history: vec![],
            context: &context,
            activities: vec![ActivityImage {
                state: "B".into(),
                generation: 3,
            }],
            timers: vec![TimerImage {
                state: Some("B".into()),
                send: None,
                generation: 4,
                event: &event,
                deadline: 1_000,
            }],
            succeeded: vec![],
            completed: vec!["A".into()],
            generation: 4,
            priority: 0,
        };
        let bytes = encode(&entry).unwrap();
        let back: Entry<'static, u32, String> = decode(&bytes).unwrap();
        assert_eq!(back.context, 7);
        assert!(matches!(back.step, Step::Transition { ref event, .. } if event == "Go"));
        assert_eq!(back.timers[0].deadline, 1_000);
        assert_eq!(back.activities, entry.activities);
        // A different context type fails the typed decode but not the peek.
        assert!(decode::<String, String>(&bytes).is_err());
        assert_eq!(peek(&bytes).unwrap().active, vec![Name::from("B")]);
        assert!(peek(b"{not json").is_err());
    }

    #[test]
    fn floats_that_json_cannot_hold_are_refused_where_they_are() {
        #[derive(Serialize)]
        struct Price {
            amount: f64,
            rates: Vec<(u8, f32)>,
        }
        let encode_context = |price: &Price| {
            let event = ();
            encode(&Entry {
                v: FORMAT,
                fingerprint: "f".into(),
                step: Step::Transition {
                    from: "A".into(),
                    event: &event,
                    to: "B".into(),
                },
                status: StatusImage::Running,
                active: vec!["B".into()],
                history: vec![],
                context: price,
                activities: vec![],
                timers: vec![],
                succeeded: vec![],
                completed: vec![],
                generation: 0,
                priority: 0,
            })
        };
        let fine = Price {
            amount: 1.5,
            rates: vec![(1, -0.0)],
        };
        assert!(encode_context(&fine).is_ok());
        let nan = Price {
            amount: f64::NAN,
            ..fine
        };
        assert_eq!(
            encode_context(&nan).unwrap_err(),
            "the float at `context.amount` is NaN, which JSON cannot hold (it would read back as null)"
        );
        let infinite = Price {
            amount: 0.0,
            rates: vec![(1, 2.0), (2, f32::NEG_INFINITY)],
        };
        assert_eq!(
            encode_context(&infinite).unwrap_err(),
            "the float at `context.rates` is -inf, which JSON cannot hold (it would read back as null)"
        );
    }

    #[test]
    fn fingerprints_are_stable_and_distinct() {
        assert_eq!(fingerprint(""), "cbf29ce484222325");
        assert_ne!(fingerprint("a"), fingerprint("b"));
    }
}
