//! Conformance of the `workflow!` macro against the SCION statechart corpus.
//!
//! `build.rs` translates every `scion/<group>/<name>.scxml` (with its `.json`
//! script) into a `workflow!` block and a small [`Sut`] adapter, and writes
//! them to `OUT_DIR`; `tests/scion.rs` includes that file and calls
//! [`run_all`]. This library holds what the generated code shares: the script
//! types, the deterministic driver with its virtual clock, and the report.
//!
//! Run it with `cargo test -p conformance` (the corpus directory defaults to
//! `../shared/conformance/scion` next to the repository; set
//! `WORKFLOW_CONFORMANCE_DIR` to use another). Arguments after `--` filter the
//! tests by substring of `group/name`.
//!
//! The corpus is not part of the repository. Without it the runner prints one
//! line saying it did not run and how to run it, and passes, so that
//! `cargo test --workspace` passes on a clone of the repository alone; when
//! the `CI` environment variable is set (CI has the corpus), a missing corpus
//! fails. A corpus that is there but unusable always fails.

use std::collections::VecDeque;
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};

#[cfg(test)]
#[path = "translate.rs"]
mod translate;

// The macro's stages, compiled here as well (never copied) so that a block's text can become its
// graph at run time, for the round trip. They sit at the crate root, where their `crate::` paths
// point; what the macro's expansion alone uses is dead here.
#[allow(dead_code)]
#[path = "../../workflow-macros/src/codegen/mod.rs"]
mod codegen;
#[allow(dead_code)]
#[path = "../../workflow-macros/src/errors.rs"]
mod errors;
#[allow(dead_code)]
#[path = "../../workflow-macros/src/import.rs"]
mod import;
#[allow(dead_code)]
#[path = "../../workflow-macros/src/model.rs"]
mod model;
#[allow(dead_code)]
#[path = "../../workflow-macros/src/parse.rs"]
mod parse;
#[allow(dead_code)]
#[path = "../../workflow-macros/src/validate.rs"]
mod validate;

mod round_trip;
pub use round_trip::{graph_text, round_trip};

pub mod differential;
pub use differential::{differential, Differential};

#[cfg(test)]
mod translate_tests;

/// One entry of a test's script.
#[derive(Debug, Clone, Copy)]
pub struct ScriptStep {
    /// Milliseconds of virtual time to let pass before the event.
    pub after: Option<u64>,
    /// The event's SCXML name.
    pub event: &'static str,
    /// The expected active atomic states (SCXML ids, any order).
    pub expected: &'static [&'static str],
}

/// A test's script.
#[derive(Debug, Clone, Copy)]
pub struct Script {
    /// The expected active atomic states once started.
    pub initial: &'static [&'static str],
    /// Events to deliver, in order.
    pub steps: &'static [ScriptStep],
}

/// A machine's request to the outside world, as the driver sees it
/// (converted from `workflow::Scheduled` by the generated adapter).
#[derive(Debug)]
pub enum Sched<E> {
    /// Deliver `event` as an external event after `delay_ms` (0: right after
    /// the current macrostep).
    Send {
        /// The send's id (for cancelling).
        id: String,
        /// The event to deliver.
        event: E,
        /// The delay in milliseconds.
        delay_ms: u64,
    },
    /// Drop every pending send with this id.
    Cancel {
        /// The send id.
        id: String,
    },
}

/// What the driver needs from a generated machine.
pub trait Sut {
    /// The machine's event enum.
    type Event;
    /// Runs the initial macrostep.
    fn start(&mut self);
    /// Delivers one external event (one macrostep); an event that enables
    /// nothing is discarded.
    fn handle(&mut self, event: &Self::Event);
    /// The active atomic states, as SCXML ids.
    fn active(&self) -> Vec<String>;
    /// The active atomic states, as the machine names them.
    fn active_names(&self) -> Vec<String>;
    /// Sends and cancels requested since the last call.
    fn take_scheduled(&mut self) -> Vec<Sched<Self::Event>>;
    /// The event variant for an SCXML event name.
    fn event(name: &str) -> Option<Self::Event>;
    /// The machine's name of an event (its variant's).
    fn event_name(event: &Self::Event) -> String;
}

