//! `workflow workflows|list|show|stats|diagram`: a store read from outside the engine, through
//! `workflow_runtime::inspect`. Human tables by default, `--json` for scripts.

use std::fmt::Write;
use std::time::{Duration, SystemTime};

use clap::{Arg, ArgAction, ArgMatches, Command};
use serde::Serialize;
use workflow_runtime::inspect::{
    attempt_outcome, format_micros, format_time, parse_time as parse_time_utc, DiagramFormat, Filter, InspectError,
    Inspector, Page,
};
use workflow_runtime::journal::Attempt;
use workflow_runtime::InstanceStatus;

/// The environment variable `--store` falls back to.
pub const STORE_ENV: &str = "WORKFLOW_STORE";

/// The subcommands, for `command()`.
pub fn commands() -> Vec<Command> {
    let store = || {
        Arg::new("store").long("store").env(STORE_ENV).required(true).help(
            "The store: a SQLite file's path, or (built with the `postgres` feature) a PostgreSQL URL \
                 with the store's schema, postgres://user@host/db?schema=workflow",
        )
    };
    let json = || {
        Arg::new("json")
            .long("json")
            .action(ArgAction::SetTrue)
            .help("Print JSON instead of a table")
    };
    let keys = || {
        Arg::new("keys-env")
            .long("keys-env")
            .value_name("VAR")
            .help("Read rows sealed by the AEAD codec with the keys in this environment variable")
    };
    vec![
        Command::new("workflows")
            .about("Lists the store's workflows, their definitions and counts")
            .args([store(), json()]),
        Command::new("list")
            .about("Lists instances, newest first, a page at a time")
            .args([store(), json()])
            .arg(Arg::new("workflow").long("workflow").help("Only this workflow's"))
            .arg(Arg::new("state").long("state").help("Only those in this state"))
            .arg(
                Arg::new("status")
                    .long("status")
                    .value_parser(["running", "finished", "failed", "cancelled"])
                    .help("Only those of this status"),
            )
            .arg(
                Arg::new("started-after")
                    .long("started-after")
                    .value_name("TIME")
                    .help("Only those started at or after TIME: ms since the Unix epoch, a UTC time (2026-12-07T06:00), or an age (30s, 15m, 2h, 7d)"),
            )
            .arg(
                Arg::new("started-before")
                    .long("started-before")
                    .value_name("TIME")
                    .help("Only those started before TIME"),
            )
            .arg(
                Arg::new("id-prefix")
                    .long("id-prefix")
                    .help("Only those whose id starts with this"),
            )
            .arg(
                Arg::new("limit")
                    .long("limit")
                    .value_parser(clap::value_parser!(usize))
                    .default_value("50")
                    .help("How many to a page (at most 1000)"),
            )
            .arg(
                Arg::new("cursor")
                    .long("cursor")
                    .help("Where the page starts: the cursor a page printed"),
            ),
        Command::new("show")
            .about("Shows an instance: its status, context and journal as a timeline")
            .arg(Arg::new("id").required(true).help("The instance's id"))
            .arg(
                Arg::new("workflow")
                    .long("workflow")
                    .help("Its workflow, if several have the id"),
            )
            .args([store(), json(), keys()]),
        Command::new("stats")
            .about("Counts instances by state and status, and what ended in a window")
            .arg(Arg::new("workflow").help("The workflow [default: every workflow]"))
            .arg(
                Arg::new("window")
                    .long("window")
                    .default_value("1h")
                    .help("The window: its length back from now (30s, 15m, 2h, 7d)"),
            )
            .args([store(), json()]),
        Command::new("diagram")
            .about("Draws a workflow with the number of instances in each state")
            .arg(Arg::new("workflow").required(true).help("The workflow"))
            .arg(
                Arg::new("format")
                    .long("format")
                    .value_parser(["mermaid", "dot", "svg"])
                    .default_value("mermaid")
                    .help("Mermaid stateDiagram-v2, Graphviz DOT or an SVG drawing"),
            )
            .args([store(), json()]),
    ]
}

