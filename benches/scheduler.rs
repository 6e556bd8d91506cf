//! What the resource scheduler (`workflow::scheduler`) costs per activity.
//!
//! Groups (names are stable, compare across runs); every figure is time per
//! activity (one acquire and one release):
//! - `uncontended/<policy>`: one task acquires a free slot of a resource
//!   nobody else uses and drops the permit at once: the fast path, on a
//!   current-thread runtime, timed inside one `block_on`. `fifo_by_name`
//!   goes through `Scheduler::acquire` (a name lookup per call), the others
//!   through a `Resource` handle.
//! - `contended_1_thread/<policy>`: 4,096 tasks spawned at once on a
//!   current-thread runtime, each acquiring a slot of a pool of 4 and
//!   holding it across one `yield_now` (standing for the activity's await),
//!   so nearly every job queues and is woken by the release before it.
//!   `no_pool` spawns the same tasks without the pool: the difference is
//!   the scheduling cost of a job that has to wait (queue, waker, wake-up,
//!   second poll), without cross-thread effects.
//! - `contended_2_threads/<policy>`: the same on a 2-worker runtime (the
//!   development machine has 2 cores): the lock is now contended and
//!   wake-ups cross threads. Noisier; compare with `no_pool` of the same
//!   run.
//!
//! Run: `cargo bench --bench scheduler -- --warm-up-time 1 --measurement-time 2`

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::Criterion;
use tokio::runtime::Runtime;
use workflow::scheduler::{Fifo, IntoPolicy, Job, Priority, Resource, RoundRobin, Scheduler, ShortestJobFirst};

/// Tasks in flight at once in the contended runs.
const TASKS: u64 = 4_096;
/// Slots of the contended pool.
const SLOTS: usize = 4;

fn policies() -> Vec<(&'static str, Box<dyn workflow::scheduler::SchedulingPolicy>)> {
    vec![
        ("fifo", Fifo::new().into_policy()),
        ("sjf", ShortestJobFirst::new().into_policy()),
        ("priority", Priority::new().into_policy()),
        ("fair", RoundRobin::new().into_policy()),
    ]
}

fn resource(limit: usize, policy: Box<dyn workflow::scheduler::SchedulingPolicy>) -> (Scheduler, Resource) {
    let scheduler = Scheduler::builder()
        .resource_with("pool", limit, policy)
        .build()
        .expect("a valid scheduler");
    let resource = scheduler.resource("pool").expect("the pool");
    (scheduler, resource)
}

/// A job as the engine would describe it: flow, priority and, every other
/// call, a declared duration.
fn job(i: u64) -> Job {
    let job = Job::new(if i % 2 == 0 { "charge" } else { "reserve" })
        .flow(i % 64)
        .priority((i % 3) as i32);
    if i % 2 == 0 {
        job.expected(Duration::from_millis(5))
    } else {
        job
    }
}

fn uncontended(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a tokio runtime");
    let mut g = c.benchmark_group("uncontended");
    for (name, policy) in policies() {
        let (_scheduler, resource) = resource(16, policy);
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let start = Instant::now();
                    for i in 0..iters {
                        let permit = resource.acquire(black_box(job(i))).await;
                        drop(black_box(permit));
                    }
                    start.elapsed()
                })
            })
        });
    }
    let (scheduler, _) = resource(16, Fifo::new().into_policy());
    g.bench_function("fifo_by_name", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for i in 0..iters {
                    let permit = scheduler.acquire(black_box("pool"), black_box(job(i))).await;
                    drop(black_box(permit));
                }
                start.elapsed()
            })
        })
    });
    g.finish();
}

/// Runs `iters` tasks, at most [`TASKS`] at a time, each through `pool` if
/// given; the total time.
fn spawn_all(rt: &Runtime, iters: u64, pool: Option<&Resource>) -> Duration {
    rt.block_on(async {
        let start = Instant::now();
        let mut done = 0;
        let mut tasks = Vec::with_capacity(TASKS as usize);
        while done < iters {
            let batch = TASKS.min(iters - done);
            for i in 0..batch {
                let pool = pool.cloned();
                tasks.push(tokio::spawn(async move {
                    let permit = match &pool {
                        Some(pool) => Some(pool.acquire(job(i)).await),
                        None => None,
                    };
                    tokio::task::yield_now().await;
                    drop(black_box(permit));
                }));
            }
            for task in tasks.drain(..) {
                task.await.expect("a task");
            }
            done += batch;
        }
        start.elapsed()
    })
}

fn contended(c: &mut Criterion, group: &str, rt: &Runtime) {
    let mut g = c.benchmark_group(group);
    g.bench_function("no_pool", |b| b.iter_custom(|iters| spawn_all(rt, iters, None)));
    for (name, policy) in policies() {
        let (_scheduler, resource) = resource(SLOTS, policy);
        g.bench_function(name, |b| b.iter_custom(|iters| spawn_all(rt, iters, Some(&resource))));
        let m = resource.metrics();
        eprintln!(
            "  {group}/{name}: {} activities, mean wait {:.1} µs, mean queue {:.0} jobs",
            m.completed,
            m.mean_queue_time.as_secs_f64() * 1e6,
            m.mean_queue_len
        );
    }
    g.finish();
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    uncontended(&mut c);
    let one = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    contended(&mut c, "contended_1_thread", &one);
    let two = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    contended(&mut c, "contended_2_threads", &two);
    c.final_summary();
}
