//! Queueing statistics of the [`Scheduler`](crate::scheduler::Scheduler)'s
//! resources: arrival rate, time in queue, in service and in system, the
//! time-averaged number of jobs in the system and the utilisation of the
//! slots, in the terms of queueing theory (λ, W, L, ρ).
//!
//! Each resource keeps its own counters, updated under the lock the
//! scheduler takes anyway on every arrival, start and departure, so keeping
//! them costs a few additions and no extra synchronisation.
//!
//! ```
//! use std::time::Duration;
//! use workflow_runtime::scheduler::{Job, Scheduler};
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let scheduler = Scheduler::builder().resource("stock", 1).build()?;
//! let stock = scheduler.resource("stock")?;
//! let first = stock.acquire(Job::new("reserve")).await?; // served at once
//! let second = tokio::spawn({
//!     let stock = stock.clone();
//!     async move { stock.acquire(Job::new("reserve")).await.map(drop) } // waits 30 ms
//! });
//! tokio::time::sleep(Duration::from_millis(30)).await;
//! drop(first);
//! second.await??;
//!
//! let m = stock.metrics();
//! assert_eq!((m.arrivals, m.completed), (2, 2));
//! assert_eq!(m.mean_queue_time, Duration::from_millis(15)); // (0 + 30) / 2
//! assert_eq!(m.mean_time_in_system, Duration::from_millis(30)); // (30 + 30) / 2
//! // Two jobs in the system for 30 ms, over a 30 ms window: L = 2 = λW = (2 / 0.03 s) × 0.03 s.
//! assert!((m.mean_in_system - 2.0).abs() < 1e-9 && (m.little_product() - 2.0).abs() < 1e-9);
//! println!("{}", scheduler.metrics()); // a table, one row per resource
//! # Ok(()) }
//! ```
//!
//! # The observation window
//!
//! Every figure covers one window: from the scheduler's creation, or from
//! the last [`Scheduler::reset_metrics`](crate::scheduler::Scheduler::reset_metrics),
//! to the moment of the snapshot. Jobs already in the system when a window
//! opens count as arrivals at its start, and only their time inside the
//! window counts, so that every job in a window is counted once on both
//! sides of Little's law.
//!
//! The time integrals (jobs in the system, busy slots) are exact: they are
//! advanced at every arrival, start and departure, not sampled. So once the
//! system has drained (no job waiting or in service), `L = λ·W` holds
//! exactly up to rounding: `mean_in_system` and `arrival_rate ×
//! mean_time_in_system` are then the same sum of time spent in the system,
//! divided differently. While jobs are still in the system, they have added
//! to `L` and `λ` but not yet to `W`, a difference that vanishes as the
//! window grows.
//!
//! # Cancelled jobs
//!
//! A job whose `acquire` future is dropped before it turned into a
//! [`Permit`](crate::scheduler::Permit) (the engine aborted the activity
//! while it waited, or just after it was granted a slot) is *cancelled*: it
//! leaves without service, and it is taken out of the statistics as if it
//! had never arrived. Its arrival is withdrawn from `arrivals` and its time
//! in the system from the integral behind `mean_in_system`, so Little's law
//! keeps holding for the jobs that were served; it is counted in
//! `cancelled` instead. (A slot granted to a job that is then dropped stays
//! counted as busy in `utilisation` for the instant it was reserved.)
//!
//! A permit dropped while its activity runs (the activity finished, failed
//! or was aborted) is a normal departure: its service time is the time it
//! held the slot.

use std::fmt;
use std::time::Duration;

use tokio::time::Instant;

