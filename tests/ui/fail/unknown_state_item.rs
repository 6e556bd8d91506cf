use workflow::prelude::*;

workflow! {
    workflow Order {
        initial Start;
        events { Go }
        state Start { onn Go => Done; }
        final Done;
    }
}

fn main() {}
