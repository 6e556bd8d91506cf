use workflow::prelude::*;

workflow! {
    workflow Order {
        initial Start;
        events { Go, Stop }
        state Start {
            on Go => Done
            on Stop => Done;
        }
        final Done;
    }
}

fn main() {}