/// A snapshot of one resource's statistics over its observation window
/// (see the [module documentation](self) for the window and for how
/// cancelled jobs count).
///
/// The means are over the jobs that completed (released their permit) in
/// the window, so `mean_time_in_system == mean_queue_time +
/// mean_service_time` (up to a nanosecond of rounding).
#[derive(Clone, Debug, PartialEq)]
pub struct ResourceMetrics {
    /// The resource's name.
    pub name: String,
    /// The name of its scheduling policy (`"fifo"`, `"sjf"`, …).
    pub policy: &'static str,
    /// How many jobs it serves at a time.
    pub limit: usize,
    /// The length of the observation window.
    pub window: Duration,
    /// Jobs that arrived in the window (asked for a slot), cancelled ones
    /// excepted, plus those already in the system when the window opened.
    pub arrivals: u64,
    /// Jobs that released their slot in the window.
    pub completed: u64,
    /// Jobs cancelled before they got a permit, taken out of `arrivals`.
    pub cancelled: u64,
    /// λ: `arrivals` per second of the window.
    pub arrival_rate: f64,
    /// `completed` per second of the window.
    pub throughput: f64,
    /// Wq: mean time a completed job waited for its slot.
    pub mean_queue_time: Duration,
    /// S: mean time a completed job held its slot.
    pub mean_service_time: Duration,
    /// W: mean time a completed job spent in the system (waiting plus
    /// service).
    pub mean_time_in_system: Duration,
    /// L: the time-averaged number of jobs in the system (waiting or in
    /// service), integrated over the window.
    pub mean_in_system: f64,
    /// Lq: the time-averaged number of jobs waiting.
    pub mean_queue_len: f64,
    /// ρ: the time-averaged number of busy slots divided by `limit`, in
    /// `0.0..=1.0`.
    pub utilisation: f64,
    /// Jobs waiting at the time of the snapshot.
    pub queue_len: usize,
    /// Slots held at the time of the snapshot.
    pub in_service: usize,
}

impl ResourceMetrics {
    /// `λ × W`, which Little's law says equals [`mean_in_system`](Self::mean_in_system)
    /// (exactly once the system has drained; see the module documentation).
    pub fn little_product(&self) -> f64 {
        self.arrival_rate * self.mean_time_in_system.as_secs_f64()
    }
}

impl fmt::Display for ResourceMetrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({}, {} at a time): λ {:.3}/s, W {}, Wq {}, S {}, L {:.3}, Lq {:.3}, ρ {:.3}, \
             {} arrived, {} completed, {} cancelled, {} waiting, {} in service, over {:.3}s",
            self.name,
            self.policy,
            self.limit,
            self.arrival_rate,
            millis(self.mean_time_in_system),
            millis(self.mean_queue_time),
            millis(self.mean_service_time),
            self.mean_in_system,
            self.mean_queue_len,
            self.utilisation,
            self.arrivals,
            self.completed,
            self.cancelled,
            self.queue_len,
            self.in_service,
            self.window.as_secs_f64(),
        )
    }
}

/// The statistics of every resource of a scheduler, in the order they were
/// declared; [`Display`](fmt::Display) renders them as a table.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Metrics {
    /// One entry per resource.
    pub resources: Vec<ResourceMetrics>,
}

impl Metrics {
    /// The statistics of the resource called `name`.
    pub fn get(&self, name: &str) -> Option<&ResourceMetrics> {
        self.resources.iter().find(|r| r.name == name)
    }
}

impl fmt::Display for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{:<16} {:<9} {:>5} {:>9} {:>10} {:>10} {:>10} {:>8} {:>8} {:>6} {:>9} {:>9} {:>7} {:>7}",
            "resource",
            "policy",
            "limit",
            "λ/s",
            "W",
            "Wq",
            "S",
            "L",
            "Lq",
            "ρ",
            "completed",
            "cancelled",
            "queue",
            "busy"
        )?;
        for r in &self.resources {
            writeln!(
                f,
                "{:<16} {:<9} {:>5} {:>9.3} {:>10} {:>10} {:>10} {:>8.3} {:>8.3} {:>6.3} {:>9} {:>9} {:>7} {:>7}",
                r.name,
                r.policy,
                r.limit,
                r.arrival_rate,
                millis(r.mean_time_in_system),
                millis(r.mean_queue_time),
                millis(r.mean_service_time),
                r.mean_in_system,
                r.mean_queue_len,
                r.utilisation,
                r.completed,
                r.cancelled,
                r.queue_len,
                r.in_service
            )?;
        }
        Ok(())
    }
}