/// One test of the corpus.
#[derive(Debug, Clone, Copy)]
pub struct Case {
    /// Its group (the corpus folder).
    pub group: &'static str,
    /// Its name (the file stem).
    pub name: &'static str,
    /// Runs it: `Err` says what differed.
    pub run: fn() -> Result<(), String>,
    /// Its machine's graph exported to SCXML and XState and imported again: `Err` says what
    /// differed.
    /// `None` when the chart was not translated.
    pub round_trip: Option<fn() -> Result<(), String>>,
    /// Its side of the differential against XState; `None` when the chart was not translated.
    pub xstate: Option<fn() -> Result<Differential, String>>,
}

/// Safety valve: external events processed in one step of the script before
/// the driver gives up (a machine sending itself events forever).
pub const MAX_EVENTS_PER_STEP: usize = 10_000;

struct Timer<E> {
    due: u64,
    seq: u64,
    id: String,
    event: E,
}

/// The deterministic environment of one machine: a virtual clock in
/// milliseconds, pending timers and the external queue.
pub struct Env<S: Sut> {
    sut: S,
    now: u64,
    seq: u64,
    timers: Vec<Timer<S::Event>>,
    external: VecDeque<S::Event>,
}

impl<S: Sut> Env<S> {
    /// Wraps a freshly created machine; the clock starts at 0.
    pub fn new(sut: S) -> Self {
        Self {
            sut,
            now: 0,
            seq: 0,
            timers: Vec::new(),
            external: VecDeque::new(),
        }
    }

    /// The virtual time in milliseconds.
    pub fn now(&self) -> u64 {
        self.now
    }

    /// The machine.
    pub fn sut(&self) -> &S {
        &self.sut
    }

    /// Collects the machine's sends and cancels, then runs every event on the
    /// external queue (each a macrostep), collecting again after each.
    fn settle(&mut self) -> Result<(), String> {
        let mut processed = 0;
        loop {
            for s in self.sut.take_scheduled() {
                match s {
                    Sched::Send { event, delay_ms: 0, .. } => self.external.push_back(event),
                    Sched::Send { id, event, delay_ms } => {
                        self.seq += 1;
                        self.timers.push(Timer {
                            due: self.now + delay_ms,
                            seq: self.seq,
                            id,
                            event,
                        });
                    }
                    Sched::Cancel { id } => self.timers.retain(|t| t.id != id),
                }
            }
            let Some(event) = self.external.pop_front() else {
                return Ok(());
            };
            processed += 1;
            if processed > MAX_EVENTS_PER_STEP {
                return Err(format!(
                    "more than {MAX_EVENTS_PER_STEP} queued external events: the machine keeps sending itself events"
                ));
            }
            self.sut.handle(&event);
        }
    }

    /// Starts the machine (the initial macrostep) and settles.
    pub fn start(&mut self) -> Result<(), String> {
        self.sut.start();
        self.settle()
    }

    /// Lets `ms` of virtual time pass, firing every timer that falls due, in
    /// due order (ties: scheduling order), each as its own macrostep.
    pub fn advance(&mut self, ms: u64) -> Result<(), String> {
        let until = self.now + ms;
        let mut fired = 0;
        loop {
            let next = self
                .timers
                .iter()
                .enumerate()
                .filter(|(_, t)| t.due <= until)
                .min_by_key(|(_, t)| (t.due, t.seq))
                .map(|(i, _)| i);
            let Some(i) = next else { break };
            let timer = self.timers.remove(i);
            self.now = timer.due;
            fired += 1;
            if fired > MAX_EVENTS_PER_STEP {
                return Err(format!("more than {MAX_EVENTS_PER_STEP} timers fired in {ms}ms"));
            }
            self.sut.handle(&timer.event);
            self.settle()?;
        }
        self.now = until;
        Ok(())
    }

    /// Delivers one external event and settles.
    pub fn deliver(&mut self, event: &S::Event) -> Result<(), String> {
        self.sut.handle(event);
        self.settle()
    }
}

