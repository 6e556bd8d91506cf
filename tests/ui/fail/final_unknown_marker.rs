use workflow::prelude::*;

workflow! {
    workflow Order {
        initial Start;
        events { Go }
        state Start { on Go => Done; }
        final Done (failed);
    }
}

fn main() {}
