//! The static description of a workflow: its states, events and transitions.
//!
//! Every `workflow!` block produces one [`Graph`] (reachable through
//! [`Machine::graph`](crate::Machine::graph)); diagrams, introspection and the
//! engine read it. Indices into [`Graph::states`] identify states.

use std::time::Duration;

use crate::activity::RetryPolicy;

/// A workflow's states, events and transitions, as declared in its `workflow!` block.
///
/// The lifetime lets the macro build a graph from borrowed data at compile time;
/// generated code always exposes a `Graph<'static>`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Graph<'a> {
    /// The workflow's name.
    pub name: &'a str,
    /// Index in [`states`](Self::states) of the initial state.
    pub initial: usize,
    /// Every state in document order: a state comes before its children,
    /// and its descendants are exactly the states `index + 1 .. end`.
    pub states: &'a [StateInfo<'a>],
    /// Every variant of the event enum, in order: the declared events, then
    /// each activity's done and failed events, then the timer events.
    pub events: &'a [EventInfo<'a>],
    /// Every transition, grouped by source state in document order, in
    /// declaration order within a state.
    pub transitions: &'a [TransitionInfo<'a>],
}

/// One state of a [`Graph`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StateInfo<'a> {
    /// The state's name.
    pub name: &'a str,
    /// Atomic, compound, parallel, final or history.
    pub kind: StateKind,
    /// The enclosing state, if the state is nested (`None` for top-level states).
    pub parent: Option<usize>,
    /// One past the index of the state's last descendant.
    pub end: usize,
    /// The state's transitions in [`Graph::transitions`].
    pub transitions: TransitionRange,
    /// Actions run, in order, when the state is entered.
    pub entry: &'a [&'a str],
    /// Actions run, in order, when the state is left.
    pub exit: &'a [&'a str],
    /// The activity the state runs while it is active.
    pub invoke: Option<InvokeInfo<'a>>,
    /// The compensation that undoes this state's step if the workflow fails later.
    pub compensate: Option<&'a str>,
}

/// A range of indices into [`Graph::transitions`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct TransitionRange {
    /// The first index.
    pub start: usize,
    /// One past the last index.
    pub end: usize,
}

impl StateInfo<'_> {
    /// Whether this is a final state (of either kind).
    pub const fn is_final(&self) -> bool {
        matches!(self.kind, StateKind::Final { .. })
    }
}

/// What kind of state a [`StateInfo`] describes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StateKind {
    /// A state without child states.
    Atomic,
    /// A state with child states, exactly one of them active; `initial` is
    /// the child (possibly a history state) entered by default.
    Compound {
        /// Index of the default child.
        initial: usize,
    },
    /// A state whose child states (regions) are all active at once.
    Parallel,
    /// A final state; `failure` is set for `final NAME (failure);`, whose
    /// reaching runs the workflow's compensations.
    Final {
        /// Whether reaching this state means the workflow failed.
        failure: bool,
    },
    /// A history pseudo-state: entering it restores what its parent had
    /// active when last left. Its one transition, if any, is the default.
    History {
        /// Deep history remembers atomic descendants, shallow the children.
        deep: bool,
        /// Its memory's index among the workflow's history states.
        slot: usize,
    },
}

/// The activity a state invokes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct InvokeInfo<'a> {
    /// The activity's name (a method of the handler trait).
    pub activity: &'a str,
    /// The activity's output type, as written in the block.
    pub output: &'a str,
    /// Retry and timeout policy.
    pub policy: RetryPolicy,
    /// The resource the activity's calls queue on (`resource payments;`): a
    /// named pool, such as "payments: 4 at a time", that the engine builder
    /// declares. The engine queues each attempt on it. `None` when the
    /// invoke names no resource.
    pub resource: Option<&'a str>,
    /// The expected service time of one attempt (`expected 200ms;`), which a
    /// shortest-job-first scheduler orders queued attempts by. Never zero
    /// when written in a `workflow!` block; `None` when not given.
    pub expected: Option<Duration>,
}

/// One variant of the event enum.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EventInfo<'a> {
    /// The variant's name.
    pub name: &'a str,
    /// The payload's fields as `(name, type)`, empty for a unit event.
    pub fields: &'a [(&'a str, &'a str)],
    /// Declared, or made by the machine.
    pub kind: EventKind<'a>,
}

