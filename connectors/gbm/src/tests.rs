//! The webhook handler against a recording host and a fixed clock: verification before
//! anything is stored, the setup request, welcome and out-of-hours messages, typing and
//! receipts.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use hmac::{Hmac, Mac};
use http::{HeaderMap, Method, StatusCode};
use jiff::Timestamp;
use serde_json::json;
use sha2::Sha512;
use switchboard_core::{
    Author, AuthorType, Clock, ConnState, Connector, Contact, Conversation, ConversationStatus,
    Direction, HookError, HookRequest, Host, HostError, InboundMessage, Ingested, Message,
    MessageStatus, ServiceContext, StatusChange, SystemMessage,
};

use crate::auth::tests::{TestKey, service_account_json};
use crate::{GbmConnector, GbmParams};

const TEXT: &[u8] = include_bytes!("../fixtures/text-message.json");
const CLIENT_TOKEN: &str = "partner-client-token";

#[derive(Debug)]
struct FixedClock(Timestamp);

impl Clock for FixedClock {
    fn now(&self) -> Timestamp {
        self.0
    }
}

#[derive(Default)]
struct Recorded {
    ingests: Vec<InboundMessage>,
    system: Vec<(String, String)>,
    statuses: Vec<(String, MessageStatus)>,
    typing: Vec<(String, bool)>,
}

/// Stores nothing; answers ingests as new messages, in a new conversation unless the
/// external id was seen.
#[derive(Default)]
struct FakeHost(Mutex<Recorded>);

fn conversation(external: Option<String>) -> Conversation {
    Conversation {
        id: "41".into(),
        service_id: "g".into(),
        organization: "default".into(),
        external_id: external.clone(),
        status: ConversationStatus::Open,
        contact: Contact {
            id: "9".into(),
            service_id: "g".into(),
            external_id: external.unwrap_or_default(),
            name: None,
            email: None,
            phone: None,
        },
        created_at: Timestamp::UNIX_EPOCH,
        updated_at: Timestamp::UNIX_EPOCH,
        last_message_at: None,
    }
}

fn stored(m: &InboundMessage) -> Message {
    Message {
        id: "1".into(),
        conversation_id: "41".into(),
        service_id: "g".into(),
        direction: Direction::Inbound,
        external_id: Some(m.external_id.clone()),
        text: m.text.clone(),
        attachments: m.attachments.clone(),
        author: Author {
            kind: AuthorType::Contact,
            name: None,
        },
        status: MessageStatus::Received,
        error: None,
        created_at: Timestamp::UNIX_EPOCH,
    }
}

#[async_trait]
impl Host for FakeHost {
    async fn ingest(
        &self,
        _: &str,
        messages: Vec<InboundMessage>,
    ) -> Result<Vec<Ingested>, HostError> {
        let mut rec = self.0.lock().unwrap();
        let mut out = Vec::new();
        for m in messages {
            let seen = rec.ingests.iter().any(|i| i.external_id == m.external_id);
            let first_in_conversation = !rec
                .ingests
                .iter()
                .any(|i| i.conversation_external_id == m.conversation_external_id);
            out.push(Ingested {
                message: stored(&m),
                conversation: conversation(m.conversation_external_id.clone()),
                created: !seen,
                conversation_created: first_in_conversation,
            });
            if !seen {
                rec.ingests.push(m);
            }
        }
        Ok(out)
    }
    async fn update_status(
        &self,
        _: &str,
        external_id: &str,
        status: MessageStatus,
        _: Option<String>,
    ) -> Result<StatusChange, HostError> {
        self.0
            .lock()
            .unwrap()
            .statuses
            .push((external_id.into(), status));
        Ok(StatusChange::Updated)
    }
    async fn send_system(&self, msg: SystemMessage) -> Result<Message, HostError> {
        assert_eq!(msg.author.kind, AuthorType::System);
        self.0
            .lock()
            .unwrap()
            .system
            .push((msg.idempotency_key.clone(), msg.text.clone()));
        Err(HostError::Invalid(
            "the handler does not read the answer".into(),
        ))
    }
    async fn kv_get(&self, _: &str, _: &str) -> Result<Option<String>, HostError> {
        Ok(None)
    }
    async fn kv_put(&self, _: &str, _: &str, _: &str) -> Result<(), HostError> {
        Ok(())
    }
    fn set_state(&self, _: &str, _: ConnState) {}
    fn typing(&self, _: &str, contact: &str, typing: bool) {
        self.0.lock().unwrap().typing.push((contact.into(), typing));
    }
}

/// A connector open Monday to Friday, 09:00–17:00 in Amsterdam, and its context at `now`.
fn setup(now: &str) -> (GbmConnector, ServiceContext, Arc<FakeHost>) {
    let key = TestKey::get();
    let params: GbmParams = serde_json::from_value(json!({
        "location": "loc", "welcomeMessage": "Welcome!", "starter": "Hi",
        "startTime": "09:00", "endTime": "17:00", "startDay": "MONDAY", "endDay": "FRIDAY",
        "offlineMessage": "We are closed.", "client_token": CLIENT_TOKEN,
        "service_account": service_account_json(&key.pem, None),
    }))
    .unwrap();
    let host = Arc::new(FakeHost::default());
    let _ = rustls::crypto::ring::default_provider().install_default();
    let ctx = ServiceContext::new(
        "g",
        "gbm",
        "default",
        "http://127.0.0.1:1",
        reqwest::Client::new(),
        tokio_util::sync::CancellationToken::new(),
        Arc::new(FixedClock(now.parse().unwrap())),
        host.clone(),
    );
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
        method: Method::POST,
        subpath: String::new(),
        path_and_query: "/hooks/g".into(),
        query: None,
        headers,
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
    let rec = host.0.lock().unwrap();
    assert!(rec.ingests.is_empty() && rec.system.is_empty());
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
    assert!(host.0.lock().unwrap().ingests.is_empty());
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
    let rec = host.0.lock().unwrap();
    assert_eq!(rec.ingests.len(), 2);
    assert_eq!(rec.system, [("welcome".to_owned(), "Welcome!".to_owned())]);
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
    let rec = host.0.lock().unwrap();
    // The host keeps one per conversation and key; the duplicate asked for nothing.
    let keys: Vec<&str> = rec.system.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["welcome", "offline", "offline"]);
    assert_eq!(rec.system[1].1, "We are closed.");
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
    let rec = host.0.lock().unwrap();
    assert_eq!(rec.typing, [("CONV".to_owned(), false)]);
    assert_eq!(
        rec.statuses,
        [(
            "5c3e7cf6-0b19-5a6e-8c2d-3f1b2a4c5d6e".to_owned(),
            MessageStatus::Read
        )]
    );
    assert!(rec.ingests.is_empty());
}

#[tokio::test]
async fn only_post_to_the_root() {
    let (c, ctx, _) = setup(OPEN);
    let mut req = signed(TEXT);
    req.method = Method::GET;
    assert_eq!(
        c.handle_webhook(&ctx, req.clone()).await.unwrap_err(),
        HookError::MethodNotAllowed
    );
    req.method = Method::POST;
    req.subpath = "status".into();
    assert_eq!(
        c.handle_webhook(&ctx, req).await.unwrap_err(),
        HookError::NotFound
    );
}
