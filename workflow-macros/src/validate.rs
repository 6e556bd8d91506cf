//! Stage 3: the checks a resolved model must pass, and what codegen needs
//! derived from it (handler signatures, generated event variants).
//!
//! Graph checks are lints ([`Lint`]) a user can switch off; the rest are
//! hard errors. Every error is reported, all in one build.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::Duration;

use proc_macro2::Span;
use quote::{format_ident, ToTokens};
use syn::{Ident, Type};

use crate::errors::Errors;
use crate::model::{same, text, Action, EventId, Lint, Model, StateId, StateKind, Trigger};

/// A model that passed every check, with what codegen derives from it.
pub struct Validated {
    pub model: Model,
    pub guards: Vec<Handler>,
    pub actions: Vec<Handler>,
    pub activities: Vec<Activity>,
    pub compensations: Vec<Compensation>,
    pub timers: Vec<Timer>,
}

/// A compensation of the handler trait.
pub struct Compensation {
    pub name: Ident,
    /// The output of the activity it undoes, which it receives by
    /// reference; `None` when its states invoke nothing or an activity
    /// whose output is written `()`: then it takes no output parameter.
    pub output: Option<Type>,
}

/// A guard or an action of the handler trait.
pub struct Handler {
    pub name: Ident,
    pub input: Input,
}

/// What a guard or an action receives besides the context.
#[derive(Clone)]
pub enum Input {
    /// Nothing: entry, exit and timer actions.
    Nothing,
    /// The payload of this event.
    Event(EventId),
    /// The whole event enum: the handler is used on several events.
    AnyEvent,
    /// The output of an activity (`done` arms).
    Output(Box<Type>),
    /// The activity's error (`error` arms).
    Error,
}

pub struct Activity {
    pub name: Ident,
    pub output: Type,
    /// `ChargePaymentDone` for `charge_payment`.
    pub done_variant: Ident,
    /// `ChargePaymentFailed` for `charge_payment`.
    pub failed_variant: Ident,
}

/// One `after` delay of one state, which becomes an event variant.
pub struct Timer {
    pub state: StateId,
    pub delay: Duration,
    /// `ShippingAfter48h`.
    pub variant: Ident,
}

impl Validated {
    /// The activity a state invokes.
    pub fn activity_of(&self, state: StateId) -> Option<&Activity> {
        let invoke = self.model.states[state].invoke.as_ref()?;
        self.activities.iter().find(|a| same(&a.name, &invoke.activity))
    }
}

pub fn validate(model: Model) -> syn::Result<Validated> {
    let mut errors = Errors::default();
    check_finals_and_invokes(&model, &mut errors);
    check_shadowed(&model, &mut errors);
    check_builtins(&model, &mut errors);
    check_graph(&model, &mut errors);
    check_targets(&model, &mut errors);
    check_eventless(&model, &mut errors);
    let mut signatures = Signatures::default();
    signatures.collect(&model, &mut errors);
    let (activities, timers) = generated_variants(&model, &signatures, &mut errors);
    let events = model.events.len() + 2 * activities.len() + timers.len();
    check_limits(
        model.name.span(),
        [model.states.len(), events, model.transitions.len()],
        &mut errors,
    );
    let Signatures {
        guards,
        actions,
        compensations,
        ..
    } = signatures;
    errors.finish(Validated {
        model,
        guards,
        actions,
        activities,
        compensations,
        timers,
    })
}

/// `Rejected` holds a state's index in 11 bits and an event's in 12 (the
/// largest value standing for none; the 24th bit is its reason), `Step` a transition's in 16: `counts`
/// are the states, the events (declared ones, activity outcomes and timers)
/// and the transitions.
fn check_limits(span: Span, counts: [usize; 3], errors: &mut Errors) {
    let limits = [
        (2047, "states"),
        (4095, "events (declared ones, activity outcomes and timers)"),
        (65535, "transitions"),
    ];
    for (count, (limit, what)) in counts.into_iter().zip(limits) {
        if count > limit {
            errors.push(
                span,
                format!("a workflow has at most {limit} {what}; this one has {count}"),
            );
        }
    }
}

fn lint(model: &Model, state: StateId, lint: Lint, span: Span, message: String, errors: &mut Errors) {
    if model.allowed.union(model.states[state].allowed).allows(lint) {
        return;
    }
    errors.push(
        span,
        format!("{message}\n(switch this check off with `#[allow({})]`)", lint.name()),
    );
}

