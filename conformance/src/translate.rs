//! SCXML + JSON script → `workflow!` block + driver, as Rust source text.
//!
//! This file is compiled twice, never copied: by `build.rs` (through
//! `#[path = "src/translate.rs"]`), which runs it over the corpus, and by the
//! library under `#[cfg(test)]`, where its pieces are unit-tested.
//!
//! Only the expression-free subset of SCXML is translated: `scxml`, `state`,
//! `parallel`, `final`, `history`, `initial` (attribute or element, one or
//! several states, with actions), `transition` (with or without event and
//! target, internal, `cond` made of `In('id')` terms joined by `&&`, event
//! `done.state.ID`), `onentry`, `onexit`, `raise` and `send` with a literal
//! `event` and `delay`. Anything else makes the test "untranslatable": it is
//! reported as a failure with the reason instead of producing a block that
//! may not mean the same thing.

use std::collections::BTreeMap;
use std::fmt::Write as _;

/// The SCXML namespace every corpus document uses.
pub const SCXML_NS: &str = "http://www.w3.org/2005/07/scxml";

/// The graph lints the corpus breaks on purpose.
pub const ALLOWED_LINTS: &str = "dead_end, unreachable_state, no_path_to_final, shadowed_transition, eventless_loop, \
                                 never_done, decision_without_else";

// ---------------------------------------------------------------------------
// Identifiers
// ---------------------------------------------------------------------------

/// Replaces every character that cannot appear in a Rust identifier by `_`
/// (`.`, `-`, `+`, non-ASCII, ...).
pub fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' })
        .collect()
}

/// DSL name of the SCXML state (or history) `id`: `S_<id>`.
pub fn state_ident(id: &str) -> String {
    format!("S_{}", sanitize(id))
}

/// DSL name of the SCXML event `name`: `E_<name>`.
pub fn event_ident(name: &str) -> String {
    format!("E_{}", sanitize(name))
}

/// Workflow name of the test `group/name`: `T_<group>_<name>`.
pub fn workflow_ident(group: &str, name: &str) -> String {
    format!("T_{}_{}", sanitize(group), sanitize(name))
}

/// Module holding the test `group/name` in the generated file.
pub fn module_ident(group: &str, name: &str) -> String {
    format!("case_{}__{}", sanitize(group), sanitize(name)).to_ascii_lowercase()
}

/// Maps original names to identifiers made by `make`, refusing two names that
/// collapse to one identifier.
pub fn ident_map<'a, I>(names: I, make: fn(&str) -> String) -> Result<BTreeMap<String, String>, String>
where
    I: IntoIterator<Item = &'a str>,
{
    let mut by_ident: BTreeMap<String, String> = BTreeMap::new();
    let mut map = BTreeMap::new();
    for name in names {
        let ident = make(name);
        if let Some(other) = by_ident.get(&ident) {
            if other != name {
                return Err(format!("`{other}` and `{name}` both translate to `{ident}`"));
            }
        }
        by_ident.insert(ident.clone(), name.to_string());
        map.insert(name.to_string(), ident);
    }
    Ok(map)
}

// ---------------------------------------------------------------------------
// Event descriptors
// ---------------------------------------------------------------------------

/// Does the descriptor (one token of a transition's `event` attribute) match
/// the event `name`? `foo` and `foo.*` match `foo` and `foo.<anything>`, not
/// `foobar`; `*` matches everything.
pub fn descriptor_matches(descriptor: &str, name: &str) -> bool {
    if descriptor == "*" {
        return true;
    }
    let d = descriptor.strip_suffix(".*").unwrap_or(descriptor);
    let d = d.strip_suffix('.').unwrap_or(d);
    if d.is_empty() {
        return false;
    }
    name == d || (name.len() > d.len() && name.starts_with(d) && name.as_bytes()[d.len()] == b'.')
}

/// What a transition's `event` attribute becomes in a closed world.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trigger {
    /// No `event` attribute: an eventless transition (`always`).
    Eventless,
    /// A `*` descriptor: every event (`on _`).
    Any,
    /// These concrete names, in closed-world order, without duplicates. Empty
    /// if no event the test can see matches: the transition can never fire.
    Events(Vec<String>),
}

/// Expands a transition's `event` attribute (space-separated descriptors) into
/// the concrete names of `world` it matches.
pub fn expand_descriptors(attr: Option<&str>, world: &[String]) -> Trigger {
    let Some(attr) = attr else { return Trigger::Eventless };
    let descriptors: Vec<&str> = attr.split_whitespace().collect();
    if descriptors.is_empty() {
        return Trigger::Eventless;
    }
    if descriptors.contains(&"*") {
        return Trigger::Any;
    }
    Trigger::Events(
        world
            .iter()
            .filter(|name| descriptors.iter().any(|d| descriptor_matches(d, name)))
            .cloned()
            .collect(),
    )
}

// ---------------------------------------------------------------------------
// Durations
// ---------------------------------------------------------------------------

