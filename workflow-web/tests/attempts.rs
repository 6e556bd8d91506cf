//! An instance's timeline page lists the attempts of each call that took several, in the
//! row of its outcome, escaped; a call whose first attempt succeeded lists none.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;
use workflow::inspect::{format_micros, format_time, Inspector};
use workflow::prelude::*;
use workflow::{journal, Config, Engine, SqliteStore, Store};
use workflow_web::WebConfig;

workflow! {
    pub workflow Payment {
        context u32;
        initial Charging;
        state Charging {
            invoke charge -> String {
                retry 2 backoff 10ms..20ms;
                done => Paid;
                error => Declined;
            }
        }
        final Paid;
        final Declined (failure);
    }
}

pub struct Bank;

impl PaymentHandlers for Bank {
    async fn charge(&self, failures: &u32, call: &ActivityCall) -> Result<String, ActivityError> {
        if call.attempt <= *failures {
            return Err(ActivityError::new("busy <retry later>"));
        }
        Ok("r-1".into())
    }
}

async fn page(router: &axum::Router, uri: &str) -> String {
    let response = router
        .clone()
        .oneshot(Request::get(uri).body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(body.to_vec()).unwrap()
}

#[tokio::test]
async fn the_timeline_lists_each_attempt_in_its_outcomes_row() {
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
    engine.start("twice", 2).await.unwrap();
    engine.start("never", 0).await.unwrap();
    assert_eq!(engine.wait("twice").await.unwrap(), PaymentState::Paid);
    assert_eq!(engine.wait("never").await.unwrap(), PaymentState::Paid);
    let router = workflow_web::router(WebConfig::new(Inspector::open(path.to_str().unwrap()).await.unwrap()));

    let rows = store.journal("Payment", "twice").await.unwrap();
    let attempts = journal::decode::<Payment>(&rows[1]).unwrap().attempts;
    assert_eq!(attempts.len(), 3);
    let mut list = String::from("<ol class=\"attempts\">");
    for (a, ended) in attempts.iter().zip([
        "failed: busy &lt;retry later&gt;",
        "failed: busy &lt;retry later&gt;",
        "ok",
    ]) {
        list.push_str(&format!(
            "<li data-attempt=\"{n}\">attempt {n} · {at} · {took} · {ended}</li>",
            n = a.attempt,
            at = format_time(a.at),
            took = format_micros(a.duration_us),
        ));
    }
    list.push_str("</ol>");
    let twice = page(&router, "/instances/Payment/twice").await;
    let done = &twice[twice.find("<tr data-step=\"transition\">").expect("the outcome's row")..];
    let done = &done[..done.find("</tr>").unwrap()];
    assert!(done.contains("charge done in "), "{done}");
    assert!(done.contains(&list), "{done}\nwanted {list}");

    let never = page(&router, "/instances/Payment/never").await;
    assert!(never.contains("charge done in "), "{never}");
    assert!(!never.contains("class=\"attempts\""), "{never}");
}
