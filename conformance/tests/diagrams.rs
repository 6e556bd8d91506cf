//! Every workflow the repository declares, every chart it keeps and every chart of the SCION
//! corpus (as the conformance test translates it), drawn as SVG by `Graph::to_svg_counted` and
//! checked for what a drawing must be (workflow-runtime/src/diagram/svg/check.rs): no arrow
//! through a box it has no business in, no label over another or over a box, all in view.
//!
//! Set `WORKFLOW_DIAGRAMS_OUT` to a directory to keep the drawings there, to look at.

use std::fs;
use std::path::{Path, PathBuf};

use workflow_runtime::graph::text;
use workflow_runtime::interop::import::{import, Format};

#[path = "../../workflow-runtime/src/diagram/svg/check.rs"]
mod check;
#[allow(dead_code)]
#[path = "../src/translate.rs"]
mod translate;

/// The lints a drawn chart may trip: a drawing is wanted of any workflow that compiles.
const ALLOW: &str = "#[allow(dead_end, unreachable_state, no_path_to_final, shadowed_transition, unhandled_error, \
                     eventless_loop, never_done, decision_without_else)]";

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Every `.rs` and chart file under `dir`, sorted, without build output and the macro's
/// compile-fail cases (`tests/ui/fail`, and the broken charts of `tests/ui/charts` they read).
fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else { return };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for path in paths {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if path.is_dir() {
            let broken = name == "charts" && dir.ends_with("ui");
            if !matches!(name, "target" | "node_modules" | "fail") && !broken && !name.starts_with('.') {
                files(&path, out);
            }
        } else if name.ends_with(".rs")
            || name.ends_with(".scxml")
            || (name.ends_with(".json") && path.parent().is_some_and(|p| p.ends_with("charts")))
        {
            out.push(path);
        }
    }
}

/// The `workflow! { .. }` blocks of Rust source `text` (invocations that start a line, not
/// ones in comments or strings), without those that read a chart file (`from "..."`), whose
/// charts are drawn from their files.
fn blocks(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut at = 0;
    for line in text.split_inclusive('\n') {
        let start = at;
        at += line.len();
        let trimmed = line.trim_start();
        if !(trimmed.starts_with("workflow! {") || trimmed.starts_with("workflow!{")) {
            continue;
        }
        let open = start + line.find('{').unwrap_or(0);
        let mut depth = 0;
        for (i, c) in text[open..].char_indices() {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        let block = &text[open + 1..open + i];
                        if !block.contains(" from \"") {
                            out.push(block.to_string());
                        }
                        break;
                    }
                }
                _ => {}
            }
        }
    }
    out
}

/// Every workflow to draw: where it comes from and its graph's text.
fn corpus() -> (Vec<(String, String)>, Vec<String>) {
    let root = repository();
    let mut graphs = Vec::new();
    let mut errors = Vec::new();
    let mut paths = Vec::new();
    files(&root, &mut paths);
    for path in paths {
        let shown = path.strip_prefix(&root).unwrap_or(&path).display().to_string();
        let Ok(text) = fs::read_to_string(&path) else {
            errors.push(format!("{shown}: unreadable"));
            continue;
        };
        let blocks = match Format::of_path(&path) {
            Some(format) if !shown.ends_with(".rs") => match import(format, &text) {
                Ok(chart) => vec![format!("{ALLOW}\n{}", chart.block("", chart.name().unwrap_or("Chart")))],
                Err(e) => {
                    errors.push(format!("{shown}: {e}"));
                    continue;
                }
            },
            _ => blocks(&text),
        };
        for block in blocks {
            match conformance::graph_text(&block) {
                Ok(graph) => graphs.push((shown.clone(), graph)),
                Err(e) => errors.push(format!("{shown}: {e}\n{block}")),
            }
        }
    }
    let scion = std::env::var_os("WORKFLOW_CONFORMANCE_DIR")
        .map(|d| Path::new(env!("CARGO_MANIFEST_DIR")).join(d))
        .unwrap_or_else(|| root.join("../shared/conformance/scion"));
    let mut charts = Vec::new();
    files(&scion, &mut charts);
    for path in charts.iter().filter(|p| p.extension().is_some_and(|e| e == "scxml")) {
        let (Some(group), Some(name)) = (
            path.parent().and_then(|p| p.file_name()).and_then(|n| n.to_str()),
            path.file_stem().and_then(|n| n.to_str()),
        ) else {
            continue;
        };
        let shown = format!("scion/{group}/{name}");
        let read = |p: PathBuf| fs::read_to_string(p).map_err(|e| e.to_string());
        let translated = read(path.clone())
            .and_then(|x| translate::parse_chart(&x))
            .and_then(|chart| {
                let script = read(path.with_extension("json")).and_then(|j| translate::parse_script(&j))?;
                translate::translate(group, name, &chart, &script)
            });
        // A case the conformance test cannot translate is its failure, reported there.
        if let Ok(t) = translated {
            match conformance::graph_text(&t.dsl) {
                Ok(graph) => graphs.push((shown, graph)),
                Err(e) => errors.push(format!("{shown}: {e}")),
            }
        }
    }
    (graphs, errors)
}

#[test]
fn every_workflow_is_drawn_without_overlaps() {
    let (graphs, errors) = corpus();
    assert!(errors.is_empty(), "{}", errors.join("\n"));
    // The repository's own (the examples', the tests', the benches', the web view's: 97 when
    // this was written), and the corpus's where it is (86 charts, a few not translated).
    let scion = graphs.iter().filter(|(origin, _)| origin.starts_with("scion/")).count();
    assert!(
        graphs.len() - scion >= 90,
        "only {} of the repository's workflows found",
        graphs.len() - scion
    );
    assert!(scion == 0 || scion >= 70, "only {scion} SCION charts drawn");
    println!(
        "{} of the repository's workflows and {scion} SCION charts",
        graphs.len() - scion
    );
    let keep = std::env::var_os("WORKFLOW_DIAGRAMS_OUT").map(PathBuf::from);
    let mut faults = Vec::new();
    let (mut nested, mut parallel, mut loops) = (0, 0, 0);
    for (origin, encoded) in graphs {
        let graph = text::decode(Box::leak(encoded.into_boxed_str())).expect("the macro's graph decodes");
        let counts: Vec<u64> = (0..graph.states.len() as u64).map(|s| s * 7 % 5).collect();
        let svg = graph.to_svg_counted(&counts);
        nested += usize::from(graph.states.iter().any(|s| s.parent.is_some()));
        parallel += usize::from(svg.contains(" parallel"));
        loops += usize::from(
            graph
                .transitions
                .iter()
                .any(|t| t.targets.is_empty() || t.targets.contains(&t.source)),
        );
        if let Some(dir) = &keep {
            let file = format!("{}-{}.svg", origin.replace(['/', '.'], "_"), graph.name);
            fs::write(dir.join(file), &svg).expect("the directory to keep drawings in is writable");
        }
        faults.extend(
            check::faults(&svg)
                .into_iter()
                .map(|f| format!("{origin} {}: {f}", graph.name)),
        );
    }
    println!("{nested} with nested states, {parallel} with parallel ones, {loops} with self-loops");
    assert!(
        nested >= 10 && parallel >= 5 && loops >= 5,
        "{nested} {parallel} {loops}"
    );
    assert!(faults.is_empty(), "{} faults:\n{}", faults.len(), faults.join("\n"));
}
