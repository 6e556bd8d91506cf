// Unit events and named-field events, with doc comments on events and fields.
#![deny(warnings, missing_docs)]
//! Events of every shape.

use workflow::prelude::*;

workflow! {
    /// A parcel.
    pub workflow Parcel {
        initial Packing;
        events {
            /// The parcel is sealed.
            Sealed,
            /// The carrier collected it.
            Collected {
                /// Who collected it.
                carrier: String,
                /// When, in seconds since the epoch.
                at: u64,
            },
            Lost { reason: String },
            Weighed { grams: u32, },
        }
        state Packing {
            on Weighed => Packing;
            on Sealed => Ready;
        }
        state Ready {
            on Collected => Shipped;
            on Lost => Gone;
        }
        final Shipped;
        final Gone (failure);
    }
}

fn main() {
    let sealed: Sealed = Sealed;
    let collected = Collected {
        carrier: "post".to_string(),
        at: 7,
    };
    let copy = collected.clone();
    assert_eq!((copy.carrier.as_str(), copy.at), ("post", 7));
    let events: [ParcelEvent; 4] = [
        Weighed { grams: 250 }.into(),
        sealed.into(),
        ParcelEvent::Collected(collected),
        Lost { reason: "rain".into() }.into(),
    ];
    assert_eq!(events[3].name(), "Lost");
    assert!(matches!(&events[0], ParcelEvent::Weighed(Weighed { grams: 250 })));
    let mut parcel = Parcel::new(());
    for event in &events[..3] {
        parcel.handle(event, &()).unwrap();
    }
    assert_eq!(parcel.state(), ParcelState::Shipped);
    assert!(parcel.is_finished());
    assert_eq!(
        Parcel::graph().events[1].fields,
        &[("carrier", "String"), ("at", "u64")]
    );
}

impl ParcelHandlers for () {}
