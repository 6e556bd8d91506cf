//! Compile-time diagnostics of `workflow!` (tests/ui/fail) and constructs
//! that must compile cleanly (tests/ui/pass), checked with trybuild.
//!
//! Regenerate the expected `.stderr` files with
//! `TRYBUILD=overwrite cargo test --test ui`, then read every diff.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/fail/*.rs");
    t.pass("tests/ui/pass/*.rs");
}
