//! Stage 2: the block resolved into indexed states, events and transitions.
//!
//! States form a tree in document order (pre-order): each knows its parent
//! and where its subtree ends, so "is a descendant of" is a range test.
//! Names are resolved here: an unknown event or state is an error with a
//! suggestion. Which items may stand where is checked here too.

use std::collections::HashMap;
use std::time::Duration;

use proc_macro2::Span;
use syn::ext::IdentExt;
use syn::{Attribute, Field, Ident, Type, Visibility};

use crate::errors::{unknown, Errors};
use crate::parse::{ActionDef, ArmDef, EventsDef, GuardDef, InvokeDef, Item, StateDef, StateDefKind, WorkflowDef};

pub type StateId = usize;
pub type EventId = usize;

/// A name as the block means it: `r#match` is `match`. Names are looked up,
/// compared and written into generated text (state names, graph labels,
/// activity names) this way; generated code uses the identifier itself, raw
/// or not, so that a keyword stays a valid identifier.
pub fn text(name: &Ident) -> String {
    name.unraw().to_string()
}

/// Whether two identifiers name the same thing (`r#ok` is `ok`).
pub fn same(a: &Ident, b: &Ident) -> bool {
    a.unraw() == b.unraw()
}

/// A graph check that a user can switch off with `#[allow(NAME)]` on the
/// workflow or on a state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lint {
    UnreachableState,
    DeadEnd,
    NoPathToFinal,
    ShadowedTransition,
    UnhandledError,
    NeverDone,
    EventlessLoop,
    DecisionWithoutElse,
}

impl Lint {
    pub const ALL: [Lint; 8] = [
        Lint::UnreachableState,
        Lint::DeadEnd,
        Lint::NoPathToFinal,
        Lint::ShadowedTransition,
        Lint::UnhandledError,
        Lint::NeverDone,
        Lint::EventlessLoop,
        Lint::DecisionWithoutElse,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Lint::UnreachableState => "unreachable_state",
            Lint::DeadEnd => "dead_end",
            Lint::NoPathToFinal => "no_path_to_final",
            Lint::ShadowedTransition => "shadowed_transition",
            Lint::UnhandledError => "unhandled_error",
            Lint::NeverDone => "never_done",
            Lint::EventlessLoop => "eventless_loop",
            Lint::DecisionWithoutElse => "decision_without_else",
        }
    }

    fn from_name(name: &str) -> Option<Lint> {
        Lint::ALL.into_iter().find(|l| l.name() == name)
    }
}

/// The lints switched off at one level, a bit each.
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub struct Allowed(u8);

const _: () = assert!(Lint::ALL.len() <= 8, "`Allowed` holds a bit per lint");

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
    /// Every state in document order (pre-order).
    pub states: Vec<State>,
    pub events: Vec<Event>,
    /// Every transition, grouped by source in document order.
    pub transitions: Vec<Transition>,
    /// How many history states there are (their memory slots).
    pub histories: usize,
}

