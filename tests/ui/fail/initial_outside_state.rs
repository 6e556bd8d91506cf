use workflow::prelude::*;

workflow! {
    workflow Form {
        initial Checkout;
        events { Next }
        state Checkout {
            initial Card, Done;
            parallel Fill {
                state Pay { state Card { on Next => Done; } }
                state Ship { state Address { on Next => Done; } }
            }
        }
        final Done;
    }
}

fn main() {}
