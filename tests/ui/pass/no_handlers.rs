// A workflow that calls nothing: its handler trait is empty and `()` implements it.
#![deny(warnings)]

use workflow::prelude::*;

workflow! {
    workflow Light {
        initial Red;
        events { Next, PowerCut }
        state Red { on Next => Green; }
        state Green { on Next => Yellow; after 30s => Yellow; }
        state Yellow { on Next => Red; on PowerCut => Off; }
        final Off;
    }
}

impl LightHandlers for () {}

fn main() {
    let mut light = Light::default();
    for expected in [LightState::Green, LightState::Yellow, LightState::Red] {
        assert_eq!(light.handle(&LightEvent::Next, &()).unwrap().to(), expected);
    }
    light.handle(&LightEvent::Next, &()).unwrap();
    assert_eq!(
        light.handle(&LightEvent::GreenAfter30s, &()).unwrap().to(),
        LightState::Yellow
    );
    light.handle(&LightEvent::PowerCut, &()).unwrap();
    assert!(light.is_finished());
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    assert!(runtime.block_on(light.run_activity(&())).is_none());
}
