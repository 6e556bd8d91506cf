// Doc comments and rustc's own lints on the workflow reach the generated machine.
#![deny(warnings)]

use workflow::prelude::*;

workflow! {
    /// Never used: `dead_code` is allowed on the machine type.
    #[allow(dead_code)]
    #[derive(Debug)]
    workflow Unused {
        initial Only;
        final Only;
    }
}

workflow! {
    /// Both our lints and rustc's in one attribute.
    #[allow(dead_end, no_path_to_final, clippy::all)]
    #[must_use]
    workflow Mixed {
        initial Start;
        events { Go }
        state Start { on Go => Stuck; }
        state Stuck {}
    }
}

fn main() {
    let mut mixed = Mixed::default();
    mixed.handle(&MixedEvent::Go, &()).unwrap();
    assert_eq!(mixed.state(), MixedState::Stuck);
    assert!(Mixed::graph().to_mermaid().contains("Start --> Stuck"));
}

impl MixedHandlers for () {}
