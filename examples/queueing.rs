//! One queueing station, simulated with the resource scheduler, beside what
//! queueing theory predicts for it.
//!
//! A resource of 2 slots (servers); jobs arrive at random (Poisson, 10 a
//! second) and each holds a slot 0.1 s on average, so the servers are busy
//! half the time (ρ = λ/(cμ) = 0.5) and one is busy on average (λ/μ = 1).
//! Jobs that find both busy wait, so the mean number in the system is more:
//!
//! - with exponential service times this is the M/M/2 queue, solved exactly
//!   by the Erlang C formula: the probability of waiting is
//!   `P = (a^c/c!)/(1-ρ) / (Σ_{k<c} a^k/k! + (a^c/c!)/(1-ρ))` with
//!   `a = λ/μ`, then `W = 1/μ + P/(cμ - λ)` and `L = λW` (here P = 1/3,
//!   W = 0.1333 s, L = 1.333);
//! - with a constant 0.1 s it is M/D/2, which has no closed form; the
//!   Allen–Cunneen approximation halves M/M/2's waiting time (the squared
//!   coefficient of variation of the service time is 0 instead of 1):
//!   W ≈ 0.1167 s, L ≈ 1.167.
//!
//! The example measures λ, W and L with [`Scheduler::metrics`] and prints
//! them beside the theory. Then it runs a mixed workload (90% of jobs take
//! 10 ms, 10% take 500 ms) under FIFO and under shortest-job-first, with
//! declared and with learned durations, and prints the mean and the 99th
//! percentile of the time in system for each.
//!
//! Everything runs in simulated time, on tokio's paused clock: tasks stand
//! for activities and sleep for their service time while holding a permit,
//! and the clock jumps ahead whenever every task sleeps. Hours of simulated
//! traffic take a few seconds of real time (in a release build; a debug
//! build is several times slower).
//!
//! ```sh
//! cargo run --release --example queueing
//! ```

use std::error::Error;
use std::time::Duration;

use tokio::time::{sleep, Instant};
use workflow::scheduler::{Fifo, IntoPolicy, Job, Scheduler, SchedulerError, ShortestJobFirst};
use workflow::ResourceMetrics;

/// Jobs in the single-station runs.
const STATION_JOBS: usize = 200_000;
/// Jobs in the mixed-workload runs.
const MIXED_JOBS: usize = 100_000;

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

/// One arrival: the gap since the previous one, the job, its service time.
struct Arrival {
    gap: Duration,
    job: Job,
    service: Duration,
}

/// Plays `workload` against a fresh one-resource scheduler under `policy`:
/// one task per job, which acquires a slot, sleeps for its service time and
/// drops the permit. The resource's metrics, and each job's time in system.
async fn simulate(
    limit: usize,
    policy: impl IntoPolicy,
    workload: &[Arrival],
) -> Result<(ResourceMetrics, Vec<Duration>), Box<dyn Error>> {
    let scheduler = Scheduler::builder().resource_with("station", limit, policy).build()?;
    let resource = scheduler.resource("station")?;
    let mut tasks = Vec::with_capacity(workload.len());
    for arrival in workload {
        sleep(arrival.gap).await;
        let (resource, job, service) = (resource.clone(), arrival.job, arrival.service);
        tasks.push(tokio::spawn(async move {
            let arrived = Instant::now();
            let permit = resource.acquire(job).await?;
            sleep(service).await;
            drop(permit);
            Ok::<_, SchedulerError>(arrived.elapsed())
        }));
    }
    let mut times = Vec::with_capacity(tasks.len());
    for task in tasks {
        times.push(task.await??);
    }
    Ok((resource.metrics(), times))
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
    println!("Simulated time on tokio's paused clock: hours of traffic in a few seconds.\n");

    // 1. The single station: 2 servers, λ = 10/s, mean service 0.1 s.
    let (lambda, mu, c) = (10.0, 10.0, 2);
    let (w_mm2, l_mm2) = mmc(lambda, mu, c);
    let (wq_mm2, service) = (w_mm2 - 1.0 / mu, 1.0 / mu);
    let (w_md2, l_md2) = (service + wq_mm2 / 2.0, lambda * (service + wq_mm2 / 2.0));
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
                job: Job::new("serve"),
                service: if exponential {
                    rng.exponential(Duration::from_secs_f64(service))
                } else {
                    Duration::from_secs_f64(service)
                },
            })
            .collect();
        let (m, _) = simulate(c as usize, Fifo::new(), &workload).await?;
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
        let exact = if exponential { "exact" } else { "approx." };
        println!(
            "{:<38} {:>9.3} {:>10.2} {:>10.2} {:>8.3} {:>10.3} {:>8.3}",
            format!("  theory ({exact})"),
            lambda,
            w * 1e3,
            (w - service) * 1e3,
            l,
            l,
            lambda / (mu * f64::from(c))
        );
        println!(
            "  {} jobs over {:.1} simulated hours; Little's law: |L - λ·W| / L = {:.1e}",
            m.completed,
            m.window.as_secs_f64() / 3600.0,
            (m.mean_in_system - m.little_product()).abs() / m.mean_in_system
        );
    }

    // 2. Mixed sizes: FIFO against shortest-job-first.
    let rate = 28.0;
    println!(
        "\n== Mixed sizes: 90% 10 ms, 10% 500 ms (mean 59 ms), 2 servers, λ = {rate}/s (ρ ≈ {:.2}), {MIXED_JOBS} jobs ==",
        rate * 0.059 / 2.0
    );
    let workload = |declare: bool| -> Vec<Arrival> {
        let mut rng = Rng(3);
        (0..MIXED_JOBS)
            .map(|_| {
                let gap = rng.exponential(Duration::from_secs_f64(1.0 / rate));
                let (activity, service) = if rng.uniform() < 0.1 {
                    ("long", Duration::from_millis(500))
                } else {
                    ("short", Duration::from_millis(10))
                };
                let job = if declare {
                    Job::new(activity).expected(service)
                } else {
                    Job::new(activity)
                };
                Arrival { gap, job, service }
            })
            .collect()
    };
    println!(
        "{:<36} {:>10} {:>10} {:>14} {:>14}",
        "policy", "W (ms)", "p99 (ms)", "W short (ms)", "W long (ms)"
    );
    let runs: [(&str, Box<dyn workflow::scheduler::SchedulingPolicy>, bool); 3] = [
        ("FIFO", Box::new(Fifo::new()), true),
        ("SJF, declared durations", Box::new(ShortestJobFirst::new()), true),
        ("SJF, learned durations", Box::new(ShortestJobFirst::new()), false),
    ];
    for (name, policy, declare) in runs {
        let workload = workload(declare);
        let (m, times) = simulate(2, policy, &workload).await?;
        let of = |activity: &str| -> Vec<Duration> {
            workload
                .iter()
                .zip(&times)
                .filter(|(a, _)| a.job.activity == activity)
                .map(|(_, t)| *t)
                .collect()
        };
        println!(
            "{:<36} {:>10.1} {:>10.0} {:>14.1} {:>14.1}",
            name,
            ms(m.mean_time_in_system),
            ms(percentile(&times, 0.99)),
            ms(mean(&of("short"))),
            ms(mean(&of("long")))
        );
    }
    println!(
        "\nSJF lets the short jobs pass the long ones: the mean falls, the long jobs wait a little longer \
         (their wait is capped by max_wait, 10 s by default).\nThe service times are constant per activity, so the learned estimates are exact after each \
         activity's first completion.\nReal time: {:.2?}.",
        real.elapsed()
    );
    Ok(())
}
