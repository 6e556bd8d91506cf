//! The inspector (`workflow::inspect`) against a store written by a real engine run: beside the
//! running engine, its answers checked against the engine's own view and against the journal
//! decoded with the workflow's types (`journal::decode`); and every error a user can meet.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use workflow::inspect::{DiagramFormat, Filter, InspectError, Inspector};
use workflow::journal::{self, Step};
use workflow::prelude::*;
use workflow::{Engine, InstanceStatus, SqliteStore, Store};

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Ctx {
    amount: u64,
    receipt: Option<String>,
}

workflow! {
    workflow Order {
        context Ctx;
        initial Charging;
        events { Ship }
        state Charging {
            invoke charge -> String {
                done => Packing / keep_receipt;
                error => Failed;
            }
        }
        state Packing {
            on Ship => Shipped;
            after 1h => Failed;
        }
        final Shipped;
        final Failed (failure);
    }
}

struct Bank;

impl OrderHandlers for Bank {
    async fn charge(&self, ctx: &Ctx, _: &ActivityCall) -> Result<String, ActivityError> {
        if ctx.amount == 1 {
            // Still charging when the test reads the store.
            std::future::pending::<()>().await;
        }
        tokio::time::sleep(Duration::from_millis(40)).await;
        match ctx.amount {
            0 => Err(ActivityError::non_retryable("nothing to charge")),
            amount => Ok(format!("r-{amount}")),
        }
    }
    fn keep_receipt(&self, ctx: &mut Ctx, receipt: &String) {
        assert_ne!(ctx.amount, 13, "unlucky amount");
        ctx.receipt = Some(receipt.clone());
    }
}

workflow! {
    /// Two quick activities in a row: three rows an instance.
    workflow Relay {
        initial First;
        state First {
            invoke hop -> () {
                done => Second;
                error => Second;
            }
        }
        state Second {
            invoke hop -> () {
                done => Relayed;
                error => Relayed;
            }
        }
        final Relayed;
    }
}

struct Runner;

impl RelayHandlers for Runner {
    async fn hop(&self, _: &(), _: &ActivityCall) -> Result<(), ActivityError> {
        Ok(())
    }
}

/// The engine's wall clock at build: a fixed instant, so times are known to within the test's
/// run time. (Real time, not tokio's paused clock: that would jump to `after 1h` while a commit
/// is on the store's writer thread.)
const EPOCH_MS: u64 = 1_800_000_000_000;

fn clock() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_millis(EPOCH_MS)
}

