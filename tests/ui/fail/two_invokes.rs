use workflow::prelude::*;

workflow! {
    workflow Order {
        initial Working;
        state Working {
            invoke charge_payment -> () { done => Done; error => Failed; }
            invoke reserve_stock -> () { done => Done; error => Failed; }
        }
        final Done;
        final Failed (failure);
    }
}

fn main() {}
