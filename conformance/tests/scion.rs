//! The SCION conformance corpus, translated to `workflow!` blocks by
//! `build.rs`. Run with `cargo test -p conformance`; arguments after `--`
//! filter by substring of `group/name`. Prints one line per failure and ends
//! with `N passed, M failed`; then the round trip's line, and the differential
//! against XState's and SCION's interpreters (conformance/src/differential.rs).
//! Without the corpus it prints one line and passes, unless the `CI`
//! environment variable is set (read here, when the test runs, not when it is
//! built).

include!(concat!(env!("OUT_DIR"), "/scion_cases.rs"));

fn main() {
    let filters: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    let ci = conformance::on_ci(std::env::var_os("CI").as_deref());
    let conformance = conformance::run_all(CORPUS, CASES, &filters, ci);
    let differential = if CORPUS == conformance::Corpus::Read {
        conformance::differential::run(CASES, &filters)
    } else {
        0
    };
    std::process::exit(conformance.max(differential));
}
