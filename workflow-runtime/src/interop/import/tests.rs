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
            "1:41: the guard \"xstate.stateIn\" is one of XState's functions, which JSON cannot reference: a guard is a name the application provides, and state conditions are {\"type\": \"workflow.in\", \"params\": {\"states\": [\"#id\"], \"not\": [\"#id\"], \"guard\": NAME}} as the export writes them",
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

/// Every one-byte deletion, and a few replacements, of the committed exports (`Job`, and
/// `Constructs` with its `In()` conditions, initial transitions and completions of other
/// states): an error or a block, never a panic.
#[test]
fn mutated_charts_never_panic() {
    let charts = [
        (Format::Scxml, include_str!("../../../../tests/charts/job.scxml")),
        (Format::XState, include_str!("../../../../tests/charts/job.json")),
        (Format::Scxml, include_str!("../../../../tests/charts/constructs.scxml")),
        (Format::XState, include_str!("../../../../tests/charts/constructs.json")),
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

#[test]
fn conditions_on_the_configuration() {
    // SCXML: `In('S')` / `!In('S')` terms and one guard name joined by `&&`, in any order, with
    // either quote (the export writes `'` as `&apos;`).
    let chart = scxml(
        r#"<state id="A">
    <transition event="Go" cond="In(&apos;B&apos;) &amp;&amp; !In(&apos;C&apos;) &amp;&amp; ready" target="A"/>
    <transition event="Go" cond="ready &amp;&amp; In(&quot;C&quot;)" target="P"/>
    <transition event="Go" cond=" ! In('B') " target="P"/>
  </state>
  <parallel id="P"><state id="B"/><state id="C"/></parallel>"#,
    );
    let expected = "initial A;
events { Go }
state A {
    on Go if in(B) && !in(C) && ready => A;
    on Go if in(C) && ready => P;
    on Go if !in(B) => P;
}
parallel P {
    state B {}
    state C {}
}
";
    assert_eq!(body(Format::Scxml, &chart), expected);
    // XState: only the export's `workflow.in` guard (JSON cannot name `stateIn`).
    let config = r##"{"initial": "A", "states": {
  "A": {"id": "A", "on": {"Go": [
    {"target": "#A", "guard": {"type": "workflow.in", "params": {"states": ["#B"], "not": ["#C"], "guard": "ready"}}, "reenter": true},
    {"target": "#P", "guard": {"type": "workflow.in", "params": {"states": ["#C"], "guard": "ready"}}, "reenter": true},
    {"target": "#P", "guard": {"type": "workflow.in", "params": {"states": [], "not": ["#B"]}}, "reenter": true}]}},
  "P": {"id": "P", "type": "parallel", "states": {"B": {"id": "B"}, "C": {"id": "C"}}}}}"##;
    assert_eq!(body(Format::XState, config), expected);

    for (cond, message) in [
        ("In('Zzz')", "2:15: <transition> in state `A`: unknown state `Zzz`"),
        ("!In('Bb')", "2:15: <transition> in state `A`: unknown state `Bb` (did you mean `B`?)"),
        (
            "ready &amp;&amp; set",
            "2:15: <transition cond=\"ready && set\">: two guard names (`ready` and `set`); a transition has one guard; a cond is a guard's name and `In('STATE')` or `!In('STATE')` terms joined by `&&`",
        ),
        (
            "In('B') || ready",
            "2:15: <transition cond=\"In('B') || ready\">: `||` is not supported; a cond is a guard's name and `In('STATE')` or `!In('STATE')` terms joined by `&&`",
        ),
        (
            "count &gt; 1",
            "2:15: <transition cond=\"count > 1\">: `count > 1` is an expression; a cond is a guard's name and `In('STATE')` or `!In('STATE')` terms joined by `&&`",
        ),
        (
            "!ready",
            "2:15: <transition cond=\"!ready\">: `!ready` is an expression; a cond is a guard's name and `In('STATE')` or `!In('STATE')` terms joined by `&&`",
        ),
    ] {
        let chart = scxml(&format!(
            r#"<state id="A"><transition event="Go" cond="{cond}" target="A"/></state><state id="B"/>"#
        ));
        assert_eq!(error(Format::Scxml, &chart), message, "{cond}");
    }
    assert_eq!(
        error(
            Format::XState,
            r##"{"states": {"A": {"on": {"Go": {"guard": {"type": "workflow.in", "params": {"states": ["#Q"]}}}}}}}"##
        ),
        "1:88: unknown target \"#Q\": no state has the id \"Q\""
    );
    assert_eq!(
        error(
            Format::XState,
            r#"{"states": {"A": {"on": {"Go": {"guard": {"type": "workflow.in", "params": {"state": []}}}}}}}"#
        ),
        "1:77: \"state\" in the params of the guard \"workflow.in\" is not supported"
    );
}

