//! The engine's tracing spans exported with OpenTelemetry: `tracing-opentelemetry` turns each
//! span (an `instance`, its `transition`s, its activity attempts) into an OpenTelemetry span,
//! and the SDK's stdout exporter prints them, offline. Swap the exporter for OTLP's to send
//! them to a collector (Jaeger, Tempo, Honeycomb…); nothing else changes.
//!
//! ```text
//! cargo run -p workflow-web --example opentelemetry
//! ```
//!
//! It checks what it exported too (an in-memory exporter beside the stdout one): every
//! transition is a child of its instance's span, in the instance's trace.

use std::time::Duration;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
use tracing_subscriber::layer::SubscriberExt;
use workflow::prelude::*;
use workflow::Engine;

workflow! {
    pub workflow Order {
        context u32;
        initial Placed;
        events { Confirm }
        state Placed { on Confirm => Charging; }
        state Charging {
            invoke charge -> u32 { retry 2 backoff 5ms..5ms; done => Paid; error => Declined; }
        }
        final Paid;
        final Declined (failure);
    }
}

struct Payments;

impl OrderHandlers for Payments {
    async fn charge(&self, amount: &u32, call: &ActivityCall) -> Result<u32, ActivityError> {
        tokio::time::sleep(Duration::from_millis(2)).await;
        // The first attempt fails for odd amounts: a retried attempt shows as a second span.
        if amount % 2 == 1 && call.attempt == 1 {
            return Err(ActivityError::new("gateway timeout"));
        }
        Ok(*amount)
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let checked = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(opentelemetry_stdout::SpanExporter::default())
        .with_simple_exporter(checked.clone())
        .build();
    let tracer = provider.tracer("workflow-example");
    let subscriber = tracing_subscriber::registry().with(tracing_opentelemetry::layer().with_tracer(tracer));
    tracing_subscriber::util::SubscriberInitExt::try_init(subscriber)?;

    let engine = Engine::<Order, _>::new(Payments);
    for (id, amount) in [("order-1", 20), ("order-2", 35)] {
        engine.start(id, amount).await?;
        engine.send(id, OrderEvent::Confirm).await?;
    }
    for id in ["order-1", "order-2"] {
        println!("{id}: {:?}", engine.wait(id).await?);
    }
    // Instance spans close when their tasks end.
    engine.shutdown().await;
    drop(engine);
    provider.force_flush()?;

    let spans = checked.get_finished_spans()?;
    let count = |name: &str| spans.iter().filter(|s| s.name == name).count();
    println!(
        "exported {} spans: {} instances, {} transitions",
        spans.len(),
        count("instance"),
        count("transition")
    );
    let instances: Vec<_> = spans.iter().filter(|s| s.name == "instance").collect();
    if instances.len() != 2 || count("transition") != 4 {
        return Err("the engine's spans were not all exported".into());
    }
    for transition in spans.iter().filter(|s| s.name == "transition") {
        let parent = instances
            .iter()
            .find(|i| i.span_context.span_id() == transition.parent_span_id)
            .ok_or("a transition outside its instance's span")?;
        if parent.span_context.trace_id() != transition.span_context.trace_id() {
            return Err("a transition in another trace than its instance".into());
        }
    }
    provider.shutdown()?;
    Ok(())
}
