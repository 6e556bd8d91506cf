//! The engine (`workflow::Engine`) under load: throughput, whole workflows,
//! memory per idle instance, and its per-event overhead over `handle`.
//!
//! A tokio multi-thread runtime with 2 workers (the development machine has
//! 2 cores). Sections, each bounded to well under a minute:
//!
//! - `memory`: 1,000,000 idle ping-pong instances; VmRSS (`/proc/self/status`)
//!   before and after, bytes per instance.
//!   `cargo run --release --example engine_memory` breaks the bytes down by
//!   allocation, and counts allocations per event and per workflow.
//! - `throughput`: 100,000 live ping-pong instances (`on Ping => B;`,
//!   `on Pong => A;`), events from many concurrent tasks, transitions per
//!   second: (a) `send` (each awaits the handling), (b) `try_send` with
//!   queues of up to 64 events per instance, then drained with `send`.
//! - `workflows`: 100,000 instances of a 4-step workflow (three states each
//!   invoking a trivial async activity, then a final) started at once; time
//!   until every `wait` resolves.
//! - `overhead` (criterion): one event through `handle` directly, through
//!   `Engine::send` (awaited, one caller), and through `Engine::try_send`
//!   (pipelined, one instance); ns per event and the ratio.
//!
//! Each section runs in a fresh process (the benchmark runs itself once per
//! section), since the gigabytes one section frees stay in the allocator and
//! slow the next one down; the load average before and after each section
//! is printed, and a table of the figures against their targets at the end.
//!
//! Run: `cargo bench -p workflow-benches --bench engine` (everything, about
//! 2.5 minutes), or name sections:
//! `cargo bench -p workflow-benches --bench engine -- throughput workflows`.
//! Without `--bench` (as `cargo test -p workflow-benches --benches` runs it)
//! every section runs once on small sizes, in this process, as a smoke test.

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use tokio::runtime::Runtime;
use workflow::{Engine, EngineError, Record, RecordKind, Status};

#[path = "support/flows.rs"]
mod flows;

use flows::{Nop, PingPong, PingPongEvent, PingPongState, Steps, StepsState};

/// Sizes of one run: the real ones, or small ones for a smoke test.
struct Sizes {
    idle: usize,
    live: usize,
    workflows: usize,
    seconds: Duration,
    repeats: usize,
}

const FULL: Sizes = Sizes {
    idle: 1_000_000,
    live: 100_000,
    workflows: 100_000,
    seconds: Duration::from_secs(5),
    repeats: 3,
};
const SMOKE: Sizes = Sizes {
    idle: 1_000,
    live: 1_000,
    workflows: 1_000,
    seconds: Duration::from_millis(100),
    repeats: 1,
};

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

fn ids(prefix: &str, n: usize) -> Arc<Vec<String>> {
    Arc::new((0..n).map(|i| format!("{prefix}{i}")).collect())
}

/// The resident set size, from `/proc/self/status`, in bytes.
fn vm_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

/// The ping-pong event that moves an instance out of `state`.
fn next_event(state: PingPongState) -> PingPongEvent {
    match state {
        PingPongState::A => PingPongEvent::Ping,
        PingPongState::B => PingPongEvent::Pong,
    }
}

/// Starts one ping-pong instance per id, from `tasks` concurrent tasks;
/// gives the time it took.
async fn start_all(engine: &Engine<PingPong, Nop>, ids: &Arc<Vec<String>>, tasks: usize) -> Duration {
    let began = Instant::now();
    let chunk = ids.len().div_ceil(tasks);
    let mut handles = Vec::new();
    for t in 0..tasks {
        let (engine, ids) = (engine.clone(), ids.clone());
        handles.push(tokio::spawn(async move {
            for id in ids.iter().skip(t * chunk).take(chunk) {
                engine.start(id.as_str(), ()).await.expect("a fresh id");
            }
        }));
    }
    for handle in handles {
        handle.await.expect("a starter");
    }
    began.elapsed()
}

// ---------------------------------------------------------------------------
// memory
// ---------------------------------------------------------------------------

