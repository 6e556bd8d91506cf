use workflow::prelude::*;

workflow! {
    workflow Order {
        initial Start;
        events { Go }
        #[derive(Default)]
        state Start { on Go => Done; }
        final Done;
    }
}

fn main() {}
