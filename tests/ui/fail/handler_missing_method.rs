use workflow::prelude::*;

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Receipt(pub String);

workflow! {
    workflow Order {
        context u64;
        initial Start;
        events { Submit { amount: u64 } }
        state Start {
            on Submit if affordable => Charging / save_amount;
        }
        state Charging {
            invoke charge_payment -> Receipt {
                done => Paid / keep_receipt;
                error => Failed;
            }
        }
        final Paid;
        final Failed (failure);
    }
}

struct Services;

impl OrderHandlers for Services {
    fn affordable(&self, _amount: &u64, event: &Submit) -> bool {
        event.amount < 1_000
    }
    fn save_amount(&self, amount: &mut u64, event: &Submit) {
        *amount = event.amount;
    }
    async fn charge_payment(&self, _amount: &u64, _call: &ActivityCall) -> Result<Receipt, ActivityError> {
        Ok(Receipt("r-1".into()))
    }
}

fn main() {}
