//! Stage 4: the Rust a validated workflow becomes.
//!
//! Only what must be per-workflow is generated: the state and event enums,
//! the payload structs, the handler trait, the machine with its `handle` and
//! `run_activity`, and the static graph. Everything generic lives in
//! `workflow_runtime`, reached through the `::workflow` facade.

use proc_macro2::{Literal, Span, TokenStream};
use quote::{format_ident, quote, quote_spanned, ToTokens};
use syn::{Ident, Type};

use workflow_runtime::graph::{
    EventInfo, EventKind, Graph, InvokeInfo, StateInfo, StateKind as GraphKind, TransitionInfo, TransitionRange,
    Trigger as GraphTrigger,
};
use workflow_runtime::RetryPolicy;

mod chart;
mod flat;

use crate::model::{same, text, Action, Invoke, StateId, StateKind, Transition, Trigger};
use crate::validate::{Handler, Input, Validated};

/// Names of the generated items.
struct Names {
    machine: Ident,
    state: Ident,
    event: Ident,
    handlers: Ident,
    context: Type,
}

pub fn generate(v: &Validated) -> TokenStream {
    let m = &v.model;
    let machine = m.name.clone();
    let names = Names {
        state: format_ident!("{}State", machine),
        event: format_ident!("{}Event", machine),
        handlers: format_ident!("{}Handlers", machine, span = at(machine.span())),
        context: m.context.clone().unwrap_or_else(|| syn::parse_quote!(())),
        machine,
    };
    let payloads = payload_structs(v);
    let state_enum = state_enum(v, &names);
    let event_enum = event_enum(v, &names);
    let handler_trait = handler_trait(v, &names);
    let machine = machine_type(v, &names);
    quote! {
        #payloads
        #state_enum
        #event_enum
        #handler_trait
        #machine
    }
}

fn serde_derive() -> TokenStream {
    if cfg!(feature = "serde") {
        quote! {
            #[derive(::workflow::serde::Serialize, ::workflow::serde::Deserialize)]
            #[serde(crate = "::workflow::serde")]
        }
    } else {
        TokenStream::new()
    }
}

fn doc(text: String) -> TokenStream {
    quote!(#[doc = #text])
}

fn has_doc(attrs: &[syn::Attribute]) -> bool {
    attrs.iter().any(|a| a.path().is_ident("doc"))
}

/// `Serialize` and `Deserialize` for a unit payload with the `serde` feature:
/// the derives' format (a unit struct) through `workflow::serde_impls`.
fn unit_struct_serde(name: &Ident) -> TokenStream {
    if !cfg!(feature = "serde") {
        return TokenStream::new();
    }
    let text = text(name);
    quote! {
        impl ::workflow::serde::Serialize for #name {
            fn serialize<S: ::workflow::serde::Serializer>(&self, serializer: S) -> ::core::result::Result<S::Ok, S::Error> {
                serializer.serialize_unit_struct(#text)
            }
        }

        impl<'de> ::workflow::serde::Deserialize<'de> for #name {
            fn deserialize<D: ::workflow::serde::Deserializer<'de>>(deserializer: D) -> ::core::result::Result<Self, D::Error> {
                ::workflow::serde_impls::unit_struct(deserializer, #text).map(|()| Self)
            }
        }
    }
}

