use workflow::prelude::*;

workflow! {
    workflow Order {
        initial Shipping;
        events { Go }
        state Shipping {
            initial Done;
            state Packing { on Go => Done; }
        }
        final Done;
    }
}

fn main() {}
