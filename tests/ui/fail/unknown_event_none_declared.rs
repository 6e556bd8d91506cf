use workflow::prelude::*;

workflow! {
    workflow Order {
        initial Start;
        state Start { on Go => Done; }
        final Done;
    }
}

fn main() {}
