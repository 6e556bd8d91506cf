// Two workflows in one module declare the same event: both generate a payload struct `Go`.
use workflow::prelude::*;

workflow! {
    workflow Order {
        initial Start;
        events { Go { n: u8 } }
        state Start { on Go => Done; }
        final Done;
    }
}

workflow! {
    workflow Refund {
        initial Start;
        events { Go { n: u8 } }
        state Start { on Go => Done; }
        final Done;
    }
}

fn main() {}
