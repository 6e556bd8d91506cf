//! SCXML (null data model) into the importer's chart.

use std::time::Duration;

use roxmltree::{Document, Node as XmlNode};

use super::{
    identifier, type_text, Act, Chart, EventDecl, ImportError, Invoke, Kind, Lines, Named, Node, Position, Tr, Trig,
};
use crate::interop::SCXML_NAMESPACE;
use crate::parse_duration;

const SCXML: &str = "http://www.w3.org/2005/07/scxml";
/// The `type` of the `<invoke>` that stands for an activity.
const ACTIVITY: &str = "urn:x-workflow-rs:activity";

pub(super) fn read(text: &str) -> Result<Chart, ImportError> {
    let doc = Document::parse(text).map_err(|e| {
        let p = e.pos();
        ImportError::new(
            Position {
                line: p.row,
                column: p.col,
            },
            format!("bad XML: {}", e.to_string().trim_end_matches(&format!(" at {p}"))),
        )
    })?;
    let r = Reader {
        lines: Lines::new(text),
        document: std::marker::PhantomData,
    };
    let root = doc.root_element();
    if root.tag_name().namespace() != Some(SCXML) || root.tag_name().name() != "scxml" {
        return Err(r.error(
            root,
            format!(
                "the root element is <{}>, not <scxml> in the SCXML namespace ({SCXML})",
                root.tag_name().name()
            ),
        ));
    }
    r.attributes(root, &["version", "datamodel", "name", "initial", "binding"])?;
    if let Some(model) = root.attribute("datamodel") {
        if model != "null" && model != "ecmascript" {
            return Err(r.error(
                root,
                format!("<scxml datamodel=\"{model}\">: only the null data model is read (no expressions)"),
            ));
        }
    }
    let initial = match r.initial_attribute(root).as_slice() {
        [] => None,
        [one] => Some(one.clone()),
        [_, _, ..] => {
            return Err(r.error(
                root,
                format!(
                    "<scxml initial=\"{}\">: several initial states at the top level are not supported (a workflow's `initial` names one state; wrap them in a state)",
                    root.attribute("initial").unwrap_or_default()
                ),
            ))
        }
    };
    let mut chart = Chart {
        name: root.attribute("name").map(str::to_string),
        initial,
        ..Chart::default()
    };
    for c in r.elements(root)? {
        match (c.tag_name().namespace(), c.tag_name().name()) {
            (Some(SCXML), "state" | "parallel" | "final") => chart.states.push(r.node(c)?),
            (Some(SCXML_NAMESPACE), "events") => chart.events = Some(r.events(c)?),
            _ => return Err(r.unsupported(c, "<scxml>")),
        }
    }
    Ok(chart)
}

struct Reader<'a, 'i> {
    lines: Lines<'i>,
    /// The nodes read borrow the document.
    document: std::marker::PhantomData<&'a Document<'i>>,
}

impl<'a, 'i> Reader<'a, 'i> {
    fn pos(&self, n: XmlNode) -> Position {
        self.lines.position(n.range().start)
    }

    fn error(&self, n: XmlNode, message: String) -> ImportError {
        ImportError::new(self.pos(n), message)
    }

    fn unsupported(&self, n: XmlNode, parent: &str) -> ImportError {
        let name = n.tag_name().name();
        let hint = match name {
            "datamodel" | "data" | "assign" | "script" | "if" | "elseif" | "else" | "foreach" | "log" | "donedata"
            | "param" | "content" | "finalize" => " (the null data model has no data or expressions)",
            _ => "",
        };
        self.error(n, format!("<{name}> in {parent} is not supported{hint}"))
    }

    /// The element children of `n` (skipping those of other namespaces, an editor's notes).
    fn elements(&self, n: XmlNode<'a, 'i>) -> Result<Vec<XmlNode<'a, 'i>>, ImportError> {
        let mut out = Vec::new();
        for c in n.children() {
            if c.is_text() && c.text().is_some_and(|t| !t.trim().is_empty()) {
                return Err(self.error(c, format!("text inside <{}> is not supported", n.tag_name().name())));
            }
            if c.is_element() && matches!(c.tag_name().namespace(), Some(SCXML | SCXML_NAMESPACE)) {
                out.push(c);
            }
        }
        Ok(out)
    }

