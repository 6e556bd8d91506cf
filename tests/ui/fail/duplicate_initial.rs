use workflow::prelude::*;

workflow! {
    workflow Order {
        initial Start;
        initial Done;
        events { Go }
        state Start { on Go => Done; }
        final Done;
    }
}

fn main() {}
