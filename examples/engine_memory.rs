//! What an idle engine instance costs in memory, allocation by allocation.
//!
//! Starts 1,000,000 ping-pong instances (each waiting for an event) under a
//! counting global allocator, and prints the heap they hold: bytes and
//! allocations per instance, grouped by allocation size and labelled with
//! the tokio or std structure that allocates that size (each measured alone
//! first), and the resident set (VmRSS) for comparison with the target of
//! 1 GiB for the million.
//!
//! Run: `cargo run --release --example engine_memory [-- INSTANCES]`

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::oneshot;
use workflow::Engine;

// ---------------------------------------------------------------------------
// A global allocator that counts the live heap by allocation size.
// ---------------------------------------------------------------------------

/// Sizes below this are counted one by one; larger ones together.
const EXACT: usize = 1 << 14;

struct Counting;

static LIVE_BYTES: AtomicU64 = AtomicU64::new(0);
static LIVE_COUNT: AtomicU64 = AtomicU64::new(0);
/// Allocations made (not net of frees), and their bytes.
static MADE: AtomicU64 = AtomicU64::new(0);
static MADE_BYTES: AtomicU64 = AtomicU64::new(0);
static MADE_BY_SIZE: [AtomicU64; EXACT + 1] = [const { AtomicU64::new(0) }; EXACT + 1];
static BY_SIZE: [AtomicU64; EXACT + 1] = [const { AtomicU64::new(0) }; EXACT + 1];

fn counted(size: usize, sign: i64) {
    let add = |a: &AtomicU64, n: u64| {
        if sign > 0 {
            a.fetch_add(n, Ordering::Relaxed);
        } else {
            a.fetch_sub(n, Ordering::Relaxed);
        }
    };
    if sign > 0 {
        MADE.fetch_add(1, Ordering::Relaxed);
        MADE_BYTES.fetch_add(size as u64, Ordering::Relaxed);
        MADE_BY_SIZE[size.min(EXACT)].fetch_add(1, Ordering::Relaxed);
    }
    add(&LIVE_BYTES, size as u64);
    add(&LIVE_COUNT, 1);
    add(&BY_SIZE[size.min(EXACT)], 1);
}

// SAFETY: every call is forwarded to `System` unchanged; only counters change.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        counted(layout.size(), 1);
        // SAFETY: the caller's contract, passed on.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        counted(layout.size(), 1);
        // SAFETY: the caller's contract, passed on.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        counted(layout.size(), -1);
        // SAFETY: the caller's contract, passed on.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        counted(layout.size(), -1);
        counted(new_size, 1);
        // SAFETY: the caller's contract, passed on.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// The live heap: bytes, allocations, and allocations by size.
#[derive(Clone)]
struct Heap {
    bytes: u64,
    count: u64,
    by_size: Vec<u64>,
}

fn heap() -> Heap {
    Heap {
        bytes: LIVE_BYTES.load(Ordering::Relaxed),
        count: LIVE_COUNT.load(Ordering::Relaxed),
        by_size: BY_SIZE.iter().map(|a| a.load(Ordering::Relaxed)).collect(),
    }
}

/// Bytes of the allocations below `EXACT` that `after` holds beyond `before`.
fn rows_bytes(before: &Heap, after: &Heap) -> f64 {
    grown(before, after)
        .into_iter()
        .filter(|&(s, _)| s < EXACT)
        .map(|(s, d)| s as f64 * d as f64)
        .sum()
}

/// Allocations by size that `after` holds beyond `before`.
fn grown(before: &Heap, after: &Heap) -> BTreeMap<usize, i64> {
    (0..=EXACT)
        .filter_map(|s| {
            let d = after.by_size[s] as i64 - before.by_size[s] as i64;
            (d != 0).then_some((s, d))
        })
        .collect()
}

fn vm_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |kib| kib * 1024)
}

// ---------------------------------------------------------------------------
// The workflow.
// ---------------------------------------------------------------------------

#[path = "../benches/support/flows.rs"]
mod flows;

use flows::*;

