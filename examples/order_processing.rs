//! The classic order flow, a thousand orders at once through the engine.
//!
//! An order is submitted, its payment is charged (success: its stock is
//! reserved and the shipment prepared; failure: the order is cancelled), the
//! warehouse reports the shipment ready, the carrier ships it and reports
//! delivery. The payment, stock and shipping services answer after a random
//! latency, sometimes fail, and the stock service sometimes hangs until its
//! timeout; the randomness is seeded, so every run has the same outcomes. An
//! order that fails after its payment and stock steps completed is
//! compensated: the stock is released and the payment refunded.
//!
//! Run it with `cargo run --example order_processing`. It runs in simulated
//! time (tokio's paused clock) and finishes in about a second.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use workflow::prelude::*;
use workflow::{Config, Engine, RecordKind, Status};

/// What each order carries through the workflow.
#[derive(Debug, Default, Clone)]
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
                error => Cancelled / note_failure;
            }
            compensate refund_payment;
        }
        state PreparingShipment {
            invoke reserve_stock -> () {
                retry 1 backoff 20ms..20ms;
                timeout 200ms;
                done => AwaitingPickup;
                error => Failed / note_failure;
            }
            compensate release_stock;
        }
        state AwaitingPickup {
            on ShipmentReady => Shipping;
            after 2d => Failed;
        }
        state Shipping {
            invoke ship -> String {
                retry 2 backoff 10ms..50ms;
                timeout 200ms;
                done => InTransit / keep_tracking;
                error => Failed / note_failure;
            }
        }
        state InTransit {
            on Delivered => Completed;
            on DeliveryFailed => Failed / note_delivery_failure;
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
    attempts: AtomicU32,
}

impl Services {
    /// A number in `0..1000` for this order, service and attempt.
    fn roll(&self, order: u64, service: &str, attempt: u32) -> u64 {
        let mut x = self.seed ^ order.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (u64::from(attempt) << 32);
        for byte in service.bytes() {
            x = (x ^ u64::from(byte)).wrapping_mul(0x100_0000_01B3);
        }
        // splitmix64 finaliser
        x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (x ^ (x >> 31)) % 1000
    }

