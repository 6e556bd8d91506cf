// A negative duration says durations cannot be negative.
use workflow::prelude::*;

workflow! {
    workflow Order {
        initial Charging;
        state Charging {
            invoke charge -> () { timeout -5s; done => Done; error => Failed; }
        }
        final Done;
        final Failed (failure);
    }
}

fn main() {}