/// One struct per declared event: the payload guards and actions receive.
/// Spanned at the event's name, where a clash with another item is reported.
fn payload_structs(v: &Validated) -> TokenStream {
    let m = &v.model;
    let vis = &m.vis;
    let serde = serde_derive();
    let workflow = m.name.to_string();
    m.events
        .iter()
        .map(|event| {
            let name = &event.name;
            let attrs = &event.attrs;
            let default_doc =
                (!has_doc(attrs)).then(|| doc(format!("The payload of event `{name}` of workflow [`{workflow}`].")));
            match &event.fields {
                None => {
                    let unit_serde = unit_struct_serde(name);
                    quote_spanned! {at(name.span())=>
                        #default_doc
                        #(#attrs)*
                        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
                        #vis struct #name;

                        #unit_serde
                    }
                }
                Some(declared) => {
                    let debug = redacting_debug(name, declared, &event.secret);
                    let fields = declared.iter().map(|field| {
                        let mut field = field.clone();
                        if matches!(field.vis, syn::Visibility::Inherited) {
                            field.vis = vis.clone();
                        }
                        if !has_doc(&field.attrs) {
                            let text = format!(
                                "The `{}` of event `{name}`.",
                                field.ident.as_ref().map(text).unwrap_or_default()
                            );
                            field.attrs.push(syn::parse_quote!(#[doc = #text]));
                        }
                        field
                    });
                    let derive_debug = debug.is_none().then(|| quote_spanned!(at(name.span())=> , Debug));
                    quote_spanned! {at(name.span())=>
                        #default_doc
                        #(#attrs)*
                        #[derive(Clone #derive_debug)]
                        #serde
                        #vis struct #name { #(#fields),* }

                        #debug
                    }
                }
            }
        })
        .collect()
}

/// The payload's `Debug` when fields are marked `#[secret]`: as derived, but
/// those fields print as a [`Secret`](::workflow::Secret) does. `None`
/// without secret fields (the derive serves).
fn redacting_debug(name: &Ident, fields: &[syn::Field], secret: &[bool]) -> Option<TokenStream> {
    if !secret.contains(&true) {
        return None;
    }
    let type_name = text(name);
    let entries = fields.iter().zip(secret).map(|(field, &secret)| {
        let ident = field.ident.as_ref()?;
        let label = text(ident);
        Some(if secret {
            quote!(.field(#label, &::workflow::Secret::new(())))
        } else {
            quote!(.field(#label, &self.#ident))
        })
    });
    Some(quote! {
        impl ::core::fmt::Debug for #name {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                f.debug_struct(#type_name) #(#entries)* .finish()
            }
        }
    })
}

/// `Serialize` and `Deserialize` for the state enum with the `serde` feature:
/// the derives' format (a unit variant named as the state) through
/// `workflow::serde_impls`, one line each, no derive macro run.
fn state_serde(v: &Validated, state: &Ident) -> TokenStream {
    if !cfg!(feature = "serde") {
        return TokenStream::new();
    }
    let type_name = state.to_string();
    let names = v.model.states.iter().map(|s| text(&s.name));
    quote! {
        impl ::workflow::serde::Serialize for #state {
            fn serialize<S: ::workflow::serde::Serializer>(&self, serializer: S) -> ::core::result::Result<S::Ok, S::Error> {
                serializer.serialize_unit_variant(#type_name, *self as u32, self.name())
            }
        }

        impl<'de> ::workflow::serde::Deserialize<'de> for #state {
            fn deserialize<D: ::workflow::serde::Deserializer<'de>>(deserializer: D) -> ::core::result::Result<Self, D::Error> {
                let index = ::workflow::serde_impls::deserialize(deserializer, #type_name, &[#(#names),*])?;
                Self::ALL.get(index).copied().ok_or_else(|| {
                    <D::Error as ::workflow::serde::de::Error>::custom("a state index out of range")
                })
            }
        }
    }
}

fn state_enum(v: &Validated, names: &Names) -> TokenStream {
    let m = &v.model;
    let Names { state, machine, .. } = names;
    let vis = &m.vis;
    let serde = state_serde(v, state);
    let count = m.states.len();
    let variants = m.states.iter().map(|s| {
        let name = &s.name;
        let attrs = &s.attrs;
        let default_doc = (!has_doc(attrs)).then(|| {
            doc(match s.kind {
                StateKind::Atomic => format!("State `{name}`."),
                StateKind::Compound { .. } => format!("Compound state `{name}`."),
                StateKind::Parallel => format!("Parallel state `{name}`: its regions are active at once."),
                StateKind::History { deep: false, .. } => {
                    format!("History of `{name}`'s parent (never active itself).")
                }
                StateKind::History { deep: true, .. } => {
                    format!("Deep history of `{name}`'s parent (never active itself).")
                }
                StateKind::Final { failure: false } => format!("Final state `{name}`."),
                StateKind::Final { failure: true } => format!("Final state `{name}`: the workflow failed."),
            })
        });
        quote!(#default_doc #(#attrs)* #name)
    });
    let all = m.states.iter().map(|s| &s.name);
    let name_arms = m.states.iter().map(|s| {
        let name = &s.name;
        let text = text(name);
        quote!(Self::#name => #text)
    });
    let matching = |pick: fn(StateKind) -> bool| {
        let list: Vec<&Ident> = m.states.iter().filter(|s| pick(s.kind)).map(|s| &s.name).collect();
        if list.is_empty() {
            quote!(false)
        } else {
            quote!(::core::matches!(self, #(Self::#list)|*))
        }
    };
    let is_final = matching(|k| matches!(k, StateKind::Final { .. }));
    let is_failure = matching(|k| k == StateKind::Final { failure: true });
    let docs = doc(format!("The states of workflow [`{machine}`]."));
    quote! {
        #docs
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #vis enum #state { #(#variants),* }

        #serde

        impl #state {
            /// Every state, in declaration order.
            pub const ALL: [#state; #count] = [#(Self::#all),*];

            /// The state's name as written in the workflow.
            pub const fn name(self) -> &'static str {
                match self { #(#name_arms),* }
            }

            /// Whether this is a final state.
            pub const fn is_final(self) -> bool {
                #is_final
            }

            /// Whether this is a final state marked `(failure)`.
            pub const fn is_failure(self) -> bool {
                #is_failure
            }

            /// The state's index in [`ALL`](Self::ALL) and in the graph's states.
            pub const fn index(self) -> usize {
                self as usize
            }
        }

        impl ::core::fmt::Display for #state {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                f.pad(self.name())
            }
        }

        impl ::workflow::StateEnum for #state {
            fn graph() -> &'static ::workflow::Graph<'static> {
                #machine::graph()
            }
            fn index(self) -> usize {
                self as usize
            }
            fn from_index(index: usize) -> ::core::option::Option<Self> {
                Self::ALL.get(index).copied()
            }
        }
    }
}

fn event_enum(v: &Validated, names: &Names) -> TokenStream {
    let m = &v.model;
    let Names { event, machine, .. } = names;
    let vis = &m.vis;
    let serde = serde_derive();
    let mut variants = Vec::new();
    let mut patterns: Vec<(TokenStream, String)> = Vec::new();
    let mut froms = Vec::new();
    for e in &m.events {
        let name = &e.name;
        let text = text(name);
        let attrs = e.attrs.iter().filter(|a| a.path().is_ident("doc"));
        let default_doc = (!has_doc(&e.attrs)).then(|| doc(format!("Event `{name}`.")));
        if e.fields.is_some() {
            variants.push(quote!(#default_doc #(#attrs)* #name(#name)));
            patterns.push((quote!(Self::#name(_)), text));
            froms.push(quote! {
                impl ::core::convert::From<#name> for #event {
                    fn from(payload: #name) -> Self { Self::#name(payload) }
                }
            });
        } else {
            variants.push(quote!(#default_doc #(#attrs)* #name));
            patterns.push((quote!(Self::#name), text));
            froms.push(quote! {
                impl ::core::convert::From<#name> for #event {
                    fn from(_: #name) -> Self { Self::#name }
                }
            });
        }
    }
    for a in &v.activities {
        let (done, failed, output) = (&a.done_variant, &a.failed_variant, &a.output);
        let (done_text, failed_text) = (done.to_string(), failed.to_string());
        let done_doc = doc(format!("Activity `{}` completed with this output.", a.name));
        let failed_doc = doc(format!("Activity `{}` failed after its retries.", a.name));
        variants.push(quote!(#done_doc #done(#output)));
        variants.push(quote!(#failed_doc #failed(::workflow::ActivityError)));
        patterns.push((quote!(Self::#done(_)), done_text));
        patterns.push((quote!(Self::#failed(_)), failed_text));
    }
    for t in &v.timers {
        let variant = &t.variant;
        let text = variant.to_string();
        let timer_doc = doc(format!(
            "State `{}` has been active for {}.",
            m.states[t.state].name,
            workflow_runtime::format_duration(t.delay)
        ));
        variants.push(quote!(#timer_doc #variant));
        patterns.push((quote!(Self::#variant), text));
    }
    let name_arms = patterns.iter().map(|(pattern, text)| quote!(#pattern => #text));
    let index_arms = patterns.iter().enumerate().map(|(i, (pattern, _))| {
        let i = Literal::usize_unsuffixed(i);
        quote!(#pattern => #i)
    });
    let (body, index_body) = if patterns.is_empty() {
        (quote!(match *self {}), quote!(match *self {}))
    } else {
        (
            quote!(match self { #(#name_arms),* }),
            quote!(match self { #(#index_arms),* }),
        )
    };
    let docs = doc(format!(
        "The events of workflow [`{machine}`]: the declared ones, then those the machine makes itself \
         (activity outcomes and timers)."
    ));
    quote! {
        #docs
        #[derive(Clone, Debug)]
        #serde
        #vis enum #event { #(#variants),* }

        impl #event {
            /// The event's name.
            pub const fn name(&self) -> &'static str {
                #body
            }

            /// The event's index in the graph's `events` (its variant's position).
            pub const fn index(&self) -> usize {
                #index_body
            }
        }

        #(#froms)*
    }
}

/// A span inside the macro's expansion shown at `span` in the block: rustc
/// points its notes about generated handler signatures there, while lints
/// still see the code as macro-generated.
fn at(span: Span) -> Span {
    Span::call_site().located_at(span)
}

/// The parameter a handler's input is passed as, if it takes one, shown at
/// the handler's name in the block (an output type keeps its own span).
fn input_param(v: &Validated, names: &Names, name: &Ident, input: &Input) -> Option<TokenStream> {
    let span = at(name.span());
    Some(match input {
        Input::Nothing => return None,
        Input::Event(e) => {
            let event = respan(&v.model.events[*e].name, span);
            quote_spanned!(span=> event: &#event)
        }
        Input::AnyEvent => {
            let event = respan(&names.event, span);
            quote_spanned!(span=> event: &#event)
        }
        Input::Output(ty) => {
            let reference = quote_spanned!(at(syn::spanned::Spanned::span(ty))=> &);
            quote_spanned!(span=> output: #reference #ty)
        }
        Input::Error => quote_spanned!(span=> error: &::workflow::ActivityError),
    })
}

/// `&Ctx` or `&mut Ctx` for handler `name`: the `&` is shown at the declared
/// context type, or at `name` when the context is the default `()`.
fn context_param(v: &Validated, name: &Ident, mutable: bool) -> TokenStream {
    let mutability = mutable.then(|| quote_spanned!(at(name.span())=> mut));
    match &v.model.context {
        Some(ty) => {
            let reference = quote_spanned!(at(syn::spanned::Spanned::span(ty))=> &#mutability);
            quote!(#reference #ty)
        }
        None => quote_spanned!(at(name.span())=> &#mutability ()),
    }
}

fn handler_trait(v: &Validated, names: &Names) -> TokenStream {
    let m = &v.model;
    let Names { handlers, machine, .. } = names;
    let vis = &m.vis;
    let guards = v.guards.iter().map(|g| {
        let Handler { name, input } = g;
        let context = context_param(v, name, false);
        let param = input_param(v, names, name, input);
        let docs = doc(format!(
            "Guard `{name}`: whether the transition may fire.{}",
            uses(v, name)
        ));
        quote_spanned!(at(name.span())=> #docs fn #name(&self, context: #context, #param) -> bool;)
    });
    let actions = v.actions.iter().map(|a| {
        let Handler { name, input } = a;
        let context = context_param(v, name, true);
        let param = input_param(v, names, name, input);
        let docs = doc(format!("Action `{name}`.{}", uses(v, name)));
        quote_spanned!(at(name.span())=> #docs fn #name(&self, context: #context, #param);)
    });
    let activities = v.activities.iter().map(|a| {
        let (name, output) = (&a.name, &a.output);
        let docs = doc(format!(
            "Activity `{name}`: the service call of {}. Write it as an `async fn`; an `Err` or a panic is a failed attempt.",
            states_invoking(v, name)
        ));
        future_method(docs, name, context_param(v, name, false), None, output)
    });
    let compensations = v.compensations.iter().map(|c| {
        let name = &c.name;
        let receives = match &c.output {
            Some(_) => " It receives the output of the activity it undoes (the `done` output of that step).",
            None => "",
        };
        let docs = doc(format!(
            "Compensation `{name}`: undoes the step of a state that declared it when the workflow fails.{receives}"
        ));
        let output = c
            .output
            .as_ref()
            .and_then(|ty| input_param(v, names, name, &Input::Output(Box::new(ty.clone()))))
            .map(|param| quote!(#param,));
        future_method(
            docs,
            name,
            context_param(v, name, false),
            output,
            &syn::parse_quote_spanned!(at(name.span())=> ()),
        )
    });
    let docs = doc(format!(
        "What workflow [`{machine}`] calls: its guards, actions, activities and compensations. \
         Implement it for your service clients; every method has the exact signature the workflow needs."
    ));
    quote! {
        #docs
        #[allow(clippy::ptr_arg)] // the block fixes each parameter's type: `&Vec<T>` and `&String` stay
        #vis trait #handlers: ::core::marker::Send + ::core::marker::Sync {
            #(#guards)*
            #(#actions)*
            #(#activities)*
            #(#compensations)*
        }
    }
}

fn future_method(
    docs: TokenStream,
    name: &Ident,
    context: TokenStream,
    input: Option<TokenStream>,
    output: &Type,
) -> TokenStream {
    quote_spanned! {at(name.span())=>
        #docs
        fn #name(&self, context: #context, #input call: &::workflow::ActivityCall)
            -> impl ::core::future::Future<Output = ::core::result::Result<#output, ::workflow::ActivityError>>
                + ::core::marker::Send;
    }
}

/// ` Used by: ...` for a guard's or an action's rustdoc.
fn uses(v: &Validated, handler: &Ident) -> String {
    let m = &v.model;
    let calls = |actions: &[Action]| actions.iter().filter_map(Action::call).any(|a| same(a, handler));
    let mut places = Vec::new();
    for state in &m.states {
        if calls(&state.entry) {
            places.push(format!("entry of `{}`", state.name));
        }
        if calls(&state.exit) {
            places.push(format!("exit of `{}`", state.name));
        }
    }
    for t in &m.transitions {
        if t.guard.as_ref().is_some_and(|g| same(g, handler)) || calls(&t.actions) {
            places.push(format!("`{}`", transition_label(v, t)));
        }
    }
    format!("\n\nUsed by: {}.", places.join(", "))
}

fn transition_label(v: &Validated, t: &Transition) -> String {
    let m = &v.model;
    let source = &m.states[t.source].name;
    let targets: Vec<String> = t.targets.iter().map(|&s| m.states[s].name.to_string()).collect();
    let target = if targets.is_empty() {
        "(stays)".to_string()
    } else {
        targets.join(", ")
    };
    let trigger = match &t.trigger {
        Trigger::Events(list) => list
            .iter()
            .map(|&e| m.events[e].name.to_string())
            .collect::<Vec<_>>()
            .join(" | "),
        Trigger::Any => "_".to_string(),
        Trigger::Always => "always".to_string(),
        Trigger::StateDone => "done".to_string(),
        Trigger::DoneOf(s) => format!("done({})", m.states[*s].name),
        Trigger::Initial => "initial".to_string(),
        Trigger::Done => "done".to_string(),
        Trigger::Error => "error".to_string(),
        Trigger::After(d) => format!("after {}", workflow_runtime::format_duration(*d)),
    };
    format!("{source} --{trigger}--> {target}")
}

fn states_invoking(v: &Validated, activity: &Ident) -> String {
    let states: Vec<String> = v
        .model
        .states
        .iter()
        .filter(|s| s.invoke.as_ref().is_some_and(|i| same(&i.activity, activity)))
        .map(|s| format!("`{}`", s.name))
        .collect();
    states.join(", ")
}

/// The machine type: its doc header, the methods every machine has, and
/// the runtime traits; the rest comes from [`flat`] or [`chart`].
fn machine_type(v: &Validated, names: &Names) -> TokenStream {
    let m = &v.model;
    let Names {
        machine,
        state,
        event,
        handlers,
        context,
    } = names;
    let attrs = &m.attrs;
    let (mermaid, graph) = with_graph(v, |g| (g.to_mermaid(), workflow_runtime::graph::text::encode(g)));
    let default_doc = (!has_doc(attrs)).then(|| doc(format!("Workflow `{machine}`.")));
    let diagram = doc(format!("\n\n# Diagram\n\n```mermaid\n{mermaid}```\n"));
    let generated = doc(format!(
        "\nGenerated by `workflow!` with [`{state}`], [`{event}`] and [`{handlers}`]. \
         A machine owns its state and its context; drive it with [`handle`](Self::handle) \
         and [`run_activity`](Self::run_activity)."
    ));
    let header = quote! {
        #default_doc
        #(#attrs)*
        #diagram
        #generated
    };
    let common = quote! {
        /// The context.
        pub const fn context(&self) -> &#context {
            &self.context
        }

        /// The context, mutably.
        pub fn context_mut(&mut self) -> &mut #context {
            &mut self.context
        }

        /// Takes the machine apart, giving back its context.
        pub fn into_context(self) -> #context {
            self.context
        }

        /// The workflow's static graph: states, events, transitions,
        /// handlers and timers, with Mermaid and DOT renderings.
        pub fn graph() -> &'static ::workflow::Graph<'static> {
            // Carried as text: far cheaper for rustc than a literal of
            // hundreds of structs. Decoded once, on first use.
            static GRAPH: ::std::sync::OnceLock<::workflow::Graph<'static>> = ::std::sync::OnceLock::new();
            GRAPH.get_or_init(|| ::workflow::graph::text::decode_generated(#graph))
        }
    };
    let bounds = thread_bounds(v);
    let (attempt_body, compensate_body, unit_event_body, failure_body) = engine_hooks(v, names);
    let kind_specific = if m.is_chart() {
        quote! {
            fn take_scheduled(&mut self) -> ::std::vec::Vec<::workflow::Scheduled<#event>> {
                #machine::take_scheduled(self)
            }
            fn reentered(&self, node: #state) -> bool {
                self.core.reentered(::workflow::StateEnum::index(node))
            }
            fn save(&self) -> ::workflow::Saved {
                self.core.save(#machine::graph())
            }
            fn restore(saved: &::workflow::Saved, context: #context) -> ::core::option::Option<Self> {
                let core = ::workflow::chart::Core::restore(#machine::graph(), saved)?;
                ::core::option::Option::Some(Self { core, scheduled: ::std::vec::Vec::new(), context })
            }
        }
    } else {
        quote! {
            fn save(&self) -> ::workflow::Saved {
                ::workflow::Saved {
                    active: ::std::vec![::workflow::StateEnum::index(self.state)],
                    history: ::std::vec::Vec::new(),
                }
            }
            fn restore(saved: &::workflow::Saved, context: #context) -> ::core::option::Option<Self> {
                let state = match saved.active[..] {
                    [state] if saved.fits(#machine::graph()) => state,
                    _ => return ::core::option::Option::None,
                };
                ::core::option::Option::Some(Self::with_state(::workflow::StateEnum::from_index(state)?, context))
            }
        }
    };
    let compensation = compensation_fn(v, names);
    let common = quote!(#common #compensation);
    let (body, state_type) = if m.is_chart() {
        let words = words(m);
        (
            chart::machine(v, names, header, common),
            quote!(::workflow::Configuration<#state, #words>),
        )
    } else {
        (flat::machine(v, names, header, common), quote!(#state))
    };
    let default_impl = m.context.is_none().then(|| {
        quote! {
            impl ::core::default::Default for #machine {
                fn default() -> Self { Self::new(()) }
            }
        }
    });
    quote! {
        #body
        #default_impl

        impl ::workflow::Machine for #machine where #(#bounds,)* {
            type Node = #state;
            type State = #state_type;
            type Event = #event;
            type Context = #context;

            fn graph() -> &'static ::workflow::Graph<'static> {
                #machine::graph()
            }
            fn new(context: #context) -> Self {
                #machine::new(context)
            }
            fn state(&self) -> #state_type {
                #machine::state(self)
            }
            fn context(&self) -> &#context {
                &self.context
            }
            fn into_context(self) -> #context {
                self.context
            }
            fn event_index(event: &#event) -> usize {
                event.index()
            }
            fn is_active(&self, node: #state) -> bool {
                #machine::is_in(self, node)
            }
            fn unit_event(index: usize) -> ::core::option::Option<#event> {
                #unit_event_body
            }
            fn failure_event(node: #state, error: ::workflow::ActivityError) -> ::core::option::Option<#event> {
                #failure_body
            }
            #kind_specific
        }

        impl<H: #handlers + ?::core::marker::Sized> ::workflow::Workflow<H> for #machine
        where
            #(for<'bound> #bounds,)*
        {
            fn handle(
                &mut self,
                event: &#event,
                handlers: &H,
            ) -> ::core::result::Result<::workflow::Step<#state>, ::workflow::Rejected<#state>> {
                #machine::handle(self, event, handlers)
            }

            fn run_activity<'a>(
                &'a self,
                handlers: &'a H,
            ) -> impl ::core::future::Future<Output = ::core::option::Option<#event>> + ::core::marker::Send + 'a
            where
                H: 'a,
            {
                #machine::run_activity(self, handlers)
            }

            fn start(&mut self, handlers: &H) {
                #machine::start(self, handlers)
            }

            fn attempt<'a>(
                node: #state,
                context: &'a #context,
                handlers: &'a H,
                call: ::workflow::ActivityCall,
            ) -> ::core::option::Option<
                impl ::core::future::Future<Output = ::core::result::Result<#event, ::workflow::ActivityError>>
                    + ::core::marker::Send
                    + 'a,
            >
            where
                H: 'a,
            {
                #attempt_body
            }

            fn compensate<'a>(
                node: #state,
                context: &'a #context,
                done: ::core::option::Option<#event>,
                handlers: &'a H,
                call: ::workflow::ActivityCall,
            ) -> ::core::option::Option<
                impl ::core::future::Future<Output = ::core::result::Result<(), ::workflow::ActivityError>>
                    + ::core::marker::Send
                    + 'a,
            >
            where
                H: 'a,
            {
                let _ = done;
                #compensate_body
            }
        }
    }
}

/// What the traits' `Send` futures and events need of the user's types, as
/// where clauses spanned at each type in the block, so that a type that is
/// not `Send` (or a context that is not `Sync`) is reported there rather
/// than at the whole macro call. The `Machine` impl states them plainly
/// (rustc checks such bounds at the impl); the `Workflow` impl under a
/// `for<'bound>` binder, which rustc assumes without reporting them twice.
fn thread_bounds(v: &Validated) -> Vec<TokenStream> {
    let end = |ty: &Type| {
        let last = ty.to_token_stream().into_iter().last();
        last.map_or_else(Span::call_site, |token| token.span())
    };
    let send = |ty: &Type| quote_spanned!(end(ty)=> #ty: ::core::marker::Send + 'static);
    let fields = v
        .model
        .events
        .iter()
        .flat_map(|e| e.fields.iter().flatten())
        .map(|f| &f.ty);
    let outputs = v.activities.iter().map(|a| &a.output);
    let mut bounds: Vec<TokenStream> = fields.chain(outputs).map(send).collect();
    let sync = |ty: &Type| quote_spanned!(end(ty)=> #ty: ::core::marker::Sync);
    bounds.extend(v.model.context.iter().map(sync));
    bounds
}

/// The bodies of the trait methods the engine drives instances with: one
/// activity attempt and one compensation attempt by state, the unit events
/// by index, and each activity's failure event.
fn engine_hooks(v: &Validated, names: &Names) -> (TokenStream, TokenStream, TokenStream, TokenStream) {
    let m = &v.model;
    let Names { state, event, .. } = names;
    let none = quote!(::core::option::Option::None);
    // One async block serves every state, so the future has one type.
    let dispatch = |arms: Vec<(&Ident, TokenStream)>, output: TokenStream| {
        if arms.is_empty() {
            // Still a future type for the opaque return type to name.
            return quote! {{
                let _ = (node, context, handlers, call);
                ::core::option::Option::None::<::core::future::Ready<::core::result::Result<#output, ::workflow::ActivityError>>>
            }};
        }
        let names: Vec<&Ident> = arms.iter().map(|(n, _)| *n).collect();
        let calls = arms.iter().map(|(n, call)| quote!(#state::#n => #call,));
        quote! {
            if !::core::matches!(node, #(#state::#names)|*) {
                return #none;
            }
            ::core::option::Option::Some(async move {
                match node {
                    #(#calls)*
                    _ => ::core::result::Result::Err(::workflow::ActivityError::non_retryable("nothing to run")),
                }
            })
        }
    };
    let mut attempts = Vec::new();
    let mut failures = Vec::new();
    for (id, s) in m.states.iter().enumerate() {
        if let Some(a) = v.activity_of(id) {
            let (name, method, done, failed) = (&s.name, &a.name, &a.done_variant, &a.failed_variant);
            attempts.push((name, quote!(handlers.#method(context, &call).await.map(#event::#done))));
            failures.push(quote!(#state::#name => ::core::option::Option::Some(#event::#failed(error)),));
        }
    }
    let compensations = m
        .states
        .iter()
        .enumerate()
        .filter_map(|(id, s)| {
            let (_, c) = s.compensate.as_ref()?;
            let call = with_output(v, names, id, |output| quote!(handlers.#c(context, #output &call).await));
            Some((&s.name, call))
        })
        .collect();
    let unit_arms: Vec<TokenStream> = event_variants(v)
        .into_iter()
        .enumerate()
        .filter(|(i, _)| {
            *i >= m.events.len() + 2 * v.activities.len() || m.events.get(*i).is_some_and(|e| e.fields.is_none())
        })
        .map(|(i, name)| {
            let (i, name) = (Literal::usize_unsuffixed(i), respan(name, Span::call_site()));
            quote!(#i => ::core::option::Option::Some(#event::#name),)
        })
        .collect();
    let unit = if unit_arms.is_empty() {
        quote!({ let _ = index; #none })
    } else {
        quote!(match index { #(#unit_arms)* _ => #none })
    };
    let failure = if failures.is_empty() {
        quote!({ let _ = (node, error); #none })
    } else {
        quote!(match node { #(#failures)* _ => #none })
    };
    (
        dispatch(attempts, quote!(#event)),
        dispatch(compensations, quote!(())),
        unit,
        failure,
    )
}

/// A call of state `id`'s compensation, made by `call` with the output
/// argument (`output,`, or nothing when the compensation takes none). A
/// compensation that receives its activity's output takes it from `done`
/// (an `Option` of the event or of a reference to it, in scope): the
/// activity's done event; without it, the call is a non-retryable error.
fn with_output(
    v: &Validated,
    names: &Names,
    id: StateId,
    call: impl FnOnce(TokenStream) -> TokenStream,
) -> TokenStream {
    let s = &v.model.states[id];
    let receives = s
        .compensate
        .as_ref()
        .and_then(|(_, c)| v.compensations.iter().find(|k| &k.name == c))
        .is_some_and(|c| c.output.is_some());
    let (true, Some(activity)) = (receives, v.activity_of(id)) else {
        return call(TokenStream::new());
    };
    let Names { event, .. } = names;
    let done = &activity.done_variant;
    let missing = format!(
        "the compensation of `{}` needs the output of `{}`, and its `{done}` event was not given",
        s.name, activity.name
    );
    let call = call(quote!(output,));
    quote! {
        // `done` is the event or a reference to it: either way `output`
        // is a reference.
        match done.as_ref() {
            ::core::option::Option::Some(#event::#done(output)) => #call,
            _ => ::core::result::Result::Err(::workflow::ActivityError::non_retryable(#missing)),
        }
    }
}

/// `run_compensation`: runs the compensation a state declares.
fn compensation_fn(v: &Validated, names: &Names) -> TokenStream {
    let Names {
        state, handlers, event, ..
    } = names;
    let arms: Vec<TokenStream> = v
        .model
        .states
        .iter()
        .enumerate()
        .filter_map(|(id, s)| {
            let (_, method) = s.compensate.as_ref()?;
            let name = &s.name;
            let run = with_output(v, names, id, |output| {
                let attempt = attempt_by_hand(method, output);
                quote!(::workflow::activity::once(#attempt).await)
            });
            Some(quote! {
                #state::#name => ::core::option::Option::Some(#run),
            })
        })
        .collect();
    let (params, body) = if arms.is_empty() {
        (
            quote!(_state: #state, _done: ::core::option::Option<&#event>, _handlers: &H),
            quote!(::core::option::Option::None),
        )
    } else {
        let rest = (arms.len() < v.model.states.len()).then(|| quote!(_ => ::core::option::Option::None,));
        (
            quote!(state: #state, done: ::core::option::Option<&#event>, handlers: &H),
            quote!({ let _ = done; match state { #(#arms)* #rest } }),
        )
    };
    quote! {
        /// Runs, once, the compensation that `state` declares
        /// (`compensate ACTION;`) to undo its step; `None` if it declares
        /// none. `done` is the event the state's activity completed with
        /// (its `…Done` event): a compensation that receives the output of
        /// the activity it undoes takes it from there, and fails
        /// (non-retryable) without it; one whose state invokes nothing, or
        /// an activity with output `()`, needs none. The engine runs these in
        /// reverse order, with retries, when a workflow ends in a failure
        /// state.
        pub async fn run_compensation<H: #handlers + ?::core::marker::Sized>(
            &self,
            #params,
        ) -> ::core::option::Option<::core::result::Result<(), ::workflow::ActivityError>> {
            #body
        }
    }
}

/// How many 64-bit words a statechart's state sets take.
fn words(m: &crate::model::Model) -> Literal {
    Literal::usize_unsuffixed(m.states.len().div_ceil(64))
}

/// The event enum's variants, in order: the declared events, each
/// activity's done and failed events, the timer events.
fn event_variants(v: &Validated) -> Vec<&Ident> {
    let declared = v.model.events.iter().map(|e| &e.name);
    let outcomes = v.activities.iter().flat_map(|a| [&a.done_variant, &a.failed_variant]);
    let timers = v.timers.iter().map(|t| &t.variant);
    declared.chain(outcomes).chain(timers).collect()
}

/// `name` shown at `span`, raw if it was.
fn respan(name: &Ident, span: Span) -> Ident {
    let mut name = name.clone();
    name.set_span(span);
    name
}

/// What a guard or an action receives, by name.
fn handler_input<'a>(v: &'a Validated, name: &Ident) -> Option<&'a Input> {
    v.guards
        .iter()
        .chain(&v.actions)
        .find(|h| same(&h.name, name))
        .map(|h| &h.input)
}

/// `run_activity`: a plain method that picks the activity to run (that of
/// the current state, or of the first active state in document order that
/// invokes one) and returns its future, wrapped in nested
/// `activity::Either`s: alternative `i` is `Right` `i` times, then `Left`
/// unless it is the last. Unlike an `async fn`, it adds no state machine of
/// its own around the activity's future. `dispatch` gets the alternatives,
/// by the state that picks each (`None`: the last, nothing to run, present
/// if `idle` or some state invokes nothing), and makes the choice.
fn run_activity_fn(
    v: &Validated,
    names: &Names,
    idle: bool,
    dispatch: impl FnOnce(Vec<(Option<StateId>, TokenStream)>) -> TokenStream,
) -> TokenStream {
    let m = &v.model;
    let Names { event, handlers, .. } = names;
    let mut futures: Vec<(Option<StateId>, TokenStream)> = Vec::new();
    for (id, s) in m.states.iter().enumerate() {
        let (Some(invoke), Some(activity)) = (&s.invoke, v.activity_of(id)) else {
            continue;
        };
        let method = &activity.name;
        let policy = policy(invoke);
        let run = if policy.max_attempts == 1 && policy.timeout.is_none() {
            let attempt = attempt_by_hand(method, TokenStream::new());
            quote!(::workflow::activity::once(#attempt))
        } else {
            // Each retry gets its own call, so the attempt's future owns it.
            let (text, policy) = (text(method), policy_tokens(&policy));
            quote! {{
                const POLICY: ::workflow::RetryPolicy = #policy;
                let context = &self.context;
                ::workflow::activity::run(#text, &POLICY, 0, move |call| async move {
                    handlers.#method(context, &call).await
                })
            }}
        };
        let (done, failed) = (&activity.done_variant, &activity.failed_variant);
        futures.push((
            Some(id),
            quote! {
                ::workflow::activity::map(#run, |outcome| {
                    ::core::option::Option::Some(match outcome {
                        ::core::result::Result::Ok(output) => #event::#done(output),
                        ::core::result::Result::Err(error) => #event::#failed(error),
                    })
                })
            },
        ));
    }
    let handlers_param = if futures.is_empty() {
        quote!(_handlers)
    } else {
        quote!(handlers)
    };
    if idle || futures.len() < m.states.len() {
        futures.push((None, quote!(::workflow::activity::Idle::new())));
    }
    let either = quote!(::workflow::activity::Either);
    let last = futures.len().saturating_sub(1);
    let alternatives = futures
        .into_iter()
        .enumerate()
        .map(|(i, (state, future))| {
            let mut wrapped = if i < last {
                quote!(#either::Left { future: #future })
            } else {
                future
            };
            for _ in 0..i {
                wrapped = quote!(#either::Right { future: #wrapped });
            }
            (state, wrapped)
        })
        .collect();
    let body = dispatch(alternatives);
    quote! {
        /// Runs the activity of the current state (with nested states, of the
        /// first active state in document order that invokes one) under its
        /// retry policy and returns the event it produced: its `…Done` event
        /// with the output, or its `…Failed` event once the attempts are
        /// spent. `None` if no active state invokes anything. Feed the event
        /// to [`handle`](Self::handle). The state is read now; the activity
        /// runs when the future is awaited.
        ///
        /// Timeouts and backoff use tokio's clock: a policy with either needs a
        /// tokio runtime with time enabled.
        pub fn run_activity<'a, H: #handlers + ?::core::marker::Sized>(
            &'a self,
            #handlers_param: &'a H,
        ) -> impl ::core::future::Future<Output = ::core::option::Option<#event>> + 'a {
            #body
        }
    }
}

/// The one attempt of a handler's activity or compensation when a machine is
/// driven by hand: its future, lent a constant call (attempt 1, key 0) that
/// rustc promotes to a static, so the future holds a pointer, not the call.
/// `output` is a compensation's output argument (`output,`), if it takes one.
fn attempt_by_hand(method: &Ident, output: TokenStream) -> TokenStream {
    let text = text(method);
    quote! {
        handlers.#method(&self.context, #output &::workflow::ActivityCall { activity: #text, attempt: 1, key: 0 })
    }
}

fn policy(invoke: &Invoke) -> RetryPolicy {
    let mut policy = RetryPolicy {
        max_attempts: invoke.max_attempts,
        timeout: invoke.timeout.map(|t| t.0),
        ..RetryPolicy::ONCE
    };
    if let Some((min, max, _)) = invoke.backoff {
        policy.initial_interval = min;
        policy.max_interval = max;
    }
    policy
}

fn policy_tokens(p: &RetryPolicy) -> TokenStream {
    let attempts = p.max_attempts;
    let ms = |d: std::time::Duration| Literal::u64_unsuffixed(u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    let (initial, max) = (ms(p.initial_interval), ms(p.max_interval));
    let timeout = match p.timeout {
        Some(t) => {
            let t = ms(t);
            quote!(::core::option::Option::Some(::core::time::Duration::from_millis(#t)))
        }
        None => quote!(::core::option::Option::None),
    };
    quote! {
        ::workflow::RetryPolicy {
            max_attempts: #attempts,
            initial_interval: ::core::time::Duration::from_millis(#initial),
            max_interval: ::core::time::Duration::from_millis(#max),
            timeout: #timeout,
        }
    }
}

/// Builds the runtime's [`Graph`] of the workflow from borrowed text, for
/// the diagram in the rustdoc and for the static the machine exposes (and,
/// in the conformance runner, which compiles these stages too, for the round trip).
pub(crate) fn with_graph<R>(v: &Validated, f: impl FnOnce(&Graph<'_>) -> R) -> R {
    let m = &v.model;
    let labels = |list: &[Action]| list.iter().map(|a| action_label(v, a)).collect::<Vec<_>>();
    let state_names: Vec<String> = m.states.iter().map(|s| text(&s.name)).collect();
    let entries: Vec<Vec<String>> = m.states.iter().map(|s| labels(&s.entry)).collect();
    let exits: Vec<Vec<String>> = m.states.iter().map(|s| labels(&s.exit)).collect();
    let invokes: Vec<Option<(String, String, RetryPolicy)>> = m
        .states
        .iter()
        .map(|s| {
            s.invoke
                .as_ref()
                .map(|i| (text(&i.activity), type_text(&i.output), policy(i)))
        })
        .collect();
    let resources: Vec<Option<String>> = m
        .states
        .iter()
        .map(|s| s.invoke.as_ref()?.resource.as_ref().map(Ident::to_string))
        .collect();
    let compensations: Vec<Option<String>> = m
        .states
        .iter()
        .map(|s| s.compensate.as_ref().map(|c| text(&c.1)))
        .collect();
    let event_names: Vec<String> = event_variants(v).into_iter().map(text).collect();
    let mut fields: Vec<Vec<(String, String)>> = m
        .events
        .iter()
        .map(|e| {
            e.fields
                .iter()
                .flatten()
                .map(|f| (f.ident.as_ref().map(text).unwrap_or_default(), type_text(&f.ty)))
                .collect()
        })
        .collect();
    let activity_names: Vec<String> = v.activities.iter().map(|a| text(&a.name)).collect();
    for a in &v.activities {
        fields.push(vec![("0".to_string(), type_text(&a.output))]);
        fields.push(vec![("0".to_string(), "ActivityError".to_string())]);
    }
    fields.extend(v.timers.iter().map(|_| Vec::new()));
    let triggers: Vec<Vec<usize>> = m.transitions.iter().map(|t| event_indices(v, t)).collect();
    let guards: Vec<Option<String>> = m.transitions.iter().map(|t| t.guard.as_ref().map(text)).collect();
    let actions: Vec<Vec<String>> = m.transitions.iter().map(|t| labels(&t.actions)).collect();

    fn refs(list: &[String]) -> Vec<&str> {
        list.iter().map(String::as_str).collect()
    }
    let entry_refs: Vec<Vec<&str>> = entries.iter().map(|l| refs(l)).collect();
    let exit_refs: Vec<Vec<&str>> = exits.iter().map(|l| refs(l)).collect();
    let field_refs: Vec<Vec<(&str, &str)>> = fields
        .iter()
        .map(|l| l.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect())
        .collect();
    let action_refs: Vec<Vec<&str>> = actions.iter().map(|l| refs(l)).collect();

    let states: Vec<StateInfo<'_>> = m
        .states
        .iter()
        .enumerate()
        .map(|(i, s)| StateInfo {
            name: &state_names[i],
            kind: match s.kind {
                StateKind::Atomic => GraphKind::Atomic,
                StateKind::Compound { initial } => GraphKind::Compound { initial },
                StateKind::Parallel => GraphKind::Parallel,
                StateKind::Final { failure } => GraphKind::Final { failure },
                StateKind::History { deep, slot } => GraphKind::History { deep, slot },
            },
            parent: s.parent,
            end: s.end,
            transitions: TransitionRange {
                start: s.transitions.first().copied().unwrap_or(0),
                end: s.transitions.last().map_or(0, |t| t + 1),
            },
            entry: &entry_refs[i],
            exit: &exit_refs[i],
            invoke: invokes[i].as_ref().map(|(activity, output, policy)| InvokeInfo {
                activity,
                output,
                policy: *policy,
                resource: resources[i].as_deref(),
                expected: s.invoke.as_ref().and_then(|i| i.expected).map(|e| e.0),
            }),
            compensate: compensations[i].as_deref(),
        })
        .collect();
    let declared = m.events.len();
    let events: Vec<EventInfo<'_>> = event_names
        .iter()
        .zip(&field_refs)
        .enumerate()
        .map(|(i, (name, fields))| {
            let kind = if i < declared {
                EventKind::Declared
            } else if i < declared + 2 * v.activities.len() {
                let activity = activity_names[(i - declared) / 2].as_str();
                if (i - declared) % 2 == 0 {
                    EventKind::Done(activity)
                } else {
                    EventKind::Failed(activity)
                }
            } else {
                let timer = &v.timers[i - declared - 2 * v.activities.len()];
                EventKind::Timer {
                    state: timer.state,
                    delay: timer.delay,
                }
            };
            EventInfo { name, fields, kind }
        })
        .collect();
    let transitions: Vec<TransitionInfo<'_>> = m
        .transitions
        .iter()
        .enumerate()
        .map(|(i, t)| TransitionInfo {
            source: t.source,
            trigger: match t.trigger {
                Trigger::Any => GraphTrigger::Any,
                Trigger::Always => GraphTrigger::Always,
                Trigger::StateDone => GraphTrigger::StateDone,
                Trigger::DoneOf(s) => GraphTrigger::DoneOf(s),
                Trigger::Initial => GraphTrigger::Initial,
                Trigger::Events(_) | Trigger::Done | Trigger::Error | Trigger::After(_) => {
                    GraphTrigger::Events(&triggers[i])
                }
            },
            guard: guards[i].as_deref(),
            in_states: &t.in_states,
            not_in_states: &t.not_in_states,
            targets: &t.targets,
            internal: t.internal,
            actions: &action_refs[i],
        })
        .collect();
    let name = text(&m.name);
    f(&Graph {
        name: &name,
        initial: m.initial,
        states: &states,
        events: &events,
        transitions: &transitions,
    })
}

/// The indices, in the event enum, of the events a transition listens to.
fn event_indices(v: &Validated, t: &Transition) -> Vec<usize> {
    let declared = v.model.events.len();
    let activity = || {
        v.activity_of(t.source)
            .and_then(|a| v.activities.iter().position(|x| x.name == a.name))
    };
    match &t.trigger {
        Trigger::Events(list) => list.clone(),
        Trigger::Done => activity().map(|a| declared + 2 * a).into_iter().collect(),
        Trigger::Error => activity().map(|a| declared + 2 * a + 1).into_iter().collect(),
        Trigger::After(delay) => v
            .timers
            .iter()
            .position(|x| x.state == t.source && x.delay == *delay)
            .map(|x| declared + 2 * v.activities.len() + x)
            .into_iter()
            .collect(),
        Trigger::Any | Trigger::Always | Trigger::StateDone | Trigger::DoneOf(_) | Trigger::Initial => Vec::new(),
    }
}

/// An action as the block spells it, for diagrams: `notify`, `raise Pong`,
/// `send Reminder after 1h`, `cancel reminder`.
fn action_label(v: &Validated, action: &Action) -> String {
    match action {
        Action::Call(name) => text(name),
        Action::Raise { event, .. } => format!("raise {}", text(&v.model.events[*event].name)),
        Action::Send { event, delay, id, .. } => {
            let name = text(&v.model.events[*event].name);
            let mut text = format!("send {name}");
            if !delay.is_zero() {
                text.push_str(&format!(" after {}", workflow_runtime::format_duration(*delay)));
            }
            if *id != name {
                text.push_str(&format!(" as {id}"));
            }
            text
        }
        Action::Cancel { id } => format!("cancel {id}"),
    }
}

/// A type as a reader would write it: `Vec<u8>`, not `Vec < u8 >`.
fn type_text(ty: &Type) -> String {
    let text = ty.to_token_stream().to_string();
    [
        (" < ", "<"),
        ("< ", "<"),
        (" >", ">"),
        (" :: ", "::"),
        (":: ", "::"),
        ("& ", "&"),
        (" ,", ","),
    ]
    .iter()
    .fold(text, |acc, (from, to)| acc.replace(from, to))
}
