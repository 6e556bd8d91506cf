//! Stage 2: the block resolved into indexed states, events and transitions.
//!
//! States form a tree (`parent` / `children`) so that compound and parallel
//! states fit without a new model; today every state is top-level. Names are
//! resolved here: an unknown event or state is an error with a suggestion.

use std::collections::HashMap;
use std::time::Duration;

use proc_macro2::Span;
use syn::{Attribute, Field, Ident, Type, Visibility};

use crate::errors::{unknown, Errors};
use crate::parse::{ArmDef, InvokeDef, Item, StateDef, StateItem, WorkflowDef};

pub type StateId = usize;
pub type EventId = usize;

/// A graph check that a user can switch off with `#[allow(NAME)]` on the
/// workflow or on a state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lint {
    UnreachableState,
    DeadEnd,
    NoPathToFinal,
    ShadowedTransition,
    UnhandledError,
}

impl Lint {
    pub const ALL: [Lint; 5] = [
        Lint::UnreachableState,
        Lint::DeadEnd,
        Lint::NoPathToFinal,
        Lint::ShadowedTransition,
        Lint::UnhandledError,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Lint::UnreachableState => "unreachable_state",
            Lint::DeadEnd => "dead_end",
            Lint::NoPathToFinal => "no_path_to_final",
            Lint::ShadowedTransition => "shadowed_transition",
            Lint::UnhandledError => "unhandled_error",
        }
    }

    fn from_name(name: &str) -> Option<Lint> {
        Lint::ALL.into_iter().find(|l| l.name() == name)
    }
}

/// The lints switched off at one level.
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub struct Allowed(u8);

impl Allowed {
    pub fn allows(self, lint: Lint) -> bool {
        self.0 & (1 << lint as u8) != 0
    }
    fn insert(&mut self, lint: Lint) {
        self.0 |= 1 << lint as u8;
    }
    pub fn union(self, other: Allowed) -> Allowed {
        Allowed(self.0 | other.0)
    }
}

pub struct Model {
    pub name: Ident,
    pub vis: Visibility,
    /// Doc comments and other attributes for the machine type.
    pub attrs: Vec<Attribute>,
    pub allowed: Allowed,
    pub context: Option<Type>,
    pub initial: StateId,
    pub states: Vec<State>,
    pub events: Vec<Event>,
    pub transitions: Vec<Transition>,
}

