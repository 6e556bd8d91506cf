// A history's default transition enters its parent, the state it remembers:
// a target outside it is refused.
use workflow::prelude::*;

workflow! {
    workflow Player {
        initial Playing;
        events { Pause, Resume, Stop }
        state Playing {
            history Back => Paused;
            state Track { on Stop => Stopped; }
            on Pause => Paused;
        }
        state Paused { on Resume => Back; }
        final Stopped;
    }
}

fn main() {}
