//! The router over a store a live engine writes: pages, JSON, metrics, and every refusal of an
//! action (not enabled, GET, cross-origin, no or a wrong token, a bad event), then actions that
//! land in the instance's journal.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use tower::ServiceExt;
use workflow::inspect::Inspector;
use workflow::prelude::*;
use workflow::{Control, Engine, SqliteStore};
use workflow_web::{WebConfig, WebError, TOKEN_HEADER};

workflow! {
    pub workflow Parcel {
        context u32;
        initial Packing;
        events { Packed, Delivered, Explode }
        state Packing { on Packed => Shipping; on Explode / explode; }
        state Shipping { on Delivered => Delivered; }
        final Delivered;
    }
}

pub struct Desk;

impl ParcelHandlers for Desk {
    fn explode(&self, _weight: &mut u32, _event: &Explode) {
        panic!("the parcel exploded");
    }
}

const TOKEN: &str = "a-token-of-32-characters-at-last";

struct Setup {
    _dir: tempfile::TempDir,
    engine: Engine<Parcel, Desk>,
    path: String,
}

async fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("parcels.db");
    let engine = Engine::<Parcel, Desk>::builder(Desk)
        .store(Arc::new(SqliteStore::open(&path).unwrap()))
        .build();
    for i in 1..=5 {
        engine.start(format!("p-{i}"), i).await.unwrap();
    }
    for i in 1..=3 {
        engine.send(&format!("p-{i}"), ParcelEvent::Packed).await.unwrap();
    }
    engine.send("p-1", ParcelEvent::Delivered).await.unwrap();
    Setup {
        _dir: dir,
        engine,
        path: path.to_str().unwrap().to_string(),
    }
}

async fn router(setup: &Setup, actions: bool) -> Router {
    let inspector = Inspector::open(&setup.path).await.unwrap();
    let config = WebConfig::new(inspector).engine(Arc::new(setup.engine.clone()) as Arc<dyn Control>);
    let config = if actions {
        config.actions(TOKEN).unwrap()
    } else {
        config
    };
    workflow_web::router(config)
}

