//! One queueing station, run through the workflow engine, beside what
//! queueing theory predicts for it.
//!
//! Each job is a workflow instance: `Task` below has one state whose
//! activity (`serve`) queues on the resource `station`. The engine is built
//! with a [`Scheduler`] that gives `station` 2 slots (servers); instances
//! are started at random (Poisson, 10 a second) and each activity holds a
//! slot 0.1 s on average, so the servers are busy half the time
//! (ρ = λ/(cμ) = 0.5) and one is busy on average (λ/μ = 1). Jobs that find
//! both busy wait, so the mean number in the system is more:
//!
//! - with exponential service times this is the M/M/2 queue, solved exactly
//!   by the Erlang C formula: the probability of waiting is
//!   `P = (a^c/c!)/(1-ρ) / (Σ_{k<c} a^k/k! + (a^c/c!)/(1-ρ))` with
//!   `a = λ/μ`, then `W = 1/μ + P/(cμ - λ)` and `L = λW` (here P = 1/3,
//!   W = 0.1333 s, L = 1.333);
//! - with a constant 0.1 s it is M/D/2, solved exactly by Crommelin's
//!   formula (1932): with `a = λD` for the service time `D`, the mean wait is
//!   `Wq = D · Σ_{n≥1} [P(N_n ≥ nc) − (c/a)·P(N_n ≥ nc+1)]` where `N_n` is
//!   Poisson with mean `n·a` (here Wq = 17.67 ms, W = 0.1177 s, L = 1.177;
//!   the Allen–Cunneen approximation, half of M/M/2's wait, would say
//!   16.67 ms, 5.7% low).
//!
//! The example measures λ, W and L with [`Engine::metrics`] (the statistics
//! of the engine's scheduler's resources) and prints them beside the theory,
//! with the mean time from `start` to `wait` returning, measured per
//! instance. Then it runs a mixed workload (90% of jobs take 10 ms, 10% take
//! 500 ms) under FIFO and under shortest-job-first, with declared
//! (`expected 10ms;`) and with learned durations, and prints the mean and
//! the 99th percentile of each instance's time in the system (start to
//! `wait`) for each. A mixed job is a `Sized` (or `Unsized`) instance whose
//! initial state is a decision node: `always if is_long => Long; always =>
//! Short;`, each branch invoking its own activity, `short` or `long`, on the
//! same resource.
//!
//! Everything runs in simulated time, on tokio's paused clock: the
//! activities sleep for their service time, and the clock jumps ahead
//! whenever every task sleeps, so the engine's own work takes no simulated
//! time. Hours of simulated traffic take a few seconds of real time in a
//! release build (a debug build is several times slower).
//!
//! ```sh
//! cargo run --release --example queueing
//! ```

use std::error::Error;
use std::time::Duration;

use tokio::time::{sleep, Instant};
use workflow::prelude::*;
use workflow::scheduler::{Fifo, IntoPolicy, Scheduler, SchedulingPolicy, ShortestJobFirst};
use workflow::{Engine, EngineError, ResourceMetrics};

/// Instances in each single-station run.
const STATION_JOBS: usize = 40_000;
/// Instances in each mixed-workload run.
const MIXED_JOBS: usize = 25_000;

workflow! {
    /// One job at the station; the context is its service time in ms.
    workflow Task {
        context u64;
        initial Serving;
        state Serving {
            invoke serve -> () { resource station; done => Done; error => Failed; }
        }
        final Done;
        final Failed (failure);
    }
}

workflow! {
    /// A job of the mixed workload, short or long by its service time (the
    /// context, in ms), with each kind's expected duration declared.
    workflow Sized {
        context u64;
        initial Sorting;
        state Sorting {
            always if is_long => Long;
            always => Short;
        }
        state Short {
            invoke short -> () { resource station; expected 10ms; done => Done; error => Failed; }
        }
        state Long {
            invoke long -> () { resource station; expected 500ms; done => Done; error => Failed; }
        }
        final Done;
        final Failed (failure);
    }
}

workflow! {
    /// The same without declared durations: shortest-job-first learns them
    /// per activity (`short`, `long`) from the service times it observes.
    workflow Unsized {
        context u64;
        initial Sorting;
        state Sorting {
            always if is_long => Long;
            always => Short;
        }
        state Short {
            invoke short -> () { resource station; done => Done; error => Failed; }
        }
        state Long {
            invoke long -> () { resource station; done => Done; error => Failed; }
        }
        final Done;
        final Failed (failure);
    }
}

