use workflow::prelude::*;

workflow! {
    workflow Order {
        initial Start;
        events { OrderState }
        state Start { on OrderState => Done; }
        final Done;
    }
}

fn main() {}
