//! Unit tests of the translator (`translate.rs`, the same file `build.rs` runs)
//! and of the driver.

use crate::translate::*;

fn world(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| s.to_string()).collect()
}

#[test]
fn descriptors_match_by_token_prefix() {
    assert!(descriptor_matches("foo", "foo"));
    assert!(descriptor_matches("foo", "foo.bar"));
    assert!(descriptor_matches("foo", "foo.bar.bat"));
    assert!(!descriptor_matches("foo", "foobar"));
    assert!(!descriptor_matches("foo.bar", "foo"));
    assert!(descriptor_matches("foo.*", "foo"));
    assert!(descriptor_matches("foo.*", "foo.bar"));
    assert!(!descriptor_matches("foo.*", "foobar"));
    assert!(descriptor_matches("foo.bar.*", "foo.bar.bat"));
    assert!(!descriptor_matches("foo.bar.*", "foo"));
    assert!(descriptor_matches("*", "anything.at.all"));
    assert!(!descriptor_matches("", "foo"));
}

#[test]
fn descriptors_expand_in_a_closed_world() {
    let w = world(&["foo", "foo.bar", "foo.bar.bat", "foobar", "t"]);
    assert_eq!(expand_descriptors(None, &w), Trigger::Eventless);
    assert_eq!(expand_descriptors(Some("*"), &w), Trigger::Any);
    assert_eq!(expand_descriptors(Some("t *"), &w), Trigger::Any);
    assert_eq!(
        expand_descriptors(Some("foo"), &w),
        Trigger::Events(world(&["foo", "foo.bar", "foo.bar.bat"]))
    );
    assert_eq!(
        expand_descriptors(Some("foo.bar.*"), &w),
        Trigger::Events(world(&["foo.bar", "foo.bar.bat"]))
    );
    // Several descriptors, overlapping: each name once, in world order.
    assert_eq!(
        expand_descriptors(Some("t  foo.bar foo"), &w),
        Trigger::Events(world(&["foo", "foo.bar", "foo.bar.bat", "t"]))
    );
    assert_eq!(expand_descriptors(Some("nothing"), &w), Trigger::Events(vec![]));
}

#[test]
fn durations_convert_to_whole_dsl_units() {
    assert_eq!(parse_delay_ms("10ms"), Ok(10));
    assert_eq!(parse_delay_ms("1s"), Ok(1000));
    assert_eq!(parse_delay_ms("1.5s"), Ok(1500));
    assert_eq!(parse_delay_ms(" 2m "), Ok(120_000));
    assert_eq!(parse_delay_ms("0.001s"), Ok(1));
    assert!(parse_delay_ms("0.5ms").is_err());
    assert!(parse_delay_ms("10").is_err());
    assert!(parse_delay_ms("10parsecs").is_err());
    assert!(parse_delay_ms("s").is_err());
    assert!(parse_delay_ms("1..2s").is_err());
    assert!(parse_delay_ms("99999999999999999999s").is_err());
    assert_eq!(dsl_duration(10), "10ms");
    assert_eq!(dsl_duration(1000), "1s");
    assert_eq!(dsl_duration(1500), "1500ms");
    assert_eq!(dsl_duration(120_000), "2m");
    assert_eq!(dsl_duration(7_200_000), "2h");
    assert_eq!(dsl_duration(86_400_000), "1d");
    assert_eq!(dsl_duration(0), "0ms");
}

#[test]
fn ids_become_safe_identifiers() {
    assert_eq!(state_ident("b1.2"), "S_b1_2");
    assert_eq!(state_ident("a"), "S_a");
    assert_eq!(event_ident("foo.bar.bat"), "E_foo_bar_bat");
    assert_eq!(event_ident("*"), "E__");
    assert_eq!(
        workflow_ident("parallel+interrupt", "test21b"),
        "T_parallel_interrupt_test21b"
    );
    assert_eq!(workflow_ident("more-parallel", "test0"), "T_more_parallel_test0");
    assert_eq!(
        module_ident("hierarchy+documentOrder", "test0"),
        "case_hierarchy_documentorder__test0"
    );
    let map = ident_map(["b1.2", "b1", "x"], state_ident).unwrap();
    assert_eq!(map["b1.2"], "S_b1_2");
    let err = ident_map(["a.b", "a_b"], state_ident).unwrap_err();
    assert!(err.contains("`a.b` and `a_b` both translate to `S_a_b`"), "{err}");
}

