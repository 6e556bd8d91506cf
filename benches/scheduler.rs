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
//! - `engine/<config>`: the whole engine, on a 2-worker runtime as in
//!   `benches/engine.rs`. One iteration starts 10,000 (`WORKFLOWS`)
//!   instances of `Pooled`, a one-state workflow whose activity names
//!   `resource pool;` and yields once (standing for its await, as above),
//!   from 100 tasks that each start their share, then wait for each; it
//!   ends when every `wait` has returned. A fresh engine per iteration,
//!   built and shut down outside the timing. `no_pool` is an engine without
//!   a scheduler (the `resource` clause is then ignored); `semaphore` is the
//!   same engine with the activity holding a permit of a
//!   `tokio::sync::Semaphore` of 64 (`ENGINE_SLOTS`) across its yield, what
//!   a hand-made limit costs; `fifo_unlimited` has a pool of a million
//!   slots, so every call takes the fast path; `fifo`, `sjf`, `priority` and
//!   `fair` a pool of 64, so nearly 2,000 calls wait at a time. Instances
//!   start with priorities 0, 1, 2 in turn, each instance is its own flow,
//!   and the activity declares no expected duration (SJF learns it).
//!   Criterion's figures here are per batch of 10,000 workflows, its
//!   throughput in workflows per second. Afterwards a table gives each
//!   configuration's workflows per second (median over the batches,
//!   warm-up included) and what its limit costs per activity over `no_pool`
//!   and over `semaphore`: (median batch time of the configuration − that
//!   of the other) / 10,000, and the same from the fastest batches. Two
//!   verdicts against the target (the scheduler costs under 1 µs per
//!   activity) follow, from the fastest batches: the fast path
//!   (`fifo_unlimited` over `no_pool`) and the worst pool where calls wait.
//!   Waiting has a cost of its own, whatever limits the calls (the task
//!   parks, is woken later with its memory cold and is polled again): the
//!   `semaphore` row shows it, and the second verdict how much the
//!   scheduler adds to it. These are differences of two noisy totals (each
//!   ~3 µs per workflow): good to a few hundred ns at best, and only on an
//!   otherwise idle machine; the medians move by µs between runs on a
//!   shared one.
//!
//! Run: `cargo bench --bench scheduler -- --warm-up-time 1 --measurement-time 2`
//! (`cargo bench --bench scheduler -- engine` for the engine group alone).

use std::cell::RefCell;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode, Throughput};
use tokio::runtime::Runtime;
use tokio::sync::Semaphore;
use workflow::prelude::*;
use workflow::scheduler::{Fifo, IntoPolicy, Job, Priority, Resource, RoundRobin, Scheduler, ShortestJobFirst};
use workflow::Engine;

/// Tasks in flight at once in the contended runs.
const TASKS: u64 = 4_096;
/// Slots of the contended pool.
const SLOTS: usize = 4;
/// Workflow instances per iteration of the engine group.
const WORKFLOWS: usize = 10_000;
/// Tasks starting (then waiting for) the instances, in the engine group.
const STARTERS: usize = 100;
/// Slots of the engine group's pool.
const ENGINE_SLOTS: usize = 64;

workflow! {
    /// One call on the pool, then done: the engine group's workflow.
    pub workflow Pooled {
        initial Calling;
        state Calling {
            invoke call -> () { resource pool; done => Done; error => Failed; }
        }
        final Done;
        final Failed (failure);
    }
}

/// An activity that yields once (standing for the await of a service
/// call, as in the contended groups), then answers; holding a permit of
/// `semaphore` meanwhile, if it has one.
struct Nop {
    semaphore: Option<Arc<Semaphore>>,
}

impl PooledHandlers for Nop {
    async fn call(&self, _ctx: &(), _call: ActivityCall) -> Result<(), ActivityError> {
        let permit = match &self.semaphore {
            Some(semaphore) => Some(
                semaphore
                    .acquire()
                    .await
                    .map_err(|e| ActivityError::new(e.to_string()))?,
            ),
            None => None,
        };
        tokio::task::yield_now().await;
        drop(permit);
        Ok(())
    }
}

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

