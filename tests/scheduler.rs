//! The resource scheduler (`workflow::scheduler`): queueing statistics
//! against Little's law, shortest-job-first against FIFO, the order each
//! policy serves in, bounded starvation, cancellation and the gauges.
//!
//! Everything runs on tokio's paused clock, in simulated time: tasks stand
//! for activities and sleep for their service time while holding a permit.
//! Workloads come from a seeded generator, so every run is the same.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Waker};
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio::time::{sleep, Instant};
use workflow::scheduler::{Fifo, Job, Priority, RoundRobin, Scheduler, SchedulerError, ShortestJobFirst};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// splitmix64: a small deterministic generator, enough for workloads.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn uniform(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Exponentially distributed with the given mean, in whole milliseconds
    /// (tokio's timer resolution), so that simulated times are exact.
    fn exp_ms(&mut self, mean_ms: f64) -> Duration {
        ms((-(1.0 - self.uniform()).ln() * mean_ms).round() as u64)
    }
}

/// One job of a workload: the gap since the previous arrival, the job, and
/// how long it holds its slot.
#[derive(Clone, Copy)]
struct Arrival {
    gap: Duration,
    job: Job,
    service: Duration,
}

/// Feeds `workload` to `resource`, one task per job; each job's time in
/// the system, in arrival order.
async fn simulate(scheduler: &Scheduler, resource: &'static str, workload: &[Arrival]) -> Vec<Duration> {
    let mut tasks = Vec::with_capacity(workload.len());
    for arrival in workload {
        sleep(arrival.gap).await;
        let scheduler = scheduler.clone();
        let Arrival { job, service, .. } = *arrival;
        tasks.push(tokio::spawn(async move {
            let arrived = Instant::now();
            let permit = scheduler.acquire(resource, job).await.unwrap();
            sleep(service).await;
            drop(permit);
            arrived.elapsed()
        }));
    }
    let mut times = Vec::with_capacity(tasks.len());
    for task in tasks {
        times.push(task.await.unwrap());
    }
    times
}

fn mean(times: &[Duration]) -> Duration {
    times.iter().sum::<Duration>() / times.len() as u32
}

fn p99(times: &[Duration]) -> Duration {
    let mut sorted = times.to_vec();
    sorted.sort();
    sorted[(sorted.len() * 99 / 100).min(sorted.len() - 1)]
}

/// Mixed sizes: 90% short (10 ms), 10% long (500 ms), Poisson arrivals at
/// `rate` per second; the declared expected duration is the real one when
/// `declare`, else absent.
fn mixed(seed: u64, n: usize, rate: f64, declare: bool) -> Vec<Arrival> {
    let mut rng = Rng(seed);
    (0..n)
        .map(|_| {
            let gap = rng.exp_ms(1000.0 / rate);
            let (activity, service) = if rng.uniform() < 0.1 {
                ("long", ms(500))
            } else {
                ("short", ms(10))
            };
            let job = Job::new(activity);
            let job = if declare { job.expected(service) } else { job };
            Arrival { gap, job, service }
        })
        .collect()
}

/// Yields until `resource` has `waiting` jobs
/// queued: lets freshly spawned tasks reach the queue, in order.
async fn until_queued(scheduler: &Scheduler, resource: &str, waiting: usize) {
    let resource = scheduler.resource(resource).unwrap();
    while resource.queue_len() < waiting {
        tokio::task::yield_now().await;
    }
}

/// A task that acquires `resource` for `job`, notes `tag` in `log` when it
/// gets the slot, and holds it for `service`.
fn logged(
    scheduler: &Scheduler,
    resource: &'static str,
    job: Job,
    service: Duration,
    log: &Arc<Mutex<Vec<&'static str>>>,
    tag: &'static str,
) -> JoinHandle<Duration> {
    let (scheduler, log) = (scheduler.clone(), log.clone());
    tokio::spawn(async move {
        let permit = scheduler.acquire(resource, job).await.unwrap();
        log.lock().unwrap().push(tag);
        sleep(service).await;
        permit.queued()
    })
}