pub struct State {
    pub name: Ident,
    pub attrs: Vec<Attribute>,
    pub kind: StateKind,
    /// The enclosing state; `None` at the top level.
    pub parent: Option<StateId>,
    pub entry: Vec<Ident>,
    pub exit: Vec<Ident>,
    pub invoke: Option<Invoke>,
    pub compensate: Option<(Span, Ident)>,
    /// Indices into [`Model::transitions`], in declaration order.
    pub transitions: Vec<usize>,
    pub allowed: Allowed,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StateKind {
    Atomic,
    Final { failure: bool },
}

pub struct Event {
    pub name: Ident,
    pub attrs: Vec<Attribute>,
    /// `None` for a unit event.
    pub fields: Option<Vec<Field>>,
}

pub struct Invoke {
    pub span: Span,
    pub activity: Ident,
    pub output: Type,
    pub max_attempts: u32,
    /// `(min, max)` and the span of `backoff MIN..MAX`, if written.
    pub backoff: Option<(Duration, Duration, Span)>,
    pub timeout: Option<(Duration, Span)>,
    pub has_done: bool,
    pub has_error: bool,
}

pub struct Transition {
    pub source: StateId,
    pub trigger: Trigger,
    /// The span of the keyword (`on`, `after`, `done`, `error`) that declares it.
    pub span: Span,
    pub guard: Option<Ident>,
    /// `None` for a targetless transition.
    pub target: Option<StateId>,
    pub actions: Vec<Ident>,
    /// For `after`, the delay as written (`48h`), which names its event.
    pub delay_text: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trigger {
    Event(EventId),
    /// The source state's activity completed.
    Done,
    /// The source state's activity failed for good.
    Error,
    After(Duration),
}

impl Model {
    pub fn state_name(&self, id: StateId) -> String {
        self.states[id].name.to_string()
    }
}

/// Builds the model, resolving every name. All resolution errors are reported together.
pub fn build(def: WorkflowDef) -> syn::Result<Model> {
    let mut errors = Errors::default();
    let (attrs, allowed) = split_workflow_attrs(def.attrs, &mut errors);

    let mut context: Option<Type> = None;
    let mut initial: Option<Ident> = None;
    let mut events: Vec<Event> = Vec::new();
    let mut state_defs: Vec<StateDef> = Vec::new();
    for item in def.items {
        match item {
            Item::Context { span, ty } => {
                if context.is_some() {
                    errors.push(span, "duplicate `context`: a workflow has one context type");
                }
                context = Some(ty);
            }
            Item::Initial { span, state } => {
                if initial.is_some() {
                    errors.push(span, "duplicate `initial`: a workflow has one initial state");
                }
                initial = Some(state);
            }
            Item::Events { events: defs } => {
                for event in defs {
                    if events.iter().any(|e| e.name == event.name) {
                        errors.push(event.name.span(), format!("duplicate event `{}`", event.name));
                        continue;
                    }
                    events.push(Event {
                        name: event.name,
                        attrs: event.attrs,
                        fields: event.fields,
                    });
                }
            }
            Item::State(state) => {
                if state_defs.iter().any(|s| s.name == state.name) {
                    errors.push(state.name.span(), format!("duplicate state `{}`", state.name));
                    continue;
                }
                state_defs.push(state);
            }
        }
    }

    let state_index: HashMap<String, StateId> = state_defs
        .iter()
        .enumerate()
        .map(|(i, s)| (s.name.to_string(), i))
        .collect();
    let event_index: HashMap<String, EventId> = events
        .iter()
        .enumerate()
        .map(|(i, e)| (e.name.to_string(), i))
        .collect();
    let state_names: Vec<String> = state_defs.iter().map(|s| s.name.to_string()).collect();
    let event_names: Vec<String> = events.iter().map(|e| e.name.to_string()).collect();
    let resolve_state = |name: &Ident, errors: &mut Errors| -> Option<StateId> {
        let found = state_index.get(&name.to_string()).copied();
        if found.is_none() {
            errors.push(name.span(), unknown("state", &name.to_string(), &state_names));
        }
        found
    };

    let initial = match &initial {
        Some(name) => resolve_state(name, &mut errors),
        None => {
            errors.push(
                def.name.span(),
                "missing `initial STATE;`: name the state the workflow starts in",
            );
            None
        }
    };
    if state_defs.is_empty() {
        errors.push(def.name.span(), "a workflow needs at least one state");
    }

    let mut states = Vec::with_capacity(state_defs.len());
    let mut transitions = Vec::new();
    for (id, state) in state_defs.into_iter().enumerate() {
        let (attrs, state_allowed) = split_state_attrs(state.attrs, &mut errors);
        let kind = match state.final_marker {
            None => StateKind::Atomic,
            Some(marker) => StateKind::Final {
                failure: marker.is_some(),
            },
        };
        let mut built = State {
            name: state.name,
            attrs,
            kind,
            parent: None,
            entry: Vec::new(),
            exit: Vec::new(),
            invoke: None,
            compensate: None,
            transitions: Vec::new(),
            allowed: state_allowed,
        };
        let mut push = |transition: Transition, built: &mut State| {
            built.transitions.push(transitions.len());
            transitions.push(transition);
        };
        let arm = |trigger: Trigger, arm: ArmDef, errors: &mut Errors| {
            let target = resolve_state(&arm.target, errors);
            Transition {
                source: id,
                trigger,
                span: arm.span,
                guard: None,
                target,
                actions: arm.actions,
                delay_text: None,
            }
        };
        for item in state.body {
            match item {
                StateItem::Entry { actions } => built.entry.extend(actions),
                StateItem::Exit { actions } => built.exit.extend(actions),
                StateItem::Compensate { span, action } => {
                    if built.compensate.is_some() {
                        errors.push(span, "duplicate `compensate`: a state has at most one compensation");
                    }
                    built.compensate = Some((span, action));
                }
                StateItem::On(on) => {
                    let event = event_index.get(&on.event.to_string()).copied();
                    if event.is_none() {
                        errors.push(on.event.span(), unknown("event", &on.event.to_string(), &event_names));
                    }
                    let target = on.target.as_ref().and_then(|t| resolve_state(t, &mut errors));
                    let unresolved = on.target.is_some() && target.is_none();
                    if let (Some(event), false) = (event, unresolved) {
                        let transition = Transition {
                            source: id,
                            trigger: Trigger::Event(event),
                            span: on.span,
                            guard: on.guard,
                            target,
                            actions: on.actions,
                            delay_text: None,
                        };
                        push(transition, &mut built);
                    }
                }
                StateItem::After(after) => {
                    let target = resolve_state(&after.target, &mut errors);
                    let transition = Transition {
                        source: id,
                        trigger: Trigger::After(after.delay.value),
                        span: after.span,
                        guard: None,
                        target,
                        actions: after.actions,
                        delay_text: Some(after.delay.text),
                    };
                    push(transition, &mut built);
                }
                StateItem::Invoke(invoke) => {
                    if built.invoke.is_some() {
                        errors.push(
                            invoke.span,
                            "a state invokes at most one activity: split the work into states",
                        );
                        continue;
                    }
                    let InvokeDef {
                        span,
                        activity,
                        output,
                        retry,
                        timeout,
                        done,
                        error,
                    } = invoke;
                    let (has_done, has_error) = (done.is_some(), error.is_some());
                    if let Some(done) = done {
                        push(arm(Trigger::Done, done, &mut errors), &mut built);
                    }
                    if let Some(error) = error {
                        push(arm(Trigger::Error, error, &mut errors), &mut built);
                    }
                    let max_attempts = retry.as_ref().map_or(1, |r| r.retries.saturating_add(1));
                    let backoff = retry.and_then(|r| {
                        r.backoff
                            .map(|(min, max)| (min.value, max.value, min.span.join(max.span).unwrap_or(min.span)))
                    });
                    built.invoke = Some(Invoke {
                        span,
                        activity,
                        output,
                        max_attempts,
                        backoff,
                        timeout: timeout.map(|t| (t.value, t.span)),
                        has_done,
                        has_error,
                    });
                }
            }
        }
        states.push(built);
    }

    // A transition whose target did not resolve was dropped or kept with
    // `target: None`; only build the model when there are no such errors.
    let model = Model {
        name: def.name,
        vis: def.vis,
        attrs,
        allowed,
        context,
        initial: initial.unwrap_or(0),
        states,
        events,
        transitions,
    };
    errors.finish(model)
}

/// Keeps the workflow's attributes for the machine type, taking out the
/// names of our lints from `#[allow(...)]` (other lints pass through to rustc).
fn split_workflow_attrs(attrs: Vec<Attribute>, errors: &mut Errors) -> (Vec<Attribute>, Allowed) {
    let mut allowed = Allowed::default();
    let mut kept = Vec::new();
    for attr in attrs {
        if !attr.path().is_ident("allow") {
            kept.push(attr);
            continue;
        }
        let names = match allow_list(&attr) {
            Ok(names) => names,
            Err(error) => {
                errors.add(error);
                continue;
            }
        };
        let mut others: Vec<syn::Path> = Vec::new();
        for path in names {
            match path.get_ident().and_then(|i| Lint::from_name(&i.to_string())) {
                Some(lint) => allowed.insert(lint),
                None => others.push(path),
            }
        }
        if !others.is_empty() {
            kept.push(syn::parse_quote!(#[allow(#(#others),*)]));
        }
    }
    (kept, allowed)
}

/// A state's attributes: doc comments, and `#[allow(LINT)]` naming our lints only.
fn split_state_attrs(attrs: Vec<Attribute>, errors: &mut Errors) -> (Vec<Attribute>, Allowed) {
    let mut allowed = Allowed::default();
    let mut docs = Vec::new();
    let lint_names: Vec<String> = Lint::ALL.iter().map(|l| l.name().to_string()).collect();
    for attr in attrs {
        if attr.path().is_ident("doc") {
            docs.push(attr);
        } else if attr.path().is_ident("allow") {
            match allow_list(&attr) {
                Ok(names) => {
                    for path in names {
                        let name = quote::quote!(#path).to_string().replace(' ', "");
                        match Lint::from_name(&name) {
                            Some(lint) => allowed.insert(lint),
                            None => errors.add(syn::Error::new_spanned(
                                &path,
                                unknown("workflow lint", &name, &lint_names),
                            )),
                        }
                    }
                }
                Err(error) => errors.add(error),
            }
        } else {
            errors.add(syn::Error::new_spanned(
                &attr,
                "a state takes only doc comments and `#[allow(LINT)]`",
            ));
        }
    }
    (docs, allowed)
}

fn allow_list(attr: &Attribute) -> syn::Result<Vec<syn::Path>> {
    let list = attr.meta.require_list()?;
    let names = list.parse_args_with(syn::punctuated::Punctuated::<syn::Path, syn::Token![,]>::parse_terminated)?;
    Ok(names.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    fn model(tokens: proc_macro2::TokenStream) -> syn::Result<Model> {
        build(syn::parse2(tokens)?)
    }

    fn messages(result: syn::Result<Model>) -> Vec<String> {
        match result {
            Ok(_) => Vec::new(),
            Err(e) => e.into_iter().map(|e| e.to_string()).collect(),
        }
    }

    #[test]
    fn resolves_states_events_and_transitions() {
        let m = model(quote! {
            #[allow(dead_end, dead_code)]
            workflow W {
                initial B;
                events { Go, Stop { why: String } }
                state A { on Stop => B; }
                state B { entry hello; on Go if ready => A / act; on Stop / note; invoke work -> u8 { retry 2; done => A; } }
                final C (failure);
            }
        })
        .unwrap();
        assert_eq!(m.initial, 1);
        assert_eq!(m.states.len(), 3);
        assert_eq!(m.events.len(), 2);
        assert!(m.allowed.allows(Lint::DeadEnd));
        assert!(!m.allowed.allows(Lint::UnreachableState));
        assert_eq!(m.attrs.len(), 1, "`dead_code` is passed on to rustc");
        let b = &m.states[1];
        assert_eq!(b.transitions.len(), 3);
        let guarded = &m.transitions[b.transitions[0]];
        assert_eq!((guarded.trigger, guarded.target), (Trigger::Event(0), Some(0)));
        assert_eq!(guarded.guard.as_ref().unwrap(), "ready");
        assert_eq!(m.transitions[b.transitions[1]].target, None);
        assert_eq!(m.transitions[b.transitions[2]].trigger, Trigger::Done);
        assert_eq!(b.invoke.as_ref().unwrap().max_attempts, 3);
        assert_eq!(m.states[2].kind, StateKind::Final { failure: true });
    }

    #[test]
    fn reports_every_unknown_name_at_once() {
        let errors = messages(model(quote! {
            workflow W {
                initial Strat;
                events { Go }
                state Start { on Goo => Start; on Go => Ende; }
                final End;
            }
        }));
        assert_eq!(
            errors,
            [
                "unknown state `Strat`: did you mean `Start`?",
                "unknown event `Goo`: did you mean `Go`?",
                "unknown state `Ende`: did you mean `End`?",
            ]
        );
    }

    #[test]
    fn reports_duplicates_and_missing_initial() {
        let errors = messages(model(quote! {
            workflow W {
                context u8;
                context u16;
                events { Go, Go }
                state A { on Go => A; }
                state A { on Go => A; }
            }
        }));
        assert_eq!(
            errors,
            [
                "duplicate `context`: a workflow has one context type",
                "duplicate event `Go`",
                "duplicate state `A`",
                "missing `initial STATE;`: name the state the workflow starts in",
            ]
        );
    }

    #[test]
    fn unknown_lints_on_states_are_errors() {
        let errors = messages(model(quote! {
            workflow W { initial A; #[allow(dead_ends)] final A; }
        }));
        assert_eq!(errors, ["unknown workflow lint `dead_ends`: did you mean `dead_end`?"]);
    }
}
