use workflow::prelude::*;

workflow! {
    workflow Form {
        initial Card, Address / open_form;
        events { Next }
        parallel Fill {
            state Pay { state Card { on Next => Done; } }
            state Ship { state Address { on Next => Done; } }
        }
        final Done;
    }
}

fn main() {}
