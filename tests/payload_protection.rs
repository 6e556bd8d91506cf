//! Payload protection (the `encryption` feature): a durable engine with a
//! codec keeps no secret in clear in its store, its traces or its snapshot
//! history; a row tampered with, swapped between instances, reordered or
//! replayed is refused, naming instance and row, while the other instances
//! go on; keys rotate across a restart; a wrong or missing key is a clear
//! error at `recover()` that overwrites nothing. Panics in user code stay
//! out of stderr and go to the history.
#![cfg(feature = "encryption")]

use std::path::Path;
use std::sync::{Arc, Mutex, Once};
use std::time::Duration;

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record as SpanRecord};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::Layer;
use workflow::codec::{Aead, Codec, Header, Hmac, Keys};
use workflow::journal;
use workflow::prelude::*;
use workflow::{Engine, MemoryStore, RecordKind, Row, Secret, SqliteStore, Status, Store, StoreError};

const PASSWORD: &str = "hunter2-correct-horse";
const CARD: &str = "4111-1111-1111-1111";
const TOKEN: &str = "tok_live_5f3a9c";
const USER: &str = "ada-lovelace-1815";
const PANIC: &str = "the vault said swordfish";

/// The customer's account: the card is a secret.
#[derive(Debug, Default, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Account {
    pub user: String,
    pub card: Secret<String>,
    pub token: Option<Secret<String>>,
}

workflow! {
    pub workflow Checkout {
        context Account;
        initial LoggedOut;
        events { Login { user: String, #[secret] password: String }, Pay, Explode }
        state LoggedOut { on Login => Ready / log_in; }
        state Ready {
            on Pay => Charging;
            on Explode => Ready / explode;
        }
        state Charging {
            invoke tokenize -> Secret<String> { done => Paid / keep_token; error => Declined; }
        }
        state Paid { on Pay => Done; }
        final Done;
        final Declined (failure);
    }
}

struct Bank;

impl CheckoutHandlers for Bank {
    fn log_in(&self, account: &mut Account, login: &Login) {
        account.user = login.user.clone();
        // The password reaches the context only through the card, secret too.
        account.card = Secret::new(format!("{CARD} ({})", login.password));
    }
    fn explode(&self, _: &mut Account, _: &Explode) {
        panic!("{PANIC}");
    }
    fn keep_token(&self, account: &mut Account, token: &Secret<String>) {
        account.token = Some(token.clone());
    }
    async fn tokenize(&self, _: &Account, _: &ActivityCall) -> Result<Secret<String>, ActivityError> {
        Ok(Secret::new(TOKEN.to_string()))
    }
}

fn login() -> CheckoutEvent {
    Login {
        user: USER.into(),
        password: PASSWORD.into(),
    }
    .into()
}

fn keys(id: u32) -> Keys {
    Keys::new(id, [id as u8; 32])
}

fn aead(keys: Keys) -> Arc<dyn Codec> {
    Arc::new(Aead::new(keys).unwrap())
}

fn engine(store: Arc<dyn Store>, codec: Option<Arc<dyn Codec>>) -> Engine<Checkout, Bank> {
    let builder = Engine::builder(Bank).store(store);
    match codec {
        Some(codec) => builder.codec(codec).build(),
        None => builder.build(),
    }
}

/// Waits, in real time (SQLite commits on its own thread), until `id`
/// stands in `state`.
async fn until_in(engine: &Engine<Checkout, Bank>, id: &str, state: CheckoutState) {
    for _ in 0..10_000 {
        if engine.state(id).await.ok() == Some(state) {
            return;
        }
        tokio::task::yield_now().await;
        std::thread::sleep(Duration::from_micros(100));
    }
    panic!("{id} did not reach {state:?}");
}

/// Every byte of every file in `dir` (the database, its WAL).
fn files(dir: &Path) -> Vec<u8> {
    let mut bytes = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        bytes.extend(std::fs::read(entry.unwrap().path()).unwrap_or_default());
    }
    bytes
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle.as_bytes())
}

/// Every span field and event field the engine emits, as text.
#[derive(Clone, Default)]
struct Traces(Arc<Mutex<String>>);

struct Text<'a>(&'a mut String);

impl Visit for Text<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.push_str(&format!("{}={value:?} ", field.name()));
    }
}

