use workflow::prelude::*;

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Receipt(pub String);

workflow! {
    workflow Order {
        initial Charging;
        state Charging {
            invoke charge_payment -> Reciept {
                done => Paid / keep_receipt;
                error => Failed;
            }
        }
        final Paid;
        final Failed (failure);
    }
}

fn main() {}
