use workflow::prelude::*;

workflow! {
    workflow Order {
        initial Start;
        events { Go, Stop }
        state Start { on Go => Stuck; on Stop => Done; }
        state Stuck {}
        final Done;
    }
}

fn main() {}
