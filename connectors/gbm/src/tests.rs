//! The webhook handler against a recording host and a fixed clock: signature variants,
//! the setup request, welcome and out-of-hours messages, typing and receipts; and the
//! compliance suite.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use hmac::{Hmac, Mac};
use http::{HeaderMap, Method, StatusCode};
use serde_json::json;
use sha2::Sha512;
use switchboard_core::OutboundMessage;
use switchboard_core::testkit::compliance::{self, Fixture, Sample};
use switchboard_core::testkit::fake::{Answer, Request};
use switchboard_core::testkit::{FixedClock, RecordingHost};
use switchboard_core::{
    AuthorType, HookError, HookHead, HookRequest, Hooks, MessageStatus, ServiceContext,
};

use crate::auth::tests::{TestKey, service_account_json};
use crate::{GbmConnector, GbmParams};

const TEXT: &[u8] = include_bytes!("../fixtures/text-message.json");
const CLIENT_TOKEN: &str = "partner-client-token";

/// A connector open Monday to Friday, 09:00–17:00 in Amsterdam, and its context at `now`.
fn setup(now: &str) -> (GbmConnector, ServiceContext, Arc<RecordingHost>) {
    let key = TestKey::get();
    let params: GbmParams = serde_json::from_value(json!({
        "location": "loc", "welcomeMessage": "Welcome!", "starter": "Hi",
        "startTime": "09:00", "endTime": "17:00", "startDay": "MONDAY", "endDay": "FRIDAY",
        "offlineMessage": "We are closed.", "client_token": CLIENT_TOKEN,
        "service_account": service_account_json(&key.pem, None),
    }))
    .unwrap();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let (ctx, host) =
        RecordingHost::context("g", "gbm", Some(Arc::new(FixedClock(now.parse().unwrap()))));
    (GbmConnector::new(params).unwrap(), ctx, host)
}

fn sign(body: &[u8]) -> String {
    let mut mac = Hmac::<Sha512>::new_from_slice(CLIENT_TOKEN.as_bytes()).unwrap();
    mac.update(body);
    STANDARD.encode(mac.finalize().into_bytes())
}

fn request(signature: Option<&str>, body: &[u8]) -> HookRequest {
    let mut headers = HeaderMap::new();
    headers.insert("content-type", "application/json".parse().unwrap());
    if let Some(s) = signature {
        headers.insert("x-goog-signature", s.parse().unwrap());
    }
    HookRequest {
        head: HookHead {
            method: Method::POST,
            subpath: String::new(),
            path_and_query: "/hooks/g".into(),
            query: None,
            headers,
        },
        body: Bytes::copy_from_slice(body),
    }
}

fn signed(body: &[u8]) -> HookRequest {
    request(Some(&sign(body)), body)
}

/// Wednesday 2026-03-04, 10:30 in Amsterdam (CET).
const OPEN: &str = "2026-03-04T09:30:00Z";
/// Wednesday 2026-03-04, 17:01 in Amsterdam.
const CLOSED: &str = "2026-03-04T16:01:00Z";

#[tokio::test]
async fn unsigned_or_badly_signed_requests_store_nothing() {
    let (c, ctx, host) = setup(OPEN);
    let wrong = {
        let mut mac = Hmac::<Sha512>::new_from_slice(b"another-token").unwrap();
        mac.update(TEXT);
        STANDARD.encode(mac.finalize().into_bytes())
    };
    for sig in [
        None,
        Some(wrong.as_str()),
        Some(&sign(b"{}")),
        Some("!!"),
        Some(""),
    ] {
        let err = c
            .handle_webhook(&ctx, request(sig, TEXT))
            .await
            .unwrap_err();
        assert_eq!(err.status(), StatusCode::UNAUTHORIZED, "{sig:?}");
    }
    // Refused before the body is read: a bad signature on garbage is still a 401.
    let err = c
        .handle_webhook(&ctx, request(Some(&wrong), b"{not json"))
        .await
        .unwrap_err();
    assert_eq!(err.status(), StatusCode::UNAUTHORIZED);
    assert!(host.recorded().wrote_nothing());
}

#[tokio::test]
async fn the_setup_request_echoes_the_secret_for_the_right_client_token() {
    let (c, ctx, host) = setup(OPEN);
    let body = json!({"clientToken": CLIENT_TOKEN, "secret": "1234567890"}).to_string();
    for req in [request(None, body.as_bytes()), signed(body.as_bytes())] {
        let resp = c.handle_webhook(&ctx, req).await.unwrap();
        assert_eq!(resp.status, StatusCode::OK);
        assert!(resp.content_type.starts_with("text/plain"));
        assert_eq!(resp.body, Bytes::from_static(b"1234567890"));
    }
    let wrong = json!({"clientToken": "someone-else", "secret": "1234567890"}).to_string();
    let err = c
        .handle_webhook(&ctx, request(None, wrong.as_bytes()))
        .await
        .unwrap_err();
    assert!(matches!(err, HookError::Unauthorized(_)));
    assert!(host.recorded().ingests.is_empty());
}

#[tokio::test]
async fn inside_hours_a_new_conversation_is_welcomed_once() {
    let (c, ctx, host) = setup(OPEN);
    assert_eq!(
        c.handle_webhook(&ctx, signed(TEXT)).await.unwrap().status,
        StatusCode::OK
    );
    // Google's retry of the same message.
    assert_eq!(
        c.handle_webhook(&ctx, signed(TEXT)).await.unwrap().status,
        StatusCode::OK
    );
    let mut second: serde_json::Value = serde_json::from_slice(TEXT).unwrap();
    second["message"]["messageId"] = json!("MESSAGE_ID_2");
    let second = second.to_string();
    c.handle_webhook(&ctx, signed(second.as_bytes()))
        .await
        .unwrap();
    let rec = host.recorded();
    assert_eq!(rec.stored().len(), 2);
    assert_eq!(rec.system.len(), 1);
    assert_eq!(rec.system[0].idempotency_key, "welcome");
    assert_eq!(rec.system[0].text, "Welcome!");
    assert_eq!(rec.system[0].author.kind, AuthorType::System);
}

