use workflow::prelude::*;

workflow! {
    workflow Form {
        initial Checkout;
        events { Next }
        state Checkout {
            initial Cash, Card;
            parallel Fill {
                state Pay { state Cash { on Next => Done; } state Card { on Next => Done; } }
                state Ship { state Address { on Next => Done; } }
            }
        }
        final Done;
    }
}

fn main() {}
