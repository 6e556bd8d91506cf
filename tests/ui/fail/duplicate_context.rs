use workflow::prelude::*;

workflow! {
    workflow Order {
        context u32;
        context String;
        initial Start;
        events { Go }
        state Start { on Go => Done; }
        final Done;
    }
}

fn main() {}
