//! Webhook parsing against the fixtures, the webhook handler against a recording host
//! (several messages and receipts in one ingest), and the compliance suite.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode};
use serde_json::{Value, json};
use switchboard_core::OutboundMessage;
use switchboard_core::testkit::RecordingHost;
use switchboard_core::testkit::compliance::{self, Fixture, Sample};
use switchboard_core::testkit::fake::{Answer, Request};
use switchboard_core::{HookError, HookHead, HookRequest, Hooks, MessageStatus, ServiceContext};

use crate::webhook::parse;
use crate::{SmoochConnector, SmoochParams};
use switchboard_core::Receipt;

const V2: &str = include_str!("../fixtures/v2_conversation_message.json");
const V1: &str = include_str!("../fixtures/v1_message_appUser_text.json");
const DELIVERY_USER: &str = include_str!("../fixtures/v2_delivery_user.json");
const DELIVERY_CHANNEL: &str = include_str!("../fixtures/v2_delivery_channel.json");
const DELIVERY_FAILURE: &str = include_str!("../fixtures/v2_delivery_failure.json");

fn fixture(text: &str) -> Value {
    serde_json::from_str(text).unwrap()
}

/// The v2 fixture with `n` message events, ids `m-0`…, the given content each.
fn v2_with(contents: &[Value]) -> Value {
    let mut body = fixture(V2);
    let template = body["events"][0].clone();
    body["events"] = contents
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let mut e = template.clone();
            e["id"] = json!(format!("evt-{i}"));
            e["payload"]["message"]["id"] = json!(format!("m-{i}"));
            e["payload"]["message"]["content"] = c.clone();
            e
        })
        .collect();
    body
}

fn parse_json(v: &Value) -> Result<crate::webhook::Parsed, HookError> {
    parse(v.to_string().as_bytes())
}

#[test]
fn v2_fixture_becomes_one_message() {
    let p = parse_json(&fixture(V2)).unwrap();
    assert_eq!(p.receipts, []);
    assert_eq!(p.skipped, 0);
    let m = &p.messages[0];
    assert_eq!(m.external_id, "5f74c7d84a146f3abd72af1d");
    assert_eq!(m.contact.external_id, "26508c10541a4b0ff472e5e2");
    assert_eq!(m.contact.name.as_deref(), Some("Steve Rogers"));
    assert_eq!(
        m.conversation_external_id.as_deref(),
        Some("f52b01137aa6c250bc7251fa")
    );
    assert_eq!(m.text.as_deref(), Some("hello"));
    assert!(m.attachments.is_empty());
}

#[test]
fn v1_fixture_becomes_one_message() {
    let p = parse_json(&fixture(V1)).unwrap();
    let m = &p.messages[0];
    assert_eq!(m.external_id, "55c8c1498590aa1900b9b9b1");
    assert_eq!(m.contact.external_id, "c7f6e6d6c3a637261bd9656f");
    assert_eq!(m.contact.name.as_deref(), Some("Steve"));
    assert_eq!(
        m.conversation_external_id.as_deref(),
        Some("105e47578be874292d365ee8")
    );
    assert_eq!(m.text.as_deref(), Some("Hi! Do you have time to chat?"));

    // The original v1 example names no conversation: the message is still stored.
    let mut old = fixture(V1);
    old.as_object_mut().unwrap().remove("conversation");
    let p = parse_json(&old).unwrap();
    assert_eq!(p.messages[0].conversation_external_id, None);
}

#[test]
fn v1_media_and_other_roles() {
    let mut body = fixture(V1);
    body["messages"] = json!([
        {"_id": "a", "type": "image", "role": "appUser", "authorId": "u", "name": "Steve",
         "text": "https://media.smooch.io/x.jpg", "mediaUrl": "https://media.smooch.io/x.jpg",
         "mediaType": "image/jpeg", "received": 1.0},
        {"_id": "b", "type": "text", "role": "appMaker", "authorId": "biz", "name": "Agent",
         "text": "our own reply", "received": 2.0},
    ]);
    let p = parse_json(&body).unwrap();
    assert_eq!(p.skipped, 1);
    assert_eq!(p.messages.len(), 1);
    assert_eq!(p.messages[0].text, None, "v1.1 repeats the URL as text");
    assert_eq!(
        p.messages[0].attachments[0].content_type.as_deref(),
        Some("image/jpeg")
    );
}

