//! `workflow show` on calls that took several attempts: each attempt on its own line, indented
//! under its outcome's row, and in `--json` as the journal holds them.

use std::sync::Arc;
use std::time::Duration;

use common::{json, stdout, workflow};
use serde::{Deserialize, Serialize};
use workflow::inspect::{format_micros, format_time};
use workflow::journal;
use workflow::prelude::*;
use workflow::{Config, Engine, SqliteStore, Store};

mod common;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    mode: String,
}

workflow! {
    workflow Payment {
        context Plan;
        initial Charging;
        state Charging {
            invoke charge -> String {
                retry 2 backoff 10ms..20ms;
                timeout 40ms;
                done => Paid;
                error => Declined;
            }
        }
        final Paid;
        final Declined (failure);
    }
}

struct Bank;

impl PaymentHandlers for Bank {
    async fn charge(&self, plan: &Plan, call: &ActivityCall) -> Result<String, ActivityError> {
        match (plan.mode.as_str(), call.attempt) {
            ("flaky", 1 | 2) => Err(ActivityError::new("card service busy")),
            ("slow", _) => {
                tokio::time::sleep(Duration::from_secs(5)).await;
                Ok("late".into())
            }
            _ => Ok(format!("receipt {}", call.attempt)),
        }
    }
}

/// The lines `show` printed under the row of `seq`: its attempts.
fn attempt_lines(text: &str, seq: u64) -> Vec<Vec<String>> {
    let mut lines = text
        .lines()
        .skip_while(|line| !line.starts_with(&format!("{seq}  ")))
        .skip(1);
    let mut found = Vec::new();
    while let Some(line) = lines.next().filter(|line| line.starts_with("     attempt ")) {
        found.push(
            line.split("  ")
                .map(str::trim)
                .filter(|cell| !cell.is_empty())
                .map(str::to_string)
                .collect(),
        );
    }
    found
}

#[tokio::test]
async fn show_prints_each_attempt_under_its_outcome() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("payments.db");
    let store = Arc::new(SqliteStore::open(&path).unwrap());
    let engine = Engine::<Payment, Bank>::builder(Bank)
        .store(store.clone())
        .config(Config {
            jitter: 0.0,
            ..Config::default()
        })
        .build();
    for mode in ["ok", "flaky", "slow"] {
        engine.start(mode, Plan { mode: mode.into() }).await.unwrap();
    }
    for mode in ["ok", "flaky", "slow"] {
        engine.wait(mode).await.unwrap();
    }
    let p = path.to_str().unwrap();

    for (id, outcomes) in [
        (
            "flaky",
            ["failed: card service busy", "failed: card service busy", "ok"]
                .map(String::from)
                .to_vec(),
        ),
        (
            "slow",
            (1..=3)
                .map(|n| format!("timed out: attempt {n} of `charge` timed out after 40ms"))
                .collect(),
        ),
    ] {
        let rows = store.journal("Payment", id).await.unwrap();
        let outcome = journal::decode::<Payment>(&rows[1]).unwrap();
        assert_eq!(outcome.attempts.len(), 3, "{id}");

        let text = stdout(&workflow(&["show", id, "--store", p]));
        let expected: Vec<Vec<String>> = outcome
            .attempts
            .iter()
            .zip(&outcomes)
            .map(|(a, ended)| {
                vec![
                    format!("attempt {}", a.attempt),
                    format_time(a.at),
                    format_micros(a.duration_us),
                    ended.to_string(),
                ]
            })
            .collect();
        assert_eq!(attempt_lines(&text, 2), expected, "{text}");
        assert_eq!(attempt_lines(&text, 1), Vec::<Vec<String>>::new(), "{text}");

        let shown = json(&["show", id, "--store", p, "--json"]);
        assert_eq!(
            shown["timeline"][1]["attempts"],
            serde_json::to_value(&outcome.attempts).unwrap(),
            "{shown}"
        );
    }
    let flaky = json(&["show", "flaky", "--store", p, "--json"]);
    assert_eq!(flaky["timeline"][1]["attempts"][0]["error_kind"], "failed", "{flaky}");

    // A first attempt that succeeded: no attempt lines, an empty list.
    let text = stdout(&workflow(&["show", "ok", "--store", p]));
    assert!(!text.contains("attempt "), "{text}");
    let ok = json(&["show", "ok", "--store", p, "--json"]);
    assert_eq!(ok["timeline"][1]["attempts"], serde_json::json!([]));
    drop(engine);
}
