//! The classic order flow, driven by hand against simulated services.
//!
//! An order is submitted, its payment is charged (success: its stock is
//! reserved and the shipment prepared; failure: the order is cancelled and
//! refunded), the warehouse reports the shipment ready, the carrier ships it
//! and reports delivery. The payment, stock and shipping services answer after
//! a random latency and sometimes fail; the randomness is seeded, so every run
//! prints the same outcomes.
//!
//! Run it with `cargo run --example order_processing`.

use std::time::Duration;

use workflow::prelude::*;

/// What each order carries through the workflow.
#[derive(Debug, Default)]
struct OrderCtx {
    id: u64,
    amount_cents: u64,
    receipt: Option<String>,
    tracking: Option<String>,
    failure: Option<String>,
}

workflow! {
    /// An order moving through the payment, stock and shipping services.
    workflow Order {
        context OrderCtx;
        initial Start;

        events {
            /// A customer submitted an order.
            SubmitOrder { id: u64, amount_cents: u64 },
            /// The warehouse packed the order.
            ShipmentReady,
            /// The carrier delivered the parcel.
            Delivered,
            /// The carrier gave up.
            DeliveryFailed { reason: String },
        }

        state Start {
            on SubmitOrder if positive_amount => ProcessingOrder / save_order;
        }
        state ProcessingOrder {
            invoke charge_payment -> String {
                retry 2 backoff 20ms..100ms;
                timeout 300ms;
                done => PreparingShipment / keep_receipt;
                error => CancellingOrder / note_failure;
            }
        }
        state PreparingShipment {
            invoke reserve_stock -> () {
                retry 1;
                done => AwaitingPickup;
                error => CancellingOrder / note_failure;
            }
            compensate release_stock;
        }
        state AwaitingPickup {
            on ShipmentReady => Shipping;
            after 2d => CancellingOrder;
        }
        state Shipping {
            invoke ship -> String { done => InTransit / keep_tracking; error => CancellingOrder / note_failure; }
        }
        state InTransit {
            on Delivered => Completed;
            on DeliveryFailed => CancellingOrder / note_delivery_failure;
        }
        state CancellingOrder {
            invoke refund -> () { retry 3 backoff 10ms..50ms; done => Cancelled; error => Failed / note_failure; }
        }
        final Completed;
        final Cancelled;
        final Failed (failure);
    }
}

/// Simulated services: latency and failures drawn from a seeded generator,
/// keyed by order, service and attempt so concurrent orders stay reproducible.
struct Services {
    seed: u64,
}

impl Services {
    /// A number in `0..1000` for this order, service and attempt.
    fn roll(&self, order: u64, service: &str, attempt: u32) -> u64 {
        let mut x = self.seed ^ order.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ u64::from(attempt) << 32;
        for byte in service.bytes() {
            x = (x ^ u64::from(byte)).wrapping_mul(0x100_0000_01B3);
        }
        // splitmix64 finaliser
        x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (x ^ (x >> 31)) % 1000
    }

    /// Waits a random 5..55 ms, then fails with probability `fail_per_mille`.
    async fn call(&self, ctx: &OrderCtx, call: ActivityCall, fail_per_mille: u64) -> Result<(), ActivityError> {
        let roll = self.roll(ctx.id, call.activity, call.attempt);
        tokio::time::sleep(Duration::from_millis(5 + roll % 50)).await;
        if roll < fail_per_mille {
            return Err(ActivityError::new(format!(
                "{} unavailable (attempt {})",
                call.activity, call.attempt
            )));
        }
        Ok(())
    }
}

