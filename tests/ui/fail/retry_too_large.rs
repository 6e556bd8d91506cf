// A retry count too large for the attempts to fit a u32 says what the largest is.
use workflow::prelude::*;

workflow! {
    workflow Order {
        initial Charging;
        state Charging {
            invoke charge -> () { retry 4294967295; done => Done; error => Failed; }
        }
        final Done;
        final Failed (failure);
    }
}

fn main() {}