/// Compares configurations as sets (order-insensitive, duplicates count).
pub fn same_configuration(expected: &[&str], actual: &[String]) -> bool {
    let mut e: Vec<&str> = expected.to_vec();
    let mut a: Vec<&str> = actual.iter().map(String::as_str).collect();
    e.sort_unstable();
    a.sort_unstable();
    e == a
}

struct Config<'a, T>(&'a [T]);

impl<T: AsRef<str>> fmt::Display for Config<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut v: Vec<&str> = self.0.iter().map(AsRef::as_ref).collect();
        v.sort_unstable();
        write!(f, "[{}]", v.join(", "))
    }
}

/// Runs one script against a fresh machine; `Err` says at which step what
/// differed.
pub fn drive<S: Sut>(sut: S, script: &Script) -> Result<(), String> {
    let mut env = Env::new(sut);
    env.start().map_err(|e| format!("at start: {e}"))?;
    let actual = env.sut.active();
    if !same_configuration(script.initial, &actual) {
        return Err(format!(
            "initial configuration: expected {}, actual {}",
            Config(script.initial),
            Config(&actual)
        ));
    }
    for (i, step) in script.steps.iter().enumerate() {
        let after = step.after.map(|ms| format!(" after {ms}ms")).unwrap_or_default();
        let at = format!("step {} (event `{}`{after})", i + 1, step.event);
        if let Some(ms) = step.after {
            env.advance(ms).map_err(|e| format!("{at}: {e}"))?;
        }
        let event = S::event(step.event)
            .ok_or_else(|| format!("{at}: event `{}` is not declared by the translation", step.event))?;
        env.deliver(&event).map_err(|e| format!("{at}: {e}"))?;
        let actual = env.sut.active();
        if !same_configuration(step.expected, &actual) {
            return Err(format!(
                "{at}: expected {}, actual {}",
                Config(step.expected),
                Config(&actual)
            ));
        }
    }
    Ok(())
}

/// The environment variable naming the corpus directory (read by `build.rs`).
pub const ENV_DIR: &str = "WORKFLOW_CONFORMANCE_DIR";

/// What `build.rs` found where the corpus should be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Corpus {
    /// The corpus was read: its tests are the generated `CASES`.
    Read,
    /// There is no directory at `dir`: a clone of the repository alone.
    Missing {
        /// Where the corpus was looked for.
        dir: &'static str,
    },
    /// The directory is there but could not be used.
    Unreadable {
        /// What went wrong.
        why: &'static str,
    },
}

/// Whether the value of the `CI` environment variable says the tests run on
/// CI (one decision for every test that needs what a machine may lack).
pub use workflow_runtime::ci::on_ci;

/// What the runner does with what `build.rs` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Run the cases.
    Run,
    /// Print this one line and pass: there is no corpus here.
    Skip(String),
    /// Print this and fail.
    Fail(String),
}

/// Decides whether the corpus tests run: a missing corpus is skipped unless
/// `ci` (see [`on_ci`]); an unusable one always fails.
pub fn verdict(corpus: Corpus, ci: bool) -> Verdict {
    match corpus {
        Corpus::Read => Verdict::Run,
        Corpus::Missing { dir } if ci => Verdict::Fail(format!(
            "conformance: FAILED: CI is set and the SCION corpus is missing: no directory {dir} \
             (put the corpus's `scion` directory there, or set {ENV_DIR} to it)"
        )),
        Corpus::Missing { dir } => Verdict::Skip(format!(
            "conformance: not run: no SCION corpus at {dir}; put the corpus's `scion` directory \
             there (or set {ENV_DIR} to it) and run `cargo test -p conformance`"
        )),
        Corpus::Unreadable { why } => Verdict::Fail(format!("conformance: FAILED: {why}")),
    }
}

