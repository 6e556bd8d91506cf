use workflow::prelude::*;

workflow! {
    workflow Order {
        initial Work;
        events { Paid, Cancel }
        parallel Work {
            state Payment { state Charging { on Paid => Charged; } final Charged; }
            state Watch { state Watching { } }
            on done => Done;
            on Cancel => Done;
        }
        final Done;
    }
}

fn main() {}
