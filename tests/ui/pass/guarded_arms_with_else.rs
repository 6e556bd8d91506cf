// Several guarded arms on one event, tried in order, then an unguarded else.
#![deny(warnings)]

use workflow::prelude::*;

workflow! {
    workflow Triage {
        context Vec<&'static str>;
        initial Waiting;
        events { Arrive { severity: u8 }, Leave }
        state Waiting {
            on Arrive if critical => Surgery / note_critical;
            on Arrive if serious => Ward;
            on Arrive if minor => Waiting / note_minor;
            on Arrive => Home;
            on Leave => Home;
        }
        state Surgery { on Leave => Ward; }
        state Ward { on Leave => Home; }
        final Home;
    }
}

struct Rules;

impl TriageHandlers for Rules {
    fn critical(&self, _log: &Vec<&'static str>, event: &Arrive) -> bool {
        event.severity >= 9
    }
    fn serious(&self, _log: &Vec<&'static str>, event: &Arrive) -> bool {
        event.severity >= 5
    }
    fn minor(&self, log: &Vec<&'static str>, event: &Arrive) -> bool {
        event.severity >= 2 && log.is_empty()
    }
    fn note_critical(&self, log: &mut Vec<&'static str>, _event: &Arrive) {
        log.push("critical");
    }
    fn note_minor(&self, log: &mut Vec<&'static str>, _event: &Arrive) {
        log.push("minor");
    }
}

fn arrive(severity: u8) -> TriageEvent {
    Arrive { severity }.into()
}

fn main() {
    let mut t = Triage::new(Vec::new());
    assert_eq!(t.handle(&arrive(9), &Rules).unwrap().to(), TriageState::Surgery);
    let mut t = Triage::new(Vec::new());
    assert_eq!(t.handle(&arrive(6), &Rules).unwrap().to(), TriageState::Ward);
    let mut t = Triage::new(Vec::new());
    assert_eq!(t.handle(&arrive(3), &Rules).unwrap().to(), TriageState::Waiting);
    assert_eq!(t.context(), &["minor"]);
    assert_eq!(
        t.handle(&arrive(3), &Rules).unwrap().to(),
        TriageState::Home,
        "minor fails, the else fires"
    );
}