fn check_finals_and_invokes(model: &Model, errors: &mut Errors) {
    for (id, state) in model.states.iter().enumerate() {
        if let StateKind::Final { .. } = state.kind {
            for &t in &state.transitions {
                errors.push(
                    model.transitions[t].span,
                    format!("final state `{}` cannot have outgoing transitions", state.name),
                );
            }
            if let Some(invoke) = &state.invoke {
                errors.push(
                    invoke.span,
                    format!("final state `{}` cannot invoke an activity", state.name),
                );
            }
            if let Some((span, _)) = &state.compensate {
                errors.push(*span, format!("final state `{}` has no step to compensate", state.name));
            }
            continue;
        }
        let Some(invoke) = &state.invoke else { continue };
        if !invoke.has_done {
            errors.push(
                invoke.span,
                format!(
                    "`invoke {}` has no `done` arm: add `done => STATE;` to say where the workflow goes next",
                    invoke.activity
                ),
            );
        }
        if !invoke.has_error {
            lint(
                model,
                id,
                Lint::UnhandledError,
                invoke.span,
                format!(
                    "`invoke {}` has no `error` arm: if it fails, state `{}` never moves on",
                    invoke.activity, state.name
                ),
                errors,
            );
        }
        if let Some((min, max, span)) = invoke.backoff {
            if min > max {
                errors.push(span, "backoff `MIN..MAX` needs MIN no larger than MAX");
            }
            if min.is_zero() {
                errors.push(span, "backoff must start above zero");
            }
        }
        if let Some((limit, span)) = invoke.timeout {
            if limit.is_zero() {
                errors.push(span, "a timeout of zero would fail every attempt");
            }
        }
        if let Some((expected, span)) = invoke.expected {
            if expected.is_zero() {
                errors.push(
                    span,
                    "an expected duration of zero is no estimate: write the typical time of one attempt, such as `expected 200ms`, or leave `expected` out",
                );
            }
        }
    }
}

/// Transitions whose every trigger an earlier unguarded transition of the
/// same state already takes can never fire.
fn check_shadowed(model: &Model, errors: &mut Errors) {
    for (id, state) in model.states.iter().enumerate() {
        let mut events: HashSet<EventId> = HashSet::new();
        let mut any = false;
        let mut others: Vec<&Trigger> = Vec::new();
        for &t in &state.transitions {
            let transition = &model.transitions[t];
            let shadowed = match &transition.trigger {
                Trigger::Events(list) => any || list.iter().all(|e| events.contains(e)),
                Trigger::Any => any,
                Trigger::Done | Trigger::Error | Trigger::After(_) => any || others.contains(&&transition.trigger),
                Trigger::Always | Trigger::StateDone | Trigger::DoneOf(_) => others.contains(&&transition.trigger),
                Trigger::Initial => false,
            };
            if shadowed {
                let message = format!(
                    "this transition can never fire: an earlier transition of `{}` on the same trigger has no guard",
                    state.name
                );
                lint(model, id, Lint::ShadowedTransition, transition.span, message, errors);
            } else if !transition.is_guarded() {
                match &transition.trigger {
                    Trigger::Events(list) => events.extend(list),
                    Trigger::Any => any = true,
                    other => others.push(other),
                }
            }
        }
    }
}

/// `raise` and `send` carry no payload, so they take unit events.
fn check_builtins(model: &Model, errors: &mut Errors) {
    let actions = model
        .states
        .iter()
        .flat_map(|s| s.entry.iter().chain(&s.exit))
        .chain(model.transitions.iter().flat_map(|t| &t.actions));
    for action in actions {
        let (span, event, verb) = match action {
            Action::Raise { span, event } => (*span, *event, "raise"),
            Action::Send { span, event, .. } => (*span, *event, "send"),
            Action::Call(_) | Action::Cancel { .. } => continue,
        };
        let event = &model.events[event];
        if event.fields.is_some() {
            errors.push(
                span,
                format!(
                    "`{verb} {}`: only unit events can be raised or sent, and this one has fields",
                    event.name
                ),
            );
        }
    }
}

/// Reachability over the state tree: dead ends, unreachable states, states
/// with no way to a final state, `on done` that can never fire.
fn check_graph(model: &Model, errors: &mut Errors) {
    let n = model.states.len();
    // Entering a state enters its ancestors and its default descendants.
    let mut enters: Vec<Vec<StateId>> = vec![Vec::new(); n];
    for (id, state) in model.states.iter().enumerate() {
        enters[id].extend(state.parent);
        match state.kind {
            StateKind::Compound { initial } => enters[id].push(initial),
            StateKind::Parallel => enters[id].extend(model.children(id).filter(|&c| !is_history(model, c))),
            _ => {}
        }
    }
    // Being active, a state may take its transitions.
    let mut next = enters.clone();
    for t in &model.transitions {
        next[t.source].extend(&t.targets);
    }
    let reachable = closure(&next, [model.initial]);
    // For finishing: being in a child means being in its parent, whose transitions apply.
    let mut prev: Vec<Vec<StateId>> = vec![Vec::new(); n];
    for (from, list) in next.iter().enumerate() {
        for &to in list {
            prev[to].push(from);
        }
    }
    let top_finals = (0..n).filter(|&s| model.states[s].parent.is_none() && is_final(model, s));
    let finishing = closure(&prev, top_finals);
    for (id, state) in model.states.iter().enumerate() {
        let span = state.name.span();
        if is_history(model, id) {
            continue;
        }
        if !reachable[id] {
            let message = format!(
                "state `{}` is unreachable from the initial state `{}`",
                state.name,
                model.state_name(model.initial)
            );
            lint(model, id, Lint::UnreachableState, span, message, errors);
            continue;
        }
        if state.kind != StateKind::Atomic {
            continue;
        }
        let in_parallel = model
            .ancestors_or_self(id)
            .any(|a| model.states[a].kind == StateKind::Parallel);
        let way_out = model.ancestors_or_self(id).any(|a| {
            model.states[a].transitions.iter().any(|&t| {
                let t = &model.transitions[t];
                !t.targets.is_empty() && t.trigger != Trigger::Initial
            })
        });
        if !way_out && !in_parallel {
            let message = format!(
                "state `{}` is a dead end: no transition leaves it; add one or declare it `final {};`",
                state.name, state.name
            );
            lint(model, id, Lint::DeadEnd, span, message, errors);
        } else if !finishing[id] {
            let message = format!("no final state can be reached from state `{}`", state.name);
            lint(model, id, Lint::NoPathToFinal, span, message, errors);
        }
    }
    for t in &model.transitions {
        let (of, written) = match t.trigger {
            Trigger::StateDone => (t.source, "`on done`".to_string()),
            Trigger::DoneOf(of) => (of, format!("`on done({})`", model.states[of].name)),
            _ => continue,
        };
        if let Some(region) = never_completes(model, of) {
            let message = format!(
                "{written} of `{}` can never fire: `{}` has no final state to reach",
                model.states[t.source].name, model.states[region].name
            );
            lint(model, t.source, Lint::NeverDone, t.span, message, errors);
        }
    }
}

