use super::*;

fn body(format: Format, text: &str) -> String {
    match import(format, text) {
        Ok(imported) => imported.body().to_string(),
        Err(e) => panic!("{e}\n{text}"),
    }
}

fn error(format: Format, text: &str) -> String {
    match import(format, text) {
        Ok(imported) => panic!("imported:\n{}", imported.body()),
        Err(e) => e.to_string(),
    }
}

const SCXML_HEAD: &str = r#"<scxml xmlns="http://www.w3.org/2005/07/scxml" xmlns:wf="urn:x-workflow-rs:scxml:1" xmlns:qt="http://www.qt.io/2015/02/scxml-ext" version="1.0">"#;

fn scxml(inner: &str) -> String {
    format!("{SCXML_HEAD}\n{inner}\n</scxml>")
}

#[test]
fn a_hand_drawn_scxml_chart_becomes_a_block() {
    let chart = scxml(
        r#"  <qt:editorinfo initialGeometry="0;0;1;1"/>
  <state id="Idle" qt:geometry="1">
    <transition event="Start Resume" target="Busy"/>
  </state>
  <state id="Busy">
    <initial><transition target="Working"/></initial>
    <onentry><wf:action name="greet"/><send event="Tick" delay="1.5s"/></onentry>
    <onexit><cancel sendid="Tick"/></onexit>
    <transition event="Tick" cond="tired" target="Idle"><raise event="Rest"/></transition>
    <transition event="Rest"/>
    <transition event="done.state.Busy" target="Done"/>
    <state id="Working"><transition target="Finished"/></state>
    <final id="Finished"/>
    <history id="Again" type="deep"/>
  </state>
  <parallel id="Both"><state id="Left"/><state id="Right"/></parallel>
  <final id="Done"><onentry><wf:action name="bye"/></onentry></final>"#,
    );
    assert_eq!(
        body(Format::Scxml, &chart),
        "initial Idle;
events { Start, Resume, Tick, Rest }
state Idle {
    on Start | Resume => Busy;
}
state Busy {
    initial Working;
    entry greet, send Tick after 1500ms;
    exit cancel Tick;
    on Tick if tired => Idle / raise Rest;
    on Rest;
    on done => Done;
    state Working {
        always => Finished;
    }
    final Finished;
    history deep Again;
}
parallel Both {
    state Left {}
    state Right {}
}
final Done {
    entry bye;
}
"
    );
}

#[test]
fn a_hand_drawn_xstate_config_becomes_a_block() {
    // Stately's shapes: sibling keys, `.child`, `#id`, a target string, an object, an array,
    // named guards and actions, `after`, `onDone`, an invoke with its outcomes.
    let config = r##"{
  "id": "fetcher",
  "initial": "idle",
  "context": {"retries": 0},
  "states": {
    "idle": {"on": {"FETCH": "loading", "PEEK": ".peeking"}, "initial": "resting",
             "states": {"resting": {}, "peeking": {"on": {"DONE": "#idle_state"}}}, "id": "idle_state"},
    "loading": {
      "entry": ["show_spinner", {"type": "workflow.send", "params": {"event": "PING", "delay": 500, "id": "ping"}}],
      "exit": {"type": "hide_spinner"},
      "invoke": {"src": "fetch_data", "onDone": {"target": "ok", "actions": "store"}, "onError": "failed"},
      "on": {"CANCEL": [{"target": "idle", "guard": "cancellable"}, {"actions": ["complain"]}], "*": {"actions": "log"}},
      "after": {"30000": {"target": "failed"}},
      "meta": {"activity": {"output": "Vec<u8>", "attempts": 3, "backoff": [100, 2000], "timeout": 5000}}
    },
    "ok": {"type": "final"},
    "failed": {"type": "final", "meta": {"failure": true, "note": "kept out"}}
  }
}"##;
    assert_eq!(
        body(Format::XState, config),
        "initial idle_state;
events { FETCH, PEEK, DONE, PING, CANCEL }
state idle_state {
    initial resting;
    on FETCH => loading;
    on PEEK => internal peeking;
    state resting {}
    state peeking {
        on DONE => idle_state;
    }
}
state loading {
    entry show_spinner, send PING after 500ms as ping;
    exit hide_spinner;
    invoke fetch_data -> Vec<u8> { retry 2 backoff 100ms..2s; timeout 5s; done => ok / store; error => failed; }
    on CANCEL if cancellable => idle_state;
    on CANCEL / complain;
    after 30s => failed;
    on _ / log;
}
final ok;
final failed (failure);
"
    );
    assert_eq!(import(Format::XState, config).unwrap().name(), Some("fetcher"));
    let unnamed = config.replace(r#""id": "fetcher","#, r#""id": "my-fetcher","#);
    assert_eq!(
        import(Format::XState, &unnamed).unwrap().name(),
        None,
        "not an identifier"
    );
}

