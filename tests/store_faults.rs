//! Durable engines over a damaged or contested SQLite store: a second
//! process on the file, a killed owner, a row too large, a value that encodes
//! but would not decode, a lost `-wal`, a file deleted under the engine, a
//! damaged page, a backup taken while running, and rows edited by hand.
//!
//! Where a process must hold the file or die, the child is this very test
//! binary, re-executed to run the ignored test [`store_child`] with
//! [`CHILD_VAR`] set to what it should do (as tests/crash.rs does).

#![cfg(all(unix, feature = "sqlite"))]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use workflow::prelude::*;
use workflow::{Engine, EngineError, MemoryStore, SqliteOptions, SqliteStore, Status, Store, StoreError};

/// A reading and a note: a float that can go NaN, and a string that can be
/// large.
#[derive(Debug, Default, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Reading {
    pub value: f64,
    pub note: String,
}

workflow! {
    pub workflow Meter {
        context Reading;
        initial Open;
        events { Set { value: f64 }, Note { text: String }, Close }
        state Open {
            on Set / set;
            on Note / note;
            on Close => Closed;
        }
        final Closed;
    }
}

pub struct Desk;

impl MeterHandlers for Desk {
    fn set(&self, reading: &mut Reading, event: &Set) {
        reading.value = event.value;
    }
    fn note(&self, reading: &mut Reading, event: &Note) {
        reading.note = event.text.clone();
    }
}

fn engine(store: Arc<dyn Store>) -> Engine<Meter, Desk> {
    Engine::builder(Desk).store(store).build()
}

/// Set to `<what>:<directory>` in a child's environment.
const CHILD_VAR: &str = "WORKFLOW_STORE_CHILD";

/// The child process: `hold` opens the store, starts an instance and holds
/// the file; `fill` starts 100 instances with a checkpoint every 100 ms and
/// waits past it. Each prints `ready` and then waits to be killed.
#[test]
#[ignore = "a child process of the tests below"]
fn store_child() {
    let Some(var) = std::env::var_os(CHILD_VAR) else {
        return;
    };
    let var = var.to_string_lossy().into_owned();
    let (what, dir) = var.split_once(':').expect("what:dir");
    let path = Path::new(dir).join("journal.db");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        match what {
            "hold" => {
                let engine = engine(Arc::new(SqliteStore::open(&path).expect("open")));
                engine.start("held", Reading::default()).await.unwrap();
                println!("ready");
                std::future::pending::<()>().await;
            }
            "fill" => {
                let options = SqliteOptions::new().checkpoint_every(Duration::from_millis(100));
                let engine = engine(Arc::new(SqliteStore::open_with(&path, options).expect("open")));
                for i in 0..100 {
                    engine.start(format!("m-{i:03}"), Reading::default()).await.unwrap();
                    engine
                        .send(&format!("m-{i:03}"), MeterEvent::Set(Set { value: f64::from(i) }))
                        .await
                        .unwrap();
                }
                // Past the time bound: the rows are checkpointed.
                std::thread::sleep(Duration::from_millis(500));
                println!("ready");
                std::future::pending::<()>().await;
            }
            other => panic!("unknown child task {other}"),
        }
    });
}

/// A child process running [`store_child`], killed when dropped.
struct ChildProcess(Child);

impl ChildProcess {
    /// Starts the child and waits for its `ready`.
    fn ready(what: &str, dir: &Path) -> ChildProcess {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["store_child", "--exact", "--ignored", "--nocapture", "--test-threads=1"])
            .env(CHILD_VAR, format!("{what}:{}", dir.display()))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn the child");
        let stdout = child.stdout.take().unwrap();
        let mut child = ChildProcess(child);
        let ready = BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .any(|line| line.contains("ready"));
        assert!(ready, "the child exited before it was ready: {:?}", child.0.try_wait());
        child
    }

    /// SIGKILL: nothing of the child runs after it.
    fn kill(&mut self) {
        self.0.kill().unwrap();
        self.0.wait().unwrap();
    }
}

impl Drop for ChildProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn temp() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.db");
    (dir, path)
}

