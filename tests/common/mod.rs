//! The design's order workflow, shared by the integration tests.
#![allow(dead_code)]

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use workflow::prelude::*;
use workflow::{Config, Record, RecordKind};

/// What an order instance owns.
#[derive(Debug, Default, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct OrderCtx {
    pub id: u64,
    pub amount: u64,
    pub receipt: Option<String>,
    pub attempts: u32,
    pub log: Vec<String>,
}

/// A receipt from the payment service.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Receipt(pub String);

workflow! {
    /// An order moving through payment, stock and shipping services.
    pub workflow Order {
        context OrderCtx;
        initial Start;

        events {
            /// A customer submitted an order.
            SubmitOrder { id: u64, amount: u64 },
            ShipmentReady,
            OrderDelivered,
            DeliveryFailed { reason: String },
            Cancel,
            Ping,
        }

        state Start {
            on SubmitOrder => Charging / save_order;
        }
        state Charging {
            entry log_entry;
            exit log_exit;
            invoke charge_payment -> Receipt {
                retry 2 backoff 100ms..1s;
                timeout 10s;
                done => Reserving / keep_receipt;
                error => Cancelled / note_error;
            }
            on Cancel => Cancelled;
            on Ping / log_ping;
        }
        state Reserving {
            invoke reserve_stock -> () { done => Shipping; error => Refunding; }
            compensate release_stock;
        }
        state Shipping {
            on ShipmentReady => InTransit;
            after 48h => Escalated;
        }
        state InTransit {
            on OrderDelivered => Completed;
            on DeliveryFailed if can_redeliver => Shipping / count_attempt;
            on DeliveryFailed => Refunding;
        }
        state Refunding {
            invoke refund -> () { done => Cancelled; error => Failed; }
        }
        final Completed;
        final Cancelled;
        final Escalated;
        final Failed (failure);
    }
}

/// Handlers with scripted service behaviour.
#[derive(Default)]
pub struct Services {
    pub payment_failures: AtomicU32,
    pub payment_calls: AtomicU32,
    pub calls: Mutex<Vec<String>>,
    /// How long `charge_payment` takes, in milliseconds of tokio's clock
    /// (0: it answers at once).
    pub payment_delay_ms: AtomicU64,
    /// Payments that went through to the end: the side effect a cancelled
    /// `charge_payment` must never reach.
    pub payments_completed: AtomicU32,
}

impl Services {
    pub fn failing_payments(n: u32) -> Self {
        Self {
            payment_failures: AtomicU32::new(n),
            ..Self::default()
        }
    }

    /// Services whose payment takes `delay` before it answers.
    pub fn slow_payments(delay: Duration) -> Self {
        Self {
            payment_delay_ms: AtomicU64::new(delay.as_millis() as u64),
            ..Self::default()
        }
    }
}

