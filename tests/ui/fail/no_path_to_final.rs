use workflow::prelude::*;

workflow! {
    workflow Order {
        initial Start;
        events { Go, Stop }
        state Start { on Go => Ping; on Stop => Done; }
        state Ping { on Go => Pong; }
        state Pong { on Go => Ping; }
        final Done;
    }
}

fn main() {}
