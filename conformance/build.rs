//! Translates the SCION corpus into `workflow!` blocks: see `src/translate.rs`.
//!
//! The corpus directory is `$WORKFLOW_CONFORMANCE_DIR` (relative paths are
//! taken from this package's directory), by default
//! `<CARGO_MANIFEST_DIR>/../../shared/conformance/scion`. A missing corpus does
//! not fail the build: the generated runner has no cases and says so when it
//! runs (it passes, or fails on CI: the `CI` variable is read by the test
//! when it runs, so changing it rebuilds nothing). A missing directory is
//! watched too (cargo reruns this script while the path does not exist), so
//! a corpus put there later is found by the next build.
//!
//! `WORKFLOW_CONFORMANCE_SKIP` (comma- or space-separated `group/name` list)
//! leaves cases out of the build, e.g. to get the rest compiling while one
//! block trips the macro; skipped cases are reported as failed.

#[path = "src/translate.rs"]
mod translate;

use std::fs;
use std::path::{Path, PathBuf};

const ENV_DIR: &str = "WORKFLOW_CONFORMANCE_DIR";
const ENV_SKIP: &str = "WORKFLOW_CONFORMANCE_SKIP";
const OUT_FILE: &str = "scion_cases.rs";

fn main() {
    println!("cargo:rerun-if-env-changed={ENV_DIR}");
    println!("cargo:rerun-if-env-changed={ENV_SKIP}");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=src/translate.rs");

    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR")).join(OUT_FILE);
    let dir = match std::env::var_os(ENV_DIR) {
        Some(d) if !d.is_empty() => manifest_dir.join(d),
        _ => manifest_dir.join("../../shared/conformance/scion"),
    };
    println!("cargo:rerun-if-changed={}", dir.display());

    let shown = shown(&dir);
    let text = if !dir.is_dir() {
        translate::generate_missing(&shown.display().to_string())
    } else {
        match collect(&dir) {
            Ok(cases) => translate::generate(&shown.display().to_string(), &cases),
            Err(why) => translate::generate_unreadable(&format!(
                "could not read the SCION conformance corpus at {} ({ENV_DIR}): {why}",
                shown.display()
            )),
        }
    };
    fs::write(&out, text).unwrap_or_else(|e| panic!("writing {}: {e}", out.display()));
}

/// `dir` without `..` and symbolic links, also when it does not exist: its
/// nearest existing ancestor canonicalized, then the rest.
fn shown(dir: &Path) -> PathBuf {
    let mut rest = Vec::new();
    let mut at = dir;
    loop {
        if let Ok(real) = at.canonicalize() {
            return rest.iter().rev().fold(real, |p, c| p.join(c));
        }
        match (at.parent(), at.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_os_string());
                at = parent;
            }
            // `..` at the end, or no existing ancestor: leave it as it is.
            _ => return dir.to_path_buf(),
        }
    }
}

fn read(path: &Path) -> Result<String, String> {
    println!("cargo:rerun-if-changed={}", path.display());
    fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))
}

/// Every `<group>/<name>.scxml` under `dir`, plus any row of `INDEX.tsv` whose
/// files are missing (those become failures), sorted by group and name.
fn collect(dir: &Path) -> Result<Vec<translate::SourceCase>, String> {
    let skip: Vec<String> = std::env::var(ENV_SKIP)
        .unwrap_or_default()
        .split([',', ' ', '\n'])
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    let mut names: Vec<(String, String)> = Vec::new();
    let mut groups: Vec<PathBuf> = fs::read_dir(dir)
        .map_err(|e| e.to_string())?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    groups.sort();
    for g in groups {
        println!("cargo:rerun-if-changed={}", g.display());
        let group = g.file_name().unwrap().to_string_lossy().into_owned();
        for f in fs::read_dir(&g)
            .map_err(|e| e.to_string())?
            .filter_map(|e| e.ok().map(|e| e.path()))
        {
            if f.extension().is_some_and(|x| x == "scxml") {
                names.push((group.clone(), f.file_stem().unwrap().to_string_lossy().into_owned()));
            }
        }
    }
    let index = dir.join("INDEX.tsv");
    if index.is_file() {
        for line in read(&index)?.lines().skip(1) {
            let mut cols = line.split('\t');
            if let (Some(g), Some(n)) = (cols.next(), cols.next()) {
                if !g.is_empty() && !names.iter().any(|(a, b)| a == g && b == n) {
                    names.push((g.to_string(), n.to_string()));
                }
            }
        }
    }
    names.sort();
    names.dedup();
    if names.is_empty() {
        return Err("no `<group>/<name>.scxml` files in it".into());
    }
    Ok(names
        .into_iter()
        .map(|(group, name)| {
            let base = dir.join(&group).join(&name);
            let full = format!("{group}/{name}");
            translate::SourceCase {
                skip: skip
                    .contains(&full)
                    .then(|| format!("left out of the build by {ENV_SKIP}")),
                scxml: read(&base.with_extension("scxml")),
                json: read(&base.with_extension("json")),
                group,
                name,
            }
        })
        .collect())
}