impl OrderHandlers for Services {
    fn can_redeliver(&self, ctx: &OrderCtx, event: &DeliveryFailed) -> bool {
        ctx.attempts < 2 && event.reason != "address unknown"
    }
    fn save_order(&self, ctx: &mut OrderCtx, event: &SubmitOrder) {
        ctx.id = event.id;
        ctx.amount = event.amount;
    }
    fn log_entry(&self, ctx: &mut OrderCtx) {
        ctx.log.push("enter Charging".into());
    }
    fn log_exit(&self, ctx: &mut OrderCtx) {
        ctx.log.push("exit Charging".into());
    }
    fn keep_receipt(&self, ctx: &mut OrderCtx, output: &Receipt) {
        ctx.log.push("keep receipt".into());
        ctx.receipt = Some(output.0.clone());
    }
    fn note_error(&self, ctx: &mut OrderCtx, error: &ActivityError) {
        ctx.log.push(format!("payment failed: {error}"));
    }
    fn log_ping(&self, ctx: &mut OrderCtx, _event: &Ping) {
        ctx.log.push("ping".into());
    }
    fn count_attempt(&self, ctx: &mut OrderCtx, _event: &DeliveryFailed) {
        ctx.attempts += 1;
    }
    async fn charge_payment(&self, ctx: &OrderCtx, call: &ActivityCall) -> Result<Receipt, ActivityError> {
        self.payment_calls.fetch_add(1, Ordering::SeqCst);
        let delay = self.payment_delay_ms.load(Ordering::SeqCst);
        if delay > 0 {
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }
        if self.payment_failures.load(Ordering::SeqCst) > 0 {
            self.payment_failures.fetch_sub(1, Ordering::SeqCst);
            return Err(ActivityError::new("card reader offline"));
        }
        self.payments_completed.fetch_add(1, Ordering::SeqCst);
        Ok(Receipt(format!("receipt-{}-attempt-{}", ctx.id, call.attempt)))
    }
    async fn reserve_stock(&self, _ctx: &OrderCtx, _call: &ActivityCall) -> Result<(), ActivityError> {
        self.calls.lock().unwrap().push("reserve_stock".into());
        Ok(())
    }
    async fn refund(&self, _ctx: &OrderCtx, _call: &ActivityCall) -> Result<(), ActivityError> {
        self.calls.lock().unwrap().push("refund".into());
        Ok(())
    }
    async fn release_stock(&self, _ctx: &OrderCtx, _call: &ActivityCall) -> Result<(), ActivityError> {
        self.calls.lock().unwrap().push("release_stock".into());
        Ok(())
    }
}

impl<T: OrderHandlers> OrderHandlers for std::sync::Arc<T> {
    fn can_redeliver(&self, ctx: &OrderCtx, event: &DeliveryFailed) -> bool {
        (**self).can_redeliver(ctx, event)
    }
    fn save_order(&self, ctx: &mut OrderCtx, event: &SubmitOrder) {
        (**self).save_order(ctx, event)
    }
    fn log_entry(&self, ctx: &mut OrderCtx) {
        (**self).log_entry(ctx)
    }
    fn log_exit(&self, ctx: &mut OrderCtx) {
        (**self).log_exit(ctx)
    }
    fn keep_receipt(&self, ctx: &mut OrderCtx, output: &Receipt) {
        (**self).keep_receipt(ctx, output)
    }
    fn note_error(&self, ctx: &mut OrderCtx, error: &ActivityError) {
        (**self).note_error(ctx, error)
    }
    fn log_ping(&self, ctx: &mut OrderCtx, event: &Ping) {
        (**self).log_ping(ctx, event)
    }
    fn count_attempt(&self, ctx: &mut OrderCtx, event: &DeliveryFailed) {
        (**self).count_attempt(ctx, event)
    }
    async fn charge_payment(&self, ctx: &OrderCtx, call: &ActivityCall) -> Result<Receipt, ActivityError> {
        (**self).charge_payment(ctx, call).await
    }
    async fn reserve_stock(&self, ctx: &OrderCtx, call: &ActivityCall) -> Result<(), ActivityError> {
        (**self).reserve_stock(ctx, call).await
    }
    async fn refund(&self, ctx: &OrderCtx, call: &ActivityCall) -> Result<(), ActivityError> {
        (**self).refund(ctx, call).await
    }
    async fn release_stock(&self, ctx: &OrderCtx, call: &ActivityCall) -> Result<(), ActivityError> {
        (**self).release_stock(ctx, call).await
    }
}

/// An engine configuration without jitter, so backoff delays are exact.
pub fn exact() -> Config {
    Config {
        jitter: 0.0,
        ..Config::default()
    }
}

pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

pub fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// A history record.
pub fn rec(at: Duration, kind: RecordKind) -> Record {
    Record { at, kind }
}

/// A transition record.
pub fn transition(from: &str, event: &'static str, to: &str) -> RecordKind {
    RecordKind::Transition {
        from: from.into(),
        event,
        to: to.into(),
    }
}
