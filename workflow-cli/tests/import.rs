//! `workflow import` run as a user runs it: its output is the committed block, which this test
//! compiles and drives.

use std::process::Command;

mod turnstile {
    use workflow::prelude::*;
    include!("expected/turnstile.rs");
}

use turnstile::{Turnstile, TurnstileEvent, TurnstileHandlers, TurnstileState};

fn workflow(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_workflow"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap_or_else(|e| panic!("running workflow: {e}"))
}

#[test]
fn import_prints_the_block_that_compiles() {
    let out = workflow(&["import", "tests/charts/turnstile.json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let expected = include_str!("expected/turnstile.rs");
    assert_eq!(String::from_utf8_lossy(&out.stdout), expected);

    // The block the command printed is the machine the chart draws.
    struct Coins;
    impl TurnstileHandlers for Coins {
        fn valid_coin(&self, _: &(), _: &turnstile::Coin) -> bool {
            true
        }
        fn lock(&self, _: &mut ()) {}
        fn reject_coin(&self, _: &mut (), _: &turnstile::Coin) {}
        fn beep(&self, _: &mut (), _: &turnstile::Push) {}
        fn refund(&self, _: &mut (), _: &turnstile::Coin) {}
    }
    let mut t = Turnstile::default();
    t.start(&Coins);
    assert_eq!(t.state(), TurnstileState::Locked);
    t.handle(&TurnstileEvent::Coin, &Coins).unwrap();
    assert_eq!(t.state(), TurnstileState::Unlocked);
    t.handle(&TurnstileEvent::UnlockedAfter10s, &Coins).unwrap();
    assert_eq!(t.state(), TurnstileState::Locked);
}

#[test]
fn import_names_and_visibility_are_options() {
    let out = workflow(&["import", "tests/charts/turnstile.json", "--name", "Gate", "--vis", ""]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("workflow! {\n    workflow Gate {\n"), "{text}");
}

#[test]
fn import_errors_name_file_line_and_column() {
    let dir = std::env::temp_dir().join(format!("workflow-cli-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let chart = dir.join("bad.scxml");
    std::fs::write(
        &chart,
        "<scxml xmlns=\"http://www.w3.org/2005/07/scxml\">\n  <state id=\"A\">\n    <transition event=\"Go\" target=\"B\"/>\n  </state>\n</scxml>\n",
    )
    .unwrap();
    let out = workflow(&["import", chart.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!(
            "error: {}:3:5: <transition> in state `A`: unknown target `B` (did you mean `A`?)\n",
            chart.display()
        )
    );
    let usage = workflow(&["import"]);
    assert_eq!(usage.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&usage.stderr).contains("Usage: workflow import"));
    let _ = std::fs::remove_dir_all(&dir);
}
