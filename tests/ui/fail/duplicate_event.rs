use workflow::prelude::*;

workflow! {
    workflow Order {
        initial Start;
        events { Go, Stop, Go }
        state Start { on Go => Done; on Stop => Done; }
        final Done;
    }
}

fn main() {}
