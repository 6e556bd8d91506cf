// A negative retry count says what a retry count is.
use workflow::prelude::*;

workflow! {
    workflow Order {
        initial Charging;
        state Charging {
            invoke charge -> () { retry -1; done => Done; error => Failed; }
        }
        final Done;
        final Failed (failure);
    }
}

fn main() {}
