//! A direct transcription of the W3C SCXML algorithm (Appendix D) over the
//! translator's model, used only in tests: it checks the parse, the closed-world
//! event expansion and the driver against the corpus independently of the
//! macro, so a failure of a generated machine can be put down to the machine.

use std::collections::{BTreeMap, VecDeque};

use crate::translate::{expand_descriptors, Action, Chart, Kind, Node, Trigger};
use crate::Sched;

/// A transition waiting for ids to be resolved: source, targets, event, internal, actions.
type Pending = (usize, Vec<String>, Option<String>, bool, Vec<Action>);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum K {
    Root,
    State,
    Parallel,
    Final,
    History { deep: bool },
}

struct T {
    source: usize,
    trigger: Trigger,
    targets: Vec<usize>,
    internal: bool,
    actions: Vec<Action>,
}

struct S {
    id: String,
    kind: K,
    parent: Option<usize>,
    /// Child states (no histories), document order.
    children: Vec<usize>,
    histories: Vec<usize>,
    initial: Option<usize>,
    transitions: Vec<usize>,
    entry: Vec<Action>,
    exit: Vec<Action>,
}

/// A reference interpreter instance.
pub struct Reference {
    s: Vec<S>,
    t: Vec<T>,
    active: Vec<bool>,
    history: BTreeMap<usize, Vec<usize>>,
    internal: VecDeque<String>,
    scheduled: Vec<Sched<String>>,
    world: Vec<String>,
}

impl Reference {
    /// Builds the instance (nothing entered yet).
    pub fn new(chart: &Chart, world: Vec<String>) -> Self {
        let mut r = Reference {
            s: vec![S {
                id: "<scxml>".into(),
                kind: K::Root,
                parent: None,
                children: vec![],
                histories: vec![],
                initial: None,
                transitions: vec![],
                entry: vec![],
                exit: vec![],
            }],
            t: vec![],
            active: vec![],
            history: BTreeMap::new(),
            internal: VecDeque::new(),
            scheduled: vec![],
            world,
        };
        let mut pending: Vec<Pending> = vec![];
        let mut hist_default: Vec<(usize, Vec<String>)> = vec![];
        let mut initials: Vec<(usize, String)> = vec![(0, chart.initial.clone())];
        for n in &chart.states {
            let i = r.add(n, 0, &mut pending, &mut hist_default, &mut initials);
            r.s[0].children.push(i);
        }
        let by_id: BTreeMap<String, usize> = r.s.iter().enumerate().map(|(i, s)| (s.id.clone(), i)).collect();
        for (state, init) in initials {
            r.s[state].initial = Some(by_id[&init]);
        }
        for (h, targets) in hist_default {
            let ti = r.t.len();
            r.t.push(T {
                source: h,
                trigger: Trigger::Eventless,
                targets: targets.iter().map(|t| by_id[t]).collect(),
                internal: false,
                actions: vec![],
            });
            r.s[h].transitions.push(ti);
        }
        for (source, targets, event, internal, actions) in pending {
            let ti = r.t.len();
            let trigger = expand_descriptors(event.as_deref(), &r.world);
            r.t.push(T {
                source,
                trigger,
                targets: targets.iter().map(|t| by_id[t]).collect(),
                internal,
                actions,
            });
            r.s[source].transitions.push(ti);
        }
        r.active = vec![false; r.s.len()];
        r
    }