// ---------------------------------------------------------------------------
// Queueing statistics
// ---------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn littles_law_holds_on_a_simulated_workload() {
    let scheduler = Scheduler::builder().resource("pool", 2).build().unwrap();
    // λ = 15/s, exponential service with mean 100 ms, 2 slots: ρ = 0.75.
    let mut rng = Rng(42);
    let workload: Vec<Arrival> = (0..20_000)
        .map(|_| Arrival {
            gap: rng.exp_ms(1000.0 / 15.0),
            job: Job::new("work"),
            service: rng.exp_ms(100.0),
        })
        .collect();
    let started = std::time::Instant::now();
    let times = simulate(&scheduler, "pool", &workload).await;
    let m = scheduler.metrics().get("pool").cloned().unwrap();
    let lambda_w = m.little_product();
    println!(
        "{} jobs in {:.0}s simulated ({:?} real): λ = {:.4}/s, W = {:.2} ms, λW = {:.4}, L = {:.4}, \
         ρ = {:.4}, Wq = {:.2} ms, S = {:.2} ms",
        m.completed,
        m.window.as_secs_f64(),
        started.elapsed(),
        m.arrival_rate,
        m.mean_time_in_system.as_secs_f64() * 1e3,
        lambda_w,
        m.mean_in_system,
        m.utilisation,
        m.mean_queue_time.as_secs_f64() * 1e3,
        m.mean_service_time.as_secs_f64() * 1e3,
    );
    println!("{}", scheduler.metrics());
    assert_eq!((m.arrivals, m.completed, m.cancelled), (20_000, 20_000, 0));
    assert!(
        (m.mean_in_system - lambda_w).abs() / lambda_w < 0.02,
        "L {} vs λW {lambda_w}",
        m.mean_in_system
    );
    // The drained system: exact up to rounding.
    assert!((m.mean_in_system - lambda_w).abs() / lambda_w < 1e-6);
    // The scheduler's W is what the jobs themselves saw.
    let seen = mean(&times).as_secs_f64();
    assert!((seen - m.mean_time_in_system.as_secs_f64()).abs() < 1e-6, "{seen}");
    // And ρ = λS/c, the law for the busy slots.
    let rho = m.arrival_rate * m.mean_service_time.as_secs_f64() / 2.0;
    assert!(
        (m.utilisation - rho).abs() / rho < 1e-6,
        "ρ {} vs λS/c {rho}",
        m.utilisation
    );
    assert!((m.mean_queue_len - (m.mean_in_system - 2.0 * m.utilisation)).abs() < 1e-9);
    assert_eq!((m.queue_len, m.in_service), (0, 0));
}

#[tokio::test(start_paused = true)]
async fn littles_law_holds_over_a_window_opened_mid_run() {
    let scheduler = Scheduler::builder().resource("pool", 2).build().unwrap();
    let mut rng = Rng(7);
    let workload: Vec<Arrival> = (0..4_000)
        .map(|_| Arrival {
            gap: rng.exp_ms(1000.0 / 18.0),
            job: Job::new("work"),
            service: rng.exp_ms(100.0),
        })
        .collect();
    let resetter = {
        let scheduler = scheduler.clone();
        tokio::spawn(async move {
            sleep(Duration::from_secs(60)).await;
            let before = scheduler.resource("pool").unwrap().metrics();
            scheduler.reset_metrics();
            before.queue_len + before.in_service
        })
    };
    simulate(&scheduler, "pool", &workload).await;
    let in_system_at_reset = resetter.await.unwrap();
    let m = scheduler.resource("pool").unwrap().metrics();
    println!("jobs in the system at the reset: {in_system_at_reset}\n{m}");
    assert!(m.window < Duration::from_secs(240) && m.arrivals < 4_000);
    assert!((m.mean_in_system - m.little_product()).abs() / m.mean_in_system < 1e-6);
}