/// Parses a CSS2 time value (`10ms`, `1s`, `1.5s`, also `m`, `h`, `d`) into
/// whole milliseconds.
pub fn parse_delay_ms(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or_else(|| format!("delay `{s}` has no unit"))?;
    let (num, unit) = s.split_at(split);
    let factor: u64 = match unit.trim() {
        "ms" => 1,
        "s" => 1_000,
        "m" | "min" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        other => return Err(format!("delay `{s}` has an unknown unit `{other}`")),
    };
    if num.is_empty() || num.matches('.').count() > 1 || num.starts_with('.') || num.ends_with('.') {
        return Err(format!("delay `{s}` is not a number with a unit"));
    }
    let (int, frac) = num.split_once('.').unwrap_or((num, ""));
    let int: u64 = int.parse().map_err(|_| format!("delay `{s}` is too large"))?;
    let mut ms = int
        .checked_mul(factor)
        .ok_or_else(|| format!("delay `{s}` is too large"))?;
    // Fractional part: exact in milliseconds or refused.
    let mut scale = factor;
    for digit in frac.bytes() {
        let d = u64::from(digit - b'0');
        if scale % 10 != 0 {
            if d != 0 {
                return Err(format!("delay `{s}` is not a whole number of milliseconds"));
            }
            continue;
        }
        scale /= 10;
        ms = ms
            .checked_add(d * scale)
            .ok_or_else(|| format!("delay `{s}` is too large"))?;
    }
    Ok(ms)
}

/// Writes whole milliseconds as a DSL duration in the largest unit that keeps
/// it whole: `10ms`, `1s`, `1500ms`, `2m`, `3h`, `1d`.
pub fn dsl_duration(ms: u64) -> String {
    for (unit, size) in [("d", 86_400_000u64), ("h", 3_600_000), ("m", 60_000), ("s", 1_000)] {
        if ms != 0 && ms % size == 0 {
            return format!("{}{unit}", ms / size);
        }
    }
    format!("{ms}ms")
}

// ---------------------------------------------------------------------------
// The script
// ---------------------------------------------------------------------------

/// One entry of a JSON script.
#[derive(Debug, Clone, PartialEq)]
pub struct ScriptStep {
    /// Milliseconds to let pass before the event.
    pub after: Option<u64>,
    /// The event's name, as SCXML spells it.
    pub event: String,
    /// The expected active atomic states, as SCXML ids.
    pub expected: Vec<String>,
}

/// A parsed JSON script (top-level expectations only; `legacySemantics` is ignored).
#[derive(Debug, Clone, PartialEq)]
pub struct Script {
    /// Active atomic states after start.
    pub initial: Vec<String>,
    /// The events to send and what to expect after each.
    pub steps: Vec<ScriptStep>,
}

fn string_list(v: Option<&serde_json::Value>, what: &str) -> Result<Vec<String>, String> {
    let arr = v
        .and_then(|v| v.as_array())
        .ok_or_else(|| format!("script: `{what}` is not a list"))?;
    arr.iter()
        .map(|s| {
            s.as_str()
                .map(str::to_string)
                .ok_or_else(|| format!("script: `{what}` holds a non-string"))
        })
        .collect()
}

/// Parses a SCION JSON script.
pub fn parse_script(text: &str) -> Result<Script, String> {
    let v: serde_json::Value = serde_json::from_str(text).map_err(|e| format!("script is not JSON: {e}"))?;
    let initial = string_list(v.get("initialConfiguration"), "initialConfiguration")?;
    let mut steps = Vec::new();
    let events = v
        .get("events")
        .and_then(|e| e.as_array())
        .ok_or("script: `events` is not a list")?;
    for (i, e) in events.iter().enumerate() {
        let after = match e.get("after") {
            None | Some(serde_json::Value::Null) => None,
            Some(a) => {
                let ms = a
                    .as_f64()
                    .filter(|ms| *ms >= 0.0)
                    .ok_or_else(|| format!("script: events[{i}].after is not a number"))?;
                Some(ms.round() as u64)
            }
        };
        let event = e
            .get("event")
            .and_then(|ev| ev.get("name"))
            .and_then(|n| n.as_str())
            .ok_or_else(|| format!("script: events[{i}].event.name is missing"))?
            .to_string();
        if e.get("event").and_then(|ev| ev.get("data")).is_some() {
            return Err(format!(
                "script: events[{i}] carries data, which the DSL translation cannot express"
            ));
        }
        let expected = string_list(e.get("nextConfiguration"), &format!("events[{i}].nextConfiguration"))?;
        steps.push(ScriptStep { after, event, expected });
    }
    Ok(Script { initial, steps })
}

// ---------------------------------------------------------------------------
// The chart
// ---------------------------------------------------------------------------

/// An executable action (the corpus uses only these two).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// `<raise event>`.
    Raise(String),
    /// `<send event delay>`; `None` or zero delay: straight to the external queue.
    Send { event: String, delay_ms: Option<u64> },
}

/// A `<transition>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    /// The raw `event` attribute.
    pub event: Option<String>,
    /// The terms of a `cond` of `In('id')` and `!In('id')` terms (the only
    /// expressions of the null data model): `(negated, id)`.
    pub in_states: Vec<(bool, String)>,
    /// Target ids (empty: targetless).
    pub targets: Vec<String>,
    /// `type="internal"`.
    pub internal: bool,
    /// Its executable content.
    pub actions: Vec<Action>,
}

/// What kind of node a chart state is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// `<state>` (atomic or compound).
    State,
    /// `<parallel>`.
    Parallel,
    /// `<final>`.
    Final,
}

/// A `<history>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct History {
    /// Its id.
    pub id: String,
    /// `type="deep"`.
    pub deep: bool,
    /// Targets of its default transition.
    pub default: Vec<String>,
}