#[tokio::test]
async fn a_second_owner_is_refused_and_a_killed_owner_is_taken_over() {
    let (dir, path) = temp();
    let mut child = ChildProcess::ready("hold", dir.path());

    // Another process owns the file: refused, naming it.
    let refused = SqliteStore::open(&path).unwrap_err();
    let StoreError::InUse { file, pid, host } = &refused else {
        panic!("expected InUse, got {refused:?}");
    };
    assert_eq!(file, &path.display().to_string());
    assert_eq!(*pid, Some(child.0.id()));
    let host = host.clone().expect("the owner's host");
    assert_eq!(
        refused.to_string(),
        format!(
            "{} is in use by process {} on host `{host}`: one store at a time owns a file",
            path.display(),
            child.0.id()
        )
    );

    // Killed, it lets go: the next open takes the file over, with what the
    // dead owner committed.
    child.kill();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&path).unwrap());
    let engine = engine(store);
    assert_eq!(engine.recover().await.unwrap().resumed, 1);
    engine.send("held", MeterEvent::Close).await.unwrap();

    // A second store in this process is refused too, naming this process.
    match SqliteStore::open(&path) {
        Err(StoreError::InUse { pid, .. }) => assert_eq!(pid, Some(std::process::id())),
        other => panic!("expected InUse, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_event_fails_only_its_instance() {
    let (_dir, path) = temp();
    let options = SqliteOptions::new().max_row_bytes(64 << 10);
    let engine = engine(Arc::new(SqliteStore::open_with(&path, options).unwrap()));
    let ids: Vec<String> = (0..50).map(|i| format!("m-{i:02}")).collect();
    for id in &ids {
        engine.start(id.clone(), Reading::default()).await.unwrap();
    }
    // Every instance writes at once; one row is far over the maximum.
    let sends: Vec<_> = ids
        .iter()
        .map(|id| {
            let engine = engine.clone();
            let text = if id == "m-07" {
                "x".repeat(1 << 20)
            } else {
                format!("note of {id}")
            };
            let id = id.clone();
            tokio::spawn(async move { engine.send(&id, MeterEvent::Note(Note { text })).await })
        })
        .collect();
    for (id, send) in ids.iter().zip(sends) {
        let sent = send.await.unwrap();
        if id == "m-07" {
            assert!(
                matches!(&sent, Err(EngineError::Store(StoreError::RowTooLarge { instance, seq: 2, limit: 65536, .. })) if instance == "m-07"),
                "{sent:?}"
            );
        } else {
            assert_eq!(sent, Ok(()), "{id}");
        }
    }
    assert!(matches!(engine.status("m-07").await, Ok(Status::Failed { .. })));
    for id in ids.iter().filter(|id| *id != "m-07") {
        engine.send(id, MeterEvent::Close).await.unwrap();
        assert_eq!(engine.wait(id).await.unwrap(), MeterState::Closed);
        assert_eq!(engine.snapshot(id).await.unwrap().context.note, format!("note of {id}"));
    }
}

#[tokio::test]
async fn a_value_json_cannot_hold_is_refused_at_the_call_and_never_stored() {
    let store = Arc::new(MemoryStore::new());
    let engine = engine(store.clone());
    let nan = Reading {
        value: f64::NAN,
        note: String::new(),
    };
    let refused = engine.start("nan", nan).await;
    assert_eq!(
        refused,
        Err(EngineError::Store(StoreError::Unencodable {
            instance: "nan".into(),
            reason: "the float at `context.value` is NaN, which JSON cannot hold (it would read back as null)".into()
        }))
    );
    assert!(store.journal("Meter", "nan").await.unwrap().is_empty());

    // A step whose event (and then context) is infinite is refused; the
    // journal keeps the last step that reads back.
    engine.start("m-1", Reading::default()).await.unwrap();
    let refused = engine.send("m-1", MeterEvent::Set(Set { value: f64::INFINITY })).await;
    assert_eq!(
        refused,
        Err(EngineError::Store(StoreError::Unencodable {
            instance: "m-1".into(),
            reason: "the float at `step.event.Set.value` is inf, which JSON cannot hold (it would read back as null)"
                .into()
        }))
    );
    assert_eq!(store.journal("Meter", "m-1").await.unwrap().len(), 1);
    // Nothing stored is unreadable: another engine resumes the instance.
    let other = engine_over_memory(&store);
    let recovery = other.recover().await.unwrap();
    assert_eq!((recovery.resumed, recovery.errors), (1, vec![]));
    assert_eq!(other.snapshot("m-1").await.unwrap().context.value, 0.0);
}

fn engine_over_memory(store: &Arc<MemoryStore>) -> Engine<Meter, Desk> {
    engine(store.clone())
}

#[tokio::test]
async fn a_lost_wal_loses_nothing_checkpointed() {
    let (dir, path) = temp();
    let mut child = ChildProcess::ready("fill", dir.path());
    child.kill();
    // What a backup that copies the main file alone would keep.
    for suffix in ["-wal", "-shm"] {
        let mut side = path.as_os_str().to_owned();
        side.push(suffix);
        let _ = std::fs::remove_file(PathBuf::from(side));
    }
    let engine = engine(Arc::new(SqliteStore::open(&path).unwrap()));
    let recovery = engine.recover().await.unwrap();
    assert_eq!((recovery.resumed, recovery.errors), (100, vec![]));
    assert_eq!(engine.snapshot("m-099").await.unwrap().context.value, 99.0);
}

#[tokio::test]
async fn a_store_file_deleted_under_the_engine_fails_writes() {
    let (_dir, path) = temp();
    let engine = engine(Arc::new(SqliteStore::open(&path).unwrap()));
    engine.start("m-1", Reading::default()).await.unwrap();
    std::fs::remove_file(&path).unwrap();
    let gone = StoreError::FileReplaced {
        file: path.display().to_string(),
        reason: "was deleted".into(),
    };
    assert_eq!(
        engine.send("m-1", MeterEvent::Close).await,
        Err(EngineError::Store(gone.clone()))
    );
    assert_eq!(
        engine.start("m-2", Reading::default()).await,
        Err(EngineError::Store(gone.clone()))
    );
    assert_eq!(
        gone.to_string(),
        format!(
            "{} was deleted while the store had it open; writes are refused",
            path.display()
        )
    );
}

/// Overwrites the start of the page that holds `marker` with garbage.
fn damage_page_holding(path: &Path, marker: &[u8]) {
    let mut bytes = std::fs::read(path).unwrap();
    let at = bytes
        .windows(marker.len())
        .position(|w| w == marker)
        .expect("the marker is in the file");
    let page = at / 4096 * 4096;
    bytes[page..page + 16].fill(0xee);
    std::fs::write(path, bytes).unwrap();
}

#[tokio::test]
async fn recovery_on_a_damaged_file_resumes_every_instance_it_can_read() {
    let (_dir, path) = temp();
    {
        let engine = engine(Arc::new(SqliteStore::open(&path).unwrap()));
        for i in 0..40 {
            let note = format!("<{i:03}>{}", "x".repeat(1000));
            engine
                .start(format!("m-{i:03}"), Reading { value: 0.0, note })
                .await
                .unwrap();
        }
        engine.shutdown().await;
    }
    damage_page_holding(&path, b"<017>");

    let engine = engine(Arc::new(SqliteStore::open(&path).unwrap()));
    let recovery = engine.recover().await.unwrap();
    let lost: Vec<&str> = recovery.errors.iter().filter_map(|e| e.instance()).collect();
    assert_eq!(lost.len(), recovery.errors.len(), "every error names its instance");
    assert_eq!(recovery.resumed + lost.len(), 40);
    assert!(lost.contains(&"m-017"), "{lost:?}");
    assert!(lost.len() <= 5, "only the instances on the damaged page: {lost:?}");
    assert!(matches!(
        engine.status("m-017").await,
        Err(EngineError::Store(StoreError::Corrupt { .. }))
    ));
    let resumed = (0..40)
        .map(|i| format!("m-{i:03}"))
        .find(|id| !lost.contains(&id.as_str()))
        .unwrap();
    engine.send(&resumed, MeterEvent::Close).await.unwrap();
}

#[tokio::test]
async fn a_backup_taken_while_running_resumes_everything() {
    let (dir, path) = temp();
    let engine = engine(Arc::new(SqliteStore::open(&path).unwrap()));
    for i in 0..20 {
        engine.start(format!("m-{i:02}"), Reading::default()).await.unwrap();
    }
    let store = SqliteStore::open_read_only(&path).unwrap();
    let backup = dir.path().join("backup.db");
    store.backup_to(&backup).await.unwrap();
    let restored = Engine::<Meter, Desk>::builder(Desk)
        .store(Arc::new(SqliteStore::open(&backup).unwrap()))
        .build();
    let recovery = restored.recover().await.unwrap();
    assert_eq!((recovery.resumed, recovery.errors), (20, vec![]));
}

/// A store file with rows written by hand through SQLite.
fn edit(path: &Path, sql: &str) {
    rusqlite::Connection::open(path).unwrap().execute_batch(sql).unwrap();
}

#[tokio::test]
async fn rows_damaged_by_hand_are_reported_for_what_they_are() {
    let (_dir, path) = temp();
    {
        let engine = engine(Arc::new(SqliteStore::open(&path).unwrap()));
        for id in ["missing", "good", "bad-bytes", "overflow"] {
            engine.start(id, Reading::default()).await.unwrap();
            engine.send(id, MeterEvent::Set(Set { value: 1.0 })).await.unwrap();
        }
        engine.shutdown().await;
    }
    // The newest row of `missing` is lost; `bad-bytes` gets an id that is
    // not UTF-8; `overflow` a generation counter at the top of u64.
    let row2 = |id: &str| {
        rusqlite::Connection::open(&path).unwrap().query_row(
            "SELECT data FROM journal WHERE instance = ?1 AND seq = 2",
            [id],
            |r| r.get::<_, Vec<u8>>(0),
        )
    };
    let mut doc: serde_json::Value = serde_json::from_slice(&row2("overflow").unwrap()).unwrap();
    doc["generation"] = serde_json::Value::from(u64::MAX);
    let data = serde_json::to_vec(&doc).unwrap();
    edit(
        &path,
        &format!(
            "DELETE FROM journal WHERE instance = 'missing' AND seq = 2;
             UPDATE journal SET instance = CAST(x'6f2dff' AS TEXT) WHERE instance = 'bad-bytes';
             UPDATE instances SET instance = CAST(x'6f2dff' AS TEXT) WHERE instance = 'bad-bytes';
             UPDATE journal SET data = x'{}', checksum = {} WHERE instance = 'overflow' AND seq = 2;",
            data.iter().map(|b| format!("{b:02x}")).collect::<String>(),
            crc32fast::hash(&data)
        ),
    );

    let engine = engine(Arc::new(SqliteStore::open(&path).unwrap()));
    let mut recovery = engine.recover().await.unwrap();
    recovery.errors.sort_by_key(|e| e.to_string());
    assert_eq!(recovery.resumed, 1);
    let corrupt = |instance: &str, reason: &str| StoreError::Corrupt {
        instance: instance.into(),
        seq: 2,
        reason: reason.into(),
    };
    assert_eq!(
        recovery.errors,
        [
            corrupt(
                "missing",
                "its newest row is missing: its entry in table `instances` points to no row"
            ),
            corrupt("o-\\xff", "its id is not valid UTF-8 (shown with its bytes escaped)"),
            corrupt(
                "overflow",
                &format!(
                    "its generation counter {} is past 2^63, more than an instance counts",
                    u64::MAX
                )
            ),
        ]
    );
    // Not resumed under another id.
    assert_eq!(engine.list().len(), 1);
    assert!(matches!(
        engine.status("o-\u{fffd}").await,
        Err(EngineError::UnknownInstance(_))
    ));
    engine.send("good", MeterEvent::Close).await.unwrap();
}
