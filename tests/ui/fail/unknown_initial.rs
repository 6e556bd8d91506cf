use workflow::prelude::*;

workflow! {
    workflow Order {
        initial Strat;
        events { Go }
        state Start { on Go => Done; }
        final Done;
    }
}

fn main() {}
