use workflow::prelude::*;

workflow! {
    workflow Order {
        initial Start;
        events { Go, Stop }
        state Start { on Go => Done; on Stop => Failed; }
        final Done
        final Failed (failure);
    }
}

fn main() {}
