use workflow::prelude::*;

workflow! {
    workflow Order {
        initial Start;
        events { Go }
        state Start {
            on Go => Done;
            on Go => Failed;
        }
        final Done;
        final Failed (failure);
    }
}

fn main() {}