/// A state, parallel or final, with its children in document order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub id: String,
    pub kind: Kind,
    /// The initial states (from the attribute or the `<initial>` element);
    /// empty if not given.
    pub initial: Vec<String>,
    /// The actions of the `<initial>` element's transition.
    pub initial_actions: Vec<Action>,
    pub entry: Vec<Action>,
    pub exit: Vec<Action>,
    pub transitions: Vec<Transition>,
    pub histories: Vec<History>,
    pub children: Vec<Node>,
}

/// A parsed `<scxml>` document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chart {
    /// The root's initial state (attribute or first child).
    pub initial: String,
    pub states: Vec<Node>,
}

fn local(n: &roxmltree::Node) -> String {
    n.tag_name().name().to_string()
}

fn check_ns(n: &roxmltree::Node) -> Result<(), String> {
    match n.tag_name().namespace() {
        Some(SCXML_NS) => Ok(()),
        other => Err(format!("element <{}> is in namespace {:?}, not SCXML", local(n), other)),
    }
}

fn elements<'a, 'i>(n: roxmltree::Node<'a, 'i>) -> impl Iterator<Item = roxmltree::Node<'a, 'i>> {
    n.children().filter(|c| c.is_element())
}

fn only_attrs(n: &roxmltree::Node, allowed: &[&str]) -> Result<(), String> {
    for a in n.attributes() {
        if a.namespace().is_some() && a.namespace() != Some(SCXML_NS) {
            continue; // foreign-namespace attributes carry no semantics
        }
        if !allowed.contains(&a.name()) {
            return Err(format!(
                "<{} {}=\"{}\"> is not supported by the translation",
                local(n),
                a.name(),
                a.value()
            ));
        }
    }
    Ok(())
}

fn ids(attr: &str) -> Vec<String> {
    attr.split_whitespace().map(str::to_string).collect()
}

fn parse_actions(parent: roxmltree::Node) -> Result<Vec<Action>, String> {
    let mut out = Vec::new();
    for a in elements(parent) {
        check_ns(&a)?;
        match local(&a).as_str() {
            "raise" => {
                only_attrs(&a, &["event"])?;
                let event = a.attribute("event").ok_or("<raise> without `event`")?;
                out.push(Action::Raise(event.to_string()));
            }
            "send" => {
                only_attrs(&a, &["event", "delay"])?;
                if elements(a).next().is_some() {
                    return Err("<send> with content or params is not supported".into());
                }
                let event = a.attribute("event").ok_or("<send> without a literal `event`")?;
                let delay_ms = a.attribute("delay").map(parse_delay_ms).transpose()?;
                out.push(Action::Send {
                    event: event.to_string(),
                    delay_ms,
                });
            }
            other => {
                return Err(format!(
                    "executable content <{other}> is not supported by the translation"
                ))
            }
        }
    }
    Ok(out)
}

/// The terms of a `cond` that is `In('a') && !In('b') ..`, the predicate of
/// the null data model, as `(negated, id)`; any other expression is refused.
pub fn parse_cond(cond: &str) -> Result<Vec<(bool, String)>, String> {
    cond.split("&&")
        .map(|term| {
            let term = term.trim();
            let (negated, term) = match term.strip_prefix('!') {
                Some(rest) => (true, rest.trim_start()),
                None => (false, term),
            };
            term.strip_prefix("In(")
                .and_then(|t| t.strip_suffix(')'))
                .map(str::trim)
                .and_then(|t| {
                    t.strip_prefix('\'')
                        .and_then(|t| t.strip_suffix('\''))
                        .or_else(|| t.strip_prefix('"').and_then(|t| t.strip_suffix('"')))
                })
                .filter(|id| !id.is_empty() && !id.contains(|c: char| c.is_whitespace() || "'\"()".contains(c)))
                .map(|id| (negated, id.to_string()))
                .ok_or_else(|| {
                    format!("cond=\"{cond}\": only In('id') and !In('id') terms joined by && are translated")
                })
        })
        .collect()
}

fn parse_transition(t: roxmltree::Node) -> Result<Transition, String> {
    only_attrs(&t, &["event", "target", "type", "cond"])?;
    let internal = match t.attribute("type") {
        None | Some("external") => false,
        Some("internal") => true,
        Some(other) => return Err(format!("transition type `{other}`")),
    };
    Ok(Transition {
        event: t.attribute("event").map(str::to_string),
        in_states: t.attribute("cond").map(parse_cond).transpose()?.unwrap_or_default(),
        targets: t.attribute("target").map(ids).unwrap_or_default(),
        internal,
        actions: parse_actions(t)?,
    })
}