    fn add(
        &mut self,
        n: &Node,
        parent: usize,
        pending: &mut Vec<Pending>,
        hist_default: &mut Vec<(usize, Vec<String>)>,
        initials: &mut Vec<(usize, String)>,
    ) -> usize {
        let i = self.s.len();
        self.s.push(S {
            id: n.id.clone(),
            kind: match n.kind {
                Kind::State => K::State,
                Kind::Parallel => K::Parallel,
                Kind::Final => K::Final,
            },
            parent: Some(parent),
            children: vec![],
            histories: vec![],
            initial: None,
            transitions: vec![],
            entry: n.entry.clone(),
            exit: n.exit.clone(),
        });
        for h in &n.histories {
            let hi = self.s.len();
            self.s.push(S {
                id: h.id.clone(),
                kind: K::History { deep: h.deep },
                parent: Some(i),
                children: vec![],
                histories: vec![],
                initial: None,
                transitions: vec![],
                entry: vec![],
                exit: vec![],
            });
            self.s[i].histories.push(hi);
            hist_default.push((hi, h.default.clone()));
        }
        if let Some(init) = &n.initial {
            if n.kind == Kind::State && !n.children.is_empty() {
                initials.push((i, init.clone()));
            }
        }
        for t in &n.transitions {
            pending.push((i, t.targets.clone(), t.event.clone(), t.internal, t.actions.clone()));
        }
        for c in &n.children {
            let ci = self.add(c, i, pending, hist_default, initials);
            self.s[i].children.push(ci);
        }
        i
    }

    fn is_atomic(&self, s: usize) -> bool {
        matches!(self.s[s].kind, K::State | K::Final) && self.s[s].children.is_empty()
    }
    fn is_compound(&self, s: usize) -> bool {
        self.s[s].kind == K::State && !self.s[s].children.is_empty()
    }
    fn is_descendant(&self, s: usize, anc: usize) -> bool {
        let mut p = self.s[s].parent;
        while let Some(x) = p {
            if x == anc {
                return true;
            }
            p = self.s[x].parent;
        }
        false
    }
    /// Proper ancestors of `s` up to (excluding) `stop`, innermost first.
    fn ancestors(&self, s: usize, stop: Option<usize>) -> Vec<usize> {
        let mut out = vec![];
        let mut p = self.s[s].parent;
        while let Some(x) = p {
            if Some(x) == stop {
                break;
            }
            out.push(x);
            p = self.s[x].parent;
        }
        out
    }

    fn effective_targets(&self, t: usize) -> Vec<usize> {
        let mut out: Vec<usize> = vec![];
        for &s in &self.t[t].targets {
            if let K::History { .. } = self.s[s].kind {
                let v = match self.history.get(&s) {
                    Some(v) => v.clone(),
                    None => self.effective_targets(self.s[s].transitions[0]),
                };
                for x in v {
                    if !out.contains(&x) {
                        out.push(x);
                    }
                }
            } else if !out.contains(&s) {
                out.push(s);
            }
        }
        out
    }

    fn domain(&self, t: usize) -> Option<usize> {
        let targets = self.effective_targets(t);
        if targets.is_empty() {
            return None;
        }
        let src = self.t[t].source;
        if self.t[t].internal && self.is_compound(src) && targets.iter().all(|&s| self.is_descendant(s, src)) {
            return Some(src);
        }
        let mut list = vec![src];
        list.extend(targets);
        self.ancestors(list[0], None)
            .into_iter()
            .filter(|&a| self.is_compound(a) || self.s[a].kind == K::Root)
            .find(|&a| list[1..].iter().all(|&s| self.is_descendant(s, a)))
    }

    fn exit_set(&self, ts: &[usize]) -> Vec<usize> {
        let mut out = vec![];
        for &t in ts {
            if self.t[t].targets.is_empty() {
                continue;
            }
            let Some(d) = self.domain(t) else { continue };
            for s in 0..self.s.len() {
                if self.active[s] && self.is_descendant(s, d) && !out.contains(&s) {
                    out.push(s);
                }
            }
        }
        out
    }