/// Several targets must be able to be active together, each in a different
/// region of one parallel state; a history's default transition stays
/// inside the history's parent, the state it remembers.
fn check_targets(model: &Model, errors: &mut Errors) {
    let name = |s: StateId| &model.states[s].name;
    for t in &model.transitions {
        let source = &model.states[t.source];
        if let (StateKind::History { .. }, Some(parent)) = (source.kind, source.parent) {
            for (&target, &span) in t.targets.iter().zip(&t.target_spans) {
                if contains(model, parent, target) {
                    continue;
                }
                errors.push(
                    span,
                    format!(
                        "the default of history `{}` must be a state inside its parent `{}`: `{}` is not",
                        source.name,
                        name(parent),
                        name(target)
                    ),
                );
            }
        }
        // Each pair is reported at the later target.
        let targets = if t.trigger == Trigger::Initial {
            "initial states"
        } else {
            "targets"
        };
        for (i, &a) in t.targets.iter().enumerate() {
            for (&b, &span) in t.targets[i + 1..].iter().zip(&t.target_spans[i + 1..]) {
                let why = if a == b {
                    format!("target `{}` is named twice", name(a))
                } else if contains(model, a, b) || contains(model, b, a) {
                    let (outer, inner) = if a < b { (a, b) } else { (b, a) };
                    format!(
                        "{targets} `{}` and `{}` overlap (`{}` is inside `{}`): several {targets} must be in different regions of one parallel state",
                        name(a),
                        name(b),
                        name(inner),
                        name(outer)
                    )
                } else if common_ancestor(model, a, b).is_some_and(|p| model.states[p].kind == StateKind::Parallel) {
                    continue;
                } else {
                    format!(
                        "{targets} `{}` and `{}` cannot be active at once: several {targets} must be in different regions of one parallel state",
                        name(a),
                        name(b)
                    )
                };
                errors.push(span, why);
            }
        }
    }
}

/// Whether `inner` is a proper descendant of `outer`.
fn contains(model: &Model, outer: StateId, inner: StateId) -> bool {
    outer < inner && inner < model.states[outer].end
}

/// The innermost state that contains both `a` and `b`, neither containing the other.
fn common_ancestor(model: &Model, a: StateId, b: StateId) -> Option<StateId> {
    model.ancestors_or_self(a).skip(1).find(|&p| contains(model, p, b))
}