pub struct State {
    pub name: Ident,
    pub attrs: Vec<Attribute>,
    pub kind: StateKind,
    /// The enclosing state; `None` at the top level.
    pub parent: Option<StateId>,
    /// One past the last descendant: the subtree is `id..end`.
    pub end: StateId,
    pub entry: Vec<Action>,
    pub exit: Vec<Action>,
    pub invoke: Option<Invoke>,
    pub compensate: Option<(Span, Ident)>,
    /// Indices into [`Model::transitions`], in declaration order.
    pub transitions: Vec<usize>,
    pub allowed: Allowed,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StateKind {
    Atomic,
    /// Has child states; enters `initial` by default.
    Compound {
        initial: StateId,
    },
    Parallel,
    Final {
        failure: bool,
    },
    /// A history pseudo-state; its one transition, if any, is the default.
    History {
        deep: bool,
        slot: usize,
    },
}

pub struct Event {
    pub name: Ident,
    pub attrs: Vec<Attribute>,
    /// `None` for a unit event. Without their `#[secret]` attributes.
    pub fields: Option<Vec<Field>>,
    /// Which fields were marked `#[secret]`, in order.
    pub secret: Vec<bool>,
}

/// One action of an entry, exit or transition.
pub enum Action {
    Call(Ident),
    Raise {
        span: Span,
        event: EventId,
    },
    Send {
        span: Span,
        event: EventId,
        delay: Duration,
        id: String,
    },
    Cancel {
        id: String,
    },
}

impl Action {
    /// The handler method this action calls, if it is not a built-in.
    pub fn call(&self) -> Option<&Ident> {
        match self {
            Action::Call(name) => Some(name),
            _ => None,
        }
    }
}

pub struct Invoke {
    pub span: Span,
    pub activity: Ident,
    pub output: Type,
    pub max_attempts: u32,
    /// `(min, max)` and the span of `backoff MIN..MAX`, if written.
    pub backoff: Option<(Duration, Duration, Span)>,
    pub timeout: Option<(Duration, Span)>,
    /// `resource NAME;`: the pool the attempts queue on.
    pub resource: Option<Ident>,
    /// `expected DURATION;`: the expected service time, and the span of the duration.
    pub expected: Option<(Duration, Span)>,
    pub has_done: bool,
    pub has_error: bool,
}

pub struct Transition {
    pub source: StateId,
    pub trigger: Trigger,
    /// The span of the keyword (`on`, `after`, `done`, `error`, `always`) that declares it.
    pub span: Span,
    pub guard: Option<Ident>,
    /// `in(STATE)` conditions: states that must be active.
    pub in_states: Vec<StateId>,
    /// `!in(STATE)` conditions: states that must not be active.
    pub not_in_states: Vec<StateId>,
    /// Empty for a targetless transition.
    pub targets: Vec<StateId>,
    /// Where each target is named, for errors about it.
    pub target_spans: Vec<Span>,
    /// `=> internal TARGET`: the source is not exited when the targets are inside it.
    pub internal: bool,
    pub actions: Vec<Action>,
    /// For `after`, the delay as written (`48h`), which names its event.
    pub delay_text: Option<String>,
}

impl Transition {
    /// A transition without guard or `in(..)` conditions, external, not a timer's.
    fn unguarded(
        source: StateId,
        trigger: Trigger,
        span: Span,
        (targets, target_spans): (Vec<StateId>, Vec<Span>),
        actions: Vec<Action>,
    ) -> Transition {
        Transition {
            source,
            trigger,
            span,
            guard: None,
            in_states: Vec::new(),
            not_in_states: Vec::new(),
            targets,
            target_spans,
            internal: false,
            actions,
            delay_text: None,
        }
    }

    pub fn target(&self) -> Option<StateId> {
        self.targets.first().copied()
    }