/// The service: every activity holds its slot for the job's service time.
struct Station;

async fn work(ms: u64) -> Result<(), ActivityError> {
    sleep(Duration::from_millis(ms)).await;
    Ok(())
}

impl TaskHandlers for Station {
    async fn serve(&self, ms: &u64, _call: &ActivityCall) -> Result<(), ActivityError> {
        work(*ms).await
    }
}

impl SizedHandlers for Station {
    fn is_long(&self, ms: &u64) -> bool {
        *ms >= 100
    }
    async fn short(&self, ms: &u64, _call: &ActivityCall) -> Result<(), ActivityError> {
        work(*ms).await
    }
    async fn long(&self, ms: &u64, _call: &ActivityCall) -> Result<(), ActivityError> {
        work(*ms).await
    }
}

impl UnsizedHandlers for Station {
    fn is_long(&self, ms: &u64) -> bool {
        *ms >= 100
    }
    async fn short(&self, ms: &u64, _call: &ActivityCall) -> Result<(), ActivityError> {
        work(*ms).await
    }
    async fn long(&self, ms: &u64, _call: &ActivityCall) -> Result<(), ActivityError> {
        work(*ms).await
    }
}

/// splitmix64: a small seeded generator, so every run is the same.
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

    /// Exponential with mean `mean`, in whole milliseconds: tokio's timers
    /// have millisecond resolution, so this keeps the simulation exact.
    fn exponential(&mut self, mean: Duration) -> Duration {
        let millis = -(1.0 - self.uniform()).ln() * mean.as_secs_f64() * 1e3;
        Duration::from_millis(millis.round() as u64)
    }
}

/// One arrival: the gap since the previous one, and the job's service time
/// in ms (the instance's context).
struct Arrival {
    gap: Duration,
    service: u64,
}

/// Plays `workload` against a fresh engine of workflow `W` whose scheduler
/// has one resource, `station`, of `limit` slots under `policy`: one
/// instance started per arrival, and a task per instance that waits for it
/// to finish. The station's metrics (from [`Engine::metrics`]), and each
/// instance's time from `start` to `wait` returning.
async fn simulate<W>(
    limit: usize,
    policy: impl IntoPolicy,
    workload: &[Arrival],
) -> Result<(ResourceMetrics, Vec<Duration>), Box<dyn Error>>
where
    W: Workflow<Station, Context = u64> + Send + 'static,
    W::Event: Send + 'static,
{
    let scheduler = Scheduler::builder().resource_with("station", limit, policy).build()?;
    let engine = Engine::<W, Station>::builder(Station).scheduler(scheduler)?.build();
    let mut waiters = Vec::with_capacity(workload.len());
    for (n, arrival) in workload.iter().enumerate() {
        sleep(arrival.gap).await;
        let id = format!("job-{n}");
        let arrived = Instant::now();
        engine.start(id.as_str(), arrival.service).await?;
        let engine = engine.clone();
        waiters.push(tokio::spawn(async move {
            engine.wait(&id).await?;
            Ok::<_, EngineError>(arrived.elapsed())
        }));
    }
    let mut times = Vec::with_capacity(waiters.len());
    for waiter in waiters {
        times.push(waiter.await??);
    }
    let metrics = engine.metrics();
    engine.shutdown().await;
    let station = metrics.resources.into_iter().find(|r| r.name == "station");
    Ok((station.ok_or("no station in the engine's metrics")?, times))
}

/// Erlang C: W and L of the M/M/c queue.
fn mmc(lambda: f64, mu: f64, c: u32) -> (f64, f64) {
    let a = lambda / mu;
    let rho = a / f64::from(c);
    let mut term = 1.0; // a^k / k!
    let mut below = 0.0;
    for k in 0..c {
        below += term;
        term *= a / f64::from(k + 1);
    }
    let top = term / (1.0 - rho);
    let p_wait = top / (below + top);
    let w = 1.0 / mu + p_wait / (f64::from(c) * mu - lambda);
    (w, lambda * w)
}

