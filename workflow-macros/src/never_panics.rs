//! The expansion never panics: thousands of random and mutated token streams
//! go through `expand`, which must return tokens (an expansion or
//! `compile_error!`s) every time.

use proc_macro2::TokenStream;
use proptest::prelude::*;

use crate::expand;

/// A workflow using every construct, the seed of the mutations.
const VALID: &str = r#"
    /// Docs.
    #[allow(dead_code)]
    pub workflow Order {
        context Ctx;
        initial Start;
        events { Submit { id: u64, amount: u64 }, Ready, Cancel, Ping }
        state Start { on Submit if ok => Charging / save, count; on Ping / count; }
        state Charging {
            entry hello; exit bye;
            invoke charge -> Receipt { retry 3 backoff 100ms..5s; timeout 10s; resource payments; expected 200ms; done => Shipping / keep; error => Cancelled; }
            on Cancel => Cancelled;
        }
        #[allow(dead_end)]
        state Shipping { on Ready => Done; after 48h => Escalated; compensate undo; }
        final Done;
        final Cancelled;
        final Escalated (failure);
    }
"#;

/// The seed with a raw identifier at every identifier position: the
/// workflow, the context type, states, events, fields, guards, actions,
/// activities, resources, compensations, `send` and `cancel` ids, history
/// states, parallel regions, `in(..)` conditions, `done(..)`, initial states
/// and their actions.
const VALID_RAW: &str = r#"
    pub workflow r#Order {
        context r#type;
        initial r#loop;
        events { r#match { r#fn: u64 }, r#loop, r#Cancel, r#in }
        state r#loop { on r#match if r#if => r#async / r#struct, r#impl; on r#loop / r#impl; after 5s => r#async; }
        state r#async {
            entry r#enum; exit r#enum;
            invoke r#static -> u8 { retry 3 backoff 100ms..5s; timeout 10s; resource r#mut; expected 200ms; done => r#await / r#use; error => r#dyn / r#mod; }
            on r#Cancel => r#dyn;
            compensate r#return;
        }
        state r#await {
            initial r#as, r#else / r#yield;
            history deep r#while => r#const;
            parallel r#const {
                state r#ref { state r#as { on r#in => r#for / raise r#Cancel, send r#in after 1s as r#where, cancel r#where; } final r#for; }
                state r#box { final r#else; }
                on done => r#true;
            }
            state r#true { always if in(r#as) && !in(r#else) && r#unsafe => r#final; on done(r#const) / r#yield; always => r#dyn; }
        }
        final r#final;
        final r#dyn (failure);
    }
"#;

/// Tokens the random streams are made of: the DSL's words and punctuation,
/// names, literals good and bad.
const WORDS: &[&str] = &[
    "workflow",
    "pub",
    "context",
    "initial",
    "events",
    "state",
    "final",
    "on",
    "if",
    "entry",
    "exit",
    "invoke",
    "retry",
    "backoff",
    "timeout",
    "resource",
    "expected",
    "done",
    "error",
    "after",
    "compensate",
    "failure",
    "always",
    "internal",
    "parallel",
    "history",
    "in",
    "!",
    "&&",
    "Start",
    "Done",
    "Go",
    "x",
    "y",
    "u8",
    "()",
    "=>",
    "->",
    "/",
    ";",
    ",",
    ":",
    "..",
    "{",
    "}",
    "(",
    ")",
    "#",
    "[allow(dead_end)]",
    "3",
    "0",
    "10ms",
    "5s",
    "2h",
    "7d",
    "10x",
    "1.5s",
    "99999999999999999999d",
    "\"text\"",
    "'a",
    "Self",
    "r#match",
    "r#loop",
    "r#Start",
    "r#type",
    "r#done",
];

fn expand_str(text: &str) {
    // Unbalanced delimiters cannot reach a proc macro: rustc rejects them first.
    if let Ok(tokens) = text.parse::<TokenStream>() {
        let _ = expand(tokens);
    }
}

fn tokens_of(seed: &str) -> Vec<String> {
    seed.split_whitespace().map(str::to_string).collect()
}

#[derive(Debug, Clone)]
enum Mutation {
    Delete(usize),
    Insert(usize, usize),
    Replace(usize, usize),
    Swap(usize, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        any::<usize>().prop_map(Mutation::Delete),
        (any::<usize>(), 0..WORDS.len()).prop_map(|(i, w)| Mutation::Insert(i, w)),
        (any::<usize>(), 0..WORDS.len()).prop_map(|(i, w)| Mutation::Replace(i, w)),
        (any::<usize>(), any::<usize>()).prop_map(|(i, j)| Mutation::Swap(i, j)),
    ]
}

fn apply(tokens: &mut Vec<String>, m: &Mutation) {
    if tokens.is_empty() {
        return;
    }
    let n = tokens.len();
    match *m {
        Mutation::Delete(i) => {
            tokens.remove(i % n);
        }
        Mutation::Insert(i, w) => tokens.insert(i % (n + 1), WORDS[w].to_string()),
        Mutation::Replace(i, w) => tokens[i % n] = WORDS[w].to_string(),
        Mutation::Swap(i, j) => tokens.swap(i % n, j % n),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn mutated_workflows_never_panic(raw in any::<bool>(), mutations in prop::collection::vec(mutation(), 1..6)) {
        let mut tokens = tokens_of(if raw { VALID_RAW } else { VALID });
        for m in &mutations {
            apply(&mut tokens, m);
        }
        expand_str(&tokens.join(" "));
    }

    #[test]
    fn random_streams_never_panic(words in prop::collection::vec(0..WORDS.len(), 0..60)) {
        let body: Vec<&str> = words.iter().map(|&w| WORDS[w]).collect();
        expand_str(&body.join(" "));
        expand_str(&format!("workflow W {{ {} }}", body.join(" ")));
    }
}

#[test]
fn the_seeds_expand_without_errors() {
    for seed in [VALID, VALID_RAW] {
        let out = expand(seed.parse().unwrap()).to_string();
        assert!(!out.contains("compile_error"), "{out}");
    }
}

/// Names derived from raw identifiers drop the `r#`; names as text are the
/// bare words.
#[test]
fn raw_identifiers_derive_bare_names() {
    let out = expand(VALID_RAW.parse().unwrap()).to_string();
    for derived in [
        "StaticDone",
        "StaticFailed",
        "loopAfter5s",
        "OrderState",
        "OrderHandlers",
    ] {
        assert!(out.contains(derived), "{derived} missing");
    }
    assert!(!out.contains("R#"), "a derived name kept `r#`");
    assert!(
        out.contains("Self :: r#loop => \"loop\""),
        "the state's name is the bare word"
    );
}