/// A store with: o-1 shipped, o-2 finished in `Failed` (its charge failed), o-3 and o-4
/// packing, o-5 cancelled, o-6 failed (an action panicked), p-1 charging (its charge still
/// running); started 10 ms apart.
async fn populated(path: &std::path::Path) -> (Engine<Order, Bank>, Arc<SqliteStore>) {
    let store = Arc::new(SqliteStore::open(path).unwrap());
    let engine = Engine::<Order, Bank>::builder(Bank)
        .store(store.clone())
        .clock(clock)
        .build();
    for (id, amount) in [("o-1", 5), ("o-2", 0), ("o-3", 7), ("o-4", 8), ("o-5", 9), ("o-6", 13)] {
        engine.start(id, Ctx { amount, receipt: None }).await.unwrap();
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    engine.send("o-1", OrderEvent::Ship).await.unwrap();
    engine.cancel("o-5").await.unwrap();
    engine
        .start(
            "p-1",
            Ctx {
                amount: 1,
                receipt: None,
            },
        )
        .await
        .unwrap();
    (engine, store)
}

fn path_of(path: &std::path::Path) -> &str {
    path.to_str().unwrap()
}

#[tokio::test]
async fn the_inspector_reads_a_running_engines_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("orders.db");
    let (engine, store) = populated(&path).await;
    // Beside the engine, which owns the file and goes on writing.
    let inspector = Inspector::open(path_of(&path)).await.unwrap();

    let workflows = inspector.workflows().await.unwrap();
    assert_eq!(workflows.len(), 1);
    let order = &workflows[0];
    assert_eq!(order.name, "Order");
    assert_eq!(
        (
            order.instances,
            order.running,
            order.finished,
            order.failed,
            order.cancelled
        ),
        (7, 3, 2, 1, 1)
    );
    assert_eq!(order.definitions.len(), 1);
    assert!(soon_after(order.definitions[0].first_seen, EPOCH_MS));
    assert_eq!(
        order.definitions[0].states,
        ["Charging", "Packing", "Shipped", "Failed"]
    );

    // Newest first, with totals and cursors.
    let all = inspector.list(&Filter::default()).await.unwrap();
    let ids: Vec<&str> = all.instances.iter().map(|i| i.id.as_str()).collect();
    assert_eq!(ids, ["p-1", "o-6", "o-5", "o-4", "o-3", "o-2", "o-1"]);
    assert_eq!((all.total, all.next), (7, None));
    let started: Vec<u64> = all.instances.iter().map(|i| i.started.unwrap()).collect();
    assert!(soon_after(started[6], EPOCH_MS), "{started:?}");
    assert!(started.windows(2).all(|w| w[0] > w[1]), "10 ms apart: {started:?}");
    let mut paged = Vec::new();
    let mut filter = Filter {
        limit: 4,
        ..Filter::default()
    };
    loop {
        let page = inspector.list(&filter).await.unwrap();
        assert_eq!(page.total, 7);
        paged.extend(page.instances.into_iter().map(|i| i.id));
        match page.next {
            Some(next) => filter.cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(paged, ids, "pages of 4 list each instance once, in order");

    let list = |filter: Filter| {
        let inspector = &inspector;
        async move {
            let page = inspector.list(&filter).await.unwrap();
            let ids: Vec<String> = page.instances.into_iter().map(|i| i.id).collect();
            (ids, page.total)
        }
    };
    let packing = list(Filter {
        state: Some("Packing".into()),
        ..Filter::default()
    })
    .await;
    // o-5 was cancelled where it stood.
    assert_eq!(
        packing,
        (vec!["o-5".to_string(), "o-4".to_string(), "o-3".to_string()], 3)
    );
    let packing_running = list(Filter {
        state: Some("Packing".into()),
        status: Some(InstanceStatus::Running),
        ..Filter::default()
    })
    .await;
    assert_eq!(packing_running, (vec!["o-4".to_string(), "o-3".to_string()], 2));
    let failed = list(Filter {
        status: Some(InstanceStatus::Failed),
        ..Filter::default()
    })
    .await;
    assert_eq!(failed, (vec!["o-6".to_string()], 1));
    let prefixed = list(Filter {
        id_prefix: Some("p-".into()),
        ..Filter::default()
    })
    .await;
    assert_eq!(prefixed, (vec!["p-1".to_string()], 1));
    let window = list(Filter {
        workflow: Some("Order".into()),
        started_after: Some(started[5]),
        started_before: Some(started[4] + 1),
        ..Filter::default()
    })
    .await;
    assert_eq!(window, (vec!["o-3".to_string(), "o-2".to_string()], 2));

    // The engine keeps writing while the inspector has the file open.
    engine.send("o-3", OrderEvent::Ship).await.unwrap();
    let shipped = list(Filter {
        state: Some("Shipped".into()),
        ..Filter::default()
    })
    .await;
    assert_eq!(shipped.1, 2);

    // show: the timeline against the journal decoded with the workflow's types.
    let shown = inspector.show("o-1", None).await.unwrap();
    let rows = store.journal("Order", "o-1").await.unwrap();
    assert_eq!(shown.timeline.len(), rows.len());
    for (entry, row) in shown.timeline.iter().zip(&rows) {
        let decoded = journal::decode::<Order>(row).unwrap();
        assert_eq!(entry.seq, decoded.seq);
        assert_eq!(entry.at, decoded.at);
        let (step, to) = match &decoded.step {
            Step::Started => ("started", decoded.active.last().cloned()),
            Step::Transition { to, .. } => ("transition", Some(to.clone())),
            other => panic!("unexpected step {other:?}"),
        };
        assert_eq!((entry.step.as_str(), entry.to.clone()), (step, to));
        assert_eq!(entry.status.map(|s| s.as_str()), Some(status_name(&decoded.status)));
    }
    let newest = journal::decode::<Order>(rows.last().unwrap()).unwrap();
    assert_eq!(shown.context, Some(serde_json::to_value(&newest.context).unwrap()));
    assert_eq!(shown.row.state.as_deref(), Some("Shipped"));
    assert_eq!(shown.row.status, Some(InstanceStatus::Finished));
    let charged = &shown.timeline[1];
    assert_eq!(charged.event.as_deref(), Some("ChargeDone"));
    assert_eq!(charged.payload, Some(serde_json::json!("r-5")));
    let activity = charged.activity.as_ref().unwrap();
    assert_eq!((activity.name.as_str(), activity.outcome.as_str()), ("charge", "done"));
    let took = activity.duration_ms.unwrap();
    assert!((40..2_000).contains(&took), "{took}");
    assert_eq!(shown.timeline[1].timers.len(), 1, "Packing's `after 1h`");
    let set_at = shown.timeline[1].timers[0].deadline - 3_600_000;
    assert!(soon_after(shown.timeline[1].at.unwrap(), set_at));

    let declined = inspector.show("o-2", Some("Order")).await.unwrap();
    assert_eq!(
        (declined.row.status, declined.row.state.as_deref()),
        (Some(InstanceStatus::Finished), Some("Failed")),
        "a failure final is finished, as the engine says"
    );
    let charge = declined.timeline[1].activity.as_ref().unwrap();
    assert_eq!(charge.outcome, "failed");
    assert_eq!(declined.timeline[1].event.as_deref(), Some("ChargeFailed"));
    let panicked = inspector.show("o-6", None).await.unwrap();
    assert_eq!(panicked.row.status, Some(InstanceStatus::Failed));
    assert!(
        panicked
            .reason
            .as_deref()
            .unwrap_or_default()
            .contains("unlucky amount"),
        "{panicked:?}"
    );
    assert_eq!(panicked.timeline.last().unwrap().step, "failed");
    let cancelled = inspector.show("o-5", None).await.unwrap();
    assert_eq!(cancelled.timeline.last().unwrap().step, "cancelled");
    assert_eq!(
        inspector.show("o-9", None).await.unwrap_err(),
        InspectError::UnknownInstance { id: "o-9".into() }
    );

    // stats over the whole run.
    let stats = inspector.stats("Order", EPOCH_MS).await.unwrap();
    assert_eq!(
        (stats.started, stats.finished, stats.failed, stats.cancelled),
        (7, 3, 1, 1)
    );
    let charge = stats.activities.iter().find(|a| a.activity == "charge").unwrap();
    assert_eq!(charge.count, 5, "o-1 to o-5; o-6's left no row, p-1's still runs");
    assert!(!stats.sampled, "a window of a few rows is read whole");
    assert!(
        40 <= charge.p50_ms && charge.p50_ms <= charge.p99_ms && charge.p99_ms < 2_000,
        "{charge:?}"
    );
    let in_state = |state: &str| -> u64 {
        stats
            .states
            .iter()
            .filter(|s| s.state.as_deref() == Some(state))
            .map(|s| s.count)
            .sum()
    };
    assert_eq!(
        (in_state("Packing"), in_state("Shipped"), in_state("Charging")),
        (2, 2, 2),
        "p-1 charging, o-6 failed there"
    );
    let later = inspector.stats("Order", EPOCH_MS + 1_000_000).await.unwrap();
    assert_eq!((later.started, later.finished, later.activities.len()), (0, 0, 0));

    // diagram: the engine's own counts, drawn.
    let diagram = inspector.diagram("Order", DiagramFormat::Mermaid).await.unwrap();
    let counts: Vec<(&str, u64, u64)> = diagram
        .counts
        .iter()
        .map(|c| (c.state.as_str(), c.instances, c.running))
        .collect();
    let packing_now = engine
        .list()
        .into_iter()
        .filter(|(_, status)| matches!(status, workflow::Status::Running(OrderState::Packing)))
        .count() as u64;
    assert_eq!(
        counts[1],
        ("Packing", 2, packing_now),
        "o-4 runs there, o-5 was cancelled there"
    );
    assert_eq!(packing_now, 1);
    assert!(diagram.text.contains("Packing: 2 instances\n"), "{}", diagram.text);
    assert!(diagram.text.contains("Shipped: 2 instances\n"), "{}", diagram.text);
    assert!(diagram
        .text
        .starts_with(&Order::graph().to_mermaid().lines().next().unwrap().to_string()));
    let dot = inspector.diagram("Order", DiagramFormat::Dot).await.unwrap();
    assert!(
        dot.text.contains("\"Packing\" [label=\"Packing\\n[2]\"];"),
        "{}",
        dot.text
    );
    assert_eq!(
        inspector.diagram("Nope", DiagramFormat::Dot).await.unwrap_err(),
        InspectError::UnknownWorkflow {
            workflow: "Nope".into()
        }
    );
    drop(engine);
}

/// Whether `t` is at or up to a minute after `start`.
fn soon_after(t: u64, start: u64) -> bool {
    (start..start + 60_000).contains(&t)
}

fn status_name(status: &journal::Status) -> &'static str {
    match status {
        journal::Status::Running => "running",
        journal::Status::Finished => "finished",
        journal::Status::Failed { .. } => "failed",
        _ => "cancelled",
    }
}

#[tokio::test]
async fn bad_stores_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.db");
    assert_eq!(
        Inspector::open(path_of(&missing)).await.unwrap_err(),
        InspectError::NoSuchFile {
            path: path_of(&missing).into()
        }
    );
    let text = dir.path().join("notes.txt");
    std::fs::write(
        &text,
        "not a database at all, just some text that is long enough to be a header",
    )
    .unwrap();
    assert!(matches!(
        Inspector::open(path_of(&text)).await.unwrap_err(),
        InspectError::NotAStore { .. }
    ));
    let other = dir.path().join("other.db");
    rusqlite::Connection::open(&other)
        .unwrap()
        .execute_batch("CREATE TABLE t (x)")
        .unwrap();
    let error = Inspector::open(path_of(&other)).await.unwrap_err();
    assert!(matches!(error, InspectError::NotAStore { .. }), "{error}");

    let newer = dir.path().join("newer.db");
    drop(SqliteStore::open(&newer).unwrap());
    let conn = rusqlite::Connection::open(&newer).unwrap();
    conn.execute("UPDATE meta SET value = 99 WHERE key = 'schema_version'", [])
        .unwrap();
    assert_eq!(
        Inspector::open(path_of(&newer)).await.unwrap_err(),
        InspectError::SchemaTooNew {
            found: 99,
            supported: 2
        }
    );
    conn.execute("UPDATE meta SET value = 1 WHERE key = 'schema_version'", [])
        .unwrap();
    assert_eq!(
        Inspector::open(path_of(&newer)).await.unwrap_err(),
        InspectError::SchemaTooOld { found: 1, supported: 2 }
    );
    assert!(matches!(
        Inspector::open("mysql://db/x").await.unwrap_err(),
        InspectError::BadLocation { .. }
    ));
    let cursor = Filter {
        cursor: Some("garbage".into()),
        ..Filter::default()
    };
    conn.execute("UPDATE meta SET value = 2 WHERE key = 'schema_version'", [])
        .unwrap();
    let inspector = Inspector::open(path_of(&newer)).await.unwrap();
    assert!(matches!(
        inspector.list(&cursor).await.unwrap_err(),
        InspectError::BadCursor { .. }
    ));
    // An empty store answers with nothing, not an error.
    assert_eq!(inspector.workflows().await.unwrap(), vec![]);
    assert_eq!(inspector.list(&Filter::default()).await.unwrap().total, 0);
}