/// Where an event comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind<'a> {
    /// Declared in the `events` block.
    Declared,
    /// The activity named here completed (the variant carries its output).
    Done(&'a str),
    /// The activity named here failed for good.
    Failed(&'a str),
    /// The state with this index has been active for this long.
    Timer {
        /// The state whose `after` this is.
        state: usize,
        /// The delay.
        delay: Duration,
    },
}

/// One transition of a [`Graph`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TransitionInfo<'a> {
    /// Index of the state the transition leaves.
    pub source: usize,
    /// What makes the transition fire.
    pub trigger: Trigger<'a>,
    /// The guard that must hold for it to fire: a method of the handlers.
    pub guard: Option<&'a str>,
    /// States that must be active for it to fire (`if in(Paid)`, SCXML
    /// `In('Paid')`), checked on the configuration at selection time,
    /// before [`guard`](Self::guard).
    pub in_states: &'a [usize],
    /// States that must not be active for it to fire (`if !in(Paid)`,
    /// SCXML `!In('Paid')`), checked with [`in_states`](Self::in_states).
    pub not_in_states: &'a [usize],
    /// Indices of the target states; empty for a targetless transition,
    /// which runs its actions without leaving the state.
    pub targets: &'a [usize],
    /// `=> internal TARGET`: the source is not exited when the targets are
    /// its descendants.
    pub internal: bool,
    /// Actions run, in order, between the exits and the entries.
    pub actions: &'a [&'a str],
}

/// What makes a transition fire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trigger<'a> {
    /// Any of these events (indices into [`Graph::events`]): declared ones,
    /// an activity's done or failed event, a timer.
    Events(&'a [usize]),
    /// Every event (`on _`).
    Any,
    /// No event: taken as soon as the source is active and the guard holds.
    Always,
    /// The source, a compound or parallel state, completed (`on done`).
    StateDone,
    /// The compound or parallel state with this index, not the source,
    /// completed (`on done(Payment)`, SCXML `done.state.Payment`).
    DoneOf(usize),
    /// The default entry of the source, a compound state: taken instead of
    /// entering its initial child when the block's `initial` names several
    /// states, a deeper descendant or actions (`initial A, B / act;`, SCXML
    /// `<initial><transition>`). Always the source's first transition.
    Initial,
}

impl<'a> Graph<'a> {
    /// The index of the state called `name`.
    pub fn state_index(&self, name: &str) -> Option<usize> {
        self.states.iter().position(|s| s.name == name)
    }

    /// The transitions leaving state `index`, in priority order.
    pub fn transitions_from(&self, index: usize) -> &'a [TransitionInfo<'a>] {
        let range = self.states[index].transitions;
        &self.transitions[range.start..range.end]
    }

    /// Whether the workflow has nested or parallel states (the state is then
    /// a configuration of several active states).
    pub fn is_hierarchical(&self) -> bool {
        self.states.iter().any(|s| s.parent.is_some())
    }
}

/// The compact text a `workflow!` block's graph is carried in.
///
/// A graph literal of hundreds of nested structs costs rustc more to check
/// than the rest of a large workflow, so the macro writes the graph as this
/// text ([`encode`](text::encode)) and generated code decodes it once, on first use, into
/// a `Graph<'static>` that lives for the rest of the process ([`decode`](text::decode)).
/// One record a line, fields split by `\x1f`, list items by `\x1e`: neither
/// can appear in a Rust name or type.
pub mod text {
    use std::fmt::Write;
    use std::time::Duration;

    use super::{
        EventInfo, EventKind, Graph, InvokeInfo, StateInfo, StateKind, TransitionInfo, TransitionRange, Trigger,
    };
    use crate::activity::RetryPolicy;

    const FIELD: char = '\u{1f}';
    const ITEM: char = '\u{1e}';