fn memory(rt: &Runtime, sizes: &Sizes) -> f64 {
    println!("\n== memory: {} idle ping-pong instances ==", sizes.idle);
    let ids = ids("m", sizes.idle);
    let engine = Engine::<PingPong, Nop>::new(Nop);
    let before = vm_rss().unwrap_or(0);
    let took = rt.block_on(start_all(&engine, &ids, 2));
    let after = vm_rss().unwrap_or(0);
    let grown = after.saturating_sub(before);
    println!(
        "  started in {:.2} s ({:.0} starts/s)",
        took.as_secs_f64(),
        sizes.idle as f64 / took.as_secs_f64()
    );
    println!(
        "  VmRSS {:.1} MiB -> {:.1} MiB: +{:.1} MiB, {:.0} bytes per instance (target: < 1 GiB for 1,000,000, i.e. < 1074 B each)",
        mib(before),
        mib(after),
        mib(grown),
        grown as f64 / sizes.idle as f64
    );
    assert_eq!(rt.block_on(engine.state(&ids[0])).expect("started"), PingPongState::A);
    let began = Instant::now();
    rt.block_on(engine.shutdown());
    println!(
        "  shutdown of {} instances: {:.2} s",
        sizes.idle,
        began.elapsed().as_secs_f64()
    );
    println!(
        "  public type sizes: Record {} B, RecordKind {} B, Status<PingPongState> {} B",
        size_of::<Record>(),
        size_of::<RecordKind>(),
        size_of::<Status<PingPongState>>()
    );
    grown as f64 / sizes.idle as f64
}

// ---------------------------------------------------------------------------
// throughput
// ---------------------------------------------------------------------------

/// (a) `drivers` tasks, each owning a slice of the instances, deliver with
/// `send` (one event in flight per task) until `duration` has passed.
async fn drive_send(
    engine: &Engine<PingPong, Nop>,
    ids: &Arc<Vec<String>>,
    drivers: usize,
    duration: Duration,
) -> (u64, Duration) {
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let chunk = ids.len().div_ceil(drivers);
    let began = Instant::now();
    let mut handles = Vec::new();
    for d in 0..drivers {
        let (engine, ids, stop, done) = (engine.clone(), ids.clone(), stop.clone(), done.clone());
        handles.push(tokio::spawn(async move {
            let mine = &ids[(d * chunk).min(ids.len())..((d + 1) * chunk).min(ids.len())];
            let mut states: Vec<PingPongState> = Vec::with_capacity(mine.len());
            for id in mine {
                states.push(engine.state(id).await.expect("started"));
            }
            let mut sent = 0u64;
            'outer: loop {
                for (id, state) in mine.iter().zip(states.iter_mut()) {
                    if stop.load(Ordering::Relaxed) {
                        break 'outer;
                    }
                    engine.send(id, next_event(*state)).await.expect("accepted");
                    *state = match *state {
                        PingPongState::A => PingPongState::B,
                        PingPongState::B => PingPongState::A,
                    };
                    sent += 1;
                }
            }
            done.fetch_add(sent, Ordering::Relaxed);
        }));
    }
    tokio::time::sleep(duration).await;
    stop.store(true, Ordering::Relaxed);
    for handle in handles {
        handle.await.expect("a driver");
    }
    (done.load(Ordering::Relaxed), began.elapsed())
}