// ---------------------------------------------------------------------------
// Shortest job first
// ---------------------------------------------------------------------------

/// The same mixed workload under FIFO and under `sjf`; mean times in system
/// (over the jobs from `skip` on).
async fn fifo_against(sjf: ShortestJobFirst, declare: bool, skip: usize) -> (Duration, Duration) {
    // Mean service 0.9·10 + 0.1·500 = 59 ms; 2 slots at 28/s: ρ ≈ 0.83.
    let workload = mixed(2024, 5_000, 28.0, declare);
    let fifo = Scheduler::builder()
        .resource_with("pool", 2, Fifo::new())
        .build()
        .unwrap();
    let fifo_times = simulate(&fifo, "pool", &workload).await;
    let fifo_metrics = fifo.metrics();
    let sjf = Scheduler::builder().resource_with("pool", 2, sjf).build().unwrap();
    let sjf_times = simulate(&sjf, "pool", &workload).await;
    let sjf_metrics = sjf.metrics();
    let (fifo_w, sjf_w) = (mean(&fifo_times[skip..]), mean(&sjf_times[skip..]));
    println!(
        "declared durations: {declare}; FIFO: W {:.1} ms, p99 {:.0} ms; SJF: W {:.1} ms, p99 {:.0} ms",
        fifo_w.as_secs_f64() * 1e3,
        p99(&fifo_times[skip..]).as_secs_f64() * 1e3,
        sjf_w.as_secs_f64() * 1e3,
        p99(&sjf_times[skip..]).as_secs_f64() * 1e3,
    );
    println!("{fifo_metrics}{sjf_metrics}");
    // The same jobs, in the same simulated time.
    let (f, s) = (&fifo_metrics.resources[0], &sjf_metrics.resources[0]);
    assert_eq!((f.completed, f.mean_service_time), (s.completed, s.mean_service_time));
    assert!((f.arrival_rate - s.arrival_rate).abs() / f.arrival_rate < 0.01);
    (fifo_w, sjf_w)
}

#[tokio::test(start_paused = true)]
async fn sjf_beats_fifo_on_declared_durations() {
    let (fifo, sjf) = fifo_against(ShortestJobFirst::new(), true, 0).await;
    assert!(sjf < fifo, "SJF {sjf:?} vs FIFO {fifo:?}");
    // Not a marginal win: most jobs are short and no longer queue behind long ones.
    assert!(
        sjf.as_secs_f64() < 0.8 * fifo.as_secs_f64(),
        "SJF {sjf:?} vs FIFO {fifo:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn learned_sjf_beats_fifo_after_warm_up() {
    let (fifo, sjf) = fifo_against(ShortestJobFirst::new(), false, 200).await;
    assert!(sjf < fifo, "learned SJF {sjf:?} vs FIFO {fifo:?}");
    assert!(
        sjf.as_secs_f64() < 0.8 * fifo.as_secs_f64(),
        "SJF {sjf:?} vs FIFO {fifo:?}"
    );
}

// ---------------------------------------------------------------------------
// Order of service
// ---------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn priority_serves_higher_first_and_fifo_within_a_priority() {
    let scheduler = Scheduler::builder()
        .resource_with("r", 1, Priority::new())
        .build()
        .unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    let held = scheduler.acquire("r", Job::new("first")).await.unwrap();
    let mut tasks = Vec::new();
    for (i, (priority, tag)) in [(1, "low a"), (3, "high a"), (2, "mid"), (3, "high b"), (1, "low b")]
        .into_iter()
        .enumerate()
    {
        tasks.push(logged(
            &scheduler,
            "r",
            Job::new("x").priority(priority),
            ms(10),
            &log,
            tag,
        ));
        until_queued(&scheduler, "r", i + 1).await;
    }
    drop(held);
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(*log.lock().unwrap(), ["high a", "high b", "mid", "low a", "low b"]);
}

