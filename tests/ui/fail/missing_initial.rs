use workflow::prelude::*;

workflow! {
    workflow Order {
        events { Go }
        state Start { on Go => Done; }
        final Done;
    }
}

fn main() {}
