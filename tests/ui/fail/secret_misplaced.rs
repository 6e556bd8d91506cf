// `#[secret]` marks a payload field, whose value the payload's `Debug`
// redacts; on an event it is refused with where it goes, and it takes no
// arguments.
use workflow::prelude::*;

workflow! {
    workflow Login {
        initial Start;
        events {
            #[secret]
            Attempt { user: String, password: String },
            Reset { #[secret(partial)] token: String },
        }
        state Start { on Attempt | Reset => Done; }
        final Done;
    }
}

fn main() {}