    /// Writes `graph` as text.
    pub fn encode(graph: &Graph<'_>) -> String {
        let mut out = String::new();
        let list = |items: &[&str]| items.join(&ITEM.to_string());
        let numbers = |items: &[usize]| {
            items
                .iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join(&ITEM.to_string())
        };
        let _ = writeln!(out, "{}{FIELD}{}", graph.name, graph.initial);
        for s in graph.states {
            let kind = match s.kind {
                StateKind::Atomic => "a".to_string(),
                StateKind::Compound { initial } => format!("c{initial}"),
                StateKind::Parallel => "p".to_string(),
                StateKind::Final { failure } => format!("f{}", u8::from(failure)),
                StateKind::History { deep, slot } => format!("h{}{ITEM}{slot}", u8::from(deep)),
            };
            let parent = s.parent.map_or_else(String::new, |p| p.to_string());
            let invoke = s.invoke.map_or_else(String::new, |i| {
                let p = i.policy;
                let timeout = p.timeout.map_or_else(String::new, |t| t.as_millis().to_string());
                let expected = i.expected.map_or_else(String::new, |e| e.as_millis().to_string());
                [
                    i.activity.to_string(),
                    i.output.to_string(),
                    p.max_attempts.to_string(),
                    p.initial_interval.as_millis().to_string(),
                    p.max_interval.as_millis().to_string(),
                    timeout,
                    i.resource.unwrap_or_default().to_string(),
                    expected,
                ]
                .join(&ITEM.to_string())
            });
            let _ = writeln!(
                out,
                "S{FIELD}{}{FIELD}{kind}{FIELD}{parent}{FIELD}{}{FIELD}{}{FIELD}{}{FIELD}{}{FIELD}{}{FIELD}{invoke}{FIELD}{}",
                s.name,
                s.end,
                s.transitions.start,
                s.transitions.end,
                list(s.entry),
                list(s.exit),
                s.compensate.unwrap_or_default()
            );
        }
        for e in graph.events {
            let kind = match e.kind {
                EventKind::Declared => "d".to_string(),
                EventKind::Done(a) => format!("o{a}"),
                EventKind::Failed(a) => format!("x{a}"),
                EventKind::Timer { state, delay } => format!("t{state}{ITEM}{}", delay.as_millis()),
            };
            let fields: Vec<String> = e.fields.iter().map(|(n, t)| format!("{n}{ITEM}{t}")).collect();
            let _ = writeln!(
                out,
                "E{FIELD}{}{FIELD}{kind}{FIELD}{}",
                e.name,
                fields.join(&FIELD.to_string())
            );
        }
        for t in graph.transitions {
            let trigger = match t.trigger {
                Trigger::Events(list) => format!("e{}", numbers(list)),
                Trigger::Any => "*".to_string(),
                Trigger::Always => "a".to_string(),
                Trigger::StateDone => "d".to_string(),
                Trigger::DoneOf(s) => format!("D{s}"),
                Trigger::Initial => "i".to_string(),
            };
            let _ = writeln!(
                out,
                "T{FIELD}{}{FIELD}{trigger}{FIELD}{}{FIELD}{}{FIELD}{}{FIELD}{}{FIELD}{}{FIELD}{}",
                t.source,
                t.guard.unwrap_or_default(),
                numbers(t.in_states),
                numbers(t.not_in_states),
                numbers(t.targets),
                u8::from(t.internal),
                list(t.actions)
            );
        }
        out
    }