const HEAD: &str = r#"<?xml version="1.0"?><!-- licence --><scxml xmlns="http://www.w3.org/2005/07/scxml" version="1.0" datamodel="ecmascript""#;

fn chart(body: &str, attrs: &str) -> Chart {
    parse_chart(&format!("{HEAD} {attrs}>{body}</scxml>")).unwrap()
}

fn script(events: &[&str]) -> Script {
    Script {
        initial: vec![],
        steps: events
            .iter()
            .map(|e| ScriptStep {
                after: None,
                event: e.to_string(),
                expected: vec![],
            })
            .collect(),
    }
}

#[test]
fn translates_nested_parallel_history_and_actions() {
    let c = chart(
        r#"
        <state id="a">
            <onentry><raise event="go"/></onentry>
            <transition event="t" target="b.1 c"><raise event="s"/></transition>
            <transition target="a"/>
        </state>
        <parallel id="p">
            <history id="hp" type="deep"><transition target="b"/></history>
            <state id="b">
                <initial><transition target="b.1"/></initial>
                <onexit><send event="late" delay="1.5s"/></onexit>
                <state id="b.1"><transition event="foo.*" target="hp"/></state>
            </state>
            <state id="c" initial="hc">
                <history id="hc"><transition target="c1"/></history>
                <state id="c1"><transition event="*" target="a"/></state>
                <final id="c2"/>
            </state>
        </parallel>"#,
        r#"initial="a""#,
    );
    let t = translate("g+x", "n.1", &c, &script(&["t", "foo.bar", "foobar"])).unwrap();
    let expected = "\
#[allow(dead_end, unreachable_state, no_path_to_final, shadowed_transition, eventless_loop, never_done, decision_without_else)]
workflow T_g_x_n_1 {
    initial S_a;
    events { E_t, E_foo_bar, E_foobar, E_go, E_s, E_late }
    state S_a {
        entry raise E_go;
        on E_t => S_b_1, S_c / raise E_s;
        always => S_a;
    }
    parallel S_p {
        history deep S_hp => S_b;
        state S_b {
            initial S_b_1;
            exit send E_late after 1500ms;
            state S_b_1 {
                on E_foo_bar => S_hp;
            }
        }
        state S_c {
            initial S_hc;
            history S_hc => S_c1;
            state S_c1 {
                on _ => S_a;
            }
            final S_c2;
        }
    }
}
";
    assert_eq!(t.dsl, expected, "\n{}", t.dsl);
    assert!(t.uses_send);
    assert_eq!(t.workflow, "T_g_x_n_1");
    let atomic: Vec<_> = t.atomic.iter().map(|(d, s)| format!("{d}={s}")).collect();
    assert_eq!(atomic, ["S_a=a", "S_b_1=b.1", "S_c1=c1", "S_c2=c2"]);
    assert_eq!(t.events[1], ("foo.bar".to_string(), "E_foo_bar".to_string()));
}

#[test]
fn root_and_compound_initial_default_to_the_first_child() {
    let c = chart(
        r#"<state id="x"><state id="x1"/><state id="x2"/></state><state id="y"/>"#,
        "",
    );
    assert_eq!(c.initial, "x");
    let t = translate("g", "n", &c, &script(&[])).unwrap();
    assert!(
        t.dsl.contains("initial S_x;\n    state S_x {\n        initial S_x1;"),
        "{}",
        t.dsl
    );
    assert!(!t.dsl.contains("events"), "no events block without events:\n{}", t.dsl);
    assert!(!t.uses_send);
}

