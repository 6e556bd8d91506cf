//! Engines' figures ([`WorkflowMetrics`], with their scheduler's resources) in the Prometheus
//! text format (version 0.0.4), written by `prometheus-client`: what a `/metrics` endpoint
//! serves (feature `prometheus`).
//!
//! Every series carries a `workflow` label, so one scrape serves several engines:
//!
//! | series | type | labels |
//! | --- | --- | --- |
//! | `workflow_instances` | gauge | `state` (running ones by state; `failed`, `cancelled`) |
//! | `workflow_running` | gauge | |
//! | `workflow_transitions_total`, `workflow_completions_total`, `workflow_failures_total`, `workflow_cancellations_total`, `workflow_activity_retries_total`, `workflow_retried_total`, `workflow_compensations_total` | counter | |
//! | `workflow_resource_arrival_rate` (λ, per second), `workflow_resource_time_in_system_seconds` (W), `workflow_resource_in_system` (L), `workflow_resource_utilisation` (ρ), `workflow_resource_queue_length`, `workflow_resource_in_service`, `workflow_resource_limit` | gauge | `resource` |
//!
//! ```
//! use workflow::prelude::*;
//! use workflow::Engine;
//!
//! workflow! {
//!     workflow Ticket {
//!         initial Open;
//!         events { Close }
//!         state Open { on Close => Closed; }
//!         final Closed;
//!     }
//! }
//! struct Desk;
//! impl TicketHandlers for Desk {}
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), workflow::EngineError> {
//! let engine = Engine::<Ticket, Desk>::new(Desk);
//! engine.start("T-1", ()).await?;
//! let text = workflow::prometheus::encode(&[engine.metrics()]);
//! assert!(text.contains("workflow_instances{workflow=\"Ticket\",state=\"Open\"} 1\n"));
//! assert!(text.contains("# TYPE workflow_transitions_total counter\n"));
//! # Ok(()) }
//! ```

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use crate::metrics::{ResourceMetrics, WorkflowMetrics};

/// The `Content-Type` of what [`encode`] writes.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// `metrics` (one engine's each) in the Prometheus text format.
pub fn encode(metrics: &[WorkflowMetrics]) -> String {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Figures(metrics.to_vec())));
    let mut text = String::new();
    // Writing to a String does not fail, nor does the collector.
    let _ = prometheus_client::encoding::prometheus_text::encode(&mut text, &registry);
    text
}

/// The figures of one scrape.
#[derive(Debug)]
struct Figures(Vec<WorkflowMetrics>);

/// One counter of [`WorkflowMetrics`]: its name (without `_total`), help and value.
type CounterOf = (&'static str, &'static str, fn(&WorkflowMetrics) -> u64);

const COUNTERS: [CounterOf; 7] = [
    (
        "workflow_transitions",
        "Transitions taken (macrosteps, for a statechart).",
        |m| m.transitions,
    ),
    (
        "workflow_completions",
        "Instances that reached a final state other than a failure one.",
        |m| m.completions,
    ),
    (
        "workflow_failures",
        "Instances that reached a failure final state, or stopped on a panic or a store error.",
        |m| m.failures,
    ),
    ("workflow_cancellations", "Instances cancelled.", |m| m.cancellations),
    (
        "workflow_activity_retries",
        "Activity attempts after the first of their invocation.",
        |m| m.retries,
    ),
    ("workflow_retried", "Failed instances resumed by Engine::retry.", |m| {
        m.retried
    }),
    ("workflow_compensations", "Compensations run.", |m| m.compensations),
];

/// One gauge of [`ResourceMetrics`].
type ResourceGauge = (&'static str, &'static str, fn(&ResourceMetrics) -> f64);

const RESOURCES: [ResourceGauge; 7] = [
    (
        "workflow_resource_arrival_rate",
        "λ: jobs arriving per second over the window.",
        |r| r.arrival_rate,
    ),
    (
        "workflow_resource_time_in_system_seconds",
        "W: mean time a completed job spent waiting and in service.",
        |r| r.mean_time_in_system.as_secs_f64(),
    ),
    (
        "workflow_resource_in_system",
        "L: time-averaged number of jobs waiting or in service.",
        |r| r.mean_in_system,
    ),
    (
        "workflow_resource_utilisation",
        "ρ: time-averaged share of busy slots.",
        |r| r.utilisation,
    ),
    ("workflow_resource_queue_length", "Jobs waiting now.", |r| {
        r.queue_len as f64
    }),
    ("workflow_resource_in_service", "Slots held now.", |r| {
        r.in_service as f64
    }),
    ("workflow_resource_limit", "Slots the resource has.", |r| r.limit as f64),
];

impl Collector for Figures {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let mut family = encoder.encode_descriptor(
            "workflow_instances",
            "Instances the engine holds, running ones by state, the others as finished in their final state, failed or cancelled.",
            None,
            MetricType::Gauge,
        )?;
        for m in &self.0 {
            for (state, count) in &m.instances {
                let labels = [("workflow", m.workflow), ("state", state.as_str())];
                family.encode_family(&labels)?.encode_gauge(count)?;
            }
        }
        let mut family =
            encoder.encode_descriptor("workflow_running", "Instances still running.", None, MetricType::Gauge)?;
        for m in &self.0 {
            family
                .encode_family(&[("workflow", m.workflow)])?
                .encode_gauge(&m.running)?;
        }
        for (name, help, value) in COUNTERS {
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
            for m in &self.0 {
                family
                    .encode_family(&[("workflow", m.workflow)])?
                    .encode_counter::<NoLabelSet, _, u64>(&value(m), None)?;
            }
        }
        for (name, help, value) in RESOURCES {
            if self.0.iter().all(|m| m.resources.is_empty()) {
                break;
            }
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
            for m in &self.0 {
                for r in &m.resources {
                    let labels = [("workflow", m.workflow), ("resource", r.name.as_str())];
                    family.encode_family(&labels)?.encode_gauge(&value(r))?;
                }
            }
        }
        Ok(())
    }
}
