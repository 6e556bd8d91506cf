// `/ a, b` action lists, entry and exit actions, and their order.
#![deny(warnings)]

use workflow::prelude::*;

workflow! {
    workflow Lamp {
        context Vec<String>;
        initial Off;
        events { Toggle, Unplug }
        state Off {
            entry log_enter_off;
            exit log_exit_off, log_leaving;
            on Toggle => On / first, second, third;
            on Unplug => Unplugged;
        }
        state On {
            entry log_enter_on, log_entered;
            exit log_exit_on;
            on Toggle => Off / first;
        }
        final Unplugged { entry log_unplugged; }
    }
}

struct Log;

impl LampHandlers for Log {
    fn log_enter_off(&self, log: &mut Vec<String>) {
        log.push("enter Off".into());
    }
    fn log_exit_off(&self, log: &mut Vec<String>) {
        log.push("exit Off".into());
    }
    fn log_leaving(&self, log: &mut Vec<String>) {
        log.push("leaving".into());
    }
    fn first(&self, log: &mut Vec<String>, _event: &Toggle) {
        log.push("first".into());
    }
    fn second(&self, log: &mut Vec<String>, _event: &Toggle) {
        log.push("second".into());
    }
    fn third(&self, log: &mut Vec<String>, _event: &Toggle) {
        log.push("third".into());
    }
    fn log_enter_on(&self, log: &mut Vec<String>) {
        log.push("enter On".into());
    }
    fn log_entered(&self, log: &mut Vec<String>) {
        log.push("entered".into());
    }
    fn log_exit_on(&self, log: &mut Vec<String>) {
        log.push("exit On".into());
    }
    fn log_unplugged(&self, log: &mut Vec<String>) {
        log.push("unplugged".into());
    }
}

fn main() {
    let mut lamp = Lamp::new(Vec::new());
    lamp.handle(&LampEvent::Toggle, &Log).unwrap();
    assert_eq!(
        lamp.context(),
        &["exit Off", "leaving", "first", "second", "third", "enter On", "entered"]
    );
    lamp.context_mut().clear();
    lamp.handle(&LampEvent::Toggle, &Log).unwrap();
    assert_eq!(lamp.context(), &["exit On", "first", "enter Off"]);
    lamp.context_mut().clear();
    lamp.handle(&LampEvent::Unplug, &Log).unwrap();
    assert_eq!(lamp.context(), &["exit Off", "leaving", "unplugged"]);
}
