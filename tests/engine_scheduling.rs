//! The engine's activities queued on the scheduler's resources, and the
//! engine's metrics.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;
use workflow::prelude::*;
use workflow::scheduler::{Priority, Scheduler, SchedulerError};
use workflow::{Engine, EngineError};

workflow! {
    /// One call of a service; the context is the call's service time in ms
    /// (0: the first attempt fails).
    pub workflow Call {
        context u64;
        initial Calling;
        state Calling {
            invoke call -> () {
                resource service;
                expected 100ms;
                retry 2 backoff 10ms..10ms;
                timeout 150ms;
                done => Done;
                error => Failed;
            }
        }
        final Done;
        final Failed (failure);
    }
}

/// A service that records when each call started, by its service time.
#[derive(Default)]
struct Service {
    started: Mutex<Vec<(u64, u32, Duration)>>,
    epoch: Mutex<Option<Instant>>,
}

impl CallHandlers for Arc<Service> {
    async fn call(&self, ms: &u64, call: &ActivityCall) -> Result<(), ActivityError> {
        let epoch = self.epoch.lock().unwrap().get_or_insert_with(Instant::now).to_owned();
        self.started.lock().unwrap().push((*ms, call.attempt, epoch.elapsed()));
        if *ms == 0 && call.attempt == 1 {
            return Err(ActivityError::new("flaky"));
        }
        tokio::time::sleep(Duration::from_millis(ms.max(&1).to_owned())).await;
        Ok(())
    }
}

fn engine(scheduler: Scheduler, service: &Arc<Service>) -> Engine<Call, Arc<Service>> {
    Engine::builder(service.clone()).scheduler(scheduler).unwrap().build()
}

#[tokio::test(start_paused = true)]
async fn calls_queue_for_the_resource_and_time_out_only_in_service() {
    let scheduler = Scheduler::builder().resource("service", 1).build().unwrap();
    let service = Arc::new(Service::default());
    let engine = engine(scheduler.clone(), &service);
    let began = Instant::now();
    for (id, ms) in [("a", 100), ("b", 101), ("c", 102)] {
        engine.start(id, ms).await.unwrap();
    }
    for id in ["a", "b", "c"] {
        // The third waits 201 ms for the slot, more than its 150 ms timeout:
        // the timeout counts from admission.
        assert_eq!(engine.wait(id).await.unwrap(), CallState::Done);
    }
    assert_eq!(began.elapsed(), Duration::from_millis(303));
    let starts: Vec<Duration> = service.started.lock().unwrap().iter().map(|s| s.2).collect();
    assert_eq!(starts, [0, 100, 201].map(Duration::from_millis));
    let station = scheduler.metrics().get("service").cloned().unwrap();
    assert_eq!((station.arrivals, station.completed), (3, 3));
    assert_eq!(station.mean_queue_time, Duration::from_millis(301) / 3);
}

#[tokio::test(start_paused = true)]
async fn higher_priority_instances_are_served_first() {
    let scheduler = Scheduler::builder()
        .resource_with("service", 1, Priority::new())
        .build()
        .unwrap();
    let service = Arc::new(Service::default());
    let engine = engine(scheduler, &service);
    engine.start("blocker", 50).await.unwrap();
    tokio::task::yield_now().await;
    engine.start_with_priority("low", 10, -1).await.unwrap();
    engine.start_with_priority("normal", 20, 0).await.unwrap();
    engine.start_with_priority("high", 30, 5).await.unwrap();
    for id in ["blocker", "low", "normal", "high"] {
        engine.wait(id).await.unwrap();
    }
    let order: Vec<u64> = service.started.lock().unwrap().iter().map(|s| s.0).collect();
    assert_eq!(order, [50, 30, 20, 10]);
}

