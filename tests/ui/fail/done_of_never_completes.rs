use workflow::prelude::*;

workflow! {
    workflow Jobs {
        initial Work;
        events { Finish }
        parallel Work {
            state RegionA { state A1 { on Finish => A2; } state A2 { on Finish => A1; } }
            state RegionB { state B1 { on done(RegionA) => Over; } }
        }
        final Over;
    }
}

fn main() {}
