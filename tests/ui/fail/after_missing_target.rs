use workflow::prelude::*;

workflow! {
    workflow Order {
        initial Waiting;
        state Waiting { after 5m Done; }
        final Done;
    }
}

fn main() {}