#[tokio::test(start_paused = true)]
async fn fifo_serves_in_arrival_order() {
    let scheduler = Scheduler::builder().resource("r", 1).build().unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    let held = scheduler.acquire("r", Job::new("first")).await.unwrap();
    let mut tasks = Vec::new();
    for (i, (priority, tag)) in [(1, "a"), (9, "b"), (5, "c")].into_iter().enumerate() {
        tasks.push(logged(
            &scheduler,
            "r",
            Job::new("x").priority(priority),
            ms(10),
            &log,
            tag,
        ));
        until_queued(&scheduler, "r", i + 1).await;
    }
    drop(held);
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(*log.lock().unwrap(), ["a", "b", "c"]);
}

#[tokio::test(start_paused = true)]
async fn round_robin_does_not_let_a_busy_flow_starve_another() {
    let scheduler = Scheduler::builder()
        .resource_with("r", 1, RoundRobin::new())
        .build()
        .unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    let held = scheduler.acquire("r", Job::new("first")).await.unwrap();
    let (busy, quiet, other) = (Job::flow_key("busy"), Job::flow_key("quiet"), Job::flow_key("other"));
    let mut tasks = Vec::new();
    let order = [
        (busy, "busy 1"),
        (busy, "busy 2"),
        (busy, "busy 3"),
        (busy, "busy 4"),
        (busy, "busy 5"),
        (quiet, "quiet"),
        (other, "other 1"),
        (other, "other 2"),
    ];
    for (i, (flow, tag)) in order.into_iter().enumerate() {
        tasks.push(logged(&scheduler, "r", Job::new("x").flow(flow), ms(10), &log, tag));
        until_queued(&scheduler, "r", i + 1).await;
    }
    drop(held);
    let mut waits = Vec::new();
    for task in tasks {
        waits.push(task.await.unwrap());
    }
    assert_eq!(
        *log.lock().unwrap(),
        ["busy 1", "quiet", "other 1", "busy 2", "other 2", "busy 3", "busy 4", "busy 5"]
    );
    // The quiet flow's single job waited for one job of the busy flow, not five.
    assert_eq!(waits[5], ms(10));
}

// ---------------------------------------------------------------------------
// Starvation is bounded
// ---------------------------------------------------------------------------

/// One slot; from t = 0 a job of `stream` every 5 ms for `for_how_long`,
/// each holding the slot 10 ms (twice the capacity: the queue only grows);
/// at t = 2 ms one `victim` job that holds it 500 ms. How long the victim
/// waited.
async fn victim_wait(
    policy: impl workflow::scheduler::IntoPolicy,
    stream: Job,
    victim: Job,
    for_how_long: Duration,
) -> Duration {
    let scheduler = Scheduler::builder().resource_with("r", 1, policy).build().unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    let generator = {
        let (scheduler, log) = (scheduler.clone(), log.clone());
        tokio::spawn(async move {
            let end = Instant::now() + for_how_long;
            let mut tasks = Vec::new();
            while Instant::now() < end {
                tasks.push(logged(&scheduler, "r", stream, ms(10), &log, "stream"));
                sleep(ms(5)).await;
            }
            for task in tasks {
                task.await.unwrap();
            }
        })
    };
    sleep(ms(2)).await;
    let victim = logged(&scheduler, "r", victim, ms(500), &log, "victim");
    let waited = victim.await.unwrap();
    generator.await.unwrap();
    waited
}

#[tokio::test(start_paused = true)]
async fn a_long_job_under_sjf_is_served_within_max_wait() {
    let short = Job::new("short").expected(ms(10));
    let long = Job::new("long").expected(ms(500));
    let capped = victim_wait(ShortestJobFirst::new().max_wait(ms(1000)), short, long, ms(3000)).await;
    let uncapped = victim_wait(ShortestJobFirst::new().max_wait(Duration::MAX), short, long, ms(3000)).await;
    println!("long job's wait under a stream of short ones: {capped:?} with max_wait 1s, {uncapped:?} without");
    // It became overdue at 1 s and got the next slot, which frees within 10 ms.
    assert!(capped >= ms(1000) && capped <= ms(1010), "{capped:?}");
    // Without the cap it waits for the whole stream and its backlog.
    assert!(uncapped > ms(3000), "{uncapped:?}");
}

