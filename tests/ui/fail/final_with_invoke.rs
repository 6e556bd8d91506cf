use workflow::prelude::*;

workflow! {
    workflow Order {
        initial Start;
        events { Go }
        state Start { on Go => Done; }
        final Done {
            invoke archive -> ();
        }
    }
}

fn main() {}
