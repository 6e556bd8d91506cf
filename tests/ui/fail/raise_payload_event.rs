use workflow::prelude::*;

workflow! {
    workflow Order {
        initial Start;
        events { Go, Charge { cents: u64 } }
        state Start {
            on Go / raise Charge;
            on Charge => Done / send Charge after 1s;
        }
        final Done;
    }
}

fn main() {}
