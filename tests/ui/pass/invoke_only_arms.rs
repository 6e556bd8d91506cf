// An invoke with only its `done` and `error` arms: one attempt, no timeout.
#![deny(warnings)]

use workflow::prelude::*;

workflow! {
    workflow Lookup {
        initial Fetching;
        state Fetching {
            invoke fetch -> String { done => Found; error => Missing; }
        }
        final Found;
        final Missing (failure);
    }
}

struct Cache;

impl LookupHandlers for Cache {
    async fn fetch(&self, _ctx: &(), _call: &ActivityCall) -> Result<String, ActivityError> {
        Err(ActivityError::non_retryable("not cached"))
    }
}

fn main() {
    assert_eq!(Lookup::graph().states[0].invoke.unwrap().policy, RetryPolicy::ONCE);
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let mut lookup = Lookup::default();
    let event = runtime.block_on(lookup.run_activity(&Cache)).unwrap();
    let LookupEvent::FetchFailed(error) = &event else {
        panic!("expected a failure, got {event:?}")
    };
    assert_eq!((error.kind(), error.attempts()), (ErrorKind::NonRetryable, 1));
    lookup.handle(&event, &Cache).unwrap();
    assert_eq!(lookup.state(), LookupState::Missing);
    let found = LookupEvent::FetchDone("cached".into());
    assert!(matches!(&found, LookupEvent::FetchDone(text) if text == "cached"));
    let mut lookup = Lookup::default();
    assert_eq!(lookup.handle(&found, &Cache).unwrap().to(), LookupState::Found);
}