// ---------------------------------------------------------------------------
// The engine
// ---------------------------------------------------------------------------

/// Starts one instance per id on `engine` from [`STARTERS`] tasks, each
/// starting its share then waiting for each; the time until every `wait`
/// returned.
async fn run_engine(engine: &Engine<Pooled, Nop>, ids: &Arc<Vec<String>>) -> Duration {
    let chunk = ids.len().div_ceil(STARTERS);
    let began = Instant::now();
    let mut starters = Vec::with_capacity(STARTERS);
    for t in 0..STARTERS {
        let (engine, ids) = (engine.clone(), ids.clone());
        starters.push(tokio::spawn(async move {
            let mine = (t * chunk).min(ids.len())..((t + 1) * chunk).min(ids.len());
            for i in mine.clone() {
                let priority = (i % 3) as i32;
                engine
                    .start_with_priority(ids[i].as_str(), (), priority)
                    .await
                    .expect("a fresh id");
            }
            for i in mine {
                assert_eq!(engine.wait(&ids[i]).await.expect("finished"), PooledState::Done);
            }
        }));
    }
    for starter in starters {
        starter.await.expect("a starter");
    }
    began.elapsed()
}

/// How an engine-group configuration limits the activities.
enum Limit {
    /// Not at all: an engine without a scheduler.
    None,
    /// The activity itself holds a permit of a `tokio::sync::Semaphore` of
    /// [`ENGINE_SLOTS`] (an engine without a scheduler): what a hand-made
    /// limit costs, for comparison.
    Semaphore,
    /// The engine's scheduler, with a pool of this many slots under this
    /// policy.
    Pool(usize, Box<dyn workflow::scheduler::SchedulingPolicy>),
}

fn engine(c: &mut Criterion, rt: &Runtime) {
    let ids: Arc<Vec<String>> = Arc::new((0..WORKFLOWS).map(|i| format!("w{i}")).collect());
    let mut configs = vec![
        ("no_pool", Limit::None),
        ("semaphore", Limit::Semaphore),
        ("fifo_unlimited", Limit::Pool(1_000_000, Fifo::new().into_policy())),
    ];
    configs.extend(
        policies()
            .into_iter()
            .map(|(name, policy)| (name, Limit::Pool(ENGINE_SLOTS, policy))),
    );

    let mut g = c.benchmark_group("engine");
    g.throughput(Throughput::Elements(WORKFLOWS as u64));
    g.sample_size(10);
    g.sampling_mode(SamplingMode::Flat);
    let mut results: Vec<(&str, Vec<Duration>)> = Vec::new();
    for (name, limit) in configs {
        let (scheduler, semaphore) = match limit {
            Limit::None => (None, None),
            Limit::Semaphore => (None, Some(Arc::new(Semaphore::new(ENGINE_SLOTS)))),
            Limit::Pool(limit, policy) => {
                let scheduler = Scheduler::builder()
                    .resource_with("pool", limit, policy)
                    .build()
                    .expect("a valid scheduler");
                (Some(scheduler), None)
            }
        };
        let batches = RefCell::new(Vec::new());
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let elapsed = rt.block_on(async {
                        let builder = Engine::<Pooled, Nop>::builder(Nop {
                            semaphore: semaphore.clone(),
                        });
                        let engine = match &scheduler {
                            Some(scheduler) => builder.scheduler(scheduler.clone()).expect("the pool").build(),
                            None => builder.build(),
                        };
                        let elapsed = run_engine(&engine, &ids).await;
                        engine.shutdown().await;
                        elapsed
                    });
                    batches.borrow_mut().push(elapsed);
                    total += elapsed;
                }
                total
            })
        });
        if let Some(m) = scheduler.as_ref().and_then(|s| s.metrics().get("pool").cloned()) {
            eprintln!(
                "  engine/{name}: {} activities, mean wait {:.1} µs, mean queue {:.0} jobs",
                m.completed,
                m.mean_queue_time.as_secs_f64() * 1e6,
                m.mean_queue_len
            );
        }
        results.push((name, batches.into_inner()));
    }
    g.finish();
    engine_summary(&results);
}