/// A duration in milliseconds with two decimals, e.g. `12.50ms`.
fn millis(d: Duration) -> String {
    format!("{:.2}ms", d.as_secs_f64() * 1e3)
}

/// What an [`Engine`](crate::Engine) reports of its workflow
/// ([`Engine::metrics`](crate::Engine::metrics)): its instances by state and
/// what happened to them since the engine was built, with the statistics of
/// its scheduler's resources.
#[derive(Clone, Debug, PartialEq)]
pub struct WorkflowMetrics {
    /// The workflow's name.
    pub workflow: &'static str,
    /// Since when the counts run: the engine's age.
    pub window: Duration,
    /// How many instances the engine holds in each state (displayed), by
    /// status: running ones under their state, the others under their final
    /// state, failed ones under `failed`, cancelled ones under `cancelled`.
    /// Sorted by name.
    pub instances: Vec<(String, usize)>,
    /// Instances still running.
    pub running: usize,
    /// Transitions taken (macrosteps, for a statechart).
    pub transitions: u64,
    /// `transitions` over the window.
    pub transitions_per_second: f64,
    /// Instances that reached a final state other than a failure one.
    pub completions: u64,
    /// Instances that reached a failure final state, or stopped on a panic
    /// or a store error.
    pub failures: u64,
    /// Instances cancelled.
    pub cancellations: u64,
    /// Activity attempts after the first of their invocation.
    pub retries: u64,
    /// Failed instances resumed by [`Engine::retry`](crate::Engine::retry).
    pub retried: u64,
    /// Compensations run.
    pub compensations: u64,
    /// The engine's scheduler's resources (empty without one).
    pub resources: Vec<ResourceMetrics>,
}

impl fmt::Display for WorkflowMetrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{}: {} running; {} transitions ({:.0}/s over {:.1?}); {} completed, {} failed, {} cancelled; \
             {} retries, {} retried, {} compensations",
            self.workflow,
            self.running,
            self.transitions,
            self.transitions_per_second,
            self.window,
            self.completions,
            self.failures,
            self.cancellations,
            self.retries,
            self.retried,
            self.compensations
        )?;
        for (state, count) in &self.instances {
            writeln!(f, "  {state:<24} {count:>8}")?;
        }
        if !self.resources.is_empty() {
            write!(
                f,
                "{}",
                Metrics {
                    resources: self.resources.clone()
                }
            )?;
        }
        Ok(())
    }
}

/// The running sums behind [`ResourceMetrics`], and the two gauges (jobs
/// waiting, slots held) that the scheduler also decides with.
///
/// Integrals are in nanoseconds times jobs, in `u128`: exact, and they
/// cannot overflow in any realistic window.
#[derive(Debug)]
pub(crate) struct Stats {
    window_start: Instant,
    /// When the integrals were last advanced.
    last: Instant,
    /// Jobs waiting for a slot.
    pub(crate) waiting: usize,
    /// Slots granted (held, or granted to a job not yet polled).
    pub(crate) busy: usize,
    arrivals: u64,
    completed: u64,
    cancelled: u64,
    /// ∫ (waiting + busy) dt.
    area_in_system: u128,
    /// ∫ busy dt.
    area_busy: u128,
    /// Sums over completed jobs of their time waiting, in service and in
    /// the system (inside the window).
    sum_queue: u128,
    sum_service: u128,
    sum_system: u128,
}

impl Stats {
    pub(crate) fn new(now: Instant) -> Self {
        Self {
            window_start: now,
            last: now,
            waiting: 0,
            busy: 0,
            arrivals: 0,
            completed: 0,
            cancelled: 0,
            area_in_system: 0,
            area_busy: 0,
            sum_queue: 0,
            sum_service: 0,
            sum_system: 0,
        }
    }

