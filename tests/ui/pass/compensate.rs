// `compensate` declares an undo step: a handler method returning a future of
// `()`. It receives the output of the activity it undoes (`&u32` here); a
// compensation whose state invokes nothing (or an activity with output `()`)
// takes no output.
#![deny(warnings)]

use workflow::prelude::*;

workflow! {
    workflow Booking {
        initial Reserving;
        events { Cancel }
        state Reserving {
            invoke reserve_room -> u32 { done => Reserved / keep_room; error => Failed; }
            compensate release_room;
        }
        state Reserved {
            on Cancel => Failed;
            compensate refund_deposit;
        }
        final Failed (failure);
    }
}

struct Hotel;

impl BookingHandlers for Hotel {
    fn keep_room(&self, _ctx: &mut (), output: &u32) {
        assert_eq!(*output, 101);
    }
    async fn reserve_room(&self, _ctx: &(), _call: &ActivityCall) -> Result<u32, ActivityError> {
        Ok(101)
    }
    async fn release_room(&self, _ctx: &(), room: &u32, _call: &ActivityCall) -> Result<(), ActivityError> {
        assert_eq!(*room, 101);
        Ok(())
    }
    async fn refund_deposit(&self, _ctx: &(), _call: &ActivityCall) -> Result<(), ActivityError> {
        Err(ActivityError::new("bank closed"))
    }
}

fn main() {
    let graph = Booking::graph();
    assert_eq!(graph.states[0].compensate, Some("release_room"));
    assert_eq!(graph.states[1].compensate, Some("refund_deposit"));
    let call = ActivityCall {
        activity: "release_room",
        attempt: 1,
        key: 0,
    };
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    runtime.block_on(Hotel.release_room(&(), &101, &call)).unwrap();
    assert!(runtime.block_on(Hotel.refund_deposit(&(), &call)).is_err());
    let mut booking = Booking::default();
    let event = runtime.block_on(booking.run_activity(&Hotel)).unwrap();
    booking.handle(&event, &Hotel).unwrap();
    // By hand, the compensation is given the done event it takes the output from.
    let undo = runtime.block_on(booking.run_compensation(BookingState::Reserving, Some(&event), &Hotel));
    assert_eq!(undo, Some(Ok(())));
    let without = runtime.block_on(booking.run_compensation(BookingState::Reserving, None, &Hotel));
    assert!(matches!(without, Some(Err(e)) if !e.is_retryable()));
    let deposit = runtime.block_on(booking.run_compensation(BookingState::Reserved, None, &Hotel));
    assert!(matches!(deposit, Some(Err(e)) if e.message() == "bank closed"));
    booking.handle(&BookingEvent::Cancel, &Hotel).unwrap();
    assert_eq!(booking.state(), BookingState::Failed);
}