impl OrderHandlers for Services {
    fn positive_amount(&self, _ctx: &OrderCtx, event: &SubmitOrder) -> bool {
        event.amount_cents > 0
    }
    fn save_order(&self, ctx: &mut OrderCtx, event: &SubmitOrder) {
        ctx.id = event.id;
        ctx.amount_cents = event.amount_cents;
    }
    fn keep_receipt(&self, ctx: &mut OrderCtx, output: &String) {
        ctx.receipt = Some(output.clone());
    }
    fn keep_tracking(&self, ctx: &mut OrderCtx, output: &String) {
        ctx.tracking = Some(output.clone());
    }
    fn note_failure(&self, ctx: &mut OrderCtx, error: &ActivityError) {
        ctx.failure = Some(format!("{error} after {} attempt(s)", error.attempts()));
    }
    fn note_delivery_failure(&self, ctx: &mut OrderCtx, event: &DeliveryFailed) {
        ctx.failure = Some(event.reason.clone());
    }
    async fn charge_payment(&self, ctx: &OrderCtx, call: ActivityCall) -> Result<String, ActivityError> {
        if self.roll(ctx.id, "card", 0) < 150 {
            return Err(ActivityError::non_retryable("card declined"));
        }
        self.call(ctx, call, 300).await?;
        Ok(format!("rcpt-{}-{}", ctx.id, ctx.amount_cents))
    }
    async fn reserve_stock(&self, ctx: &OrderCtx, call: ActivityCall) -> Result<(), ActivityError> {
        self.call(ctx, call, 150).await
    }
    async fn ship(&self, ctx: &OrderCtx, call: ActivityCall) -> Result<String, ActivityError> {
        self.call(ctx, call, 50).await?;
        Ok(format!("TRK{:06}", ctx.id * 7919))
    }
    async fn refund(&self, ctx: &OrderCtx, call: ActivityCall) -> Result<(), ActivityError> {
        self.call(ctx, call, 100).await
    }
    async fn release_stock(&self, ctx: &OrderCtx, call: ActivityCall) -> Result<(), ActivityError> {
        self.call(ctx, call, 0).await
    }
}

/// Runs one order to a final state, printing every transition. States that
/// wait for the outside world get their event from the simulated warehouse
/// and carrier.
async fn run_order(
    id: u64,
    amount_cents: u64,
    services: &Services,
) -> Result<(OrderState, OrderCtx), Rejected<OrderState>> {
    let mut order = Order::new(OrderCtx::default());
    let mut next: Option<OrderEvent> = Some(SubmitOrder { id, amount_cents }.into());
    while let Some(event) = next.take() {
        let step = order.handle(&event, services)?;
        println!("order {id:>2}: {:<17} --{:<20}--> {}", step.from, event.name(), step.to);
        if order.is_finished() {
            break;
        }
        next = match order.run_activity(services).await {
            Some(outcome) => Some(outcome),
            None => Some(outside_world(&order, services)),
        };
    }
    let state = order.state();
    Ok((state, order.into_context()))
}

/// What the warehouse or the carrier says next for an order waiting on them.
fn outside_world(order: &Order, services: &Services) -> OrderEvent {
    let id = order.context().id;
    match order.state() {
        OrderState::AwaitingPickup if services.roll(id, "warehouse", 0) < 100 => OrderEvent::AwaitingPickupAfter2d,
        OrderState::AwaitingPickup => OrderEvent::ShipmentReady,
        OrderState::InTransit if services.roll(id, "carrier", 0) < 150 => DeliveryFailed {
            reason: "parcel lost".into(),
        }
        .into(),
        _ => OrderEvent::Delivered,
    }
}

#[tokio::main]
async fn main() {
    println!("The workflow, as Mermaid:\n\n{}", Order::graph().to_mermaid());

    let services = std::sync::Arc::new(Services { seed: 2026 });
    let mut tasks = Vec::new();
    for id in 1..=20u64 {
        let services = services.clone();
        let amount = if id == 5 { 0 } else { 1_000 + id * 250 };
        tasks.push(tokio::spawn(
            async move { (id, run_order(id, amount, &services).await) },
        ));
    }
    let mut outcomes = Vec::new();
    for task in tasks {
        match task.await {
            Ok(outcome) => outcomes.push(outcome),
            Err(error) => eprintln!("an order task failed: {error}"),
        }
    }

    println!("\nSummary:");
    for (id, outcome) in outcomes {
        match outcome {
            Ok((state, ctx)) => println!(
                "order {id:>2}: {state:<9} receipt={:<16} tracking={:<10} {}",
                ctx.receipt.as_deref().unwrap_or("-"),
                ctx.tracking.as_deref().unwrap_or("-"),
                ctx.failure.as_deref().unwrap_or("")
            ),
            Err(rejected) => println!("order {id:>2}: not started: {rejected}"),
        }
    }
}
