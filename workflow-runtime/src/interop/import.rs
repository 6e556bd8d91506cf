//! Charts drawn elsewhere, read back as `workflow!` source: SCXML 1.0 ([`Format::Scxml`]) and
//! XState v5 machine configurations ([`Format::XState`]). Behind the `import` feature.
//!
//! The importer writes the items of a `workflow!` block ([`Imported::body`]) that the macro (for
//! `workflow! { workflow Order from "charts/order.scxml"; }`), the `workflow import` command and
//! the conformance runner all compile the ordinary way, so an imported chart gets every check a
//! hand-written block gets. It reads everything [`Graph::to_scxml`](crate::Graph::to_scxml) and
//! [`Graph::to_xstate`](crate::Graph::to_xstate) write, so export then import gives the same
//! graph, and the common shapes of hand-drawn charts:
//!
//! - SCXML: `<state>`, `<parallel>`, `<final>`, `<history>`, a compound state's `initial`
//!   (`initial="a b"`: one state or several descendants, in different regions of a parallel
//!   state; or `<initial>` whose transition has the targets and actions, the block's
//!   `initial A, B / act;`), `<transition>` with `event` lists, `cond` (a guard's name and
//!   `In('S')` / `!In('S')` terms joined by `&&`, the block's `if in(S) && !in(T) && guard`),
//!   `target` lists and `type` (eventless ones included, with or without a target, internal or
//!   not: the block's `always`), `done.state.ID` for the state itself (`on done`) or any other
//!   (`on done(ID)`), `<onentry>`/`<onexit>` with `<raise>`, `<send event delay id>`,
//!   `<cancel sendid>` and `<wf:action name>`, and this crate's `wf:` extensions (activities as
//!   `<invoke type="urn:x-workflow-rs:activity">`, compensations, failure finals, declared events).
//!   Elements and attributes in other namespaces (an editor's layout) are skipped.
//! - XState: `states`, `initial` (and the exact default entry in `meta.initial`:
//!   `{"target": ["#A", "#B"], "actions": [..]}`, which takes precedence), `type` (`parallel`,
//!   `final`, `history` with `history` and `target`), `on` (`*` included, and
//!   `xstate.done.state.ID` for another state's completion), `always` (with or without a target;
//!   into the state without `reenter`, internal), `after` (milliseconds), `onDone`, `invoke` with
//!   `onDone`/`onError`, `entry`/`exit`, guards and actions by name, the export's
//!   `{"type": "workflow.in", "params": {"states": [..], "not": [..], "guard": NAME}}` guard
//!   (XState's `stateIn` is a function JSON cannot name), the `workflow.raise` /
//!   `workflow.send` / `workflow.cancel` actions, and targets as a sibling's key (`"b"`, `"b.c"`),
//!   a child's (`".c"`) or an id (`"#id"`); transitions as a string, an object or an array of
//!   them. `description`, `tags` and `context` are skipped.
//!
//! Without a declared event list (`<wf:events>`, XState's `meta.events`) the events are those the
//! chart's transitions and actions name, in document order. A chart that says something the
//! block cannot (an expression, a `cond` with `||` or two guard names, several initial states of
//! the whole chart, an eventless transition with neither target nor actions...) is an
//! [`ImportError`] naming the element and its line and column, as is a malformed document or an
//! unknown target or state. What the block's own checks refuse (initial states in one region,
//! `done(S)` of a state without children...) is the macro's error.
//!
//! ```
//! use workflow_runtime::interop::import::{import, Format};
//!
//! let chart = r#"<scxml xmlns="http://www.w3.org/2005/07/scxml" initial="Off">
//!   <state id="Off"><transition event="Flip" target="On"/></state>
//!   <state id="On"><transition event="Flip" cond="cool" target="Off"/></state>
//! </scxml>"#;
//! let imported = import(Format::Scxml, chart).unwrap();
//! assert_eq!(
//!     imported.block("pub", "Light"),
//!     "pub workflow Light {
//!     initial Off;
//!     events { Flip }
//!     state Off {
//!         on Flip => On;
//!     }
//!     state On {
//!         on Flip if cool => Off;
//!     }
//! }
//! "
//! );
//! let typo = chart.replace(r#"target="On""#, r#"target="Onn""#);
//! let error = import(Format::Scxml, &typo).unwrap_err();
//! assert_eq!(
//!     error.to_string(),
//!     "2:19: <transition> in state `Off`: unknown target `Onn` (did you mean `On`?)"
//! );
//! ```

