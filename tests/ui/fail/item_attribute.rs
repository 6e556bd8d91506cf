use workflow::prelude::*;

workflow! {
    workflow Order {
        #[allow(dead_code)]
        context u32;
        initial Start;
        events { Go }
        state Start { on Go => Done; }
        final Done;
    }
}

fn main() {}
