use workflow::prelude::*;

workflow! {
    pub workflow Order from "charts/bad.scxml";
}

fn main() {}
