//! An order as a statechart: payment and stock reservation run in parallel
//! and join, a decision node picks shipping or backorder, and a `Cancel`
//! declared once applies in every step of fulfilment.
//!
//! Run it with `cargo run --example order_dag`. It prints the diagram, then
//! drives three orders by hand: one that ships, one that waits for stock,
//! and one cancelled half-way through.

use workflow::prelude::*;

/// What an order carries.
#[derive(Debug, Default)]
struct OrderCtx {
    in_stock: bool,
    receipt: Option<String>,
    log: Vec<String>,
}

workflow! {
    /// An order: a fork (payment and stock), a join, a decision.
    workflow Order {
        context OrderCtx;
        initial Fulfilment;
        events { Cancel, Restocked }

        state Fulfilment {
            initial Preparing;
            on Cancel => Cancelled / log_cancel;      // in every child of Fulfilment
            parallel Preparing {
                state Payment {
                    state Charging {
                        invoke charge_payment -> String {
                            retry 2 backoff 10ms..50ms;
                            done => Paid / keep_receipt;
                            error => PaymentFailed;
                        }
                    }
                    final Paid;
                }
                state Stock {
                    state Reserving {
                        invoke reserve_stock -> bool { done => Reserved / note_stock; error => Reserved; }
                        compensate release_stock;
                    }
                    final Reserved;
                }
                on done => Decide;                      // the join: every region is final
            }
            state Decide {                              // the decision node
                always if in_stock => Shipping;
                always => Backorder;
            }
            state Backorder { on Restocked => Shipping; }
            state Shipping {
                invoke ship -> () { done => Delivered; error => Cancelled; }
            }
        }
        state PaymentFailed { always => Cancelled; }
        final Delivered;
        final Cancelled (failure);
    }
}

/// Simulated services: the payment always succeeds, the stock depends on the order.
struct Services {
    stock: bool,
}

impl OrderHandlers for Services {
    fn in_stock(&self, ctx: &OrderCtx) -> bool {
        ctx.in_stock
    }
    fn log_cancel(&self, ctx: &mut OrderCtx, _event: &Cancel) {
        ctx.log.push("cancelled by the customer".into());
    }
    fn keep_receipt(&self, ctx: &mut OrderCtx, receipt: &String) {
        ctx.receipt = Some(receipt.clone());
    }
    fn note_stock(&self, ctx: &mut OrderCtx, in_stock: &bool) {
        ctx.in_stock = *in_stock;
    }
    async fn charge_payment(&self, _ctx: &OrderCtx, call: &ActivityCall) -> Result<String, ActivityError> {
        Ok(format!("rcpt-attempt-{}", call.attempt))
    }
    async fn reserve_stock(&self, _ctx: &OrderCtx, _call: &ActivityCall) -> Result<bool, ActivityError> {
        Ok(self.stock)
    }
    // A compensation receives the output of the activity it undoes.
    async fn release_stock(&self, _ctx: &OrderCtx, reserved: &bool, _call: &ActivityCall) -> Result<(), ActivityError> {
        println!("    compensation: stock released (reserved: {reserved})");
        Ok(())
    }
    async fn ship(&self, _ctx: &OrderCtx, _call: &ActivityCall) -> Result<(), ActivityError> {
        Ok(())
    }
}

/// Drives one order: runs activities while any active state has one, and
/// delivers the scripted outside events when the machine waits. Gives the
/// order and the stock's done event (what its compensation needs).
async fn run(name: &str, services: &Services, mut outside: Vec<OrderEvent>) -> (Order, Option<OrderEvent>) {
    println!("\n{name}:");
    let mut reserved = None;
    let mut order = Order::new(OrderCtx::default());
    order.start(services);
    println!("    start              -> {}", order.state());
    while !order.is_finished() {
        let event = match order.run_activity(services).await {
            Some(outcome) => outcome,
            None if !outside.is_empty() => outside.remove(0),
            None => break,
        };
        if matches!(event, OrderEvent::ReserveStockDone(_)) {
            reserved = Some(event.clone());
        }
        match order.handle(&event, services) {
            Ok(_) => println!("    {:<18} -> {}", event.name(), order.state()),
            Err(rejected) => println!("    {rejected}"),
        }
        if !outside.is_empty() && matches!(outside[0], OrderEvent::Cancel) && order.is_in(OrderState::Preparing) {
            let cancel = outside.remove(0);
            let step = order.handle(&cancel, services).map(|_| order.state().to_string());
            println!(
                "    {:<18} -> {}",
                cancel.name(),
                step.unwrap_or_else(|r| r.to_string())
            );
        }
    }
    (order, reserved)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    println!("{}", Order::graph().to_mermaid());

    let (shipped, _) = run("An order in stock", &Services { stock: true }, vec![]).await;
    assert!(shipped.is_in(OrderState::Delivered));

    let (waited, _) = run(
        "An order waiting for stock",
        &Services { stock: false },
        vec![OrderEvent::Restocked],
    )
    .await;
    assert!(waited.is_in(OrderState::Delivered));

    let (cancelled, reserved) = run(
        "An order cancelled while preparing",
        &Services { stock: true },
        vec![OrderEvent::Cancel],
    )
    .await;
    assert!(cancelled.is_in(OrderState::Cancelled));
    // Reaching a failure state undoes the completed compensable steps; the
    // engine does this by itself (keeping each step's done event), here it
    // is done by hand: only a reservation that completed is released.
    if cancelled.state().is_in(OrderState::Cancelled) {
        match &reserved {
            Some(done) => {
                let undo = cancelled.run_compensation(OrderState::Reserving, Some(done), &Services { stock: true });
                if let Some(Err(error)) = undo.await {
                    println!("    compensation failed: {error}");
                }
            }
            None => println!("    nothing to compensate: the stock was never reserved"),
        }
    }
    println!("    log: {:?}", cancelled.context().log);
}
