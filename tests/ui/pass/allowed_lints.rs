// Each graph lint can be switched off on the state it concerns, or on the workflow.
// (`pub`, so that rustc does not call the unreachable states dead code.)
#![deny(warnings)]

use workflow::prelude::*;

workflow! {
    #[allow(unreachable_state)]
    pub workflow Lints {
        initial Start;
        events { Go, Stop, Call, Spin, Decide }
        state Start {
            on Go => Looping;
            on Stop => Stuck;
            on Call => Calling;
            on Spin => Spinning;
            on Decide => Deciding;
        }
        #[allow(eventless_loop)]
        state Spinning { always => Spinning; on Stop => Done; }
        #[allow(decision_without_else)]
        state Deciding { always if ready => Done; }
        #[allow(dead_end)]
        state Stuck {}
        /// A loop with no exit.
        #[allow(no_path_to_final)]
        state Looping { on Go => Looping; }
        #[allow(unhandled_error, shadowed_transition)]
        state Calling {
            invoke call -> () { done => Done; }
            on Stop => Done;
            on Stop => Stuck;
        }
        state Orphan { on Go => Done; }
        final Done;
    }
}

workflow! {
    #[allow(shadowed_transition)]
    #[allow(dead_end, unreachable_state)]
    pub workflow Quiet {
        initial A;
        events { Step }
        state A {
            on Step => B;
            on Step => C;
        }
        state B {}
        final C;
        final D;
    }
}

struct Phone;

impl LintsHandlers for Phone {
    fn ready(&self, _ctx: &()) -> bool {
        true
    }
    async fn call(&self, _ctx: &(), _call: &ActivityCall) -> Result<(), ActivityError> {
        Ok(())
    }
}

impl QuietHandlers for () {}

fn main() {
    let mut lints = Lints::default();
    lints.handle(&LintsEvent::Call, &Phone).unwrap();
    assert_eq!(
        lints.handle(&LintsEvent::Stop, &Phone).unwrap().to(),
        LintsState::Done,
        "the first `on Stop` wins"
    );
    let mut deciding = Lints::default();
    deciding.handle(&LintsEvent::Decide, &Phone).unwrap();
    assert_eq!(deciding.state().atomic().collect::<Vec<_>>(), [LintsState::Done]);
    let mut quiet = Quiet::default();
    assert_eq!(quiet.handle(&QuietEvent::Step, &()).unwrap().to(), QuietState::B);
}