/// (b) `drivers` tasks queue events with `try_send` (up to the mailbox's 64
/// per instance; a full mailbox makes the task yield and retry) until
/// `duration` has passed, then drain: one awaited `send` per instance, which
/// returns once everything queued before it is handled.
async fn drive_try_send(
    engine: &Engine<PingPong, Nop>,
    ids: &Arc<Vec<String>>,
    drivers: usize,
    duration: Duration,
) -> (u64, u64, Duration) {
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let full = Arc::new(AtomicU64::new(0));
    let chunk = ids.len().div_ceil(drivers);
    let began = Instant::now();
    let mut handles = Vec::new();
    for d in 0..drivers {
        let (engine, ids, stop, done, full) = (engine.clone(), ids.clone(), stop.clone(), done.clone(), full.clone());
        handles.push(tokio::spawn(async move {
            let mine = &ids[(d * chunk).min(ids.len())..((d + 1) * chunk).min(ids.len())];
            let mut states: Vec<PingPongState> = Vec::with_capacity(mine.len());
            for id in mine {
                states.push(engine.state(id).await.expect("started"));
            }
            let (mut sent, mut fulls) = (0u64, 0u64);
            while !stop.load(Ordering::Relaxed) {
                for (id, state) in mine.iter().zip(states.iter_mut()) {
                    // Two events per instance and pass, so that each is
                    // handled while the task queues the others.
                    for _ in 0..2 {
                        loop {
                            match engine.try_send(id, next_event(*state)) {
                                Ok(()) => break,
                                Err(EngineError::MailboxFull(_)) => {
                                    fulls += 1;
                                    tokio::task::yield_now().await;
                                }
                                Err(e) => panic!("try_send: {e}"),
                            }
                        }
                        *state = match *state {
                            PingPongState::A => PingPongState::B,
                            PingPongState::B => PingPongState::A,
                        };
                        sent += 1;
                    }
                }
            }
            for (id, state) in mine.iter().zip(states.iter_mut()) {
                engine.send(id, next_event(*state)).await.expect("accepted");
                sent += 1;
            }
            done.fetch_add(sent, Ordering::Relaxed);
            full.fetch_add(fulls, Ordering::Relaxed);
        }));
    }
    tokio::time::sleep(duration).await;
    stop.store(true, Ordering::Relaxed);
    for handle in handles {
        handle.await.expect("a driver");
    }
    (
        done.load(Ordering::Relaxed),
        full.load(Ordering::Relaxed),
        began.elapsed(),
    )
}

/// How the events are delivered.
#[derive(Clone, Copy)]
enum Drive {
    Send,
    TrySend,
}

fn throughput(rt: &Runtime, sizes: &Sizes) -> Option<f64> {
    println!(
        "\n== throughput: {} live ping-pong instances, 2 workers, {:?} per run ==",
        sizes.live, sizes.seconds
    );
    println!("  (a fresh engine per run: every transition stays in its instance's history until shutdown)");
    let ids = ids("t", sizes.live);
    let mut best: Option<f64> = None;
    for (drive, drivers) in [
        (Drive::Send, 1_000),
        (Drive::Send, sizes.live),
        (Drive::TrySend, 2),
        (Drive::TrySend, 100),
    ] {
        let (mut rates, mut fulls, mut rss) = (Vec::new(), 0, 0);
        for _ in 0..sizes.repeats {
            let engine = Engine::<PingPong, Nop>::new(Nop);
            rt.block_on(start_all(&engine, &ids, 2));
            let (events, elapsed) = match drive {
                Drive::Send => rt.block_on(drive_send(&engine, &ids, drivers, sizes.seconds)),
                Drive::TrySend => {
                    let (events, full, elapsed) = rt.block_on(drive_try_send(&engine, &ids, drivers, sizes.seconds));
                    fulls += full;
                    (events, elapsed)
                }
            };
            rates.push(events as f64 / elapsed.as_secs_f64());
            rss = rss.max(vm_rss().unwrap_or(0));
            rt.block_on(engine.shutdown());
        }
        let rate = median(rates.clone());
        best = Some(best.map_or(rate, |b: f64| b.max(rate)));
        let how = match drive {
            Drive::Send => "send,    ".to_string(),
            Drive::TrySend => "try_send,".to_string(),
        };
        let full = match drive {
            Drive::Send => String::new(),
            Drive::TrySend => format!("; {fulls} MailboxFull"),
        };
        println!(
            "  {how} {drivers:>6} tasks: {rate:>9.0} transitions/s (median of {}: {}) = {:.0} ns CPU each on 2 cores; VmRSS up to {:.0} MiB{full}",
            rates.len(),
            rates.iter().map(|r| format!("{r:.0}")).collect::<Vec<_>>().join(", "),
            2e9 / rate,
            mib(rss),
        );
    }
    println!("  target: >= 1,000,000 transitions/s");
    best
}