    /// Whether a guard method or an `in(..)` condition may keep it from firing.
    pub fn is_guarded(&self) -> bool {
        self.guard.is_some() || !self.in_states.is_empty() || !self.not_in_states.is_empty()
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Trigger {
    /// Any of these declared events.
    Events(Vec<EventId>),
    /// `on _`: every event.
    Any,
    /// `always`: eventless.
    Always,
    /// `on done`: this compound or parallel state completed.
    StateDone,
    /// `on done(STATE)`: another compound or parallel state completed.
    DoneOf(StateId),
    /// The default entry of a compound state (`initial A, B / act;`): its
    /// first transition, taken instead of entering its initial child.
    Initial,
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

    /// Whether the workflow needs the statechart interpreter: anything beyond
    /// flat states with events, activities and timers.
    pub fn is_chart(&self) -> bool {
        self.states.iter().any(|s| {
            s.parent.is_some()
                || matches!(
                    s.kind,
                    StateKind::Compound { .. } | StateKind::Parallel | StateKind::History { .. }
                )
                || s.entry.iter().chain(&s.exit).any(|a| !matches!(a, Action::Call(_)))
        }) || self.transitions.iter().any(|t| {
            matches!(
                t.trigger,
                Trigger::Any | Trigger::Always | Trigger::StateDone | Trigger::DoneOf(_) | Trigger::Initial
            ) || t.targets.len() > 1
                || !t.in_states.is_empty()
                || !t.not_in_states.is_empty()
                || t.internal
                || t.actions.iter().any(|a| !matches!(a, Action::Call(_)))
        })
    }

    /// The direct children of `s`.
    pub fn children(&self, s: StateId) -> impl Iterator<Item = StateId> + '_ {
        (s + 1..self.states[s].end).filter(move |&c| self.states[c].parent == Some(s))
    }

    /// `s` and its ancestors, innermost first.
    pub fn ancestors_or_self(&self, s: StateId) -> impl Iterator<Item = StateId> + '_ {
        std::iter::successors(Some(s), move |&x| self.states[x].parent)
    }
}

/// A state collected in document order, its items not yet resolved.
struct Pending {
    def_name: Ident,
    attrs: Vec<Attribute>,
    kind: StateDefKind,
    parent: Option<StateId>,
    end: StateId,
    items: Vec<Item>,
    /// For a history state: `(deep, default targets, default actions)`.
    history: Option<(bool, Vec<Ident>, Vec<ActionDef>)>,
}

/// Collects `def` and its descendants in pre-order.
fn collect(def: StateDef, parent: Option<StateId>, out: &mut Vec<Pending>, errors: &mut Errors) {
    let id = out.len();
    let StateDef {
        attrs,
        kind,
        name,
        body,
    } = def;
    out.push(Pending {
        def_name: name,
        attrs,
        kind,
        parent,
        end: id + 1,
        items: Vec::new(),
        history: None,
    });
    let mut items = Vec::new();
    for item in body {
        match item {
            Item::State(child) => collect(child, Some(id), out, errors),
            Item::History(h) => out.push(Pending {
                def_name: h.name,
                attrs: Vec::new(),
                kind: StateDefKind::State,
                parent: Some(id),
                end: out.len() + 1,
                items: Vec::new(),
                history: Some((h.deep, h.targets, h.actions)),
            }),
            Item::Context { span, .. } | Item::Events { span, .. } => errors.push(
                span,
                "`context` and `events` belong at the top of the workflow, not inside a state",
            ),
            other => items.push(other),
        }
    }
    out[id].items = items;
    out[id].end = out.len();
}

/// Builds the model, resolving every name. All resolution errors are reported together.
pub fn build(def: WorkflowDef) -> syn::Result<Model> {
    let mut errors = Errors::default();
    let (attrs, allowed) = split_workflow_attrs(def.attrs, &mut errors);

    let mut context: Option<Type> = None;
    let mut initial: Option<Ident> = None;
    let mut events: Vec<Event> = Vec::new();
    let mut pending: Vec<Pending> = Vec::new();
    for item in def.items {
        match item {
            Item::Context { span, ty } => {
                if context.is_some() {
                    errors.push(span, "duplicate `context`: a workflow has one context type");
                }
                context = Some(ty);
            }
            Item::Initial { span, states, actions } => {
                if initial.is_some() {
                    errors.push(span, "duplicate `initial`: a workflow has one initial state");
                }
                if let Some(second) = states.get(1) {
                    errors.push(
                        second.span(),
                        "the workflow starts in one state: put several initial states in a compound state, `state S { initial A, B; .. }`",
                    );
                }
                if !actions.is_empty() {
                    errors.push(
                        span,
                        "the workflow's `initial` takes no actions: use `entry` actions of the initial state, or put the `initial` with actions in a compound state",
                    );
                }
                initial = states.into_iter().next();
            }
            Item::Events { events: defs, .. } => {
                for event in defs {
                    if events.iter().any(|e| same(&e.name, &event.name)) {
                        errors.push(event.name.span(), format!("duplicate event `{}`", event.name));
                        continue;
                    }
                    refuse_cfg(
                        &event.attrs,
                        "an event cannot be compiled conditionally: `#[cfg]` would remove its payload struct but not \
                         its variant of the event enum, its conversions or the transitions on it; put `#[cfg]` on the \
                         `workflow!` call to compile the whole workflow conditionally",
                        &mut errors,
                    );
                    let mut attrs = event.attrs;
                    for misplaced in take_secret(&mut attrs) {
                        errors.add(syn::Error::new_spanned(
                            misplaced,
                            "`#[secret]` marks a payload field, not an event: `Login { user: String, #[secret] \
                             password: String }`",
                        ));
                    }
                    let mut fields = event.fields;
                    let mut secret = Vec::new();
                    for field in fields.iter_mut().flatten() {
                        refuse_cfg(
                            &field.attrs,
                            "an event field cannot be compiled conditionally: `#[cfg]` would remove it from the \
                             payload struct but not from the workflow's graph or the bounds on its type",
                            &mut errors,
                        );
                        let marks = take_secret(&mut field.attrs);
                        for mark in marks.iter().filter(|mark| !matches!(mark.meta, syn::Meta::Path(_))) {
                            errors.add(syn::Error::new_spanned(mark, "`#[secret]` takes no arguments"));
                        }
                        secret.push(!marks.is_empty());
                    }
                    events.push(Event {
                        name: event.name,
                        attrs,
                        fields,
                        secret,
                    });
                }
            }
            Item::State(state) => collect(state, None, &mut pending, &mut errors),
            Item::History(h) => errors.push(
                h.name.span(),
                "a history state belongs inside a compound or parallel state",
            ),
            Item::On(on) => errors.push(on.span, "transitions belong inside a state"),
            Item::Always(a) => errors.push(a.span, "transitions belong inside a state"),
            Item::After(a) => errors.push(a.span, "transitions belong inside a state"),
            Item::Invoke(i) => errors.push(i.span, "`invoke` belongs inside a state"),
            Item::Entry { span, .. } | Item::Exit { span, .. } | Item::Compensate { span, .. } => {
                errors.push(span, "entry, exit and compensate actions belong inside a state")
            }
        }
    }

    let mut state_index: HashMap<String, StateId> = HashMap::new();
    for (id, p) in pending.iter().enumerate() {
        if state_index.insert(text(&p.def_name), id).is_some() {
            errors.push(p.def_name.span(), format!("duplicate state `{}`", p.def_name));
        }
    }
    let event_index: HashMap<String, EventId> = events.iter().enumerate().map(|(i, e)| (text(&e.name), i)).collect();
    let mut state_names: Vec<String> = Vec::new();
    for p in &pending {
        let name = p.def_name.to_string();
        if !state_names.contains(&name) {
            state_names.push(name);
        }
    }
    let event_names: Vec<String> = events.iter().map(|e| e.name.to_string()).collect();
    let resolver = Resolver {
        state_index: &state_index,
        event_index: &event_index,
        state_names: &state_names,
        event_names: &event_names,
    };

    let initial = match &initial {
        Some(name) => resolver.state(name, &mut errors),
        None => {
            errors.push(
                def.name.span(),
                "missing `initial STATE;`: name the state the workflow starts in",
            );
            None
        }
    };
    if pending.is_empty() {
        errors.push(def.name.span(), "a workflow needs at least one state");
    }

    let mut histories = 0;
    let is_history: Vec<bool> = pending.iter().map(|p| p.history.is_some()).collect();
    let mut states = Vec::with_capacity(pending.len());
    let mut transitions = Vec::new();
    let children_of = |id: StateId, pending: &[Pending]| -> Vec<StateId> {
        (id + 1..pending[id].end)
            .filter(|&c| pending[c].parent == Some(id))
            .collect()
    };
    for id in 0..pending.len() {
        let children = children_of(id, &pending);
        let p = &mut pending[id];
        let (attrs, state_allowed) = split_state_attrs(std::mem::take(&mut p.attrs), &mut errors);
        let mut items = std::mem::take(&mut p.items);
        let history = p.history.take();
        let name = p.def_name.clone();
        let regions: Vec<StateId> = children
            .iter()
            .copied()
            .filter(|&c| pending[c].history.is_none())
            .collect();
        let mut built = State {
            name: name.clone(),
            attrs,
            kind: StateKind::Atomic,
            parent: pending[id].parent,
            end: pending[id].end,
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
        if let Some((deep, targets, actions)) = history {
            built.kind = StateKind::History { deep, slot: histories };
            histories += 1;
            if !targets.is_empty() {
                let (targets, target_spans) = resolver.states(&targets, &mut errors);
                let actions = resolver.actions(actions, &mut errors);
                let transition =
                    Transition::unguarded(id, Trigger::Always, name.span(), (targets, target_spans), actions);
                push(transition, &mut built);
            }
            states.push(built);
            continue;
        }
        // `initial`, and its default entry transition when it needs one (it
        // comes first among the state's transitions).
        let mut initial_child: Option<(Span, Ident)> = None;
        let mut initial_named: Vec<Ident> = Vec::new();
        for item in &mut items {
            let Item::Initial { span, states, actions } = item else {
                continue;
            };
            if initial_child.is_some() {
                errors.push(
                    *span,
                    format!("duplicate `initial`: state `{name}` has one initial child"),
                );
                continue;
            }
            initial_child = Some((*span, states[0].clone()));
            // Misplaced (no children, or a parallel state): reported below.
            if regions.is_empty() || !matches!(pending[id].kind, StateDefKind::State) {
                continue;
            }
            initial_named.clone_from(states);
            let (targets, target_spans) = resolver.states(states, &mut errors);
            let deeper = targets.iter().any(|t| !children.contains(t));
            if targets.len() > 1 || deeper || !actions.is_empty() {
                let transition = Transition::unguarded(
                    id,
                    Trigger::Initial,
                    *span,
                    (targets, target_spans),
                    resolver.actions(std::mem::take(actions), &mut errors),
                );
                push(transition, &mut built);
            }
        }
        for item in items {
            match item {
                Item::Initial { .. } => {}
                Item::Entry { actions, .. } => built.entry.extend(resolver.actions(actions, &mut errors)),
                Item::Exit { actions, .. } => built.exit.extend(resolver.actions(actions, &mut errors)),
                Item::Compensate { span, action } => {
                    if built.compensate.is_some() {
                        errors.push(span, "duplicate `compensate`: a state has at most one compensation");
                    }
                    built.compensate = Some((span, action));
                }
                Item::On(on) => {
                    let trigger = match on.events {
                        EventsDef::List(list) => {
                            Trigger::Events(list.iter().filter_map(|e| resolver.event(e, &mut errors)).collect())
                        }
                        EventsDef::Any => Trigger::Any,
                        EventsDef::Done(span, None) => {
                            if children.is_empty() {
                                errors.push(
                                    span,
                                    format!("`on done` needs child states: `{name}` has none, so it never completes"),
                                );
                            }
                            Trigger::StateDone
                        }
                        EventsDef::Done(_, Some(of)) => match resolver.state(&of, &mut errors) {
                            Some(s) if s == id => {
                                if children.is_empty() {
                                    errors.push(
                                        of.span(),
                                        format!(
                                            "`on done` needs child states: `{name}` has none, so it never completes"
                                        ),
                                    );
                                }
                                Trigger::StateDone
                            }
                            Some(s) => {
                                let completes = matches!(pending[s].kind, StateDefKind::State | StateDefKind::Parallel)
                                    && !is_history[s]
                                    && pending[s].end > s + 1;
                                if !completes {
                                    errors.push(
                                        of.span(),
                                        format!(
                                            "`done({of})` never happens: only a compound or parallel state completes, and `{of}` is neither"
                                        ),
                                    );
                                }
                                Trigger::DoneOf(s)
                            }
                            None => Trigger::StateDone,
                        },
                    };
                    let (targets, target_spans) = resolver.states(&on.targets, &mut errors);
                    let actions = resolver.actions(on.actions, &mut errors);
                    let Guard {
                        guard,
                        in_states,
                        not_in_states,
                    } = resolver.guard(on.guard, |s| is_history[s], &mut errors);
                    let transition = Transition {
                        source: id,
                        trigger,
                        span: on.span,
                        guard,
                        in_states,
                        not_in_states,
                        targets,
                        target_spans,
                        internal: on.internal,
                        actions,
                        delay_text: None,
                    };
                    push(transition, &mut built);
                }
                Item::Always(always) => {
                    let (targets, target_spans) = resolver.states(&always.targets, &mut errors);
                    let actions = resolver.actions(always.actions, &mut errors);
                    let Guard {
                        guard,
                        in_states,
                        not_in_states,
                    } = resolver.guard(always.guard, |s| is_history[s], &mut errors);
                    let transition = Transition {
                        source: id,
                        trigger: Trigger::Always,
                        span: always.span,
                        guard,
                        in_states,
                        not_in_states,
                        targets,
                        target_spans,
                        internal: always.internal,
                        actions,
                        delay_text: None,
                    };
                    push(transition, &mut built);
                }
                Item::After(after) => {
                    let (targets, target_spans) = resolver.states(std::slice::from_ref(&after.target), &mut errors);
                    let actions = resolver.actions(after.actions, &mut errors);
                    let mut transition = Transition::unguarded(
                        id,
                        Trigger::After(after.delay.value),
                        after.span,
                        (targets, target_spans),
                        actions,
                    );
                    transition.delay_text = Some(after.delay.text);
                    push(transition, &mut built);
                }
                Item::Invoke(invoke) => {
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
                        resource,
                        expected,
                        done,
                        error,
                    } = *invoke;
                    let (has_done, has_error) = (done.is_some(), error.is_some());
                    let mut arm = |trigger: Trigger, arm: ArmDef, built: &mut State, errors: &mut Errors| {
                        let (targets, target_spans) = resolver.states(std::slice::from_ref(&arm.target), errors);
                        let actions = resolver.actions(arm.actions, errors);
                        let transition = Transition::unguarded(id, trigger, arm.span, (targets, target_spans), actions);
                        push(transition, built);
                    };
                    if let Some(done) = done {
                        arm(Trigger::Done, done, &mut built, &mut errors);
                    }
                    if let Some(error) = error {
                        arm(Trigger::Error, error, &mut built, &mut errors);
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
                        // `r#type` names the resource `type`.
                        resource: resource.map(|r| r.unraw()),
                        expected: expected.map(|e| (e.value, e.span)),
                        has_done,
                        has_error,
                    });
                }
                // Children were collected; top-level-only items were reported by `collect`.
                Item::State(_) | Item::History(_) | Item::Context { .. } | Item::Events { .. } => {}
            }
        }
        built.kind = match pending[id].kind {
            StateDefKind::Final { failure } => {
                if let Some(&child) = children.first() {
                    errors.push(
                        pending[child].def_name.span(),
                        format!("final state `{name}` cannot have child states"),
                    );
                }
                StateKind::Final {
                    failure: failure.is_some(),
                }
            }
            StateDefKind::Parallel => {
                if let Some((span, _)) = &initial_child {
                    errors.push(
                        *span,
                        format!("parallel state `{name}` enters every region: it takes no `initial`"),
                    );
                }
                if regions.is_empty() {
                    errors.push(
                        name.span(),
                        format!("parallel state `{name}` needs at least one child state (a region)"),
                    );
                }
                StateKind::Parallel
            }
            StateDefKind::State if regions.is_empty() => {
                if let Some((span, _)) = &initial_child {
                    errors.push(*span, format!("`initial` needs child states: `{name}` has none"));
                }
                StateKind::Atomic
            }
            StateDefKind::State => {
                // The child holding the first initial state; every initial
                // state must be inside this state (the default entry
                // transition's targets are checked in `validate`).
                let inside = |c: StateId| children.iter().copied().find(|&k| k <= c && c < pending[k].end);
                let initial = match &initial_child {
                    None => regions[0],
                    Some((_, child)) => match resolver.state_index.get(&text(child)).copied() {
                        Some(c) => inside(c).unwrap_or(regions[0]),
                        None => regions[0],
                    },
                };
                for child in &initial_named {
                    if resolver
                        .state_index
                        .get(&text(child))
                        .is_some_and(|&c| inside(c).is_none())
                    {
                        errors.push(
                            child.span(),
                            format!("the initial state of `{name}` must be inside it: `{child}` is not"),
                        );
                    }
                }
                StateKind::Compound { initial }
            }
        };
        states.push(built);
    }
    if let Some(initial) = initial {
        if matches!(states.get(initial).map(|s| s.kind), Some(StateKind::History { .. })) {
            errors.push(def.name.span(), "the workflow cannot start in a history state");
        }
    }

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
        histories,
    };
    errors.finish(model)
}

