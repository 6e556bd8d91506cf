// Without `context`, the context is `()` and the machine implements `Default`.
#![deny(warnings)]

use workflow::prelude::*;

workflow! {
    workflow Door {
        initial Closed;
        events { Open, Close, Kick }
        state Closed { on Open => Opened; }
        state Opened { on Close => Closed / count; on Kick => Broken; }
        final Broken;
    }
}

struct Rules;

impl DoorHandlers for Rules {
    fn count(&self, context: &mut (), _event: &Close) {
        let () = *context;
    }
}

fn main() {
    let mut door = Door::default();
    assert_eq!(door.state(), DoorState::Closed);
    let () = *door.context();
    door.handle(&DoorEvent::Open, &Rules).unwrap();
    door.handle(&Close.into(), &Rules).unwrap();
    assert_eq!(door.state(), DoorState::Closed);
    let fresh: Door = Door::new(());
    assert_eq!(fresh.state(), DoorState::Closed);
    let () = fresh.into_context();
}