#[tokio::test(start_paused = true)]
async fn a_low_priority_job_is_served_within_max_wait() {
    let high = Job::new("urgent").priority(10);
    let low = Job::new("batch").priority(-1);
    let capped = victim_wait(Priority::new().max_wait(ms(500)), high, low, ms(3000)).await;
    let uncapped = victim_wait(Priority::new().max_wait(Duration::MAX), high, low, ms(3000)).await;
    println!(
        "low-priority job's wait under a stream of urgent ones: {capped:?} with max_wait 500ms, {uncapped:?} without"
    );
    assert!(capped >= ms(500) && capped <= ms(510), "{capped:?}");
    assert!(uncapped > ms(3000), "{uncapped:?}");
}

// ---------------------------------------------------------------------------
// Cancellation
// ---------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn a_job_cancelled_while_waiting_leaves_the_queue() {
    let scheduler = Scheduler::builder().resource("r", 1).build().unwrap();
    let resource = scheduler.resource("r").unwrap();
    let held = scheduler.acquire("r", Job::new("held")).await.unwrap();
    let waiter = {
        let scheduler = scheduler.clone();
        tokio::spawn(async move { scheduler.acquire("r", Job::new("waiter")).await.map(drop) })
    };
    until_queued(&scheduler, "r", 1).await;
    sleep(ms(30)).await;
    waiter.abort();
    assert!(waiter.await.unwrap_err().is_cancelled());
    assert_eq!((resource.queue_len(), resource.in_service()), (0, 1));
    sleep(ms(70)).await;
    drop(held);
    assert_eq!((resource.queue_len(), resource.in_service()), (0, 0));
    // The slot is free at once for the next job.
    let next = scheduler.acquire("r", Job::new("next")).await.unwrap();
    assert_eq!(next.queued(), Duration::ZERO);
    drop(next);
    let m = resource.metrics();
    assert_eq!((m.arrivals, m.completed, m.cancelled), (2, 2, 1));
    // The cancelled job's 30 ms of waiting are gone from L: only `held`'s 100 ms remain.
    assert!((m.mean_in_system - m.little_product()).abs() < 1e-9, "{m}");
    assert!((m.mean_in_system - 1.0).abs() < 1e-9, "{m}");
}

#[tokio::test(start_paused = true)]
async fn submitted_jobs_are_called_in_policy_order_when_granted() {
    let scheduler = Scheduler::builder()
        .resource_with("r", 1, Priority::new())
        .build()
        .unwrap();
    let resource = scheduler.resource("r").unwrap();
    let order = Arc::new(Mutex::new(Vec::new()));
    let permits = Arc::new(Mutex::new(Vec::new()));
    let submit = |name: &'static str, priority: i32| {
        let (order, permits) = (order.clone(), permits.clone());
        resource.submit(Job::new(name).priority(priority), move |permit| {
            order.lock().unwrap().push(name);
            permits.lock().unwrap().push(permit);
        })
    };
    // A free slot: called at once, no ticket.
    assert!(submit("first", 0).is_none());
    let tickets: Vec<_> = [("low", 1), ("high", 9), ("mid", 5)]
        .into_iter()
        .map(|(name, priority)| submit(name, priority))
        .collect();
    assert!(tickets.iter().all(|t| t.as_ref().is_some_and(|t| t.is_waiting())));
    assert_eq!((resource.queue_len(), resource.in_service()), (3, 1));
    sleep(ms(40)).await;
    for _ in 0..3 {
        // Each freed slot calls the next job, with its wait on the permit.
        let held = permits.lock().unwrap().remove(0);
        drop(held);
    }
    assert_eq!(*order.lock().unwrap(), ["first", "high", "mid", "low"]);
    assert!(tickets.iter().all(|t| t.as_ref().is_some_and(|t| !t.is_waiting())));
    let last = permits.lock().unwrap().remove(0);
    assert_eq!((last.activity(), last.queued()), ("low", ms(40)));
    drop(tickets); // granted: dropping the tickets changes nothing
    assert_eq!(resource.in_service(), 1);
    drop(last);
    let m = resource.metrics();
    assert_eq!((m.arrivals, m.completed, m.cancelled), (4, 4, 0));
}

