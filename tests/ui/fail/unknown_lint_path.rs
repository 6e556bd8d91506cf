// On a state, `#[allow]` takes the workflow's lints only, not rustc's or clippy's.
use workflow::prelude::*;

workflow! {
    workflow Order {
        initial Start;
        events { Go }
        #[allow(clippy::large_enum_variant)]
        state Start { on Go => Done; }
        final Done;
    }
}

fn main() {}
