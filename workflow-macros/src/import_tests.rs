//! `from "chart"` through the whole expansion (apart from `import.rs`, which the conformance
//! runner compiles too, without `expand`).

use quote::quote;

#[test]
fn the_expansion_includes_the_chart_so_cargo_rebuilds_when_it_changes() {
    let expansion = crate::expand(quote! {
        pub workflow Job from "../tests/charts/job.scxml";
    })
    .to_string();
    let chart = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/charts/job.scxml");
    let include = format!("include_bytes ! ({:?})", chart.to_string_lossy());
    assert!(expansion.contains(&include), "{include} missing from the expansion");
    assert!(expansion.contains("enum JobState"), "the machine is generated");
    assert!(!expansion.contains("compile_error"));
}

#[test]
fn a_chart_that_cannot_be_read_is_a_compile_error() {
    let expansion = crate::expand(quote! {
        workflow Job from "no/such/chart.scxml";
    })
    .to_string();
    assert!(expansion.contains("compile_error"), "{expansion}");
    assert!(
        expansion.contains("cannot read the chart `no/such/chart.scxml`"),
        "{expansion}"
    );
}
