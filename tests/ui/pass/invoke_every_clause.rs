// An invoke with every clause: retry with backoff, timeout, resource, expected, and both arms with actions.
#![deny(warnings)]

use std::time::Duration;

use workflow::prelude::*;

/// A charge's receipt.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Receipt(pub u64);

#[derive(Default)]
pub struct Ctx {
    receipt: Option<Receipt>,
    error: Option<String>,
}

workflow! {
    workflow Payment {
        context Ctx;
        initial Charging;
        state Charging {
            invoke charge -> Receipt {
                resource payments;
                retry 3 backoff 100ms..2s;
                timeout 30s;
                expected 200ms;
                done => Paid / keep_receipt, log_done;
                error => Declined / keep_error;
            }
        }
        final Paid;
        final Declined (failure);
    }
}

struct Bank;

impl PaymentHandlers for Bank {
    fn keep_receipt(&self, ctx: &mut Ctx, output: &Receipt) {
        ctx.receipt = Some(output.clone());
    }
    fn log_done(&self, _ctx: &mut Ctx, output: &Receipt) {
        assert_eq!(output.0, 42);
    }
    fn keep_error(&self, ctx: &mut Ctx, error: &ActivityError) {
        ctx.error = Some(error.message().to_string());
    }
    async fn charge(&self, _ctx: &Ctx, call: &ActivityCall) -> Result<Receipt, ActivityError> {
        assert_eq!(call.activity, "charge");
        Ok(Receipt(42))
    }
}

fn main() {
    let invoke = Payment::graph().states[0].invoke.unwrap();
    assert_eq!(invoke.resource, Some("payments"));
    assert_eq!(invoke.expected, Some(Duration::from_millis(200)));
    assert_eq!(
        invoke.policy,
        RetryPolicy {
            max_attempts: 4,
            initial_interval: Duration::from_millis(100),
            max_interval: Duration::from_secs(2),
            timeout: Some(Duration::from_secs(30)),
        }
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let mut payment = Payment::new(Ctx::default());
    let event = runtime.block_on(payment.run_activity(&Bank)).unwrap();
    assert!(matches!(event, PaymentEvent::ChargeDone(Receipt(42))));
    payment.handle(&event, &Bank).unwrap();
    assert_eq!(payment.state(), PaymentState::Paid);
    assert_eq!(payment.context().receipt, Some(Receipt(42)));

    let mut declined = Payment::new(Ctx::default());
    declined
        .handle(&PaymentEvent::ChargeFailed(ActivityError::new("no funds")), &Bank)
        .unwrap();
    assert!(declined.state().is_failure());
    assert_eq!(declined.context().error.as_deref(), Some("no funds"));
}
