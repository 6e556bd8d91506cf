use std::rc::Rc;
use workflow::prelude::*;

workflow! {
    workflow Order {
        initial Charging;
        state Charging {
            invoke charge_payment -> Rc<u64> { done => Paid; error => Failed; }
        }
        final Paid;
        final Failed (failure);
    }
}

fn main() {}
