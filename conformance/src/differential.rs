//! The differentials against other interpreters: every translated chart's export run in
//! XState's own interpreter ([`Graph::to_xstate`], `node/xstate.mjs`) and in SCION, an SCXML
//! interpreter independent of ours ([`Graph::to_scxml`], `node/scion.mjs`), and our machine run
//! on the same script; the configurations after start and after each event must be equal.
//!
//! They need node and `npm ci --prefix conformance/node` (the packages pinned in its
//! package-lock.json). Without them the runner says so in one line and passes, unless the
//! environment variable `CI` is set, where it fails: CI (`.ci/run`) installs them.
//!
//! Where another interpreter's semantics differ from SCXML's (and ours) on purpose, the
//! difference is expected: listed with its reason in [`EXPECTED`], printed, and counted apart
//! from the passes.
//!
//! `WORKFLOW_DIFFERENTIAL_DUMP=group/name` prints that chart's exports on stderr.

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};

use workflow_runtime::Graph;

use crate::{Env, Script, Sut};

/// One chart's side of the differentials: the exports, the events, and our configurations.
#[derive(Debug, Clone, PartialEq)]
pub struct Differential {
    /// `Graph::to_xstate` of the machine.
    pub xstate: String,
    /// `Graph::to_scxml` of the machine.
    pub scxml: String,
    /// The script's events as the machine names them, each with the time to let pass first.
    pub steps: Vec<(Option<u64>, String)>,
    /// Our active atomic states (the machine's state names, sorted) after start and after each
    /// event.
    pub ours: Vec<Vec<String>>,
}

/// Runs `sut` on `script` as [`drive`](crate::drive) does, recording its configurations.
pub fn differential<S: Sut>(sut: S, script: &Script, graph: &Graph<'_>) -> Result<Differential, String> {
    let mut env = Env::new(sut);
    env.start()?;
    let sorted = |mut v: Vec<String>| {
        v.sort();
        v
    };
    let mut ours = vec![sorted(env.sut().active_names())];
    let mut steps = Vec::new();
    for step in script.steps {
        if let Some(ms) = step.after {
            env.advance(ms)?;
        }
        let event = S::event(step.event).ok_or_else(|| format!("event `{}` is not declared", step.event))?;
        let name = S::event_name(&event);
        env.deliver(&event)?;
        steps.push((step.after, name));
        ours.push(sorted(env.sut().active_names()));
    }
    Ok(Differential {
        xstate: graph.to_xstate(),
        scxml: graph.to_scxml(),
        steps,
        ours,
    })
}

/// A difference between another interpreter's semantics and SCXML's that a differential
/// expects: the interpreter, the charts it shows in, and why.
pub struct Expected {
    /// `xstate` or `scion`.
    pub interpreter: &'static str,
    /// `group/name` of each chart where it shows.
    pub charts: &'static [&'static str],
    /// Why XState and SCXML differ there.
    pub reason: &'static str,
}

/// Every expected difference.
pub const EXPECTED: &[Expected] = &[Expected {
    interpreter: "xstate",
    charts: &["scxml-prefix-event-name-matching/star0"],
    reason: "XState tries the transitions listed under the event's own name before those under `*` \
             (it orders event descriptors by specificity), where SCXML, and the block, take the first \
             matching transition in document order; the export keeps the order, XState does not use it",
}];

/// An interpreter the exports run in.
struct Interpreter {
    name: &'static str,
    /// Its driver in `conformance/node`.
    script: &'static str,
    /// The npm package it is.
    package: &'static str,
    /// The export it runs, as a JSON value.
    export: fn(&Differential) -> String,
}

const INTERPRETERS: [Interpreter; 2] = [
    Interpreter {
        name: "xstate",
        script: "xstate.mjs",
        package: "xstate",
        export: |d| d.xstate.clone(),
    },
    Interpreter {
        name: "scion",
        script: "scion.mjs",
        package: "@scion-scxml/scxml",
        export: |d| serde_json::Value::from(d.scxml.as_str()).to_string(),
    },
];