impl<S: Subscriber> Layer<S> for Traces {
    fn on_new_span(&self, attrs: &Attributes<'_>, _: &Id, _: Context<'_, S>) {
        attrs.record(&mut Text(&mut self.0.lock().unwrap()));
    }
    fn on_record(&self, _: &Id, values: &SpanRecord<'_>, _: Context<'_, S>) {
        values.record(&mut Text(&mut self.0.lock().unwrap()));
    }
    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        event.record(&mut Text(&mut self.0.lock().unwrap()));
    }
}

thread_local! {
    /// Panics the application's hook saw on this thread.
    static REPORTED: std::cell::RefCell<Vec<String>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Every trace of every test in this file.
static TRACES: std::sync::OnceLock<Traces> = std::sync::OnceLock::new();

/// What every test does first, before any engine runs: sets the
/// application's panic hook, which prints and records what it is shown on
/// the panicking thread, and a global subscriber that keeps every trace (a
/// thread's default subscriber would miss callsites whose interest another
/// test's thread cached meanwhile).
fn application_hook() {
    static SET: Once = Once::new();
    SET.call_once(|| {
        std::panic::set_hook(Box::new(|info| {
            eprintln!("{info}");
            REPORTED.with(|r| r.borrow_mut().push(info.to_string()));
        }));
        let traces = TRACES.get_or_init(Traces::default).clone();
        tracing::subscriber::set_global_default(tracing_subscriber::registry().with(traces))
            .expect("the only subscriber");
    });
}

#[tokio::test(flavor = "current_thread")]
async fn with_the_aead_codec_no_secret_is_in_the_file_the_traces_or_the_history() {
    application_hook();
    for codec in [None, Some(aead(keys(1)))] {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SqliteStore::open(dir.path().join("journal.db")).unwrap());
        let engine = engine(store.clone(), codec.clone());
        engine.start("o-1", Account::default()).await.unwrap();
        engine.send("o-1", login()).await.unwrap();
        engine.send("o-1", CheckoutEvent::Pay).await.unwrap();
        until_in(&engine, "o-1", CheckoutState::Paid).await;
        engine.send("o-1", CheckoutEvent::Pay).await.unwrap();
        assert_eq!(engine.wait("o-1").await.unwrap(), CheckoutState::Done);
        let snapshot = engine.snapshot("o-1").await.unwrap();
        assert_eq!(
            snapshot.context.token.as_ref().map(|t| t.expose().as_str()),
            Some(TOKEN)
        );
        let done = CheckoutEvent::TokenizeDone(Secret::new(TOKEN.into()));
        let shown = format!("{snapshot:?} {:?} {done:?}", login());
        engine.shutdown().await;
        drop((engine, store));
        let stored = files(dir.path());
        let in_file = [PASSWORD, CARD, TOKEN, USER].map(|secret| contains(&stored, secret));
        if codec.is_none() {
            // Without a codec the journal is clear JSON: the search can fail.
            assert_eq!(in_file, [true; 4]);
        } else {
            assert_eq!(
                in_file, [false; 4],
                "no byte of a context, an event or an output is in clear"
            );
        }
        for secret in [PASSWORD, CARD, TOKEN] {
            assert!(!shown.contains(secret), "{secret} shown: {shown}");
        }
        assert!(shown.contains("[redacted]"));
    }
    let traced = TRACES.get().unwrap().0.lock().unwrap().clone();
    assert!(
        traced.contains("o-1") && traced.contains("Login"),
        "the traces were captured: {traced}"
    );
    for secret in [PASSWORD, CARD] {
        assert!(!traced.contains(secret), "{secret} in the traces: {traced}");
    }
}

#[tokio::test(flavor = "current_thread")]
async fn panic_messages_stay_out_of_stderr_and_go_to_the_history() {
    application_hook();
    let engine = engine(Arc::new(MemoryStore::new()), Some(aead(keys(1))));
    engine.start("o-1", Account::default()).await.unwrap();
    engine.send("o-1", login()).await.unwrap();
    REPORTED.with(|r| r.borrow_mut().clear());
    let _ = engine.send("o-1", CheckoutEvent::Explode).await;
    let snapshot = engine.snapshot("o-1").await.unwrap();
    assert!(matches!(&snapshot.status, Status::Failed { reason, .. } if reason.contains(PANIC)));
    assert!(snapshot
        .history
        .iter()
        .any(|r| matches!(&r.kind, RecordKind::Panicked(m) if m.contains(PANIC))));
    assert_eq!(
        REPORTED.with(|r| r.borrow().clone()),
        Vec::<String>::new(),
        "the hook saw the caught panic"
    );
    // A panic elsewhere still reaches the application's hook.
    let _ = std::panic::catch_unwind(|| panic!("not the engine's"));
    assert_eq!(REPORTED.with(|r| r.borrow().len()), 1);
}