/// Runs the cases whose `group/name` contains one of `filters` (all when
/// there is none), prints one line per failure and the summary
/// `N passed, M failed`, and returns the process exit code. Without cases to
/// run, [`verdict`] decides (`ci`: see [`on_ci`]).
pub fn run_all(corpus: Corpus, cases: &[Case], filters: &[String], ci: bool) -> i32 {
    match verdict(corpus, ci) {
        Verdict::Run => {}
        Verdict::Skip(line) => {
            println!("{line}");
            return 0;
        }
        Verdict::Fail(why) => {
            eprintln!("{why}");
            return 1;
        }
    }
    // Panics are reported as failures with their message, not printed twice.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let (mut passed, mut failed) = (0usize, 0usize);
    let (mut round_passed, mut round_failed, mut untranslated) = (0usize, 0usize, 0usize);
    for case in cases {
        let full = format!("{}/{}", case.group, case.name);
        if !filters.is_empty() && !filters.iter().any(|f| full.contains(f.as_str())) {
            continue;
        }
        match guarded(case.run) {
            Ok(()) => passed += 1,
            Err(why) => {
                failed += 1;
                println!("FAILED {full}: {why}");
            }
        }
        match case.round_trip.map(guarded) {
            None => untranslated += 1,
            Some(Ok(())) => round_passed += 1,
            Some(Err(why)) => {
                round_failed += 1;
                println!("FAILED round trip {full}: {why}");
            }
        }
    }
    std::panic::set_hook(default_hook);
    println!("{passed} passed, {failed} failed");
    println!(
        "round trip (the machine's graph exported to SCXML and to XState, imported, compiled again): {round_passed} passed, {round_failed} failed, {untranslated} not translated"
    );
    i32::from(failed > 0 || round_failed > 0)
}

/// Runs `f`, a panic becoming an `Err` with its message.
fn guarded(f: fn() -> Result<(), String>) -> Result<(), String> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(payload) => {
            let msg = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "(non-string panic)".into());
            Err(format!("panicked: {msg}"))
        }
    }
}

#[cfg(test)]
mod corpus_tests {
    use super::*;

    const DIR: &str = "/nowhere/shared/conformance/scion";

    #[test]
    fn a_missing_corpus_is_one_line_saying_how_to_run_it_and_passes_off_ci() {
        let Verdict::Skip(line) = verdict(Corpus::Missing { dir: DIR }, false) else {
            panic!("a missing corpus off CI must be skipped");
        };
        assert!(!line.contains('\n'), "{line}");
        assert!(line.starts_with("conformance: not run"), "{line}");
        for needle in [DIR, ENV_DIR, "cargo test -p conformance"] {
            assert!(line.contains(needle), "missing {needle:?} in {line}");
        }
        let cases = [Case {
            group: "g",
            name: "n",
            run: || Err("must not run".into()),
            round_trip: None,
            xstate: None,
        }];
        assert_eq!(run_all(Corpus::Missing { dir: DIR }, &cases, &[], false), 0);
    }

    #[test]
    fn a_missing_corpus_fails_on_ci() {
        let Verdict::Fail(why) = verdict(Corpus::Missing { dir: DIR }, true) else {
            panic!("a missing corpus on CI must fail");
        };
        assert!(
            why.contains(DIR) && why.contains(ENV_DIR) && why.contains("CI"),
            "{why}"
        );
        assert_eq!(run_all(Corpus::Missing { dir: DIR }, &[], &[], true), 1);
    }

    #[test]
    fn an_unreadable_corpus_fails_everywhere() {
        for ci in [false, true] {
            let corpus = Corpus::Unreadable { why: "no scxml files" };
            assert_eq!(
                verdict(corpus, ci),
                Verdict::Fail("conformance: FAILED: no scxml files".into())
            );
            assert_eq!(run_all(corpus, &[], &[], ci), 1);
        }
    }

    #[test]
    fn a_read_corpus_runs_its_cases_and_fails_with_them() {
        assert_eq!(verdict(Corpus::Read, true), Verdict::Run);
        let failing = [Case {
            group: "g",
            name: "n",
            run: || Err("differs".into()),
            round_trip: None,
            xstate: None,
        }];
        let passing = [Case {
            group: "g",
            name: "n",
            run: || Ok(()),
            round_trip: None,
            xstate: None,
        }];
        for ci in [false, true] {
            assert_eq!(run_all(Corpus::Read, &failing, &[], ci), 1);
            assert_eq!(run_all(Corpus::Read, &passing, &[], ci), 0);
        }
    }
}
