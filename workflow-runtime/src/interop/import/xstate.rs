//! An XState v5 machine configuration (JSON) into the importer's chart.

use std::time::Duration;

use super::json::{self, Json, Value};
use super::{identifier, type_text, Act, Chart, EventDecl, ImportError, Invoke, Kind, Named, Node, Position, Tr, Trig};
use crate::format_duration;

pub(super) fn read(text: &str) -> Result<Chart, ImportError> {
    let root = json::parse(text)?;
    let Some(members) = root.members() else {
        return Err(ImportError::new(
            root.pos,
            format!("an XState machine configuration is an object, not {}", root.kind()),
        ));
    };
    for (key, pos, _) in members {
        match key.as_str() {
            "id" | "initial" | "states" | "meta" | "context" | "description" | "tags" | "version" | "types" => {}
            "on" | "always" | "after" | "entry" | "exit" | "invoke" | "onDone" => {
                return Err(ImportError::new(
                    *pos,
                    format!(
                    "\"{key}\" on the machine itself is not supported: a workflow has no root state, put it on a state"
                ),
                ))
            }
            "type" => {
                return Err(ImportError::new(
                    *pos,
                    "\"type\" on the machine itself is not supported: wrap the regions in a parallel state".into(),
                ))
            }
            other => return Err(unknown_key(other, *pos, "the machine")),
        }
    }
    let machine_id = match root.get("id") {
        None => "(machine)".to_string(),
        Some(id) => string(id, "the machine's \"id\"")?.to_string(),
    };
    // Every state node, in document order, with its key path for resolving targets.
    let mut nodes: Vec<Info> = Vec::new();
    if let Some(states) = root.get("states") {
        collect(states, None, &machine_id, &mut nodes)?;
    }
    let mut chart = Chart {
        name: root.get("id").and_then(Json::as_str).map(str::to_string),
        ..Chart::default()
    };
    let top: Vec<usize> = (0..nodes.len()).filter(|&i| nodes[i].parent.is_none()).collect();
    if let Some(initial) = root.get("initial") {
        chart.initial = Some(child_named(&nodes, &top, initial, "the machine's \"initial\"")?);
    }
    if let Some(meta) = root.get("meta") {
        if let Some(events) = meta.get("events") {
            chart.events = Some(declared_events(events)?);
        }
    }
    let reader = Reader { nodes: &nodes };
    for &i in &top {
        chart.states.push(reader.node(i)?);
    }
    Ok(chart)
}

/// A state node found in the configuration.
struct Info<'a> {
    key: String,
    /// Its `id` if given, else its key: the state's name in the block.
    name: Named,
    /// Its XState id: the `id` member or `machine.key.key`.
    id: String,
    parent: Option<usize>,
    children: Vec<usize>,
    json: &'a Json,
}

fn collect<'a>(
    states: &'a Json,
    parent: Option<usize>,
    path: &str,
    out: &mut Vec<Info<'a>>,
) -> Result<(), ImportError> {
    let Some(members) = states.members() else {
        return Err(ImportError::new(
            states.pos,
            format!("\"states\" is an object of state nodes, not {}", states.kind()),
        ));
    };
    for (key, key_pos, json) in members {
        if json.members().is_none() {
            return Err(ImportError::new(
                json.pos,
                format!("state \"{key}\" is {}, not an object", json.kind()),
            ));
        }
        let explicit = json
            .get("id")
            .map(|id| string(id, &format!("the \"id\" of state \"{key}\"")))
            .transpose()?;
        let id = explicit.map_or_else(|| format!("{path}.{key}"), str::to_string);
        let index = out.len();
        out.push(Info {
            key: key.clone(),
            name: Named {
                name: explicit.unwrap_or(key).to_string(),
                pos: *key_pos,
            },
            id: id.clone(),
            parent,
            children: Vec::new(),
            json,
        });
        if let Some(p) = parent {
            out[p].children.push(index);
        }
        if let Some(states) = json.get("states") {
            collect(states, Some(index), &format!("{path}.{key}"), out)?;
        }
    }
    Ok(())
}

