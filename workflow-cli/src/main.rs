//! `workflow`: the command-line tool of the `workflow` crates.
//!
//! `workflow import CHART` prints the `workflow!` block of an SCXML (`.scxml`, `.xml`) or XState
//! (`.json`) chart, to paste into a Rust file and edit; errors name the chart's file, line and
//! column. `workflow workflows|list|show|stats|diagram` read a store from outside the engine
//! ([`inspect`]); `workflow serve` serves the store's web view (read-only, on 127.0.0.1 unless
//! `--bind` says otherwise). Each subcommand is a function of [`run`]'s `match`, so more can join
//! it.
//!
//! Exit codes: 0 done; 1 the subcommand failed (an unreadable chart or store, an unknown id),
//! with one line on stderr; 2 a usage error.

mod inspect;
mod serve;

use std::ffi::OsString;
use std::path::Path;
use std::process::ExitCode;

use clap::{Arg, ArgMatches, Command};
use workflow_runtime::interop::import::{import, Format};

fn command() -> Command {
    Command::new("workflow")
        .about("Tools for `workflow!` state machines")
        .subcommand_required(true)
        .subcommand(
            Command::new("import")
                .about("Prints the `workflow!` block of an SCXML or XState chart")
                .arg(
                    Arg::new("chart")
                        .required(true)
                        .help("The chart: .scxml or .xml (SCXML), .json (XState)"),
                )
                .arg(
                    Arg::new("name")
                        .long("name")
                        .help("The workflow's name [default: the chart's name, else the file's, in CamelCase]"),
                )
                .arg(
                    Arg::new("vis")
                        .long("vis")
                        .default_value("pub")
                        .help("The workflow's visibility (`pub`, `pub(crate)`, `\"\"` for private)"),
                )
                .arg(
                    Arg::new("format")
                        .long("format")
                        .value_parser(["scxml", "xstate"])
                        .help("The chart's format [default: from the extension]"),
                ),
        )
        .subcommands(inspect::commands())
        .subcommand(serve::command())
}

fn main() -> ExitCode {
    match run(std::env::args_os()) {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(Failure::Usage(e)) => {
            // Help and version go to stdout with success, usage errors to stderr.
            let _ = e.print();
            if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(Failure::Message(message)) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Why a run printed nothing.
#[derive(Debug)]
enum Failure {
    /// The command line is wrong, or asked for help.
    Usage(clap::Error),
    /// The subcommand failed.
    Message(String),
}

/// Runs the command line `args` (the program's name first) and returns what it prints.
fn run(args: impl IntoIterator<Item = OsString>) -> Result<String, Failure> {
    let matches = command().try_get_matches_from(args).map_err(Failure::Usage)?;
    match matches.subcommand() {
        Some(("import", m)) => import_chart(m).map_err(Failure::Message),
        Some(("serve", m)) => serve::run(m).map_err(Failure::Message),
        Some((name, m)) => inspect::run(name, m)
            .unwrap_or_else(|| Err("no such subcommand".into()))
            .map_err(Failure::Message),
        None => Err(Failure::Message("no such subcommand".into())),
    }
}

fn import_chart(m: &ArgMatches) -> Result<String, String> {
    let chart = m.get_one::<String>("chart").map(String::as_str).unwrap_or_default();
    let path = Path::new(chart);
    let format = match m.get_one::<String>("format").map(String::as_str) {
        Some("scxml") => Format::Scxml,
        Some(_) => Format::XState,
        None => Format::of_path(path).ok_or_else(|| {
            format!("{chart}: say --format scxml or --format xstate (the extension is neither .scxml, .xml nor .json)")
        })?,
    };
    let text = std::fs::read_to_string(path).map_err(|e| format!("{chart}: {e}"))?;
    let imported = import(format, &text).map_err(|e| format!("{chart}:{e}"))?;
    let name = match m.get_one::<String>("name") {
        Some(name) => name.clone(),
        None => match imported.name() {
            Some(name) => camel_case(name),
            None => camel_case(&path.file_stem().map(|s| s.to_string_lossy()).unwrap_or_default()),
        },
    };
    if name.is_empty()
        || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        || name.starts_with(|c: char| c.is_ascii_digit())
    {
        return Err(format!("{chart}: `{name}` cannot name a workflow; say --name NAME"));
    }
    let vis = m.get_one::<String>("vis").map(String::as_str).unwrap_or_default();
    let mut out = String::from("workflow! {\n");
    for line in imported.block(vis, &name).lines() {
        out.push_str("    ");
        out.push_str(line);
        out.push('\n');
    }
    out.push_str("}\n");
    Ok(out)
}

/// `order-flow` and `order_flow` become `OrderFlow`: a workflow names a type.
fn camel_case(name: &str) -> String {
    name.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut chars = w.chars();
            chars
                .next()
                .map_or_else(String::new, |c| c.to_ascii_uppercase().to_string() + chars.as_str())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<OsString> {
        std::iter::once("workflow")
            .chain(list.iter().copied())
            .map(OsString::from)
            .collect()
    }

    #[test]
    fn names_come_from_the_chart_or_the_file() {
        assert_eq!(camel_case("order-flow"), "OrderFlow");
        assert_eq!(camel_case("light"), "Light");
        assert_eq!(camel_case("Job"), "Job");
        assert_eq!(camel_case("--"), "");
    }

    #[test]
    fn usage_errors_and_failures_are_reported() {
        assert!(matches!(run(args(&[])), Err(Failure::Usage(_))));
        assert!(matches!(run(args(&["import"])), Err(Failure::Usage(_))));
        assert!(matches!(
            run(args(&["import", "x.scxml", "--format", "yaml"])),
            Err(Failure::Usage(_))
        ));
        let Err(Failure::Message(m)) = run(args(&["import", "chart.yaml"])) else {
            panic!()
        };
        assert_eq!(
            m,
            "chart.yaml: say --format scxml or --format xstate (the extension is neither .scxml, .xml nor .json)"
        );
        let Err(Failure::Message(m)) = run(args(&["import", "no/such.scxml"])) else {
            panic!()
        };
        assert!(m.starts_with("no/such.scxml: "), "{m}");
    }
}