    /// Brings the integrals up to `now`; called before any gauge changes.
    #[inline]
    fn advance(&mut self, now: Instant) {
        let dt = now.saturating_duration_since(self.last).as_nanos();
        if dt != 0 {
            self.area_in_system += dt * (self.waiting + self.busy) as u128;
            self.area_busy += dt * self.busy as u128;
            self.last = now;
        }
    }

    /// Nanoseconds from `t` (or the window's start, if later) to `now`.
    #[inline]
    fn in_window(&self, t: Instant, now: Instant) -> u128 {
        now.saturating_duration_since(t.max(self.window_start)).as_nanos()
    }

    /// A job arrived and got a slot at once.
    #[inline]
    pub(crate) fn arrive_started(&mut self, now: Instant) {
        self.advance(now);
        self.arrivals += 1;
        self.busy += 1;
    }

    /// A job arrived and joined the queue.
    pub(crate) fn arrive_waiting(&mut self, now: Instant) {
        self.advance(now);
        self.arrivals += 1;
        self.waiting += 1;
    }

    /// A waiting job was granted a slot.
    pub(crate) fn start(&mut self, now: Instant) {
        self.advance(now);
        self.waiting -= 1;
        self.busy += 1;
    }

    /// A job released its slot.
    #[inline]
    pub(crate) fn depart(&mut self, now: Instant, arrived: Instant, started: Instant) {
        self.advance(now);
        self.busy = self.busy.saturating_sub(1);
        self.completed += 1;
        let system = self.in_window(arrived, now);
        let service = self.in_window(started, now);
        self.sum_system += system;
        self.sum_service += service;
        self.sum_queue += system - service.min(system);
    }

    /// A waiting job was cancelled: it is taken back out of the statistics.
    pub(crate) fn abandon_waiting(&mut self, now: Instant, arrived: Instant) {
        self.advance(now);
        self.waiting = self.waiting.saturating_sub(1);
        self.withdraw(now, arrived);
    }

    /// A job granted a slot was dropped before it took it: the slot is
    /// freed, the job taken back out of the statistics.
    pub(crate) fn abandon_granted(&mut self, now: Instant, arrived: Instant) {
        self.advance(now);
        self.busy = self.busy.saturating_sub(1);
        self.withdraw(now, arrived);
    }

    fn withdraw(&mut self, now: Instant, arrived: Instant) {
        self.arrivals = self.arrivals.saturating_sub(1);
        self.cancelled += 1;
        self.area_in_system = self.area_in_system.saturating_sub(self.in_window(arrived, now));
    }

    /// Opens a new window at `now`; the jobs in the system count as its
    /// first arrivals.
    pub(crate) fn reset(&mut self, now: Instant) {
        let (waiting, busy) = (self.waiting, self.busy);
        *self = Self::new(now);
        self.waiting = waiting;
        self.busy = busy;
        self.arrivals = (waiting + busy) as u64;
    }

