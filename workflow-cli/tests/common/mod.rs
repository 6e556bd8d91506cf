//! What the inspection tests of both stores share: the `Order` workflow and an engine run that
//! leaves instances in every status, the `workflow` binary run as a user runs it, and the check
//! of every subcommand's output against the store's journal.

#![allow(dead_code)] // each test binary uses part of it

use std::process::{Command, Output};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use workflow::journal::{self, Step};
use workflow::prelude::*;
use workflow::{Engine, Store};

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Ctx {
    amount: u64,
    receipt: Option<String>,
}

workflow! {
    pub workflow Order {
        context Ctx;
        initial Charging;
        events { Ship }
        state Charging {
            invoke charge -> String {
                done => Packing / keep_receipt;
                error => Declined;
            }
        }
        state Packing { on Ship => Shipped; }
        final Shipped;
        final Declined (failure);
    }
}

pub struct Bank;

impl OrderHandlers for Bank {
    async fn charge(&self, ctx: &Ctx, _: &ActivityCall) -> Result<String, ActivityError> {
        tokio::time::sleep(Duration::from_millis(20)).await;
        match ctx.amount {
            0 => Err(ActivityError::non_retryable("nothing to charge")),
            amount => Ok(format!("r-{amount}")),
        }
    }
    fn keep_receipt(&self, ctx: &mut Ctx, receipt: &String) {
        ctx.receipt = Some(receipt.clone());
    }
}

pub fn workflow(args: &[&str]) -> Output {
    workflow_with(args, None)
}

pub fn workflow_with(args: &[&str], store_env: Option<&str>) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_workflow"));
    command.args(args).env_remove("WORKFLOW_STORE");
    if let Some(store) = store_env {
        command.env("WORKFLOW_STORE", store);
    }
    command.output().unwrap_or_else(|e| panic!("running workflow: {e}"))
}