#[tokio::test(start_paused = true)]
async fn a_submitted_job_cancelled_while_waiting_is_never_called() {
    let scheduler = Scheduler::builder().resource("r", 1).build().unwrap();
    let resource = scheduler.resource("r").unwrap();
    let held = scheduler.acquire("r", Job::new("held")).await.unwrap();
    let called = Arc::new(Mutex::new(Vec::new()));
    let submit = |name: &'static str| {
        let called = called.clone();
        resource.submit(Job::new(name), move |permit| {
            called.lock().unwrap().push((name, permit))
        })
    };
    let cancelled = submit("cancelled");
    let next = submit("next");
    assert_eq!(resource.queue_len(), 2);
    drop(cancelled);
    assert_eq!(resource.queue_len(), 1);
    drop(held);
    // The slot goes to the job behind the cancelled one.
    let names: Vec<&str> = called.lock().unwrap().iter().map(|(name, _)| *name).collect();
    assert_eq!(names, ["next"]);
    assert!(next.is_some_and(|t| !t.is_waiting()));
    called.lock().unwrap().clear();
    let m = resource.metrics();
    assert_eq!((m.arrivals, m.completed, m.cancelled, m.in_service), (2, 2, 1, 0));
}

#[tokio::test(start_paused = true)]
async fn a_slot_granted_to_a_dropped_future_passes_on() {
    let scheduler = Scheduler::builder().resource("r", 1).build().unwrap();
    let resource = scheduler.resource("r").unwrap();
    let held = scheduler.acquire("r", Job::new("held")).await.unwrap();
    // Queue a job by hand, polled once and never again.
    let mut granted = scheduler.acquire("r", Job::new("granted"));
    let mut cx = Context::from_waker(Waker::noop());
    assert!(Pin::new(&mut granted).poll(&mut cx).is_pending());
    let third = {
        let scheduler = scheduler.clone();
        tokio::spawn(async move { scheduler.acquire("r", Job::new("third")).await.map(|p| p.queued()) })
    };
    until_queued(&scheduler, "r", 2).await;
    sleep(ms(20)).await;
    drop(held); // FIFO: the slot goes to `granted`
    assert_eq!((resource.queue_len(), resource.in_service()), (1, 1));
    drop(granted); // which never takes it: it goes to `third`
    assert_eq!((resource.queue_len(), resource.in_service()), (0, 1));
    assert_eq!(third.await.unwrap().unwrap(), ms(20));
    assert_eq!((resource.queue_len(), resource.in_service()), (0, 0));
    let m = resource.metrics();
    assert_eq!((m.arrivals, m.completed, m.cancelled), (2, 2, 1));
}

#[tokio::test(start_paused = true)]
async fn an_activity_task_aborted_right_after_its_grant_hands_the_slot_on() {
    let scheduler = Scheduler::builder().resource("r", 1).build().unwrap();
    let resource = scheduler.resource("r").unwrap();
    let held = scheduler.acquire("r", Job::new("held")).await.unwrap();
    let spawn = |name: &'static str| {
        let scheduler = scheduler.clone();
        tokio::spawn(async move {
            let permit = scheduler.acquire("r", Job::new(name)).await.unwrap();
            sleep(ms(10)).await;
            permit.queued()
        })
    };
    let second = spawn("second");
    until_queued(&scheduler, "r", 1).await;
    let third = spawn("third");
    until_queued(&scheduler, "r", 2).await;
    drop(held); // wakes `second`, which has not run yet when it is aborted
    second.abort();
    assert!(second.await.unwrap_err().is_cancelled());
    assert_eq!(third.await.unwrap(), Duration::ZERO);
    assert_eq!((resource.queue_len(), resource.in_service()), (0, 0));
    assert_eq!(resource.metrics().cancelled, 1);
}

