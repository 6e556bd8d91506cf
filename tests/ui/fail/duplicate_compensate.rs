use workflow::prelude::*;

workflow! {
    workflow Order {
        initial Reserving;
        state Reserving {
            invoke reserve_stock -> () { done => Done; error => Failed; }
            compensate release_stock;
            compensate notify_warehouse;
        }
        final Done;
        final Failed (failure);
    }
}

fn main() {}