// ---------------------------------------------------------------------------
// workflows
// ---------------------------------------------------------------------------

/// Whether the engine runs the initial state's activity: a `Steps`
/// instance should finish within a second.
async fn probe() -> bool {
    let engine = Engine::<Steps, Nop>::new(Nop);
    engine.start("probe", ()).await.expect("a fresh id");
    let finished = tokio::time::timeout(Duration::from_secs(1), engine.wait("probe")).await;
    engine.shutdown().await;
    matches!(finished, Ok(Ok(StepsState::Done)))
}

/// Starts one `Steps` instance per id from `tasks` tasks (each starts its
/// share, then waits for each of them); the time until every wait resolved.
async fn run_steps(ids: &Arc<Vec<String>>, tasks: usize) -> Duration {
    let engine = Engine::<Steps, Nop>::new(Nop);
    let chunk = ids.len().div_ceil(tasks);
    let began = Instant::now();
    let mut handles = Vec::new();
    for t in 0..tasks {
        let (engine, ids) = (engine.clone(), ids.clone());
        handles.push(tokio::spawn(async move {
            let mine = &ids[(t * chunk).min(ids.len())..((t + 1) * chunk).min(ids.len())];
            for id in mine {
                engine.start(id.as_str(), ()).await.expect("a fresh id");
            }
            for id in mine {
                assert_eq!(engine.wait(id).await.expect("finished"), StepsState::Done);
            }
        }));
    }
    for handle in handles {
        handle.await.expect("a driver");
    }
    let elapsed = began.elapsed();
    engine.shutdown().await;
    elapsed
}

fn workflows(rt: &Runtime, sizes: &Sizes) -> Option<f64> {
    println!(
        "\n== workflows: {} four-step workflows (3 trivial activities) started at once ==",
        sizes.workflows
    );
    if !rt.block_on(probe()) {
        println!("  SKIPPED: a `Steps` instance is still running after 1 s: the engine did not start the activity of its initial state");
        return None;
    }
    let ids = ids("w", sizes.workflows);
    let mut best: Option<f64> = None;
    for tasks in [2, 100, sizes.workflows] {
        let mut rates = Vec::new();
        for _ in 0..sizes.repeats {
            let elapsed = rt.block_on(run_steps(&ids, tasks));
            rates.push(sizes.workflows as f64 / elapsed.as_secs_f64());
        }
        let rate = median(rates.clone());
        best = Some(best.map_or(rate, |b: f64| b.max(rate)));
        println!(
            "  {tasks:>6} starting tasks: {:>8.0} workflows/s (median of {}: {}) = {:.1} us CPU each on 2 cores",
            rate,
            rates.len(),
            rates.iter().map(|r| format!("{r:.0}")).collect::<Vec<_>>().join(", "),
            2e6 / rate
        );
    }
    println!("  target: >= 100,000 workflows/s");
    best
}

// ---------------------------------------------------------------------------
// overhead
// ---------------------------------------------------------------------------

