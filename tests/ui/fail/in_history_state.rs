use workflow::prelude::*;

workflow! {
    workflow Shop {
        initial Run;
        events { Pay, Ship }
        parallel Run {
            state Payment {
                history Last;
                state Unpaid { on Pay => Paid; }
                final Paid;
            }
            state Shipping {
                state Waiting { on Ship if in(Last) => Sent; }
                final Sent;
            }
        }
    }
}

fn main() {}
