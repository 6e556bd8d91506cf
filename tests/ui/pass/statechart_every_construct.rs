//! Every statechart construct in one public, documented workflow.
#![deny(warnings, missing_docs)]

use workflow::prelude::*;

/// The context.
#[derive(Default)]
pub struct Ctx {
    /// Counts actions.
    pub count: u32,
}

workflow! {
    /// A fulfilment with every statechart construct.
    pub workflow Fulfil {
        context Ctx;
        initial Order;
        events {
            /// Payment went through.
            Paid,
            /// Stock reserved.
            Reserved { sku: u32 },
            /// Stop everything.
            Cancel,
            /// A nudge.
            Nudge,
            /// A reminder.
            Reminder,
            /// Pause.
            Pause,
            /// Resume.
            Resume,
        }
        state Order {
            initial Charging, Reserving / counted;
            entry send Reminder after 1h as reminder;
            exit cancel reminder;
            on Cancel => Cancelled;
            on Pause => Paused;
            history deep Back => Work / counted;
            parallel Work {
                state Payment {
                    state Charging { on Paid => Charged; on Nudge | Reminder / raise Paid; }
                    final Charged;
                }
                state Stock {
                    state Reserving { on Reserved if known_sku => Held / keep_sku; on done(Payment) / counted; }
                    final Held;
                }
                on done => Decide;
            }
            state Decide {
                always if in(Order) && ready => Shipped;
                always => Waiting;
            }
            state Waiting {
                always if over && !in(Paused) / counted;
                on _ => internal Decide;
            }
        }
        state Paused { on Resume => Back; on _ / noted; }
        final Shipped;
        final Cancelled (failure);
    }
}

/// The handlers.
pub struct Rules;

impl FulfilHandlers for Rules {
    fn known_sku(&self, _ctx: &Ctx, event: &Reserved) -> bool {
        event.sku > 0
    }
    fn ready(&self, ctx: &Ctx) -> bool {
        ctx.count > 0
    }
    fn keep_sku(&self, ctx: &mut Ctx, event: &Reserved) {
        ctx.count += event.sku;
    }
    fn over(&self, ctx: &Ctx) -> bool {
        ctx.count > 1000
    }
    fn counted(&self, ctx: &mut Ctx) {
        ctx.count += 1;
    }
    fn noted(&self, ctx: &mut Ctx, event: &FulfilEvent) {
        ctx.count += event.index() as u32;
    }
}

fn main() {
    let mut m = Fulfil::new(Ctx::default());
    m.start(&Rules);
    m.handle(&FulfilEvent::Nudge, &Rules).unwrap();
    m.handle(&Reserved { sku: 7 }.into(), &Rules).unwrap();
    assert!(m.is_in(FulfilState::Shipped));
    assert!(m.is_finished());
    assert_eq!(m.take_scheduled().len(), 2);
    println!("{}", Fulfil::graph().to_dot());
}