#[test]
fn transitions_nobody_can_trigger_are_left_out() {
    let c = chart(
        r#"<state id="a"><transition event="never" target="b"/><transition event="t" target="b"/></state><state id="b"/>"#,
        "",
    );
    let t = translate("g", "n", &c, &script(&["t"])).unwrap();
    assert!(
        t.dsl
            .contains("// never enabled, left out: event=\"never\"\n        on E_t => S_b;"),
        "{}",
        t.dsl
    );
}

#[test]
fn targetless_internal_and_immediate_send() {
    let c = chart(
        r#"<state id="a"><transition event="t"><send event="u"/></transition><transition event="u" type="internal" target="a1"/><state id="a1"/></state>"#,
        "",
    );
    let t = translate("g", "n", &c, &script(&["t"])).unwrap();
    assert!(t.dsl.contains("on E_t / send E_u;"), "{}", t.dsl);
    assert!(t.dsl.contains("on E_u => internal S_a1;"), "{}", t.dsl);
}

#[test]
fn unsupported_content_is_refused() {
    for (body, why) in [
        (
            r#"<state id="a"><transition event="t" cond="x" target="a"/></state>"#,
            "cond",
        ),
        (
            r#"<state id="a"><transition event="t" cond="In('a') || In('b')" target="a"/></state>"#,
            "only In('id') and !In('id') terms",
        ),
        (r#"<state id="a"><onentry><log expr="1"/></onentry></state>"#, "<log>"),
        (r#"<datamodel/><state id="a"/>"#, "<datamodel>"),
        (
            r#"<state id="a"><onentry><send event="e" delay="1x"/></onentry></state>"#,
            "unit",
        ),
    ] {
        let err = parse_chart(&format!("{HEAD}>{body}</scxml>")).unwrap_err();
        assert!(err.contains(why), "{err}");
    }
    let c = chart(r#"<state id="a"><transition event="t" target="nowhere"/></state>"#, "");
    assert_eq!(
        translate("g", "n", &c, &script(&["t"])).unwrap_err(),
        "unknown target `nowhere`"
    );
}

#[test]
fn scripts_parse_and_ignore_legacy_semantics() {
    let s = parse_script(
        r#"{"initialConfiguration":["a"],"events":[{"event":{"name":"t"},"nextConfiguration":["b","c"]},
            {"after":100,"event":{"name":"u.v"},"nextConfiguration":[]}],
            "legacySemantics":{"initialConfiguration":["zzz"],"events":[]}}"#,
    )
    .unwrap();
    assert_eq!(s.initial, ["a"]);
    assert_eq!(s.steps.len(), 2);
    assert_eq!(s.steps[0].expected, ["b", "c"]);
    assert_eq!(s.steps[1].after, Some(100));
    assert_eq!(s.steps[1].event, "u.v");
    assert!(parse_script("{}").is_err());
}

#[test]
fn generated_case_has_driver_and_name_maps() {
    let case = SourceCase {
        group: "basic".into(),
        name: "basic1".into(),
        scxml: Ok(format!(
            r#"{HEAD}><state id="a.1"><transition event="t" target="b"/></state><state id="b"/></scxml>"#
        )),
        json: Ok(
            r#"{"initialConfiguration":["a.1"],"events":[{"event":{"name":"t"},"nextConfiguration":["b"]}]}"#.into(),
        ),
        skip: None,
    };
    let (module, text, translated) = case_module(&case);
    assert!(translated);
    assert_eq!(module, "case_basic__basic1");
    for needle in [
        "workflow T_basic_basic1 {",
        "impl T_basic_basic1Handlers for H {}",
        "\"t\" => ::core::option::Option::Some(T_basic_basic1Event::E_t),",
        "\"S_a_1\" => ::std::string::String::from(\"a.1\"),",
        "::conformance::drive(Sut(T_basic_basic1::new(())), &SCRIPT)",
        "::std::vec::Vec::new()",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in\n{text}");
    }
    let broken = SourceCase {
        scxml: Err("gone".into()),
        ..case
    };
    let (_, text, translated) = case_module(&broken);
    assert!(!translated);
    assert!(text.contains("untranslatable: gone"), "{text}");
    let all = generate("here", &[broken]);
    assert!(all.contains("pub const CASES: &[::conformance::Case] = &[\n    ::conformance::Case { group: \"basic\", name: \"basic1\", run: case_basic__basic1::run, round_trip: ::core::option::Option::None, xstate: ::core::option::Option::None },\n];"), "{all}");
    assert!(
        all.contains("pub const CORPUS: ::conformance::Corpus = ::conformance::Corpus::Read;"),
        "{all}"
    );
    let missing = generate_missing("/x/scion");
    assert!(
        missing.contains(
            "pub const CORPUS: ::conformance::Corpus = ::conformance::Corpus::Missing { dir: \"/x/scion\" };"
        ),
        "{missing}"
    );
    assert!(
        missing.contains("pub const CASES: &[::conformance::Case] = &[];"),
        "{missing}"
    );
    let unreadable = generate_unreadable("no `<group>/<name>.scxml` files in it");
    assert!(
        unreadable.contains("::conformance::Corpus::Unreadable { why: \"no `<group>/<name>.scxml` files in it\" }"),
        "{unreadable}"
    );
}

// ---------------------------------------------------------------------------
// The driver, against a scripted fake machine
// ---------------------------------------------------------------------------

use crate::{drive, Env, Sched, Script as StaticScript, ScriptStep as StaticStep, Sut};

/// A two-state fake: `go` moves a → b and asks for `tick` after 10ms and
/// `now` at once; `tick` moves b → c; `now` is logged.
#[derive(Default)]
struct Fake {
    state: &'static str,
    log: Vec<&'static str>,
    pending: Vec<Sched<&'static str>>,
}

impl Sut for Fake {
    type Event = &'static str;
    fn start(&mut self) {
        self.state = "a";
    }
    fn handle(&mut self, e: &&'static str) {
        self.log.push(e);
        match (self.state, *e) {
            ("a", "go") => {
                self.state = "b";
                self.pending.push(Sched::Send {
                    id: "x".into(),
                    event: "tick",
                    delay_ms: 10,
                });
                self.pending.push(Sched::Send {
                    id: "y".into(),
                    event: "late",
                    delay_ms: 20,
                });
                self.pending.push(Sched::Send {
                    id: "z".into(),
                    event: "now",
                    delay_ms: 0,
                });
            }
            ("b", "tick") => self.state = "c",
            (_, "stop") => self.pending.push(Sched::Cancel { id: "y".into() }),
            _ => {}
        }
    }
    fn active(&self) -> Vec<String> {
        vec![self.state.to_string()]
    }
    fn active_names(&self) -> Vec<String> {
        vec![format!("S_{}", self.state)]
    }
    fn event_name(event: &&'static str) -> String {
        format!("E_{event}")
    }
    fn take_scheduled(&mut self) -> Vec<Sched<&'static str>> {
        std::mem::take(&mut self.pending)
    }
    fn event(name: &str) -> Option<&'static str> {
        ["go", "tick", "stop", "noop"].into_iter().find(|n| *n == name)
    }
}