async fn call(router: &Router, request: Request<Body>) -> (StatusCode, String) {
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

async fn get(router: &Router, uri: &str) -> (StatusCode, String) {
    call(router, Request::get(uri).body(Body::empty()).unwrap()).await
}

/// A POST to the view at 127.0.0.1:8080 from `origin`, as `site`, with `token`.
fn post(uri: &str, origin: &str, site: &str, token: &str) -> axum::http::request::Builder {
    Request::post(uri)
        .header(header::HOST, "127.0.0.1:8080")
        .header(header::ORIGIN, origin)
        .header("sec-fetch-site", site)
        .header(TOKEN_HEADER, token)
}

/// A same-origin POST with the token, as the page's script sends it.
fn action(uri: &str) -> axum::http::request::Builder {
    post(uri, "http://127.0.0.1:8080", "same-origin", TOKEN)
}

#[tokio::test]
async fn pages_and_json_show_the_store() {
    let setup = setup().await;
    let router = router(&setup, false).await;
    let (status, home) = get(&router, "/").await;
    assert_eq!(status, StatusCode::OK);
    assert!(home.contains("href=\"./workflows/Parcel\""), "{home}");
    let (_, diagram) = get(&router, "/workflows/Parcel").await;
    // The drawing, inline: each state's box with its count, coloured by it.
    let svg = &diagram[diagram.find("<svg ").expect("an inline SVG")..];
    assert!(svg.contains("role=\"img\""), "{svg}");
    for (state, count) in [("Packing", 2), ("Shipping", 2), ("Delivered", 1)] {
        let at = svg
            .find(&format!("data-state=\"{state}\">"))
            .unwrap_or_else(|| panic!("{state} in {svg}"));
        let group = &svg[at..at + svg[at..].find("</g>").unwrap_or(0)];
        assert!(group.contains(" data-count x="), "{group}");
        assert!(group.contains(&format!(">{count}</text>")), "{state}: {group}");
    }
    assert!(
        svg.contains("<g class=\"edge\"><title>Packing → Shipping: Packed</title>"),
        "{svg}"
    );
    // And the table of counts beside it.
    assert!(
        diagram.contains("<tr data-state=\"Shipping\"><th scope=\"row\"><a href=\"../instances?workflow=Parcel&amp;state=Shipping\">Shipping</a></th>\
         <td class=\"n\" data-count>2</td><td class=\"n\" data-running>2</td></tr>"),
        "{diagram}"
    );
    let (status, svg) = get(&router, "/api/workflows/Parcel/diagram?format=svg").await;
    assert_eq!(status, StatusCode::OK);
    let svg: serde_json::Value = serde_json::from_str(&svg).unwrap();
    assert!(svg["text"].as_str().unwrap_or_default().starts_with("<svg "), "{svg}");
    assert!(diagram.contains("src=\"../assets/app.js\""));
    let (_, json) = get(&router, "/api/workflows/Parcel/diagram").await;
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(json["workflow"], "Parcel");
    let (_, list) = get(&router, "/instances?workflow=Parcel&status=running&state=Shipping").await;
    assert!(list.contains("data-total=\"2\""), "{list}");
    assert!(list.contains("data-id=\"p-2\"") && list.contains("data-id=\"p-3\"") && !list.contains("data-id=\"p-4\""));
    let (_, page) = get(&router, "/api/instances?prefix=p-1&status=").await;
    let page: serde_json::Value = serde_json::from_str(&page).unwrap();
    assert_eq!(page["total"], 1);
    let (_, timeline) = get(&router, "/instances/Parcel/p-1").await;
    assert!(
        timeline.contains("Packing → Shipping") && timeline.contains("Shipping → Delivered"),
        "{timeline}"
    );
    assert!(!timeline.contains("data-actions"), "read-only: no actions on the page");
    // Bad inputs: one clear line each.
    assert_eq!(get(&router, "/instances?status=lost").await.0, StatusCode::BAD_REQUEST);
    assert_eq!(
        get(&router, "/api/instances?after=yesterday").await.0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(get(&router, "/instances/Parcel/p-404").await.0, StatusCode::NOT_FOUND);
    assert_eq!(
        get(&router, "/api/workflows/Nothing/diagram").await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        get(&router, "/api/workflows/Parcel/diagram?format=png").await.0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(get(&router, "/assets/secret.txt").await.0, StatusCode::NOT_FOUND);
    let (status, css) = get(&router, "/assets/app.css").await;
    assert!(status == StatusCode::OK && css.contains(".diagram svg"));
}

#[tokio::test]
async fn metrics_carry_the_engines_figures() {
    let setup = setup().await;
    let router = router(&setup, false).await;
    let (status, text) = get(&router, "/metrics").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        text.contains("workflow_instances{workflow=\"Parcel\",state=\"Shipping\"} 2\n"),
        "{text}"
    );
    assert!(
        text.contains("workflow_transitions_total{workflow=\"Parcel\"} 4\n"),
        "{text}"
    );
}

#[tokio::test]
async fn actions_are_refused_unless_enabled_posted_same_origin_and_with_the_token() {
    let setup = setup().await;
    let read_only = router(&setup, false).await;
    let (status, _) = call(
        &read_only,
        action("/api/instances/Parcel/p-4/cancel").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "actions not enabled");

    let router = router(&setup, true).await;
    let uri = "/api/instances/Parcel/p-4/cancel";
    let refused = [
        (
            Request::get(uri).header(TOKEN_HEADER, TOKEN).body(Body::empty()),
            StatusCode::METHOD_NOT_ALLOWED,
        ),
        (
            post(uri, "http://evil.example", "same-origin", TOKEN).body(Body::empty()),
            StatusCode::FORBIDDEN,
        ),
        (
            post(uri, "http://127.0.0.1:8080", "cross-site", TOKEN).body(Body::empty()),
            StatusCode::FORBIDDEN,
        ),
        (
            Request::post(uri)
                .header(header::HOST, "127.0.0.1:8080")
                .body(Body::empty()),
            StatusCode::UNAUTHORIZED,
        ),
        (
            post(
                uri,
                "http://127.0.0.1:8080",
                "same-origin",
                "a-token-of-32-characters-at-lasT",
            )
            .body(Body::empty()),
            StatusCode::UNAUTHORIZED,
        ),
        (
            action("/api/instances/Other/p-4/cancel").body(Body::empty()),
            StatusCode::NOT_FOUND,
        ),
        (
            action("/api/instances/Parcel/p-4/explode").body(Body::empty()),
            StatusCode::NOT_FOUND,
        ),
        (
            action("/api/instances/Parcel/p-404/cancel").body(Body::empty()),
            StatusCode::NOT_FOUND,
        ),
        (
            action("/api/instances/Parcel/p-4/send").body(Body::from("\"Packed\"")),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        (
            action("/api/instances/Parcel/p-4/send")
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from("\"Teleported\"")),
            StatusCode::BAD_REQUEST,
        ),
        (
            action("/api/instances/Parcel/p-4/send")
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from("{not json")),
            StatusCode::BAD_REQUEST,
        ),
        (
            action("/api/instances/Parcel/p-4/send")
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from("\"Delivered\"")),
            StatusCode::CONFLICT,
        ),
        (
            action("/api/instances/Parcel/p-4/retry").body(Body::empty()),
            StatusCode::CONFLICT,
        ),
    ];
    for (request, expected) in refused {
        let (status, body) = call(&router, request.unwrap()).await;
        assert_eq!(status, expected, "{body}");
    }
    // Nothing of that changed p-4.
    assert_eq!(
        setup.engine.status("p-4").await.unwrap(),
        workflow::Status::Running(ParcelState::Packing)
    );

    // Accepted: each in the instance's journal as the engine's own step.
    let json = |uri: &str, body: &'static str| {
        action(uri)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body))
            .unwrap()
    };
    assert_eq!(
        call(&router, json("/api/instances/Parcel/p-4/send", "\"Packed\""))
            .await
            .0,
        StatusCode::OK
    );
    assert_eq!(
        call(&router, json("/api/instances/Parcel/p-5/send", "\"Explode\""))
            .await
            .0,
        StatusCode::CONFLICT
    );
    assert_eq!(
        call(
            &router,
            action("/api/instances/Parcel/p-5/retry").body(Body::empty()).unwrap()
        )
        .await
        .0,
        StatusCode::OK
    );
    assert_eq!(
        call(
            &router,
            action("/api/instances/Parcel/p-5/cancel").body(Body::empty()).unwrap()
        )
        .await
        .0,
        StatusCode::OK
    );
    let (_, p4) = get(&router, "/api/instances/Parcel/p-4").await;
    let p4: serde_json::Value = serde_json::from_str(&p4).unwrap();
    assert_eq!(p4["state"], "Shipping");
    let (_, p5) = get(&router, "/api/instances/Parcel/p-5").await;
    let p5: serde_json::Value = serde_json::from_str(&p5).unwrap();
    let steps: Vec<&str> = p5["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["step"].as_str().unwrap())
        .collect();
    assert_eq!(steps, ["started", "failed", "retried", "cancelled"], "{p5}");
    assert_eq!(p5["status"], "cancelled");
    let (_, page) = get(&router, "/instances/Parcel/p-4").await;
    assert!(
        page.contains("data-actions=\"../../api/instances/Parcel/p-4/\""),
        "{page}"
    );
}

#[test]
fn a_short_token_is_refused() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("empty.db");
    drop(SqliteStore::open(&path).unwrap());
    let inspector = rt.block_on(Inspector::open(path.to_str().unwrap())).unwrap();
    assert_eq!(
        WebConfig::new(inspector).actions("short").map(|_| ()),
        Err(WebError::WeakToken { len: 5 })
    );
}
