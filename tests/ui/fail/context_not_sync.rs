use workflow::prelude::*;

workflow! {
    workflow Order {
        context std::cell::Cell<u32>;
        initial Start;
        events { Go }
        state Start { on Go => Done; }
        final Done;
    }
}

fn main() {}
