use workflow::prelude::*;

workflow! {
    workflow Order {
        initial Charging;
        state Charging {
            invoke charge_payment -> () {
                done => Paid;
            }
        }
        final Paid;
    }
}

fn main() {}