/// Five instances waiting in `Paid`, each three rows long, on a memory store.
async fn five_paid(codec: &Arc<dyn Codec>) -> Arc<MemoryStore> {
    let store = Arc::new(MemoryStore::new());
    let engine = engine(store.clone(), Some(codec.clone()));
    for id in ["A", "B", "C", "D", "E"] {
        engine.start(id, Account::default()).await.unwrap();
        engine.send(id, login()).await.unwrap();
        engine.send(id, CheckoutEvent::Pay).await.unwrap();
        until_in(&engine, id, CheckoutState::Paid).await;
    }
    engine.shutdown().await;
    store
}

async fn rows(store: &dyn Store, id: &str) -> Vec<Row> {
    store.journal("Checkout", id).await.unwrap()
}

/// `row` as an attacker with write access stores it: at `seq` of
/// `instance`, its checksum recomputed (the CRC is unkeyed).
fn forged(row: &Row, instance: &str, seq: u64) -> Row {
    Row {
        instance: instance.into(),
        seq,
        checksum: crc32fast::hash(&row.data),
        ..row.clone()
    }
}

#[tokio::test(flavor = "current_thread")]
async fn tampered_swapped_reordered_and_replayed_rows_are_refused_and_the_others_go_on() {
    application_hook();
    for codec in [aead(keys(1)), Arc::new(Hmac::new(keys(1))) as Arc<dyn Codec>] {
        let written = five_paid(&codec).await;
        let (a, c, d, e) = (
            rows(&*written, "A").await,
            rows(&*written, "C").await,
            rows(&*written, "D").await,
            rows(&*written, "E").await,
        );
        assert_eq!(a.len(), 4, "started, logged in, charging, paid");
        let edited = MemoryStore::new();
        let put = |instance: &str, rows: Vec<Row>| {
            let edited = &edited;
            let instance = instance.to_string();
            async move {
                for (i, row) in rows.iter().enumerate() {
                    edited
                        .append("Checkout", forged(row, &instance, i as u64 + 1))
                        .await
                        .unwrap();
                }
            }
        };
        // A: one byte of its newest row changed.
        let mut tampered = a.clone();
        let last = tampered[3].data.len() - 20;
        tampered[3].data[last] ^= 0x20;
        put("A", tampered).await;
        // B: instance A's journal, written under B.
        put("B", a.clone()).await;
        // C: its rows 3 and 4 exchanged.
        put("C", vec![c[0].clone(), c[1].clone(), c[3].clone(), c[2].clone()]).await;
        // D: its row 2 replayed as a fifth row.
        put("D", [d.clone(), vec![d[1].clone()]].concat()).await;
        put("E", e.clone()).await;
        let store: Arc<dyn Store> = Arc::new(edited);
        let before: Vec<Vec<Row>> = futures_rows(&*store).await;

        let engine = engine(store.clone(), Some(codec.clone()));
        let report = engine.recover().await.unwrap();
        assert_eq!(report.resumed, 1, "{:?}", report.errors);
        let mut refused: Vec<(String, u64)> = report
            .errors
            .iter()
            .map(|error| match error {
                StoreError::Corrupt { instance, seq, reason } => {
                    assert!(reason.contains("key 1"), "{reason}");
                    (instance.clone(), *seq)
                }
                other => panic!("not corrupt: {other}"),
            })
            .collect();
        refused.sort();
        let expected = [("A", 4), ("B", 4), ("C", 4), ("D", 5)].map(|(i, s)| (i.to_string(), s));
        assert_eq!(refused, expected);
        // The others go on: E finishes.
        engine.send("E", CheckoutEvent::Pay).await.unwrap();
        assert_eq!(engine.wait("E").await.unwrap(), CheckoutState::Done);
        engine.shutdown().await;
        let after = futures_rows(&*store).await;
        assert_eq!(before[..4], after[..4], "nothing of a refused instance was overwritten");
    }
}