/// Two events per iteration (Ping then Pong), so every iteration ends where
/// it began.
fn overhead(c: &mut Criterion, rt: &Runtime) {
    let mut group = c.benchmark_group("engine_overhead");
    group.throughput(Throughput::Elements(2));

    group.bench_function("handle", |b| {
        let mut machine = PingPong::new(());
        b.iter(|| {
            black_box(machine.handle(black_box(&PingPongEvent::Ping), &Nop)).ok();
            black_box(machine.handle(black_box(&PingPongEvent::Pong), &Nop)).ok();
        });
    });

    let engine = Engine::<PingPong, Nop>::new(Nop);
    rt.block_on(engine.start("solo", ())).expect("a fresh id");
    group.bench_function("send", |b| {
        b.iter_custom(|iters| {
            let engine = engine.clone();
            rt.block_on(async move {
                tokio::spawn(async move {
                    let began = Instant::now();
                    for _ in 0..iters {
                        engine.send("solo", PingPongEvent::Ping).await.expect("accepted");
                        engine.send("solo", PingPongEvent::Pong).await.expect("accepted");
                    }
                    began.elapsed()
                })
                .await
                .expect("the sender")
            })
        });
    });

    group.bench_function("try_send", |b| {
        b.iter_custom(|iters| {
            let engine = engine.clone();
            rt.block_on(async move {
                tokio::spawn(async move {
                    let began = Instant::now();
                    for _ in 0..iters {
                        for event in [PingPongEvent::Ping, PingPongEvent::Pong] {
                            while let Err(e) = engine.try_send("solo", event.clone()) {
                                assert!(matches!(e, EngineError::MailboxFull(_)), "try_send: {e}");
                                tokio::task::yield_now().await;
                            }
                        }
                    }
                    // Two more, awaited: everything before them is handled.
                    engine.send("solo", PingPongEvent::Ping).await.expect("accepted");
                    engine.send("solo", PingPongEvent::Pong).await.expect("accepted");
                    began.elapsed()
                })
                .await
                .expect("the sender")
            })
        });
    });
    group.finish();
    rt.block_on(engine.shutdown());

    // The same on a current-thread runtime: the channel hops without the
    // cross-thread wake-ups.
    let local = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let engine = Engine::<PingPong, Nop>::new(Nop);
    local.block_on(engine.start("solo", ())).expect("a fresh id");
    let mut group = c.benchmark_group("engine_overhead");
    group.throughput(Throughput::Elements(2));
    group.bench_function("send_current_thread", |b| {
        b.iter_custom(|iters| {
            local.block_on(async {
                let began = Instant::now();
                for _ in 0..iters {
                    engine.send("solo", PingPongEvent::Ping).await.expect("accepted");
                    engine.send("solo", PingPongEvent::Pong).await.expect("accepted");
                }
                began.elapsed()
            })
        });
    });
    group.finish();
    local.block_on(engine.shutdown());
}

/// The medians criterion just wrote, in ns per event.
fn overhead_summary() {
    let dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        // The workspace's target directory: this package sits in benches/.
        .unwrap_or_else(|| std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"))
        .join("criterion/engine_overhead");
    let read = |name: &str| -> Option<f64> {
        let text = std::fs::read_to_string(dir.join(name).join("new/estimates.json")).ok()?;
        let json: serde_json::Value = serde_json::from_str(&text).ok()?;
        Some(json["median"]["point_estimate"].as_f64()? / 2.0)
    };
    let Some(direct) = read("handle") else { return };
    println!("\n== overhead: ns per event (criterion medians, 2 events per iteration) ==");
    println!("  handle, direct                       {direct:>9.2} ns");
    for name in ["send", "try_send", "send_current_thread"] {
        if let Some(ns) = read(name) {
            println!(
                "  engine {name:<29} {ns:>9.1} ns  = {:>6.0}x handle, +{:.1} ns",
                ns / direct,
                ns - direct
            );
        }
    }
}

/// A figure against its target, printed as a `FIGURE` line for the parent
/// process to collect.
struct Figure {
    what: String,
    value: f64,
    target: f64,
    /// Whether more is better (a rate) or less (memory).
    more: bool,
    unit: &'static str,
}

impl Figure {
    fn emit(&self) {
        println!(
            "FIGURE\t{}\t{}\t{}\t{}\t{}",
            self.what, self.value, self.target, self.more, self.unit
        );
    }

    fn parse(line: &str) -> Option<Figure> {
        let mut parts = line.strip_prefix("FIGURE\t")?.split('\t');
        Some(Figure {
            what: parts.next()?.to_string(),
            value: parts.next()?.parse().ok()?,
            target: parts.next()?.parse().ok()?,
            more: parts.next()? == "true",
            unit: match parts.next()? {
                "B/instance" => "B/instance",
                _ => "/s",
            },
        })
    }
}

const SECTIONS: [&str; 4] = ["memory", "throughput", "workflows", "overhead"];

/// The 1-minute load average, to judge how noisy a run was.
fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map_or_else(|_| "?".into(), |l| l.split(' ').take(3).collect::<Vec<_>>().join(" "))
}

