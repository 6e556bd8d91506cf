use workflow::prelude::*;

workflow! {
    workflow Order {
        initial Charging;
        state Charging {
            invoke charge_payment -> () {
                expected 200ms;
                expected 1s;
                done => Paid;
                error => Failed;
            }
        }
        final Paid;
        final Failed (failure);
    }
}

fn main() {}