async fn futures_rows(store: &dyn Store) -> Vec<Vec<Row>> {
    let mut all = Vec::new();
    for id in ["A", "B", "C", "D", "E"] {
        all.push(rows(store, id).await);
    }
    all
}

#[tokio::test(flavor = "current_thread")]
async fn keys_rotate_across_a_restart_and_a_wrong_or_missing_key_overwrites_nothing() {
    application_hook();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.db");
    let key_of = |row: &Row| Header::read(&row.data).map(|(header, _)| header.key);

    // Written with key 1.
    let store = Arc::new(SqliteStore::open(&path).unwrap());
    let first = engine(store.clone(), Some(aead(keys(1))));
    first.start("o-1", Account::default()).await.unwrap();
    first.send("o-1", login()).await.unwrap();
    first.shutdown().await;
    drop((first, store));

    // A missing key (no codec), an unknown one, and another key under id 1:
    // a clear error at recover(), and the journal as it was.
    let store = Arc::new(SqliteStore::open(&path).unwrap());
    let written = rows(&*store, "o-1").await;
    assert_eq!(written.iter().map(key_of).collect::<Vec<_>>(), [Some(1), Some(1)]);
    let attempts: [(Option<Arc<dyn Codec>>, &str); 3] = [
        (
            None,
            "instance `o-1`: journal row 2 cannot be read: written with AES-256-GCM-SIV key 1, which this \
             engine does not have (it has no codec)",
        ),
        (
            Some(aead(keys(2))),
            "instance `o-1`: journal row 2 cannot be read: written with AES-256-GCM-SIV key 1, which this \
             engine does not have (it has AES-256-GCM-SIV keys 2)",
        ),
        (
            Some(aead(Keys::new(1, [9; 32]))),
            "instance `o-1`: journal row 2 is corrupt: it does not authenticate under AES-256-GCM-SIV key 1: \
             altered, moved from another instance or position, or written with another key of that id",
        ),
    ];
    for (codec, message) in attempts {
        let engine = engine(store.clone(), codec);
        let report = engine.recover().await.unwrap();
        assert_eq!(report.resumed, 0);
        assert_eq!(report.errors.len(), 1);
        assert_eq!(report.errors[0].to_string(), message);
        assert_eq!(report.errors[0].instance(), Some("o-1"));
        assert!(engine.send("o-1", CheckoutEvent::Pay).await.is_err(), "not resumed");
        engine.shutdown().await;
        assert_eq!(rows(&*store, "o-1").await, written, "nothing overwritten");
    }
    drop(store);

    // Rotated: key 2 writes, key 1 still reads.
    let store = Arc::new(SqliteStore::open(&path).unwrap());
    let rotated = engine(store.clone(), Some(aead(keys(2).with(1, [1; 32]).unwrap())));
    assert_eq!(rotated.recover().await.unwrap().resumed, 1);
    rotated.send("o-1", CheckoutEvent::Pay).await.unwrap();
    until_in(&rotated, "o-1", CheckoutState::Paid).await;
    rotated.shutdown().await;
    let keys_used: Vec<_> = rows(&*store, "o-1").await.iter().map(key_of).collect();
    assert_eq!(keys_used, [Some(1), Some(1), Some(2), Some(2)]);
    drop((rotated, store));

    // After a restart with key 2 alone, the instance resumes from its newest
    // row (key 2) and finishes; the journal reads back with the rotated keys.
    let store = Arc::new(SqliteStore::open(&path).unwrap());
    let second = engine(store.clone(), Some(aead(keys(2))));
    assert_eq!(second.recover().await.unwrap().resumed, 1);
    second.send("o-1", CheckoutEvent::Pay).await.unwrap();
    assert_eq!(second.wait("o-1").await.unwrap(), CheckoutState::Done);
    second.shutdown().await;
    let codec = aead(keys(2).with(1, [1; 32]).unwrap());
    let entries: Vec<_> = rows(&*store, "o-1")
        .await
        .iter()
        .map(|row| journal::decode_with::<Checkout>(row, &codec).unwrap().context.user)
        .collect();
    assert_eq!(entries, ["", USER, USER, USER, USER]);
    assert!(matches!(
        journal::decode::<Checkout>(&rows(&*store, "o-1").await[0]),
        Err(StoreError::UnknownKey { seq: 1, .. })
    ));
}