/// Eventless transitions: an unguarded cycle of them loops forever (the
/// interpreter cuts it short at run time, with an error), and a state whose
/// only transitions are guarded `always` arms is stuck when no guard holds.
fn check_eventless(model: &Model, errors: &mut Errors) {
    let always = |s: StateId| {
        model.states[s]
            .transitions
            .iter()
            .map(|&t| &model.transitions[t])
            .filter(|t| t.trigger == Trigger::Always)
    };
    for (id, state) in model.states.iter().enumerate() {
        if state.kind != StateKind::Atomic || state.transitions.is_empty() {
            continue;
        }
        let only_guarded_always = state.transitions.iter().all(|&t| {
            let t = &model.transitions[t];
            t.trigger == Trigger::Always && t.is_guarded() && !t.targets.is_empty()
        });
        if only_guarded_always {
            let message = format!(
                "state `{}` decides with guarded `always` arms only: when no guard holds it stays there with no \
                 transition to leave by; add `always => STATE;` last as the else",
                state.name
            );
            lint(model, id, Lint::DecisionWithoutElse, state.name.span(), message, errors);
        }
    }
    // A targetless `always` changes nothing that could stop it: without a
    // guard method it fires again at once, forever (`in(..)` conditions keep
    // holding, as the configuration stays the same).
    for t in model
        .transitions
        .iter()
        .filter(|t| t.trigger == Trigger::Always && t.targets.is_empty())
    {
        if t.guard.is_none() {
            let message = format!(
                "an eventless loop: an `always` without a target or a guard method in `{}` fires again as soon as it \
                 has fired, forever; the interpreter cuts the macrostep short after {} microsteps and `handle` returns \
                 an error; add `if GUARD` whose method the actions make false",
                model.states[t.source].name,
                workflow_runtime::chart::MAX_MICROSTEPS
            );
            lint(model, t.source, Lint::EventlessLoop, t.span, message, errors);
        }
    }
    // A state whose first `always` transition has no guard takes it as soon
    // as it is active, unless a descendant's eventless transition goes first.
    let n = model.states.len();
    let fires: Vec<Option<&crate::model::Transition>> = (0..n)
        .map(|s| {
            let first = always(s).next().filter(|t| !t.is_guarded())?;
            let inner = (s + 1..model.states[s].end).any(|d| always(d).next().is_some());
            (!is_history(model, s) && !inner).then_some(first)
        })
        .collect();
    // Which such states each one's transition enters.
    let next: Vec<Vec<StateId>> = fires
        .iter()
        .map(|t| {
            let Some(t) = t else { return Vec::new() };
            let mut entered = Vec::new();
            for &target in &t.targets {
                entered_by(model, t.source, target, &mut entered);
            }
            entered.retain(|&s| fires[s].is_some());
            entered
        })
        .collect();
    let reach: Vec<Vec<bool>> = (0..n).map(|s| closure(&next, next[s].iter().copied())).collect();
    let mut reported = vec![false; n];
    for s in (0..n).filter(|&s| reach[s][s]) {
        if reported[s] {
            continue;
        }
        let cycle: Vec<StateId> = (0..n).filter(|&x| x == s || (reach[s][x] && reach[x][s])).collect();
        for &x in &cycle {
            reported[x] = true;
        }
        if cycle
            .iter()
            .any(|&x| model.allowed.union(model.states[x].allowed).allows(Lint::EventlessLoop))
        {
            continue;
        }
        let through: Vec<String> = cycle
            .iter()
            .filter(|&&x| x != s)
            .map(|&x| format!("`{}`", model.states[x].name))
            .collect();
        let through = if through.is_empty() {
            String::new()
        } else {
            format!(" through {}", through.join(", "))
        };
        let message = format!(
            "an eventless loop: `always` transitions without guards lead from `{}` back to it{through}, forever; \
             the interpreter cuts the macrostep short after {} microsteps and `handle` returns an error",
            model.states[s].name,
            workflow_runtime::chart::MAX_MICROSTEPS
        );
        let span = fires[s].map_or(model.states[s].name.span(), |t| t.span);
        lint(model, s, Lint::EventlessLoop, span, message, errors);
    }
}

/// Adds the states a transition from `source` enters for `target`: the
/// target, its ancestors below the transition's domain (the innermost
/// compound state holding the source and the target; the source is exited
/// and re-entered, as the transition is external) and its default
/// descendants. A history target is left out: what it restores is known
/// only at run time.
fn entered_by(model: &Model, source: StateId, target: StateId, entered: &mut Vec<StateId>) {
    if is_history(model, target) {
        return;
    }
    let domain = model
        .ancestors_or_self(source)
        .skip(1)
        .find(|&p| matches!(model.states[p].kind, StateKind::Compound { .. }) && contains(model, p, target));
    for a in model.ancestors_or_self(target).take_while(|&a| Some(a) != domain) {
        entered.push(a);
    }
    let mut defaults = vec![target];
    while let Some(s) = defaults.pop() {
        match model.states[s].kind {
            StateKind::Compound { initial } => defaults.push(initial),
            StateKind::Parallel => defaults.extend(model.children(s).filter(|&c| !is_history(model, c))),
            _ => {}
        }
        if s != target {
            entered.push(s);
        }
    }
}

/// A state under `s` that keeps `s` from ever completing, if any: a
/// compound without a final child, or any such region of a parallel.
fn never_completes(model: &Model, s: StateId) -> Option<StateId> {
    match model.states[s].kind {
        StateKind::Final { .. } => None,
        StateKind::Compound { .. } => (!model.children(s).any(|c| is_final(model, c))).then_some(s),
        StateKind::Parallel => model
            .children(s)
            .filter(|&c| !is_history(model, c))
            .find_map(|c| never_completes(model, c)),
        StateKind::Atomic | StateKind::History { .. } => Some(s),
    }
}

fn is_final(model: &Model, s: StateId) -> bool {
    matches!(model.states[s].kind, StateKind::Final { .. })
}

fn is_history(model: &Model, s: StateId) -> bool {
    matches!(model.states[s].kind, StateKind::History { .. })
}

/// The states reachable from `start` along `edges`.
fn closure(edges: &[Vec<StateId>], start: impl IntoIterator<Item = StateId>) -> Vec<bool> {
    let mut seen = vec![false; edges.len()];
    let mut queue: VecDeque<StateId> = start.into_iter().collect();
    for &s in &queue {
        seen[s] = true;
    }
    while let Some(s) = queue.pop_front() {
        for &t in &edges[s] {
            if !seen[t] {
                seen[t] = true;
                queue.push_back(t);
            }
        }
    }
    seen
}

