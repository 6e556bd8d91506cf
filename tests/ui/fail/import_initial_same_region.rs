use workflow::prelude::*;

workflow! {
    pub workflow Order from "charts/initial_same_region.scxml";
}

fn main() {}