fn parse_node(n: roxmltree::Node) -> Result<Node, String> {
    let kind = match local(&n).as_str() {
        "state" => Kind::State,
        "parallel" => Kind::Parallel,
        "final" => Kind::Final,
        other => return Err(format!("<{other}> is not a state")),
    };
    match kind {
        Kind::State => only_attrs(&n, &["id", "initial"])?,
        _ => only_attrs(&n, &["id"])?,
    }
    let id = n
        .attribute("id")
        .ok_or_else(|| format!("<{}> without an id", local(&n)))?
        .to_string();
    let mut node = Node {
        id,
        kind,
        initial: vec![],
        initial_actions: vec![],
        entry: vec![],
        exit: vec![],
        transitions: vec![],
        histories: vec![],
        children: vec![],
    };
    if let Some(init) = n.attribute("initial") {
        node.initial = ids(init);
    }
    for c in elements(n) {
        check_ns(&c)?;
        match local(&c).as_str() {
            "state" | "parallel" | "final" => node.children.push(parse_node(c)?),
            "transition" => {
                if node.kind == Kind::Final {
                    return Err(format!("final state `{}` has a transition", node.id));
                }
                node.transitions.push(parse_transition(c)?)
            }
            "onentry" => {
                only_attrs(&c, &[])?;
                node.entry.extend(parse_actions(c)?)
            }
            "onexit" => {
                only_attrs(&c, &[])?;
                node.exit.extend(parse_actions(c)?)
            }
            "history" => {
                only_attrs(&c, &["id", "type"])?;
                let hid = c.attribute("id").ok_or("<history> without an id")?.to_string();
                let deep = match c.attribute("type") {
                    None | Some("shallow") => false,
                    Some("deep") => true,
                    Some(other) => return Err(format!("history type `{other}`")),
                };
                let mut default = Vec::new();
                for t in elements(c) {
                    check_ns(&t)?;
                    if local(&t) != "transition" {
                        return Err(format!("<{}> inside <history>", local(&t)));
                    }
                    let t = parse_transition(t)?;
                    if !t.actions.is_empty() || t.event.is_some() || t.internal || !t.in_states.is_empty() {
                        return Err(format!("history `{hid}`'s default transition has actions or an event"));
                    }
                    default = t.targets;
                }
                node.histories.push(History { id: hid, deep, default });
            }
            "initial" => {
                only_attrs(&c, &["id"])?;
                if !node.initial.is_empty() {
                    return Err(format!(
                        "state `{}` has both an initial attribute and <initial>",
                        node.id
                    ));
                }
                let ts: Vec<_> = elements(c).collect();
                if ts.len() != 1 || local(&ts[0]) != "transition" {
                    return Err(format!("<initial> of `{}` must hold one <transition>", node.id));
                }
                let t = parse_transition(ts[0])?;
                if t.targets.is_empty() || t.event.is_some() || !t.in_states.is_empty() {
                    return Err(format!(
                        "<initial> transition of `{}` needs a target and no event or cond",
                        node.id
                    ));
                }
                node.initial = t.targets;
                node.initial_actions = t.actions;
            }
            other => return Err(format!("<{other}> is not supported by the translation")),
        }
    }
    if node.kind == Kind::Final && !node.children.is_empty() {
        return Err(format!("final state `{}` has child states", node.id));
    }
    if node.kind == Kind::State && !node.children.is_empty() && node.initial.is_empty() {
        node.initial = vec![node.children[0].id.clone()];
    }
    Ok(node)
}

/// Parses an SCXML document of the supported subset.
pub fn parse_chart(text: &str) -> Result<Chart, String> {
    let doc = roxmltree::Document::parse(text).map_err(|e| format!("not XML: {e}"))?;
    let root = doc.root_element();
    check_ns(&root)?;
    if local(&root) != "scxml" {
        return Err(format!("root element is <{}>, not <scxml>", local(&root)));
    }
    only_attrs(&root, &["initial", "version", "datamodel", "name", "binding"])?;
    let mut states = Vec::new();
    for c in elements(root) {
        check_ns(&c)?;
        match local(&c).as_str() {
            "state" | "parallel" | "final" => states.push(parse_node(c)?),
            other => return Err(format!("<{other}> under <scxml> is not supported by the translation")),
        }
    }
    let initial = match root.attribute("initial") {
        Some(init) => {
            let v = ids(init);
            if v.len() != 1 {
                return Err(format!(
                    "<scxml initial=\"{init}\">: several initial states are not supported"
                ));
            }
            v[0].clone()
        }
        None => states.first().ok_or("<scxml> has no states")?.id.clone(),
    };
    Ok(Chart { initial, states })
}

// ---------------------------------------------------------------------------
// Chart walks
// ---------------------------------------------------------------------------

fn walk_nodes<'a>(nodes: &'a [Node], f: &mut dyn FnMut(&'a Node)) {
    for n in nodes {
        f(n);
        walk_nodes(&n.children, f);
    }
}

fn all_actions(chart: &Chart) -> Vec<&Action> {
    let mut out = Vec::new();
    walk_nodes(&chart.states, &mut |n| {
        out.extend(n.entry.iter());
        out.extend(n.initial_actions.iter());
        for t in &n.transitions {
            out.extend(t.actions.iter());
        }
        out.extend(n.exit.iter());
    });
    out
}

/// Every event name the test can ever see: the script's, then the ones the
/// chart raises or sends, in order of first appearance, without duplicates.
pub fn closed_world(chart: &Chart, script: &Script) -> Vec<String> {
    let mut world: Vec<String> = Vec::new();
    let mut add = |name: &str| {
        if !world.iter().any(|w| w == name) {
            world.push(name.to_string());
        }
    };
    for s in &script.steps {
        add(&s.event);
    }
    for a in all_actions(chart) {
        match a {
            Action::Raise(e) | Action::Send { event: e, .. } => add(e),
        }
    }
    world
}

/// Every state and history id, in document order.
pub fn all_ids(chart: &Chart) -> Vec<String> {
    let mut out = Vec::new();
    walk_nodes(&chart.states, &mut |n| {
        out.push(n.id.clone());
        for h in &n.histories {
            out.push(h.id.clone());
        }
    });
    out
}

/// Where each state sits, for the checks `workflow!` makes that the
/// translation must not fail at compile time (a compile error would break
/// the whole conformance build, not one case).
#[derive(Default)]
pub struct Tree {
    /// Each id's parent (`None` at the top).
    parent: BTreeMap<String, Option<String>>,
    /// The ids of parallel states.
    parallel: std::collections::BTreeSet<String>,
    /// The ids of compound and parallel states: those that complete.
    completing: std::collections::BTreeSet<String>,
    /// The ids of history states.
    history: std::collections::BTreeSet<String>,
}