    fn select(&self, event: Option<&str>) -> Vec<usize> {
        let mut enabled: Vec<usize> = vec![];
        for state in (0..self.s.len()).filter(|&s| self.active[s] && self.is_atomic(s)) {
            let mut chain = vec![state];
            chain.extend(self.ancestors(state, None));
            'outer: for s in chain {
                for &t in &self.s[s].transitions {
                    let ok = match (&self.t[t].trigger, event) {
                        (Trigger::Eventless, None) => true,
                        (Trigger::Any, Some(_)) => true,
                        (Trigger::Events(v), Some(e)) => v.iter().any(|x| x == e),
                        _ => false,
                    };
                    if ok {
                        if !enabled.contains(&t) {
                            enabled.push(t);
                        }
                        break 'outer;
                    }
                }
            }
        }
        // removeConflictingTransitions
        let mut filtered: Vec<usize> = vec![];
        for t1 in enabled {
            let mut preempted = false;
            let mut remove = vec![];
            let e1 = self.exit_set(&[t1]);
            for &t2 in &filtered {
                let e2 = self.exit_set(&[t2]);
                if e1.iter().any(|s| e2.contains(s)) {
                    if self.is_descendant(self.t[t1].source, self.t[t2].source) {
                        remove.push(t2);
                    } else {
                        preempted = true;
                        break;
                    }
                }
            }
            if !preempted {
                filtered.retain(|t| !remove.contains(t));
                filtered.push(t1);
            }
        }
        filtered
    }

    fn run(&mut self, actions: &[Action]) {
        for a in actions {
            match a {
                Action::Raise(e) => self.internal.push_back(e.clone()),
                Action::Send { event, delay_ms } => self.scheduled.push(Sched::Send {
                    id: String::new(),
                    event: event.clone(),
                    delay_ms: delay_ms.unwrap_or(0),
                }),
            }
        }
    }

    fn add_descendants(&self, s: usize, to_enter: &mut Vec<usize>) {
        if let K::History { .. } = self.s[s].kind {
            let parent = self.s[s].parent.unwrap();
            let v = match self.history.get(&s) {
                Some(v) => v.clone(),
                None => self.t[self.s[s].transitions[0]].targets.clone(),
            };
            for &x in &v {
                self.add_descendants(x, to_enter);
            }
            for &x in &v {
                self.add_ancestors(x, Some(parent), to_enter);
            }
            return;
        }
        if !to_enter.contains(&s) {
            to_enter.push(s);
        }
        if self.is_compound(s) {
            let init = self.s[s].initial.unwrap();
            self.add_descendants(init, to_enter);
            self.add_ancestors(init, Some(s), to_enter);
        } else if self.s[s].kind == K::Parallel {
            for &c in &self.s[s].children {
                if !to_enter.iter().any(|&x| x == c || self.is_descendant(x, c)) {
                    self.add_descendants(c, to_enter);
                }
            }
        }
    }

    fn add_ancestors(&self, s: usize, stop: Option<usize>, to_enter: &mut Vec<usize>) {
        for a in self.ancestors(s, stop) {
            if !to_enter.contains(&a) {
                to_enter.push(a);
            }
            if self.s[a].kind == K::Parallel {
                for &c in &self.s[a].children {
                    if !to_enter.iter().any(|&x| x == c || self.is_descendant(x, c)) {
                        self.add_descendants(c, to_enter);
                    }
                }
            }
        }
    }

    fn microstep(&mut self, ts: &[usize]) {
        let mut exit = self.exit_set(ts);
        exit.sort_unstable_by(|a, b| b.cmp(a));
        for &s in &exit {
            for &h in &self.s[s].histories.clone() {
                let deep = matches!(self.s[h].kind, K::History { deep: true });
                let v: Vec<usize> = (0..self.s.len())
                    .filter(|&x| self.active[x])
                    .filter(|&x| {
                        if deep {
                            self.is_atomic(x) && self.is_descendant(x, s)
                        } else {
                            self.s[x].parent == Some(s)
                        }
                    })
                    .collect();
                self.history.insert(h, v);
            }
        }
        for &s in &exit {
            let a = self.s[s].exit.clone();
            self.run(&a);
            self.active[s] = false;
        }
        for &t in ts {
            let a = self.t[t].actions.clone();
            self.run(&a);
        }
        let mut to_enter = vec![];
        for &t in ts {
            for &s in &self.t[t].targets {
                self.add_descendants(s, &mut to_enter);
            }
            let d = self.domain(t);
            for s in self.effective_targets(t) {
                self.add_ancestors(s, d, &mut to_enter);
            }
        }
        to_enter.sort_unstable();
        for s in to_enter {
            if self.s[s].kind == K::Root || self.active[s] {
                continue;
            }
            self.active[s] = true;
            let a = self.s[s].entry.clone();
            self.run(&a);
        }
    }

    fn macrostep(&mut self) {
        loop {
            let mut ts = self.select(None);
            if ts.is_empty() {
                let Some(e) = self.internal.pop_front() else { return };
                ts = self.select(Some(&e));
            }
            if !ts.is_empty() {
                self.microstep(&ts);
            }
        }
    }
}

