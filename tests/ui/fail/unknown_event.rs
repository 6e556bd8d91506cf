use workflow::prelude::*;

workflow! {
    workflow Order {
        initial Start;
        events { Submit, Cancel }
        state Start { on Submitt => Done; on Cancel => Done; }
        final Done;
    }
}

fn main() {}