impl Tree {
    /// The tree of `chart`.
    pub fn of(chart: &Chart) -> Tree {
        fn add(tree: &mut Tree, n: &Node, parent: Option<&str>) {
            tree.parent.insert(n.id.clone(), parent.map(str::to_string));
            if n.kind == Kind::Parallel {
                tree.parallel.insert(n.id.clone());
            }
            if n.kind != Kind::Final && !n.children.is_empty() {
                tree.completing.insert(n.id.clone());
            }
            for h in &n.histories {
                tree.parent.insert(h.id.clone(), Some(n.id.clone()));
                tree.history.insert(h.id.clone());
            }
            for c in &n.children {
                add(tree, c, Some(&n.id));
            }
        }
        let mut tree = Tree::default();
        for n in &chart.states {
            add(&mut tree, n, None);
        }
        tree
    }

    /// `id`'s proper ancestors, innermost first.
    fn ancestors<'t>(&'t self, id: &str) -> impl Iterator<Item = &'t str> + 't {
        let first = self.parent.get(id).and_then(|p| p.as_deref());
        std::iter::successors(first, move |a| self.parent.get(*a).and_then(|p| p.as_deref()))
    }

    /// Whether `inner` is a proper descendant of `outer`.
    fn inside(&self, inner: &str, outer: &str) -> bool {
        self.ancestors(inner).any(|a| a == outer)
    }

    /// Why `ids` cannot be active together, if they cannot: each pair must
    /// lie in different regions of one parallel state.
    pub fn together(&self, ids: &[String]) -> Result<(), String> {
        for (i, a) in ids.iter().enumerate() {
            for b in &ids[i + 1..] {
                let common = self.ancestors(a).find(|x| *x == b.as_str() || self.inside(b, x));
                let apart = a != b
                    && !self.inside(a, b)
                    && !self.inside(b, a)
                    && common.is_some_and(|c| self.parallel.contains(c));
                if !apart {
                    return Err(format!("`{a}` and `{b}` cannot be active together"));
                }
            }
        }
        Ok(())
    }
}

/// The atomic states (no child states), as SCXML ids, in document order.
pub fn atomic_ids(chart: &Chart) -> Vec<String> {
    let mut out = Vec::new();
    walk_nodes(&chart.states, &mut |n| {
        if n.children.is_empty() {
            out.push(n.id.clone());
        }
    });
    out
}

// ---------------------------------------------------------------------------
// Emitting the DSL
// ---------------------------------------------------------------------------

struct Emitter<'a> {
    states: &'a BTreeMap<String, String>,
    events: &'a BTreeMap<String, String>,
    world: &'a [String],
    tree: &'a Tree,
    out: String,
    uses_send: bool,
}