fn unknown_key(key: &str, pos: Position, place: &str) -> ImportError {
    let hint = match key {
        "cond" => " (XState v5 calls it \"guard\")",
        "onEntry" | "onExit" => " (XState v5 calls them \"entry\" and \"exit\")",
        "internal" => " (XState v5 says \"reenter\")",
        "output" | "data" => " (the null data model has no data)",
        _ => "",
    };
    ImportError::new(pos, format!("\"{key}\" in {place} is not supported{hint}"))
}

fn string<'a>(json: &'a Json, what: &str) -> Result<&'a str, ImportError> {
    json.as_str()
        .ok_or_else(|| ImportError::new(json.pos, format!("{what} is {}, not a string", json.kind())))
}

/// A whole number of milliseconds.
fn millis(json: &Json, what: &str) -> Result<Duration, ImportError> {
    match &json.value {
        Value::Number(n) => n
            .parse::<u64>()
            .map(Duration::from_millis)
            .map_err(|_| ImportError::new(json.pos, format!("{what}: `{n}` is not a whole number of milliseconds"))),
        _ => Err(ImportError::new(
            json.pos,
            format!("{what} is {}, not a number of milliseconds", json.kind()),
        )),
    }
}

/// The child of one of `candidates` whose key is `key`, as a named target.
fn child_named(nodes: &[Info], candidates: &[usize], key: &Json, what: &str) -> Result<Named, ImportError> {
    let key_text = string(key, what)?;
    match candidates.iter().find(|&&c| nodes[c].key == key_text) {
        Some(&c) => Ok(Named {
            name: nodes[c].name.name.clone(),
            pos: key.pos,
        }),
        None => Err(ImportError::new(
            key.pos,
            format!(
                "{what}: no state \"{key_text}\"{}",
                super::suggest(key_text, candidates.iter().map(|&c| nodes[c].key.as_str()))
            ),
        )),
    }
}

fn declared_events(events: &Json) -> Result<Vec<EventDecl>, ImportError> {
    let Some(members) = events.members() else {
        return Err(ImportError::new(
            events.pos,
            format!("\"meta.events\" is an object of events, not {}", events.kind()),
        ));
    };
    let mut out = Vec::new();
    for (name, pos, fields) in members {
        let Some(list) = fields.members() else {
            return Err(ImportError::new(
                fields.pos,
                format!(
                    "the fields of event \"{name}\" are an object of field types, not {}",
                    fields.kind()
                ),
            ));
        };
        let mut typed = Vec::new();
        for (field, field_pos, ty) in list {
            typed.push((
                identifier(field, "field", *field_pos)?,
                type_text(
                    string(ty, &format!("the type of field \"{field}\""))?,
                    "field type",
                    ty.pos,
                )?,
            ));
        }
        out.push((
            Named {
                name: name.clone(),
                pos: *pos,
            },
            typed,
        ));
    }
    Ok(out)
}

struct Reader<'a, 'b> {
    nodes: &'a [Info<'b>],
}

impl Reader<'_, '_> {
    fn is_proper_descendant(&self, mut s: usize, of: usize) -> bool {
        while let Some(p) = self.nodes[s].parent {
            if p == of {
                return true;
            }
            s = p;
        }
        false
    }

