use workflow::prelude::*;

workflow! {
    pub workflow Order from "charts/bad.json";
}

fn main() {}