/// Runs one of [`commands`]; `None` if `name` is not one of them.
pub fn run(name: &str, m: &ArgMatches) -> Option<Result<String, String>> {
    if !["workflows", "list", "show", "stats", "diagram"].contains(&name) {
        return None;
    }
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => return Some(Err(format!("cannot start: {e}"))),
    };
    Some(runtime.block_on(async {
        let inspector = open(m).await?;
        let json = m.get_flag("json");
        match name {
            "workflows" => workflows(&inspector, json).await,
            "list" => list(&inspector, m, json).await,
            "show" => show(&inspector, m, json).await,
            "stats" => stats(&inspector, m, json).await,
            _ => diagram(&inspector, m, json).await,
        }
    }))
}

fn text<'a>(m: &'a ArgMatches, name: &str) -> Option<&'a str> {
    m.try_get_one::<String>(name).ok().flatten().map(String::as_str)
}

async fn open(m: &ArgMatches) -> Result<Inspector, String> {
    let store = text(m, "store").unwrap_or_default();
    let inspector = Inspector::open(store).await.map_err(message)?;
    match text(m, "keys-env") {
        None => Ok(inspector),
        Some(var) => with_keys(inspector, var),
    }
}

#[cfg(feature = "encryption")]
fn with_keys(inspector: Inspector, var: &str) -> Result<Inspector, String> {
    use workflow_runtime::codec::{Aead, Keys};
    let keys = Keys::from_env(var).map_err(|e| e.to_string())?;
    let codec = Aead::new(keys).map_err(|e| e.to_string())?;
    Ok(inspector.with_codec(std::sync::Arc::new(codec)))
}

#[cfg(not(feature = "encryption"))]
fn with_keys(_: Inspector, _: &str) -> Result<Inspector, String> {
    Err("--keys-env needs a `workflow` built with the `encryption` feature".into())
}

fn message(error: InspectError) -> String {
    error.to_string()
}

fn to_json(value: &impl Serialize) -> Result<String, String> {
    serde_json::to_string_pretty(value)
        .map(|mut text| {
            text.push('\n');
            text
        })
        .map_err(|e| e.to_string())
}

async fn workflows(inspector: &Inspector, json: bool) -> Result<String, String> {
    let workflows = inspector.workflows().await.map_err(message)?;
    if json {
        return to_json(&workflows);
    }
    let mut rows = vec![row([
        "WORKFLOW",
        "INSTANCES",
        "RUNNING",
        "FINISHED",
        "FAILED",
        "CANCELLED",
        "DEFINITIONS",
    ])];
    for w in &workflows {
        rows.push(vec![
            w.name.clone(),
            w.instances.to_string(),
            w.running.to_string(),
            w.finished.to_string(),
            w.failed.to_string(),
            w.cancelled.to_string(),
            w.definitions
                .iter()
                .map(|d| format!("{} (since {})", d.fingerprint, time(Some(d.first_seen))))
                .collect::<Vec<_>>()
                .join(", "),
        ]);
    }
    Ok(table(&rows))
}

async fn list(inspector: &Inspector, m: &ArgMatches, json: bool) -> Result<String, String> {
    let now = now_ms();
    let when = |name: &str| text(m, name).map(|t| parse_time(t, now)).transpose();
    let filter = Filter {
        workflow: text(m, "workflow").map(str::to_string),
        state: text(m, "state").map(str::to_string),
        status: text(m, "status").and_then(InstanceStatus::from_name),
        started_after: when("started-after")?,
        started_before: when("started-before")?,
        id_prefix: text(m, "id-prefix").map(str::to_string),
        limit: m.get_one::<usize>("limit").copied().unwrap_or_default(),
        cursor: text(m, "cursor").map(str::to_string),
    };
    let page = inspector.list(&filter).await.map_err(message)?;
    if json {
        return to_json(&page);
    }
    Ok(list_table(&page))
}

fn list_table(page: &Page) -> String {
    let mut rows = vec![row(["WORKFLOW", "ID", "STATE", "STATUS", "STARTED", "UPDATED", "ROWS"])];
    for i in &page.instances {
        rows.push(vec![
            i.workflow.clone(),
            i.id.clone(),
            i.state.clone().unwrap_or_else(|| "?".into()),
            i.status.map_or("?", InstanceStatus::as_str).to_string(),
            time(i.started),
            time(i.updated),
            i.rows.to_string(),
        ]);
    }
    let mut out = table(&rows);
    let _ = write!(out, "{} of {}", page.instances.len(), page.total);
    match &page.next {
        Some(next) => {
            let _ = writeln!(out, "; next page: --cursor {next}");
        }
        None => out.push('\n'),
    }
    out
}

