use workflow::prelude::*;

workflow! {
    workflow Shop {
        initial Waiting;
        events { Ship }
        state Waiting { on Ship if paid && in(Waiting) && stocked => Sent; }
        final Sent;
    }
}

fn main() {}
