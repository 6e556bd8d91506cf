use workflow::prelude::*;

workflow! {
    workflow Order {
        initial Start;
        events { Go }
        on Go => Done;
        history Back;
        state Start {
            context u8;
            on Go => Done;
        }
        final Done;
    }
}

fn main() {}
