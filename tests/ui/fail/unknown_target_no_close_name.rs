use workflow::prelude::*;

workflow! {
    workflow Order {
        initial Start;
        events { Go }
        state Start { on Go => Zebra; }
        state Shipping { on Go => Done; }
        final Done;
    }
}

fn main() {}