#[tokio::test(start_paused = true)]
async fn a_permit_held_by_an_aborted_activity_is_released() {
    let scheduler = Scheduler::builder().resource("r", 1).build().unwrap();
    let resource = scheduler.resource("r").unwrap();
    let running = {
        let scheduler = scheduler.clone();
        tokio::spawn(async move {
            let _permit = scheduler.acquire("r", Job::new("hangs")).await.unwrap();
            std::future::pending::<()>().await;
        })
    };
    while resource.in_service() == 0 {
        tokio::task::yield_now().await;
    }
    sleep(ms(40)).await;
    running.abort();
    assert!(running.await.unwrap_err().is_cancelled());
    assert_eq!(resource.in_service(), 0);
    let m = resource.metrics();
    assert_eq!((m.completed, m.cancelled, m.mean_service_time), (1, 0, ms(40)));
}

// ---------------------------------------------------------------------------
// Errors and gauges
// ---------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn an_unknown_resource_is_an_error() {
    let scheduler = Scheduler::builder().resource("payments", 4).build().unwrap();
    let error = scheduler.acquire("mail", Job::new("send")).await.unwrap_err();
    assert_eq!(error, SchedulerError::UnknownResource("mail".into()));
    assert_eq!(error.to_string(), "unknown resource `mail`");
    assert!(scheduler.resource("mail").is_err());
    let boxed: Box<dyn std::error::Error> = Box::new(error);
    assert!(boxed.to_string().contains("mail"));
}

#[tokio::test(start_paused = true)]
async fn gauges_follow_the_queue_and_the_slots() {
    let scheduler = Scheduler::builder()
        .resource("r", 2)
        .resource("idle", 1)
        .build()
        .unwrap();
    let resource = scheduler.resource("r").unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    let tasks: Vec<_> = (0..5)
        .map(|_| logged(&scheduler, "r", Job::new("x"), ms(100), &log, "x"))
        .collect();
    until_queued(&scheduler, "r", 3).await;
    assert_eq!((resource.queue_len(), resource.in_service()), (3, 2));
    sleep(ms(150)).await;
    assert_eq!((resource.queue_len(), resource.in_service()), (1, 2));
    sleep(ms(100)).await;
    assert_eq!((resource.queue_len(), resource.in_service()), (0, 1));
    for task in tasks {
        task.await.unwrap();
    }
    let metrics = scheduler.metrics();
    let r = metrics.get("r").unwrap();
    assert_eq!((r.queue_len, r.in_service, r.completed), (0, 0, 5));
    // 2 + 2 + 1 jobs in 3 rounds of 100 ms; busy slots 2, 2, 1 of 2.
    assert_eq!(r.window, ms(300));
    assert!((r.utilisation - 5.0 / 6.0).abs() < 1e-9, "{r}");
    assert_eq!(metrics.get("idle").unwrap().arrivals, 0);
    println!("{metrics}");
    assert_eq!(metrics.to_string().lines().count(), 3);
}

// Compile-time check: a custom policy plugs in, boxed or not.
#[allow(dead_code)]
fn policies_box() {
    let boxed: Box<dyn workflow::scheduler::SchedulingPolicy> = Box::new(Fifo::new());
    let _ = Scheduler::builder()
        .resource_with("a", 1, boxed)
        .resource_with("b", 1, RoundRobin::new());
}

/// `Acquire` futures can be held across awaits in spawned tasks.
#[allow(dead_code)]
fn acquire_is_send(scheduler: &Scheduler) -> impl Future<Output = ()> + Send + 'static {
    let acquire = scheduler.acquire("r", Job::new("x"));
    async move {
        let _ = acquire.await;
    }
}
