//! A workflow's graph in the formats of other statechart tools: SCXML 1.0 ([`Graph::to_scxml`])
//! and XState v5 machine configuration JSON ([`Graph::to_xstate`]).
//!
//! Both are deterministic (the same graph gives the same bytes) and follow the block's document
//! order, which both formats use to choose between transitions. What the formats cannot say
//! natively (guards and actions are names for the host application, activities are services of
//! the handler trait, compensations have no counterpart) is carried as documented below, so that
//! a chart can be opened in a visual editor and its structure and names survive.

use std::fmt::Write as _;
use std::time::Duration;

use crate::graph::{EventKind, Graph, StateKind, TransitionInfo, Trigger};

#[cfg(feature = "import")]
pub mod import;

/// The XML namespace of this crate's SCXML extension elements and attributes (prefix `wf`).
pub const SCXML_NAMESPACE: &str = "urn:x-workflow-rs:scxml:1";

/// One action of a transition, entry or exit list, read back from its label (the way the
/// `workflow!` block spells it: `notify`, `raise Pong`, `send Reminder after 1h as r`,
/// `cancel r`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Action<'a> {
    Call(&'a str),
    Raise(&'a str),
    Send {
        event: &'a str,
        delay: Option<Duration>,
        id: &'a str,
    },
    Cancel(&'a str),
}

impl<'a> Action<'a> {
    fn parse(label: &'a str) -> Action<'a> {
        let words: Vec<&'a str> = label.split_whitespace().collect();
        match words.as_slice() {
            ["raise", event] => Action::Raise(event),
            ["cancel", id] => Action::Cancel(id),
            ["send", event, rest @ ..] => {
                let (mut delay, mut id) = (None, *event);
                let mut rest = rest;
                while let [key, value, tail @ ..] = rest {
                    match *key {
                        "after" => delay = crate::parse_duration(value),
                        "as" => id = value,
                        _ => return Action::Call(label),
                    }
                    rest = tail;
                }
                if rest.is_empty() {
                    Action::Send { event, delay, id }
                } else {
                    Action::Call(label)
                }
            }
            _ => Action::Call(label),
        }
    }
}

/// What a transition's trigger is called in both formats: a declared event by its name, an
/// activity's outcome as `done.invoke.ACTIVITY` / `error.invoke.ACTIVITY`, a timer by its
/// event's name, `*` for any event, `done.state.STATE` for a completion.
fn trigger_names(graph: &Graph<'_>, t: &TransitionInfo<'_>) -> Vec<String> {
    match t.trigger {
        Trigger::Events(list) => list
            .iter()
            .map(|&e| match graph.events.get(e) {
                Some(event) => match event.kind {
                    EventKind::Done(activity) => format!("done.invoke.{activity}"),
                    EventKind::Failed(activity) => format!("error.invoke.{activity}"),
                    EventKind::Declared | EventKind::Timer { .. } => event.name.to_string(),
                },
                None => format!("#{e}"),
            })
            .collect(),
        Trigger::Any => vec!["*".to_string()],
        Trigger::Always | Trigger::Initial => Vec::new(),
        Trigger::StateDone => vec![format!("done.state.{}", graph.states[t.source].name)],
        Trigger::DoneOf(s) => vec![format!("done.state.{}", graph.states[s].name)],
    }
}

/// A transition's SCXML `cond`: `In('S')` for each state it needs active, then its guard's
/// name, joined by `&&`; `None` without either.
fn scxml_cond(graph: &Graph<'_>, t: &TransitionInfo<'_>) -> Option<String> {
    let conditions: Vec<String> = t
        .in_states
        .iter()
        .map(|&s| format!("In('{}')", graph.states[s].name))
        .chain(
            t.not_in_states
                .iter()
                .map(|&s| format!("!In('{}')", graph.states[s].name)),
        )
        .chain(t.guard.map(str::to_string))
        .collect();
    (!conditions.is_empty()).then(|| conditions.join(" && "))
}

/// The default entry transition of compound state `s` (`initial A, B / act;`), if it has one.
fn initial_transition<'g>(graph: &'g Graph<'_>, s: usize) -> Option<&'g TransitionInfo<'g>> {
    graph
        .transitions_from(s)
        .first()
        .filter(|t| t.trigger == Trigger::Initial)
}

/// The timers (`after`) of state `s`: each timer event's index, name and delay.
fn timers<'g>(graph: &'g Graph<'_>, s: usize) -> impl Iterator<Item = (&'g str, Duration)> + 'g {
    graph.events.iter().filter_map(move |e| match e.kind {
        EventKind::Timer { state, delay } if state == s => Some((e.name, delay)),
        _ => None,
    })
}