    /// Refuses SCXML attributes other than `allowed` (and `wf:` ones not listed in `ours`).
    fn attributes_with(&self, n: XmlNode, allowed: &[&str], ours: &[&str]) -> Result<(), ImportError> {
        for a in n.attributes() {
            let known = match a.namespace() {
                None | Some(SCXML) => allowed.contains(&a.name()),
                Some(SCXML_NAMESPACE) => ours.contains(&a.name()),
                Some(_) => true,
            };
            if !known {
                let position = self.lines.position(a.range().start);
                let prefix = if a.namespace() == Some(SCXML_NAMESPACE) {
                    "wf:"
                } else {
                    ""
                };
                let hint = match a.name() {
                    "expr" | "eventexpr" | "delayexpr" | "targetexpr" | "idlocation" | "namelist" | "sendidexpr"
                    | "srcexpr" | "typeexpr" => " (an expression; the null data model has none)",
                    _ => "",
                };
                return Err(ImportError::new(
                    position,
                    format!(
                        "<{} {prefix}{}=\"{}\"> is not supported{hint}",
                        n.tag_name().name(),
                        a.name(),
                        a.value()
                    ),
                ));
            }
        }
        Ok(())
    }

    fn attributes(&self, n: XmlNode, allowed: &[&str]) -> Result<(), ImportError> {
        self.attributes_with(n, allowed, &[])
    }

