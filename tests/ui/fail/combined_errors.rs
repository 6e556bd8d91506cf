// Every resolution error of a block is reported in one build.
use workflow::prelude::*;

workflow! {
    workflow Order {
        initial Strat;
        events { Submit, Cancel, Submit }
        state Start {
            on Submitt => Charging;
            on Cancel => Cancelld;
        }
        #[allow(dead_ends)]
        state Charging { on Cancel => Done; }
        state Start { on Cancel => Done; }
        final Done;
    }
}

fn main() {}
