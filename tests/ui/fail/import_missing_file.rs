use workflow::prelude::*;

workflow! {
    pub workflow Order from "charts/missing.scxml";
}

fn main() {}
