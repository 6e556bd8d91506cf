// An action or guard used on several events receives the whole event enum.
#![deny(warnings)]

use workflow::prelude::*;

workflow! {
    workflow Chat {
        context Vec<String>;
        initial Online;
        events { Message { text: String }, Ping, Leave }
        state Online {
            on Message if allowed / record;
            on Ping if allowed / record;
            on Leave => Offline / record;
        }
        final Offline;
    }
}

struct Log;

impl ChatHandlers for Log {
    fn allowed(&self, log: &Vec<String>, event: &ChatEvent) -> bool {
        log.len() < 10 && !matches!(event, ChatEvent::Leave)
    }
    fn record(&self, log: &mut Vec<String>, event: &ChatEvent) {
        match event {
            ChatEvent::Message(Message { text }) => log.push(text.clone()),
            other => log.push(other.name().to_string()),
        }
    }
}

fn main() {
    let mut chat = Chat::new(Vec::new());
    chat.handle(&Message { text: "hi".into() }.into(), &Log).unwrap();
    chat.handle(&ChatEvent::Ping, &Log).unwrap();
    chat.handle(&ChatEvent::Leave, &Log).unwrap();
    assert_eq!(chat.context(), &["hi", "Ping", "Leave"]);
}
