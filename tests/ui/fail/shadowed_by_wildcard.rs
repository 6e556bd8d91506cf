use workflow::prelude::*;

workflow! {
    workflow Order {
        initial Start;
        events { Go, Stop }
        state Start {
            on _ => Done;
            on Go | Stop => Start;
        }
        final Done;
    }
}

fn main() {}