#[test]
fn several_initial_states_and_initial_actions() {
    let chart = scxml(
        r#"<state id="Checkout" initial="Card Address">
    <parallel id="Form">
      <state id="Pay"><state id="Card"/><state id="Cash"/></state>
      <state id="Ship"><state id="Address"/><state id="Pickup"/></state>
    </parallel>
  </state>
  <state id="Other">
    <initial><transition target="Deep"><wf:action name="open_form"/><raise event="Opened"/></transition></initial>
    <state id="Mid"><state id="Deep"/></state>
  </state>"#,
    );
    let expected = "initial Checkout;
events { Opened }
state Checkout {
    initial Card, Address;
    parallel Form {
        state Pay {
            initial Card;
            state Card {}
            state Cash {}
        }
        state Ship {
            initial Address;
            state Address {}
            state Pickup {}
        }
    }
}
state Other {
    initial Deep / open_form, raise Opened;
    state Mid {
        initial Deep;
        state Deep {}
    }
}
";
    assert_eq!(body(Format::Scxml, &chart), expected);
    // XState: `initial` is the child holding the first target, `meta.initial` the exact entry.
    let config = r##"{"initial": "Checkout", "states": {
  "Checkout": {"id": "Checkout", "initial": "Form", "meta": {"initial": {"target": ["#Card", "#Address"]}}, "states": {
    "Form": {"id": "Form", "type": "parallel", "states": {
      "Pay": {"id": "Pay", "initial": "Card", "states": {"Card": {"id": "Card"}, "Cash": {"id": "Cash"}}},
      "Ship": {"id": "Ship", "initial": "Address", "states": {"Address": {"id": "Address"}, "Pickup": {"id": "Pickup"}}}}}}},
  "Other": {"id": "Other", "initial": "Mid",
    "meta": {"initial": {"target": "#Deep", "actions": ["open_form", {"type": "workflow.raise", "params": {"event": "Opened"}}]}},
    "states": {"Mid": {"id": "Mid", "initial": "Deep", "states": {"Deep": {"id": "Deep"}}}}}}}"##;
    assert_eq!(body(Format::XState, config), expected);

    for (inner, message) in [
        (
            r#"<state id="A" initial="B Cc"><state id="B"/><state id="C"/></state>"#,
            "2:1: <state> `A`: its initial state `Cc` is not one of its descendants (did you mean `C`?)",
        ),
        (
            r#"<state id="A"><initial><transition target="B" cond="ok"/></initial><state id="B"/></state>"#,
            "2:24: <initial> of <state> `A`: its transition has targets, no event, no cond and no type",
        ),
        (
            r#"<state id="A" initial="B"/><state id="B"/>"#,
            "2:1: <state> `A`: only a state with child states has an initial state",
        ),
    ] {
        assert_eq!(error(Format::Scxml, &scxml(inner)), message, "{inner}");
    }
    // The top level of a workflow has one initial state and no actions.
    assert_eq!(
        error(
            Format::Scxml,
            r#"<scxml xmlns="http://www.w3.org/2005/07/scxml" initial="A B"><state id="A"/><state id="B"/></scxml>"#
        ),
        "1:1: <scxml initial=\"A B\">: several initial states at the top level are not supported (a workflow's `initial` names one state; wrap them in a state)"
    );
    assert_eq!(
        error(
            Format::XState,
            r#"{"states": {"A": {"initial": "B", "meta": {"initial": {"target": ".B", "after": 1}}, "states": {"B": {}}}}}"#
        ),
        "1:72: \"after\" in \"meta.initial\" is not supported"
    );
}