/// Allocations and bytes allocated (not net of frees) while `run` runs, per
/// `per`, and the sizes made most often (size, count per `per`).
fn allocations_during(per: u64, run: impl FnOnce()) -> (f64, f64, String) {
    let made = || {
        MADE_BY_SIZE
            .iter()
            .map(|a| a.load(Ordering::Relaxed))
            .collect::<Vec<_>>()
    };
    let (count, bytes, sizes) = (MADE.load(Ordering::Relaxed), MADE_BYTES.load(Ordering::Relaxed), made());
    run();
    let count = MADE.load(Ordering::Relaxed) - count;
    let bytes = MADE_BYTES.load(Ordering::Relaxed) - bytes;
    let mut by_size: Vec<(usize, f64)> = made()
        .iter()
        .zip(sizes)
        .enumerate()
        .map(|(s, (after, before))| (s, (after - before) as f64 / per as f64))
        .filter(|&(_, n)| n >= 0.05)
        .collect();
    by_size.sort_by(|a, b| (b.1 * b.0 as f64).total_cmp(&(a.1 * a.0 as f64)));
    let sizes = by_size
        .iter()
        .map(|(s, n)| format!("{s} B x{n:.2}"))
        .collect::<Vec<_>>()
        .join(", ");
    (count as f64 / per as f64, bytes as f64 / per as f64, sizes)
}

/// Allocations per event and per workflow, on the multi-thread runtime.
fn churn(rt: &tokio::runtime::Runtime) {
    println!("\nallocations made per operation (not net of frees; the harness allocates nothing per event):");
    let events = 200_000u64;
    let engine = Engine::<PingPong, Nop>::new(Nop);
    rt.block_on(engine.start("solo", ())).expect("a fresh id");
    let (count, bytes, sizes) = allocations_during(events, || {
        rt.block_on(async {
            for i in 0..events {
                let event = if i % 2 == 0 {
                    PingPongEvent::Ping
                } else {
                    PingPongEvent::Pong
                };
                engine.send("solo", event).await.expect("accepted");
            }
        })
    });
    println!("  Engine::send, one instance: {count:.2} allocations, {bytes:.0} B per event ({sizes})");
    // Bursts that fit the mailbox (so that no `try_send` fails), each
    // closed by an awaited `send`.
    let (count, bytes, sizes) = allocations_during(events, || {
        rt.block_on(async {
            for i in 0..events {
                let event = if i % 2 == 0 {
                    PingPongEvent::Ping
                } else {
                    PingPongEvent::Pong
                };
                if i % 64 == 63 {
                    engine.send("solo", event).await.expect("accepted");
                } else {
                    engine.try_send("solo", event).expect("room");
                }
            }
        })
    });
    println!("  Engine::try_send x63 + send, one instance: {count:.2} allocations, {bytes:.0} B per event ({sizes})");
    let (count, bytes, sizes) = allocations_during(events, || {
        for _ in 0..events {
            let _ = engine.try_send("nobody", PingPongEvent::Ping);
        }
    });
    println!("  Engine::try_send to an unknown id: {count:.2} allocations, {bytes:.0} B per call ({sizes})");
    rt.block_on(engine.shutdown());

    let workflows = 100_000u64;
    let ids: Vec<String> = (0..workflows).map(|i| format!("w{i}")).collect();
    let engine = Engine::<Steps, Nop>::new(Nop);
    let live = heap();
    let (count, bytes, sizes) = allocations_during(workflows, || {
        rt.block_on(async {
            for id in &ids {
                engine.start(id.as_str(), ()).await.expect("a fresh id");
            }
            let all = async {
                for id in &ids {
                    engine.wait(id).await.expect("finished");
                }
            };
            if tokio::time::timeout(std::time::Duration::from_secs(30), all)
                .await
                .is_err()
            {
                println!(
                    "  (the workflows did not finish in 30 s: does the engine start the initial state's activity?)"
                );
            }
        })
    });
    println!("  Steps workflow (start, 3 activities, wait): {count:.2} allocations, {bytes:.0} B per workflow");
    println!("    sizes: {sizes}");
    let kept = heap();
    println!(
        "  kept per finished workflow until shutdown: {:.0} B in {:.1} allocations; {} tasks still alive",
        (kept.bytes - live.bytes) as f64 / workflows as f64,
        (kept.count - live.count) as f64 / workflows as f64,
        rt.metrics().num_alive_tasks()
    );
    rt.block_on(engine.shutdown());
    let after = heap();
    println!(
        "  kept per workflow after shutdown (until the engine is dropped): {:.0} B",
        (after.bytes as f64 - live.bytes as f64) / workflows as f64
    );
    drop(engine);

    // An engine dropped without `shutdown`.
    let before = heap();
    let engine = Engine::<PingPong, Nop>::new(Nop);
    rt.block_on(async {
        for id in &ids {
            engine.start(id.as_str(), ()).await.expect("a fresh id");
        }
    });
    drop(engine);
    rt.block_on(async { tokio::time::sleep(std::time::Duration::from_millis(200)).await });
    println!(
        "  {workflows} ping-pong instances, engine dropped without shutdown: {} tasks still alive, {:.0} MiB still held",
        rt.metrics().num_alive_tasks(),
        (heap().bytes as f64 - before.bytes as f64) / 1048576.0
    );
}