impl Graph<'_> {
    /// Renders the workflow as an SCXML 1.0 document (null data model).
    ///
    /// States, compound initial children, `<parallel>`, `<final>`, `<history>` with its default
    /// transition, and transitions (event lists, targets, `type="internal"`, eventless ones) are
    /// plain SCXML, as are `raise` (`<raise>`), `send .. after .. as ..` (`<send>` with `delay`
    /// and `id`) and `cancel` (`<cancel sendid>`). The rest is carried in the
    /// [`SCXML_NAMESPACE`] (prefix `wf`):
    ///
    /// - a guard is the transition's `cond`, holding the guard's name, after an `In('S')` for
    ///   each `in(S)` condition and a `!In('S')` for each `!in(S)`, joined by `&&`
    ///   (`In('Paid') && ready`);
    /// - a compound state's default entry (`initial A, B / act;`) is `initial="A B"`, or an
    ///   `<initial>` element whose transition holds the actions;
    /// - `on done(P)` is a transition on `done.state.P`;
    /// - an action is `<wf:action name=".."/>` in the transition, `<onentry>` or `<onexit>`;
    /// - an activity is `<invoke id="ACTIVITY" type="urn:x-workflow-rs:activity">` with `wf:output`
    ///   and, where declared, `wf:attempts`, `wf:backoff`, `wf:timeout`, `wf:resource` and
    ///   `wf:expected`; its outcomes are the events `done.invoke.ACTIVITY` and
    ///   `error.invoke.ACTIVITY`;
    /// - a compensation is `<wf:compensate name=".."/>` in its state;
    /// - `after 48h => T` is a delayed `<send>` of the timer's event in `<onentry>`, cancelled in
    ///   `<onexit>`, and a transition on that event;
    /// - `final F (failure)` is `<final id="F" wf:failure="true"/>`;
    /// - the declared events and their payload fields are listed in `<wf:events>`.
    ///
    /// ```
    /// use workflow::prelude::*;
    ///
    /// workflow! {
    ///     workflow Door {
    ///         initial Closed;
    ///         events { Push, Kick }
    ///         state Closed { on Push if unlocked => Open / creak; }
    ///         state Open { on Kick => Broken; after 2h => Closed; }
    ///         final Broken (failure);
    ///     }
    /// }
    /// let scxml = Door::graph().to_scxml();
    /// assert!(scxml.contains(r#"<transition event="Push" cond="unlocked" target="Open">"#));
    /// assert!(scxml.contains(r#"<send event="OpenAfter2h" delay="7200000ms" id="OpenAfter2h"/>"#));
    /// assert_eq!(scxml, Door::graph().to_scxml()); // deterministic
    /// ```
    pub fn to_scxml(&self) -> String {
        let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        let _ = write!(
            out,
            "<scxml xmlns=\"http://www.w3.org/2005/07/scxml\" xmlns:wf=\"{SCXML_NAMESPACE}\" version=\"1.0\" datamodel=\"null\" name=\"{}\"",
            xml(self.name)
        );
        if let Some(initial) = self.states.get(self.initial) {
            let _ = write!(out, " initial=\"{}\"", xml(initial.name));
        }
        out.push_str(">\n");
        let declared: Vec<_> = self.events.iter().filter(|e| e.kind == EventKind::Declared).collect();
        if !declared.is_empty() {
            out.push_str("  <wf:events>\n");
            for event in declared {
                if event.fields.is_empty() {
                    let _ = writeln!(out, "    <wf:event name=\"{}\"/>", xml(event.name));
                } else {
                    let _ = writeln!(out, "    <wf:event name=\"{}\">", xml(event.name));
                    for (name, ty) in event.fields {
                        let _ = writeln!(out, "      <wf:field name=\"{}\" type=\"{}\"/>", xml(name), xml(ty));
                    }
                    out.push_str("    </wf:event>\n");
                }
            }
            out.push_str("  </wf:events>\n");
        }
        for s in self.children(None) {
            self.scxml_state(s, 1, &mut out);
        }
        out.push_str("</scxml>\n");
        out
    }

    fn scxml_state(&self, s: usize, depth: usize, out: &mut String) {
        let state = &self.states[s];
        let pad = "  ".repeat(depth);
        let id = xml(state.name);
        let (tag, attributes) = match state.kind {
            StateKind::Atomic => ("state", String::new()),
            StateKind::Compound { initial } => match initial_transition(self, s) {
                Some(t) if t.actions.is_empty() => ("state", format!(" initial=\"{}\"", xml(&self.names(t.targets)))),
                Some(_) => ("state", String::new()),
                None => ("state", format!(" initial=\"{}\"", xml(self.states[initial].name))),
            },
            StateKind::Parallel => ("parallel", String::new()),
            StateKind::Final { failure } => (
                "final",
                if failure {
                    " wf:failure=\"true\"".into()
                } else {
                    String::new()
                },
            ),
            StateKind::History { deep, .. } => (
                "history",
                format!(" type=\"{}\"", if deep { "deep" } else { "shallow" }),
            ),
        };
        let timers: Vec<(&str, Duration)> = timers(self, s).collect();
        let children: Vec<usize> = self.children(Some(s)).collect();
        let transitions = self.transitions_from(s);
        let empty = state.entry.is_empty()
            && state.exit.is_empty()
            && timers.is_empty()
            && state.invoke.is_none()
            && state.compensate.is_none()
            && children.is_empty()
            && transitions.is_empty();
        if empty {
            let _ = writeln!(out, "{pad}<{tag} id=\"{id}\"{attributes}/>");
            return;
        }
        let _ = writeln!(out, "{pad}<{tag} id=\"{id}\"{attributes}>");
        if !state.entry.is_empty() || !timers.is_empty() {
            let _ = writeln!(out, "{pad}  <onentry>");
            for action in state.entry {
                scxml_action(action, depth + 2, out);
            }
            for (event, delay) in &timers {
                let _ = writeln!(
                    out,
                    "{pad}    <send event=\"{0}\" delay=\"{1}ms\" id=\"{0}\"/>",
                    xml(event),
                    delay.as_millis()
                );
            }
            let _ = writeln!(out, "{pad}  </onentry>");
        }
        if !state.exit.is_empty() || !timers.is_empty() {
            let _ = writeln!(out, "{pad}  <onexit>");
            for action in state.exit {
                scxml_action(action, depth + 2, out);
            }
            for (event, _) in &timers {
                let _ = writeln!(out, "{pad}    <cancel sendid=\"{}\"/>", xml(event));
            }
            let _ = writeln!(out, "{pad}  </onexit>");
        }
        if let Some(invoke) = &state.invoke {
            let _ = write!(
                out,
                "{pad}  <invoke id=\"{}\" type=\"urn:x-workflow-rs:activity\" wf:output=\"{}\"",
                xml(invoke.activity),
                xml(invoke.output)
            );
            let policy = &invoke.policy;
            if policy.max_attempts > 1 {
                let _ = write!(
                    out,
                    " wf:attempts=\"{}\" wf:backoff=\"{}..{}\"",
                    policy.max_attempts,
                    crate::format_duration(policy.initial_interval),
                    crate::format_duration(policy.max_interval)
                );
            }
            if let Some(timeout) = policy.timeout {
                let _ = write!(out, " wf:timeout=\"{}\"", crate::format_duration(timeout));
            }
            if let Some(resource) = invoke.resource {
                let _ = write!(out, " wf:resource=\"{}\"", xml(resource));
            }
            if let Some(expected) = invoke.expected {
                let _ = write!(out, " wf:expected=\"{}\"", crate::format_duration(expected));
            }
            out.push_str("/>\n");
        }
        if let Some(compensate) = state.compensate {
            let _ = writeln!(out, "{pad}  <wf:compensate name=\"{}\"/>", xml(compensate));
        }
        for t in transitions {
            if t.trigger == Trigger::Initial {
                if !t.actions.is_empty() {
                    let _ = writeln!(out, "{pad}  <initial>");
                    let _ = writeln!(out, "{pad}    <transition target=\"{}\">", xml(&self.names(t.targets)));
                    for action in t.actions {
                        scxml_action(action, depth + 3, out);
                    }
                    let _ = writeln!(out, "{pad}    </transition>");
                    let _ = writeln!(out, "{pad}  </initial>");
                }
                continue;
            }
            let mut open = format!("{pad}  <transition");
            let events = trigger_names(self, t);
            if !events.is_empty() {
                let _ = write!(open, " event=\"{}\"", xml(&events.join(" ")));
            }
            if let Some(cond) = scxml_cond(self, t) {
                let _ = write!(open, " cond=\"{}\"", xml(&cond));
            }
            if !t.targets.is_empty() {
                let _ = write!(open, " target=\"{}\"", xml(&self.names(t.targets)));
            }
            if t.internal {
                open.push_str(" type=\"internal\"");
            }
            if t.actions.is_empty() {
                let _ = writeln!(out, "{open}/>");
            } else {
                let _ = writeln!(out, "{open}>");
                for action in t.actions {
                    scxml_action(action, depth + 2, out);
                }
                let _ = writeln!(out, "{pad}  </transition>");
            }
        }
        for c in children {
            self.scxml_state(c, depth + 1, out);
        }
        let _ = writeln!(out, "{pad}</{tag}>");
    }

    /// Renders the workflow as an XState v5 machine configuration (JSON, for `createMachine`).
    ///
    /// Every state has an `id` equal to its name (names are unique in a workflow) and targets
    /// are written `#Name`. States, `initial`, `type: "parallel" | "final" | "history"` (with
    /// `history: "deep"` and the default `target`), `entry`, `exit`, `on` (`*` for `on _`),
    /// `always`, `after` (milliseconds), `onDone` and `invoke` (`src` the activity, `onDone` /
    /// `onError` its outcomes) are XState's own; transitions leave their source and enter it
    /// again (`reenter: true`) unless the block wrote `=> internal` with targets inside the
    /// source, as SCXML's external transitions do. Guards and actions are referenced by name, for the application to
    /// `provide`; `raise`, `send` and `cancel` are parameterised actions
    /// (`{"type": "workflow.raise", "params": {"event": "Pong"}}`,
    /// `{"type": "workflow.send", "params": {"event": "E", "delay": 3600000, "id": "r"}}`,
    /// `{"type": "workflow.cancel", "params": {"id": "r"}}`). `in(S)` conditions make the guard
    /// `{"type": "workflow.in", "params": {"states": ["#S"], "not": ["#T"], "guard": "g"}}` (JSON
    /// cannot name XState's `stateIn`: a consumer turns it into
    /// `and([stateIn('#S'), not(stateIn('#T')), 'g'])`; `not` and `guard` only when present); `on done(P)`
    /// listens to `xstate.done.state.P`. What XState has no place for is in `meta`: a final
    /// state's `failure`, a compensation, an activity's output type and policy, a compound
    /// state's exact default entry (`initial: {target, actions}`, when `initial` names deeper
    /// states or has actions; XState's own `initial` is the child holding the first), the names
    /// of a state's timer events by delay (`"timers": {"7200000": "OpenAfter2h"}`), and (on the
    /// root) the declared events with their payload fields.
    ///
    /// ```
    /// use workflow::prelude::*;
    ///
    /// workflow! {
    ///     workflow Door {
    ///         initial Closed;
    ///         events { Push, Kick }
    ///         state Closed { on Push if unlocked => Open / creak; }
    ///         state Open { on Kick => Broken; after 2h => Closed; }
    ///         final Broken (failure);
    ///     }
    /// }
    /// let json = Door::graph().to_xstate();
    /// assert!(json.contains(r##""on": {"Push": [{"target": "#Open", "guard": "unlocked", "actions": ["creak"], "reenter": true}]}"##));
    /// assert!(json.contains(r##""after": {"7200000": [{"target": "#Closed", "reenter": true}]}"##));
    /// ```
    pub fn to_xstate(&self) -> String {
        let mut out = String::from("{\n");
        let _ = writeln!(out, "  \"id\": {},", json(self.name));
        if let Some(initial) = self.states.get(self.initial) {
            let _ = writeln!(out, "  \"initial\": {},", json(initial.name));
        }
        let declared: Vec<String> = self
            .events
            .iter()
            .filter(|e| e.kind == EventKind::Declared)
            .map(|e| {
                let fields: Vec<String> = e
                    .fields
                    .iter()
                    .map(|(n, t)| format!("{}: {}", json(n), json(t)))
                    .collect();
                format!("{}: {{{}}}", json(e.name), fields.join(", "))
            })
            .collect();
        let _ = writeln!(out, "  \"meta\": {{\"events\": {{{}}}}},", declared.join(", "));
        self.xstate_children(None, 1, &mut out);
        out.push_str("\n}\n");
        out
    }

    /// `"states": { .. }` of `parent`'s children, without a trailing newline.
    fn xstate_children(&self, parent: Option<usize>, depth: usize, out: &mut String) {
        let pad = "  ".repeat(depth);
        let _ = write!(out, "{pad}\"states\": {{");
        for (i, c) in self.children(parent).enumerate() {
            out.push_str(if i == 0 { "\n" } else { ",\n" });
            self.xstate_state(c, depth + 1, out);
        }
        let _ = write!(out, "\n{pad}}}");
    }

    fn xstate_state(&self, s: usize, depth: usize, out: &mut String) {
        let state = &self.states[s];
        let pad = "  ".repeat(depth);
        let mut fields: Vec<String> = vec![format!("\"id\": {}", json(state.name))];
        let mut meta: Vec<String> = Vec::new();
        match state.kind {
            StateKind::Atomic | StateKind::Parallel => {
                if state.kind == StateKind::Parallel {
                    fields.push("\"type\": \"parallel\"".into());
                }
            }
            StateKind::Compound { initial } => {
                fields.push(format!("\"initial\": {}", json(self.states[initial].name)));
                // XState enters one child by default and runs no actions on the way: the
                // exact default entry is kept in `meta`.
                if let Some(t) = initial_transition(self, s) {
                    let mut text = format!("\"target\": {}", self.xstate_targets(t));
                    if !t.actions.is_empty() {
                        let _ = write!(text, ", \"actions\": {}", xstate_actions(t.actions));
                    }
                    meta.push(format!("\"initial\": {{{text}}}"));
                }
            }
            StateKind::Final { failure } => {
                fields.push("\"type\": \"final\"".into());
                if failure {
                    meta.push("\"failure\": true".into());
                }
            }
            StateKind::History { deep, .. } => {
                fields.push("\"type\": \"history\"".into());
                fields.push(format!("\"history\": \"{}\"", if deep { "deep" } else { "shallow" }));
                if let Some(t) = self.transitions_from(s).first() {
                    fields.push(format!("\"target\": {}", self.xstate_targets(t)));
                }
            }
        }
        if !state.entry.is_empty() {
            fields.push(format!("\"entry\": {}", xstate_actions(state.entry)));
        }
        if !state.exit.is_empty() {
            fields.push(format!("\"exit\": {}", xstate_actions(state.exit)));
        }
        let history = matches!(state.kind, StateKind::History { .. });
        let transitions = if history { &[][..] } else { self.transitions_from(s) };
        // Each transition goes under every key its trigger names, in document order.
        let mut on: Vec<(String, Vec<String>)> = Vec::new();
        let (mut always, mut done) = (Vec::new(), Vec::new());
        let mut after: Vec<(u128, Vec<String>)> = Vec::new();
        let (mut invoke_done, mut invoke_error) = (Vec::new(), Vec::new());
        for t in transitions {
            let text = self.xstate_transition(t);
            match t.trigger {
                Trigger::Always => always.push(text),
                Trigger::StateDone => done.push(text),
                Trigger::DoneOf(of) => push_keyed(&mut on, format!("xstate.done.state.{}", self.states[of].name), text),
                Trigger::Initial => {}
                Trigger::Any => push_keyed(&mut on, "*".into(), text),
                Trigger::Events(list) => {
                    for &e in list {
                        let Some(event) = self.events.get(e) else { continue };
                        match event.kind {
                            EventKind::Declared => push_keyed(&mut on, event.name.to_string(), text.clone()),
                            EventKind::Done(_) => invoke_done.push(text.clone()),
                            EventKind::Failed(_) => invoke_error.push(text.clone()),
                            EventKind::Timer { delay, .. } => push_keyed(&mut after, delay.as_millis(), text.clone()),
                        }
                    }
                }
            }
        }
        if let Some(invoke) = &state.invoke {
            let mut text = format!("{{\"id\": {0}, \"src\": {0}", json(invoke.activity));
            if !invoke_done.is_empty() {
                let _ = write!(text, ", \"onDone\": [{}]", invoke_done.join(", "));
            }
            if !invoke_error.is_empty() {
                let _ = write!(text, ", \"onError\": [{}]", invoke_error.join(", "));
            }
            text.push('}');
            fields.push(format!("\"invoke\": {text}"));
            let mut activity = format!("\"output\": {}", json(invoke.output));
            let policy = &invoke.policy;
            if policy.max_attempts > 1 {
                let _ = write!(
                    activity,
                    ", \"attempts\": {}, \"backoff\": [{}, {}]",
                    policy.max_attempts,
                    policy.initial_interval.as_millis(),
                    policy.max_interval.as_millis()
                );
            }
            if let Some(timeout) = policy.timeout {
                let _ = write!(activity, ", \"timeout\": {}", timeout.as_millis());
            }
            if let Some(resource) = invoke.resource {
                let _ = write!(activity, ", \"resource\": {}", json(resource));
            }
            if let Some(expected) = invoke.expected {
                let _ = write!(activity, ", \"expected\": {}", expected.as_millis());
            }
            meta.push(format!("\"activity\": {{{activity}}}"));
        }
        if !on.is_empty() {
            let entries: Vec<String> = on
                .iter()
                .map(|(k, v)| format!("{}: [{}]", json(k), v.join(", ")))
                .collect();
            fields.push(format!("\"on\": {{{}}}", entries.join(", ")));
        }
        if !after.is_empty() {
            let entries: Vec<String> = after
                .iter()
                .map(|(k, v)| format!("\"{k}\": [{}]", v.join(", ")))
                .collect();
            fields.push(format!("\"after\": {{{}}}", entries.join(", ")));
        }
        if !always.is_empty() {
            fields.push(format!("\"always\": [{}]", always.join(", ")));
        }
        if !done.is_empty() {
            fields.push(format!("\"onDone\": [{}]", done.join(", ")));
        }
        if let Some(compensate) = state.compensate {
            meta.push(format!("\"compensate\": {}", json(compensate)));
        }
        let named: Vec<String> = timers(self, s)
            .map(|(event, delay)| format!("\"{}\": {}", delay.as_millis(), json(event)))
            .collect();
        if !named.is_empty() {
            meta.push(format!("\"timers\": {{{}}}", named.join(", ")));
        }
        if !meta.is_empty() {
            fields.push(format!("\"meta\": {{{}}}", meta.join(", ")));
        }
        let _ = write!(
            out,
            "{pad}{}: {{\n{pad}  {}",
            json(state.name),
            fields.join(&format!(",\n{pad}  "))
        );
        if self.children(Some(s)).next().is_some() {
            out.push_str(",\n");
            self.xstate_children(Some(s), depth + 1, out);
        }
        let _ = write!(out, "\n{pad}}}");
    }

    /// The names of `states`, space-separated (an SCXML `target` or `initial`).
    fn names(&self, states: &[usize]) -> String {
        let names: Vec<&str> = states.iter().map(|&x| self.states[x].name).collect();
        names.join(" ")
    }

    fn xstate_targets(&self, t: &TransitionInfo<'_>) -> String {
        let targets: Vec<String> = t
            .targets
            .iter()
            .map(|&x| json(&format!("#{}", self.states[x].name)))
            .collect();
        match targets.as_slice() {
            [one] => one.clone(),
            many => format!("[{}]", many.join(", ")),
        }
    }

    fn xstate_transition(&self, t: &TransitionInfo<'_>) -> String {
        let mut parts = Vec::new();
        if !t.targets.is_empty() {
            parts.push(format!("\"target\": {}", self.xstate_targets(t)));
        }
        if !t.in_states.is_empty() || !t.not_in_states.is_empty() {
            // XState's `stateIn` guard cannot be named in JSON: a consumer turns this into
            // `and([stateIn('#A'), .., not(stateIn('#B')), .., guard])`.
            let ids = |states: &[usize]| {
                let ids: Vec<String> = states
                    .iter()
                    .map(|&x| json(&format!("#{}", self.states[x].name)))
                    .collect();
                ids.join(", ")
            };
            let mut params = format!("\"states\": [{}]", ids(t.in_states));
            if !t.not_in_states.is_empty() {
                let _ = write!(params, ", \"not\": [{}]", ids(t.not_in_states));
            }
            if let Some(guard) = t.guard {
                let _ = write!(params, ", \"guard\": {}", json(guard));
            }
            parts.push(format!(
                "\"guard\": {{\"type\": \"workflow.in\", \"params\": {{{params}}}}}"
            ));
        } else if let Some(guard) = t.guard {
            parts.push(format!("\"guard\": {}", json(guard)));
        }
        if !t.actions.is_empty() {
            parts.push(format!("\"actions\": {}", xstate_actions(t.actions)));
        }
        // An internal transition whose targets are not all inside its source is external in
        // SCXML (and in the interpreter); XState needs `reenter` to leave and enter again.
        let end = self.states[t.source].end;
        let inside = t.targets.iter().all(|&x| x > t.source && x < end);
        if !(t.targets.is_empty() || t.internal && inside) {
            parts.push("\"reenter\": true".into());
        }
        format!("{{{}}}", parts.join(", "))
    }
}