use std::fmt;
use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use crate::format_duration;

mod json;
mod scxml;
mod xstate;

/// Where in a chart file something is: 1-based line and column (in characters).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Position {
    /// The line, from 1.
    pub line: u32,
    /// The column, from 1, counted in characters.
    pub column: u32,
}

/// Where each line of a text starts, so that a byte offset becomes a [`Position`] without
/// scanning the text from its start (charts of thousands of lines name many positions).
struct Lines<'a> {
    text: &'a str,
    starts: Vec<usize>,
}

impl<'a> Lines<'a> {
    fn new(text: &'a str) -> Lines<'a> {
        let starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Lines { text, starts }
    }

    /// The position of byte `offset`.
    fn position(&self, offset: usize) -> Position {
        let line = self.starts.partition_point(|&s| s <= offset).max(1);
        let start = self.starts[line - 1];
        let column = self.text.get(start..offset).map_or(0, |t| t.chars().count()) + 1;
        Position {
            line: u32::try_from(line).unwrap_or(u32::MAX),
            column: u32::try_from(column).unwrap_or(u32::MAX),
        }
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// Why a chart could not be imported, and where: displayed `LINE:COLUMN: MESSAGE`, the message
/// naming the element or key at fault.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImportError {
    /// Where in the file.
    pub position: Position,
    /// What is wrong.
    pub message: String,
}

impl ImportError {
    fn new(position: Position, message: String) -> ImportError {
        ImportError { position, message }
    }
}

impl fmt::Display for ImportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.position, self.message)
    }
}

impl std::error::Error for ImportError {}

/// The two chart formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// SCXML 1.0 (`.scxml`, `.xml`).
    Scxml,
    /// An XState v5 machine configuration (`.json`).
    XState,
}

impl Format {
    /// The format a file's extension names, if any: `.scxml` and `.xml` are SCXML, `.json` is
    /// XState.
    pub fn of_path(path: &Path) -> Option<Format> {
        match path.extension()?.to_str()? {
            "scxml" | "xml" => Some(Format::Scxml),
            "json" => Some(Format::XState),
            _ => None,
        }
    }
}

/// Reads a chart and writes it as the items of a `workflow!` block.
pub fn import(format: Format, text: &str) -> Result<Imported, ImportError> {
    let chart = match format {
        Format::Scxml => scxml::read(text)?,
        Format::XState => xstate::read(text)?,
    };
    chart.render()
}

/// A chart as `workflow!` source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Imported {
    name: Option<String>,
    body: String,
    positions: Vec<(String, Position)>,
}

impl Imported {
    /// The chart's own name (SCXML `name`, XState `id`), if it has one that is an identifier.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// The block's items (`initial`, `events`, the states), one a line, not indented.
    pub fn body(&self) -> &str {
        &self.body
    }

    /// The whole declaration `VIS workflow NAME { .. }`, indented four spaces a level.
    pub fn block(&self, vis: &str, name: &str) -> String {
        let mut out = String::new();
        if !vis.is_empty() {
            out.push_str(vis);
            out.push(' ');
        }
        let _ = writeln!(out, "workflow {name} {{");
        for line in self.body.lines() {
            let _ = writeln!(out, "    {line}");
        }
        out.push_str("}\n");
        out
    }

    /// Where the chart declares the state or event `name` (for errors found after import).
    pub fn position_of(&self, name: &str) -> Option<Position> {
        self.positions.iter().find(|(n, _)| n == name).map(|(_, p)| *p)
    }
}

// ---------------------------------------------------------------------------
// The chart, as both readers leave it
// ---------------------------------------------------------------------------

/// A name and where the chart writes it.
#[derive(Clone, Debug, PartialEq)]
struct Named {
    name: String,
    pos: Position,
}

/// A declared event and its payload fields `(name, type)`.
type EventDecl = (Named, Vec<(String, String)>);

