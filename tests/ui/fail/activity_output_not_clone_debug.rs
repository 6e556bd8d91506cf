use workflow::prelude::*;

/// Neither `Clone` nor `Debug` (serde only).
#[derive(serde::Serialize, serde::Deserialize)]
pub struct Receipt(pub String);

workflow! {
    workflow Order {
        initial Charging;
        state Charging {
            invoke charge_payment -> Receipt { done => Paid; error => Failed; }
        }
        final Paid;
        final Failed (failure);
    }
}

fn main() {}
