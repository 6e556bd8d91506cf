// `on EVENT / action;` and `on EVENT if guard / action;` run actions without leaving the state.
#![deny(warnings)]

use workflow::prelude::*;

workflow! {
    workflow Counter {
        context u32;
        initial Counting;
        events { Tick, Add { n: u32 }, Stop }
        state Counting {
            entry never_reentered;
            exit leave;
            on Tick / bump;
            on Add if small / add;
            on Stop => Stopped;
        }
        final Stopped;
    }
}

struct Rules;

impl CounterHandlers for Rules {
    fn never_reentered(&self, _count: &mut u32) {
        panic!("a targetless transition does not re-enter");
    }
    fn leave(&self, count: &mut u32) {
        *count += 1000;
    }
    fn bump(&self, count: &mut u32, _event: &Tick) {
        *count += 1;
    }
    fn small(&self, _count: &u32, event: &Add) -> bool {
        event.n < 10
    }
    fn add(&self, count: &mut u32, event: &Add) {
        *count += event.n;
    }
}

fn main() {
    let mut counter = Counter::new(0);
    let step = counter.handle(&CounterEvent::Tick, &Rules).unwrap();
    assert_eq!(
        (step.from(), step.to(), step.exited()),
        (CounterState::Counting, CounterState::Counting, false)
    );
    counter.handle(&Add { n: 5 }.into(), &Rules).unwrap();
    assert!(
        counter.handle(&Add { n: 50 }.into(), &Rules).is_err(),
        "the guard says no"
    );
    assert_eq!(*counter.context(), 6);
    counter.handle(&CounterEvent::Stop, &Rules).unwrap();
    assert_eq!(*counter.context(), 1006);
}