/// Which handler each name is, and what it receives.
#[derive(Default)]
struct Signatures {
    guards: Vec<Handler>,
    actions: Vec<Handler>,
    activities: Vec<(Ident, Type)>,
    compensations: Vec<Compensation>,
    /// Name -> (role, span of first use), to refuse one name in two roles.
    roles: HashMap<String, (&'static str, Span)>,
}

impl Signatures {
    fn collect(&mut self, model: &Model, errors: &mut Errors) {
        for state in &model.states {
            for action in state.entry.iter().chain(&state.exit).filter_map(Action::call) {
                self.action(model, action, Input::Nothing, errors);
            }
            if let Some(invoke) = &state.invoke {
                if self.role(&invoke.activity, "activity", errors) {
                    match self.activities.iter().find(|(name, _)| same(name, &invoke.activity)) {
                        None => self.activities.push((invoke.activity.clone(), invoke.output.clone())),
                        Some((_, output)) if same_type(output, &invoke.output) => {}
                        Some((_, output)) => errors.push(
                            syn::spanned::Spanned::span(&invoke.output),
                            format!(
                                "activity `{}` is declared with output `{}` elsewhere: one activity has one output type",
                                invoke.activity,
                                output.to_token_stream()
                            ),
                        ),
                    }
                }
            }
            if let Some((_, compensation)) = &state.compensate {
                if self.role(compensation, "compensation", errors) {
                    self.compensation(compensation, state.invoke.as_ref().map(|i| &i.output), errors);
                }
            }
            for &t in &state.transitions {
                let transition = &model.transitions[t];
                let input = match &transition.trigger {
                    Trigger::Events(list) if list.len() == 1 => Input::Event(list[0]),
                    Trigger::Events(_) | Trigger::Any => Input::AnyEvent,
                    Trigger::Done => {
                        Input::Output(Box::new(state.invoke.as_ref().map_or_else(unit, |i| i.output.clone())))
                    }
                    Trigger::Error => Input::Error,
                    Trigger::After(_)
                    | Trigger::Always
                    | Trigger::StateDone
                    | Trigger::DoneOf(_)
                    | Trigger::Initial => Input::Nothing,
                };
                if let Some(guard) = &transition.guard {
                    self.guard(model, guard, input.clone(), errors);
                }
                for action in transition.actions.iter().filter_map(Action::call) {
                    self.action(model, action, input.clone(), errors);
                }
            }
        }
    }

    /// Records compensation `name` of a state invoking an activity with
    /// `output` (if any); one compensation receives one output type.
    fn compensation(&mut self, name: &Ident, output: Option<&Type>, errors: &mut Errors) {
        let output = output.filter(|t| !same_type(t, &unit())).cloned();
        let shown = |t: &Option<Type>| match t {
            Some(t) => format!("the output `{}`", t.to_token_stream()),
            None => "no output (its state invokes nothing, or an activity with output `()`)".to_string(),
        };
        match self.compensations.iter().find(|c| same(&c.name, name)) {
            None => self.compensations.push(Compensation {
                name: name.clone(),
                output,
            }),
            Some(c)
                if c.output.as_ref().map(|t| t.to_token_stream().to_string())
                    == output.as_ref().map(|t| t.to_token_stream().to_string()) => {}
            Some(c) => errors.push(
                name.span(),
                format!(
                    "compensation `{name}` would receive {} here but {} elsewhere: a compensation \
                     receives the output of the activity it undoes, so the states it undoes need \
                     activities with one output type",
                    shown(&output),
                    shown(&c.output)
                ),
            ),
        }
    }

    /// Records `name` in `role`; false (with an error) if it already has another role.
    fn role(&mut self, name: &Ident, role: &'static str, errors: &mut Errors) -> bool {
        match self.roles.get(&text(name)) {
            Some((existing, _)) if *existing != role => {
                errors.push(
                    name.span(),
                    format!(
                        "`{name}` is already used as {} {existing}; {} {role} needs a name of its own",
                        article(existing),
                        article(role)
                    ),
                );
                false
            }
            Some(_) => true,
            None => {
                self.roles.insert(text(name), (role, name.span()));
                true
            }
        }
    }

    fn guard(&mut self, model: &Model, name: &Ident, input: Input, errors: &mut Errors) {
        if self.role(name, "guard", errors) {
            merge(model, &mut self.guards, name, input, "guard", errors);
        }
    }

