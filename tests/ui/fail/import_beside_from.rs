use workflow::prelude::*;

workflow! {
    pub workflow Order from "charts/dead_end.json";
    context u32;
    state Extra {}
}

fn main() {}