    /// Resolves an XState target from state `source`: `#id`, `.child.path` or `sibling.path`.
    fn target(&self, source: usize, target: &Json) -> Result<usize, ImportError> {
        let text = string(target, "a target")?;
        let fail = |why: String| ImportError::new(target.pos, format!("unknown target \"{text}\": {why}"));
        if let Some(id) = text.strip_prefix('#') {
            return (0..self.nodes.len()).find(|&i| self.nodes[i].id == id).ok_or_else(|| {
                fail(format!(
                    "no state has the id \"{id}\"{}",
                    super::suggest(id, self.nodes.iter().map(|n| n.id.as_str()))
                ))
            });
        }
        let (mut at, path) = match text.strip_prefix('.') {
            Some(path) => (Some(source), path),
            None => (self.nodes[source].parent, text),
        };
        for key in path.split('.') {
            let candidates: Vec<usize> = match at {
                Some(p) => self.nodes[p].children.clone(),
                None => (0..self.nodes.len())
                    .filter(|&n| self.nodes[n].parent.is_none())
                    .collect(),
            };
            match candidates.iter().find(|&&c| self.nodes[c].key == key) {
                Some(&c) => at = Some(c),
                None => {
                    return Err(fail(format!(
                        "no state \"{key}\" there{}",
                        super::suggest(key, candidates.iter().map(|&c| self.nodes[c].key.as_str()))
                    )))
                }
            }
        }
        at.ok_or_else(|| fail("an empty path".into()))
    }