    /// Reads a graph written by [`encode`]. The slices it needs are
    /// allocated once and kept for the rest of the process: generated code
    /// decodes each workflow's graph once.
    pub fn decode(text: &'static str) -> Result<Graph<'static>, String> {
        let mut lines = text.lines();
        let head = lines.next().ok_or("empty graph")?;
        let (name, initial) = head.split_once(FIELD).ok_or("bad graph header")?;
        let mut states = Vec::new();
        let mut events = Vec::new();
        let mut transitions = Vec::new();
        for line in lines {
            let fields: Vec<&'static str> = line.split(FIELD).collect();
            match fields.first().copied() {
                Some("S") => states.push(state(&fields)?),
                Some("E") => events.push(event(&fields)?),
                Some("T") => transitions.push(transition(&fields)?),
                _ => return Err(format!("bad graph line `{line}`")),
            }
        }
        Ok(Graph {
            name,
            initial: number(initial)?,
            states: leak(states),
            events: leak(events),
            transitions: leak(transitions),
        })
    }

    /// [`decode`] for the text the macro wrote, which always decodes: a
    /// failure here is a bug in `workflow!`, reported as such.
    pub fn decode_generated(text: &'static str) -> Graph<'static> {
        match decode(text) {
            Ok(graph) => graph,
            Err(error) => panic!("bug in workflow!: the generated graph does not decode: {error}"),
        }
    }

    fn state(f: &[&'static str]) -> Result<StateInfo<'static>, String> {
        let [_, name, kind, parent, end, start, stop, entry, exit, invoke, compensate] = f else {
            return Err(format!("bad state record {f:?}"));
        };
        let kind = match kind.split_at_checked(1) {
            Some(("a", _)) => StateKind::Atomic,
            Some(("c", initial)) => StateKind::Compound {
                initial: number(initial)?,
            },
            Some(("p", _)) => StateKind::Parallel,
            Some(("f", failure)) => StateKind::Final {
                failure: failure == "1",
            },
            Some(("h", rest)) => {
                let (deep, slot) = rest.split_once(ITEM).ok_or("bad history kind")?;
                StateKind::History {
                    deep: deep == "1",
                    slot: number(slot)?,
                }
            }
            _ => return Err(format!("bad state kind `{kind}`")),
        };
        let invoke = if invoke.is_empty() {
            None
        } else {
            let parts: Vec<&'static str> = invoke.split(ITEM).collect();
            let [activity, output, attempts, initial, max, timeout, resource, expected] = parts[..] else {
                return Err(format!("bad invoke `{invoke}`"));
            };
            let millis = |t: &str| number(t).map(|ms| Duration::from_millis(ms as u64));
            let optional_millis = |t: &str| if t.is_empty() { Ok(None) } else { millis(t).map(Some) };
            let policy = RetryPolicy {
                max_attempts: u32::try_from(number(attempts)?).map_err(|e| e.to_string())?,
                initial_interval: millis(initial)?,
                max_interval: millis(max)?,
                timeout: optional_millis(timeout)?,
            };
            Some(InvokeInfo {
                activity,
                output,
                policy,
                resource: if resource.is_empty() { None } else { Some(resource) },
                expected: optional_millis(expected)?,
            })
        };
        Ok(StateInfo {
            name,
            kind,
            parent: if parent.is_empty() { None } else { Some(number(parent)?) },
            end: number(end)?,
            transitions: TransitionRange {
                start: number(start)?,
                end: number(stop)?,
            },
            entry: names(entry),
            exit: names(exit),
            invoke,
            compensate: if compensate.is_empty() { None } else { Some(compensate) },
        })
    }

    fn event(f: &[&'static str]) -> Result<EventInfo<'static>, String> {
        let [_, name, kind, fields @ ..] = f else {
            return Err(format!("bad event record {f:?}"));
        };
        let kind = match kind.split_at_checked(1) {
            Some(("d", _)) => EventKind::Declared,
            Some(("o", activity)) => EventKind::Done(activity),
            Some(("x", activity)) => EventKind::Failed(activity),
            Some(("t", rest)) => {
                let (state, ms) = rest.split_once(ITEM).ok_or("bad timer kind")?;
                EventKind::Timer {
                    state: number(state)?,
                    delay: Duration::from_millis(number(ms)? as u64),
                }
            }
            _ => return Err(format!("bad event kind `{kind}`")),
        };
        let fields: Vec<(&'static str, &'static str)> = fields
            .iter()
            .filter(|f| !f.is_empty())
            .filter_map(|f| f.split_once(ITEM))
            .collect();
        Ok(EventInfo {
            name,
            fields: leak(fields),
            kind,
        })
    }

    fn transition(f: &[&'static str]) -> Result<TransitionInfo<'static>, String> {
        let [_, source, trigger, guard, in_states, not_in_states, targets, internal, actions] = f else {
            return Err(format!("bad transition record {f:?}"));
        };
        let trigger = match trigger.split_at_checked(1) {
            Some(("e", list)) => Trigger::Events(numbers(list)?),
            Some(("*", _)) => Trigger::Any,
            Some(("a", _)) => Trigger::Always,
            Some(("d", _)) => Trigger::StateDone,
            Some(("D", state)) => Trigger::DoneOf(number(state)?),
            Some(("i", _)) => Trigger::Initial,
            _ => return Err(format!("bad trigger `{trigger}`")),
        };
        Ok(TransitionInfo {
            source: number(source)?,
            trigger,
            guard: if guard.is_empty() { None } else { Some(guard) },
            in_states: numbers(in_states)?,
            not_in_states: numbers(not_in_states)?,
            targets: numbers(targets)?,
            internal: *internal == "1",
            actions: names(actions),
        })
    }

    fn number(text: &str) -> Result<usize, String> {
        text.parse().map_err(|_| format!("bad number `{text}`"))
    }

    fn numbers(text: &str) -> Result<&'static [usize], String> {
        let list: Result<Vec<usize>, String> = text.split(ITEM).filter(|t| !t.is_empty()).map(number).collect();
        Ok(leak(list?))
    }

    fn names(text: &'static str) -> &'static [&'static str] {
        leak(text.split(ITEM).filter(|t| !t.is_empty()).collect())
    }

    fn leak<T>(items: Vec<T>) -> &'static [T] {
        Box::leak(items.into_boxed_slice())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const fn state(name: &'static str, end: usize, invoke: Option<InvokeInfo<'static>>) -> StateInfo<'static> {
        StateInfo {
            name,
            kind: StateKind::Atomic,
            parent: None,
            end,
            transitions: TransitionRange { start: 0, end: 0 },
            entry: &[],
            exit: &[],
            invoke,
            compensate: None,
        }
    }

    /// Three invokes: every clause, none, and a resource without `expected`.
    static PAYMENT: Graph<'static> = Graph {
        name: "Payment",
        initial: 0,
        states: &[
            state(
                "Charging",
                1,
                Some(InvokeInfo {
                    activity: "charge_payment",
                    output: "Receipt",
                    policy: RetryPolicy {
                        max_attempts: 4,
                        initial_interval: Duration::from_millis(100),
                        max_interval: Duration::from_secs(2),
                        timeout: Some(Duration::from_secs(10)),
                    },
                    resource: Some("payments"),
                    expected: Some(Duration::from_millis(200)),
                }),
            ),
            state(
                "Notifying",
                2,
                Some(InvokeInfo {
                    activity: "notify",
                    output: "()",
                    policy: RetryPolicy::ONCE,
                    resource: None,
                    expected: None,
                }),
            ),
            state(
                "Shipping",
                3,
                Some(InvokeInfo {
                    activity: "ship",
                    output: "u64",
                    policy: RetryPolicy::ONCE,
                    resource: Some("warehouse"),
                    expected: None,
                }),
            ),
            state("Done", 4, None),
        ],
        events: &[],
        transitions: &[],
    };

    #[test]
    fn invokes_round_trip_through_their_text() {
        let text: &'static str = Box::leak(text::encode(&PAYMENT).into_boxed_str());
        let decoded = text::decode(text).unwrap();
        assert_eq!(decoded, PAYMENT);
        let charging = decoded.states[0].invoke.unwrap();
        assert_eq!(charging.resource, Some("payments"));
        assert_eq!(charging.expected, Some(Duration::from_millis(200)));
        let notifying = decoded.states[1].invoke.unwrap();
        assert_eq!((notifying.resource, notifying.expected), (None, None));
    }

    #[test]
    fn chart_triggers_and_in_conditions_round_trip_through_their_text() {
        static TRANSITIONS: [TransitionInfo<'static>; 4] = [
            TransitionInfo {
                source: 0,
                trigger: Trigger::Initial,
                guard: None,
                in_states: &[],
                not_in_states: &[],
                targets: &[1, 2],
                internal: false,
                actions: &["open"],
            },
            TransitionInfo {
                source: 1,
                trigger: Trigger::DoneOf(0),
                guard: Some("ready"),
                in_states: &[2, 3],
                not_in_states: &[0],
                targets: &[3],
                internal: false,
                actions: &[],
            },
            TransitionInfo {
                source: 2,
                trigger: Trigger::Always,
                guard: None,
                in_states: &[1],
                not_in_states: &[],
                targets: &[],
                internal: false,
                actions: &["act"],
            },
            TransitionInfo {
                source: 3,
                trigger: Trigger::StateDone,
                guard: None,
                in_states: &[],
                not_in_states: &[],
                targets: &[3],
                internal: true,
                actions: &[],
            },
        ];
        let graph = Graph {
            transitions: &TRANSITIONS,
            ..PAYMENT
        };
        let text: &'static str = Box::leak(text::encode(&graph).into_boxed_str());
        assert_eq!(text::decode(text).unwrap(), graph);
        let bad: &'static str = Box::leak(text.replace("\u{1f}D0\u{1f}", "\u{1f}Dx\u{1f}").into_boxed_str());
        assert_eq!(text::decode(bad).unwrap_err(), "bad number `x`");
    }

    #[test]
    fn a_malformed_invoke_is_an_error() {
        let text = text::encode(&PAYMENT);
        // The record of an invoke without its resource and expected fields.
        let short: &'static str = Box::leak(text.replace("\u{1e}payments\u{1e}200", "").into_boxed_str());
        assert!(text::decode(short).unwrap_err().starts_with("bad invoke"), "{short:?}");
        let bad_expected: &'static str = Box::leak(
            text.replace("\u{1e}payments\u{1e}200", "\u{1e}payments\u{1e}soon")
                .into_boxed_str(),
        );
        assert_eq!(text::decode(bad_expected).unwrap_err(), "bad number `soon`");
    }
}
