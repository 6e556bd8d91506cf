// A decision whose `always` arms are all guarded is stuck when no guard
// holds: a lint, switched off with `#[allow(decision_without_else)]`.
use workflow::prelude::*;

workflow! {
    workflow Order {
        initial Start;
        events { Go }
        state Start { on Go => Decide; }
        state Decide {
            always if in_stock => Shipping;
            always if can_backorder => Backorder;
        }
        final Shipping;
        final Backorder;
    }
}

fn main() {}
