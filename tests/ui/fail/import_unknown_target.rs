use workflow::prelude::*;

workflow! {
    pub workflow Order from "charts/unknown_target.scxml";
}

fn main() {}
