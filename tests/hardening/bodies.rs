//! Item 1 in detail: every provider's hook answers from the head when its credentials
//! are missing or malformed (the body is never waited for), a body that does not
//! arrive in time is 408, and a body waits for room in the shared budget.

use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;

use super::kit::*;
use crate::common::*;

/// [`hooks_config`] with an Intercom service `ic` and a Google one `g` besides.
fn config(dir: &std::path::Path, server: &str) -> String {
    hooks_config(dir, server)
        + &intercom_service("ic", "intercom-client-secret")
        + &gbm_service(
            dir,
            "g",
            "gbm-client-token-0123456789",
            &crate::gbm_kit::key_file(&format!("{NOWHERE}/token")),
        )
}

/// Sends `head` (with a `content-length` of 1 MiB and no body) and returns the answer's
/// status line and how long it took.
async fn head_only(d: &Daemon, path: &str, headers: &str) -> (String, Duration) {
    let mut s = tokio::net::TcpStream::connect(d.addr).await.unwrap();
    let started = Instant::now();
    s.write_all(
        format!(
            "POST {path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n{headers}content-length: 1048576\r\n\r\n"
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let got = answer(&mut s, Duration::from_secs(5)).await;
    (
        got.lines().next().unwrap_or("").to_owned(),
        started.elapsed(),
    )
}

#[tokio::test]
async fn missing_or_malformed_credentials_are_refused_before_the_body() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let h = Harness::start(|dir| config(dir, ""));
    let d = &h.daemon;
    let b64_20 = "AAAAAAAAAAAAAAAAAAAAAAAAAAA=";
    for (path, headers) in [
        ("/hooks/sun", String::new()),
        ("/hooks/sun", "x-api-key: wrong\r\n".to_owned()),
        ("/hooks/sms", String::new()),
        (
            "/hooks/sms",
            "x-twilio-signature: not-base64!\r\n".to_owned(),
        ),
        (
            "/hooks/sms",
            format!("x-twilio-signature: {}\r\n", &b64_20[..20]),
        ),
        ("/hooks/ic", String::new()),
        ("/hooks/ic", "x-hub-signature: sha256=00\r\n".to_owned()),
        (
            "/hooks/ic",
            format!("x-hub-signature: sha1={}\r\n", "0".repeat(39)),
        ),
        ("/hooks/g", format!("x-goog-signature: {b64_20}\r\n")),
    ] {
        let (status, took) = head_only(d, path, &headers).await;
        assert!(
            status.starts_with("HTTP/1.1 401"),
            "{path} {headers:?}: {status}"
        );
        assert!(
            took < Duration::from_secs(2),
            "{path} {headers:?}: answered after {took:?}"
        );
    }
    // Google's unsigned webhook-setup request is small; a larger unsigned body is
    // refused once it passes 4 KiB, without reading the rest.
    let (status, took) = head_only(d, "/hooks/g", "").await;
    assert!(status.starts_with("HTTP/1.1 401"), "{status}");
    assert!(took < Duration::from_secs(2), "{took:?}");
    let r = reqwest::Client::new()
        .post(d.url("/hooks/g"))
        .header("content-type", "application/json")
        .body(format!(
            "{{\"clientToken\":\"{}\",\"secret\":\"s\"}}",
            "x".repeat(5000)
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let e: serde_json::Value = r.json().await.unwrap();
    assert_eq!(
        e["error"]["message"],
        "an unsigned request must be at most 4096 bytes"
    );
    // Well-formed credentials still reach the full check.
    let (status, _) = head_only(d, "/hooks/sun", &format!("x-api-key: {SMOOCH_KEY}\r\n")).await;
    assert!(
        status.is_empty() || status.starts_with("HTTP/1.1 408"),
        "the body is awaited: {status}"
    );
    h.finish();
}

/// A body that does not arrive within `body_read_timeout` is 408 and stores nothing;
/// while it holds the whole budget, another body waits for room and then goes through.
#[tokio::test]
async fn slow_bodies_time_out_and_others_wait_for_room() {
    let h = Harness::start(|dir| {
        config(
            dir,
            "max_body = 8192\nmax_body_in_flight = 8192\nbody_read_timeout = \"1s\"",
        )
    });
    let d = &h.daemon;
    let mut slow = tokio::net::TcpStream::connect(d.addr).await.unwrap();
    let started = Instant::now();
    slow.write_all(
        format!(
            "POST /v1/services/api/messages HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {TOKEN}\r\n\
             content-type: application/json\r\ncontent-length: 8192\r\n\r\n{{\"external_id\""
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let api = &h.api;
    let waited = Instant::now();
    let (s, m) = api.inbound("m-1", "c-1", "hello").await;
    let waited = waited.elapsed();
    let got = answer(&mut slow, Duration::from_secs(5)).await;
    let slow_took = started.elapsed();
    assert!(got.starts_with("HTTP/1.1 408"), "{got}");
    assert!(got.contains("the body did not arrive within 1s"), "{got}");
    assert!(
        slow_took >= Duration::from_millis(900) && slow_took < Duration::from_secs(3),
        "{slow_took:?}"
    );
    assert_eq!(s, 201, "{m}");
    assert!(
        waited >= Duration::from_millis(500),
        "the second body waited for the first to give its room back: {waited:?}"
    );
    let (_, list) = api.get("/v1/conversations").await;
    assert_eq!(
        list["data"].as_array().unwrap().len(),
        1,
        "only the second was stored"
    );
    h.finish();
}