#[test]
fn driver_fires_timers_in_due_order_and_honours_cancel() {
    let mut env = Env::new(Fake::default());
    env.start().unwrap();
    env.deliver(&"go").unwrap();
    assert_eq!(
        env.sut().log,
        ["go", "now"],
        "a zero-delay send runs right after the macrostep"
    );
    env.deliver(&"stop").unwrap();
    env.advance(100).unwrap();
    assert_eq!(env.now(), 100);
    assert_eq!(
        env.sut().log,
        ["go", "now", "stop", "tick"],
        "the cancelled timer never fires"
    );
    assert_eq!(env.sut().state, "c");
}

#[test]
fn driver_reports_the_differing_step() {
    static OK: StaticScript = StaticScript {
        initial: &["a"],
        steps: &[
            StaticStep {
                after: None,
                event: "go",
                expected: &["b"],
            },
            StaticStep {
                after: Some(15),
                event: "noop",
                expected: &["c"],
            },
        ],
    };
    assert_eq!(drive(Fake::default(), &OK), Ok(()));
    static BAD: StaticScript = StaticScript {
        initial: &["a"],
        steps: &[StaticStep {
            after: Some(5),
            event: "go",
            expected: &["c", "b"],
        }],
    };
    assert_eq!(
        drive(Fake::default(), &BAD),
        Err("step 1 (event `go` after 5ms): expected [b, c], actual [b]".to_string())
    );
    static INIT: StaticScript = StaticScript {
        initial: &["z"],
        steps: &[],
    };
    assert_eq!(
        drive(Fake::default(), &INIT),
        Err("initial configuration: expected [z], actual [a]".to_string())
    );
}

