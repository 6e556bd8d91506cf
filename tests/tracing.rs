//! The engine's tracing spans: one per instance, one per transition, one
//! per activity attempt, with their fields.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::Subscriber;
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;
use workflow::prelude::*;
use workflow::scheduler::Scheduler;
use workflow::Engine;

workflow! {
    pub workflow Parcel {
        initial Packing;
        events { Ship }
        state Packing {
            invoke pack -> () { resource packers; retry 2 backoff 5ms..5ms; done => Ready; error => Lost; }
        }
        state Ready { on Ship => Shipped; }
        final Shipped;
        final Lost (failure);
    }
}

struct Warehouse;

impl ParcelHandlers for Warehouse {
    async fn pack(&self, _: &(), call: &ActivityCall) -> Result<(), ActivityError> {
        if call.attempt == 1 {
            return Err(ActivityError::new("tape ran out"));
        }
        Ok(())
    }
}

/// A span as captured: its name, its parent's name and its fields.
#[derive(Clone, Debug, Default)]
struct Captured {
    name: &'static str,
    parent: Option<&'static str>,
    fields: BTreeMap<String, String>,
}

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<(Id, Captured)>>>);

struct Fields<'a>(&'a mut BTreeMap<String, String>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_string(), format!("{value:?}"));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_string(), value.to_string());
    }
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Capture {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut span = Captured {
            name: attrs.metadata().name(),
            parent: ctx.span(id).and_then(|s| s.parent()).map(|p| p.name()),
            ..Captured::default()
        };
        attrs.record(&mut Fields(&mut span.fields));
        self.0.lock().unwrap().push((id.clone(), span));
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, _: Context<'_, S>) {
        let mut spans = self.0.lock().unwrap();
        if let Some((_, span)) = spans.iter_mut().rev().find(|(i, _)| i == id) {
            values.record(&mut Fields(&mut span.fields));
        }
    }
}

fn fields(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn instances_transitions_and_attempts_have_spans() {
    let capture = Capture::default();
    let _guard = tracing::subscriber::set_default(tracing_subscriber::registry().with(capture.clone()));

    let scheduler = Scheduler::builder().resource("packers", 1).build().unwrap();
    let engine = Engine::<Parcel, Warehouse>::builder(Warehouse)
        .scheduler(scheduler)
        .unwrap()
        .build();
    engine.start("p-1", ()).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    engine.send("p-1", ParcelEvent::Ship).await.unwrap();
    assert_eq!(engine.wait("p-1").await.unwrap(), ParcelState::Shipped);

    let spans: Vec<Captured> = capture.0.lock().unwrap().iter().map(|(_, s)| s.clone()).collect();
    let named = |name: &str| spans.iter().filter(|s| s.name == name).cloned().collect::<Vec<_>>();

    let instances = named("instance");
    assert_eq!(instances.len(), 1);
    assert_eq!(instances[0].fields, fields(&[("workflow", "Parcel"), ("id", "p-1")]));

    let attempts = named("activity_attempt");
    assert_eq!(attempts.len(), 2);
    for (attempt, outcome) in [(0, "failed"), (1, "ok")] {
        let span = &attempts[attempt];
        assert_eq!(span.parent, Some("instance"));
        assert_eq!(
            span.fields,
            fields(&[
                ("activity", "pack"),
                ("attempt", &(attempt + 1).to_string()),
                ("resource", "packers"),
                ("queued_us", "0"),
                ("outcome", outcome),
            ])
        );
    }

    let transitions = named("transition");
    let steps: Vec<_> = transitions.iter().map(|t| t.fields.clone()).collect();
    assert_eq!(
        steps,
        vec![
            fields(&[
                ("workflow", "Parcel"),
                ("instance", "p-1"),
                ("from", "Packing"),
                ("event", "PackDone"),
                ("to", "Ready")
            ]),
            fields(&[
                ("workflow", "Parcel"),
                ("instance", "p-1"),
                ("from", "Ready"),
                ("event", "Ship"),
                ("to", "Shipped")
            ]),
        ]
    );
    assert!(transitions.iter().all(|t| t.parent == Some("instance")));
}
