//! The workflows the engine benchmark and examples/engine_memory.rs measure.

use workflow::prelude::*;

workflow! {
    /// Two states bouncing on two events: the cheapest possible transition.
    #[allow(no_path_to_final)]
    pub workflow PingPong {
        initial A;
        events { Ping, Pong }
        state A { on Ping => B; }
        state B { on Pong => A; }
    }
}

workflow! {
    /// Three steps, each a trivial activity, then done.
    #[allow(unhandled_error)]
    pub workflow Steps {
        initial First;
        state First { invoke one -> () { done => Second; } }
        state Second { invoke two -> () { done => Third; } }
        state Third { invoke three -> () { done => Done; } }
        final Done;
    }
}

/// No guards, no actions, activities that answer at once.
pub struct Nop;

impl PingPongHandlers for Nop {}

impl StepsHandlers for Nop {
    async fn one(&self, _ctx: &(), _call: &ActivityCall) -> Result<(), ActivityError> {
        Ok(())
    }
    async fn two(&self, _ctx: &(), _call: &ActivityCall) -> Result<(), ActivityError> {
        Ok(())
    }
    async fn three(&self, _ctx: &(), _call: &ActivityCall) -> Result<(), ActivityError> {
        Ok(())
    }
}