#[derive(Default)]
struct Chart {
    name: Option<String>,
    /// `None`: the first top-level state.
    initial: Option<Named>,
    /// Declared events with their payload fields; `None` when the chart lists none.
    events: Option<Vec<EventDecl>>,
    states: Vec<Node>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    State,
    Parallel,
    Final { failure: bool },
    History { deep: bool },
}

struct Node {
    /// `<state id>` or the XState key.
    name: Named,
    /// `state`, `parallel`... as the chart calls it, for messages.
    element: &'static str,
    kind: Kind,
    /// The states its default entry enters (`initial="a b"`), none for the first child.
    initial: Vec<Named>,
    /// The actions of its `<initial>` transition (XState's `meta.initial.actions`).
    initial_actions: Vec<Act>,
    entry: Vec<Act>,
    exit: Vec<Act>,
    invoke: Option<Invoke>,
    compensate: Option<Named>,
    transitions: Vec<Tr>,
    children: Vec<Node>,
}

impl Node {
    fn new(name: Named, element: &'static str, kind: Kind) -> Node {
        Node {
            name,
            element,
            kind,
            initial: Vec::new(),
            initial_actions: Vec::new(),
            entry: Vec::new(),
            exit: Vec::new(),
            invoke: None,
            compensate: None,
            transitions: Vec::new(),
            children: Vec::new(),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
enum Trig {
    Events(Vec<String>),
    Any,
    Always,
    /// `on done`: the state completed.
    Done,
    /// `on done(S)`: another state completed.
    DoneOf(Named),
    InvokeDone,
    InvokeError,
    /// `after`: the delay and its text (which names the timer's event).
    After(Duration, String),
}

struct Tr {
    pos: Position,
    /// The element or key, for messages: `<transition>`, `on.Flip`.
    what: String,
    trigger: Trig,
    /// States that must be active (`In('S')`, `in(S)`), then those that must not be.
    in_states: Vec<Named>,
    not_in_states: Vec<Named>,
    guard: Option<String>,
    targets: Vec<Named>,
    internal: bool,
    actions: Vec<Act>,
}

impl Tr {
    fn new(pos: Position, what: String, trigger: Trig) -> Tr {
        Tr {
            pos,
            what,
            trigger,
            in_states: Vec::new(),
            not_in_states: Vec::new(),
            guard: None,
            targets: Vec::new(),
            internal: false,
            actions: Vec::new(),
        }
    }

    /// Whether it has a condition: a guard or an `in` term.
    fn conditional(&self) -> bool {
        self.guard.is_some() || !self.in_states.is_empty() || !self.not_in_states.is_empty()
    }
}

#[derive(Clone, Debug, PartialEq)]
enum Act {
    Call(Named),
    Raise(Named),
    Send { event: Named, delay: Duration, id: String },
    Cancel(String),
}

struct Invoke {
    activity: String,
    output: String,
    attempts: u32,
    backoff: Option<(Duration, Duration)>,
    timeout: Option<Duration>,
    resource: Option<String>,
    expected: Option<Duration>,
}

// ---------------------------------------------------------------------------
// Checks and rendering, shared by both formats
// ---------------------------------------------------------------------------

/// Rust's keywords, which no name in a block can be.
const KEYWORDS: &[&str] = &[
    "as", "async", "await", "break", "const", "continue", "crate", "dyn", "else", "enum", "extern", "false", "fn",
    "for", "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut", "pub", "ref", "return", "self", "Self",
    "static", "struct", "super", "trait", "true", "type", "unsafe", "use", "where", "while", "abstract", "become",
    "box", "do", "final", "gen", "macro", "override", "priv", "try", "typeof", "unsized", "virtual", "yield", "_",
];

fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !KEYWORDS.contains(&name)
}

/// `name` if it can name a state, event, guard or action in a block.
fn identifier(name: &str, what: &str, pos: Position) -> Result<String, ImportError> {
    if is_identifier(name) {
        Ok(name.to_string())
    } else {
        Err(ImportError::new(
            pos,
            format!("{what} `{name}` is not a Rust identifier (letters, digits and `_`, not a keyword): rename it"),
        ))
    }
}

/// A type as the chart writes it (`Receipt`, `Vec<u8>`), refused if it could end the block.
fn type_text(ty: &str, what: &str, pos: Position) -> Result<String, ImportError> {
    let mut depth: i32 = 0;
    for c in ty.chars() {
        match c {
            '(' | '[' | '<' => depth += 1,
            ')' | ']' | '>' => depth -= 1,
            '{' | '}' | '"' | '\'' | '/' | '#' | '!' => depth = -1,
            ';' if depth == 0 => depth = -1,
            _ => {}
        }
        if depth < 0 {
            break;
        }
    }
    if depth != 0 || ty.trim().is_empty() {
        return Err(ImportError::new(pos, format!("{what} `{ty}` is not a Rust type")));
    }
    Ok(ty.trim().to_string())
}

/// The closest of `names` to `name`, for "did you mean": within a third of its length in edits
/// (at least one), an adjacent swap counting as one, case ignored, as the macro's own messages.
fn suggest<'a>(name: &str, names: impl Iterator<Item = &'a str>) -> String {
    crate::spelling::closest(name, names)
        .map(|n| format!(" (did you mean `{n}`?)"))
        .unwrap_or_default()
}

fn walk<'a>(nodes: &'a [Node], f: &mut dyn FnMut(&'a Node)) {
    for n in nodes {
        f(n);
        walk(&n.children, f);
    }
}

impl Chart {
    /// Checks what the block's grammar cannot express or the chart gets wrong, then writes the
    /// block's items.
    fn render(self) -> Result<Imported, ImportError> {
        let mut positions: Vec<(String, Position)> = Vec::new();
        let mut all: Vec<&Node> = Vec::new();
        walk(&self.states, &mut |n| all.push(n));
        for n in &all {
            identifier(&n.name.name, &format!("<{}> id", n.element), n.name.pos)?;
            if let Some(first) = positions.iter().find(|(name, _)| *name == n.name.name) {
                return Err(ImportError::new(
                    n.name.pos,
                    format!(
                        "two states are called `{}` (the other at {}): a workflow's state names are unique",
                        n.name.name, first.1
                    ),
                ));
            }
            positions.push((n.name.name.clone(), n.name.pos));
        }
        let state_names: Vec<&str> = all.iter().map(|n| n.name.name.as_str()).collect();

        // The events: declared, or every one the chart names in document order.
        let mut events: Vec<(String, Vec<(String, String)>)> = Vec::new();
        let declared = self.events.is_some();
        if let Some(list) = &self.events {
            for (name, fields) in list {
                identifier(&name.name, "event", name.pos)?;
                if events.iter().any(|(e, _)| *e == name.name) {
                    return Err(ImportError::new(
                        name.pos,
                        format!("event `{}` is declared twice", name.name),
                    ));
                }
                events.push((name.name.clone(), fields.clone()));
                positions.push((name.name.clone(), name.pos));
            }
        }
        let mut use_event = |name: &str, pos: Position, what: &str| -> Result<(), ImportError> {
            if events.iter().any(|(e, _)| e == name) {
                return Ok(());
            }
            if declared {
                return Err(ImportError::new(
                    pos,
                    format!(
                        "{what}: event `{name}` is not among the chart's declared events{}",
                        suggest(name, events.iter().map(|(e, _)| e.as_str()))
                    ),
                ));
            }
            identifier(name, "event", pos)?;
            events.push((name.to_string(), Vec::new()));
            positions.push((name.to_string(), pos));
            Ok(())
        };
        for n in &all {
            let what = format!("<{}> `{}`", n.element, n.name.name);
            for a in n.entry.iter().chain(&n.exit).chain(&n.initial_actions) {
                if let Act::Raise(e) | Act::Send { event: e, .. } = a {
                    use_event(&e.name, e.pos, &what)?;
                }
            }
            for t in &n.transitions {
                let what = format!("{} in state `{}`", t.what, n.name.name);
                if let Trig::Events(list) = &t.trigger {
                    for e in list {
                        use_event(e, t.pos, &what)?;
                    }
                }
                for a in &t.actions {
                    if let Act::Raise(e) | Act::Send { event: e, .. } = a {
                        use_event(&e.name, e.pos, &what)?;
                    }
                }
            }
        }

        let mut out = String::new();
        let initial = match (&self.initial, self.states.first()) {
            (Some(i), _) => {
                if !self.states.iter().any(|s| s.name.name == i.name) {
                    return Err(ImportError::new(
                        i.pos,
                        format!(
                            "the chart's initial state `{}` is not one of its top-level states{}",
                            i.name,
                            suggest(&i.name, self.states.iter().map(|s| s.name.name.as_str()))
                        ),
                    ));
                }
                i.name.clone()
            }
            (None, Some(first)) => first.name.name.clone(),
            (None, None) => {
                return Err(ImportError::new(
                    Position { line: 1, column: 1 },
                    "the chart has no states".into(),
                ))
            }
        };
        let _ = writeln!(out, "initial {initial};");
        if !events.is_empty() {
            let list: Vec<String> = events
                .iter()
                .map(|(name, fields)| {
                    if fields.is_empty() {
                        name.clone()
                    } else {
                        let fields: Vec<String> = fields.iter().map(|(f, t)| format!("{f}: {t}")).collect();
                        format!("{name} {{ {} }}", fields.join(", "))
                    }
                })
                .collect();
            let _ = writeln!(out, "events {{ {} }}", list.join(", "));
        }
        let cx = Context { states: &state_names };
        for s in &self.states {
            cx.node(s, 0, &mut out)?;
        }
        Ok(Imported {
            name: self.name.filter(|n| is_identifier(n)),
            body: out,
            positions,
        })
    }
}

struct Context<'a> {
    states: &'a [&'a str],
}