impl crate::Sut for Reference {
    type Event = String;
    fn start(&mut self) {
        self.active[0] = true;
        let mut to_enter = vec![];
        let init = self.s[0].initial.unwrap();
        self.add_descendants(init, &mut to_enter);
        self.add_ancestors(init, Some(0), &mut to_enter);
        to_enter.sort_unstable();
        for s in to_enter {
            self.active[s] = true;
            let a = self.s[s].entry.clone();
            self.run(&a);
        }
        self.macrostep();
    }
    fn handle(&mut self, event: &String) {
        let ts = self.select(Some(event));
        if !ts.is_empty() {
            self.microstep(&ts);
        }
        self.macrostep();
    }
    fn active(&self) -> Vec<String> {
        (0..self.s.len())
            .filter(|&s| self.active[s] && self.is_atomic(s))
            .map(|s| self.s[s].id.clone())
            .collect()
    }
    fn take_scheduled(&mut self) -> Vec<Sched<String>> {
        std::mem::take(&mut self.scheduled)
    }
    fn event(name: &str) -> Option<String> {
        Some(name.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::Reference;
    use crate::translate::{closed_world, parse_chart, parse_script, translate};

    fn leak(v: &[String]) -> &'static [&'static str] {
        Box::leak(
            v.iter()
                .map(|s| &*Box::leak(s.clone().into_boxed_str()))
                .collect::<Vec<_>>()
                .into_boxed_slice(),
        )
    }

    /// Every corpus test translates, and the reference interpreter, fed the
    /// translator's model and closed world through the same driver as the
    /// generated machines, meets every expectation.
    #[test]
    fn reference_interpreter_passes_the_corpus() {
        let dir = match std::env::var_os("WORKFLOW_CONFORMANCE_DIR") {
            Some(d) if !d.is_empty() => std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(d),
            _ => std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/conformance/scion"),
        };
        let Ok(index) = std::fs::read_to_string(dir.join("INDEX.tsv")) else {
            eprintln!("corpus not found at {}: skipped", dir.display());
            return;
        };
        let mut failures = vec![];
        let mut count = 0;
        for line in index.lines().skip(1) {
            let mut cols = line.split('\t');
            let (group, name) = (cols.next().unwrap(), cols.next().unwrap());
            count += 1;
            let base = dir.join(group).join(name);
            let chart = parse_chart(&std::fs::read_to_string(base.with_extension("scxml")).unwrap()).unwrap();
            let script = parse_script(&std::fs::read_to_string(base.with_extension("json")).unwrap()).unwrap();
            if let Err(e) = translate(group, name, &chart, &script) {
                failures.push(format!("{group}/{name}: untranslatable: {e}"));
                continue;
            }
            let steps: Vec<crate::ScriptStep> = script
                .steps
                .iter()
                .map(|s| crate::ScriptStep {
                    after: s.after,
                    event: leak(std::slice::from_ref(&s.event))[0],
                    expected: leak(&s.expected),
                })
                .collect();
            let static_script = crate::Script {
                initial: leak(&script.initial),
                steps: Box::leak(steps.into_boxed_slice()),
            };
            let r = Reference::new(&chart, closed_world(&chart, &script));
            if let Err(e) = crate::drive(r, &static_script) {
                failures.push(format!("{group}/{name}: {e}"));
            }
        }
        assert_eq!(count, 86);
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }
}
