//! The machine of a statechart: nested or parallel states, history,
//! eventless transitions or internal events. Its state is a configuration
//! of active states, and the runtime's SCXML interpreter drives it; this
//! module generates only the dispatch of guards and actions by index.

use proc_macro2::{Literal, TokenStream};
use quote::quote;
use syn::Ident;

use super::Names;
use crate::model::{Action, StateKind, Trigger};
use crate::validate::{Input, Validated};

/// The machine type and its impls.
pub(super) fn machine(v: &Validated, names: &Names, header: TokenStream, common: TokenStream) -> TokenStream {
    let m = &v.model;
    let Names {
        machine,
        state,
        event,
        handlers,
        context,
    } = names;
    let vis = &m.vis;
    let words = super::words(m);
    let slots = Literal::usize_unsuffixed(m.histories);
    let configuration = quote!(::workflow::Configuration<#state, #words>);
    let core = quote!(::workflow::chart::Core<#words, #slots>);
    let finals: Vec<Literal> = m
        .states
        .iter()
        .enumerate()
        .filter(|(_, s)| s.parent.is_none() && matches!(s.kind, StateKind::Final { .. }))
        .map(|(i, _)| Literal::usize_unsuffixed(i))
        .collect();
    let is_finished = if finals.is_empty() {
        quote!(false)
    } else {
        quote!(#(self.core.active.contains(#finals))||*)
    };
    let run = quote! {
        ::workflow::chart::Run::<Self, H, #words, #slots> {
            core: &mut self.core,
            context: &mut self.context,
            handlers,
            scheduled: &mut self.scheduled,
        }
    };
    let chart_impl = chart_impl(v, names);
    let run_activity = super::run_activity_fn(v, names, true, |alternatives| {
        let arms = alternatives.into_iter().map(|(id, future)| match id {
            Some(id) => {
                let id = Literal::usize_unsuffixed(id);
                quote!(if self.core.active.contains(#id) { #future } else)
            }
            None => quote!({ #future }),
        });
        quote!(#(#arms)*)
    });
    quote! {
        #header
        #vis struct #machine {
            core: #core,
            scheduled: ::std::vec::Vec<::workflow::Scheduled<#event>>,
            context: #context,
        }

        impl #machine {
            /// A machine in its initial configuration (the initial state, its
            /// ancestors and default descendants), owning `context`. No action
            /// runs until [`start`](Self::start).
            pub fn new(context: #context) -> Self {
                Self::from_active(Self::chart_tables().initial(), context)
            }

            /// A machine in `state`, its ancestors and default descendants, for
            /// tests. No action runs.
            pub fn with_state(state: #state, context: #context) -> Self {
                Self::from_active(::workflow::chart::enter::<#words>(Self::graph(), state.index()), context)
            }

            /// The interpreter's tables of this workflow, derived once.
            fn chart_tables() -> &'static ::workflow::chart::Tables<#words> {
                static TABLES: ::std::sync::OnceLock<::workflow::chart::Tables<#words>> = ::std::sync::OnceLock::new();
                TABLES.get_or_init(|| ::workflow::chart::Tables::new(Self::graph()))
            }

            fn from_active(active: ::workflow::chart::StateSet<#words>, context: #context) -> Self {
                Self {
                    core: ::workflow::chart::Core::new(active),
                    scheduled: ::std::vec::Vec::new(),
                    context,
                }
            }

            /// Runs the initial macrostep: the entry actions of the initial
            /// configuration, then every eventless transition and internal
            /// event they lead to. Call it once, before the first event.
            pub fn start<H: #handlers + ?::core::marker::Sized>(&mut self, handlers: &H) {
                (#run).start();
            }

            /// Delivers one external event as a macrostep: the transitions it
            /// enables (one per active atomic state, inner before outer,
            /// conflicts resolved in document order), then every eventless
            /// transition and internal event that follows. An event that
            /// enables nothing is rejected and nothing changes; one that leads
            /// into an eventless loop is rejected with
            /// [`Reason::EventlessLoop`](::workflow::Reason::EventlessLoop)
            /// once the loop is cut short.
            #[inline]
            pub fn handle<H: #handlers + ?::core::marker::Sized>(
                &mut self,
                event: &#event,
                handlers: &H,
            ) -> ::core::result::Result<::workflow::Step<#state>, ::workflow::Rejected<#state>> {
                match (#run).handle(event) {
                    ::core::result::Result::Ok(step) => {
                        ::core::result::Result::Ok(::workflow::Step::new(step.transition, step.exited))
                    }
                    ::core::result::Result::Err(rejection) => {
                        ::core::result::Result::Err(rejection.rejected(event.index()))
                    }
                }
            }

            /// The active states.
            pub const fn state(&self) -> #configuration {
                ::workflow::Configuration::new(self.core.active)
            }

            /// Whether `state` is active (the SCXML `In()` predicate).
            pub const fn is_in(&self, state: #state) -> bool {
                self.core.active.contains(state.index())
            }

            /// The active atomic states, in document order.
            pub fn active_states(&self) -> impl ::core::iter::Iterator<Item = #state> + '_ {
                ::workflow::Configuration::<#state, #words>::new(self.core.active).atomic()
            }

            /// Whether a top-level final state is active.
            pub const fn is_finished(&self) -> bool {
                #is_finished
            }

            /// The timers that `send` and `cancel` actions asked for since the
            /// last call, oldest first. The engine turns them into durable
            /// timers; a hand-written driver delivers each `Send` event after
            /// its delay.
            pub fn take_scheduled(&mut self) -> ::std::vec::Vec<::workflow::Scheduled<#event>> {
                ::core::mem::take(&mut self.scheduled)
            }

            #common
            #run_activity
        }

        #chart_impl

    }
}