    fn node(&self, i: usize) -> Result<Node, ImportError> {
        let info = &self.nodes[i];
        let json = info.json;
        let place = format!("state \"{}\"", info.key);
        let kind = match json.get("type") {
            None => Kind::State,
            Some(t) => match string(t, &format!("the \"type\" of {place}"))? {
                "atomic" | "compound" => Kind::State,
                "parallel" => Kind::Parallel,
                "final" => Kind::Final { failure: false },
                "history" => Kind::History {
                    deep: match json.get("history") {
                        None => false,
                        Some(h) => match string(h, "\"history\"")? {
                            "shallow" => false,
                            "deep" => true,
                            other => {
                                return Err(ImportError::new(
                                    h.pos,
                                    format!("\"history\": \"{other}\" is neither \"shallow\" nor \"deep\""),
                                ))
                            }
                        },
                    },
                },
                other => {
                    return Err(ImportError::new(
                        t.pos,
                        format!("the \"type\" of {place} is \"{other}\": atomic, compound, parallel, final or history"),
                    ))
                }
            },
        };
        let element = match kind {
            Kind::State => "state",
            Kind::Parallel => "parallel",
            Kind::Final { .. } => "final",
            Kind::History { .. } => "history",
        };
        let mut node = Node::new(info.name.clone(), element, kind);
        let meta = json.get("meta");
        let history = matches!(kind, Kind::History { .. });
        let fin = matches!(kind, Kind::Final { .. });
        for (key, pos, _) in json.members().unwrap_or_default() {
            let allowed = match key.as_str() {
                "id" | "type" | "meta" | "description" | "tags" => true,
                "history" | "target" => history,
                "entry" | "exit" => !history,
                "states" | "initial" | "on" | "always" | "after" | "onDone" | "invoke" => !history && !fin,
                _ => false,
            };
            if !allowed {
                return Err(unknown_key(key, *pos, &format!("{element} \"{}\"", info.key)));
            }
        }
        if history {
            if let Some(target) = json.get("target") {
                let mut tr = Tr::new(target.pos, "\"target\"".into(), Trig::Always);
                tr.targets = self.names(i, target)?;
                node.transitions.push(tr);
            }
            return Ok(node);
        }
        if let Some(m) = meta {
            // Other keys of `meta` are the application's own.
            if m.get("failure").is_some_and(|f| f.value == Value::Bool(true)) {
                if !fin {
                    return Err(ImportError::new(
                        m.pos,
                        format!("\"meta.failure\" on {place}, which is not final"),
                    ));
                }
                node.kind = Kind::Final { failure: true };
            }
            if let Some(c) = m.get("compensate") {
                node.compensate = Some(Named {
                    name: identifier(string(c, "\"meta.compensate\"")?, "compensation", c.pos)?,
                    pos: c.pos,
                });
            }
        }
        if let Some(initial) = json.get("initial") {
            node.initial = vec![child_named(
                self.nodes,
                &info.children,
                initial,
                &format!("the \"initial\" of {place}"),
            )?];
        }
        // The exact default entry, as the export keeps it beside XState's `initial` (the child
        // holding the first target): several or deeper targets, and actions.
        if let Some(exact) = meta.and_then(|m| m.get("initial")) {
            let Some(members) = exact.members() else {
                return Err(ImportError::new(
                    exact.pos,
                    format!("\"meta.initial\" of {place} is {}, not an object", exact.kind()),
                ));
            };
            let target = exact.get("target").ok_or_else(|| {
                ImportError::new(exact.pos, format!("\"meta.initial\" of {place} needs a \"target\""))
            })?;
            node.initial = self.names(i, target)?;
            for (key, pos, value) in members {
                match key.as_str() {
                    "target" => {}
                    "actions" => node.initial_actions = actions(value)?,
                    other => return Err(unknown_key(other, *pos, "\"meta.initial\"")),
                }
            }
        }
        if let Some(entry) = json.get("entry") {
            node.entry = actions(entry)?;
        }
        if let Some(exit) = json.get("exit") {
            node.exit = actions(exit)?;
        }
        for (key, _, value) in json.members().unwrap_or_default() {
            match key.as_str() {
                "on" => {
                    let Some(events) = value.members() else {
                        return Err(ImportError::new(
                            value.pos,
                            format!("\"on\" of {place} is {}, not an object", value.kind()),
                        ));
                    };
                    for (event, event_pos, transitions) in events {
                        let trigger = self.event_trigger(i, event, *event_pos)?;
                        self.transitions(i, transitions, &format!("on.{event}"), &trigger, &mut node)?;
                    }
                }
                "always" => self.transitions(i, value, "always", &Trig::Always, &mut node)?,
                "onDone" => self.transitions(i, value, "onDone", &Trig::Done, &mut node)?,
                "after" => {
                    let Some(delays) = value.members() else {
                        return Err(ImportError::new(
                            value.pos,
                            format!("\"after\" of {place} is {}, not an object", value.kind()),
                        ));
                    };
                    for (delay, delay_pos, transitions) in delays {
                        let ms: u64 = delay.parse().map_err(|_| {
                            ImportError::new(
                                *delay_pos,
                                format!("\"after\": \"{delay}\" is not a number of milliseconds (named delays are not supported)"),
                            )
                        })?;
                        let d = Duration::from_millis(ms);
                        // The timer's event is `{STATE}After{TEXT}`; `meta.timers` keeps the text
                        // the block wrote (`48h`, not `2d`).
                        let prefix = format!("{}After", node.name.name);
                        let text = meta
                            .and_then(|m| m.get("timers"))
                            .and_then(|t| t.get(delay))
                            .and_then(Json::as_str)
                            .and_then(|name| name.strip_prefix(&prefix))
                            .filter(|text| crate::parse_duration(text) == Some(d))
                            .map_or_else(|| format_duration(d), str::to_string);
                        let trigger = Trig::After(d, text);
                        self.transitions(i, transitions, &format!("after.{delay}"), &trigger, &mut node)?;
                    }
                }
                "invoke" => {
                    let invoke = match &value.value {
                        Value::Array(list) => match list.as_slice() {
                            [one] => one,
                            _ => {
                                return Err(ImportError::new(
                                    value.pos,
                                    format!("{place} invokes {} actors; a state invokes one activity", list.len()),
                                ))
                            }
                        },
                        _ => value,
                    };
                    node.invoke = Some(self.invoke(i, invoke, meta, &mut node)?);
                }
                _ => {}
            }
        }
        // XState tries an event's own key before `*`; in a block, document order decides.
        let (any, mut transitions): (Vec<Tr>, Vec<Tr>) = std::mem::take(&mut node.transitions)
            .into_iter()
            .partition(|t| t.trigger == Trig::Any);
        transitions.extend(any);
        node.transitions = transitions;
        for &c in &info.children {
            node.children.push(self.node(c)?);
        }
        Ok(node)
    }