/// Crommelin's formula: W and L of the M/D/c queue (Poisson arrivals at `lambda`, constant
/// service time `service` seconds, `c` servers, `lambda * service < c`).
fn mdc(lambda: f64, service: f64, c: u32) -> (f64, f64) {
    let a = lambda * service;
    let c_f = f64::from(c);
    let mut ln_factorial = vec![0.0_f64]; // ln k! for k = 0, 1, ...
    let mut wait = 0.0; // in units of the service time
    for n in 1..1_000_000u32 {
        let mean = f64::from(n) * a;
        let m = n * c;
        while ln_factorial.len() <= m as usize {
            let k = ln_factorial.len();
            ln_factorial.push(ln_factorial[k - 1] + (k as f64).ln());
        }
        let at_least_m = poisson_at_least(mean, m, ln_factorial[m as usize]);
        let p_m = (-mean + f64::from(m) * mean.ln() - ln_factorial[m as usize]).exp();
        let term = at_least_m - c_f / a * (at_least_m - p_m);
        wait += term;
        if term.abs() < 1e-15 {
            break;
        }
    }
    let w = service * (1.0 + wait);
    (w, lambda * w)
}

/// P(N ≥ m) for N Poisson with the given mean (`m` above the mean), summed upwards from
/// P(N = m), which is computed in logs so that large means do not overflow.
fn poisson_at_least(mean: f64, m: u32, ln_m_factorial: f64) -> f64 {
    let mut p = (-mean + f64::from(m) * mean.ln() - ln_m_factorial).exp();
    let mut sum = 0.0_f64;
    let mut j = m;
    while p > 1e-18 * sum {
        sum += p;
        j += 1;
        p *= mean / f64::from(j);
    }
    sum
}

fn percentile(times: &[Duration], p: f64) -> Duration {
    let mut sorted = times.to_vec();
    sorted.sort();
    let at = ((sorted.len() as f64 * p) as usize).min(sorted.len().saturating_sub(1));
    sorted.get(at).copied().unwrap_or_default()
}

