use workflow::prelude::*;

workflow! {
    workflow Order {
        initial Waiting;
        state Waiting { after 1.5s => Done; }
        final Done;
    }
}

fn main() {}
