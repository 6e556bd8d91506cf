use workflow::prelude::*;

workflow! {
    workflow Order {
        initial Start;
        events { Go, Reopen }
        state Start { on Go => Done; }
        final Done {
            on Reopen => Start;
        }
    }
}

fn main() {}
