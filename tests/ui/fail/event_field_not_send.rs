use std::rc::Rc;
use workflow::prelude::*;

workflow! {
    workflow Order {
        initial Start;
        events { Submit { note: Rc<str> } }
        state Start { on Submit => Done; }
        final Done;
    }
}

fn main() {}
