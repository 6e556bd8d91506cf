use workflow::prelude::*;

workflow! {
    workflow Order {
        initial Work;
        events { Go }
        state Work {
            state First { on Go => Done; }
            state Orphan { on Go => First; }
        }
        final Done;
    }
}

fn main() {}
