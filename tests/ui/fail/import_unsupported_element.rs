use workflow::prelude::*;

workflow! {
    pub workflow Order from "charts/unsupported.scxml";
}

fn main() {}
