//! The compliance suite against a fake Dashly that answers in the `meta` envelope and
//! checks the key and `id_as_string` on every request, and the budget's own rules.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{Value, json};
use switchboard_core::OutboundMessage;
use switchboard_core::testkit::compliance::{self, Fixture};
use switchboard_core::testkit::fake::{Answer, Request};
use tokio_util::sync::CancellationToken;

use crate::budget::{Budget, Class};

const TOKEN: &str = "dashly-app-4321-auth-token";

/// The arguments of a request: the query of a GET, the form of a POST.
fn args(req: &Request) -> HashMap<String, String> {
    let raw: &[u8] = if req.method == http::Method::GET {
        req.query.as_deref().unwrap_or("").as_bytes()
    } else {
        &req.body
    };
    url::form_urlencoded::parse(raw).into_owned().collect()
}

fn envelope(status: u16, error: Option<(&str, &str)>, data: Value) -> Answer {
    let mut meta = json!({"status": status});
    if let Some((code, text)) = error {
        meta["error"] = code.into();
        meta["error_message"] = text.into();
    }
    Answer::json(status, json!({"meta": meta, "data": data}))
}

struct Suite;

impl Fixture for Suite {
    type Type = crate::Dashly;

    /// A 403 (`PermissionDeniedError`) is about the data asked for, "most likely it
    /// belongs to another app": the message's problem, not the key's.
    const REFUSALS: &'static [u16] = &[401];

    fn params(api_base: &str) -> Value {
        json!({"app_id": 4321, "auth_token": TOKEN, "admin_id": 77, "api_base": api_base,
               "poll_interval": "1s"})
    }

    fn invalid() -> Vec<(Value, Vec<&'static str>)> {
        vec![(
            json!({"app_id": " ", "auth_token": " ", "admin_id": "", "api_base": "ftp://x",
                   "poll_interval": "100ms"}),
            vec![
                "app_id",
                "auth_token",
                "admin_id",
                "api_base",
                "poll_interval",
            ],
        )]
    }

    fn outbound() -> Option<OutboundMessage> {
        Some(compliance::outbound(
            Some("conv-1"),
            "user-1",
            "Hi Mary",
            &["https://f.example/a.png"],
        ))
    }

    fn route(req: &Request) -> (bool, Answer) {
        let a = args(req);
        let is_reply = req.path.ends_with("/reply");
        if a.get("auth_token").map(String::as_str) != Some(TOKEN) {
            let e = ("NotAuthenticated", "Invalid (or missing) auth token");
            return (is_reply, envelope(401, Some(e), json!({})));
        }
        if a.get("id_as_string").map(String::as_str) != Some("true") {
            let e = ("ValidationError", "id_as_string missing");
            return (is_reply, envelope(400, Some(e), json!({})));
        }
        match (req.method.as_str(), req.path.as_str()) {
            ("GET", "/apps/4321/conversations") => (false, envelope(200, None, json!([]))),
            ("POST", "/conversations/conv-1/reply") => {
                let shaped = a.get("from_admin").map(String::as_str) == Some("77")
                    && a.get("body").map(String::as_str)
                        == Some("Hi Mary\nhttps://f.example/a.png");
                if !shaped {
                    let e = ("ValidationError", "body and from_admin are required");
                    return (true, envelope(400, Some(e), json!({})));
                }
                (
                    true,
                    envelope(200, None, json!({"id": "part-9", "body": a["body"]})),
                )
            }
            _ => (
                false,
                envelope(
                    404,
                    Some(("Error404", "API method does not exist")),
                    json!({}),
                ),
            ),
        }
    }

    fn error(status: u16, text: &str) -> Answer {
        let code = match status {
            401 => "NotAuthenticated",
            403 => "PermissionDeniedError",
            404 => "LookupError",
            429 => "TooManyRequests",
            s if s >= 500 => "Error500",
            _ => "ValidationError",
        };
        envelope(status, Some((code, text)), json!({}))
    }
}

switchboard_core::compliance_suite!(Suite);

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn no_window_holds_more_than_the_capacity() {
    runtime().block_on(async {
        let window = Duration::from_millis(400);
        let b = Budget::new(3, window, 0);
        let stop = CancellationToken::new();
        let start = tokio::time::Instant::now();
        let mut at = Vec::new();
        for _ in 0..7 {
            b.acquire(Class::Poll, &stop).await.unwrap();
            at.push(start.elapsed());
        }
        for w in at.windows(4) {
            assert!(w[3] - w[0] >= window, "4 tokens within one window: {at:?}");
        }
        assert!(at[2] < window / 2, "the first three go at once: {at:?}");
    });
}

#[test]
fn replies_go_ahead_of_polling_and_polling_leaves_a_reserve() {
    runtime().block_on(async {
        let window = Duration::from_millis(500);
        let b = std::sync::Arc::new(Budget::new(4, window, 1));
        let stop = CancellationToken::new();
        for _ in 0..3 {
            b.acquire(Class::Poll, &stop).await.unwrap();
        }
        assert_eq!(b.remaining(), 1);
        let poll = tokio::time::timeout(window / 5, b.acquire(Class::Poll, &stop)).await;
        assert!(poll.is_err(), "polling took the reserve");
        b.acquire(Class::Reply, &stop).await.unwrap();
        assert_eq!(b.remaining(), 0);
        // A reply and a poll wait for the same returning tokens: the reply goes first.
        let order = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let poller = tokio::spawn({
            let (b, stop, order) = (b.clone(), stop.clone(), order.clone());
            async move {
                b.acquire(Class::Poll, &stop).await.unwrap();
                order.lock().unwrap().push("poll");
            }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        b.acquire(Class::Reply, &stop).await.unwrap();
        order.lock().unwrap().push("reply");
        poller.await.unwrap();
        assert_eq!(*order.lock().unwrap(), ["reply", "poll"]);
    });
}

#[test]
fn a_pause_holds_every_class_and_a_stop_ends_the_wait() {
    runtime().block_on(async {
        let b = Budget::new(5, Duration::from_secs(60), 0);
        let stop = CancellationToken::new();
        assert_eq!(
            b.pause(Some(Duration::from_millis(300))),
            Duration::from_millis(300)
        );
        assert_eq!(b.remaining(), 0, "paused");
        let start = tokio::time::Instant::now();
        b.acquire(Class::Reply, &stop).await.unwrap();
        assert!(
            start.elapsed() >= Duration::from_millis(290),
            "{:?}",
            start.elapsed()
        );
        b.pause(Some(Duration::from_secs(30)));
        stop.cancel();
        assert!(b.acquire(Class::Poll, &stop).await.is_err());
    });
}

#[test]
fn services_with_one_key_share_one_budget() {
    let a = Budget::for_key("https://api.dashly.app/v1", "k1");
    let b = Budget::for_key("https://api.dashly.app/v1", "k1");
    let c = Budget::for_key("https://api.dashly.app/v1", "k2");
    assert!(std::sync::Arc::ptr_eq(&a, &b));
    assert!(!std::sync::Arc::ptr_eq(&a, &c));
}