async fn show(inspector: &Inspector, m: &ArgMatches, json: bool) -> Result<String, String> {
    let id = text(m, "id").unwrap_or_default();
    let shown = inspector.show(id, text(m, "workflow")).await.map_err(message)?;
    if json {
        return to_json(&shown);
    }
    let r = &shown.row;
    let mut out = String::new();
    let _ = writeln!(out, "{} {}", r.workflow, r.id);
    let status = r.status.map_or("?", InstanceStatus::as_str);
    let _ = writeln!(out, "  state    {}", r.state.as_deref().unwrap_or("?"));
    match &shown.reason {
        Some(reason) => {
            let _ = writeln!(out, "  status   {status}: {reason}");
        }
        None => {
            let _ = writeln!(out, "  status   {status}");
        }
    }
    let _ = writeln!(out, "  started  {}", time(r.started));
    let _ = writeln!(out, "  updated  {}", time(r.updated));
    let context = shown
        .context
        .as_ref()
        .map_or_else(|| "(sealed or unreadable)".to_string(), |c| c.to_string());
    let _ = writeln!(out, "  context  {context}");
    for timer in &shown.timers {
        let _ = writeln!(
            out,
            "  timer    {} at {}",
            timer.event.as_deref().unwrap_or("?"),
            time(Some(timer.deadline))
        );
    }
    if !shown.activities.is_empty() {
        let _ = writeln!(out, "  running  the activity of {}", shown.activities.join(", "));
    }
    out.push('\n');
    let mut rows = vec![row(["SEQ", "TIME", "+MS", "STEP", "EVENT", "FROM", "TO", "NOTE"])];
    for e in &shown.timeline {
        let mut note = Vec::new();
        if let Some(a) = &e.activity {
            let took = a.duration_ms.map_or_else(String::new, |ms| format!(" after {ms} ms"));
            note.push(format!("{} {}{took}", a.name, a.outcome));
        }
        if let Some(c) = &e.compensation {
            note.push(format!("compensation {c}"));
        }
        if let Some(error) = &e.error {
            note.push(format!("error: {error}"));
        }
        for t in &e.timers {
            note.push(format!(
                "timer {} at {}",
                t.event.as_deref().unwrap_or("?"),
                time(Some(t.deadline))
            ));
        }
        rows.push(vec![
            e.seq.to_string(),
            time(e.at),
            e.after_ms.map_or_else(String::new, |ms| ms.to_string()),
            e.step.clone(),
            e.event.clone().unwrap_or_default(),
            e.from.clone().unwrap_or_default(),
            e.to.clone().unwrap_or_default(),
            note.join("; "),
        ]);
    }
    // Each row, then the attempts its call took, indented under it.
    let drawn = table(&rows);
    let mut lines = drawn.lines();
    if let Some(header) = lines.next() {
        let _ = writeln!(out, "{header}");
    }
    for (line, entry) in lines.zip(&shown.timeline) {
        let _ = writeln!(out, "{line}");
        out.push_str(&attempts(&entry.attempts));
    }
    Ok(out)
}

/// A call's attempts, one line each, indented: number, start, duration, and how it ended.
fn attempts(attempts: &[Attempt]) -> String {
    let rows: Vec<Vec<String>> = attempts
        .iter()
        .map(|a| {
            vec![
                format!("attempt {}", a.attempt),
                time(Some(a.at)),
                format_micros(a.duration_us),
                attempt_outcome(a),
            ]
        })
        .collect();
    table(&rows).lines().map(|line| format!("     {line}\n")).collect()
}

