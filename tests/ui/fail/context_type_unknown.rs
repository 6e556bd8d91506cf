use workflow::prelude::*;

workflow! {
    workflow Order {
        context OrderContext;
        initial Start;
        events { Go }
        state Start { on Go => Done; }
        final Done;
    }
}

fn main() {}
