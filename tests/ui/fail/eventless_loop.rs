// An unguarded `always` back into its own state loops forever: a lint,
// switched off with `#[allow(eventless_loop)]`.
use workflow::prelude::*;

workflow! {
    workflow Order {
        initial Start;
        events { Go, Stop }
        state Start { on Go => Spin; }
        state Spin { always => Spin; on Stop => Done; }
        final Done;
    }
}

fn main() {}
