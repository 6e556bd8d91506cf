// `#[cfg]` on an event, an event field or the workflow would remove one of
// the items generated from it and leave the others: it is refused, with
// where to put it instead. A `cfg_attr` that may expand to `cfg` too; one
// that adds a derive is fine.
use workflow::prelude::*;

workflow! {
    #[cfg(test)]
    workflow Order {
        initial Start;
        events {
            #[cfg(feature = "audit")]
            Audit,
            Submit {
                id: u64,
                #[cfg(feature = "audit")]
                auditor: String,
            },
            #[cfg_attr(test, cfg(feature = "audit"))]
            Review,
            #[cfg_attr(test, derive(PartialOrd))]
            Cancel,
        }
        state Start { on Submit | Audit | Review | Cancel => Done; }
        final Done;
    }
}

fn main() {}