/// Rows sealed by the AEAD codec: without it, the timeline says `sealed` and shows what the
/// plaintext summary holds; with it, everything reads.
#[cfg(feature = "encryption")]
#[tokio::test]
async fn sealed_rows_read_with_the_codec_and_are_reported_without_it() {
    use workflow::codec::{Aead, Codec, Keys};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sealed.db");
    let codec: Arc<dyn Codec> = Arc::new(Aead::new(Keys::new(1, [7; 32])).unwrap());
    let store = Arc::new(SqliteStore::open(&path).unwrap());
    let engine = Engine::<Order, Bank>::builder(Bank)
        .store(store)
        .codec(codec.clone())
        .build();
    engine
        .start(
            "s-1",
            Ctx {
                amount: 3,
                receipt: None,
            },
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert!(matches!(
        engine.status("s-1").await,
        Ok(workflow::Status::Running(OrderState::Packing))
    ));

    let inspector = Inspector::open(path_of(&path)).await.unwrap();
    let sealed = inspector.show("s-1", None).await.unwrap();
    assert_eq!(sealed.row.state.as_deref(), Some("Packing"), "the state is plaintext");
    assert_eq!(sealed.context, None);
    assert!(sealed
        .timeline
        .iter()
        .all(|e| e.step == "sealed" && e.to.is_some() && e.at.is_some()));
    assert!(
        sealed.timeline[0]
            .error
            .as_deref()
            .unwrap_or_default()
            .contains("codec"),
        "{sealed:?}"
    );

    let inspector = inspector.with_codec(codec);
    let open = inspector.show("s-1", None).await.unwrap();
    assert_eq!(open.context, Some(serde_json::json!({"amount": 3, "receipt": "r-3"})));
    assert_eq!(open.timeline[1].step, "transition");
    assert_eq!(open.timeline[1].payload, Some(serde_json::json!("r-3")));
    drop(engine);
}

/// The inspector takes no owner lock: opened first, it does not keep an engine from opening the
/// store; and a row damaged on disk is shown as unreadable, its neighbours as they are.
#[tokio::test]
async fn the_inspector_takes_no_lock_and_survives_a_damaged_row() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("orders.db");
    drop(SqliteStore::open(&path).unwrap());
    let inspector = Inspector::open(path_of(&path)).await.unwrap();
    let store = Arc::new(SqliteStore::open(&path).expect("the inspector holds no lock"));
    let engine = Engine::<Order, Bank>::builder(Bank).store(store).build();
    engine
        .start(
            "d-1",
            Ctx {
                amount: 2,
                receipt: None,
            },
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(inspector.list(&Filter::default()).await.unwrap().total, 1);

    // Row 2's data garbled behind the engine's back (its checksum no longer holds).
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute(
            "UPDATE journal SET data = x'7b7b7b' WHERE instance = 'd-1' AND seq = 2",
            [],
        )
        .unwrap();
    let shown = inspector.show("d-1", None).await.unwrap();
    let steps: Vec<&str> = shown.timeline.iter().map(|e| e.step.as_str()).collect();
    assert_eq!(steps, ["started", "unreadable"]);
    assert!(
        shown.timeline[1]
            .error
            .as_deref()
            .unwrap_or_default()
            .contains("checksum"),
        "{shown:?}"
    );
    assert_eq!(
        shown.timeline[1].to.as_deref(),
        Some("Packing"),
        "the summary still reads"
    );
    assert_eq!(shown.context, None);
    drop(engine);
}

/// A window of more rows than `stats` reads for durations: the counts stay exact, the
/// durations come from the newest `DURATION_ROWS` rows, and the answer says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_over_a_window_bigger_than_its_sample() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("relay.db");
    let store = Arc::new(SqliteStore::open(&path).unwrap());
    let engine = Engine::<Relay, Runner>::builder(Runner)
        .store(store)
        .clock(clock)
        .build();
    // Three rows each: 18,000 rows, all in the window, of which 12,000 end an activity.
    let instances = 6_000;
    let ids: Vec<String> = (0..instances).map(|i| format!("r-{i}")).collect();
    let started = engine.start_many(ids.iter().map(|id| (id.clone(), ()))).await;
    assert!(started.iter().all(Result::is_ok));
    for id in &ids {
        engine.wait(id).await.unwrap();
    }
    let inspector = Inspector::open(path.to_str().unwrap()).await.unwrap();
    let stats = inspector.stats("Relay", EPOCH_MS).await.unwrap();
    assert_eq!((stats.started, stats.finished), (instances, instances), "exact");
    assert!(stats.sampled);
    // Of the newest 10,000 rows, each that left `First` or `Second` ended an activity: two of
    // an instance's three rows, so at least 6,667 of them, and not all 12,000.
    let ends: u64 = stats.activities.iter().map(|a| a.count).sum();
    assert_eq!(workflow::inspect::DURATION_ROWS, 10_000);
    assert!((6_667..=10_000).contains(&ends), "{:?}", stats.activities);
    // A window after the run is empty.
    let after = inspector.stats("Relay", EPOCH_MS + 60_000_000).await.unwrap();
    assert!(!after.sampled && after.activities.is_empty() && after.finished == 0);
    engine.shutdown().await;
}
