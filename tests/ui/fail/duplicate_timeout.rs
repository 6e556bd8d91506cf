use workflow::prelude::*;

workflow! {
    workflow Order {
        initial Charging;
        state Charging {
            invoke charge_payment -> () {
                timeout 10s;
                timeout 20s;
                done => Paid;
                error => Failed;
            }
        }
        final Paid;
        final Failed (failure);
    }
}

fn main() {}