/// Runs one section in this process.
fn section(name: &str, benching: bool) {
    let sizes = if benching { &FULL } else { &SMOKE };
    println!("\n[{name}: load average {} on 2 cores, before]", load());
    let rt = runtime();
    let figure = |what: String, value: f64, target: f64, more: bool, unit: &'static str| {
        Figure {
            what,
            value,
            target,
            more,
            unit,
        }
        .emit()
    };
    match name {
        "memory" => {
            let bytes = memory(&rt, sizes);
            figure(
                format!("idle instance ({} started)", sizes.idle),
                bytes,
                1024.0 * 1024.0 * 1024.0 / 1e6,
                false,
                "B/instance",
            );
        }
        "throughput" => {
            if let Some(rate) = throughput(&rt, sizes) {
                figure(
                    format!("transitions/s, {} live instances", sizes.live),
                    rate,
                    1e6,
                    true,
                    "/s",
                );
            }
        }
        "workflows" => {
            if let Some(rate) = workflows(&rt, sizes) {
                figure(
                    format!("4-step workflows/s, {} at once", sizes.workflows),
                    rate,
                    1e5,
                    true,
                    "/s",
                );
            }
        }
        _ => {
            // Benchmarking: the sections are chosen by `main`, so criterion's
            // own argument parsing (one filter at most) is bypassed.
            // Otherwise its test mode runs each benchmark once.
            let mut c = if benching {
                Criterion::default()
                    .warm_up_time(Duration::from_secs(1))
                    .measurement_time(Duration::from_secs(3))
            } else {
                Criterion::default().configure_from_args()
            };
            overhead(&mut c, &rt);
            c.final_summary();
            if benching {
                overhead_summary();
            }
        }
    }
    println!("[{name}: load average {} after]", load());
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let benching = args.iter().any(|a| a == "--bench");
    let named: Vec<&str> = args
        .iter()
        .filter(|a| !a.starts_with('-'))
        .map(String::as_str)
        .collect();
    let chosen: Vec<&str> = SECTIONS
        .into_iter()
        .filter(|s| named.is_empty() || named.iter().any(|n| s.contains(n) || n.contains(s)))
        .collect();
    if !benching || std::env::var_os("ENGINE_BENCH_CHILD").is_some() {
        // A smoke test, or one child: everything here.
        chosen.iter().for_each(|s| section(s, benching));
        return;
    }
    // Each section in a fresh process: what one leaves in the allocator
    // (gigabytes of freed histories) slows the next one down.
    let exe = std::env::current_exe().expect("this benchmark's path");
    let mut figures = Vec::new();
    for name in chosen {
        let mut child = std::process::Command::new(&exe)
            .args(["--bench", name])
            .env("ENGINE_BENCH_CHILD", "1")
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("a child process");
        let stdout = child.stdout.take().expect("its output");
        for line in std::io::BufRead::lines(std::io::BufReader::new(stdout)) {
            let line = line.expect("its output");
            match Figure::parse(&line) {
                Some(figure) => figures.push(figure),
                None => println!("{line}"),
            }
        }
        assert!(child.wait().expect("the child").success(), "section {name} failed");
    }
    if !figures.is_empty() {
        println!("\n== against the targets (rates: median of the best configuration) ==");
        for f in figures {
            let met = if f.more {
                f.value >= f.target
            } else {
                f.value < f.target
            };
            let (value, target) = match f.unit {
                "B/instance" => (
                    format!("{:.0} B/instance", f.value),
                    format!("< {:.0} B/instance (1 GiB per million)", f.target),
                ),
                _ => (format!("{:.0}/s", f.value), format!(">= {:.0}/s", f.target)),
            };
            println!(
                "  {:<40} {value:>16}  target {target:<36} {}",
                f.what,
                if met { "met" } else { "MISSED" }
            );
        }
    }
}
