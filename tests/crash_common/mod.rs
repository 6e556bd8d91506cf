//! What the SIGKILL crash tests share: seeded kill delays, and a worker
//! process (the test binary itself, re-executed to run one ignored test)
//! whose output lines the parent reads.

#![allow(dead_code)] // each test binary uses part of it

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Set to the working directory in the worker's environment: without it,
/// the worker test does nothing.
pub const DIR_VAR: &str = "WORKFLOW_CRASH_DIR";

/// The signal `Child::kill` sends on Unix, as `ExitStatus::signal` reports it.
pub const SIGKILL: i32 = 9;

/// How long a worker may take to report `ready`: far more than it needs,
/// so only a hang trips it.
pub const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// The seed of the kill delays: `WORKFLOW_CRASH_SEED` if set, else `default`.
pub fn seed(default: u64) -> u64 {
    std::env::var("WORKFLOW_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// The count in the worker's `ready: recovered N instances`.
pub fn recovered_count(ready: &str) -> usize {
    ready
        .split_whitespace()
        .find_map(|word| word.parse().ok())
        .unwrap_or_else(|| panic!("no count in {ready:?}"))
}

/// SplitMix64: a few lines of seeded randomness, the same on every run.
pub struct SplitMix(pub u64);

impl SplitMix {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A delay in `0..=max`, in whole milliseconds.
    pub fn delay(&mut self, max: Duration) -> Duration {
        let max = u64::try_from(max.as_millis()).unwrap_or(u64::MAX);
        Duration::from_millis(self.next() % (max + 1))
    }
}

/// A running worker and the lines it prints.
pub struct Worker {
    pub child: Child,
    lines: Receiver<String>,
    reader: Option<JoinHandle<()>>,
    /// Everything it printed so far, for the report and for failures.
    pub output: Vec<String>,
}

impl Worker {
    /// Runs the ignored test `test` of this binary in `dir`.
    pub fn spawn(test: &str, dir: &Path) -> Worker {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([test, "--exact", "--ignored", "--nocapture", "--test-threads=1"])
            .env(DIR_VAR, dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn the worker");
        let stdout = child.stdout.take().unwrap();
        let (send, lines) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        Worker {
            child,
            lines,
            reader: Some(reader),
            output: Vec::new(),
        }
    }

    /// Waits for the `ready` line; `None` if the worker exited first.
    pub fn ready(&mut self) -> Option<String> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.output.push(line.clone());
                    // libtest's `test crash_worker ... ` may precede it on the line.
                    if let Some(at) = line.find("ready:") {
                        return Some(line[at..].to_string());
                    }
                }
                Err(RecvTimeoutError::Disconnected) => return None,
                Err(RecvTimeoutError::Timeout) => {
                    let _ = self.child.kill();
                    panic!(
                        "the worker did not report ready in {READY_TIMEOUT:?}: {:#?}",
                        self.output
                    );
                }
            }
        }
    }

    /// Waits for the worker to exit, killing it and failing past `timeout`;
    /// collects the rest of its output.
    pub fn exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                self.drain();
                panic!("the worker hung: not done in {timeout:?}: {:#?}", self.output);
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        self.drain();
        status
    }

    fn drain(&mut self) {
        if let Some(reader) = self.reader.take() {
            reader.join().unwrap();
        }
        self.output.extend(self.lines.try_iter());
    }

    /// The worker's `done` line, if it printed one.
    pub fn done(&self) -> Option<&str> {
        self.output
            .iter()
            .find_map(|line| line.find("done:").map(|at| &line[at..]))
    }
}
