//! The machine of a flat workflow: a one-byte state enum and a `handle`
//! that matches on the event first, then on the state, with every guard and
//! action called directly — as fast as a hand-written `match`.

use proc_macro2::{Literal, TokenStream};
use quote::quote;
use syn::Ident;

use super::{handler_input, Names};
use crate::model::{Action, StateId, Trigger};
use crate::validate::{Input, Validated};

/// The machine type and its inherent impl.
pub(super) fn machine(v: &Validated, names: &Names, header: TokenStream, common: TokenStream) -> TokenStream {
    let m = &v.model;
    let Names {
        machine,
        state,
        handlers,
        context,
        ..
    } = names;
    let vis = &m.vis;
    let initial = &m.states[m.initial].name;
    let entry: Vec<TokenStream> = calls(&m.states[m.initial].entry)
        .map(|a| quote!(handlers.#a(&mut self.context);))
        .collect();
    let start_param = if entry.is_empty() {
        quote!(_handlers)
    } else {
        quote!(handlers)
    };
    let handle = handle_fn(v, names);
    let run_activity = super::run_activity_fn(v, names, false, |alternatives| match &alternatives[..] {
        // One alternative (no activity, or the only state's) needs no `match`.
        [(_, only)] => only.clone(),
        _ => {
            let arms = alternatives.iter().map(|(id, future)| match id {
                Some(id) => {
                    let name = &m.states[*id].name;
                    quote!(#state::#name => #future,)
                }
                None => quote!(_ => #future,),
            });
            quote!(match self.state { #(#arms)* })
        }
    });
    quote! {
        #header
        #vis struct #machine {
            state: #state,
            context: #context,
        }

        impl #machine {
            /// A machine in the initial state, owning `context`. No action runs
            /// until [`start`](Self::start).
            pub const fn new(context: #context) -> Self {
                Self { state: #state::#initial, context }
            }

            /// A machine in any state, for tests and for restoring a saved instance.
            pub const fn with_state(state: #state, context: #context) -> Self {
                Self { state, context }
            }

            /// Runs the entry actions of the initial state. Call it once,
            /// before the first event.
            pub fn start<H: #handlers + ?::core::marker::Sized>(&mut self, #start_param: &H) {
                #(#entry)*
            }

            /// The current state.
            pub const fn state(&self) -> #state {
                self.state
            }

            /// Whether `state` is the current state.
            pub fn is_in(&self, state: #state) -> bool {
                self.state == state
            }

            /// The active states: the current one.
            pub fn active_states(&self) -> impl ::core::iter::Iterator<Item = #state> {
                ::core::iter::once(self.state)
            }

            /// Whether the machine has reached a final state.
            pub const fn is_finished(&self) -> bool {
                self.state.is_final()
            }

            #common
            #handle
            #run_activity
        }
    }
}

/// The handler methods among `actions` (a flat workflow has no built-ins).
fn calls(actions: &[Action]) -> impl Iterator<Item = &Ident> {
    actions.iter().filter_map(Action::call)
}

/// The transitions of each state on one trigger, as `(state, transitions)`.
type Groups = Vec<(StateId, Vec<usize>)>;

/// Groups the transitions on `trigger` by source state. Those after an
/// unguarded one never fire; `transition_chain` leaves them out.
fn groups(v: &Validated, trigger: impl Fn(&Trigger) -> bool) -> Groups {
    let mut groups: Groups = Vec::new();
    for (id, state) in v.model.states.iter().enumerate() {
        let list: Vec<usize> = state
            .transitions
            .iter()
            .copied()
            .filter(|t| trigger(&v.model.transitions[*t].trigger))
            .collect();
        if !list.is_empty() {
            groups.push((id, list));
        }
    }
    groups
}

fn handle_fn(v: &Validated, names: &Names) -> TokenStream {
    let m = &v.model;
    let Names {
        state, event, handlers, ..
    } = names;
    let reject = quote!(::core::result::Result::Err(::workflow::Rejected::new(
        from,
        event.index()
    )));
    let mut arms = Vec::new();
    let mut variant_count = 0;
    let mut uses_handlers = false;
    // Inside an event's arm its index is known: a constant.
    let reject_known = |index: usize| {
        let index = Literal::usize_unsuffixed(index);
        quote!(::core::result::Result::Err(::workflow::Rejected::new(from, #index)))
    };
    let mut arm = |index: usize, pattern: TokenStream, groups: Groups, binding: bool, arms: &mut Vec<TokenStream>| {
        let reject = reject_known(index);
        let covered = groups.len() == m.states.len();
        let state_arms = groups.into_iter().map(|(source, list)| {
            let name = &m.states[source].name;
            let body = transition_chain(v, names, &list, &reject, &mut uses_handlers);
            quote!(#state::#name => #body)
        });
        let state_arms: Vec<TokenStream> = state_arms.collect();
        if state_arms.is_empty() {
            return;
        }
        let rest = (!covered).then(|| quote!(_ => #reject,));
        let pattern = if binding { quote!(#pattern(payload)) } else { pattern };
        arms.push(quote!(#pattern => match from { #(#state_arms,)* #rest }));
    };
    for (id, e) in m.events.iter().enumerate() {
        variant_count += 1;
        let name = &e.name;
        let groups = groups(v, |t| matches!(t, Trigger::Events(list) if list.contains(&id)));
        let binding = e.fields.is_some() && groups_need_payload(v, &groups);
        let pattern = if e.fields.is_some() && !binding {
            quote!(#event::#name(_))
        } else {
            quote!(#event::#name)
        };
        arm(id, pattern, groups, binding, &mut arms);
    }
    for (i, a) in v.activities.iter().enumerate() {
        variant_count += 2;
        let invoked_here = |s: StateId| v.activity_of(s).is_some_and(|x| x.name == a.name);
        let done = m.events.len() + 2 * i;
        for (index, variant, trigger) in [
            (done, &a.done_variant, Trigger::Done),
            (done + 1, &a.failed_variant, Trigger::Error),
        ] {
            let groups: Groups = groups(v, |t| *t == trigger)
                .into_iter()
                .filter(|(s, _)| invoked_here(*s))
                .collect();
            let binding = groups_need_payload(v, &groups);
            let pattern = if binding {
                quote!(#event::#variant)
            } else {
                quote!(#event::#variant(_))
            };
            arm(index, pattern, groups, binding, &mut arms);
        }
    }
    for (j, timer) in v.timers.iter().enumerate() {
        variant_count += 1;
        let variant = &timer.variant;
        let groups: Groups = groups(v, |t| *t == Trigger::After(timer.delay))
            .into_iter()
            .filter(|(s, _)| *s == timer.state)
            .collect();
        let index = m.events.len() + 2 * v.activities.len() + j;
        arm(index, quote!(#event::#variant), groups, false, &mut arms);
    }
    let body = if variant_count == 0 {
        quote!(match *event {})
    } else {
        let rest = (arms.len() < variant_count).then(|| quote!(_ => #reject,));
        quote! {
            let from = self.state;
            match event { #(#arms,)* #rest }
        }
    };
    let handlers_param = if uses_handlers {
        quote!(handlers)
    } else {
        quote!(_handlers)
    };
    quote! {
        /// Delivers one event: takes the first transition of the current state
        /// whose trigger matches and whose guard holds, running the exit
        /// actions, the transition's actions and the entry actions in that
        /// order. An event the state does not accept is rejected and nothing
        /// changes.
        #[inline]
        pub fn handle<H: #handlers + ?::core::marker::Sized>(
            &mut self,
            event: &#event,
            #handlers_param: &H,
        ) -> ::core::result::Result<::workflow::Step<#state>, ::workflow::Rejected<#state>> {
            #body
        }
    }
}

/// Whether any guard or action of these transitions takes the event's payload.
fn groups_need_payload(v: &Validated, groups: &Groups) -> bool {
    groups.iter().flat_map(|(_, list)| list).any(|&t| {
        let transition = &v.model.transitions[t];
        transition.guard.iter().chain(calls(&transition.actions)).any(|name| {
            matches!(
                handler_input(v, name),
                Some(Input::Event(_) | Input::Output(_) | Input::Error)
            )
        })
    })
}

/// `if guard { A } else if guard { B } else { C }` over one state's
/// transitions on one trigger, ending in a rejection when every one is guarded.
fn transition_chain(
    v: &Validated,
    names: &Names,
    list: &[usize],
    reject: &TokenStream,
    uses_handlers: &mut bool,
) -> TokenStream {
    let mut chain = TokenStream::new();
    let mut closed = false;
    for (i, &t) in list.iter().enumerate() {
        let transition = &v.model.transitions[t];
        let body = transition_body(v, names, t, uses_handlers);
        let else_token = (i > 0).then(|| quote!(else));
        match &transition.guard {
            Some(guard) => {
                *uses_handlers = true;
                let arg = handler_arg(v, guard);
                chain.extend(quote!(#else_token if handlers.#guard(&self.context #arg) { #body }));
            }
            None if i == 0 => {
                chain = body;
                closed = true;
            }
            None => {
                chain.extend(quote!(else { #body }));
                closed = true;
            }
        }
        if closed {
            break;
        }
    }
    if !closed {
        chain.extend(quote!(else { #reject }));
    }
    quote!({ #chain })
}

/// `, payload` or `, event` or nothing, as the handler's input needs.
fn handler_arg(v: &Validated, name: &Ident) -> TokenStream {
    match handler_input(v, name) {
        Some(Input::Event(e)) if v.model.events[*e].fields.is_none() => {
            let unit = &v.model.events[*e].name;
            quote!(, &#unit)
        }
        Some(Input::Event(_) | Input::Output(_) | Input::Error) => quote!(, payload),
        Some(Input::AnyEvent) => quote!(, event),
        Some(Input::Nothing) | None => TokenStream::new(),
    }
}

fn transition_body(v: &Validated, names: &Names, t: usize, uses_handlers: &mut bool) -> TokenStream {
    let m = &v.model;
    let state = &names.state;
    let transition = &m.transitions[t];
    let index = Literal::usize_unsuffixed(t);
    let call = |action: &Ident| {
        let arg = handler_arg(v, action);
        quote!(handlers.#action(&mut self.context #arg);)
    };
    let actions = calls(&transition.actions).map(call);
    *uses_handlers |= !transition.actions.is_empty();
    match transition.target() {
        None => quote! {
            #(#actions)*
            ::core::result::Result::Ok(::workflow::Step::<#state>::new(#index, false))
        },
        Some(target) => {
            let exits: Vec<TokenStream> = calls(&m.states[transition.source].exit).map(call).collect();
            let entries: Vec<TokenStream> = calls(&m.states[target].entry).map(call).collect();
            *uses_handlers |= !exits.is_empty() || !entries.is_empty();
            let target = &m.states[target].name;
            quote! {
                #(#exits)*
                #(#actions)*
                #(#entries)*
                self.state = #state::#target;
                ::core::result::Result::Ok(::workflow::Step::<#state>::new(#index, true))
            }
        }
    }
}
