use workflow::prelude::*;

workflow! {
    workflow Jobs {
        initial Work;
        events { Finish }
        parallel Work {
            state A { on Finish => B; }
            state B { on done(A) => Over; }
        }
        final Over;
    }
}

fn main() {}
