// `final NAME;`, `final NAME (failure);`, and final states with a body (even an empty one).
#![deny(warnings)]

use workflow::prelude::*;

workflow! {
    workflow Job {
        context Vec<&'static str>;
        initial Running;
        events { Succeed, Fail, Abort, Skip, Idle }
        state Running {
            on Succeed => Succeeded;
            on Fail => Failed;
            on Abort => Aborted;
            on Skip => Skipped;
            on Idle => Idled;
        }
        final Succeeded;
        final Failed (failure);
        final Aborted (failure) { entry alert; }
        final Skipped { exit never; }
        final Idled {}
    }
}

struct Ops;

impl JobHandlers for Ops {
    fn alert(&self, log: &mut Vec<&'static str>) {
        log.push("alert");
    }
    fn never(&self, _log: &mut Vec<&'static str>) {
        unreachable!("a final state is never exited");
    }
}

fn main() {
    assert!(JobState::Succeeded.is_final() && !JobState::Succeeded.is_failure());
    assert!(JobState::Failed.is_final() && JobState::Failed.is_failure());
    assert!(JobState::Aborted.is_failure() && !JobState::Skipped.is_failure());
    assert!(!JobState::Running.is_final());
    let mut job = Job::new(Vec::new());
    job.handle(&JobEvent::Abort, &Ops).unwrap();
    assert!(job.is_finished());
    assert_eq!(job.into_context(), ["alert"]);
    let mut job = Job::new(Vec::new());
    job.handle(&JobEvent::Skip, &Ops).unwrap();
    assert!(
        job.handle(&JobEvent::Succeed, &Ops).is_err(),
        "a final state accepts nothing"
    );
}