fn median(mut xs: Vec<Duration>) -> Option<Duration> {
    xs.sort();
    xs.get(xs.len() / 2).copied()
}

/// Workflows per second of each configuration, and what its limit costs
/// per activity over `no_pool` and over `semaphore`: from the medians, and
/// (in brackets) from the fastest batches, less sensitive to other load on
/// the machine.
fn engine_summary(results: &[(&str, Vec<Duration>)]) {
    let per_activity = |d: Duration| d.as_secs_f64() * 1e9 / WORKFLOWS as f64;
    let stats = |batches: &Vec<Duration>| Some((median(batches.clone())?, batches.iter().min().copied()?));
    let of = |name: &str| results.iter().find(|(n, _)| *n == name).and_then(|(_, b)| stats(b));
    let (Some((base, base_min)), semaphore) = (of("no_pool"), of("semaphore")) else {
        return;
    };
    println!(
        "\n== engine: {WORKFLOWS} one-activity workflows per batch, 2 workers, {STARTERS} starting tasks, \
         pool of {ENGINE_SLOTS}; ns per activity, median [fastest batch] =="
    );
    println!(
        "{:<16} {:>7} {:>12} {:>16} {:>18} {:>18}",
        "config", "batches", "workflows/s", "ns/workflow", "over no_pool", "over semaphore"
    );
    // The scheduler's cost over `no_pool` (median, fastest batch): on the
    // fast path, and the worst of the pools where calls wait.
    let mut fast: Option<(f64, f64)> = None;
    let mut worst: Option<(f64, f64, Option<f64>, &str)> = None;
    for (name, batches) in results {
        let Some((mid, min)) = stats(batches) else {
            continue;
        };
        let over = |(b, b_min): (Duration, Duration)| {
            format!(
                "{:+.0} [{:+.0}]",
                per_activity(mid) - per_activity(b),
                per_activity(min) - per_activity(b_min)
            )
        };
        let (over_none, over_semaphore) = match *name {
            "no_pool" => ("-".to_string(), "-".to_string()),
            "semaphore" => (over((base, base_min)), "-".to_string()),
            _ => {
                let cost = (
                    per_activity(mid) - per_activity(base),
                    per_activity(min) - per_activity(base_min),
                );
                if *name == "fifo_unlimited" {
                    fast = Some(cost);
                } else if worst.is_none_or(|(_, w, _, _)| cost.1 > w) {
                    let over_semaphore = semaphore.map(|(_, s_min)| per_activity(min) - per_activity(s_min));
                    worst = Some((cost.0, cost.1, over_semaphore, name));
                }
                (over((base, base_min)), semaphore.map_or("?".to_string(), over))
            }
        };
        println!(
            "{:<16} {:>7} {:>12.0} {:>16} {:>18} {:>18}",
            name,
            batches.len(),
            WORKFLOWS as f64 / mid.as_secs_f64(),
            format!("{:.0} [{:.0}]", per_activity(mid), per_activity(min)),
            over_none,
            over_semaphore
        );
    }
    if results.iter().any(|(_, batches)| batches.len() < 5) {
        println!("(too few batches for a verdict: a smoke test, as `--test` runs)");
        return;
    }
    let verdict = |ns: f64| if ns < 1000.0 { "met" } else { "MISSED" };
    if let Some((mid, min)) = fast {
        println!(
            "scheduler cost per activity, fast path (fifo_unlimited): {min:.0} ns [median {mid:.0} ns]; \
             target < 1000 ns: {}",
            verdict(min)
        );
    }
    if let Some((mid, min, over_semaphore, name)) = worst {
        let semaphore = over_semaphore.map_or(String::new(), |ns| format!(", {ns:+.0} ns over a tokio semaphore"));
        println!(
            "scheduler cost per activity, calls waiting (worst policy, {name}): {min:.0} ns [median {mid:.0} ns]{semaphore}; \
             target < 1000 ns: {}",
            verdict(min)
        );
    }
    println!("(verdicts from the fastest batches; the medians move by µs from run to run on a shared machine)");
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
    engine(&mut c, &two);
    c.final_summary();
}
