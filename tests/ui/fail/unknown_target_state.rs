use workflow::prelude::*;

workflow! {
    workflow Order {
        initial Start;
        events { Go }
        state Start { on Go => Shiping; }
        state Shipping { on Go => Done; }
        final Done;
    }
}

fn main() {}
