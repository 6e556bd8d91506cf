// Raw identifiers (keywords as names) in every identifier position: the
// workflow, the context type, states, events, fields, guards, actions,
// activities, resources, compensations, timers' states, `send` ids. Names
// derived from them drop the `r#` (`r#static` generates `StaticDone`), and
// names as text (`name()`, the graph) are the bare words.
#![deny(warnings)]
#![allow(non_camel_case_types)]

use workflow::prelude::*;

mod flat {
    use super::*;

    #[derive(Default)]
    pub struct r#type {
        pub r#calls: u32,
    }

    workflow! {
        pub workflow r#Order {
            context r#type;
            initial r#loop;
            events { r#match { r#fn: u8 }, r#loop, r#Wait }
            state r#loop {
                entry r#enum;
                on r#match if r#if => r#async / r#struct;
                on r#loop if r#else / r#impl;
                after 5s => r#await;
            }
            state r#async {
                invoke r#static -> u8 { retry 1; resource r#mut; done => r#await / r#use; error => r#dyn / r#mod; }
                compensate r#return;
            }
            state r#await { on r#Wait => r#dyn; }
            final r#dyn (failure);
        }
    }

    pub struct Rules;

    impl r#OrderHandlers for Rules {
        fn r#if(&self, _context: &r#type, event: &r#match) -> bool {
            event.r#fn > 0
        }
        fn r#else(&self, _context: &r#type, _event: &r#loop) -> bool {
            true
        }
        fn r#enum(&self, context: &mut r#type) {
            context.r#calls += 1;
        }
        fn r#struct(&self, context: &mut r#type, event: &r#match) {
            context.r#calls += u32::from(event.r#fn);
        }
        fn r#impl(&self, context: &mut r#type, _event: &r#loop) {
            context.r#calls += 100;
        }
        fn r#use(&self, context: &mut r#type, output: &u8) {
            context.r#calls += u32::from(*output);
        }
        fn r#mod(&self, _context: &mut r#type, _error: &ActivityError) {}
        async fn r#static(&self, _context: &r#type, call: &ActivityCall) -> Result<u8, ActivityError> {
            assert_eq!(call.activity, "static");
            Ok(7)
        }
        async fn r#return(&self, _context: &r#type, _output: &u8, _call: &ActivityCall) -> Result<(), ActivityError> {
            Ok(())
        }
    }
}

mod chart {
    use super::*;

    workflow! {
        pub workflow r#Chart {
            initial r#ref;
            events { r#in, r#as, r#where }
            state r#ref {
                initial r#const;
                history r#while => r#const;
                state r#const {
                    on r#in if r#unsafe => r#become / send r#where after 1s as r#for, cancel r#for;
                    on r#as => r#while;
                }
                state r#become {
                    always if r#true => r#final;
                    always => r#final;
                }
                final r#final;
                on r#where => r#break / raise r#as;
            }
            final r#break;
        }
    }

    pub struct Rules;

    impl r#ChartHandlers for Rules {
        fn r#unsafe(&self, _context: &(), _event: &r#in) -> bool {
            true
        }
        fn r#true(&self, _context: &()) -> bool {
            false
        }
    }
}

fn main() {
    use flat::{r#Order, r#OrderEvent, r#OrderState, r#match, Rules};

    let mut order = r#Order::new(flat::r#type::default());
    order.start(&Rules);
    assert_eq!(order.context().r#calls, 1);
    order.handle(&r#OrderEvent::r#loop, &Rules).unwrap();
    assert_eq!(order.context().r#calls, 101);
    order.handle(&r#match { r#fn: 2 }.into(), &Rules).unwrap();
    assert_eq!(order.state(), r#OrderState::r#async);
    assert_eq!(order.state().name(), "async");
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let event = runtime.block_on(order.run_activity(&Rules)).unwrap();
    assert!(matches!(event, r#OrderEvent::StaticDone(7)));
    assert_eq!(event.name(), "StaticDone");
    order.handle(&event, &Rules).unwrap();
    assert_eq!(order.state(), r#OrderState::r#await);
    assert_eq!(r#OrderEvent::loopAfter5s.name(), "loopAfter5s");
    let graph = r#Order::graph();
    assert_eq!(graph.name, "Order");
    assert_eq!(graph.states[1].invoke.as_ref().unwrap().activity, "static");
    assert_eq!(graph.states[1].invoke.as_ref().unwrap().resource, Some("mut"));
    assert_eq!(graph.states[1].compensate, Some("return"));
    assert_eq!(graph.events[0].fields, [("fn", "u8")]);

    use chart::{r#Chart, r#ChartEvent, r#ChartState};
    let mut chart = r#Chart::default();
    chart.start(&chart::Rules);
    chart.handle(&r#ChartEvent::r#in, &chart::Rules).unwrap();
    assert!(chart.is_in(r#ChartState::r#final));
    let scheduled = chart.take_scheduled();
    assert_eq!(scheduled.len(), 2, "{scheduled:?}");
    chart.handle(&r#ChartEvent::r#where, &chart::Rules).unwrap();
    assert!(chart.is_finished() && chart.is_in(r#ChartState::r#break));
    assert_eq!(r#ChartState::r#while.name(), "while");
}
