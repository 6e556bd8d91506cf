// A duration whose milliseconds overflow a u64 says what the longest of its unit is.
use workflow::prelude::*;

workflow! {
    workflow Order {
        initial Charging;
        state Charging {
            invoke charge -> () { done => Done; error => Failed; }
            after 99999999999999999999d => Failed;
        }
        final Done;
        final Failed (failure);
    }
}

fn main() {}
