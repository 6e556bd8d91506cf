use workflow::prelude::*;

workflow! {
    workflow Order {
        initial Charging;
        state Charging {
            invoke charge_payment -> () {
                retry 3 backoff 5s..1s;
                done => Paid;
                error => Failed;
            }
        }
        final Paid;
        final Failed (failure);
    }
}

fn main() {}
