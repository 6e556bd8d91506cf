use workflow::prelude::*;

workflow! {
    workflow Order {
        initial Start;
        events { Go }
        state Start {
            on Go => Done;
            on done => Done;
        }
        final Done;
    }
}

fn main() {}
