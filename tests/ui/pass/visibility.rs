// A `pub` workflow is usable outside its module; a private one stays inside.
#![deny(warnings)]

mod shop {
    use workflow::prelude::*;

    workflow! {
        /// Public: every generated item is `pub`.
        pub workflow Cart {
            initial Open;
            events { Add { sku: u32 }, Checkout }
            state Open {
                on Add / remember;
                on Checkout => Closed;
            }
            final Closed;
        }
    }

    workflow! {
        workflow Audit {
            initial Idle;
            events { Log }
            state Idle { on Log => Done; }
            final Done;
        }
    }

    impl AuditHandlers for () {}

    pub fn audit() -> bool {
        let mut audit = Audit::new(());
        audit.handle(&AuditEvent::Log, &()).is_ok() && audit.state() == AuditState::Done
    }
}

use shop::{Add, Cart, CartEvent, CartHandlers, CartState};

struct Memory;

impl CartHandlers for Memory {
    fn remember(&self, _ctx: &mut (), event: &Add) {
        assert_eq!(event.sku, 7);
    }
}

fn main() {
    let mut cart = Cart::new(());
    cart.handle(&Add { sku: 7 }.into(), &Memory).unwrap();
    cart.handle(&CartEvent::Checkout, &Memory).unwrap();
    assert_eq!(cart.state(), CartState::Closed);
    assert!(shop::audit());
}