#[test]
fn v2_content_types() {
    let body = v2_with(&[
        json!({"type": "image", "mediaUrl": "https://media.smooch.io/a.jpg", "mediaType": "image/jpeg", "altText": "a.jpg"}),
        json!({"type": "file", "text": "the invoice", "mediaUrl": "https://media.smooch.io/b.pdf", "mediaType": "application/pdf"}),
        json!({"type": "location", "coordinates": {"lat": 52.37, "long": 4.89}, "location": {"name": "Dam", "address": "Amsterdam"}}),
        json!({"type": "carousel", "items": []}),
    ]);
    let p = parse_json(&body).unwrap();
    let m = &p.messages;
    assert_eq!(m.len(), 4);
    assert_eq!(m[0].text, None);
    assert_eq!(m[0].attachments[0].url, "https://media.smooch.io/a.jpg");
    assert_eq!(m[0].attachments[0].name.as_deref(), Some("a.jpg"));
    assert_eq!(m[1].text.as_deref(), Some("the invoice"));
    assert_eq!(
        m[1].attachments[0].content_type.as_deref(),
        Some("application/pdf")
    );
    assert_eq!(
        m[2].text.as_deref(),
        Some("Location: Dam, Amsterdam (52.37, 4.89)")
    );
    assert_eq!(
        m[3].text.as_deref(),
        Some("[a carousel message that switchboard cannot show]")
    );
}

#[test]
fn business_messages_and_other_events_are_skipped() {
    let mut body = v2_with(&[
        json!({"type": "text", "text": "from us"}),
        json!({"type": "text", "text": "hi"}),
    ]);
    body["events"][0]["payload"]["message"]["author"] =
        json!({"type": "business", "displayName": "Anna"});
    body["events"]
        .as_array_mut()
        .unwrap()
        .push(json!({"id": "e", "type": "conversation:typing", "payload": {}}));
    let p = parse_json(&body).unwrap();
    assert_eq!(p.skipped, 2);
    assert_eq!(p.messages.len(), 1);
    assert_eq!(p.messages[0].external_id, "m-1");
}

#[test]
fn delivery_events_map_forward() {
    let r = |text: &str| parse_json(&fixture(text)).unwrap().receipts;
    assert_eq!(
        r(DELIVERY_USER),
        [Receipt {
            external_id: "5f74b82c56be263abf0ffd50".into(),
            status: MessageStatus::Delivered,
            error: None
        }]
    );
    assert_eq!(r(DELIVERY_CHANNEL)[0].status, MessageStatus::Sent);
    assert_eq!(
        r(DELIVERY_FAILURE),
        [Receipt {
            external_id: "5f74be6256be263abf0ffd5f".into(),
            status: MessageStatus::Failed,
            error: Some(
                "delivery failed: uncategorized_error: Unsupported message type `form`".into()
            )
        }]
    );
    let v1 = json!({"trigger": "message:delivery:user", "app": {"_id": "a"}, "version": "v1.1",
                    "appUser": {"_id": "u"}, "conversation": {"_id": "c"},
                    "destination": {"type": "messenger"}, "message": {"_id": "m-9"}, "isFinalEvent": true});
    assert_eq!(
        parse_json(&v1).unwrap().receipts[0],
        Receipt {
            external_id: "m-9".into(),
            status: MessageStatus::Delivered,
            error: None
        }
    );
}