    fn required(&self, n: XmlNode<'a, 'i>, attribute: &str) -> Result<&'a str, ImportError> {
        n.attribute(attribute)
            .ok_or_else(|| self.error(n, format!("<{}> needs a `{attribute}`", n.tag_name().name())))
    }

    fn named(&self, n: XmlNode<'a, 'i>, attribute: &str) -> Result<Named, ImportError> {
        let name = self.required(n, attribute)?;
        Ok(Named {
            name: name.to_string(),
            pos: self.pos(n),
        })
    }

    fn ours(&self, n: XmlNode<'a, 'i>, attribute: &str) -> Option<&'a str> {
        n.attribute((SCXML_NAMESPACE, attribute))
    }

    /// The states an `initial="ID ID.."` attribute names (none without one).
    fn initial_attribute(&self, n: XmlNode) -> Vec<Named> {
        let value = n.attribute("initial").unwrap_or_default();
        value
            .split_whitespace()
            .map(|id| Named {
                name: id.to_string(),
                pos: self.pos(n),
            })
            .collect()
    }

    fn duration(&self, n: XmlNode, attribute: &str, value: &str) -> Result<Duration, ImportError> {
        parse_duration(value).ok_or_else(|| {
            self.error(
                n,
                format!(
                    "<{} {attribute}=\"{value}\">: a duration is a whole number and a unit, such as `500ms`, `30s`, `2h`",
                    n.tag_name().name()
                ),
            )
        })
    }

    fn events(&self, n: XmlNode<'a, 'i>) -> Result<Vec<EventDecl>, ImportError> {
        let mut out = Vec::new();
        for e in self.elements(n)? {
            if e.tag_name().namespace() != Some(SCXML_NAMESPACE) || e.tag_name().name() != "event" {
                return Err(self.unsupported(e, "<wf:events>"));
            }
            self.attributes(e, &["name"])?;
            let name = self.named(e, "name")?;
            let mut fields = Vec::new();
            for f in self.elements(e)? {
                if f.tag_name().namespace() != Some(SCXML_NAMESPACE) || f.tag_name().name() != "field" {
                    return Err(self.unsupported(f, "<wf:event>"));
                }
                self.attributes(f, &["name", "type"])?;
                let field = identifier(self.required(f, "name")?, "field", self.pos(f))?;
                let ty = type_text(self.required(f, "type")?, "field type", self.pos(f))?;
                fields.push((field, ty));
            }
            out.push((name, fields));
        }
        Ok(out)
    }

    fn node(&self, n: XmlNode<'a, 'i>) -> Result<Node, ImportError> {
        let (element, kind) = match n.tag_name().name() {
            "state" => ("state", Kind::State),
            "parallel" => ("parallel", Kind::Parallel),
            "final" => (
                "final",
                Kind::Final {
                    failure: self.ours(n, "failure") == Some("true"),
                },
            ),
            _ => return Err(self.unsupported(n, "a state")),
        };
        match kind {
            Kind::State => self.attributes(n, &["id", "initial"])?,
            Kind::Final { .. } => self.attributes_with(n, &["id"], &["failure"])?,
            _ => self.attributes(n, &["id"])?,
        }
        let mut node = Node::new(self.named(n, "id")?, element, kind);
        let here = format!("<{element}> `{}`", node.name.name);
        if kind == Kind::State {
            node.initial = self.initial_attribute(n);
        }
        for c in self.elements(n)? {
            let ours = c.tag_name().namespace() == Some(SCXML_NAMESPACE);
            match (ours, c.tag_name().name()) {
                (false, "state" | "parallel" | "final") if !matches!(kind, Kind::Final { .. }) => {
                    node.children.push(self.node(c)?)
                }
                (false, "history") if !matches!(kind, Kind::Final { .. }) => node.children.push(self.history(c)?),
                (false, "transition") if !matches!(kind, Kind::Final { .. }) => {
                    node.transitions.push(self.transition(c, &node.name.name)?)
                }
                (false, "onentry") => {
                    self.attributes(c, &[])?;
                    node.entry.extend(self.actions(c)?);
                }
                (false, "onexit") => {
                    self.attributes(c, &[])?;
                    node.exit.extend(self.actions(c)?);
                }
                (false, "initial") if kind == Kind::State => {
                    self.attributes(c, &["id"])?;
                    if !node.initial.is_empty() {
                        return Err(self.error(c, format!("{here} has both an `initial` attribute and <initial>")));
                    }
                    let inner = self.elements(c)?;
                    let [t] = inner.as_slice() else {
                        return Err(self.error(c, format!("<initial> of {here} holds one <transition>")));
                    };
                    if t.tag_name().name() != "transition" || t.tag_name().namespace() != Some(SCXML) {
                        return Err(self.unsupported(*t, "<initial>"));
                    }
                    let tr = self.transition(*t, &node.name.name)?;
                    if tr.trigger != Trig::Always || tr.conditional() || tr.targets.is_empty() || tr.internal {
                        return Err(self.error(
                            *t,
                            format!("<initial> of {here}: its transition has targets, no event, no cond and no type"),
                        ));
                    }
                    node.initial = tr.targets;
                    node.initial_actions = tr.actions;
                }
                (false, "invoke") if !matches!(kind, Kind::Final { .. }) => {
                    if node.invoke.is_some() {
                        return Err(self.error(c, format!("{here} invokes a second activity; a state invokes one")));
                    }
                    node.invoke = Some(self.invoke(c)?);
                }
                (true, "compensate") if !matches!(kind, Kind::Final { .. }) => {
                    self.attributes(c, &["name"])?;
                    if node.compensate.is_some() {
                        return Err(self.error(c, format!("{here} has a second <wf:compensate>")));
                    }
                    let name = self.named(c, "name")?;
                    identifier(&name.name, "compensation", name.pos)?;
                    node.compensate = Some(name);
                }
                _ => return Err(self.unsupported(c, &here)),
            }
        }
        self.timers(&mut node);
        Ok(node)
    }

    /// `after` as the export writes it: a delayed `<send>` of `{STATE}After{DELAY}` (its id the
    /// event) in `<onentry>`, its `<cancel>` in `<onexit>`, and transitions on that event.
    fn timers(&self, node: &mut Node) {
        let prefix = format!("{}After", node.name.name);
        let sends: Vec<(String, Duration, String)> = node
            .entry
            .iter()
            .filter_map(|a| match a {
                Act::Send { event, delay, id } if *id == event.name && !delay.is_zero() => {
                    let text = event.name.strip_prefix(&prefix)?;
                    (parse_duration(text) == Some(*delay)).then(|| (event.name.clone(), *delay, text.to_string()))
                }
                _ => None,
            })
            .collect();
        for (event, delay, text) in sends {
            let cancelled = node.exit.iter().any(|a| *a == Act::Cancel(event.clone()));
            let single = |t: &Tr| t.trigger == Trig::Events(vec![event.clone()]);
            let elsewhere = node
                .entry
                .iter()
                .chain(&node.exit)
                .chain(node.transitions.iter().flat_map(|t| &t.actions));
            let sent_once = elsewhere
                .filter(|a| matches!(a, Act::Send { event: e, .. } | Act::Raise(e) if e.name == event))
                .count()
                == 1;
            if !cancelled || !sent_once || !node.transitions.iter().any(single) {
                continue;
            }
            node.entry
                .retain(|a| !matches!(a, Act::Send { event: e, .. } if e.name == event));
            node.exit.retain(|a| *a != Act::Cancel(event.clone()));
            for t in node.transitions.iter_mut().filter(|t| single(t)) {
                t.trigger = Trig::After(delay, text.clone());
            }
        }
    }

    fn history(&self, n: XmlNode<'a, 'i>) -> Result<Node, ImportError> {
        self.attributes(n, &["id", "type"])?;
        let deep = match n.attribute("type") {
            None | Some("shallow") => false,
            Some("deep") => true,
            Some(other) => return Err(self.error(n, format!("<history type=\"{other}\">: shallow or deep"))),
        };
        let mut node = Node::new(self.named(n, "id")?, "history", Kind::History { deep });
        for c in self.elements(n)? {
            if c.tag_name().name() != "transition" || c.tag_name().namespace() != Some(SCXML) {
                return Err(self.unsupported(c, "<history>"));
            }
            node.transitions.push(self.transition(c, &node.name.name)?);
        }
        Ok(node)
    }

    fn invoke(&self, n: XmlNode<'a, 'i>) -> Result<Invoke, ImportError> {
        if n.attribute("type") != Some(ACTIVITY) {
            return Err(self.error(
                n,
                format!(
                    "<invoke type=\"{}\">: only activities (type=\"{ACTIVITY}\") are supported",
                    n.attribute("type").unwrap_or("scxml")
                ),
            ));
        }
        self.attributes_with(
            n,
            &["id", "type"],
            &["output", "attempts", "backoff", "timeout", "resource", "expected"],
        )?;
        if let Some(c) = self.elements(n)?.first() {
            return Err(self.unsupported(*c, "<invoke>"));
        }
        let pos = self.pos(n);
        let activity = identifier(self.required(n, "id")?, "activity", pos)?;
        let output = type_text(self.ours(n, "output").unwrap_or("()"), "output type", pos)?;
        let attempts = match self.ours(n, "attempts") {
            None => 1,
            Some(a) => a.parse::<u32>().ok().filter(|&a| a >= 1).ok_or_else(|| {
                self.error(
                    n,
                    format!("<invoke wf:attempts=\"{a}\">: a number of attempts, 1 or more"),
                )
            })?,
        };
        let backoff = match self.ours(n, "backoff") {
            None => None,
            Some(b) => {
                let (min, max) = b.split_once("..").ok_or_else(|| {
                    self.error(n, format!("<invoke wf:backoff=\"{b}\">: MIN..MAX, such as `100ms..5s`"))
                })?;
                Some((
                    self.duration(n, "wf:backoff", min)?,
                    self.duration(n, "wf:backoff", max)?,
                ))
            }
        };
        let optional = |attribute: &str| -> Result<Option<Duration>, ImportError> {
            self.ours(n, attribute)
                .map(|v| self.duration(n, &format!("wf:{attribute}"), v))
                .transpose()
        };
        Ok(Invoke {
            activity,
            output,
            attempts,
            backoff,
            timeout: optional("timeout")?,
            resource: self
                .ours(n, "resource")
                .map(|r| identifier(r, "resource", pos))
                .transpose()?,
            expected: optional("expected")?,
        })
    }

    fn transition(&self, n: XmlNode<'a, 'i>, source: &str) -> Result<Tr, ImportError> {
        self.attributes(n, &["event", "cond", "target", "type"])?;
        let pos = self.pos(n);
        let internal = match n.attribute("type") {
            None | Some("external") => false,
            Some("internal") => true,
            Some(other) => return Err(self.error(n, format!("<transition type=\"{other}\">: internal or external"))),
        };
        let mut tr = Tr::new(pos, "<transition>".into(), Trig::Always);
        tr.internal = internal;
        if let Some(cond) = n.attribute("cond") {
            self.condition(n, cond, &mut tr)?;
        }
        let descriptors: Vec<&str> = n
            .attribute("event")
            .map(|e| e.split_whitespace().collect())
            .unwrap_or_default();
        let trigger = match descriptors.as_slice() {
            [] => Trig::Always,
            ["*"] => Trig::Any,
            [one] if one.starts_with("done.invoke.") => Trig::InvokeDone,
            [one] if one.starts_with("error.invoke.") => Trig::InvokeError,
            [one] if one.starts_with("done.state.") => match &one["done.state.".len()..] {
                id if id == source => Trig::Done,
                id => Trig::DoneOf(Named {
                    name: id.to_string(),
                    pos,
                }),
            },
            list => {
                for d in list {
                    if d.contains('*') || d.starts_with("done.") || d.starts_with("error.") {
                        return Err(self.error(
                            n,
                            format!("<transition event=\"{}\">: the event `{d}` cannot be listed with others, and wildcards other than a lone `*` are not supported", list.join(" ")),
                        ));
                    }
                }
                Trig::Events(list.iter().map(|d| (*d).to_string()).collect())
            }
        };
        if let (Trig::InvokeDone | Trig::InvokeError, Some(e)) = (&trigger, n.attribute("event")) {
            // The activity named must be the state's; checked against the invoke when rendering
            // by its place, and here by name.
            let activity = e.trim().split_once(".invoke.").map_or("", |(_, a)| a);
            let parent_invoke = n
                .parent_element()
                .and_then(|p| p.children().find(|c| c.has_tag_name((SCXML, "invoke"))))
                .and_then(|i| i.attribute("id"));
            if parent_invoke != Some(activity) {
                return Err(self.error(
                    n,
                    format!(
                        "<transition event=\"{}\"> in state `{source}`: the state invokes no activity `{activity}`",
                        e.trim()
                    ),
                ));
            }
        }
        tr.trigger = trigger;
        tr.targets = n
            .attribute("target")
            .map(|t| {
                t.split_whitespace()
                    .map(|name| Named {
                        name: name.to_string(),
                        pos,
                    })
                    .collect()
            })
            .unwrap_or_default();
        tr.actions = self.actions(n)?;
        Ok(tr)
    }

    /// A `cond`: `In('S')` and `!In('S')` terms and at most one guard name, joined by `&&`
    /// (the null data model's only predicate is `In`).
    fn condition(&self, n: XmlNode, cond: &str, tr: &mut Tr) -> Result<(), ImportError> {
        let fail = |why: &str| {
            self.error(
                n,
                format!("<transition cond=\"{cond}\">: {why}; a cond is a guard's name and `In('STATE')` or `!In('STATE')` terms joined by `&&`"),
            )
        };
        if cond.contains("||") {
            return Err(fail("`||` is not supported"));
        }
        for term in cond.split("&&").map(str::trim) {
            let (negated, rest) = match term.strip_prefix('!') {
                Some(rest) => (true, rest.trim_start()),
                None => (false, term),
            };
            let quoted = rest
                .strip_prefix("In(")
                .and_then(|r| r.strip_suffix(')'))
                .map(str::trim)
                .and_then(|r| {
                    r.strip_prefix('\'')
                        .and_then(|r| r.strip_suffix('\''))
                        .or_else(|| r.strip_prefix('"').and_then(|r| r.strip_suffix('"')))
                });
            match quoted {
                Some(id) => {
                    let id = Named {
                        name: id.to_string(),
                        pos: tr.pos,
                    };
                    if negated {
                        tr.not_in_states.push(id);
                    } else {
                        tr.in_states.push(id);
                    }
                }
                None if !negated && super::is_identifier(term) => {
                    if let Some(first) = &tr.guard {
                        return Err(fail(&format!(
                            "two guard names (`{first}` and `{term}`); a transition has one guard"
                        )));
                    }
                    tr.guard = Some(term.to_string());
                }
                None => return Err(fail(&format!("`{term}` is an expression"))),
            }
        }
        Ok(())
    }

    fn actions(&self, n: XmlNode<'a, 'i>) -> Result<Vec<Act>, ImportError> {
        let mut out = Vec::new();
        for a in self.elements(n)? {
            let ours = a.tag_name().namespace() == Some(SCXML_NAMESPACE);
            let pos = self.pos(a);
            let action = match (ours, a.tag_name().name()) {
                (true, "action") => {
                    self.attributes(a, &["name"])?;
                    Act::Call(Named {
                        name: identifier(self.required(a, "name")?, "action", pos)?,
                        pos,
                    })
                }
                (false, "raise") => {
                    self.attributes(a, &["event"])?;
                    Act::Raise(self.named(a, "event")?)
                }
                (false, "send") => {
                    self.attributes(a, &["event", "delay", "id"])?;
                    if let Some(c) = self.elements(a)?.first() {
                        return Err(self.unsupported(*c, "<send>"));
                    }
                    let event = self.named(a, "event")?;
                    let delay = match a.attribute("delay") {
                        None => Duration::ZERO,
                        Some(d) => css_time(d).ok_or_else(|| {
                            self.error(
                                a,
                                format!("<send delay=\"{d}\">: a delay is a whole number of milliseconds, such as `1.5s` or `500ms`"),
                            )
                        })?,
                    };
                    let id = match a.attribute("id") {
                        None => event.name.clone(),
                        Some(id) => identifier(id, "send id", pos)?,
                    };
                    Act::Send { event, delay, id }
                }
                (false, "cancel") => {
                    self.attributes(a, &["sendid"])?;
                    Act::Cancel(identifier(self.required(a, "sendid")?, "send id", pos)?)
                }
                _ => return Err(self.unsupported(a, &format!("<{}>", n.tag_name().name()))),
            };
            out.push(action);
        }
        Ok(out)
    }
}