impl Emitter<'_> {
    fn state(&self, id: &str) -> Result<&str, String> {
        self.states
            .get(id)
            .map(String::as_str)
            .ok_or_else(|| format!("unknown target `{id}`"))
    }

    fn targets(&self, ids: &[String]) -> Result<String, String> {
        Ok(ids
            .iter()
            .map(|t| self.state(t))
            .collect::<Result<Vec<_>, _>>()?
            .join(", "))
    }

    fn actions(&mut self, actions: &[Action]) -> String {
        let mut parts = Vec::new();
        for a in actions {
            match a {
                Action::Raise(e) => parts.push(format!("raise {}", self.events[e])),
                Action::Send { event, delay_ms } => {
                    self.uses_send = true;
                    match delay_ms {
                        Some(ms) if *ms > 0 => {
                            parts.push(format!("send {} after {}", self.events[event], dsl_duration(*ms)))
                        }
                        _ => parts.push(format!("send {}", self.events[event])),
                    }
                }
            }
        }
        parts.join(", ")
    }

    fn line(&mut self, depth: usize, text: &str) {
        for _ in 0..depth {
            self.out.push_str("    ");
        }
        self.out.push_str(text);
        self.out.push('\n');
    }

    fn transition(&mut self, depth: usize, t: &Transition) -> Result<(), String> {
        // `done.state.ID` descriptors are completions, raised by the machine:
        // each is an `on done(ID)` of its own, next to the rest (an event
        // matches one of them at most, so the split keeps priority).
        let mut rest: Vec<&str> = Vec::new();
        let mut completions: Vec<String> = Vec::new();
        for d in t.event.as_deref().unwrap_or("").split_whitespace() {
            match d.strip_prefix("done.state.") {
                Some(id) if self.tree.completing.contains(id) => {
                    completions.push(format!("on done({})", self.state(id)?));
                }
                // Only compound and parallel states complete.
                Some(id) if self.states.contains_key(id) => {}
                _ if d.starts_with("done.") || d == "done" => {
                    return Err(format!(
                        "event descriptor `{d}`: only done.state.ID of a state is translated"
                    ))
                }
                _ => rest.push(d),
            }
        }
        for head in completions {
            self.transition_line(depth, head, t)?;
        }
        if t.event.is_some() && rest.is_empty() {
            return Ok(());
        }
        let event = t.event.as_ref().map(|_| rest.join(" "));
        let head = match expand_descriptors(event.as_deref(), self.world) {
            Trigger::Eventless => "always".to_string(),
            Trigger::Any => "on _".to_string(),
            Trigger::Events(names) if names.is_empty() => {
                // Nothing the test sends or raises matches: it can never fire.
                let comment = format!(
                    "// never enabled, left out: event=\"{}\"",
                    t.event.as_deref().unwrap_or("")
                );
                self.line(depth, &comment);
                return Ok(());
            }
            Trigger::Events(names) => {
                format!(
                    "on {}",
                    names
                        .iter()
                        .map(|n| self.events[n].as_str())
                        .collect::<Vec<_>>()
                        .join(" | ")
                )
            }
        };
        self.transition_line(depth, head, t)
    }

    /// One transition as a line: `head`, then its conditions, targets and actions.
    fn transition_line(&mut self, depth: usize, head: String, t: &Transition) -> Result<(), String> {
        if let Some((_, h)) = t.in_states.iter().find(|(_, id)| self.tree.history.contains(id)) {
            return Err(format!("In('{h}') names a history state, which is never active"));
        }
        self.tree.together(&t.targets)?;
        let mut text = head;
        if !t.in_states.is_empty() {
            let conditions = t
                .in_states
                .iter()
                .map(|(negated, id)| Ok(format!("{}in({})", if *negated { "!" } else { "" }, self.state(id)?)))
                .collect::<Result<Vec<_>, String>>()?;
            text.push_str(" if ");
            text.push_str(&conditions.join(" && "));
        }
        if t.targets.is_empty() && t.actions.is_empty() && t.event.is_none() {
            return Err(
                "an eventless transition without target or actions (it would only block others, forever)".into(),
            );
        }
        if !t.targets.is_empty() {
            text.push_str(" => ");
            if t.internal {
                text.push_str("internal ");
            }
            text.push_str(&self.targets(&t.targets)?);
        }
        if !t.actions.is_empty() {
            let actions = self.actions(&t.actions);
            text.push_str(" / ");
            text.push_str(&actions);
        }
        text.push(';');
        self.line(depth, &text);
        Ok(())
    }

    fn node(&mut self, depth: usize, n: &Node) -> Result<(), String> {
        let name = self.state(&n.id)?.to_string();
        let keyword = match n.kind {
            Kind::State => "state",
            Kind::Parallel => "parallel",
            Kind::Final => "final",
        };
        let empty = n.entry.is_empty()
            && n.exit.is_empty()
            && n.transitions.is_empty()
            && n.histories.is_empty()
            && n.children.is_empty();
        if n.kind == Kind::Final && empty {
            self.line(depth, &format!("final {name};"));
            return Ok(());
        }
        self.line(depth, &format!("{keyword} {name} {{"));
        if n.kind == Kind::State && !n.children.is_empty() {
            if let Some(outside) = n.initial.iter().find(|id| !self.tree.inside(id, &n.id)) {
                return Err(format!("initial `{outside}` of `{}` is not inside it", n.id));
            }
            self.tree.together(&n.initial)?;
            let mut line = format!("initial {}", self.targets(&n.initial)?);
            if !n.initial_actions.is_empty() {
                let actions = self.actions(&n.initial_actions);
                line.push_str(" / ");
                line.push_str(&actions);
            }
            line.push(';');
            self.line(depth + 1, &line);
        }
        if !n.entry.is_empty() {
            let a = self.actions(&n.entry);
            self.line(depth + 1, &format!("entry {a};"));
        }
        if !n.exit.is_empty() {
            let a = self.actions(&n.exit);
            self.line(depth + 1, &format!("exit {a};"));
        }
        for t in &n.transitions {
            self.transition(depth + 1, t)?;
        }
        for h in &n.histories {
            let mut line = format!("history {}{}", if h.deep { "deep " } else { "" }, self.state(&h.id)?);
            if !h.default.is_empty() {
                line.push_str(" => ");
                line.push_str(&self.targets(&h.default)?);
            }
            line.push(';');
            self.line(depth + 1, &line);
        }
        for c in &n.children {
            self.node(depth + 1, c)?;
        }
        self.line(depth, "}");
        Ok(())
    }
}

/// A translated test.
#[derive(Debug, Clone, PartialEq)]
pub struct Translation {
    /// `T_<group>_<name>`.
    pub workflow: String,
    /// The complete `workflow T_x { .. }` text (with its lint attribute).
    pub dsl: String,
    /// SCXML event name → variant name, for every declared event (closed-world order).
    pub events: Vec<(String, String)>,
    /// DSL state name → SCXML id, for the atomic states.
    pub atomic: Vec<(String, String)>,
    /// Whether the machine contains `send` (and so has `take_scheduled`).
    pub uses_send: bool,
}

/// Translates one chart in the closed world of its script.
pub fn translate(group: &str, name: &str, chart: &Chart, script: &Script) -> Result<Translation, String> {
    let ids = all_ids(chart);
    let mut seen = std::collections::BTreeSet::new();
    for id in &ids {
        if !seen.insert(id) {
            return Err(format!("duplicate id `{id}`"));
        }
    }
    let states = ident_map(ids.iter().map(String::as_str), state_ident)?;
    let world = closed_world(chart, script);
    let events = ident_map(world.iter().map(String::as_str), event_ident)?;
    let workflow = workflow_ident(group, name);

    let mut e = Emitter {
        states: &states,
        events: &events,
        world: &world,
        tree: &Tree::of(chart),
        out: String::new(),
        uses_send: false,
    };
    e.line(0, &format!("#[allow({ALLOWED_LINTS})]"));
    e.line(0, &format!("workflow {workflow} {{"));
    let init = e.state(&chart.initial)?.to_string();
    if !chart.states.iter().any(|s| s.id == chart.initial) {
        return Err(format!(
            "<scxml initial=\"{}\"> is not a top-level state",
            chart.initial
        ));
    }
    e.line(1, &format!("initial {init};"));
    if !world.is_empty() {
        let list = world.iter().map(|w| events[w].as_str()).collect::<Vec<_>>().join(", ");
        e.line(1, &format!("events {{ {list} }}"));
    }
    for n in &chart.states {
        e.node(1, n)?;
    }
    e.line(0, "}");
    let uses_send = e.uses_send;
    let dsl = e.out;

    let atomic = atomic_ids(chart)
        .into_iter()
        .map(|id| (states[&id].clone(), id))
        .collect();
    let events = world.iter().map(|w| (w.clone(), events[w].clone())).collect();
    Ok(Translation {
        workflow,
        dsl,
        events,
        atomic,
        uses_send,
    })
}

