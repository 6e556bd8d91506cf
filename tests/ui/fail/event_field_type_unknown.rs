use workflow::prelude::*;

workflow! {
    workflow Order {
        initial Start;
        events { Submit { amount: Money } }
        state Start { on Submit => Done; }
        final Done;
    }
}

fn main() {}
