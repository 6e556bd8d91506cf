//! Service workflows as declarative, compile-time checked state machines.
//!
//! Write one [`workflow!`] block: states, typed events, transitions with
//! guards and actions, activities (service calls) with retry and timeout,
//! timers, compensation and final states. The macro checks it at compile time
//! and turns it into plain Rust: a state enum, an event enum with a payload
//! struct per event, a handler trait you implement, and a machine type whose
//! synchronous `handle` is as fast as a hand-written `match`.
//!
//! ```
//! use workflow::prelude::*;
//!
//! workflow! {
//!     /// A door that must be closed gently.
//!     pub workflow Door {
//!         context u32;                       // how many times it opened
//!         initial Closed;
//!         events { Push { force: u8 }, Slam }
//!         state Closed {
//!             on Push if gentle => Open / count;
//!         }
//!         state Open {
//!             on Slam => Broken;
//!             after 30s => Closed;
//!         }
//!         final Broken (failure);
//!     }
//! }
//!
//! struct Rules;
//! impl DoorHandlers for Rules {
//!     fn gentle(&self, _opened: &u32, event: &Push) -> bool {
//!         event.force < 5
//!     }
//!     fn count(&self, opened: &mut u32, _event: &Push) {
//!         *opened += 1;
//!     }
//! }
//!
//! let mut door = Door::new(0);
//! assert!(door.handle(&Push { force: 9 }.into(), &Rules).is_err()); // the guard says no
//! let step = door.handle(&Push { force: 1 }.into(), &Rules).unwrap();
//! assert_eq!((step.from(), step.to()), (DoorState::Closed, DoorState::Open));
//! assert_eq!(*door.context(), 1);
//! door.handle(&DoorEvent::OpenAfter30s, &Rules).unwrap(); // the timer fired
//! assert_eq!(door.state(), DoorState::Closed);
//! assert!(Door::graph().to_mermaid().contains("Open --> Closed: after 30s"));
//! ```
//!
//! The [`workflow!`] macro's documentation has the grammar, every handler
//! signature and the checks; the README has, besides, an example per
//! construct, every compile-time message and the runtime.

pub use workflow_macros::workflow;
pub use workflow_runtime::*;

/// The README's examples, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

/// Everything a workflow definition and its handlers need in scope.
pub mod prelude {
    pub use workflow_macros::workflow;
    pub use workflow_runtime::{
        ActivityCall, ActivityError, ErrorKind, Machine, Rejected, RetryPolicy, Step, Workflow,
    };
}
