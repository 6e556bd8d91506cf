//! A `pub` workflow with every construct and a `pub` handler impl under
//! `deny(warnings, missing_docs)`: the generated code is warning-free and documented.
#![deny(warnings, missing_docs)]

use workflow::prelude::*;

/// What an order owns.
#[derive(Debug, Default)]
pub struct OrderCtx {
    /// The order's amount.
    pub amount: u64,
    /// The receipt, once paid.
    pub receipt: Option<Receipt>,
    /// What happened.
    pub log: Vec<String>,
}

/// A receipt from the payment service.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Receipt(pub String);

workflow! {
    /// An order with every construct of the grammar.
    #[allow(unreachable_state)]
    pub workflow Order {
        context OrderCtx;
        initial Start;

        events {
            /// A customer submitted an order.
            SubmitOrder {
                /// The amount, in cents.
                amount: u64,
            },
            Cancel,
            Ping,
            ShipmentReady,
            DeliveryFailed { reason: String },
        }

        /// Waiting for the order.
        state Start {
            on SubmitOrder if affordable => Charging / save_amount, log_event;
            on SubmitOrder => Rejected;
            on Ping / log_event;
            on Cancel => Cancelled;
        }
        state Charging {
            entry log_entry;
            exit log_exit;
            invoke charge_payment -> Receipt {
                retry 3 backoff 100ms..5s;
                timeout 10s;
                resource payments;
                expected 200ms;
                done => Reserving / keep_receipt;
                error => Cancelled / note_error;
            }
            on Cancel => Cancelled / log_event;
            after 1h => Cancelled / log_timeout;
        }
        state Reserving {
            invoke reserve_stock -> () { resource warehouse; done => Shipping; error => Refunding; }
            compensate release_stock;
        }
        state Shipping {
            on ShipmentReady => Delivering;
            after 500ms => Shipping;
            after 2d => Escalated;
        }
        state Delivering {
            on DeliveryFailed if can_retry => Shipping;
            on DeliveryFailed => Refunding;
            after 30s => Completed;
            after 5m => Escalated;
            after 7d => Escalated;
        }
        #[allow(unhandled_error)]
        state Refunding {
            invoke refund -> u64 { done => Cancelled; }
        }
        #[allow(dead_end)]
        state Limbo {}
        final Completed;
        final Cancelled;
        final Rejected { entry log_rejected; }
        final Escalated (failure);
    }
}

/// The services an order calls.
#[derive(Debug, Default)]
pub struct Services;

impl OrderHandlers for Services {
    fn affordable(&self, _ctx: &OrderCtx, event: &SubmitOrder) -> bool {
        event.amount < 10_000
    }
    fn can_retry(&self, ctx: &OrderCtx, event: &DeliveryFailed) -> bool {
        ctx.log.len() < 20 && event.reason != "address unknown"
    }
    fn save_amount(&self, ctx: &mut OrderCtx, event: &SubmitOrder) {
        ctx.amount = event.amount;
    }
    fn log_event(&self, ctx: &mut OrderCtx, event: &OrderEvent) {
        ctx.log.push(event.name().to_string());
    }
    fn log_entry(&self, ctx: &mut OrderCtx) {
        ctx.log.push("enter Charging".into());
    }
    fn log_exit(&self, ctx: &mut OrderCtx) {
        ctx.log.push("exit Charging".into());
    }
    fn log_timeout(&self, ctx: &mut OrderCtx) {
        ctx.log.push("timeout".into());
    }
    fn log_rejected(&self, ctx: &mut OrderCtx) {
        ctx.log.push("rejected".into());
    }
    fn keep_receipt(&self, ctx: &mut OrderCtx, output: &Receipt) {
        ctx.receipt = Some(output.clone());
    }
    fn note_error(&self, ctx: &mut OrderCtx, error: &ActivityError) {
        ctx.log.push(error.to_string());
    }
    async fn charge_payment(&self, ctx: &OrderCtx, call: &ActivityCall) -> Result<Receipt, ActivityError> {
        Ok(Receipt(format!("{}-{}", ctx.amount, call.attempt)))
    }
    async fn reserve_stock(&self, _ctx: &OrderCtx, _call: &ActivityCall) -> Result<(), ActivityError> {
        Ok(())
    }
    async fn refund(&self, ctx: &OrderCtx, _call: &ActivityCall) -> Result<u64, ActivityError> {
        Ok(ctx.amount)
    }
    async fn release_stock(&self, _ctx: &OrderCtx, _call: &ActivityCall) -> Result<(), ActivityError> {
        Ok(())
    }
}

fn main() {
    let services = Services;
    let mut order = Order::new(OrderCtx::default());
    order.handle(&OrderEvent::Ping, &services).unwrap();
    order.handle(&SubmitOrder { amount: 250 }.into(), &services).unwrap();
    assert_eq!(order.state(), OrderState::Charging);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let event = runtime.block_on(order.run_activity(&services)).unwrap();
    order.handle(&event, &services).unwrap();
    assert_eq!(order.state(), OrderState::Reserving);
    assert_eq!(order.context().receipt, Some(Receipt("250-1".into())));
    assert_eq!(
        order.context().log,
        ["Ping", "SubmitOrder", "enter Charging", "exit Charging"]
    );
    assert_eq!(OrderState::ALL.len(), 11);
    assert!(Order::graph().to_dot().contains("Reserving"));
    let resources: Vec<_> = Order::graph()
        .states
        .iter()
        .filter_map(|s| s.invoke.and_then(|i| i.resource))
        .collect();
    assert_eq!(resources, ["payments", "warehouse"]);

    let mut rejected = Order::new(OrderCtx::default());
    rejected
        .handle(&SubmitOrder { amount: 1_000_000 }.into(), &services)
        .unwrap();
    assert_eq!(rejected.state(), OrderState::Rejected);
    assert_eq!(rejected.into_context().log, ["rejected"]);
}
