// Every future is `Send`: the machine's `run_activity` and the handler's
// activities run as tasks on a multi-threaded tokio runtime.
#![deny(warnings)]

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use workflow::prelude::*;

/// The order's context.
#[derive(Debug, Default)]
pub struct OrderCtx {
    id: u64,
}

/// A receipt.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Receipt(pub String);

workflow! {
    workflow Order {
        context OrderCtx;
        initial Charging;
        state Charging {
            invoke charge_payment -> Receipt {
                retry 2 backoff 1ms..10ms;
                timeout 5s;
                done => Reserving;
                error => Failed;
            }
            compensate refund;
        }
        state Reserving {
            invoke reserve_stock -> () { done => Done; error => Failed; }
        }
        final Done;
        final Failed (failure);
    }
}

#[derive(Default)]
struct Services {
    calls: AtomicU32,
}

impl OrderHandlers for Services {
    async fn charge_payment(&self, ctx: &OrderCtx, call: &ActivityCall) -> Result<Receipt, ActivityError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        tokio::task::yield_now().await;
        if call.attempt < 2 {
            return Err(ActivityError::new("try again"));
        }
        Ok(Receipt(format!("receipt-{}", ctx.id)))
    }
    async fn reserve_stock(&self, _ctx: &OrderCtx, _call: &ActivityCall) -> Result<(), ActivityError> {
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        Ok(())
    }
    async fn refund(&self, _ctx: &OrderCtx, _receipt: &Receipt, _call: &ActivityCall) -> Result<(), ActivityError> {
        Ok(())
    }
}

fn assert_send<T: Send>(value: T) -> T {
    value
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .unwrap();
    let handlers = Arc::new(Services::default());

    // The machine's activity runner, on an owned machine, as a spawned task.
    let machine = Order::new(OrderCtx { id: 7 });
    let task = {
        let handlers = Arc::clone(&handlers);
        runtime.spawn(async move {
            let event = machine.run_activity(&*handlers).await;
            (machine, event)
        })
    };
    let (mut machine, event) = runtime.block_on(task).unwrap();
    let event = event.unwrap();
    assert!(matches!(&event, OrderEvent::ChargePaymentDone(Receipt(r)) if r == "receipt-7"));
    machine.handle(&event, &*handlers).unwrap();
    assert_eq!(machine.state(), OrderState::Reserving);
    assert_eq!(handlers.calls.load(Ordering::SeqCst), 2);

    // Through the `Workflow` trait.
    let task = {
        let handlers = Arc::clone(&handlers);
        runtime.spawn(async move { <Order as Workflow<Services>>::run_activity(&machine, &*handlers).await })
    };
    let next = runtime.block_on(task).unwrap();
    assert!(matches!(next, Some(OrderEvent::ReserveStockDone(()))));

    // The handler's own activity futures, spawned directly.
    let direct = {
        let handlers = Arc::clone(&handlers);
        runtime.spawn(assert_send(async move {
            let ctx = OrderCtx { id: 9 };
            let call = ActivityCall {
                activity: "charge_payment",
                attempt: 2,
                key: 1,
            };
            let receipt = handlers.charge_payment(&ctx, &call).await;
            let refunded = match &receipt {
                Ok(receipt) => handlers.refund(&ctx, receipt, &call).await,
                Err(error) => Err(error.clone()),
            };
            (receipt, refunded)
        }))
    };
    let (receipt, refunded) = runtime.block_on(direct).unwrap();
    assert_eq!(receipt.unwrap(), Receipt("receipt-9".into()));
    refunded.unwrap();
}