impl Context<'_> {
    /// The state `t` names, if the chart has it; `role` says what it stands for in the error.
    fn state(&self, t: &Named, what: &str, role: &str) -> Result<String, ImportError> {
        if self.states.contains(&t.name.as_str()) {
            Ok(t.name.clone())
        } else {
            Err(ImportError::new(
                t.pos,
                format!(
                    "{what}: unknown {role} `{}`{}",
                    t.name,
                    suggest(&t.name, self.states.iter().copied())
                ),
            ))
        }
    }

    fn targets(&self, targets: &[Named], what: &str) -> Result<String, ImportError> {
        let names: Result<Vec<String>, ImportError> = targets.iter().map(|t| self.state(t, what, "target")).collect();
        Ok(names?.join(", "))
    }

    /// ` if in(A) && !in(B) && guard`, or nothing without a condition.
    fn condition(&self, t: &Tr, what: &str) -> Result<String, ImportError> {
        let mut terms = Vec::new();
        for s in &t.in_states {
            terms.push(format!("in({})", self.state(s, what, "state")?));
        }
        for s in &t.not_in_states {
            terms.push(format!("!in({})", self.state(s, what, "state")?));
        }
        terms.extend(t.guard.clone());
        Ok(if terms.is_empty() {
            String::new()
        } else {
            format!(" if {}", terms.join(" && "))
        })
    }

    fn node(&self, n: &Node, depth: usize, out: &mut String) -> Result<(), ImportError> {
        let pad = "    ".repeat(depth);
        let name = &n.name.name;
        let what = format!("<{}> `{name}`", n.element);
        if let Kind::History { deep } = n.kind {
            let mut line = format!("{pad}history {}{name}", if deep { "deep " } else { "" });
            match n.transitions.as_slice() {
                [] => {}
                [t] if t.trigger == Trig::Always && !t.conditional() && !t.targets.is_empty() => {
                    let _ = write!(line, " => {}", self.targets(&t.targets, &what)?);
                    line.push_str(&actions_suffix(&t.actions));
                }
                [t, ..] => {
                    return Err(ImportError::new(
                        t.pos,
                        format!(
                            "{what}: a history state has one default transition, with a target and no event or guard"
                        ),
                    ))
                }
            }
            if !line.ends_with(';') {
                line.push(';');
            }
            let _ = writeln!(out, "{line}");
            return Ok(());
        }
        let keyword = match n.kind {
            Kind::State | Kind::History { .. } => "state",
            Kind::Parallel => "parallel",
            Kind::Final { .. } => "final",
        };
        let failure = if n.kind == (Kind::Final { failure: true }) {
            " (failure)"
        } else {
            ""
        };
        let mut body = String::new();
        let inner = "    ".repeat(depth + 1);
        let regions: Vec<&Node> = n
            .children
            .iter()
            .filter(|c| !matches!(c.kind, Kind::History { .. }))
            .collect();
        match n.kind {
            Kind::State if !regions.is_empty() => {
                let mut descendants: Vec<&str> = Vec::new();
                walk(&n.children, &mut |c| descendants.push(&c.name.name));
                let mut initial = Vec::new();
                for i in &n.initial {
                    if !descendants.contains(&i.name.as_str()) {
                        return Err(ImportError::new(
                            i.pos,
                            format!(
                                "{what}: its initial state `{}` is not one of its descendants{}",
                                i.name,
                                suggest(&i.name, descendants.iter().copied())
                            ),
                        ));
                    }
                    initial.push(i.name.clone());
                }
                if initial.is_empty() {
                    initial.push(regions[0].name.name.clone());
                }
                let _ = writeln!(
                    body,
                    "{inner}initial {}{}",
                    initial.join(", "),
                    actions_suffix(&n.initial_actions)
                );
            }
            _ => {
                if let Some(i) = n.initial.first() {
                    return Err(ImportError::new(
                        i.pos,
                        format!("{what}: only a state with child states has an initial state"),
                    ));
                }
            }
        }
        if !n.entry.is_empty() {
            let _ = writeln!(body, "{inner}entry {};", actions(&n.entry));
        }
        if !n.exit.is_empty() {
            let _ = writeln!(body, "{inner}exit {};", actions(&n.exit));
        }
        // The invoke stands where its first outcome does, so the transitions keep their order.
        let first_arm = n
            .transitions
            .iter()
            .position(|t| matches!(t.trigger, Trig::InvokeDone | Trig::InvokeError));
        let mut invoke_written = false;
        if first_arm.is_none() {
            if let Some(invoke) = &n.invoke {
                self.invoke(n, invoke, &inner, &mut body)?;
                invoke_written = true;
            }
        }
        for (i, t) in n.transitions.iter().enumerate() {
            let what = format!("{} in state `{name}`", t.what);
            let targets = self.targets(&t.targets, &what)?;
            let guard = self.condition(t, &what)?;
            let arrow = match (t.targets.is_empty(), t.internal) {
                (true, _) => String::new(),
                (false, false) => format!(" => {targets}"),
                (false, true) => format!(" => internal {targets}"),
            };
            let suffix = actions_suffix(&t.actions);
            let line = match &t.trigger {
                Trig::Events(list) => format!("on {}{guard}{arrow}{suffix}", list.join(" | ")),
                Trig::Any => format!("on _{guard}{arrow}{suffix}"),
                Trig::Done => format!("on done{guard}{arrow}{suffix}"),
                Trig::DoneOf(of) => format!("on done({}){guard}{arrow}{suffix}", self.state(of, &what, "state")?),
                Trig::Always => {
                    if t.targets.is_empty() && t.actions.is_empty() {
                        return Err(ImportError::new(
                            t.pos,
                            format!("{what}: an eventless transition with neither a target nor actions does nothing"),
                        ));
                    }
                    format!("always{guard}{arrow}{suffix}")
                }
                Trig::After(_, text) => {
                    one_plain_target(t, &what, "a timer (`after`)")?;
                    format!("after {text}{arrow}{suffix}")
                }
                Trig::InvokeDone | Trig::InvokeError => {
                    let Some(invoke) = &n.invoke else {
                        return Err(ImportError::new(
                            t.pos,
                            format!("{what}: the state invokes no activity"),
                        ));
                    };
                    if Some(i) == first_arm && !invoke_written {
                        self.invoke(n, invoke, &inner, &mut body)?;
                        invoke_written = true;
                    }
                    continue;
                }
            };
            let _ = writeln!(body, "{inner}{line}");
        }
        if let Some(c) = &n.compensate {
            let _ = writeln!(body, "{inner}compensate {};", c.name);
        }
        for c in &n.children {
            self.node(c, depth + 1, &mut body)?;
        }
        if body.is_empty() && matches!(n.kind, Kind::Final { .. }) {
            let _ = writeln!(out, "{pad}final {name}{failure};");
        } else if body.is_empty() {
            let _ = writeln!(out, "{pad}{keyword} {name} {{}}");
        } else {
            let _ = writeln!(out, "{pad}{keyword} {name}{failure} {{");
            out.push_str(&body);
            let _ = writeln!(out, "{pad}}}");
        }
        Ok(())
    }

    fn invoke(&self, n: &Node, invoke: &Invoke, pad: &str, out: &mut String) -> Result<(), ImportError> {
        let mut clauses: Vec<String> = Vec::new();
        if invoke.attempts > 1 {
            let mut retry = format!("retry {}", invoke.attempts - 1);
            if let Some((min, max)) = invoke.backoff {
                let _ = write!(retry, " backoff {}..{}", format_duration(min), format_duration(max));
            }
            clauses.push(retry);
        }
        if let Some(t) = invoke.timeout {
            clauses.push(format!("timeout {}", format_duration(t)));
        }
        if let Some(r) = &invoke.resource {
            clauses.push(format!("resource {r}"));
        }
        if let Some(e) = invoke.expected {
            clauses.push(format!("expected {}", format_duration(e)));
        }
        let (mut done, mut error) = (None, None);
        for t in &n.transitions {
            let slot = match t.trigger {
                Trig::InvokeDone => &mut done,
                Trig::InvokeError => &mut error,
                _ => continue,
            };
            let outcome = if t.trigger == Trig::InvokeDone { "done" } else { "error" };
            let what = format!("{} in state `{}`", t.what, n.name.name);
            if slot.is_some() {
                return Err(ImportError::new(
                    t.pos,
                    format!(
                        "{what}: a second `{outcome}` transition of activity `{}`; the block has one",
                        invoke.activity
                    ),
                ));
            }
            one_plain_target(t, &what, &format!("an activity's `{outcome}` outcome"))?;
            *slot = Some(format!(
                "{outcome} => {}{}",
                self.targets(&t.targets, &what)?,
                actions_suffix(&t.actions)
            ));
        }
        clauses.extend(done);
        clauses.extend(error);
        if clauses.is_empty() {
            let _ = writeln!(out, "{pad}invoke {} -> {};", invoke.activity, invoke.output);
        } else {
            let clauses: Vec<String> = clauses
                .into_iter()
                .map(|c| if c.ends_with(';') { c } else { format!("{c};") })
                .collect();
            let _ = writeln!(
                out,
                "{pad}invoke {} -> {} {{ {} }}",
                invoke.activity,
                invoke.output,
                clauses.join(" ")
            );
        }
        Ok(())
    }
}