// ---------------------------------------------------------------------------
// The generated Rust file
// ---------------------------------------------------------------------------

/// One test as found in the corpus.
#[derive(Debug, Clone)]
pub struct SourceCase {
    pub group: String,
    pub name: String,
    /// The `.scxml` text, or why it could not be read.
    pub scxml: Result<String, String>,
    /// The `.json` text, or why it could not be read.
    pub json: Result<String, String>,
    /// Set when the case is to be left out of the build (reported as failed).
    pub skip: Option<String>,
}

fn rust_str(s: &str) -> String {
    format!("{s:?}")
}

fn rust_str_list(v: &[String]) -> String {
    format!("&[{}]", v.iter().map(|s| rust_str(s)).collect::<Vec<_>>().join(", "))
}

fn script_literal(script: &Script) -> String {
    let mut s = String::new();
    let _ = write!(
        s,
        "::conformance::Script {{ initial: {}, steps: &[",
        rust_str_list(&script.initial)
    );
    for step in &script.steps {
        let after = match step.after {
            Some(ms) => format!("Some({ms})"),
            None => "None".into(),
        };
        let _ = write!(
            s,
            "\n        ::conformance::ScriptStep {{ after: {after}, event: {}, expected: {} }},",
            rust_str(&step.event),
            rust_str_list(&step.expected)
        );
    }
    s.push_str("\n    ] }");
    s
}

