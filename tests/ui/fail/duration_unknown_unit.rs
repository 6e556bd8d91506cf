use workflow::prelude::*;

workflow! {
    workflow Order {
        initial Waiting;
        state Waiting { after 10x => Done; }
        final Done;
    }
}

fn main() {}