fn push_keyed<K: PartialEq>(list: &mut Vec<(K, Vec<String>)>, key: K, text: String) {
    match list.iter_mut().find(|(k, _)| *k == key) {
        Some((_, texts)) => texts.push(text),
        None => list.push((key, vec![text])),
    }
}

fn scxml_action(label: &str, depth: usize, out: &mut String) {
    let pad = "  ".repeat(depth);
    let _ = match Action::parse(label) {
        Action::Call(name) => writeln!(out, "{pad}<wf:action name=\"{}\"/>", xml(name)),
        Action::Raise(event) => writeln!(out, "{pad}<raise event=\"{}\"/>", xml(event)),
        Action::Send { event, delay, id } => {
            let delay = delay
                .map(|d| format!(" delay=\"{}ms\"", d.as_millis()))
                .unwrap_or_default();
            writeln!(out, "{pad}<send event=\"{}\"{delay} id=\"{}\"/>", xml(event), xml(id))
        }
        Action::Cancel(id) => writeln!(out, "{pad}<cancel sendid=\"{}\"/>", xml(id)),
    };
}

fn xstate_actions(labels: &[&str]) -> String {
    let items: Vec<String> = labels
        .iter()
        .map(|label| match Action::parse(label) {
            Action::Call(name) => json(name),
            Action::Raise(event) => format!(
                "{{\"type\": \"workflow.raise\", \"params\": {{\"event\": {}}}}}",
                json(event)
            ),
            Action::Send { event, delay, id } => format!(
                "{{\"type\": \"workflow.send\", \"params\": {{\"event\": {}, \"delay\": {}, \"id\": {}}}}}",
                json(event),
                delay.map_or(0, |d| d.as_millis()),
                json(id)
            ),
            Action::Cancel(id) => format!(
                "{{\"type\": \"workflow.cancel\", \"params\": {{\"id\": {}}}}}",
                json(id)
            ),
        })
        .collect();
    format!("[{}]", items.join(", "))
}

