use workflow::prelude::*;

workflow! {
    workflow Order {
        initial First;
        state First {
            invoke charge_payment -> u64 { done => Second; error => Failed; }
        }
        state Second {
            invoke charge_payment -> String { done => Paid; error => Failed; }
        }
        final Paid;
        final Failed (failure);
    }
}

fn main() {}