    fn event_trigger(&self, i: usize, event: &str, pos: Position) -> Result<Trig, ImportError> {
        if event == "*" {
            return Ok(Trig::Any);
        }
        let done = event
            .strip_prefix("xstate.done.state.")
            .or_else(|| event.strip_prefix("done.state."));
        if let Some(id) = done {
            if id == self.nodes[i].id || id == self.nodes[i].name.name {
                return Ok(Trig::Done);
            }
            // The export's ids are the states' names; a hand-written id may be either.
            let of = (self.nodes.iter().find(|n| n.id == id))
                .or_else(|| self.nodes.iter().find(|n| n.name.name == id))
                .ok_or_else(|| {
                    ImportError::new(
                        pos,
                        format!(
                            "\"on\": \"{event}\": no state has the id \"{id}\"{}",
                            super::suggest(id, self.nodes.iter().map(|n| n.id.as_str()))
                        ),
                    )
                })?;
            return Ok(Trig::DoneOf(Named {
                name: of.name.name.clone(),
                pos,
            }));
        }
        if event.contains('*')
            || event.starts_with("xstate.")
            || event.starts_with("done.")
            || event.starts_with("error.")
        {
            return Err(ImportError::new(
                pos,
                format!("\"on\": \"{event}\" is not supported: an event is a name, or `*` for any"),
            ));
        }
        Ok(Trig::Events(vec![event.to_string()]))
    }

    /// A target or an array of them: each state's index and its name where the target is.
    fn targets(&self, source: usize, target: &Json) -> Result<Vec<(usize, Named)>, ImportError> {
        let list: Vec<&Json> = match &target.value {
            Value::Array(items) => items.iter().collect(),
            _ => vec![target],
        };
        list.into_iter()
            .map(|t| {
                let s = self.target(source, t)?;
                let named = Named {
                    name: self.nodes[s].name.name.clone(),
                    pos: t.pos,
                };
                Ok((s, named))
            })
            .collect()
    }

    /// The names of the states a target (or an array of them) resolves to.
    fn names(&self, source: usize, target: &Json) -> Result<Vec<Named>, ImportError> {
        Ok(self.targets(source, target)?.into_iter().map(|(_, n)| n).collect())
    }

    /// A transition's `guard`: a name, or the export's `workflow.in` (the `in(S)` conditions
    /// that JSON cannot write as XState's `stateIn`, with the guard's name in `params.guard`).
    fn guard(&self, source: usize, json: &Json, tr: &mut Tr) -> Result<(), ImportError> {
        if json.get("type").and_then(Json::as_str) != Some("workflow.in") {
            tr.guard = Some(guard(json)?);
            return Ok(());
        }
        let Some(params) = json.get("params").and_then(Json::members) else {
            return Err(ImportError::new(
                json.pos,
                "the guard \"workflow.in\" needs \"params\": {\"states\": [..], \"not\": [..], \"guard\": NAME}".into(),
            ));
        };
        for (key, pos, value) in params {
            match key.as_str() {
                "states" => tr.in_states = self.names(source, value)?,
                "not" => tr.not_in_states = self.names(source, value)?,
                "guard" => tr.guard = Some(identifier(string(value, "\"params.guard\"")?, "guard", value.pos)?),
                other => return Err(unknown_key(other, *pos, "the params of the guard \"workflow.in\"")),
            }
        }
        Ok(())
    }

