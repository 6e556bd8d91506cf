use workflow::prelude::*;

workflow! {
    workflow Order {
        initial Start;
        events { Go(u8) }
        state Start { on Go => Done; }
        final Done;
    }
}

fn main() {}
