//! The Prometheus export reads back, with an independent parser of the text format, as the
//! figures of a running engine and its scheduler.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use prometheus_parse::{Scrape, Value};
use workflow::prelude::*;
use workflow::scheduler::Scheduler;
use workflow::Engine;

workflow! {
    pub workflow Call {
        context u64;
        initial Idle;
        events { Go, Drop }
        state Idle { on Go => Calling; on Drop => Dropped; }
        state Calling {
            invoke call -> () { resource service; done => Done; error => Failed; }
        }
        final Done;
        final Dropped;
        final Failed (failure);
    }
}

struct Service;

impl CallHandlers for Arc<Service> {
    async fn call(&self, ms: &u64, _call: &ActivityCall) -> Result<(), ActivityError> {
        tokio::time::sleep(Duration::from_millis(*ms)).await;
        Ok(())
    }
}

/// Every sample, by name and its labels other than `workflow` (which must be `Call`).
fn samples(text: &str) -> HashMap<(String, Vec<(String, String)>), f64> {
    let scrape = Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).unwrap();
    assert!(!scrape.samples.is_empty());
    let mut all = HashMap::new();
    for sample in scrape.samples {
        assert_eq!(sample.labels.get("workflow"), Some("Call"), "{}", sample.metric);
        let mut labels: Vec<(String, String)> = sample
            .labels
            .iter()
            .filter(|(k, _)| k.as_str() != "workflow")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        labels.sort();
        let value = match sample.value {
            Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => v,
            other => panic!("{} is not a counter or a gauge: {other:?}", sample.metric),
        };
        assert!(all.insert((sample.metric, labels), value).is_none());
    }
    all
}

#[tokio::test(start_paused = true)]
async fn the_text_format_carries_the_engines_figures() {
    let scheduler = Scheduler::builder().resource("service", 1).build().unwrap();
    let engine = Engine::<Call, _>::builder(Arc::new(Service))
        .scheduler(scheduler)
        .unwrap()
        .build();
    for (id, ms) in [("a", 100), ("b", 100), ("c", 100), ("d", 0)] {
        engine.start(id, ms).await.unwrap();
    }
    engine.send("d", CallEvent::Drop).await.unwrap();
    for id in ["a", "b", "c"] {
        engine.send(id, CallEvent::Go).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(150)).await;
    let metrics = engine.metrics();
    let text = workflow::prometheus::encode(std::slice::from_ref(&metrics));
    let all = samples(&text);
    let get = |name: &str, labels: &[(&str, &str)]| {
        let labels = labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        all.get(&(name.to_string(), labels)).copied()
    };
    // One finished, one cancelled… by state as the engine counts them.
    for (state, count) in &metrics.instances {
        assert_eq!(
            get("workflow_instances", &[("state", state)]),
            Some(*count as f64),
            "{state}"
        );
    }
    assert_eq!(
        metrics.instances,
        vec![
            ("Calling".to_string(), 2),
            ("Done".to_string(), 1),
            ("Dropped".to_string(), 1)
        ]
    );
    assert_eq!(get("workflow_running", &[]), Some(2.0));
    assert_eq!(get("workflow_transitions_total", &[]), Some(metrics.transitions as f64));
    assert_eq!(metrics.transitions, 5);
    assert_eq!(get("workflow_completions_total", &[]), Some(2.0));
    assert_eq!(get("workflow_failures_total", &[]), Some(0.0));
    assert_eq!(get("workflow_retried_total", &[]), Some(0.0));
    let resource = [("resource", "service")];
    let r = &metrics.resources[0];
    assert_eq!(get("workflow_resource_queue_length", &resource), Some(1.0));
    assert_eq!(get("workflow_resource_in_service", &resource), Some(1.0));
    assert_eq!(get("workflow_resource_limit", &resource), Some(1.0));
    assert_eq!(get("workflow_resource_arrival_rate", &resource), Some(r.arrival_rate));
    assert_eq!(get("workflow_resource_utilisation", &resource), Some(r.utilisation));
    assert_eq!(get("workflow_resource_in_system", &resource), Some(r.mean_in_system));
    assert_eq!(
        get("workflow_resource_time_in_system_seconds", &resource),
        Some(r.mean_time_in_system.as_secs_f64())
    );
    assert!(r.arrival_rate > 0.0 && r.utilisation > 0.0);
    // Every line is a comment (HELP, TYPE) or a sample.
    assert!(text
        .lines()
        .all(|l| l.starts_with("# HELP ") || l.starts_with("# TYPE ") || l.starts_with("workflow_")));
}