#[tokio::test(start_paused = true)]
async fn a_retry_queues_again_behind_waiting_calls() {
    let scheduler = Scheduler::builder().resource("service", 1).build().unwrap();
    let service = Arc::new(Service::default());
    let engine = engine(scheduler, &service);
    engine.start("flaky", 0).await.unwrap();
    engine.start("steady", 40).await.unwrap();
    engine.wait("flaky").await.unwrap();
    engine.wait("steady").await.unwrap();
    let calls: Vec<(u64, u32)> = service.started.lock().unwrap().iter().map(|s| (s.0, s.1)).collect();
    // The flaky call's retry waits for the slot behind the steady one.
    assert_eq!(calls, [(0, 1), (40, 1), (0, 2)]);
    let metrics = engine.metrics();
    assert_eq!(metrics.retries, 1);
    assert_eq!((metrics.completions, metrics.failures, metrics.transitions), (2, 0, 2));
    assert_eq!(metrics.resources[0].arrivals, 3);
    assert_eq!(metrics.instances, vec![("Done".to_string(), 2)]);
}

#[tokio::test(start_paused = true)]
async fn a_call_still_queued_when_its_instance_is_cancelled_never_runs() {
    let scheduler = Scheduler::builder().resource("service", 1).build().unwrap();
    let service = Arc::new(Service::default());
    let engine = engine(scheduler.clone(), &service);
    for (id, ms) in [("a", 100), ("b", 101), ("c", 102)] {
        engine.start(id, ms).await.unwrap();
    }
    let resource = scheduler.resource("service").unwrap();
    for _ in 0..1000 {
        if resource.queue_len() == 2 {
            break;
        }
        tokio::task::yield_now().await; // the instances' first steps
    }
    assert_eq!((resource.in_service(), resource.queue_len()), (1, 2));
    engine.cancel("b").await.unwrap();
    assert_eq!(resource.queue_len(), 1);
    let began = Instant::now();
    assert_eq!(engine.wait("c").await.unwrap(), CallState::Done);
    // `c` took the slot `a` freed at 100 ms: `b`'s call left the queue.
    assert_eq!(began.elapsed(), Duration::from_millis(202));
    let calls: Vec<u64> = service.started.lock().unwrap().iter().map(|s| s.0).collect();
    assert_eq!(calls, [100, 102]);
    assert!(matches!(engine.wait("b").await, Err(EngineError::Cancelled(_))));
    let station = scheduler.metrics().get("service").cloned().unwrap();
    assert_eq!((station.arrivals, station.completed, station.cancelled), (2, 2, 1));
}

#[tokio::test(start_paused = true)]
async fn a_call_granted_its_slot_stops_when_its_instance_is_cancelled_and_frees_the_slot() {
    let scheduler = Scheduler::builder().resource("service", 1).build().unwrap();
    let service = Arc::new(Service::default());
    let engine = engine(scheduler.clone(), &service);
    engine.start("a", 100).await.unwrap();
    engine.start("b", 100).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    // `a` holds the slot, `b` waits: cancelling `a` aborts its running call.
    engine.cancel("a").await.unwrap();
    assert_eq!(engine.wait("b").await.unwrap(), CallState::Done);
    let starts: Vec<(u64, Duration)> = service.started.lock().unwrap().iter().map(|s| (s.0, s.2)).collect();
    assert_eq!(starts, [(100, Duration::ZERO), (100, Duration::from_millis(50))]);
    assert_eq!(scheduler.resource("service").unwrap().in_service(), 0);
}

#[tokio::test]
async fn an_engine_refuses_a_scheduler_without_its_resources() {
    let scheduler = Scheduler::builder().resource("other", 2).build().unwrap();
    let refused = Engine::<Call, Arc<Service>>::builder(Arc::new(Service::default()))
        .scheduler(scheduler)
        .err();
    assert_eq!(refused, Some(SchedulerError::UnknownResource("service".into())));
}

#[tokio::test(start_paused = true)]
async fn without_a_scheduler_resources_are_unlimited() {
    let service = Arc::new(Service::default());
    let engine = Engine::<Call, Arc<Service>>::new(service.clone());
    for (id, ms) in [("a", 100), ("b", 100)] {
        engine.start(id, ms).await.unwrap();
    }
    let began = Instant::now();
    engine.wait("a").await.unwrap();
    engine.wait("b").await.unwrap();
    assert_eq!(began.elapsed(), Duration::from_millis(100));
    assert!(engine.metrics().resources.is_empty());
    assert!(matches!(
        engine.state("zzz").await,
        Err(EngineError::UnknownInstance(_))
    ));
}
