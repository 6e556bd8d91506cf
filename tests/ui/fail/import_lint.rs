use workflow::prelude::*;

workflow! {
    pub workflow Order from "charts/dead_end.json";
}

fn main() {}