/// Looks names up, reporting unknown ones with a suggestion.
/// A transition's resolved conditions.
struct Guard {
    guard: Option<Ident>,
    in_states: Vec<StateId>,
    not_in_states: Vec<StateId>,
}

struct Resolver<'a> {
    state_index: &'a HashMap<String, StateId>,
    event_index: &'a HashMap<String, EventId>,
    state_names: &'a [String],
    event_names: &'a [String],
}

impl Resolver<'_> {
    fn state(&self, name: &Ident, errors: &mut Errors) -> Option<StateId> {
        let found = self.state_index.get(&text(name)).copied();
        if found.is_none() {
            errors.push(name.span(), unknown("state", &name.to_string(), self.state_names));
        }
        found
    }

    /// The states named, and where each is named; unknown ones are reported and left out.
    fn states(&self, names: &[Ident], errors: &mut Errors) -> (Vec<StateId>, Vec<Span>) {
        names
            .iter()
            .filter_map(|n| Some((self.state(n, errors)?, n.span())))
            .unzip()
    }

    /// The guard method and the states of the `in(..)` and `!in(..)`
    /// conditions; a history state (`history[s]`) is never active, so it is
    /// refused.
    fn guard(&self, def: GuardDef, history: impl Fn(StateId) -> bool, errors: &mut Errors) -> Guard {
        let mut resolve = |names: &[Ident]| {
            let (states, spans) = self.states(names, errors);
            for ((&s, span), name) in states.iter().zip(spans).zip(names) {
                if history(s) {
                    errors.push(
                        span,
                        format!("`in({name})` never holds: a history state is never active; name a state it restores"),
                    );
                }
            }
            states
        };
        Guard {
            in_states: resolve(&def.in_states),
            not_in_states: resolve(&def.not_in_states),
            guard: def.guard,
        }
    }

    fn event(&self, name: &Ident, errors: &mut Errors) -> Option<EventId> {
        let found = self.event_index.get(&text(name)).copied();
        if found.is_none() {
            errors.push(name.span(), unknown("event", &name.to_string(), self.event_names));
        }
        found
    }

    fn actions(&self, defs: Vec<ActionDef>, errors: &mut Errors) -> Vec<Action> {
        defs.into_iter()
            .filter_map(|def| match def {
                ActionDef::Call(name) => Some(Action::Call(name)),
                ActionDef::Raise { span, event } => {
                    self.event(&event, errors).map(|event| Action::Raise { span, event })
                }
                ActionDef::Send {
                    span,
                    event: name,
                    delay,
                    id,
                } => self.event(&name, errors).map(|event| Action::Send {
                    span,
                    event,
                    delay: delay.map_or(Duration::ZERO, |d| d.value),
                    id: text(id.as_ref().unwrap_or(&name)),
                }),
                ActionDef::Cancel { id } => Some(Action::Cancel { id: text(&id) }),
            })
            .collect()
    }
}

