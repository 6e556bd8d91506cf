use workflow::prelude::*;

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Receipt(pub String);

workflow! {
    workflow Order {
        context u64;
        initial Start;
        events { Submit { amount: u64 }, Cancel }
        state Start {
            on Submit if affordable => Charging;
            on Cancel => Failed;
        }
        state Charging {
            invoke charge_payment -> Receipt {
                done => Paid;
                error => Failed;
            }
        }
        final Paid;
        final Failed (failure);
    }
}

struct Services;

impl OrderHandlers for Services {
    fn affordable(&self, _amount: &u64, _event: &Cancel) -> bool {
        true
    }
    async fn charge_payment(&self, _amount: &u64, _call: &ActivityCall) -> Result<String, ActivityError> {
        Ok("r-1".to_string())
    }
}

fn main() {}