#[tokio::test(flavor = "current_thread")]
async fn a_signed_journal_stays_readable_but_a_forged_row_is_refused() {
    application_hook();
    let codec: Arc<dyn Codec> = Arc::new(Hmac::new(keys(1)));
    let store = Arc::new(MemoryStore::new());
    let first = engine(store.clone(), Some(codec.clone()));
    first.start("o-1", Account::default()).await.unwrap();
    first.send("o-1", login()).await.unwrap();
    first.shutdown().await;
    let rows = rows(&*store, "o-1").await;
    let text = String::from_utf8_lossy(&rows[1].data).into_owned();
    let user = format!(r#""user":"{USER}""#);
    assert!(text.contains(&user), "readable: {text}");
    // Another user written in by hand, the CRC recomputed.
    let edited = MemoryStore::new();
    edited.append("Checkout", rows[0].clone()).await.unwrap();
    let mut data = rows[1].data.clone();
    let at = text.find(&user).unwrap() + 8;
    data[at..at + 3].copy_from_slice(b"eve");
    edited
        .append(
            "Checkout",
            forged(
                &Row {
                    data,
                    ..rows[1].clone()
                },
                "o-1",
                2,
            ),
        )
        .await
        .unwrap();
    let second = engine(Arc::new(edited), Some(codec));
    let report = second.recover().await.unwrap();
    assert!(matches!(&report.errors[..], [StoreError::Corrupt { instance, seq: 2, .. }] if instance == "o-1"));
}

/// A codec of the application's own: it refuses to write rows of instance
/// `refused`, and reads back only what it wrote (its bytes reversed).
struct Reversing;

impl Codec for Reversing {
    fn encode(&self, row: &workflow::codec::RowId<'_>, plain: &[u8]) -> Result<Vec<u8>, workflow::codec::CodecError> {
        if row.instance == "refused" {
            return Err(workflow::codec::CodecError::Failed("the key service is down".into()));
        }
        let mut stored = vec![0, 9, 0, 0, 0, 1];
        stored.extend(plain.iter().rev());
        Ok(stored)
    }

    fn decode<'a>(
        &self,
        _: &workflow::codec::RowId<'_>,
        stored: &'a [u8],
    ) -> Result<std::borrow::Cow<'a, [u8]>, workflow::codec::CodecError> {
        match stored.strip_prefix(&[0, 9, 0, 0, 0, 1][..]) {
            Some(body) => Ok(body.iter().rev().copied().collect::<Vec<u8>>().into()),
            None => Err(workflow::codec::CodecError::Rejected("not mine".into())),
        }
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_codec_that_cannot_write_refuses_the_start_and_stores_nothing() {
    application_hook();
    let store = Arc::new(MemoryStore::new());
    let engine = engine(store.clone(), Some(Arc::new(Reversing)));
    let error = engine.start("refused", Account::default()).await.unwrap_err();
    assert!(matches!(
        &error,
        workflow::EngineError::Store(StoreError::Unencodable { instance, .. }) if instance == "refused"
    ));
    assert_eq!(
        error.to_string(),
        "instance `refused` cannot be encoded: row 1: the key service is down"
    );
    assert!(rows(&*store, "refused").await.is_empty(), "nothing stored");
    assert!(engine.snapshot("refused").await.is_err(), "no trace of it");
    // Another instance goes through the application's codec and back.
    engine.start("o-1", Account::default()).await.unwrap();
    engine.send("o-1", login()).await.unwrap();
    let stored = rows(&*store, "o-1").await;
    assert_eq!(Header::read(&stored[1].data).unwrap().0, Header { codec: 9, key: 1 });
    engine.shutdown().await;
    let again = self::engine(store.clone(), Some(Arc::new(Reversing)));
    assert_eq!(again.recover().await.unwrap().resumed, 1);
    assert_eq!(again.snapshot("o-1").await.unwrap().context.user, USER);
    // An engine with another codec names the one that wrote the rows.
    let other = self::engine(store, Some(aead(keys(1))));
    let report = other.recover().await.unwrap();
    assert_eq!(
        report.errors[0].to_string(),
        "instance `o-1`: journal row 2 cannot be read: written with codec #9 key 1, which this engine does \
         not have (it has AES-256-GCM-SIV keys 1)"
    );
}
