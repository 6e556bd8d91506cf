use workflow::prelude::*;

workflow! {
    workflow Order {
        initial Waiting;
        state Waiting {
            after 5m => Done;
            after 5m => Failed;
        }
        final Done;
        final Failed (failure);
    }
}

fn main() {}
