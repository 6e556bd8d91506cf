use workflow::prelude::*;

// A compensation receives the output of the activity it undoes: one
// compensation cannot undo activities with different outputs.
workflow! {
    workflow Order {
        initial Charging;
        events { Finish }
        state Charging {
            invoke charge -> u64 { done => Reserving; error => Failed; }
            compensate undo;
        }
        state Reserving {
            invoke reserve -> String { done => Noting; error => Failed; }
            compensate undo;
        }
        state Noting {
            on Finish => Done;
            compensate undo;
        }
        final Done;
        final Failed (failure);
    }
}

fn main() {}
