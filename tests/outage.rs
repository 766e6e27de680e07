//! Outages: a full disk (the daemon's file-size limit lowered under it), and a provider
//! that answers 429 and 503 with Retry-After for a while.
#![cfg(feature = "api")]

mod common;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use common::*;
use serde_json::json;

fn prlimit(pid: u32, fsize: &str) {
    let ok = std::process::Command::new("prlimit")
        .args(["--pid", &pid.to_string(), &format!("--fsize={fsize}")])
        .status()
        .expect("prlimit (util-linux)")
        .success();
    assert!(ok, "prlimit --fsize={fsize} failed");
}

/// Every inbound external id stored, each exactly once.
async fn stored_ids(api: &Api) -> BTreeSet<String> {
    let stored = api.stored_inbound().await;
    assert!(stored.values().all(|&n| n == 1), "stored once: {stored:?}");
    stored.into_keys().collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_disk_gets_503_stores_nothing_it_refused_and_recovers() {
    // The disk that fills is the one under SQLite's file; PostgreSQL's is the server's.
    if sqlite_only("fills the file system under SQLite's file") {
        return;
    }
    let mut h = Harness::start(|dir| base_config(dir) + &api_service(""));
    let d = &h.daemon;
    let api = &h.api;
    let mut acked = BTreeSet::new();
    let mut refused = BTreeSet::new();
    let post = async |api: &Api,
                      id: String,
                      acked: &mut BTreeSet<String>,
                      refused: &mut BTreeSet<String>| {
        let (status, body) = api
            .inbound(&id, &format!("c-{}", id.len() % 7), "hello")
            .await;
        match status {
            201 => {
                acked.insert(id);
            }
            503 => {
                assert_eq!(body["error"]["code"], "unavailable", "{body}");
                refused.insert(id);
            }
            other => panic!("unexpected {other}: {body}"),
        }
    };
    for i in 0..20 {
        post(api, format!("before-{i}"), &mut acked, &mut refused).await;
    }
    assert_eq!(acked.len(), 20);

    // The disk is "full": no file may grow past one byte.
    prlimit(d.pid(), "1:unlimited");
    for i in 0..20 {
        post(api, format!("full-{i}"), &mut acked, &mut refused).await;
    }
    assert_eq!(
        refused.len(),
        20,
        "every write while the disk is full is refused"
    );
    let metrics = reqwest::get(d.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        !metrics.contains("switchboard_writer_failed_batches_total 0"),
        "failures are counted"
    );

    // Space returns: writes succeed again without a restart.
    prlimit(d.pid(), "unlimited:unlimited");
    for i in 0..20 {
        post(api, format!("after-{i}"), &mut acked, &mut refused).await;
    }
    assert_eq!(acked.len(), 40, "the daemon recovered");
    assert!(
        d.log_text().contains("a write batch failed"),
        "the failure is logged"
    );

    // Exactly the acknowledged messages are stored, and they survive a kill -9.
    assert_eq!(stored_ids(api).await, acked);
    h.crash();
    h.start_again(&[]);
    let api = &h.api;
    assert_eq!(stored_ids(api).await, acked);
    h.finish();
}

/// A provider that answers 429 (Retry-After: 1) twice, then 503 (Retry-After: 1) twice,
/// then 200, recording when each attempt came.
async fn grumpy_provider() -> (FakeServer, Arc<Mutex<Vec<Instant>>>) {
    let seen: Arc<Mutex<Vec<Instant>>> = Default::default();
    let s = seen.clone();
    let app = axum::Router::new().fallback(move || {
        let s = s.clone();
        async move {
            let n = {
                let mut v = s.lock().unwrap();
                v.push(Instant::now());
                v.len()
            };
            match n {
                1 | 2 => (
                    StatusCode::TOO_MANY_REQUESTS,
                    [("retry-after", "1")],
                    "slow down",
                ),
                3 | 4 => (
                    StatusCode::SERVICE_UNAVAILABLE,
                    [("retry-after", "1")],
                    "maintenance",
                ),
                _ => (StatusCode::OK, [("retry-after", "0")], "{}"),
            }
        }
    });
    (FakeServer::spawn(app).await, seen)
}

#[tokio::test]
async fn a_provider_answering_429_and_503_gets_the_message_once_after_retry_after() {
    let (provider, seen) = grumpy_provider().await;
    let params = format!(
        "callback_url = \"{}\"\ncallback_secret = \"{WEBHOOK_SECRET}\"",
        provider.url("/callback")
    );
    let h = Harness::start(|dir| base_config(dir) + &api_service(&params));
    let api = &h.api;
    let (_, m) = api.inbound("m-1", "c-1", "hello").await;
    let conv = m["conversation_id"].as_str().unwrap();
    let (_, reply) = api
        .post(
            &format!("/v1/conversations/{conv}/messages"),
            &json!({"text": "hi"}),
        )
        .await;
    let id = reply["id"].as_str().unwrap().to_owned();
    eventually(Duration::from_secs(20), "the reply sent", || async {
        let (_, m) = api.get(&format!("/v1/messages/{id}")).await;
        (m["status"] == "sent").then_some(())
    })
    .await;
    let times = seen.lock().unwrap().clone();
    assert_eq!(times.len(), 5, "four refusals, one success, nothing after");
    // Our own backoff here is at most 400 ms; every gap honours Retry-After: 1.
    for w in times.windows(2) {
        assert!(
            w[1] - w[0] >= Duration::from_millis(950),
            "a retry came after {:?}",
            w[1] - w[0]
        );
    }
    let (_, m) = api.get(&format!("/v1/messages/{id}")).await;
    assert_eq!(m["error"], serde_json::Value::Null);
    h.finish();
    provider.stop().await;
}
