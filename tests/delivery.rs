//! Webhook delivery against the real binary: conversations whose target hangs must not
//! starve the others (issue 14, item 7), and one conversation's events arrive in order,
//! pipelined, each with its own stable `webhook-id`.

#![cfg(all(feature = "api", feature = "webhook"))]

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::StatusCode;
use common::*;

/// A webhook target that never answers events of messages whose text starts with
/// "hang" (until it is dropped), and answers the others 200 at once, noting when.
struct Target {
    url: String,
    hanging: Arc<Mutex<usize>>,
    answered: Arc<Mutex<HashMap<String, Instant>>>,
    _server: FakeServer,
}

impl Target {
    async fn start() -> Target {
        let hanging: Arc<Mutex<usize>> = Default::default();
        let answered: Arc<Mutex<HashMap<String, Instant>>> = Default::default();
        let (h, a) = (hanging.clone(), answered.clone());
        let app = axum::Router::new().fallback(move |body: Bytes| {
            let (h, a) = (h.clone(), a.clone());
            async move {
                let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
                let text = v["data"]["message"]["text"].as_str().unwrap_or_default();
                if text.starts_with("hang") {
                    *h.lock().unwrap() += 1;
                    // Longer than the test; dropping the server ends it.
                    tokio::time::sleep(Duration::from_secs(60)).await;
                } else {
                    a.lock().unwrap().insert(text.to_owned(), Instant::now());
                }
                StatusCode::OK
            }
        });
        let server = FakeServer::spawn(app).await;
        Target {
            url: server.url("/events"),
            hanging,
            answered,
            _server: server,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hanging_conversations_do_not_starve_the_others() {
    let target = Target::start().await;
    // A 10 s timeout: the others must not wait for it.
    let h = Harness::start(|dir| {
        base_config(dir)
            + &api_service("")
            + &webhook_service(
                &target.url,
                "events = [\"message.created\"]\ntimeout = \"10s\"",
            )
    });
    let api = &h.api;

    // 20 conversations whose deliveries hang: more than the 16 slots of the service.
    for i in 0..20 {
        let (status, _) = api
            .inbound(&format!("h{i}"), &format!("hanging-{i}"), "hang")
            .await;
        assert_eq!(status, 201);
    }
    eventually(Duration::from_secs(10), "16 deliveries hanging", || async {
        (*target.hanging.lock().unwrap() >= 16).then_some(())
    })
    .await;

    // Five other conversations.
    let posted = Instant::now();
    for i in 0..5 {
        let (status, _) = api
            .inbound(
                &format!("q{i}"),
                &format!("quick-{i}"),
                &format!("quick {i}"),
            )
            .await;
        assert_eq!(status, 201);
    }
    eventually(
        Duration::from_secs(8),
        "the quick conversations delivered",
        || async { (target.answered.lock().unwrap().len() == 5).then_some(()) },
    )
    .await;
    let waited = target
        .answered
        .lock()
        .unwrap()
        .values()
        .map(|t| t.duration_since(posted))
        .max()
        .unwrap();
    eprintln!(
        "5 conversations delivered {waited:?} after posting, beside {} hanging ones",
        *target.hanging.lock().unwrap()
    );
    assert!(
        waited < Duration::from_secs(4),
        "the others waited {waited:?}, as long as the hanging ones' timeout"
    );

    h.finish();
    // Dropped, not stopped: the hanging answers end with it.
    drop(target);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_conversation_arrives_in_order_with_one_id_per_event() {
    let rx = Receiver::start().await;
    let h = Harness::start(|dir| {
        base_config(dir)
            + &api_service("")
            + &webhook_service(&rx.url("/events"), "events = [\"message.created\"]")
    });
    let n = 300;
    // Posted concurrently into one conversation: a backlog the lane pipelines through.
    let mut posts = tokio::task::JoinSet::new();
    for i in 0..n {
        let api = Api::new(&h.daemon);
        posts.spawn(async move {
            let (status, _) = api
                .inbound(&format!("m{i}"), "one-contact", &format!("m {i}"))
                .await;
            assert_eq!(status, 201);
        });
    }
    while let Some(r) = posts.join_next().await {
        r.unwrap();
    }
    let got = eventually(Duration::from_secs(30), "every event delivered", || async {
        let got = rx.accepted();
        (got.len() >= n).then_some(got)
    })
    .await;
    let seqs: Vec<u64> = got
        .iter()
        .map(|r| r.json()["seq"].as_u64().unwrap())
        .collect();
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "one conversation's events arrive in order, once each here: {seqs:?}"
    );
    for r in &got {
        assert!(verify_standard_webhook(WEBHOOK_SECRET, r), "bad signature");
        assert_eq!(
            r.header("webhook-id"),
            format!("evt_{}", r.json()["seq"]),
            "the webhook-id is the event's"
        );
    }
    h.finish();
    rx.stop().await;
}