async fn stats(inspector: &Inspector, m: &ArgMatches, json: bool) -> Result<String, String> {
    let window = parse_age(text(m, "window").unwrap_or("1h"))?;
    let since = now_ms().saturating_sub(u64::try_from(window.as_millis()).unwrap_or(u64::MAX));
    let names = match text(m, "workflow") {
        Some(name) => vec![name.to_string()],
        None => inspector
            .workflows()
            .await
            .map_err(message)?
            .into_iter()
            .map(|w| w.name)
            .collect(),
    };
    let mut all = Vec::new();
    for name in &names {
        all.push(inspector.stats(name, since).await.map_err(message)?);
    }
    if json {
        return to_json(&all);
    }
    let mut out = String::new();
    for s in &all {
        let _ = writeln!(
            out,
            "{}: since {}: {} started, {} finished, {} failed, {} cancelled",
            s.workflow,
            time(Some(s.since)),
            s.started,
            s.finished,
            s.failed,
            s.cancelled
        );
        let mut rows = vec![row(["STATE", "STATUS", "INSTANCES"])];
        for c in &s.states {
            rows.push(vec![
                c.state.clone().unwrap_or_else(|| "?".into()),
                c.status.map_or("?", InstanceStatus::as_str).to_string(),
                c.count.to_string(),
            ]);
        }
        out.push_str(&table(&rows));
        if !s.activities.is_empty() {
            let mut rows = vec![row(["ACTIVITY", "STATE", "ENDED", "P50 MS", "P99 MS"])];
            for a in &s.activities {
                rows.push(vec![
                    a.activity.clone(),
                    a.state.clone(),
                    a.count.to_string(),
                    a.p50_ms.to_string(),
                    a.p99_ms.to_string(),
                ]);
            }
            out.push_str(&table(&rows));
            if s.sampled {
                let _ = writeln!(
                    out,
                    "(durations of the window's newest {} rows; the counts are exact)",
                    workflow_runtime::inspect::DURATION_ROWS
                );
            }
        }
    }
    Ok(out)
}

async fn diagram(inspector: &Inspector, m: &ArgMatches, json: bool) -> Result<String, String> {
    let workflow = text(m, "workflow").unwrap_or_default();
    let format = match text(m, "format") {
        Some("dot") => DiagramFormat::Dot,
        Some("svg") => DiagramFormat::Svg,
        _ => DiagramFormat::Mermaid,
    };
    let diagram = inspector.diagram(workflow, format).await.map_err(message)?;
    if json {
        return to_json(&diagram);
    }
    Ok(diagram.text)
}

fn row<const N: usize>(cells: [&str; N]) -> Vec<String> {
    cells.iter().map(|c| c.to_string()).collect()
}

/// Columns padded to their widest cell, two spaces apart; the last is not padded.
fn table(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for r in rows {
        let mut line = String::new();
        for (c, cell) in r.iter().enumerate() {
            if c + 1 == r.len() {
                line.push_str(cell);
            } else {
                let _ = write!(line, "{cell:<width$}  ", width = widths[c]);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// `30s`, `15m`, `2h`, `7d`, `500ms`.
fn parse_age(text: &str) -> Result<Duration, String> {
    workflow_runtime::parse_duration(text).ok_or_else(|| format!("`{text}` is not a duration (say 30s, 15m, 2h or 7d)"))
}

/// Milliseconds since the Unix epoch, or an age back from `now`.
fn parse_time(text: &str, now: u64) -> Result<u64, String> {
    if let Some(ms) = parse_time_utc(text) {
        return Ok(ms);
    }
    let age = parse_age(text).map_err(|_| {
        format!(
            "`{text}` is not a time (ms since the Unix epoch, `YYYY-MM-DDTHH:MM[:SS]` in UTC, or an age such as 2h)"
        )
    })?;
    Ok(now.saturating_sub(u64::try_from(age.as_millis()).unwrap_or(u64::MAX)))
}

/// A time in UTC, `2026-12-07 06:17:45.123`; `-` when unknown.
fn time(ms: Option<u64>) -> String {
    ms.map_or_else(|| "-".into(), format_time)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_ages() {
        assert_eq!(time(Some(0)), "1970-01-01 00:00:00.000");
        assert_eq!(time(Some(1_800_000_000_123)), "2027-01-15 08:00:00.123");
        assert_eq!(time(Some(951_782_400_000)), "2000-02-29 00:00:00.000");
        assert_eq!(time(None), "-");
        assert_eq!(parse_age("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_age("500ms"), Ok(Duration::from_millis(500)));
        assert!(parse_age("soon").is_err() && parse_age("3w").is_err() && parse_age("").is_err());
        assert_eq!(parse_time("2h", 10_000_000), Ok(10_000_000 - 7_200_000));
        assert_eq!(parse_time("1700000000000", 0), Ok(1_700_000_000_000));
        assert!(parse_time("yesterday", 0).is_err());
        assert_eq!(parse_time("2000-02-29T00:00", 0), Ok(951_782_400_000));
    }

    #[test]
    fn tables_align_their_columns() {
        let rows = vec![row(["A", "BB", "C"]), row(["long", "x", ""])];
        assert_eq!(table(&rows), "A     BB  C\nlong  x\n");
    }
}
