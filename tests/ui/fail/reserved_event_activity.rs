use workflow::prelude::*;

workflow! {
    workflow Order {
        initial Start;
        events { Go, ChargePaymentDone }
        state Start { on Go => Charging; }
        state Charging {
            invoke charge_payment -> () { done => Paid; error => Failed; }
            on ChargePaymentDone => Paid;
        }
        final Paid;
        final Failed (failure);
    }
}

fn main() {}
