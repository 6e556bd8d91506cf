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
//!   `benches/engine.rs`. One batch starts 10,000 (`WORKFLOWS`) instances
//!   of `Pooled`, a one-state workflow whose activity names
//!   `resource pool;` and yields once (standing for its await, as above),
//!   from 100 tasks that each start their share; it ends when the last
//!   instance reaches its final state (an entry action counts them down,
//!   so the end does not depend on the order the policy serves in). A
//!   fresh engine per batch, built and shut down outside the timing.
//!   `no_pool` is an engine without a scheduler (the `resource` clause is
//!   then ignored); `semaphore` is the same engine with the activity
//!   holding a permit of a `tokio::sync::Semaphore` of 64 (`ENGINE_SLOTS`)
//!   across its yield, what a hand-made limit costs; `fifo_unlimited` has a
//!   pool of a million slots, so every call takes the fast path; `fifo`,
//!   `sjf`, `priority` and `fair` a pool of 64, so nearly 2,000 calls wait
//!   at a time. Instances start with priorities 0, 1, 2 in turn, each
//!   instance is its own flow, and the activity declares no expected
//!   duration (SJF learns it). Criterion's figures here are per batch of
//!   10,000 workflows, its throughput in workflows per second.
//!
//!   Afterwards, 31 rounds each run one batch of every configuration in
//!   turn (starting from a different one each round, each timed batch after
//!   an untimed one of the same configuration), timing each batch
//!   in wall time and in the process's CPU time (all threads), and a table
//!   gives what each limit costs per activity over `no_pool` and over
//!   `semaphore`: the median over the rounds of the difference within a
//!   round, with the quartiles of those differences. Pairing the batches
//!   of one round cancels the machine's load drifting between
//!   configurations and the order they run in, which moved single medians
//!   by µs. The verdicts against the target (the scheduler costs under
//!   1 µs per activity) take the wall time, what the throughput loses: the
//!   fast path (`fifo_unlimited`) and the worst pool where calls wait; the
//!   CPU time (summed over both workers) is shown beside. Waiting has a cost of its own,
//!   whatever limits the calls (the instance is resumed later with its
//!   memory cold): the `semaphore` row shows it.
//!
//! Run: `cargo bench -p workflow-benches --bench scheduler -- --warm-up-time 1 --measurement-time 2`
//! (`cargo bench -p workflow-benches --bench scheduler -- engine` for the engine group alone).

use std::cell::RefCell;
use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode, Throughput};
use tokio::runtime::Runtime;
use tokio::sync::{Notify, Semaphore};
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
        final Done { entry finished; }
        final Failed (failure) { entry failed; }
    }
}

/// Counts a batch's instances down to its end: a batch ends when the last
/// instance reaches a final state, whatever order they finish in (waiting
/// for each in turn would cost more the further the policy's order is from
/// the order they started in).
struct Finished {
    left: AtomicUsize,
    failed: AtomicUsize,
    all: Notify,
}

impl Finished {
    fn new(instances: usize) -> Arc<Self> {
        Arc::new(Self {
            left: AtomicUsize::new(instances),
            failed: AtomicUsize::new(0),
            all: Notify::new(),
        })
    }

    fn count(&self) {
        if self.left.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.all.notify_one();
        }
    }
}

/// An activity that yields once (standing for the await of a service
/// call, as in the contended groups), then answers; holding a permit of
/// `semaphore` meanwhile, if it has one.
struct Nop {
    semaphore: Option<Arc<Semaphore>>,
    finished: Arc<Finished>,
}

impl PooledHandlers for Nop {
    fn finished(&self, _ctx: &mut ()) {
        self.finished.count();
    }

    fn failed(&self, _ctx: &mut ()) {
        self.finished.failed.fetch_add(1, Ordering::Relaxed);
        self.finished.count();
    }

