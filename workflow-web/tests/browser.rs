//! The web view in a real browser: Debian's headless Chromium driven through chromedriver
//! (WebDriver), over a live durable engine whose instances the test moves. The diagram's
//! counts equal the engine's own and follow it without a reload; the list filters; a timeline
//! opens; an instance is cancelled through the page; at a phone's width nothing overflows; and
//! axe-core finds no serious or critical violation. The same checks run over each store: the
//! engine on a SQLite file, and with the `postgres` feature on a PostgreSQL store in a schema
//! of its own (a server as tests/pg/mod.rs at the workspace's root says), the view opened on
//! its `postgres://…?schema=…` URL. Screenshots go to `target/web-view/<store>/`.
//!
//! Without chromium, chromedriver or axe-core it prints one line saying so and how to get
//! them, and passes — unless `CI` is set, where it fails (the decision the conformance runner
//! makes too).

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};
use workflow::inspect::Inspector;
use workflow::prelude::*;
use workflow::{Control, Engine, SqliteStore, Status, Store};
use workflow_web::WebConfig;

workflow! {
    pub workflow Delivery {
        context u32;
        initial Ordered;
        events { Pack, Ship, Deliver, Lose }
        state Ordered { on Pack => Packed; }
        state Packed { on Ship => Shipped; }
        state Shipped { on Deliver => Delivered; on Lose => Lost; }
        final Delivered;
        final Lost;
    }
}

pub struct Depot;
impl DeliveryHandlers for Depot {}

const TOKEN: &str = "browser-test-token-0123456789abcdef";

fn tool(env: &str, default: &str) -> PathBuf {
    std::env::var_os(env).map_or_else(|| PathBuf::from(default), PathBuf::from)
}

fn axe_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("browser/node_modules/axe-core/axe.min.js")
}

/// What this machine lacks for the test, if anything.
fn missing(chromium: &Path, driver: &Path) -> Option<String> {
    [
        (chromium, "chromium"),
        (driver, "chromedriver"),
        (&axe_path(), "axe-core"),
    ]
    .into_iter()
    .find(|(path, _)| !path.is_file())
    .map(|(path, what)| format!("no {what} at {}", path.display()))
}

/// The engine's own counts: every instance by its state, and the running ones.
fn engine_counts(engine: &Engine<Delivery, Depot>) -> HashMap<String, (u64, u64)> {
    let mut counts = HashMap::new();
    for (_, status) in engine.list() {
        let entry: &mut (u64, u64) = counts.entry(status.state().to_string()).or_default();
        entry.0 += 1;
        entry.1 += u64::from(status.is_running());
    }
    counts
}

/// The diagram's counts as the page shows them now: each state's count as the drawing shows it
/// (the text in its box), with the running ones from the table of counts; and each drawn
/// box's colour class, which must be the heat of its count.
async fn page_counts(client: &Client) -> HashMap<String, (u64, u64)> {
    let drawn = client
        .execute(
            "const max = Math.max(0, ...Array.from(document.querySelectorAll('svg.wf-diagram [data-count]'), e => +e.textContent));\
             return Array.from(document.querySelectorAll('svg.wf-diagram g[data-state]')).map(g => {\
               const n = +g.querySelector('[data-count]').textContent;\
               const row = document.querySelector('tr[data-state=\"' + CSS.escape(g.dataset.state) + '\"]');\
               const heat = n === 0 ? 0 : Math.min(5, 1 + Math.floor(4 * n / Math.max(1, max)));\
               return [g.dataset.state, n, +row.querySelector('[data-running]').textContent, g.classList.contains('heat-' + heat)];\
             });",
            vec![],
        )
        .await
        .unwrap();
    assert!(drawn.as_array().is_some_and(|a| !a.is_empty()), "no drawing: {drawn}");
    let mut counts = HashMap::new();
    for state in drawn.as_array().cloned().unwrap_or_default() {
        let name = state[0].as_str().unwrap_or_default().to_string();
        let (n, r) = (state[1].as_u64().unwrap_or(0), state[2].as_u64().unwrap_or(0));
        assert_eq!(
            state[3],
            Value::Bool(true),
            "{name}'s box is not coloured by its count {n}"
        );
        if n > 0 {
            counts.insert(name, (n, r));
        }
    }
    counts
}

