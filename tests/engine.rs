//! The engine: instances, activities, timers, compensation, errors.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use workflow::{Config, Engine, EngineError, RecordKind, Status};

fn exact() -> Config {
    Config { jitter: 0.0, ..Config::default() }
}

#[tokio::test(start_paused = true)]
async fn an_order_runs_through_its_activities_to_completion() {
    let engine = Engine::<Order, Services>::with_config(Services::default(), exact());
    engine.start("o-1", OrderCtx::default()).await.unwrap();
    assert_eq!(engine.state("o-1").unwrap(), OrderState::Start);
    engine.send("o-1", SubmitOrder { id: 1, amount: 10 }.into()).await.unwrap();
    // charge_payment and reserve_stock run by themselves; Shipping waits.
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(engine.state("o-1").unwrap(), OrderState::Shipping);
    engine.send("o-1", OrderEvent::ShipmentReady).await.unwrap();
    engine.send("o-1", OrderEvent::OrderDelivered).await.unwrap();
    assert_eq!(engine.wait("o-1").await.unwrap(), OrderState::Completed);
    let snapshot = engine.snapshot("o-1").await.unwrap();
    assert_eq!(snapshot.status, Status::Finished(OrderState::Completed));
    assert_eq!(snapshot.context.receipt.as_deref(), Some("receipt-1-attempt-1"));
    let kinds: Vec<&RecordKind> = snapshot.history.iter().map(|r| &r.kind).collect();
    assert!(matches!(kinds[0], RecordKind::Started(s) if s == "Start"));
    assert!(kinds.iter().any(|k| matches!(k, RecordKind::AttemptEnded { activity: "charge_payment", attempt: 1, error: None, .. })));
    assert!(kinds.iter().any(|k| matches!(k, RecordKind::TimerSet { event: "ShippingAfter48h", .. })));
}

#[tokio::test(start_paused = true)]
async fn errors_are_typed() {
    let engine = Engine::<Order, Services>::new(Services::default());
    engine.start("a", OrderCtx::default()).await.unwrap();
    assert_eq!(engine.start("a", OrderCtx::default()).await, Err(EngineError::DuplicateId("a".into())));
    assert_eq!(engine.send("b", OrderEvent::Cancel).await, Err(EngineError::UnknownInstance("b".into())));
    let rejected = engine.send("a", OrderEvent::OrderDelivered).await.unwrap_err();
    assert_eq!(rejected.to_string(), "instance `a`: event `OrderDelivered` is not accepted in state `Start`");
    engine.shutdown().await;
    assert_eq!(engine.send("a", OrderEvent::Cancel).await, Err(EngineError::ShutDown));
}

#[tokio::test(start_paused = true)]
async fn a_failure_final_runs_compensations_in_reverse() {
    let services = Arc::new(Services::default());
    let engine = Engine::<Order, Arc<Services>>::with_config(services.clone(), exact());
    engine.start("c", OrderCtx::default()).await.unwrap();
    engine.send("c", SubmitOrder { id: 2, amount: 5 }.into()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(10)).await;
    engine.send("c", OrderEvent::ShipmentReady).await.unwrap();
    engine.send("c", DeliveryFailed { reason: "address unknown".into() }.into()).await.unwrap();
    // Refunding's refund succeeds: Cancelled, not a failure final.
    assert_eq!(engine.wait("c").await.unwrap(), OrderState::Cancelled);
    assert_eq!(*services.calls.lock().unwrap(), ["reserve_stock", "refund"]);
}