/// The module for one test: its `workflow!` block, its driver and its round
/// trip, or a `run` that reports why there is none; and whether it has them.
pub fn case_module(case: &SourceCase) -> (String, String, bool) {
    let module = module_ident(&case.group, &case.name);
    let source = format!("scion/{}/{}", case.group, case.name);
    let fail = |why: String| {
        format!(
            "/// `{source}`: not translated.\nmod {module} {{\n    pub(crate) fn run() -> ::core::result::Result<(), ::std::string::String> {{\n        ::core::result::Result::Err(::std::string::String::from({}))\n    }}\n}}\n",
            rust_str(&why)
        )
    };
    if let Some(why) = &case.skip {
        return (module.clone(), fail(why.clone()), false);
    }
    let parsed = (|| {
        let scxml = case.scxml.as_ref().map_err(|e| e.clone())?;
        let json = case.json.as_ref().map_err(|e| e.clone())?;
        let chart = parse_chart(scxml).map_err(|e| format!("{source}.scxml: {e}"))?;
        let script = parse_script(json).map_err(|e| format!("{source}.json: {e}"))?;
        let t = translate(&case.group, &case.name, &chart, &script).map_err(|e| format!("{source}.scxml: {e}"))?;
        Ok::<_, String>((script, t))
    })();
    let (script, t) = match parsed {
        Ok(p) => p,
        Err(why) => return (module.clone(), fail(format!("untranslatable: {why}")), false),
    };
    let w = &t.workflow;
    let mut m = String::new();
    let _ = writeln!(m, "/// `{source}`.");
    let _ = writeln!(m, "#[allow(non_camel_case_types, non_snake_case, dead_code)]");
    let _ = writeln!(m, "mod {module} {{");
    let _ = writeln!(m, "    ::workflow::workflow! {{");
    for line in t.dsl.lines() {
        let _ = writeln!(m, "        {line}");
    }
    let _ = writeln!(m, "    }}\n");
    let _ = writeln!(m, "    struct H;");
    let _ = writeln!(m, "    impl {w}Handlers for H {{}}\n");
    let _ = writeln!(m, "    struct Sut({w});\n");
    let _ = writeln!(m, "    impl ::conformance::Sut for Sut {{");
    let _ = writeln!(m, "        type Event = {w}Event;");
    let _ = writeln!(
        m,
        "        fn start(&mut self) {{\n            self.0.start(&H);\n        }}"
    );
    let _ = writeln!(
        m,
        "        fn handle(&mut self, event: &{w}Event) {{\n            let _ = self.0.handle(event, &H);\n        }}"
    );
    let _ = writeln!(
        m,
        "        fn active(&self) -> ::std::vec::Vec<::std::string::String> {{\n            self.0.active_states().map(|s| scxml_id(s.name())).collect()\n        }}"
    );
    let _ = writeln!(
        m,
        "        fn active_names(&self) -> ::std::vec::Vec<::std::string::String> {{\n            self.0.active_states().map(|s| ::std::string::ToString::to_string(s.name())).collect()\n        }}"
    );
    if t.uses_send {
        let _ = writeln!(
            m,
            "        fn take_scheduled(&mut self) -> ::std::vec::Vec<::conformance::Sched<{w}Event>> {{\n            self.0.take_scheduled().into_iter().map(|s| match s {{\n                ::workflow::Scheduled::Send {{ id, event, delay }} => ::conformance::Sched::Send {{ id: ::std::string::ToString::to_string(&id), event, delay_ms: delay.as_millis() as u64 }},\n                ::workflow::Scheduled::Cancel {{ id }} => ::conformance::Sched::Cancel {{ id: ::std::string::ToString::to_string(&id) }},\n            }}).collect()\n        }}"
        );
    } else {
        let _ = writeln!(
            m,
            "        fn take_scheduled(&mut self) -> ::std::vec::Vec<::conformance::Sched<{w}Event>> {{\n            ::std::vec::Vec::new()\n        }}"
        );
    }
    let _ = writeln!(
        m,
        "        fn event_name(event: &{w}Event) -> ::std::string::String {{\n            ::std::string::ToString::to_string(event.name())\n        }}"
    );
    let _ = writeln!(m, "        fn event(name: &str) -> ::core::option::Option<{w}Event> {{");
    if t.events.is_empty() {
        let _ = writeln!(
            m,
            "            let _ = name;\n            ::core::option::Option::None\n        }}"
        );
    } else {
        let _ = writeln!(m, "            match name {{");
        for (scxml, ident) in &t.events {
            let _ = writeln!(
                m,
                "                {} => ::core::option::Option::Some({w}Event::{ident}),",
                rust_str(scxml)
            );
        }
        let _ = writeln!(
            m,
            "                _ => ::core::option::Option::None,\n            }}\n        }}"
        );
    }
    let _ = writeln!(m, "    }}\n");
    let _ = writeln!(m, "    /// DSL state name → SCXML id.");
    let _ = writeln!(
        m,
        "    fn scxml_id(dsl: &str) -> ::std::string::String {{\n        match dsl {{"
    );
    for (ident, id) in &t.atomic {
        let _ = writeln!(
            m,
            "            {} => ::std::string::String::from({}),",
            rust_str(ident),
            rust_str(id)
        );
    }
    let _ = writeln!(
        m,
        "            other => ::std::format!(\"<unmapped {{other}}>\"),\n        }}\n    }}\n"
    );
    let _ = writeln!(
        m,
        "    const SCRIPT: ::conformance::Script = {};\n",
        script_literal(&script)
    );
    let _ = writeln!(
        m,
        "    pub(crate) fn run() -> ::core::result::Result<(), ::std::string::String> {{\n        ::conformance::drive(Sut({w}::new(())), &SCRIPT)\n    }}\n"
    );
    let _ = writeln!(
        m,
        "    pub(crate) fn round_trip() -> ::core::result::Result<(), ::std::string::String> {{\n        ::conformance::round_trip({w}::graph(), {})\n    }}\n",
        rust_str(ALLOWED_LINTS)
    );
    let _ = writeln!(
        m,
        "    pub(crate) fn xstate() -> ::core::result::Result<::conformance::Differential, ::std::string::String> {{\n        ::conformance::differential(Sut({w}::new(())), &SCRIPT, {w}::graph())\n    }}"
    );
    let _ = writeln!(m, "}}");
    (module, m, true)
}

/// The whole generated file: one module per case and the `CASES` table.
pub fn generate(corpus: &str, cases: &[SourceCase]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "// Generated by conformance/build.rs from {corpus}. Do not edit.\n"
    );
    let _ = writeln!(out, "/// What the build found: the corpus, translated below.");
    let _ = writeln!(
        out,
        "pub const CORPUS: ::conformance::Corpus = ::conformance::Corpus::Read;\n"
    );
    let mut table = Vec::new();
    for c in cases {
        let (module, text, translated) = case_module(c);
        let some = |f: &str| {
            if translated {
                format!("::core::option::Option::Some({module}::{f})")
            } else {
                "::core::option::Option::None".to_string()
            }
        };
        let (round_trip, xstate) = (some("round_trip"), some("xstate"));
        out.push_str(&text);
        out.push('\n');
        table.push(format!(
            "    ::conformance::Case {{ group: {}, name: {}, run: {module}::run, round_trip: {round_trip}, xstate: {xstate} }},",
            rust_str(&c.group),
            rust_str(&c.name)
        ));
    }
    let _ = writeln!(out, "/// Every test of the corpus, sorted by group and name.");
    let _ = writeln!(
        out,
        "pub const CASES: &[::conformance::Case] = &[\n{}\n];",
        table.join("\n")
    );
    out
}

/// The generated file without cases: `corpus` is a `::conformance::Corpus`
/// expression saying why.
fn generate_without(corpus: &str) -> String {
    format!(
        "// Generated by conformance/build.rs: no corpus to translate.\n\n/// What the build found.\npub const CORPUS: ::conformance::Corpus = {corpus};\n\n/// No tests without a corpus.\npub const CASES: &[::conformance::Case] = &[];\n"
    )
}

/// The generated file when there is no corpus directory at `dir`: the runner
/// skips, or fails on CI.
pub fn generate_missing(dir: &str) -> String {
    generate_without(&format!("::conformance::Corpus::Missing {{ dir: {} }}", rust_str(dir)))
}

/// The generated file when the corpus is there but cannot be used: the runner
/// fails and says `why`.
pub fn generate_unreadable(why: &str) -> String {
    generate_without(&format!(
        "::conformance::Corpus::Unreadable {{ why: {} }}",
        rust_str(why)
    ))
}