    /// A transition, or an array of them, under `what` (`on.Flip`, `always`...).
    fn transitions(
        &self,
        source: usize,
        json: &Json,
        what: &str,
        trigger: &Trig,
        node: &mut Node,
    ) -> Result<(), ImportError> {
        let items: Vec<&Json> = match &json.value {
            Value::Array(items) => items.iter().collect(),
            _ => vec![json],
        };
        for t in items {
            let mut tr = Tr::new(t.pos, format!("\"{what}\""), trigger.clone());
            let mut reenter = false;
            let mut target_json = None;
            match &t.value {
                Value::String(_) => target_json = Some(t),
                Value::Object(members) => {
                    for (key, pos, value) in members {
                        match key.as_str() {
                            "target" => target_json = Some(value),
                            "guard" => self.guard(source, value, &mut tr)?,
                            "actions" => tr.actions = actions(value)?,
                            "reenter" => reenter = value.value == Value::Bool(true),
                            "description" | "meta" => {}
                            other => return Err(unknown_key(other, *pos, &format!("a transition of \"{what}\""))),
                        }
                    }
                }
                _ => {
                    return Err(ImportError::new(
                        t.pos,
                        format!(
                            "a transition of \"{what}\" is {}: a target, an object or an array of them",
                            t.kind()
                        ),
                    ))
                }
            }
            let mut resolved = Vec::new();
            if let Some(target) = target_json {
                for (index, named) in self.targets(source, target)? {
                    resolved.push(index);
                    tr.targets.push(named);
                }
            }
            if !reenter && !resolved.is_empty() {
                if resolved.contains(&source) {
                    let info = self.nodes[source].json;
                    let plain = ["entry", "exit", "invoke", "after", "states"]
                        .iter()
                        .all(|k| info.get(k).is_none());
                    if !plain {
                        return Err(ImportError::new(
                            t.pos,
                            format!("a transition of \"{what}\" targets its own state without \"reenter\": true; XState then stays in the state, which a workflow block cannot say (add \"reenter\": true, or drop the target)"),
                        ));
                    }
                } else {
                    tr.internal = resolved.iter().all(|&x| self.is_proper_descendant(x, source));
                }
            }
            node.transitions.push(tr);
        }
        Ok(())
    }

    fn invoke(&self, i: usize, invoke: &Json, meta: Option<&Json>, node: &mut Node) -> Result<Invoke, ImportError> {
        let Some(members) = invoke.members() else {
            return Err(ImportError::new(
                invoke.pos,
                format!("\"invoke\" is {}, not an object", invoke.kind()),
            ));
        };
        let src = invoke
            .get("src")
            .ok_or_else(|| ImportError::new(invoke.pos, "\"invoke\" needs a \"src\" naming the activity".into()))?;
        let activity = identifier(string(src, "\"invoke.src\"")?, "activity", src.pos)?;
        for (key, pos, value) in members {
            match key.as_str() {
                "id" | "src" | "description" | "meta" => {}
                "onDone" => self.transitions(i, value, "invoke.onDone", &Trig::InvokeDone, node)?,
                "onError" => self.transitions(i, value, "invoke.onError", &Trig::InvokeError, node)?,
                other => return Err(unknown_key(other, *pos, "\"invoke\"")),
            }
        }
        let mut result = Invoke {
            activity,
            output: "()".into(),
            attempts: 1,
            backoff: None,
            timeout: None,
            resource: None,
            expected: None,
        };
        if let Some(a) = meta.and_then(|m| m.get("activity")) {
            for (key, pos, value) in a.members().unwrap_or_default() {
                match key.as_str() {
                    "output" => {
                        result.output = type_text(string(value, "\"meta.activity.output\"")?, "output type", value.pos)?
                    }
                    "attempts" => {
                        result.attempts = match &value.value {
                            Value::Number(n) => n.parse::<u32>().ok().filter(|&n| n >= 1),
                            _ => None,
                        }
                        .ok_or_else(|| {
                            ImportError::new(
                                value.pos,
                                "\"meta.activity.attempts\" is a whole number, 1 or more".into(),
                            )
                        })?
                    }
                    "backoff" => match &value.value {
                        Value::Array(pair) if pair.len() == 2 => {
                            result.backoff = Some((
                                millis(&pair[0], "\"meta.activity.backoff\"")?,
                                millis(&pair[1], "\"meta.activity.backoff\"")?,
                            ))
                        }
                        _ => {
                            return Err(ImportError::new(
                                value.pos,
                                "\"meta.activity.backoff\" is [MIN, MAX] in milliseconds".into(),
                            ))
                        }
                    },
                    "timeout" => result.timeout = Some(millis(value, "\"meta.activity.timeout\"")?),
                    "expected" => result.expected = Some(millis(value, "\"meta.activity.expected\"")?),
                    "resource" => {
                        result.resource = Some(identifier(
                            string(value, "\"meta.activity.resource\"")?,
                            "resource",
                            value.pos,
                        )?)
                    }
                    other => return Err(unknown_key(other, *pos, "\"meta.activity\"")),
                }
            }
        }
        Ok(result)
    }
}