fn mean(times: &[Duration]) -> Duration {
    times.iter().sum::<Duration>() / u32::try_from(times.len().max(1)).unwrap_or(u32::MAX)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

#[tokio::main(flavor = "current_thread", start_paused = true)]
async fn main() -> Result<(), Box<dyn Error>> {
    let real = std::time::Instant::now();
    println!(
        "Workflow instances on an engine with a scheduler, in simulated time on tokio's paused clock: \
         hours of traffic in a few seconds.\n"
    );

    // 1. The single station: 2 servers, λ = 10/s, mean service 0.1 s.
    let (lambda, mu, c) = (10.0, 10.0, 2);
    let (w_mm2, l_mm2) = mmc(lambda, mu, c);
    let service = 1.0 / mu;
    let (w_md2, l_md2) = mdc(lambda, service, c);
    println!("== One station: c = 2 servers, λ = 10 jobs/s, mean service 0.1 s (ρ = 0.5, λ/μ = 1) ==");
    println!(
        "{:<38} {:>9} {:>10} {:>10} {:>8} {:>10} {:>8}",
        "", "λ (/s)", "W (ms)", "Wq (ms)", "L", "λ·W", "ρ"
    );
    for (model, exponential, w, l) in [
        ("M/M/2 (exponential service)", true, w_mm2, l_mm2),
        ("M/D/2 (constant service)", false, w_md2, l_md2),
    ] {
        let mut rng = Rng(if exponential { 1 } else { 2 });
        let workload: Vec<Arrival> = (0..STATION_JOBS)
            .map(|_| Arrival {
                gap: rng.exponential(Duration::from_secs_f64(1.0 / lambda)),
                service: if exponential {
                    rng.exponential(Duration::from_secs_f64(service)).as_millis() as u64
                } else {
                    (service * 1e3) as u64
                },
            })
            .collect();
        let (m, times) = simulate::<Task>(c as usize, Fifo::new(), &workload).await?;
        println!(
            "{:<38} {:>9.3} {:>10.2} {:>10.2} {:>8.3} {:>10.3} {:>8.3}",
            format!("{model}, measured"),
            m.arrival_rate,
            ms(m.mean_time_in_system),
            ms(m.mean_queue_time),
            m.mean_in_system,
            m.little_product(),
            m.utilisation
        );
        let formula = if exponential { "Erlang C" } else { "Crommelin" };
        println!(
            "{:<38} {:>9.3} {:>10.2} {:>10.2} {:>8.3} {:>10.3} {:>8.3}",
            format!("  theory (exact, {formula})"),
            lambda,
            w * 1e3,
            (w - service) * 1e3,
            l,
            l,
            lambda / (mu * f64::from(c))
        );
        println!(
            "  {} instances over {:.1} simulated hours; Little's law: |L - λ·W| / L = {:.1e}; \
             start to wait, per instance: mean {:.2} ms",
            m.completed,
            m.window.as_secs_f64() / 3600.0,
            (m.mean_in_system - m.little_product()).abs() / m.mean_in_system,
            ms(mean(&times))
        );
    }

    // 2. Mixed sizes: FIFO against shortest-job-first.
    let rate = 28.0;
    println!(
        "\n== Mixed sizes: 90% 10 ms, 10% 500 ms (mean 59 ms), 2 servers, λ = {rate}/s (ρ ≈ {:.2}), {MIXED_JOBS} instances ==",
        rate * 0.059 / 2.0
    );
    let mut rng = Rng(3);
    let workload: Vec<Arrival> = (0..MIXED_JOBS)
        .map(|_| Arrival {
            gap: rng.exponential(Duration::from_secs_f64(1.0 / rate)),
            service: if rng.uniform() < 0.1 { 500 } else { 10 },
        })
        .collect();
    println!(
        "{:<36} {:>10} {:>10} {:>14} {:>14}",
        "policy", "W (ms)", "p99 (ms)", "W short (ms)", "W long (ms)"
    );
    let runs: [(&str, Box<dyn SchedulingPolicy>, bool); 3] = [
        ("FIFO", Fifo::new().into_policy(), true),
        ("SJF, declared durations", ShortestJobFirst::new().into_policy(), true),
        ("SJF, learned durations", ShortestJobFirst::new().into_policy(), false),
    ];
    for (name, policy, declared) in runs {
        let (m, times) = if declared {
            simulate::<Sized>(2, policy, &workload).await?
        } else {
            simulate::<Unsized>(2, policy, &workload).await?
        };
        let of = |service: u64| -> Vec<Duration> {
            workload
                .iter()
                .zip(&times)
                .filter(|(a, _)| a.service == service)
                .map(|(_, t)| *t)
                .collect()
        };
        println!(
            "{:<36} {:>10.1} {:>10.0} {:>14.1} {:>14.1}",
            name,
            ms(mean(&times)),
            ms(percentile(&times, 0.99)),
            ms(mean(&of(10))),
            ms(mean(&of(500)))
        );
        // The engine's own steps take no simulated time: its per-instance
        // times agree with the station's W.
        if (ms(m.mean_time_in_system) - ms(mean(&times))).abs() > 0.01 {
            println!("  (the station's W is {:.2} ms)", ms(m.mean_time_in_system));
        }
    }
    println!(
        "\nW and p99 are per instance, from `start` to `wait` returning. SJF lets the short jobs pass the long ones: \
         the mean falls, the long jobs wait a little longer (their wait is capped by max_wait, 10 s by default).\n\
         The service times are constant per activity, so the learned estimates are exact after each activity's \
         first completion.\nReal time: {:.2?}.",
        real.elapsed()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{mdc, mmc};

    #[test]
    fn crommelin_with_one_server_is_pollaczek_khinchine() {
        // M/D/1: Wq = ρD / (2(1 − ρ)).
        for rho in [0.1, 0.5, 0.8, 0.95] {
            let (w, l) = mdc(rho, 1.0, 1);
            let wq = rho / (2.0 * (1.0 - rho));
            assert!(
                (w - 1.0 - wq).abs() < 1e-9 * wq.max(1.0),
                "ρ = {rho}: {w} vs {}",
                1.0 + wq
            );
            assert!((l - rho * w).abs() < 1e-12);
        }
    }

    #[test]
    fn constant_service_waits_less_than_exponential_but_more_than_half() {
        // M/D/c waits less than M/M/c, and the Allen–Cunneen half of it is a known underestimate.
        for (lambda, c) in [(10.0, 2), (15.0, 2), (25.0, 3), (7.0, 1)] {
            let (w_mm, _) = mmc(lambda, 10.0, c);
            let (w_md, _) = mdc(lambda, 0.1, c);
            let (wq_mm, wq_md) = (w_mm - 0.1, w_md - 0.1);
            assert!(
                wq_md < wq_mm && wq_md >= wq_mm / 2.0 - 1e-12,
                "λ = {lambda}, c = {c}: {wq_md} vs {wq_mm}"
            );
        }
        // The station of this example: 17.67 ms.
        let (w, _) = mdc(10.0, 0.1, 2);
        assert!((w - 0.1 - 0.017_674).abs() < 1e-6, "{w}");
    }
}
