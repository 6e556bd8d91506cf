use workflow::prelude::*;

workflow! {
    workflow Order {
        initial Charging;
        state Charging {
            entry record;
            invoke charge_payment -> u64 {
                done => Paid / record;
                error => Failed;
            }
        }
        final Paid;
        final Failed (failure);
    }
}

fn main() {}