/// Waits (up to 10 s) until the page's counts are the engine's; gives them.
async fn until_counts_match(client: &Client, engine: &Engine<Delivery, Depot>) -> HashMap<String, (u64, u64)> {
    let mut last = HashMap::new();
    for _ in 0..50 {
        last = page_counts(client).await;
        if last == engine_counts(engine) {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("the page shows {last:?}, the engine counts {:?}", engine_counts(engine));
}

/// No horizontal overflow: the page is no wider than the viewport.
async fn fits(client: &Client, page: &str) {
    let sizes = client
        .execute(
            "return [document.documentElement.scrollWidth, window.innerWidth];",
            vec![],
        )
        .await
        .unwrap();
    let (scroll, inner) = (sizes[0].as_u64().unwrap_or(0), sizes[1].as_u64().unwrap_or(0));
    assert!(inner <= 400, "not a phone's width: {inner}");
    assert!(scroll <= inner, "{page}: {scroll} px wide in a {inner} px viewport");
}

/// axe-core's serious and critical violations on the current page.
async fn axe(client: &Client, source: &str) -> Vec<String> {
    client.execute(source, vec![]).await.unwrap();
    let found = client
        .execute_async(
            "const done = arguments[arguments.length - 1];\
             axe.run(document).then(r => done(r.violations\
               .filter(v => v.impact === 'serious' || v.impact === 'critical')\
               .map(v => v.id + ' (' + v.impact + '): ' + v.nodes.map(n => n.target.join(' ')).join(', '))));",
            vec![],
        )
        .await
        .unwrap();
    found
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|v| v.as_str().unwrap_or_default().to_string())
        .collect()
}

/// Where the screenshots of the run over `store` go.
fn artifacts(store: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"),
        PathBuf::from,
    );
    let dir = target.join("web-view").join(store);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_web_view_in_chromium() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("deliveries.db");
    let store = Arc::new(SqliteStore::open(&path).unwrap());
    the_web_view("sqlite", store, path.to_str().unwrap()).await;
}

#[cfg(feature = "postgres")]
#[path = "../../tests/pg/mod.rs"]
mod pg;

#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_web_view_in_chromium_over_postgres() {
    let schema = pg::Schema::fresh();
    the_web_view("postgres", Arc::new(schema.open()), &schema.location()).await;
}