#[test]
fn translates_the_chart_constructs() {
    let c = chart(
        r#"
        <state id="s">
            <initial><transition target="x1 y1"><raise event="opened"/></transition></initial>
            <transition event="done.state.p go" target="z"/>
            <transition cond="In('x1') &amp;&amp; In(&quot;y1&quot;)"><raise event="both"/></transition>
            <transition event="go" cond="!In('x0')" target="x0"/>
            <parallel id="p">
                <state id="x"><state id="x0"/><state id="x1"/></state>
                <state id="y" initial="y0"><state id="y0"/><state id="y1"/><final id="yf"/></state>
            </parallel>
            <state id="z"><transition event="done.state.y done.state.z0" target="s"/><state id="z0"/></state>
        </state>"#,
        "",
    );
    let t = translate("g", "n", &c, &script(&["go"])).unwrap();
    for line in [
        "initial S_x1, S_y1 / raise E_opened;",
        "on done(S_p) => S_z;",
        "on E_go => S_z;",
        "always if in(S_x1) && in(S_y1) / raise E_both;",
        "on E_go if !in(S_x0) => S_x0;",
        "on done(S_y) => S_s;",
    ] {
        assert!(t.dsl.contains(line), "{line} in\n{}", t.dsl);
    }
    assert!(
        !t.dsl.contains("S_z0)"),
        "an atomic state never completes: left out\n{}",
        t.dsl
    );
}

#[test]
fn chart_constructs_the_macro_would_refuse_are_untranslatable() {
    for (body, why) in [
        (
            r#"<state id="s" initial="a b"><state id="a"/><state id="b"/></state>"#,
            "`a` and `b` cannot be active together",
        ),
        (
            r#"<state id="s" initial="t"><state id="a"/></state><state id="t"/>"#,
            "initial `t` of `s` is not inside it",
        ),
        (
            r#"<state id="s"><history id="h"/><state id="a"><transition event="e" cond="In('h')" target="s"/></state></state>"#,
            "In('h') names a history state",
        ),
        (
            r#"<state id="s"><transition/></state>"#,
            "an eventless transition without target or actions",
        ),
        (
            r#"<state id="s"><transition event="done.invoke.x" target="s"/></state>"#,
            "only done.state.ID of a state is translated",
        ),
    ] {
        let c = chart(body, "");
        let err = translate("g", "n", &c, &script(&["e"])).unwrap_err();
        assert!(err.contains(why), "{err}");
    }
}

#[test]
fn the_differential_records_our_configurations_and_the_exports() {
    static STEPS: [StaticStep; 2] = [
        StaticStep {
            after: None,
            event: "go",
            expected: &[],
        },
        StaticStep {
            after: Some(15),
            event: "noop",
            expected: &[],
        },
    ];
    let script = StaticScript {
        initial: &[],
        steps: &STEPS,
    };
    let graph = workflow_runtime::Graph {
        name: "Fake",
        initial: 0,
        states: &[],
        events: &[],
        transitions: &[],
    };
    let d = crate::differential(Fake::default(), &script, &graph).unwrap();
    assert_eq!(d.steps, [(None, "E_go".to_string()), (Some(15), "E_noop".to_string())]);
    // After `go`: b; 15ms later `tick` (due at 10) has moved it to c before `noop`.
    assert_eq!(
        d.ours,
        [
            vec!["S_a".to_string()],
            vec!["S_b".to_string()],
            vec!["S_c".to_string()]
        ]
    );
    assert_eq!(d.xstate, graph.to_xstate());
    assert_eq!(d.scxml, graph.to_scxml());
}