pub fn stdout(out: &Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn json(args: &[&str]) -> Value {
    let text = stdout(&workflow(args));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// One error line and the exit code.
pub fn failure(out: &Output) -> (Option<i32>, String) {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.stdout.is_empty(),
        "nothing on stdout: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    (out.status.code(), stderr)
}

/// Four orders on `store`: o-1 shipped, o-2 declined, o-3 packing, o-4 cancelled while packing.
pub async fn run_orders<S: Store + 'static>(store: Arc<S>) -> Engine<Order, Bank> {
    let engine = Engine::<Order, Bank>::builder(Bank).store(store).build();
    for (id, amount) in [("o-1", 5), ("o-2", 0), ("o-3", 7), ("o-4", 8)] {
        engine.start(id, Ctx { amount, receipt: None }).await.unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    tokio::time::sleep(Duration::from_millis(150)).await;
    engine.send("o-1", OrderEvent::Ship).await.unwrap();
    engine.cancel("o-4").await.unwrap();
    engine
}

/// Every subcommand against the store at `p` that [`run_orders`] wrote through `store`: the
/// tables, the JSON against the journal, and one clear line for an unknown id or workflow.
pub async fn every_subcommand<S: Store>(store: &S, p: &str) {
    // workflows
    let table = stdout(&workflow(&["workflows", "--store", p]));
    let lines: Vec<&str> = table.lines().collect();
    assert!(
        lines[0].starts_with("WORKFLOW  INSTANCES  RUNNING  FINISHED  FAILED  CANCELLED"),
        "{table}"
    );
    assert!(
        lines[1].starts_with("Order     4          1        2         0       1"),
        "{table}"
    );
    let listed = json(&["workflows", "--store", p, "--json"]);
    assert_eq!(
        listed[0]["definitions"][0]["states"],
        serde_json::json!(["Charging", "Packing", "Shipped", "Declined"])
    );

    // list: the table, and the JSON against each instance's newest row.
    let table = stdout(&workflow(&["list", "--store", p]));
    let ids: Vec<&str> = table
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().nth(1))
        .take(4)
        .collect();
    assert_eq!(ids, ["o-4", "o-3", "o-2", "o-1"], "{table}");
    assert!(table.ends_with("4 of 4\n"), "{table}");
    let page = json(&["list", "--store", p, "--json"]);
    assert_eq!(page["total"], 4);
    for instance in page["instances"].as_array().unwrap() {
        let id = instance["id"].as_str().unwrap();
        let rows = store.journal("Order", id).await.unwrap();
        let newest = journal::decode::<Order>(rows.last().unwrap()).unwrap();
        assert_eq!(instance["rows"], rows.len());
        assert_eq!(instance["state"], Value::from(newest.active.last().unwrap().as_str()));
        let status = match newest.status {
            journal::Status::Running => "running",
            journal::Status::Finished => "finished",
            journal::Status::Failed { .. } => "failed",
            _ => "cancelled",
        };
        assert_eq!(instance["status"], status, "{id}");
        assert_eq!(instance["updated"], Value::from(newest.at.unwrap()));
    }
    let running = json(&["list", "--store", p, "--json", "--status", "running"]);
    assert_eq!(running["instances"][0]["id"], "o-3");
    assert_eq!(running["total"], 1);
    let packing = json(&[
        "list",
        "--store",
        p,
        "--json",
        "--state",
        "Packing",
        "--workflow",
        "Order",
    ]);
    assert_eq!(packing["total"], 2, "o-3 runs there, o-4 was cancelled there");
    let first = json(&["list", "--store", p, "--json", "--limit", "3"]);
    let cursor = first["next"].as_str().unwrap();
    let rest = json(&["list", "--store", p, "--json", "--limit", "3", "--cursor", cursor]);
    assert_eq!(rest["instances"][0]["id"], "o-1");
    assert_eq!(rest["next"], Value::Null);
    let recent = json(&[
        "list",
        "--store",
        p,
        "--json",
        "--started-after",
        "1h",
        "--id-prefix",
        "o-2",
    ]);
    assert_eq!(recent["total"], 1);

    // show: the timeline against the journal.
    let shown = json(&["show", "o-1", "--store", p, "--json"]);
    let rows = store.journal("Order", "o-1").await.unwrap();
    let timeline = shown["timeline"].as_array().unwrap();
    assert_eq!(timeline.len(), rows.len());
    for (entry, row) in timeline.iter().zip(&rows) {
        let decoded = journal::decode::<Order>(row).unwrap();
        assert_eq!(entry["seq"], decoded.seq);
        assert_eq!(entry["at"], Value::from(decoded.at.unwrap()));
        match decoded.step {
            Step::Started => assert_eq!(entry["step"], "started"),
            Step::Transition { from, to, .. } => {
                assert_eq!(
                    (&entry["step"], &entry["from"], &entry["to"]),
                    (&"transition".into(), &from.into(), &to.into())
                );
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(entry["to"], Value::from(decoded.active.last().unwrap().as_str()));
    }
    let newest = journal::decode::<Order>(rows.last().unwrap()).unwrap();
    assert_eq!(shown["context"], serde_json::to_value(&newest.context).unwrap());
    assert_eq!(timeline[1]["event"], "ChargeDone");
    assert_eq!(timeline[1]["payload"], "r-5");
    assert_eq!(timeline[1]["activity"]["outcome"], "done");
    let text = stdout(&workflow(&["show", "o-2", "--store", p]));
    assert!(
        text.starts_with("Order o-2\n  state    Declined\n  status   finished\n"),
        "{text}"
    );
    assert!(
        text.contains("ChargeFailed") && text.contains("charge failed after"),
        "{text}"
    );

    // stats
    let stats = json(&["stats", "Order", "--store", p, "--json"]);
    let order = &stats[0];
    assert_eq!(
        (&order["started"], &order["finished"], &order["cancelled"]),
        (&4.into(), &2.into(), &1.into())
    );
    assert_eq!(order["activities"][0]["activity"], "charge");
    assert_eq!(order["activities"][0]["count"], 4);
    assert!(order["activities"][0]["p50_ms"].as_u64().unwrap() >= 20);
    let text = stdout(&workflow(&["stats", "--store", p]));
    assert!(text.starts_with("Order: since "), "{text}");
    assert!(text.contains("4 started, 2 finished, 0 failed, 1 cancelled"), "{text}");

    // diagram
    let mermaid = stdout(&workflow(&["diagram", "Order", "--store", p]));
    assert!(mermaid.starts_with("stateDiagram-v2\n"), "{mermaid}");
    assert!(mermaid.contains("    Packing: 2 instances\n"), "{mermaid}");
    let dot = stdout(&workflow(&["diagram", "Order", "--format", "dot", "--store", p]));
    assert!(
        dot.contains("\"Shipped\" [label=\"Shipped\\n[1]\", shape=doublecircle];"),
        "{dot}"
    );
    let counts = json(&["diagram", "Order", "--store", p, "--json"]);
    assert_eq!(
        counts["counts"][1],
        serde_json::json!({"state": "Packing", "instances": 2, "running": 1})
    );

    // The store from the environment.
    let table = stdout(&workflow_with(&["list", "--id-prefix", "o-3"], Some(p)));
    assert!(table.ends_with("1 of 1\n"), "{table}");

    // An unknown id, an unknown workflow.
    let (code, line) = failure(&workflow(&["show", "o-9", "--store", p]));
    assert_eq!(
        (code, line.as_str()),
        (Some(1), "error: no instance `o-9` in the store\n")
    );
    let (code, line) = failure(&workflow(&["diagram", "Nope", "--store", p]));
    assert_eq!(
        (code, line.as_str()),
        (Some(1), "error: no workflow `Nope` in the store\n")
    );
    let (code, line) = failure(&workflow(&["list", "--store", p, "--started-after", "yesterday"]));
    assert_eq!(
        (code, line.as_str()),
        (
            Some(1),
            "error: `yesterday` is not a time (ms since the Unix epoch, `YYYY-MM-DDTHH:MM[:SS]` in UTC, or an age such as 2h)\n"
        )
    );
}