/// Runs both differentials over `cases` (those matching `filters`); prints one line per
/// difference, the expected ones with their reason, and each interpreter's `N passed, M failed`.
/// Returns the exit code: 1 on an unexpected difference, or when they cannot run under `CI`.
pub fn run(cases: &[crate::Case], filters: &[String]) -> i32 {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("node");
    let how = "run `npm ci --prefix conformance/node` (node 18 or later) to run them";
    let missing = if let Some(i) = INTERPRETERS
        .iter()
        .find(|i| !dir.join("node_modules").join(i.package).join("package.json").is_file())
    {
        Some(format!(
            "{} is not installed (conformance/node/node_modules)",
            i.package
        ))
    } else if Command::new("node")
        .arg("--version")
        .output()
        .map_or(true, |o| !o.status.success())
    {
        Some("node is not on the PATH".to_string())
    } else {
        None
    };
    if let Some(why) = missing {
        let ci = workflow_runtime::ci::here();
        println!("xstate and scion differentials: not run: {why}; {how}");
        return i32::from(ci);
    }

    let mut recorded = Vec::new();
    let mut ours_failed = Vec::new();
    for case in cases {
        let full = format!("{}/{}", case.group, case.name);
        if !filters.is_empty() && !filters.iter().any(|f| full.contains(f.as_str())) {
            continue;
        }
        let Some(record) = case.xstate else { continue };
        match record() {
            Ok(d) => recorded.push((full, d)),
            Err(why) => ours_failed.push(format!("{full}: our machine failed: {why}")),
        }
    }
    let mut code = 0;
    for Interpreter {
        name: interpreter,
        script,
        package,
        export,
    } in INTERPRETERS
    {
        let inputs: Vec<String> = recorded
            .iter()
            .map(|(full, d)| {
                let steps: Vec<serde_json::Value> = d
                    .steps
                    .iter()
                    .map(|(after, event)| serde_json::json!({"after": after, "event": event}))
                    .collect();
                // The export goes as it is: a `Value` would sort an object's keys, and XState
                // reads document order from them.
                format!(
                    "{{\"name\": {}, \"config\": {}, \"steps\": {}}}",
                    serde_json::Value::from(full.as_str()),
                    export(d),
                    serde_json::Value::from(steps)
                )
            })
            .collect();
        let outputs = match node(&dir, script, &format!("[{}]", inputs.join(",\n"))) {
            Ok(o) => o,
            Err(why) => {
                println!("{interpreter} differential: node failed: {why}");
                code = 1;
                continue;
            }
        };
        let mut failures = ours_failed.clone();
        let (mut passed, mut expected) = (0usize, Vec::new());
        for (full, d) in &recorded {
            let Some(out) = outputs.iter().find(|o| o["name"] == full.as_str()) else {
                failures.push(format!("{full}: {interpreter} printed nothing for it"));
                continue;
            };
            let verdict = match out.get("configurations").and_then(|c| c.as_array()) {
                None => Err(format!(
                    "{interpreter} failed: {}",
                    out.get("error").and_then(|e| e.as_str()).unwrap_or("(no error)")
                )),
                Some(theirs) => compare(d, theirs, interpreter),
            };
            match verdict {
                Ok(()) => passed += 1,
                Err(why) => match EXPECTED
                    .iter()
                    .find(|x| x.interpreter == interpreter && x.charts.contains(&full.as_str()))
                {
                    Some(x) => expected.push(format!("{full}: {why}\n    expected: {}", x.reason)),
                    None => failures.push(format!("{full}: {why}")),
                },
            }
        }
        for line in &expected {
            println!("EXPECTED {interpreter} {line}");
        }
        for line in &failures {
            println!("FAILED {interpreter} {line}");
        }
        println!(
            "{interpreter} differential ({package} {}): {passed} passed, {} failed, {} expected differences",
            version(&dir, package),
            failures.len(),
            expected.len()
        );
        if !failures.is_empty() {
            code = 1;
        }
    }
    code
}

fn compare(d: &Differential, theirs: &[serde_json::Value], interpreter: &str) -> Result<(), String> {
    for (i, ours) in d.ours.iter().enumerate() {
        let theirs: Vec<String> = theirs
            .get(i)
            .and_then(|c| c.as_array())
            .map(|c| c.iter().filter_map(|s| s.as_str().map(str::to_string)).collect())
            .unwrap_or_default();
        if *ours != theirs {
            let at = match i {
                0 => "at start".to_string(),
                _ => format!("after step {i} (`{}`)", d.steps[i - 1].1),
            };
            return Err(format!(
                "{at}: ours [{}], {interpreter} [{}]",
                ours.join(", "),
                theirs.join(", ")
            ));
        }
    }
    Ok(())
}

/// Runs the node `script` on `input`; one JSON value a case.
fn node(dir: &Path, script: &str, input: &str) -> Result<Vec<serde_json::Value>, String> {
    let mut child = Command::new("node")
        .arg(script)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        // Node's own messages (and WORKFLOW_DIFFERENTIAL_DUMP's) reach the terminal as they are.
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| e.to_string())?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(input.as_bytes()).map_err(|e| e.to_string())?;
    }
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!("node exited with {} (its messages are above)", out.status));
    }
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).map_err(|e| format!("{e}: {l}")))
        .collect()
}

fn version(dir: &Path, package: &str) -> String {
    std::fs::read_to_string(dir.join("node_modules").join(package).join("package.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| v["version"].as_str().map(str::to_string))
        .unwrap_or_else(|| "?".into())
}
