// Every check of a resolved block is reported in one build.
use workflow::prelude::*;

workflow! {
    workflow Order {
        initial Start;
        events { Go, Stop }
        state Start {
            on Go => Charging;
            on Go => Done;
            on Stop => Stuck;
        }
        state Charging {
            invoke charge_payment -> () {
                timeout 0s;
                error => Done;
            }
        }
        state Stuck {}
        state Orphan { on Go => Done; }
        final Done { on Stop => Start; }
    }
}

fn main() {}