/// Text escaped for an XML attribute value.
fn xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// A JSON string literal.
fn json(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_are_read_back_from_their_labels() {
        assert_eq!(Action::parse("notify"), Action::Call("notify"));
        assert_eq!(Action::parse("raise Pong"), Action::Raise("Pong"));
        assert_eq!(Action::parse("cancel r"), Action::Cancel("r"));
        assert_eq!(
            Action::parse("send Reminder"),
            Action::Send {
                event: "Reminder",
                delay: None,
                id: "Reminder"
            }
        );
        assert_eq!(
            Action::parse("send Reminder after 1h as r"),
            Action::Send {
                event: "Reminder",
                delay: Some(Duration::from_secs(3600)),
                id: "r"
            }
        );
        assert_eq!(
            Action::parse("send Reminder as r"),
            Action::Send {
                event: "Reminder",
                delay: None,
                id: "r"
            }
        );
        // Not a shape the block writes: kept whole as a name.
        assert_eq!(Action::parse("send X later"), Action::Call("send X later"));
    }

    #[test]
    fn text_is_escaped() {
        assert_eq!(xml("Vec<u8> & \"x\""), "Vec&lt;u8&gt; &amp; &quot;x&quot;");
        assert_eq!(json("a\"b\\c\n"), "\"a\\\"b\\\\c\\u000a\"");
    }
}
