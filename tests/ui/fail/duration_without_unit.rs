use workflow::prelude::*;

workflow! {
    workflow Order {
        initial Waiting;
        state Waiting { after 10 => Done; }
        final Done;
    }
}

fn main() {}
