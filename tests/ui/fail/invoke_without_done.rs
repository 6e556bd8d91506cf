use workflow::prelude::*;

workflow! {
    workflow Order {
        initial Charging;
        state Charging {
            invoke charge_payment -> () {
                error => Failed;
            }
        }
        final Failed (failure);
    }
}

fn main() {}
