// Several targets must be able to be active at once: each in a different
// region of one parallel state. Plain siblings cannot.
use workflow::prelude::*;

workflow! {
    workflow Order {
        initial Start;
        events { Submit, Shipped, Billed }
        state Start { on Submit => Shipping, Billing; }
        state Shipping { on Shipped => Done; }
        state Billing { on Billed => Done; }
        final Done;
    }
}

fn main() {}