fn guard(json: &Json) -> Result<String, ImportError> {
    let name = match &json.value {
        Value::String(s) => s.as_str(),
        Value::Object(_) if json.get("params").is_none() => string(
            json.get("type")
                .ok_or_else(|| ImportError::new(json.pos, "a guard object needs a \"type\"".into()))?,
            "a guard's \"type\"",
        )?,
        _ => {
            return Err(ImportError::new(
                json.pos,
                "a guard is a name (or {\"type\": NAME}); guards with params are not supported".into(),
            ))
        }
    };
    if matches!(
        name,
        "stateIn" | "xstate.stateIn" | "and" | "or" | "not" | "xstate.and" | "xstate.or" | "xstate.not"
    ) {
        return Err(ImportError::new(
            json.pos,
            format!("the guard \"{name}\" is one of XState's functions, which JSON cannot reference: a guard is a name the application provides, and state conditions are {{\"type\": \"workflow.in\", \"params\": {{\"states\": [\"#id\"], \"not\": [\"#id\"], \"guard\": NAME}}}} as the export writes them"),
        ));
    }
    identifier(name, "guard", json.pos)
}

fn actions(json: &Json) -> Result<Vec<Act>, ImportError> {
    let items: Vec<&Json> = match &json.value {
        Value::Array(items) => items.iter().collect(),
        _ => vec![json],
    };
    items.into_iter().map(action).collect()
}

fn action(json: &Json) -> Result<Act, ImportError> {
    let named = |name: &str, pos: Position, what: &str| -> Result<Named, ImportError> {
        Ok(Named {
            name: identifier(name, what, pos)?,
            pos,
        })
    };
    match &json.value {
        Value::String(name) => Ok(Act::Call(named(name, json.pos, "action")?)),
        Value::Object(_) => {
            let ty = string(
                json.get("type")
                    .ok_or_else(|| ImportError::new(json.pos, "an action object needs a \"type\"".into()))?,
                "an action's \"type\"",
            )?;
            let params = json.get("params");
            let param = |key: &str| -> Result<&Json, ImportError> {
                params
                    .and_then(|p| p.get(key))
                    .ok_or_else(|| ImportError::new(json.pos, format!("the action \"{ty}\" needs \"params.{key}\"")))
            };
            match ty {
                "workflow.raise" => {
                    let e = param("event")?;
                    Ok(Act::Raise(named(string(e, "\"params.event\"")?, e.pos, "event")?))
                }
                "workflow.send" => {
                    let e = param("event")?;
                    let event = named(string(e, "\"params.event\"")?, e.pos, "event")?;
                    let delay = match params.and_then(|p| p.get("delay")) {
                        None => Duration::ZERO,
                        Some(d) => millis(d, "\"params.delay\"")?,
                    };
                    let id = match params.and_then(|p| p.get("id")) {
                        None => event.name.clone(),
                        Some(id) => identifier(string(id, "\"params.id\"")?, "send id", id.pos)?,
                    };
                    Ok(Act::Send { event, delay, id })
                }
                "workflow.cancel" => {
                    let id = param("id")?;
                    Ok(Act::Cancel(identifier(
                        string(id, "\"params.id\"")?,
                        "send id",
                        id.pos,
                    )?))
                }
                _ if params.is_some() => Err(ImportError::new(
                    json.pos,
                    format!("the action \"{ty}\" has params, which a workflow's actions do not take"),
                )),
                _ => Ok(Act::Call(named(ty, json.pos, "action")?)),
            }
        }
        _ => Err(ImportError::new(
            json.pos,
            format!("an action is a name or an object, not {}", json.kind()),
        )),
    }
}