/// A CSS2 time (`500ms`, `1.5s`; also `m`, `h`, `d`), if it is a whole number of milliseconds.
fn css_time(text: &str) -> Option<Duration> {
    let text = text.trim();
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
    let (number, unit) = text.split_at(split);
    let scale: u64 = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" | "min" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return None,
    };
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() || fraction.contains('.') {
        return None;
    }
    let mut ms = whole.parse::<u64>().ok()?.checked_mul(scale)?;
    let mut place = scale;
    for digit in fraction.bytes() {
        if !digit.is_ascii_digit() {
            return None;
        }
        let d = u64::from(digit - b'0');
        if place % 10 != 0 {
            // Below a millisecond: only zeros.
            if d != 0 {
                return None;
            }
            continue;
        }
        place /= 10;
        ms = ms.checked_add(d * place)?;
    }
    Some(Duration::from_millis(ms))
}

#[cfg(test)]
mod tests {
    use super::css_time;
    use std::time::Duration;

    #[test]
    fn css_times_in_whole_milliseconds() {
        for (text, ms) in [
            ("1.5s", 1500),
            ("500ms", 500),
            ("0.25s", 250),
            ("2m", 120_000),
            ("1.0ms", 1),
            ("3h", 10_800_000),
        ] {
            assert_eq!(css_time(text), Some(Duration::from_millis(ms)), "{text}");
        }
        for text in ["1.5ms", "s", ".5s", "1..5s", "5", "5x", "99999999999999999999d"] {
            assert_eq!(css_time(text), None, "{text}");
        }
    }
}