    fn action(&mut self, model: &Model, name: &Ident, input: Input, errors: &mut Errors) {
        if self.role(name, "action", errors) {
            merge(model, &mut self.actions, name, input, "action", errors);
        }
    }
}

/// Adds a use of handler `name` receiving `input`: one event widens to the
/// event enum when the handler serves several events; other mixes are errors.
fn merge(model: &Model, list: &mut Vec<Handler>, name: &Ident, input: Input, role: &str, errors: &mut Errors) {
    let Some(handler) = list.iter_mut().find(|h| same(&h.name, name)) else {
        list.push(Handler {
            name: name.clone(),
            input,
        });
        return;
    };
    let merged = match (&handler.input, &input) {
        (Input::Nothing, Input::Nothing) | (Input::Error, Input::Error) => None,
        (Input::Event(a), Input::Event(b)) if a == b => None,
        (Input::Event(_) | Input::AnyEvent, Input::Event(_) | Input::AnyEvent) => Some(Input::AnyEvent),
        (Input::Output(a), Input::Output(b)) if same_type(a, b) => None,
        _ => {
            errors.push(
                name.span(),
                format!(
                    "{role} `{name}` would receive {} here but {} elsewhere: use a separate {role} for each",
                    describe(model, &input),
                    describe(model, &handler.input)
                ),
            );
            None
        }
    };
    if let Some(input) = merged {
        handler.input = input;
    }
}

fn describe(model: &Model, input: &Input) -> String {
    match input {
        Input::Nothing => "only the context".to_string(),
        Input::Event(e) => format!("event `{}`", model.events[*e].name),
        Input::AnyEvent => "several events".to_string(),
        Input::Output(ty) => format!("an activity output `{}`", ty.to_token_stream()),
        Input::Error => "an activity error".to_string(),
    }
}

fn article(role: &str) -> &'static str {
    if role.starts_with('a') {
        "an"
    } else {
        "a"
    }
}

fn unit() -> Type {
    syn::parse_quote!(())
}

pub fn same_type(a: &Type, b: &Type) -> bool {
    a.to_token_stream().to_string() == b.to_token_stream().to_string()
}

/// The event variants the macro adds (activity done/failed, timers), checked
/// against the declared events and the generated type names.
fn generated_variants(model: &Model, signatures: &Signatures, errors: &mut Errors) -> (Vec<Activity>, Vec<Timer>) {
    let activities: Vec<Activity> = signatures
        .activities
        .iter()
        .map(|(name, output)| {
            // `r#match` generates `MatchDone`.
            let camel = camel_case(&text(name));
            Activity {
                name: name.clone(),
                output: output.clone(),
                done_variant: format_ident!("{}Done", camel, span = name.span()),
                failed_variant: format_ident!("{}Failed", camel, span = name.span()),
            }
        })
        .collect();
    let mut timers: Vec<Timer> = Vec::new();
    for t in &model.transitions {
        if let Trigger::After(delay) = t.trigger {
            if !timers.iter().any(|x| x.state == t.source && x.delay == delay) {
                let state = &model.states[t.source].name;
                let text = t
                    .delay_text
                    .clone()
                    .unwrap_or_else(|| workflow_runtime::format_duration(delay));
                timers.push(Timer {
                    state: t.source,
                    delay,
                    variant: format_ident!("{}After{}", state, text, span = t.span),
                });
            }
        }
    }

    let name = &model.name;
    let mut taken: HashMap<String, String> = HashMap::new();
    for generated in ["", "State", "Event", "Handlers"] {
        taken.insert(
            format!("{name}{generated}"),
            format!("the generated type `{name}{generated}`"),
        );
    }
    for activity in &activities {
        for variant in [&activity.done_variant, &activity.failed_variant] {
            let what = format!("the generated event `{variant}` of activity `{}`", activity.name);
            if let Some(other) = taken.insert(variant.to_string(), what) {
                errors.push(
                    activity.name.span(),
                    format!(
                        "activity `{}` would generate `{variant}`, which is already {other}",
                        activity.name
                    ),
                );
            }
        }
    }
    for timer in &timers {
        taken.insert(
            timer.variant.to_string(),
            format!(
                "the generated timer event of state `{}`",
                model.states[timer.state].name
            ),
        );
    }
    for event in &model.events {
        if let Some(what) = taken.get(&text(&event.name)) {
            errors.push(
                event.name.span(),
                format!("event name `{}` is reserved: it is {what}", event.name),
            );
        }
    }
    (activities, timers)
}

