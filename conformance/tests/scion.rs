//! The SCION conformance corpus, translated to `workflow!` blocks by
//! `build.rs`. Run with `cargo test -p conformance`; arguments after `--`
//! filter by substring of `group/name`. Prints one line per failure and ends
//! with `N passed, M failed`; then the round trip's line, and the differential
//! against XState's and SCION's interpreters (conformance/src/differential.rs).

include!(concat!(env!("OUT_DIR"), "/scion_cases.rs"));

fn main() {
    let filters: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    let conformance = conformance::run_all(CORPUS_ERROR, CASES, &filters);
    let differential = if CORPUS_ERROR.is_none() {
        conformance::differential::run(CASES, &filters)
    } else {
        0
    };
    std::process::exit(conformance.max(differential));
}