/// `impl Chart<H> for Machine`: guards and actions by index.
fn chart_impl(v: &Validated, names: &Names) -> TokenStream {
    let m = &v.model;
    let words = super::words(m);
    let Names {
        machine,
        event,
        handlers,
        context,
        ..
    } = names;
    let guard_arms: Vec<TokenStream> = m
        .transitions
        .iter()
        .enumerate()
        .filter_map(|(t, transition)| {
            let guard = transition.guard.as_ref()?;
            let index = Literal::usize_unsuffixed(t);
            let call = guard_call(v, names, guard);
            Some(quote!(#index => #call,))
        })
        .collect();
    let guard_body = if guard_arms.is_empty() {
        quote!(true)
    } else {
        quote!(match transition { #(#guard_arms)* _ => true })
    };
    let guard_params = if guard_arms.is_empty() {
        quote!(_handlers: &H, _context: &#context, _transition: usize, _event: ::core::option::Option<&#event>)
    } else {
        quote!(handlers: &H, context: &#context, transition: usize, event: ::core::option::Option<&#event>)
    };
    let site = quote!(::workflow::chart::Site);
    let mut act_arms = Vec::new();
    for (id, state) in m.states.iter().enumerate() {
        let index = Literal::usize_unsuffixed(id);
        if !state.entry.is_empty() {
            let body = actions(v, names, &state.entry);
            act_arms.push(quote!(#site::Entry(#index) => { #(#body)* }));
        }
        if !state.exit.is_empty() {
            let body = actions(v, names, &state.exit);
            act_arms.push(quote!(#site::Exit(#index) => { #(#body)* }));
        }
    }
    for (t, transition) in m.transitions.iter().enumerate() {
        if !transition.actions.is_empty() {
            let index = Literal::usize_unsuffixed(t);
            let body = actions(v, names, &transition.actions);
            act_arms.push(quote!(#site::Transition(#index) => { #(#body)* }));
        }
    }
    let act_body = if act_arms.is_empty() {
        quote!()
    } else {
        quote!(match site { #(#act_arms)* _ => {} })
    };
    let uses = |needle: &str| act_arms.iter().any(|arm| arm.to_string().contains(needle));
    let param = |name: &str, used: bool| {
        let ident = if used {
            Ident::new(name, proc_macro2::Span::call_site())
        } else {
            quote::format_ident!("_{}", name)
        };
        quote!(#ident)
    };
    let (p_handlers, p_context, p_site, p_event, p_effects) = (
        param("handlers", uses("handlers")),
        param("context", uses("context")),
        param("site", !act_arms.is_empty()),
        param("event", uses("event")),
        param("effects", uses("effects")),
    );
    // What the workflow uses: the interpreter's code for the rest folds away.
    let history = m.states.iter().any(|s| matches!(s.kind, StateKind::History { .. }));
    let exit_actions = m.states.iter().any(|s| !s.exit.is_empty());
    let eventless = m.transitions.iter().any(|t| t.trigger == Trigger::Always);
    let guards = m.transitions.iter().any(|t| t.is_guarded());
    let wildcard = m.transitions.iter().any(|t| t.trigger == Trigger::Any);
    let raises = m
        .states
        .iter()
        .flat_map(|s| s.entry.iter().chain(&s.exit))
        .chain(m.transitions.iter().flat_map(|t| &t.actions))
        .any(|a| matches!(a, Action::Raise { .. }));
    quote! {
        impl<H: #handlers + ?::core::marker::Sized> ::workflow::chart::Chart<H, #words> for #machine {
            type Event = #event;
            type Context = #context;

            const HISTORY: bool = #history;
            const EXIT_ACTIONS: bool = #exit_actions;
            const EVENTLESS: bool = #eventless;
            const GUARDS: bool = #guards;
            const WILDCARD: bool = #wildcard;
            const RAISES: bool = #raises;

            fn tables() -> &'static ::workflow::chart::Tables<#words> {
                #machine::chart_tables()
            }

            fn event_index(event: &#event) -> usize {
                event.index()
            }

            fn guard(#guard_params) -> bool {
                #guard_body
            }

            fn act(
                #p_handlers: &H,
                #p_context: &mut #context,
                #p_site: ::workflow::chart::Site,
                #p_event: ::core::option::Option<&#event>,
                #p_effects: &mut ::workflow::chart::Effects<'_, #event>,
            ) {
                #act_body
            }
        }
    }
}

fn guard_call(v: &Validated, names: &Names, guard: &Ident) -> TokenStream {
    let event = &names.event;
    match super::handler_input(v, guard) {
        Some(Input::Event(e)) => {
            let variant = &v.model.events[*e].name;
            if v.model.events[*e].fields.is_some() {
                quote!(
                    ::core::matches!(event, ::core::option::Option::Some(#event::#variant(payload)) if handlers.#guard(context, payload))
                )
            } else {
                quote!(handlers.#guard(context, &#variant))
            }
        }
        Some(Input::AnyEvent) => quote!(event.is_some_and(|event| handlers.#guard(context, event))),
        _ => quote!(handlers.#guard(context)),
    }
}

/// The statements of an action list.
fn actions(v: &Validated, names: &Names, list: &[Action]) -> Vec<TokenStream> {
    let event = &names.event;
    list.iter()
        .map(|action| match action {
            Action::Call(name) => match super::handler_input(v, name) {
                Some(Input::Event(e)) => {
                    let variant = &v.model.events[*e].name;
                    if v.model.events[*e].fields.is_some() {
                        quote!(if let ::core::option::Option::Some(#event::#variant(payload)) = event { handlers.#name(context, payload); })
                    } else {
                        quote!(handlers.#name(context, &#variant);)
                    }
                }
                Some(Input::AnyEvent) => {
                    quote!(if let ::core::option::Option::Some(event) = event { handlers.#name(context, event); })
                }
                Some(input @ (Input::Output(_) | Input::Error)) => {
                    let variants = outcome_variants(v, input);
                    quote!(if let ::core::option::Option::Some(#(#event::#variants(payload))|*) = event { handlers.#name(context, payload); })
                }
                Some(Input::Nothing) | None => quote!(handlers.#name(context);),
            },
            Action::Raise { event: e, .. } => {
                let variant = &v.model.events[*e].name;
                quote!(effects.raise(#event::#variant);)
            }
            Action::Send { event: e, delay, id, .. } => {
                let variant = &v.model.events[*e].name;
                let ms = Literal::u64_unsuffixed(u64::try_from(delay.as_millis()).unwrap_or(u64::MAX));
                quote!(effects.send(#id, #event::#variant, ::core::time::Duration::from_millis(#ms));)
            }
            Action::Cancel { id } => quote!(effects.cancel(#id);),
        })
        .collect()
}

/// The activity events that carry an action's input: the done events of the
/// activities with that output type, or every failed event.
fn outcome_variants<'a>(v: &'a Validated, input: &Input) -> Vec<&'a Ident> {
    v.activities
        .iter()
        .filter_map(|a| match input {
            Input::Output(ty) => crate::validate::same_type(&a.output, ty).then_some(&a.done_variant),
            _ => Some(&a.failed_variant),
        })
        .collect()
}
