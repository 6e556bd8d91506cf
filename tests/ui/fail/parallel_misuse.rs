use workflow::prelude::*;

workflow! {
    workflow Order {
        initial Work;
        events { Go }
        parallel Work {
            initial Pay;
            on Go => Done;
        }
        final Done { state Inner {} }
    }
}

fn main() {}
