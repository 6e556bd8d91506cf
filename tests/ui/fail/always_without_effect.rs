use workflow::prelude::*;

workflow! {
    workflow Order {
        initial Start;
        events { Go }
        state Start {
            always if ready;
            on Go => Done;
        }
        final Done;
    }
}

fn main() {}