    async fn call(&self, _ctx: &(), _call: &ActivityCall) -> Result<(), ActivityError> {
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

/// Starts one instance per id on `engine` from [`STARTERS`] tasks; the
/// time until every instance has finished (`finished` counted it).
async fn run_engine(engine: &Engine<Pooled, Nop>, ids: &Arc<Vec<String>>, finished: &Finished) -> Duration {
    let chunk = ids.len().div_ceil(STARTERS);
    let began = Instant::now();
    let mut starters = Vec::with_capacity(STARTERS);
    for t in 0..STARTERS {
        let (engine, ids) = (engine.clone(), ids.clone());
        starters.push(tokio::spawn(async move {
            for i in (t * chunk).min(ids.len())..((t + 1) * chunk).min(ids.len()) {
                let priority = (i % 3) as i32;
                engine
                    .start_with_priority(ids[i].as_str(), (), priority)
                    .await
                    .expect("a fresh id");
            }
        }));
    }
    for starter in starters {
        starter.await.expect("a starter");
    }
    finished.all.notified().await;
    let elapsed = began.elapsed();
    assert_eq!(finished.failed.load(Ordering::Relaxed), 0, "every instance completes");
    elapsed
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

/// One configuration of the engine group, ready to run batches.
struct Config {
    name: &'static str,
    scheduler: Option<Scheduler>,
    semaphore: Option<Arc<Semaphore>>,
}

impl Config {
    fn new(name: &'static str, limit: Limit) -> Self {
        let (scheduler, semaphore) = match limit {
            Limit::None => (None, None),
            Limit::Semaphore => (None, Some(Arc::new(Semaphore::new(ENGINE_SLOTS)))),
            Limit::Pool(limit, policy) => (Some(resource(limit, policy).0), None),
        };
        Self {
            name,
            scheduler,
            semaphore,
        }
    }

    /// One batch on a fresh engine: the time from the first start until
    /// every instance finished, and the CPU time the process spent
    /// meanwhile (building and shutting the engine down are not timed).
    fn batch(&self, rt: &Runtime, ids: &Arc<Vec<String>>) -> Batch {
        rt.block_on(async {
            let finished = Finished::new(ids.len());
            let builder = Engine::<Pooled, Nop>::builder(Nop {
                semaphore: self.semaphore.clone(),
                finished: finished.clone(),
            });
            let engine = match &self.scheduler {
                Some(scheduler) => builder.scheduler(scheduler.clone()).expect("the pool").build(),
                None => builder.build(),
            };
            let cpu = cpu_time();
            let wall = run_engine(&engine, ids, &finished).await;
            let cpu = cpu_time().saturating_sub(cpu);
            engine.shutdown().await;
            Batch { wall, cpu }
        })
    }
}

/// What one batch took.
#[derive(Clone, Copy)]
struct Batch {
    wall: Duration,
    /// CPU time of every thread of the process: what the batch cost,
    /// whatever else the machine was doing.
    cpu: Duration,
}

/// The CPU time the process has used so far (all threads).
fn cpu_time() -> Duration {
    let mut now = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `clock_gettime` writes one `timespec` through a valid pointer.
    let ok = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut now) } == 0;
    if !ok {
        return Duration::ZERO;
    }
    Duration::new(now.tv_sec.try_into().unwrap_or(0), now.tv_nsec.try_into().unwrap_or(0))
}

/// Rounds of the interleaved comparison behind the summary table.
const ROUNDS: usize = 31;

fn engine(c: &mut Criterion, rt: &Runtime) {
    let ids: Arc<Vec<String>> = Arc::new((0..WORKFLOWS).map(|i| format!("w{i}")).collect());
    let mut limits = vec![
        ("no_pool", Limit::None),
        ("semaphore", Limit::Semaphore),
        ("fifo_unlimited", Limit::Pool(1_000_000, Fifo::new().into_policy())),
    ];
    limits.extend(
        policies()
            .into_iter()
            .map(|(name, policy)| (name, Limit::Pool(ENGINE_SLOTS, policy))),
    );
    let configs: Vec<Config> = limits
        .into_iter()
        .map(|(name, limit)| Config::new(name, limit))
        .collect();

    let mut g = c.benchmark_group("engine");
    g.throughput(Throughput::Elements(WORKFLOWS as u64));
    g.sample_size(10);
    g.sampling_mode(SamplingMode::Flat);
    // The configurations criterion ran (a filter may skip some), and
    // whether it only smoke-tested them (`--test`: one batch each).
    let mut ran = Vec::new();
    let mut smoke = false;
    for config in &configs {
        let batches = RefCell::new(0u64);
        g.bench_function(config.name, |b| {
            b.iter_custom(|iters| {
                *batches.borrow_mut() += iters;
                (0..iters).map(|_| config.batch(rt, &ids).wall).sum()
            })
        });
        let batches = batches.into_inner();
        if batches > 0 {
            ran.push(config);
            smoke |= batches == 1;
        }
        if let Some(m) = config.scheduler.as_ref().and_then(|s| s.metrics().get("pool").cloned()) {
            eprintln!(
                "  engine/{}: {} activities, mean wait {:.1} µs, mean queue {:.0} jobs",
                config.name,
                m.completed,
                m.mean_queue_time.as_secs_f64() * 1e6,
                m.mean_queue_len
            );
        }
    }
    g.finish();
    if smoke {
        println!("(engine summary skipped: a smoke test, as `--test` runs)");
        return;
    }
    // Each round runs one batch of every configuration, starting from a
    // different one each time: a configuration's cost is then compared
    // with `no_pool` of the same round, so that the machine's load drifting
    // between configurations (and their order) cancels out. Each timed batch
    // follows an untimed one of the same configuration: what the previous
    // configuration left in the allocator then weighs on neither.
    let mut rounds: Vec<Vec<Batch>> = vec![Vec::new(); ran.len()];
    for round in 0..ROUNDS {
        for k in 0..ran.len() {
            let at = (round + k) % ran.len();
            ran[at].batch(rt, &ids);
            rounds[at].push(ran[at].batch(rt, &ids));
        }
    }
    let results: Vec<(&str, Vec<Batch>)> = ran.iter().map(|c| c.name).zip(rounds).collect();
    engine_summary(&results);
}

/// A median with its first and third quartiles.
type Spread = (f64, f64, f64);

fn median(mut xs: Vec<f64>) -> Option<f64> {
    xs.sort_by(f64::total_cmp);
    xs.get(xs.len() / 2).copied()
}

/// Workflows per second of each configuration (median round), its CPU
/// time per workflow, and what its limit costs per activity over `no_pool`
/// and over `semaphore`: the median over the rounds of the difference
/// within each round, with the middle half of those differences
/// (quartiles) in brackets; in CPU time, and in wall time (the verdicts:
/// what the throughput loses).
fn engine_summary(results: &[(&str, Vec<Batch>)]) {
    let ns = |d: Duration| d.as_secs_f64() * 1e9 / WORKFLOWS as f64;
    let of = |name: &str| results.iter().find(|(n, _)| *n == name).map(|(_, b)| b);
    let Some(base) = of("no_pool") else {
        return;
    };
    let semaphore = of("semaphore");
    // Per-round differences (ns per activity) of `batches` over `other`, by
    // `measure`: median, first and third quartile.
    let over = |batches: &Vec<Batch>, other: &Vec<Batch>, measure: fn(&Batch) -> Duration| {
        let mut diffs: Vec<f64> = batches
            .iter()
            .zip(other)
            .map(|(b, o)| ns(measure(b)) - ns(measure(o)))
            .collect();
        diffs.sort_by(f64::total_cmp);
        let q = |f: f64| {
            diffs
                .get(((diffs.len().max(1) - 1) as f64 * f).round() as usize)
                .copied()
        };
        Some((q(0.5)?, q(0.25)?, q(0.75)?))
    };
    let cpu: fn(&Batch) -> Duration = |b| b.cpu;
    let wall: fn(&Batch) -> Duration = |b| b.wall;
    let show = |d: Option<Spread>| d.map_or("-".to_string(), |(m, lo, hi)| format!("{m:+.0} [{lo:+.0}, {hi:+.0}]"));
    println!(
        "\n== engine: {WORKFLOWS} one-activity workflows per batch, 2 workers, {STARTERS} starting tasks, \
         pool of {ENGINE_SLOTS}; {} interleaved rounds; ns per activity: median of the per-round \
         differences [quartiles] ==",
        base.len()
    );
    println!(
        "{:<15} {:>11} {:>10} {:>23} {:>23} {:>23}",
        "config", "workflows/s", "CPU ns/wf", "CPU over no_pool", "CPU over semaphore", "wall over no_pool"
    );
    let mut fast = None;
    // The worst pool where calls wait, by wall time, with its CPU time.
    let mut worst: Option<(&str, Spread, Option<Spread>)> = None;
    for (name, batches) in results {
        let (Some(wall_mid), Some(cpu_mid)) = (
            median(batches.iter().map(|b| ns(b.wall)).collect()),
            median(batches.iter().map(|b| ns(b.cpu)).collect()),
        ) else {
            continue;
        };
        let (cpu_over, cpu_over_semaphore, wall_over) = match *name {
            "no_pool" => (None, None, None),
            "semaphore" => (over(batches, base, cpu), None, over(batches, base, wall)),
            _ => (
                over(batches, base, cpu),
                semaphore.and_then(|s| over(batches, s, cpu)),
                over(batches, base, wall),
            ),
        };
        match (*name, wall_over) {
            ("fifo_unlimited", cost) => fast = cost,
            ("no_pool" | "semaphore", _) => {}
            (_, Some(cost)) if worst.is_none_or(|(_, w, _)| cost.0 > w.0) => worst = Some((name, cost, cpu_over)),
            _ => {}
        }
        println!(
            "{:<15} {:>11.0} {:>10.0} {:>23} {:>23} {:>23}",
            name,
            1e9 / wall_mid,
            cpu_mid,
            show(cpu_over),
            show(cpu_over_semaphore),
            show(wall_over)
        );
    }
    let verdict = |ns: f64| if ns < 1000.0 { "met" } else { "MISSED" };
    if let Some((mid, lo, hi)) = fast {
        println!(
            "scheduler cost per activity (wall time), fast path (fifo_unlimited): {mid:.0} ns [{lo:.0}, {hi:.0}]; \
             target < 1000 ns: {}",
            verdict(mid)
        );
    }
    if let Some((name, (mid, lo, hi), cpu)) = worst {
        let cpu = cpu.map_or(String::new(), |(c, _, _)| {
            format!(" ({c:+.0} ns of CPU time over both workers)")
        });
        println!(
            "scheduler cost per activity (wall time), calls waiting (worst policy, {name}): {mid:.0} ns [{lo:.0}, {hi:.0}]{cpu}; \
             target < 1000 ns: {}",
            verdict(mid)
        );
    }
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