// ---------------------------------------------------------------------------
// The pieces an instance is made of, each measured alone.
// ---------------------------------------------------------------------------

/// Sizes of the allocations `make` leaves live, per call (made `n` times).
fn sizes_of<T>(n: usize, mut make: impl FnMut(usize) -> T) -> (Vec<(usize, f64)>, Vec<T>) {
    let before = heap();
    let kept: Vec<T> = (0..n).map(&mut make).collect();
    let mut after = heap();
    // Not the Vec that holds them.
    let holder = kept.capacity() * size_of::<T>();
    if holder > 0 && holder <= EXACT {
        after.by_size[holder] -= 1;
    }
    let sizes = grown(&before, &after)
        .into_iter()
        .filter(|&(s, d)| s != 0 && d as f64 / n as f64 >= 0.01)
        .map(|(s, d)| (s, d as f64 / n as f64))
        .collect();
    (sizes, kept)
}

/// A future that never finishes, `N` bytes big.
struct Parked<const N: usize>([u8; N]);
impl<const N: usize> Future for Parked<N> {
    type Output = ();
    fn poll(self: std::pin::Pin<&mut Self>, _: &mut std::task::Context<'_>) -> std::task::Poll<()> {
        std::task::Poll::Pending
    }
}

fn main() {
    let instances: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");

    // Each piece alone, so that the instance's allocations can be named.
    let mut labels: BTreeMap<usize, Vec<String>> = BTreeMap::new();
    let mut label = |what: &str, sizes: &[(usize, f64)]| {
        let list = sizes
            .iter()
            .map(|(s, per)| format!("{s} B x{per:.2}"))
            .collect::<Vec<_>>()
            .join(" + ");
        println!("  {what:<58} {list}");
        for (s, _) in sizes {
            labels.entry(*s).or_default().push(what.to_string());
        }
    };
    println!("pieces, each made 10,000 times alone (allocation sizes, count per piece):");
    let n = 10_000;
    let (s, k) = sizes_of(n, |_| oneshot::channel::<Result<(), workflow::EngineError>>());
    label("oneshot::channel (reply of `send`)", &s);
    drop(k);
    for digits in [4, 5, 6] {
        let (s, k) = sizes_of(n, |_| Arc::<str>::from(&"m123456"[..=digits]));
        label(
            &format!("id Arc<str> of {} bytes (map key, Instance::id)", digits + 1),
            &s,
        );
        drop(k);
    }
    let (s, k) = sizes_of(n, |_| history_with_one_record());
    label("VecDeque<Record> with room for one (history)", &s);
    drop(k);
    let (s, k) = sizes_of(n, |_| PingPongState::A.to_string());
    label("state.to_string() (in Record::Started)", &s);
    drop(k);
    rt.block_on(async {
        for size in [256, 512, 1024] {
            let (s, k) = match size {
                256 => sizes_of(n, |_| tokio::spawn(Parked([0u8; 256]))),
                512 => sizes_of(n, |_| tokio::spawn(Parked([0u8; 512]))),
                _ => sizes_of(n, |_| tokio::spawn(Parked([0u8; 1024]))),
            };
            label(&format!("tokio::spawn, {size}-byte future (task cell)"), &s);
            k.iter().for_each(|t| t.abort());
        }
    });

    // The engine.
    println!("\n{instances} idle ping-pong instances, 2 workers:");
    let ids: Vec<String> = (0..instances).map(|i| format!("m{i}")).collect();
    let engine = Engine::<PingPong, Nop>::new(Nop);
    let (rss_before, before) = (vm_rss(), heap());
    let began = Instant::now();
    rt.block_on(async {
        for id in &ids {
            engine.start(id.as_str(), ()).await.expect("a fresh id");
        }
        // Let every instance task run once and park on its mailbox.
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    });
    let took = began.elapsed();
    let (rss_after, after) = (vm_rss(), heap());
    let per = |x: u64| x as f64 / instances as f64;
    let bytes = after.bytes - before.bytes;
    let rss = rss_after.saturating_sub(rss_before);
    println!(
        "  started in {:.2} s ({:.0}/s)",
        took.as_secs_f64(),
        instances as f64 / took.as_secs_f64()
    );
    println!(
        "  heap: +{:.1} MiB in {} allocations: {:.0} B and {:.2} allocations per instance (requested sizes)",
        bytes as f64 / 1048576.0,
        after.count - before.count,
        per(bytes),
        per(after.count - before.count)
    );
    println!(
        "  VmRSS: +{:.1} MiB = {:.0} B per instance (malloc headers and rounding, free lists, task stacks' pages); target < 1 GiB in all",
        rss as f64 / 1048576.0,
        per(rss)
    );
    println!("\n  by allocation size (per instance; what allocates it, from the pieces above):");
    println!("  {:>7} {:>7} {:>9}  labelled as", "size", "count", "bytes");
    let mut rows: Vec<(usize, i64)> = grown(&before, &after)
        .into_iter()
        .filter(|&(s, d)| s < EXACT && per(d.unsigned_abs()) >= 0.01)
        .collect();
    rows.sort_by_key(|&(s, d)| std::cmp::Reverse(s as i64 * d));
    for (size, d) in rows {
        let count = d as f64 / instances as f64;
        let total = count * size as f64;
        let what = match labels.get(&size).map(Vec::as_slice) {
            None | Some([]) => "not made alone here (the engine's own: the instance's mailbox)".to_string(),
            Some([one]) => one.clone(),
            Some([first, more @ ..]) => format!("{first} (and {} more pieces of this size)", more.len()),
        };
        println!("  {size:>7} {count:>7.2} {total:>9.0}  {what}");
    }
    let exact: f64 = rows_bytes(&before, &after) / instances as f64;
    println!(
        "  {:>7} {:>7} {:>9.0}  larger allocations (hash map tables of the shards)",
        ">16K",
        "",
        per(bytes) - exact
    );
    println!("  {:>7} {:>7} {:>9.0}", "total", "", per(bytes));

    // The shard maps: `HashMap<String, Entry>` in 16 shards.
    let per_shard = instances.div_ceil(16);
    let buckets = (per_shard * 8).div_ceil(7).next_power_of_two();
    println!(
        "\n  shard maps: 16 x {buckets} buckets for {per_shard} entries each (load {:.0}%)",
        per_shard as f64 / buckets as f64 * 100.0
    );
    rt.block_on(engine.shutdown());
    drop(ids);

    churn(&rt);
}

/// A history as an instance's first `record` leaves it: grown by `push`,
/// so with the capacity `push` gives (not `vec!`'s exact one).
#[allow(clippy::vec_init_then_push)]
fn history_with_one_record() -> VecDeque<workflow::Record> {
    let mut history = VecDeque::with_capacity(1);
    history.push_back(workflow::Record {
        at: Default::default(),
        kind: workflow::RecordKind::Cancelled,
    });
    history
}