#[test]
fn bad_bodies_are_named() {
    assert!(matches!(parse(b"{not json"), Err(HookError::BadRequest(_))));
    assert!(matches!(
        parse(br#"{"hello":1}"#),
        Err(HookError::Unprocessable(_))
    ));
    let mut body = v2_with(&[json!({"type": "text", "text": "x"})]);
    body["events"][0]["payload"]["message"]["author"]
        .as_object_mut()
        .unwrap()
        .remove("userId");
    body["events"][0]["payload"]["message"]["author"]
        .as_object_mut()
        .unwrap()
        .remove("user");
    let Err(HookError::Unprocessable(m)) = parse_json(&body) else {
        panic!()
    };
    assert_eq!(m, "events[0].payload.message.author.userId is missing");
    let mut body = v2_with(&[json!({"type": "text", "text": "x"})]);
    body["events"][0]["payload"]
        .as_object_mut()
        .unwrap()
        .remove("conversation");
    let Err(HookError::Unprocessable(m)) = parse_json(&body) else {
        panic!()
    };
    assert_eq!(m, "events[0].payload.conversation.id is missing");
}

// ---- the handler against a recording host ----

fn setup() -> (SmoochConnector, ServiceContext, Arc<RecordingHost>) {
    let params: SmoochParams = serde_json::from_value(json!({
        "appId": "app1", "keyId": "app_key", "secret": "api-secret", "webhook_secret": "hook-secret"
    }))
    .unwrap();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let (ctx, host) = RecordingHost::context("sun", "smooch", None);
    (SmoochConnector::new(params).unwrap(), ctx, host)
}

fn request(key: Option<&str>, body: &Value) -> HookRequest {
    let mut headers = HeaderMap::new();
    headers.insert("content-type", "application/json".parse().unwrap());
    if let Some(k) = key {
        headers.insert("x-api-key", k.parse().unwrap());
    }
    HookRequest {
        head: HookHead {
            method: Method::POST,
            subpath: String::new(),
            path_and_query: "/hooks/sun".into(),
            query: None,
            headers,
        },
        body: Bytes::from(body.to_string()),
    }
}

#[tokio::test]
async fn one_request_is_one_ingest() {
    let (c, ctx, host) = setup();
    let mut body = v2_with(&[
        json!({"type": "text", "text": "one"}),
        json!({"type": "text", "text": "two"}),
        json!({"type": "text", "text": "three"}),
    ]);
    let receipts = fixture(DELIVERY_USER)["events"][0].clone();
    body["events"].as_array_mut().unwrap().push(receipts);
    let resp = c
        .handle_webhook(&ctx, request(Some("hook-secret"), &body))
        .await
        .unwrap();
    assert_eq!(resp.status, StatusCode::OK);
    let rec = host.recorded();
    assert_eq!(rec.ingests.len(), 1, "one ingest call: one transaction");
    let texts: Vec<_> = rec.ingests[0]
        .iter()
        .map(|m| m.text.as_deref().unwrap())
        .collect();
    assert_eq!(texts, ["one", "two", "three"]);
    assert_eq!(
        rec.statuses,
        [(
            "5f74b82c56be263abf0ffd50".to_owned(),
            MessageStatus::Delivered,
            None
        )]
    );
}

// ---- the compliance suite ----

const HOOK_SECRET: &str = "sunshine-hook-secret";

struct Suite;

impl Fixture for Suite {
    type Type = crate::Smooch;

    fn params(api_base: &str) -> Value {
        json!({"appId": "app1", "keyId": "app_key", "secret": "sunshine-api-secret",
               "webhook_secret": HOOK_SECRET, "api_base": api_base})
    }

    fn invalid() -> Vec<(Value, Vec<&'static str>)> {
        vec![(
            json!({"appId": " ", "keyId": "", "secret": "", "webhook_secret": "", "api_base": "ftp://x"}),
            vec!["appId", "keyId", "secret", "webhook_secret", "api_base"],
        )]
    }

    fn message(n: u32) -> Option<Sample> {
        let mut body = fixture(V2);
        body["events"][0]["payload"]["message"]["id"] = json!(format!("msg-{n}"));
        Some(Sample::new("application/json", body.to_string()))
    }

    /// Sunshine sends the webhook's shared secret as it is.
    fn sign(sample: &mut Sample, _: &str) {
        sample.set_header("x-api-key", HOOK_SECRET);
    }

    fn garbage() -> Vec<(Sample, u16)> {
        let bodies = [
            json!("not a webhook"),
            json!({"events": [{"type": "conversation:message", "payload": {}}]}),
        ];
        bodies
            .iter()
            .map(|b| (Sample::new("application/json", b.to_string()), 422))
            .collect()
    }

    fn outbound() -> Option<OutboundMessage> {
        Some(compliance::outbound(
            Some("conv-1"),
            "user-1",
            "Here you go",
            &["https://f.example/a.png", "https://f.example/b.pdf"],
        ))
    }

    fn route(req: &Request) -> (bool, Answer) {
        if req.method == Method::POST && req.path == "/v2/apps/app1/conversations/conv-1/messages" {
            let basic = format!("Basic {}", STANDARD.encode("app_key:sunshine-api-secret"));
            if req.header("authorization") != basic {
                return (true, Answer::empty(401));
            }
            return (
                true,
                Answer::json(
                    201,
                    json!({"messages": [{"id": "5f748c1a2b5315fc007e7977"}]}),
                ),
            );
        }
        (false, Answer::empty(404))
    }

    fn error(status: u16, text: &str) -> Answer {
        Answer::json(
            status,
            json!({"errors": [{"code": "bad_request", "title": text}]}),
        )
    }
}

switchboard_core::compliance_suite!(Suite);