    /// The figures at `now`.
    pub(crate) fn snapshot(&self, now: Instant, name: &str, policy: &'static str, limit: usize) -> ResourceMetrics {
        let dt = now.saturating_duration_since(self.last).as_nanos();
        let area_in_system = self.area_in_system + dt * (self.waiting + self.busy) as u128;
        let area_busy = self.area_busy + dt * self.busy as u128;
        let window = now.saturating_duration_since(self.window_start);
        let span = window.as_nanos();
        let per_span = |area: u128| if span == 0 { 0.0 } else { area as f64 / span as f64 };
        let rate = |count: u64| {
            if span == 0 {
                0.0
            } else {
                count as f64 / window.as_secs_f64()
            }
        };
        let mean = |sum: u128| {
            let nanos = sum.checked_div(u128::from(self.completed)).unwrap_or(0);
            Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
        };
        ResourceMetrics {
            name: name.to_owned(),
            policy,
            limit,
            window,
            arrivals: self.arrivals,
            completed: self.completed,
            cancelled: self.cancelled,
            arrival_rate: rate(self.arrivals),
            throughput: rate(self.completed),
            mean_queue_time: mean(self.sum_queue),
            mean_service_time: mean(self.sum_service),
            mean_time_in_system: mean(self.sum_system),
            mean_in_system: per_span(area_in_system),
            mean_queue_len: per_span(area_in_system - area_busy.min(area_in_system)),
            utilisation: if limit == 0 {
                0.0
            } else {
                per_span(area_busy) / limit as f64
            },
            queue_len: self.waiting,
            in_service: self.busy,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn integrals_and_means_by_hand() {
        let t0 = Instant::now();
        let mut s = Stats::new(t0);
        // Job a: arrives at 0, served 0..100. Job b: arrives at 50, waits
        // until 100, served 100..150. One slot.
        s.arrive_started(t0);
        s.arrive_waiting(t0 + ms(50));
        s.depart(t0 + ms(100), t0, t0);
        s.start(t0 + ms(100));
        s.depart(t0 + ms(150), t0 + ms(50), t0 + ms(100));
        let m = s.snapshot(t0 + ms(200), "r", "fifo", 1);
        assert_eq!((m.arrivals, m.completed, m.queue_len, m.in_service), (2, 2, 0, 0));
        assert_eq!(m.mean_queue_time, ms(25));
        assert_eq!(m.mean_service_time, ms(75));
        assert_eq!(m.mean_time_in_system, ms(100));
        // In the system: 1 job 0..50, 2 jobs 50..100, 1 job 100..150: 200 ms·jobs over 200 ms.
        assert!((m.mean_in_system - 1.0).abs() < 1e-12);
        assert!((m.mean_queue_len - 0.25).abs() < 1e-12);
        assert!((m.utilisation - 0.75).abs() < 1e-12);
        assert!((m.arrival_rate - 10.0).abs() < 1e-9);
        assert!((m.little_product() - m.mean_in_system).abs() < 1e-9);
    }

    #[test]
    fn a_cancelled_job_leaves_no_trace_but_its_count() {
        let t0 = Instant::now();
        let mut s = Stats::new(t0);
        s.arrive_started(t0);
        s.arrive_waiting(t0 + ms(10));
        s.abandon_waiting(t0 + ms(60), t0 + ms(10));
        s.depart(t0 + ms(100), t0, t0);
        let m = s.snapshot(t0 + ms(100), "r", "fifo", 1);
        assert_eq!((m.arrivals, m.completed, m.cancelled), (1, 1, 1));
        assert!((m.mean_in_system - 1.0).abs() < 1e-12);
        assert!((m.little_product() - m.mean_in_system).abs() < 1e-9);
    }

    #[test]
    fn reset_counts_jobs_in_the_system_from_the_window_start() {
        let t0 = Instant::now();
        let mut s = Stats::new(t0);
        s.arrive_started(t0);
        s.arrive_waiting(t0);
        s.reset(t0 + ms(100));
        s.depart(t0 + ms(200), t0, t0);
        s.start(t0 + ms(200));
        s.depart(t0 + ms(300), t0, t0 + ms(200));
        let m = s.snapshot(t0 + ms(300), "r", "fifo", 1);
        assert_eq!((m.arrivals, m.completed), (2, 2));
        assert_eq!(m.window, ms(200));
        assert_eq!(m.mean_time_in_system, ms(150));
        assert!((m.little_product() - m.mean_in_system).abs() < 1e-9, "{m}");
    }

    #[test]
    fn an_empty_window_is_all_zeros() {
        let t0 = Instant::now();
        let m = Stats::new(t0).snapshot(t0, "r", "fifo", 3);
        assert_eq!((m.arrival_rate, m.mean_in_system, m.utilisation), (0.0, 0.0, 0.0));
        assert_eq!(m.mean_time_in_system, Duration::ZERO);
        let table = Metrics { resources: vec![m] }.to_string();
        assert!(table.starts_with("resource"), "{table}");
    }
}