#[test]
fn targetless_and_internal_eventless_transitions() {
    let chart = scxml(
        r#"<state id="Polling">
    <transition cond="over_budget"><wf:action name="alert"/></transition>
    <transition cond="In('Done')" target="Report" type="internal"/>
    <state id="Report"/>
  </state>
  <state id="Done"/>"#,
    );
    let expected = "initial Polling;
state Polling {
    initial Report;
    always if over_budget / alert;
    always if in(Done) => internal Report;
    state Report {}
}
state Done {}
";
    assert_eq!(body(Format::Scxml, &chart), expected);
    // XState: an `always` without a target; one into the state without `reenter` is internal.
    let config = r##"{"states": {
  "Polling": {"id": "Polling", "initial": "Report", "always": [
    {"guard": "over_budget", "actions": ["alert"]},
    {"target": "#Report", "guard": {"type": "workflow.in", "params": {"states": ["#Done"]}}}],
    "states": {"Report": {"id": "Report"}}},
  "Done": {"id": "Done"}}}"##;
    assert_eq!(body(Format::XState, config), expected);
    assert_eq!(
        error(
            Format::Scxml,
            &scxml(r#"<state id="A"><transition cond="ok"/></state>"#)
        ),
        "2:15: <transition> in state `A`: an eventless transition with neither a target nor actions does nothing"
    );
}

#[test]
fn completion_of_another_state() {
    let chart = scxml(
        r#"<parallel id="Fulfil">
    <transition event="done.state.Fulfil" target="Billed"/>
    <state id="Pay"><state id="Paying"><transition event="Paid" target="Settled"/></state><final id="Settled"/></state>
    <state id="Ship"><transition event="done.state.Pay"><wf:action name="notify"/></transition></state>
  </parallel>
  <final id="Billed"/>"#,
    );
    let expected = "initial Fulfil;
events { Paid }
parallel Fulfil {
    on done => Billed;
    state Pay {
        initial Paying;
        state Paying {
            on Paid => Settled;
        }
        final Settled;
    }
    state Ship {
        on done(Pay) / notify;
    }
}
final Billed;
";
    assert_eq!(body(Format::Scxml, &chart), expected);
    let config = r##"{"initial": "Fulfil", "states": {
  "Fulfil": {"id": "Fulfil", "type": "parallel", "onDone": [{"target": "#Billed", "reenter": true}], "states": {
    "Pay": {"id": "Pay", "initial": "Paying", "states": {
      "Paying": {"id": "Paying", "on": {"Paid": [{"target": "#Settled", "reenter": true}]}},
      "Settled": {"id": "Settled", "type": "final"}}},
    "Ship": {"id": "Ship", "on": {"xstate.done.state.Pay": [{"actions": ["notify"]}]}}}},
  "Billed": {"id": "Billed", "type": "final"}}}"##;
    assert_eq!(body(Format::XState, config), expected);
    assert_eq!(
        error(
            Format::Scxml,
            &scxml(r#"<state id="Pay"><transition event="done.state.Py" target="Pay"/></state>"#)
        ),
        "2:17: <transition> in state `Pay`: unknown state `Py` (did you mean `Pay`?)"
    );
    assert_eq!(
        error(
            Format::XState,
            r#"{"states": {"pay": {"on": {"xstate.done.state.py": {"target": "pay", "reenter": true}}}}}"#
        ),
        "1:28: \"on\": \"xstate.done.state.py\": no state has the id \"py\""
    );
}
