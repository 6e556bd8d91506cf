use workflow::prelude::*;

workflow! {
    workflow Order {
        initial Start;
        events { StartAfter5m }
        state Start {
            on StartAfter5m => Done;
            after 5m => Done;
        }
        final Done;
    }
}

fn main() {}