#[test]
fn xstate_reenter_and_self_targets() {
    let config = |transition: &str| {
        format!(
            r#"{{"initial": "a", "states": {{"a": {{"initial": "b", "entry": "hello", "on": {{"E": {transition}}},
                "states": {{"b": {{}}, "c": {{}}}}}}}}}}"#
        )
    };
    // Without `reenter`, a target inside the source does not leave it, however it is spelled.
    for target in [r#""a.c""#, r##""#(machine).a.c""##, r#"".c""#, r#"{"target": ".c"}"#] {
        assert!(
            body(Format::XState, &config(target)).contains("on E => internal c;"),
            "{target}"
        );
    }
    assert!(body(Format::XState, &config(r#"{"target": ".c", "reenter": true}"#)).contains("on E => c;"));
    assert!(body(Format::XState, &config(r#"{"target": "a", "reenter": true}"#)).contains("on E => a;"));
    assert_eq!(
        error(Format::XState, &config(r#""a""#)),
        "1:81: a transition of \"on.E\" targets its own state without \"reenter\": true; XState then stays in the state, which a workflow block cannot say (add \"reenter\": true, or drop the target)"
    );
}

#[test]
fn unsupported_scxml_names_the_element_and_its_place() {
    for (inner, expected) in [
        (
            r#"<state id="A"><onentry><log expr="'hi'"/></onentry></state>"#,
            "2:24: <log> in <onentry> is not supported (the null data model has no data or expressions)",
        ),
        (
            r#"<datamodel/><state id="A"/>"#,
            "2:1: <datamodel> in <scxml> is not supported (the null data model has no data or expressions)",
        ),
        (
            r#"<state id="A"><transition event="E" cond="In('B')" target="A"/></state>"#,
            "2:15: <transition cond=\"In('B')\">: a cond names a guard (an identifier), not an expression (`In()` guards are not supported yet)",
        ),
        (
            r#"<state id="A" initial="B C"><parallel id="P"><state id="B"/><state id="C"/></parallel></state>"#,
            "2:1: <state initial=\"B C\">: several initial states are not supported yet",
        ),
        (
            r#"<state id="A"><initial><transition target="B"><raise event="X"/></transition></initial><state id="B"/></state>"#,
            "2:24: <initial> of <state> `A`: actions on the initial transition are not supported yet",
        ),
        (
            r#"<state id="A"><transition cond="ok"><raise event="X"/></transition></state>"#,
            "2:15: <transition> in state `A`: an eventless transition without a target is not supported yet (the block's `always` needs a target)",
        ),
        (
            r#"<state id="A"><state id="B"><transition event="done.state.A" target="B"/></state></state>"#,
            "2:29: <transition event=\"done.state.A\"> in state `B`: only the state's own completion (done.state.B) is supported yet",
        ),
        (
            r#"<state id="A"><transition event="E" targetexpr="x"/></state>"#,
            "2:37: <transition targetexpr=\"x\"> is not supported (an expression; the null data model has none)",
        ),
        (
            r#"<state id="A"><invoke type="scxml" src="child.scxml"/></state>"#,
            "2:15: <invoke type=\"scxml\">: only activities (type=\"urn:x-workflow-rs:activity\") are supported",
        ),
        (
            r#"<state id="A"><transition event="E" target="Nowhere"/></state>"#,
            "2:15: <transition> in state `A`: unknown target `Nowhere`",
        ),
        (
            r#"<state id="A"><transition event="user.login" target="A"/></state>"#,
            "2:15: event `user.login` is not a Rust identifier (letters, digits and `_`, not a keyword): rename it",
        ),
        (
            r#"<state id="loop"/>"#,
            "2:1: <state> id `loop` is not a Rust identifier (letters, digits and `_`, not a keyword): rename it",
        ),
        (
            r#"<state id="A"/><final id="A"/>"#,
            "2:16: two states are called `A` (the other at 2:1): a workflow's state names are unique",
        ),
        (
            r#"<wf:events><wf:event name="Go"/></wf:events><state id="A"><transition event="Og" target="A"/></state>"#,
            "2:59: <transition> in state `A`: event `Og` is not among the chart's declared events (did you mean `Go`?)",
        ),
        (
            r#"<state id="A"><invoke id="pay" type="urn:x-workflow-rs:activity" wf:backoff="1s"/></state>"#,
            "2:15: <invoke wf:backoff=\"1s\">: MIN..MAX, such as `100ms..5s`",
        ),
        (
            r#"<state id="A"><invoke id="pay" type="urn:x-workflow-rs:activity" wf:output="u8 } state B {"/></state>"#,
            "2:15: output type `u8 } state B {` is not a Rust type",
        ),
        (
            r#"<state id="A"><transition event="done.invoke.pay" target="A"/></state>"#,
            "2:15: <transition event=\"done.invoke.pay\"> in state `A`: the state invokes no activity `pay`",
        ),
    ] {
        assert_eq!(error(Format::Scxml, &scxml(inner)), expected, "{inner}");
    }
    assert_eq!(
        error(Format::Scxml, "<scxml><state id=\"A\"></scxml>"),
        "1:22: bad XML: expected 'state' tag, not 'scxml'"
    );
    assert_eq!(
        error(Format::Scxml, "<statechart/>"),
        "1:1: the root element is <statechart>, not <scxml> in the SCXML namespace (http://www.w3.org/2005/07/scxml)"
    );
}

#[test]
fn unsupported_xstate_names_the_key_and_its_place() {
    for (config, expected) in [
        (
            r#"{"states": {"a": {"on": {"E": "b"}}}}"#,
            "1:31: unknown target \"b\": no state \"b\" there (did you mean `a`?)",
        ),
        (
            r#"{"states": {"idle": {"on": {"E": "idel"}}}}"#,
            "1:34: unknown target \"idel\": no state \"idel\" there (did you mean `idle`?)",
        ),
        (
            r##"{"states": {"a": {"on": {"E": "#nowhere"}}}}"##,
            "1:31: unknown target \"#nowhere\": no state has the id \"nowhere\"",
        ),
        (
            r#"{"states": {"a": {"on": {"E": {"target": "a", "cond": "ok"}}}}}"#,
            "1:47: \"cond\" in a transition of \"on.E\" is not supported (XState v5 calls it \"guard\")",
        ),
        (
            r#"{"states": {"a": {"on": {"E": {"guard": {"type": "stateIn", "params": {}}}}}}}"#,
            "1:41: a guard is a name (or {\"type\": NAME}); guards with params are not supported",
        ),
        (
            r#"{"states": {"a": {"on": {"E": {"guard": "xstate.stateIn"}}}}}"#,
            "1:41: the guard \"xstate.stateIn\" is not supported yet: a guard is a name the application provides",
        ),
        (
            r#"{"states": {"a": {"invoke": [{"src": "x"}, {"src": "y"}]}}}"#,
            "1:29: state \"a\" invokes 2 actors; a state invokes one activity",
        ),
        (
            r#"{"states": {"a": {"after": {"slow": "a"}}}}"#,
            "1:29: \"after\": \"slow\" is not a number of milliseconds (named delays are not supported)",
        ),
        (
            r#"{"on": {"E": "a"}, "states": {"a": {}}}"#,
            "1:2: \"on\" on the machine itself is not supported: a workflow has no root state, put it on a state",
        ),
        (
            r#"{"states": {"a": {"type": "final", "on": {"E": "a"}}}}"#,
            "1:36: \"on\" in final \"a\" is not supported",
        ),
        (
            r#"{"states": {"a": {"on": {"E": {"actions": {"type": "assign", "params": {"x": 1}}}}}}}"#,
            "1:43: the action \"assign\" has params, which a workflow's actions do not take",
        ),
        (
            r#"{"states": {"a": {"on": {"E": 3}}}}"#,
            "1:31: a transition of \"on.E\" is a number: a target, an object or an array of them",
        ),
        (
            r#"{"states": {"a": {"type": "compund"}}}"#,
            "1:27: the \"type\" of state \"a\" is \"compund\": atomic, compound, parallel, final or history",
        ),
        (
            r#"{"initial": "zzz", "states": {"a": {}}}"#,
            "1:13: the machine's \"initial\": no state \"zzz\"",
        ),
        (
            r#"[1, 2]"#,
            "1:1: an XState machine configuration is an object, not an array",
        ),
        (
            r#"{"states": {"a": {"on": {"E": "a"}}"#,
            "1:36: bad JSON: expected `,` or `}`",
        ),
        (
            r#"{"states": {"a": {"on": {"done.state.b": "a"}}}}"#,
            "1:26: \"on\": \"done.state.b\": only the state's own completion is supported yet (use \"onDone\")",
        ),
    ] {
        assert_eq!(error(Format::XState, config), expected, "{config}");
    }
}

#[test]
fn formats_come_from_extensions() {
    assert_eq!(Format::of_path(Path::new("a/b.scxml")), Some(Format::Scxml));
    assert_eq!(Format::of_path(Path::new("b.xml")), Some(Format::Scxml));
    assert_eq!(Format::of_path(Path::new("b.json")), Some(Format::XState));
    assert_eq!(Format::of_path(Path::new("b.yaml")), None);
    assert_eq!(Format::of_path(Path::new("b")), None);
}

#[test]
fn positions_count_characters() {
    let lines = Lines::new("ab\ncé\nx");
    assert_eq!(lines.position(7), Position { line: 3, column: 1 });
    assert_eq!(lines.position(6), Position { line: 2, column: 3 }, "é is one column");
    assert_eq!(lines.position(0), Position { line: 1, column: 1 });
    assert_eq!(
        lines.position(2),
        Position { line: 1, column: 3 },
        "the newline ends its line"
    );
}

/// Every one-byte deletion, and a few replacements, of both committed exports: an error or a
/// block, never a panic.
#[test]
fn mutated_charts_never_panic() {
    let charts = [
        (Format::Scxml, include_str!("../../../../tests/charts/job.scxml")),
        (Format::XState, include_str!("../../../../tests/charts/job.json")),
    ];
    let mut outcomes = [0usize; 2];
    for (format, text) in charts {
        assert!(import(format, text).is_ok());
        let bytes = text.as_bytes();
        for i in 0..bytes.len() {
            for replacement in [&b""[..], b"\"", b"<", b"{", b"x", b"]", b"\xc3\xa9"] {
                let mut mutated = bytes[..i].to_vec();
                mutated.extend_from_slice(replacement);
                mutated.extend_from_slice(&bytes[i + 1..]);
                let Ok(mutated) = String::from_utf8(mutated) else {
                    continue;
                };
                outcomes[usize::from(import(format, &mutated).is_ok())] += 1;
            }
        }
    }
    // Both outcomes happen: the mutations reach past the parsers into the checks.
    assert!(outcomes[0] > 1000 && outcomes[1] > 100, "{outcomes:?}");
}
