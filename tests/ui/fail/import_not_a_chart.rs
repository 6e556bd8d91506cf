use workflow::prelude::*;

workflow! {
    pub workflow Order from "charts/order.yaml";
}

fn main() {}