/// The checks, over an engine on `store` (named `name`), the view reading it at `location`.
async fn the_web_view(name: &str, store: Arc<dyn Store>, location: &str) {
    let chromium = tool("WORKFLOW_CHROMIUM", "/usr/bin/chromium");
    let driver = tool("WORKFLOW_CHROMEDRIVER", "/usr/bin/chromedriver");
    if let Some(why) = missing(&chromium, &driver) {
        // Straight to stderr: the test harness would swallow a println of a passing test.
        let _ = writeln!(
            std::io::stderr(),
            "web view browser test: not run: {why}; to run it: apt-get install -y chromium chromium-driver \
             && npm ci --prefix workflow-web/browser"
        );
        assert!(!workflow::ci::here(), "CI runs the browser test, but {why}");
        return;
    }
    let axe_source = std::fs::read_to_string(axe_path()).unwrap();

    // A live durable engine, and the view mounted beside it with actions enabled.
    let engine = Engine::<Delivery, Depot>::builder(Depot).store(store).build();
    let ids: Vec<String> = (1..=12).map(|i| format!("d-{i:02}")).collect();
    for (i, id) in ids.iter().enumerate() {
        engine.start(id.clone(), i as u32).await.unwrap();
    }
    let send = |id: &str, event: DeliveryEvent| {
        let engine = engine.clone();
        let id = id.to_string();
        async move { engine.send(&id, event).await.unwrap() }
    };
    for id in &ids[..6] {
        send(id, DeliveryEvent::Pack).await;
    }
    for id in &ids[..3] {
        send(id, DeliveryEvent::Ship).await;
    }
    send(&ids[0], DeliveryEvent::Deliver).await;
    let inspector = Inspector::open(location).await.unwrap();
    let config = WebConfig::new(inspector)
        .engine(Arc::new(engine.clone()) as Arc<dyn Control>)
        .actions(TOKEN)
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/", listener.local_addr().unwrap());
    tokio::spawn(workflow_web::serve(listener, config));

    // chromedriver on a free port, headless Chromium through it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut chromedriver = tokio::process::Command::new(&driver)
        .arg(format!("--port={port}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": chromium,
            "args": ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1280,900"]
        }),
    );
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    let mut client = None;
    for _ in 0..100 {
        match ClientBuilder::new(connector.clone())
            .capabilities(capabilities.clone())
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
        {
            Ok(c) => {
                client = Some(c);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    let client = client.expect("chromedriver did not start a session");
    let shots = artifacts(name);

    // The diagram: the engine's counts, then, as instances move, the new ones without a reload.
    client.goto(&format!("{base}workflows/Delivery")).await.unwrap();
    client.execute("window.notReloaded = true;", vec![]).await.unwrap();
    let before = until_counts_match(&client, &engine).await;
    assert_eq!(before.get("Shipped"), Some(&(2, 2)));
    for id in &ids[6..9] {
        send(id, DeliveryEvent::Pack).await;
    }
    for id in &ids[3..5] {
        send(id, DeliveryEvent::Ship).await;
    }
    send(&ids[1], DeliveryEvent::Deliver).await;
    send(&ids[2], DeliveryEvent::Lose).await;
    let after = until_counts_match(&client, &engine).await;
    assert_ne!(before, after);
    assert_eq!(after.get("Delivered"), Some(&(2, 0)));
    assert_eq!(
        client
            .execute("return window.notReloaded === true;", vec![])
            .await
            .unwrap(),
        Value::Bool(true),
        "the counts changed without a reload"
    );
    std::fs::write(shots.join("diagram.png"), client.screenshot().await.unwrap()).unwrap();
    assert_eq!(axe(&client, &axe_source).await, Vec::<String>::new(), "diagram");

    // The list, filtered through its form: running instances in Shipped.
    client.goto(&format!("{base}instances")).await.unwrap();
    let form = client.find(Locator::Css("form.filters")).await.unwrap();
    form.find(Locator::Css("select[name=workflow]"))
        .await
        .unwrap()
        .select_by_value("Delivery")
        .await
        .unwrap();
    form.find(Locator::Css("select[name=status]"))
        .await
        .unwrap()
        .select_by_value("running")
        .await
        .unwrap();
    form.find(Locator::Css("input[name=state]"))
        .await
        .unwrap()
        .send_keys("Shipped")
        .await
        .unwrap();
    // The page the form is on shows a total too: the filtered one is a new document, without
    // this mark.
    client.execute("window.unfiltered = true;", vec![]).await.unwrap();
    form.find(Locator::Css("button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let mut filtered = false;
    for _ in 0..100 {
        // Asked while the next page loads, the browser may answer with an error: asked again.
        let loaded = client
            .execute(
                "return window.unfiltered === undefined && document.querySelector('[data-total]') !== null;",
                vec![],
            )
            .await;
        if matches!(loaded, Ok(Value::Bool(true))) {
            filtered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(filtered, "the filtered list did not load");
    let mut listed = Vec::new();
    for row in client.find_all(Locator::Css("tr[data-id]")).await.unwrap() {
        listed.push(row.attr("data-id").await.unwrap().unwrap_or_default());
    }
    listed.sort();
    let mut expected = engine.list_where(|s| *s == Status::Running(DeliveryState::Shipped));
    expected.sort();
    assert_eq!(listed, expected);
    assert_eq!(expected, ["d-04", "d-05"]);
    assert_eq!(axe(&client, &axe_source).await, Vec::<String>::new(), "list");

    // A timeline, opened from the list.
    client
        .find(Locator::Css("tr[data-id=\"d-04\"] a"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    client.wait().for_element(Locator::Css("table.timeline")).await.unwrap();
    let mut steps = Vec::new();
    for row in client.find_all(Locator::Css("table.timeline tbody tr")).await.unwrap() {
        steps.push(row.attr("data-step").await.unwrap().unwrap_or_default());
    }
    assert_eq!(steps, ["started", "transition", "transition"]);
    assert_eq!(axe(&client, &axe_source).await, Vec::<String>::new(), "timeline");

    // Cancelled through the page: the engine's own step, in its journal.
    client
        .find(Locator::Css("[data-token]"))
        .await
        .unwrap()
        .send_keys(TOKEN)
        .await
        .unwrap();
    client
        .find(Locator::Css("[data-action=cancel]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let mut shown = String::new();
    for _ in 0..50 {
        if let Ok(status) = client.find(Locator::Css("[data-status]")).await {
            shown = status.text().await.unwrap_or_default();
            if shown == "cancelled" {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(shown, "cancelled");
    assert_eq!(
        engine.status("d-04").await.unwrap(),
        Status::Cancelled(DeliveryState::Shipped)
    );
    let last = client
        .find(Locator::Css("table.timeline tbody tr:last-child"))
        .await
        .unwrap();
    assert_eq!(last.attr("data-step").await.unwrap().as_deref(), Some("cancelled"));
    std::fs::write(shots.join("timeline.png"), client.screenshot().await.unwrap()).unwrap();

    // A phone's width: every page fits.
    client.set_window_size(390, 844).await.unwrap();
    for page in [
        "",
        "workflows/Delivery",
        "instances?workflow=Delivery",
        "instances/Delivery/d-04",
    ] {
        client.goto(&format!("{base}{page}")).await.unwrap();
        fits(&client, page).await;
        if page == "workflows/Delivery" {
            std::fs::write(shots.join("diagram-phone.png"), client.screenshot().await.unwrap()).unwrap();
        }
    }
    assert_eq!(axe(&client, &axe_source).await, Vec::<String>::new(), "timeline, phone");

    client.close().await.unwrap();
    let _ = chromedriver.kill().await;
}
