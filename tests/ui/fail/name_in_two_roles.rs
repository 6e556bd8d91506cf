use workflow::prelude::*;

workflow! {
    workflow Order {
        initial Start;
        events { Submit, Cancel }
        state Start {
            on Submit if check => Done;
            on Cancel => Done / check;
        }
        final Done;
    }
}

fn main() {}