    /// Waits a random 5..55 ms, then fails with probability `fail_per_mille`;
    /// hangs (until the declared timeout) with probability `hang_per_mille`.
    async fn call(
        &self,
        ctx: &OrderCtx,
        call: &ActivityCall,
        fail_per_mille: u64,
        hang_per_mille: u64,
    ) -> Result<(), ActivityError> {
        self.attempts.fetch_add(1, Ordering::Relaxed);
        let roll = self.roll(ctx.id, call.activity, call.attempt);
        if roll >= 1000 - hang_per_mille {
            std::future::pending::<()>().await;
        }
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
    async fn charge_payment(&self, ctx: &OrderCtx, call: &ActivityCall) -> Result<String, ActivityError> {
        if self.roll(ctx.id, "card", 0) < 50 {
            return Err(ActivityError::non_retryable("card declined"));
        }
        self.call(ctx, call, 200, 0).await?;
        Ok(format!("rcpt-{}-{}", ctx.id, ctx.amount_cents))
    }
    async fn reserve_stock(&self, ctx: &OrderCtx, call: &ActivityCall) -> Result<(), ActivityError> {
        self.call(ctx, call, 100, 60).await
    }
    async fn ship(&self, ctx: &OrderCtx, call: &ActivityCall) -> Result<String, ActivityError> {
        self.call(ctx, call, 100, 0).await?;
        Ok(format!("TRK{:06}", ctx.id * 7919))
    }
    // A compensation receives the output of the step it undoes: the refund
    // names the charge's receipt.
    async fn refund_payment(&self, ctx: &OrderCtx, receipt: &String, call: &ActivityCall) -> Result<(), ActivityError> {
        if ctx.receipt.as_ref() != Some(receipt) {
            return Err(ActivityError::non_retryable(format!(
                "no charge with receipt {receipt}"
            )));
        }
        self.call(ctx, call, 0, 0).await
    }
    async fn release_stock(&self, ctx: &OrderCtx, call: &ActivityCall) -> Result<(), ActivityError> {
        self.call(ctx, call, 0, 0).await
    }
}

/// Plays the warehouse and the carrier for one order: follows its status
/// and sends their events when it waits for them.
async fn outside_world(engine: Engine<Order, Services>, id: String, order: u64) {
    let Ok(mut status) = engine.subscribe(&id) else { return };
    let services = engine.handlers();
    loop {
        let state = match &*status.borrow_and_update() {
            Status::Running(state) => *state,
            _ => return,
        };
        let event = match state {
            OrderState::AwaitingPickup if services.roll(order, "warehouse", 0) >= 5 => Some(OrderEvent::ShipmentReady),
            OrderState::InTransit if services.roll(order, "carrier", 0) < 50 => Some(
                DeliveryFailed {
                    reason: "parcel lost".into(),
                }
                .into(),
            ),
            OrderState::InTransit => Some(OrderEvent::Delivered),
            _ => None,
        };
        if let Some(event) = event {
            tokio::time::sleep(Duration::from_millis(5)).await;
            let _ = engine.send(&id, event).await;
        }
        if status.changed().await.is_err() {
            return;
        }
    }
}

// Simulated time: tokio's clock is paused and jumps ahead whenever every
// task waits, so service latencies, timeouts and the two-day pickup timer
// cost no real time, and every run is the same.
#[tokio::main(flavor = "current_thread", start_paused = true)]
async fn main() {
    println!("The workflow, as Mermaid:\n\n{}", Order::graph().to_mermaid());

    let services = Services {
        seed: 2026,
        attempts: AtomicU32::new(0),
    };
    let engine = Engine::<Order, Services>::with_config(services, Config::default());
    const ORDERS: u64 = 1_000;
    let began = tokio::time::Instant::now();
    let real = std::time::Instant::now();
    let mut tasks = Vec::new();
    for order in 1..=ORDERS {
        let engine = engine.clone();
        tasks.push(tokio::spawn(async move {
            let id = format!("order-{order}");
            let start = tokio::time::Instant::now();
            engine.start(id.clone(), OrderCtx::default()).await?;
            tokio::spawn(outside_world(engine.clone(), id.clone(), order));
            let amount = if order % 250 == 0 { 0 } else { 1_000 + order * 25 };
            let submitted = engine
                .send(
                    &id,
                    SubmitOrder {
                        id: order,
                        amount_cents: amount,
                    }
                    .into(),
                )
                .await;
            let end = match submitted {
                Ok(()) => engine.wait(&id).await?,
                Err(_) => OrderState::Start, // the guard refused a zero amount
            };
            Ok::<_, workflow::EngineError>((id, end, start.elapsed()))
        }));
    }
    let mut outcomes = Vec::new();
    for task in tasks {
        match task.await {
            Ok(Ok(outcome)) => outcomes.push(outcome),
            Ok(Err(error)) => eprintln!("an order failed to run: {error}"),
            Err(error) => eprintln!("an order task panicked: {error}"),
        }
    }
    let elapsed = began.elapsed();

    // The first order's history: every transition, attempt and timer.
    if let Ok(snapshot) = engine.snapshot("order-1").await {
        println!("order-1, step by step:");
        for record in &snapshot.history {
            match &record.kind {
                RecordKind::Transition { from, event, to } => {
                    println!("  {:>8.1?}  {from:<17} --{event:<20}--> {to}", record.at)
                }
                other => println!("  {:>8.1?}  {other:?}", record.at),
            }
        }
    }

    // Retries and compensations, from every order's history.
    let (mut retries, mut compensated, mut compensations) = (0, 0, 0);
    for (id, _, _) in &outcomes {
        let Ok(snapshot) = engine.snapshot(id).await else {
            continue;
        };
        let kinds = snapshot.history.iter().map(|r| &r.kind);
        retries += kinds
            .clone()
            .filter(|k| matches!(k, RecordKind::AttemptStarted { attempt, .. } if *attempt > 1))
            .count();
        let done = kinds.filter(|k| matches!(k, RecordKind::Compensated { .. })).count();
        compensations += done;
        compensated += usize::from(done > 0);
    }

    let count = |state: OrderState| outcomes.iter().filter(|(_, s, _)| *s == state).count();
    let mut times: Vec<Duration> = outcomes
        .iter()
        .filter(|(_, s, _)| *s != OrderState::Start)
        .map(|(_, _, t)| *t)
        .collect();
    times.sort();
    let percentile = |p: usize| {
        times
            .get((times.len() * p / 100).min(times.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    let mean = times.iter().sum::<Duration>() / times.len().max(1) as u32;
    println!(
        "\n{ORDERS} orders in {elapsed:.2?} of simulated time ({:.2?} real):",
        real.elapsed()
    );
    println!("  completed      {:>5}", count(OrderState::Completed));
    println!(
        "  cancelled      {:>5}  (the payment failed: nothing to undo)",
        count(OrderState::Cancelled)
    );
    println!(
        "  failed         {:>5}  ({compensated} compensated: {compensations} compensations run)",
        count(OrderState::Failed)
    );
    println!(
        "  refused        {:>5}  (zero amount: the guard said no)",
        count(OrderState::Start)
    );
    println!(
        "  retries        {retries:>5}  (of {} service calls)",
        engine.handlers().attempts.load(Ordering::Relaxed)
    );
    println!(
        "  time per order: mean {mean:.1?} (a few waited for the two-day pickup timer), median {:.1?}, p99 {:.1?}",
        percentile(50),
        percentile(99)
    );
}
