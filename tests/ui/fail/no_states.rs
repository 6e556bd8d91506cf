use workflow::prelude::*;

workflow! {
    workflow Order {
        context u32;
    }
}

fn main() {}