#[tokio::test]
async fn outside_hours_every_new_message_asks_for_the_offline_answer() {
    let (c, ctx, host) = setup(CLOSED);
    c.handle_webhook(&ctx, signed(TEXT)).await.unwrap();
    c.handle_webhook(&ctx, signed(TEXT)).await.unwrap();
    let mut second: serde_json::Value = serde_json::from_slice(TEXT).unwrap();
    second["message"]["messageId"] = json!("MESSAGE_ID_2");
    let second = second.to_string();
    c.handle_webhook(&ctx, signed(second.as_bytes()))
        .await
        .unwrap();
    let rec = host.recorded();
    // The host keeps one per conversation and key; the duplicate asked for nothing.
    let keys: Vec<&str> = rec
        .system
        .iter()
        .map(|m| m.idempotency_key.as_str())
        .collect();
    assert_eq!(keys, ["welcome", "offline", "offline"]);
    assert_eq!(rec.system[1].text, "We are closed.");
}

#[tokio::test]
async fn typing_and_receipts_reach_the_host() {
    let (c, ctx, host) = setup(OPEN);
    let typing = json!({"agent": "brands/b/agents/a", "conversationId": "CONV", "requestId": "r1",
                        "userStatus": {"isTyping": false, "createTime": "2021-05-04T10:00:00Z"}})
    .to_string();
    c.handle_webhook(&ctx, signed(typing.as_bytes()))
        .await
        .unwrap();
    let receipts = json!({"conversationId": "CONV", "receipts": {"receipts": [
        {"message": "conversations/CONV/messages/5c3e7cf6-0b19-5a6e-8c2d-3f1b2a4c5d6e", "receiptType": "READ"}]}})
    .to_string();
    c.handle_webhook(&ctx, signed(receipts.as_bytes()))
        .await
        .unwrap();
    let rec = host.recorded();
    assert_eq!(rec.typing, [("CONV".to_owned(), false)]);
    assert_eq!(
        rec.statuses,
        [(
            "5c3e7cf6-0b19-5a6e-8c2d-3f1b2a4c5d6e".to_owned(),
            MessageStatus::Read,
            None
        )]
    );
    assert!(rec.ingests.is_empty());
}

// ---- the compliance suite ----

struct Suite;

impl Fixture for Suite {
    type Type = crate::Gbm;

    /// Google's 403 `PERMISSION_DENIED` names a conversation that may no longer be
    /// answered (unknown, or older than 30 days): it fails that message, not the service.
    const REFUSALS: &'static [u16] = &[401];

    fn params(api_base: &str) -> serde_json::Value {
        json!({
            "location": "loc", "welcomeMessage": "Welcome!", "starter": "Hi",
            "client_token": CLIENT_TOKEN,
            "service_account": service_account_json(&TestKey::get().pem, None),
            "api_base": api_base, "token_url": format!("{api_base}/token"),
        })
    }

    fn invalid() -> Vec<(serde_json::Value, Vec<&'static str>)> {
        let mut bad = Self::params(compliance::NOWHERE);
        bad["welcomeMessage"] = json!(" ");
        bad["client_token"] = json!("");
        bad["api_base"] = json!("ftp://x");
        bad["service_account"] = json!("{}");
        vec![(
            bad,
            vec![
                "welcomeMessage",
                "client_token",
                "api_base",
                "service_account",
            ],
        )]
    }

    fn message(n: u32) -> Option<Sample> {
        let mut body: serde_json::Value = serde_json::from_slice(TEXT).unwrap();
        body["message"]["messageId"] = json!(format!("MESSAGE_ID_{n}"));
        Some(Sample::new("application/json", body.to_string()))
    }

    fn sign(sample: &mut Sample, _: &str) {
        let signature = sign(&sample.body);
        sample.set_header("x-goog-signature", signature);
    }

    fn garbage() -> Vec<(Sample, u16)> {
        let no_message = json!({"conversationId": "CONV", "message": {"text": "hi"}});
        vec![(Sample::new("application/json", no_message.to_string()), 422)]
    }

    fn outbound() -> Option<OutboundMessage> {
        Some(compliance::outbound(
            Some("conv-1"),
            "conv-1",
            "Here you go",
            &["https://f.example/a.png"],
        ))
    }

    fn route(req: &Request) -> (bool, Answer) {
        match (req.method.as_str(), req.path.as_str()) {
            ("POST", "/token") => (
                false,
                Answer::json(
                    200,
                    json!({"access_token": "ya29.test-token", "expires_in": 3600, "token_type": "Bearer"}),
                ),
            ),
            ("POST", "/v1/conversations/conv-1/messages") => {
                if req.header("authorization") != "Bearer ya29.test-token" {
                    return (true, Answer::empty(401));
                }
                (true, Answer::json(200, req.json()))
            }
            _ => (false, Answer::empty(404)),
        }
    }

    fn error(status: u16, text: &str) -> Answer {
        Answer::json(
            status,
            json!({"error": {"code": status, "message": text, "status": "FAILED_PRECONDITION"}}),
        )
    }
}

switchboard_core::compliance_suite!(Suite);