/// `charge_payment` -> `ChargePayment`.
pub fn camel_case(name: &str) -> String {
    name.split('_')
        .filter(|part| !part.is_empty())
        .map(|part| {
            let mut chars = part.chars();
            chars
                .next()
                .map_or_else(String::new, |first| first.to_uppercase().chain(chars).collect())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    fn check(tokens: proc_macro2::TokenStream) -> syn::Result<Validated> {
        validate(crate::model::build(syn::parse2(tokens)?)?)
    }

    fn messages(tokens: proc_macro2::TokenStream) -> Vec<String> {
        match check(tokens) {
            Ok(_) => Vec::new(),
            Err(e) => e
                .into_iter()
                .map(|e| e.to_string().lines().next().unwrap_or("").to_string())
                .collect(),
        }
    }

    #[test]
    fn states_events_and_transitions_are_limited_to_what_step_and_rejected_hold() {
        let messages = |counts| {
            let mut errors = Errors::default();
            check_limits(Span::call_site(), counts, &mut errors);
            match errors.finish(()) {
                Ok(()) => Vec::new(),
                Err(e) => e.into_iter().map(|e| e.to_string()).collect(),
            }
        };
        assert!(messages([2_047, 4_095, 65_535]).is_empty());
        assert_eq!(
            messages([2_048, 3, 65_536]),
            [
                "a workflow has at most 2047 states; this one has 2048",
                "a workflow has at most 65535 transitions; this one has 65536"
            ]
        );
        assert_eq!(
            messages([1, 4_096, 1]),
            ["a workflow has at most 4095 events (declared ones, activity outcomes and timers); this one has 4096"]
        );
    }

    #[test]
    fn a_sound_workflow_passes_and_derives_signatures() {
        let v = check(quote! {
            workflow Order {
                initial Start;
                events { Go { id: u64 }, Stop }
                state Start { entry hello; on Go if ok => Busy / log; on Stop / log; after 5m => Busy; }
                state Busy { invoke work -> u32 { done => Done / keep; error => Done / oops; } }
                final Done;
            }
        })
        .unwrap_or_else(|e| panic!("{e}"));
        let input = |name: &str| {
            v.actions
                .iter()
                .chain(&v.guards)
                .find(|h| h.name == name)
                .map(|h| h.input.clone())
                .unwrap()
        };
        assert!(matches!(input("hello"), Input::Nothing));
        assert!(matches!(input("ok"), Input::Event(0)));
        assert!(matches!(input("log"), Input::AnyEvent));
        assert!(matches!(input("keep"), Input::Output(_)));
        assert!(matches!(input("oops"), Input::Error));
        assert_eq!(v.activities[0].done_variant, "WorkDone");
        assert_eq!(v.activities[0].failed_variant, "WorkFailed");
        assert_eq!(v.timers[0].variant, "StartAfter5m");
    }

    #[test]
    fn graph_checks() {
        let errors = messages(quote! {
            workflow W {
                initial A;
                events { Go }
                state A { on Go => B; on Go => C; }
                state B { on Go => B; }
                state C { }
                state Lost { on Go => A; }
                final End;
            }
        });
        assert_eq!(
            errors,
            [
                "this transition can never fire: an earlier transition of `A` on the same trigger has no guard",
                "no final state can be reached from state `A`",
                "no final state can be reached from state `B`",
                "state `C` is a dead end: no transition leaves it; add one or declare it `final C;`",
                "state `Lost` is unreachable from the initial state `A`",
                "state `End` is unreachable from the initial state `A`",
            ]
        );
    }

    #[test]
    fn lints_can_be_allowed_on_the_workflow_or_a_state() {
        let errors = messages(quote! {
            #[allow(unreachable_state)]
            workflow W {
                initial A;
                events { Go }
                #[allow(no_path_to_final)]
                state A { on Go => A; }
                final End;
            }
        });
        assert!(errors.is_empty(), "{errors:?}");
    }

    #[test]
    fn invoke_and_final_checks() {
        let errors = messages(quote! {
            workflow W {
                initial A;
                events { Go }
                state A { invoke work -> u8 { retry 1 backoff 5s..1s; timeout 0ms; expected 0s; error => B; } on Go => B; }
                final B { on Go => A; }
            }
        });
        assert_eq!(
            errors,
            [
                "`invoke work` has no `done` arm: add `done => STATE;` to say where the workflow goes next",
                "backoff `MIN..MAX` needs MIN no larger than MAX",
                "a timeout of zero would fail every attempt",
                "an expected duration of zero is no estimate: write the typical time of one attempt, such as `expected 200ms`, or leave `expected` out",
                "final state `B` cannot have outgoing transitions",
            ]
        );
    }

    #[test]
    fn handler_conflicts() {
        let errors = messages(quote! {
            workflow W {
                initial A;
                events { Go }
                state A { entry x; on Go if x => B / y; invoke y -> u8 { done => B / z; error => B; } }
                state B { entry z; invoke other -> u16 { done => C; error => C; } }
                state C { invoke other -> u32 { done => D; error => D; } }
                final D;
            }
        });
        assert_eq!(
            errors,
            [
                "`x` is already used as an action; a guard needs a name of its own",
                "`y` is already used as an activity; an action needs a name of its own",
                "action `z` would receive only the context here but an activity output `u8` elsewhere: use a separate action for each",
                "activity `other` is declared with output `u16` elsewhere: one activity has one output type",
            ]
        );
    }

    #[test]
    fn reserved_event_names() {
        let errors = messages(quote! {
            workflow W {
                initial A;
                events { WorkDone, WState, AAfter1000ms }
                state A { invoke work -> () { done => B; error => B; } after 1000ms => B; }
                final B;
            }
        });
        assert_eq!(
            errors,
            [
                "event name `WorkDone` is reserved: it is the generated event `WorkDone` of activity `work`",
                "event name `WState` is reserved: it is the generated type `WState`",
                "event name `AAfter1000ms` is reserved: it is the generated timer event of state `A`",
            ]
        );
    }

    #[test]
    fn several_targets_must_be_in_different_regions_of_one_parallel_state() {
        let errors = messages(quote! {
            workflow W {
                initial Start;
                events { Go, Both, Same, Nested, Regions, Back }
                state Start {
                    on Go => Shipping, Billing;
                    on Same => Shipping, Shipping;
                    on Nested => P, A1;
                    on Regions => A1, B1;
                    on Back => H, B1;
                }
                state Shipping { on Both => Done; }
                state Billing { on Both => Done; }
                parallel P {
                    state A { history H; state A1 { on Both => Done; } }
                    state B { state B1 { on Both => Done; } }
                }
                final Done;
            }
        });
        assert_eq!(
            errors,
            [
                "targets `Shipping` and `Billing` cannot be active at once: several targets must be in different regions of one parallel state",
                "target `Shipping` is named twice",
                "targets `P` and `A1` overlap (`A1` is inside `P`): several targets must be in different regions of one parallel state",
            ]
        );
    }

    #[test]
    fn a_history_default_stays_inside_its_parent() {
        let errors = messages(quote! {
            #[allow(no_path_to_final)]
            workflow W {
                initial Order;
                events { Pause, Resume }
                state Order {
                    history Back => Paused;
                    history deep Deep => Working;
                    state Working { on Pause => Paused; }
                }
                state Paused { on Resume => Back; on Pause => Deep; }
            }
        });
        assert_eq!(
            errors,
            ["the default of history `Back` must be a state inside its parent `Order`: `Paused` is not"]
        );
    }

    #[test]
    fn unguarded_eventless_cycles_are_linted() {
        let errors = messages(quote! {
            workflow W {
                initial Spin;
                events { Go }
                state Spin { always => Spin; }
                state Ping { always => Pong; }
                state Pong { on Go => Done; always => Ping; }
                state Outer { always => Inner; state Inner { on Go => Done; } }
                state Polling { always if ready => Done; always => Polling; }
                state Deeper { always => Deeper; state Decides { always if ready => Done; always => Done; } }
                final Done;
            }
        });
        let loops: Vec<&String> = errors.iter().filter(|e| e.starts_with("an eventless loop")).collect();
        assert_eq!(
            loops,
            [
                "an eventless loop: `always` transitions without guards lead from `Spin` back to it, forever; the interpreter cuts the macrostep short after 10000 microsteps and `handle` returns an error",
                "an eventless loop: `always` transitions without guards lead from `Ping` back to it through `Pong`, forever; the interpreter cuts the macrostep short after 10000 microsteps and `handle` returns an error",
                "an eventless loop: `always` transitions without guards lead from `Outer` back to it, forever; the interpreter cuts the macrostep short after 10000 microsteps and `handle` returns an error",
            ],
            "a guard may end a loop, and an inner eventless transition may go first"
        );
    }

    #[test]
    fn targetless_and_internal_eventless_loops_are_linted() {
        let errors = messages(quote! {
            workflow W {
                initial Log;
                events { Go }
                state Log { always / log; on Go => Watch; }
                state Watch { always if in(Watch) / log; on Go => Count; }
                state Count { always if below / count; on Go => Move; }
                state Move { always => internal A; state A { on Go => Done; } }
                final Done;
            }
        });
        let loops: Vec<&String> = errors.iter().filter(|e| e.starts_with("an eventless loop")).collect();
        assert_eq!(
            loops,
            [
                "an eventless loop: an `always` without a target or a guard method in `Log` fires again as soon as it has fired, forever; the interpreter cuts the macrostep short after 10000 microsteps and `handle` returns an error; add `if GUARD` whose method the actions make false",
                "an eventless loop: an `always` without a target or a guard method in `Watch` fires again as soon as it has fired, forever; the interpreter cuts the macrostep short after 10000 microsteps and `handle` returns an error; add `if GUARD` whose method the actions make false",
                "an eventless loop: `always` transitions without guards lead from `Move` back to it, forever; the interpreter cuts the macrostep short after 10000 microsteps and `handle` returns an error",
            ],
            "a guard method may end a targetless loop (`count` makes `below` false)"
        );
    }

    #[test]
    fn a_decision_without_else_is_linted() {
        let errors = messages(quote! {
            #[allow(unreachable_state)]
            workflow W {
                initial Decide;
                events { Go }
                state Decide { always if a => Done; always if b => Done; }
                state Waits { always if a => Done; on Go => Done; }
                state Complete { always if a => Done; always => Done; }
                #[allow(decision_without_else)]
                state Allowed { always if a => Done; }
                final Done;
            }
        });
        assert_eq!(
            errors,
            ["state `Decide` decides with guarded `always` arms only: when no guard holds it stays there with no transition to leave by; add `always => STATE;` last as the else"]
        );
    }

    #[test]
    fn an_eventless_loop_can_be_allowed_on_any_of_its_states() {
        let errors = messages(quote! {
            workflow W {
                initial Ping;
                state Ping { always => Pong; }
                #[allow(eventless_loop, no_path_to_final)]
                state Pong { always => Ping; }
            }
        });
        assert_eq!(errors, ["no final state can be reached from state `Ping`"]);
    }

    #[test]
    fn camel_case_names() {
        assert_eq!(camel_case("charge_payment"), "ChargePayment");
        assert_eq!(camel_case("ship"), "Ship");
        assert_eq!(camel_case("a__b_"), "AB");
    }
}
