use workflow::prelude::*;

workflow! {
    workflow Order {
        initial Shipping;
        events { Go }
        state Shipping {
            state Packing { on Go => Done; }
        }
        final Done;
    }
}

fn main() {}
