//! Compile-time diagnostics of `workflow!` (tests/ui/fail) and constructs
//! that must compile cleanly (tests/ui/pass), checked with trybuild.
//!
//! Regenerate the expected `.stderr` files with
//! `TRYBUILD=overwrite cargo test --test ui`, then read every diff.

use std::path::Path;

#[test]
fn ui() {
    charts_beside_the_cases();
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/fail/*.rs");
    t.pass("tests/ui/pass/*.rs");
}

/// trybuild compiles the cases in its own crate, `<target>/tests/trybuild/workflow`, whose
/// manifest directory is where `from "charts/.."` looks: the charts of tests/ui/charts go there.
fn charts_beside_the_cases() {
    let Some(target) = Path::new(env!("CARGO_TARGET_TMPDIR")).parent() else {
        panic!("CARGO_TARGET_TMPDIR has no parent")
    };
    let to = target.join("tests/trybuild/workflow/charts");
    std::fs::create_dir_all(&to).unwrap_or_else(|e| panic!("{}: {e}", to.display()));
    let from = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ui/charts");
    for entry in std::fs::read_dir(&from).unwrap_or_else(|e| panic!("{}: {e}", from.display())) {
        let path = entry.unwrap_or_else(|e| panic!("{e}")).path();
        if let Some(name) = path.file_name() {
            std::fs::copy(&path, to.join(name)).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        }
    }
}