/// An `after` or an activity's outcome: one target, no guard, not internal.
fn one_plain_target(t: &Tr, what: &str, kind: &str) -> Result<(), ImportError> {
    let problem = if t.conditional() {
        Some("has no guard")
    } else if t.targets.len() != 1 {
        Some("has exactly one target")
    } else if t.internal {
        Some("is not internal")
    } else {
        None
    };
    match problem {
        Some(p) => Err(ImportError::new(
            t.pos,
            format!("{what}: {kind} {p} in a workflow block"),
        )),
        None => Ok(()),
    }
}

fn actions(list: &[Act]) -> String {
    let items: Vec<String> = list
        .iter()
        .map(|a| match a {
            Act::Call(n) => n.name.clone(),
            Act::Raise(e) => format!("raise {}", e.name),
            Act::Send { event, delay, id } => {
                let mut text = format!("send {}", event.name);
                if !delay.is_zero() {
                    let _ = write!(text, " after {}", format_duration(*delay));
                }
                if *id != event.name {
                    let _ = write!(text, " as {id}");
                }
                text
            }
            Act::Cancel(id) => format!("cancel {id}"),
        })
        .collect();
    items.join(", ")
}

/// ` / ACTIONS;` or `;`.
fn actions_suffix(list: &[Act]) -> String {
    if list.is_empty() {
        ";".into()
    } else {
        format!(" / {};", actions(list))
    }
}

#[cfg(test)]
mod tests;