/// Keeps the workflow's attributes for the machine type, taking out the
/// names of our lints from `#[allow(...)]` (other lints pass through to rustc).
fn split_workflow_attrs(attrs: Vec<Attribute>, errors: &mut Errors) -> (Vec<Attribute>, Allowed) {
    let mut allowed = Allowed::default();
    let mut kept = Vec::new();
    refuse_cfg(
        &attrs,
        "`#[cfg]` on the workflow would remove the machine type but not the state and event enums, the \
         payload structs or the handler trait: put it on the `workflow!` call instead (`#[cfg(..)] workflow! { .. }`)",
        errors,
    );
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

/// Reports each `#[cfg]` among `attrs` (or `#[cfg_attr]` that may expand to
/// one) with `message`: an item the macro makes several generated items
/// from cannot take one, which would remove only the item it lands on.
fn refuse_cfg(attrs: &[Attribute], message: &str, errors: &mut Errors) {
    for attr in attrs.iter().filter(|a| is_cfg(&a.meta)) {
        errors.add(syn::Error::new_spanned(attr, message));
    }
}

/// Removes the `#[secret]` attributes from `attrs` and gives them.
fn take_secret(attrs: &mut Vec<Attribute>) -> Vec<Attribute> {
    let (secret, kept) = std::mem::take(attrs)
        .into_iter()
        .partition(|attr| attr.path().is_ident("secret"));
    *attrs = kept;
    secret
}

/// `cfg(..)`, or `cfg_attr(PREDICATE, ..)` with a `cfg` among its attributes.
fn is_cfg(meta: &syn::Meta) -> bool {
    if meta.path().is_ident("cfg") {
        return true;
    }
    let syn::Meta::List(list) = meta else { return false };
    if !list.path.is_ident("cfg_attr") {
        return false;
    }
    list.parse_args_with(syn::punctuated::Punctuated::<syn::Meta, syn::Token![,]>::parse_terminated)
        .is_ok_and(|metas| metas.iter().skip(1).any(is_cfg))
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
                state B { entry hello; on Go if ready => A / act; on Stop / note; invoke work -> u8 { retry 2; resource r#pool; expected 1s; done => A; } }
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
        assert_eq!(
            (&guarded.trigger, guarded.target()),
            (&Trigger::Events(vec![0]), Some(0))
        );
        assert_eq!(guarded.guard.as_ref().unwrap(), "ready");
        assert_eq!(m.transitions[b.transitions[1]].target(), None);
        assert_eq!(m.transitions[b.transitions[2]].trigger, Trigger::Done);
        let invoke = b.invoke.as_ref().unwrap();
        assert_eq!(invoke.max_attempts, 3);
        assert_eq!(
            invoke.resource.as_ref().unwrap(),
            "pool",
            "a raw identifier names the resource without `r#`"
        );
        assert_eq!(invoke.expected.unwrap().0, Duration::from_secs(1));
        assert!(m.states[0].invoke.is_none());
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
    fn builds_the_state_tree_in_document_order() {
        let m = model(quote! {
            workflow W {
                initial Fulfil;
                events { Go, Stop }
                state Fulfil {
                    initial Work;
                    on Stop => Done;
                    history deep Resume => Work;
                    parallel Work {
                        state Pay { state Charging { on Go => Paid; } final Paid; }
                        state Stock { final Reserved; }
                        on done => Decide;
                    }
                    state Decide { always if ok => Done; always => Done / raise Stop, send Go after 5s as retry, cancel retry; }
                }
                final Done;
            }
        })
        .unwrap_or_else(|e| panic!("{e}"));
        let names: Vec<String> = m.states.iter().map(|s| s.name.to_string()).collect();
        assert_eq!(
            names,
            ["Fulfil", "Resume", "Work", "Pay", "Charging", "Paid", "Stock", "Reserved", "Decide", "Done"]
        );
        assert_eq!(m.states[0].kind, StateKind::Compound { initial: 2 });
        assert_eq!(m.states[0].end, 9);
        assert_eq!(m.states[1].kind, StateKind::History { deep: true, slot: 0 });
        assert_eq!(m.states[2].kind, StateKind::Parallel);
        assert_eq!(
            m.states[3].kind,
            StateKind::Compound { initial: 4 },
            "the first child by default"
        );
        assert_eq!(m.states[4].parent, Some(3));
        assert_eq!(m.states[2].end, 8);
        assert_eq!(m.children(2).collect::<Vec<_>>(), [3, 6]);
        assert_eq!(m.histories, 1);
        let sources: Vec<usize> = m.transitions.iter().map(|t| t.source).collect();
        assert_eq!(sources, [0, 1, 2, 4, 8, 8], "grouped by source in document order");
        assert_eq!(m.transitions[2].trigger, Trigger::StateDone);
        let decide = &m.transitions[5];
        assert!(
            matches!(&decide.actions[..], [Action::Raise { .. }, Action::Send { id, .. }, Action::Cancel { .. }] if id == "retry")
        );
        assert!(m.is_chart());
    }

    #[test]
    fn the_default_entry_transition_comes_first_and_only_when_needed() {
        let m = model(quote! {
            workflow W {
                initial S;
                events { E }
                state S {
                    on E => S;
                    initial A, B / act;
                    parallel P { state RA { state A {} } state RB { state B {} } }
                }
                state T { initial U; state U { on E if in(A) && !in(B) => T; on done(S) => T; } }
            }
        })
        .unwrap();
        let s = &m.states[0];
        let first = &m.transitions[s.transitions[0]];
        assert_eq!(first.trigger, Trigger::Initial, "first, although written after `on E`");
        assert_eq!(first.targets, [3, 5]);
        assert_eq!(first.actions.len(), 1);
        assert_eq!(s.kind, StateKind::Compound { initial: 1 }, "the child holding `A`");
        let t = m.states.iter().position(|x| x.name == "T").unwrap();
        assert!(
            m.states[t].transitions.is_empty(),
            "a plain `initial U;` needs no transition"
        );
        let u = &m.states[t + 1];
        let guarded = &m.transitions[u.transitions[0]];
        assert_eq!(
            (&guarded.in_states[..], &guarded.not_in_states[..]),
            (&[3][..], &[5][..])
        );
        assert!(guarded.is_guarded() && guarded.guard.is_none());
        assert_eq!(m.transitions[u.transitions[1]].trigger, Trigger::DoneOf(0));
        assert!(m.is_chart());
    }

    #[test]
    fn misplaced_items_are_errors() {
        let errors = messages(model(quote! {
            workflow W {
                initial A;
                events { Go }
                on Go => A;
                state A { context u8; initial B; }
                parallel P { initial A; }
                final F { state G { } }
            }
        }));
        assert_eq!(
            errors,
            [
                "transitions belong inside a state",
                "`context` and `events` belong at the top of the workflow, not inside a state",
                "`initial` needs child states: `A` has none",
                "parallel state `P` enters every region: it takes no `initial`",
                "parallel state `P` needs at least one child state (a region)",
                "final state `F` cannot have child states",
            ]
        );
    }

    #[test]
    fn cfg_is_refused_where_it_would_remove_part_of_the_expansion() {
        let errors = messages(model(quote! {
            #[cfg(test)]
            #[cfg_attr(test, derive(Debug))]
            workflow W {
                initial A;
                events {
                    #[cfg(test)] Go,
                    Stop { #[cfg(test)] why: String, #[cfg_attr(test, allow(dead_code))] code: u8 },
                    #[cfg_attr(test, cfg_attr(unix, cfg(test)))] Nested,
                    #[cfg_attr(test, derive(PartialOrd))] Fine,
                }
                final A;
            }
        }));
        let firsts: Vec<&str> = errors.iter().map(|e| e.split(':').next().unwrap_or("")).collect();
        assert_eq!(
            firsts,
            [
                "`#[cfg]` on the workflow would remove the machine type but not the state and event enums, the payload structs or the handler trait",
                "an event cannot be compiled conditionally",
                "an event field cannot be compiled conditionally",
                "an event cannot be compiled conditionally",
            ]
        );
    }

    #[test]
    fn raw_and_plain_spellings_name_one_state_and_one_event() {
        let errors = messages(model(quote! {
            workflow W { initial r#A; events { Go, r#Go } state A { on r#Go => r#A; } state r#A {} }
        }));
        assert_eq!(errors, ["duplicate event `r#Go`", "duplicate state `r#A`"]);
    }

    #[test]
    fn unknown_lints_on_states_are_errors() {
        let errors = messages(model(quote! {
            workflow W { initial A; #[allow(dead_ends)] final A; }
        }));
        assert_eq!(errors, ["unknown workflow lint `dead_ends`: did you mean `dead_end`?"]);
    }
}
