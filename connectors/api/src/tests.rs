//! The compliance suite (config and callback delivery; the type has no hooks) and the
//! callback's Standard Webhooks signature, checked independently of `signing`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use switchboard_core::testkit::RecordingHost;
use switchboard_core::testkit::compliance::{self, Fixture};
use switchboard_core::testkit::fake::{Answer, Recorder, Request};
use switchboard_core::{OutboundMessage, ServiceType};

/// `whsec_` + base64 of "callback-secret-for-unit-tests".
const SECRET: &str = "whsec_Y2FsbGJhY2stc2VjcmV0LWZvci11bml0LXRlc3Rz";
const TOKEN: &str = "a-bearer-token-of-32-characters!";

struct Suite;

impl Fixture for Suite {
    type Type = crate::Api;

    /// The callback receiver is the business's own system; its 401/403 is its verdict
    /// on the message, as any other 4xx.
    const REFUSALS: &'static [u16] = &[];

    fn params(api_base: &str) -> Value {
        json!({"tokens": {"bot": {"token": TOKEN, "scopes": ["read", "reply"]}},
               "callback_url": format!("{api_base}/callback"), "callback_secret": SECRET})
    }

    fn invalid() -> Vec<(Value, Vec<&'static str>)> {
        vec![
            (
                json!({"tokens": {"bot": {"token": "short", "scopes": []}}}),
                vec!["tokens.bot.token", "tokens.bot.scopes"],
            ),
            (
                json!({"callback_url": "ftp://x", "callback_secret": "whsec_!"}),
                vec!["callback_url", "callback_secret"],
            ),
            (json!({"callback_url": "http://x"}), vec!["callback_secret"]),
        ]
    }

    fn outbound() -> Option<OutboundMessage> {
        Some(compliance::outbound(None, "c-42", "Hi Mary", &[]))
    }

    fn route(req: &Request) -> (bool, Answer) {
        match (req.method.as_str(), req.path.as_str()) {
            ("POST", "/callback") => (true, Answer::json(200, json!({"external_id": "r-1"}))),
            _ => (false, Answer::empty(404)),
        }
    }

    fn error(status: u16, text: &str) -> Answer {
        Answer::json(status, json!({"error": text}))
    }
}

switchboard_core::compliance_suite!(Suite);

/// `v1,` + base64 HMAC-SHA256 over `{id}.{timestamp}.{body}`, keyed with the decoded
/// secret (the Standard Webhooks spec).
fn expected_signature(id: &str, ts: &str, body: &[u8]) -> String {
    let key = STANDARD
        .decode(SECRET.strip_prefix("whsec_").unwrap())
        .unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{id}.{ts}.").as_bytes());
    mac.update(body);
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

#[test]
fn the_callback_is_signed_and_carries_message_and_conversation() {
    compliance::block_on(async {
        let rx = Recorder::start(Suite::route).await;
        let p: crate::ApiParams = serde_json::from_value(Suite::params(&rx.url(""))).unwrap();
        let c = crate::Api::build(&p).unwrap();
        let (ctx, _) = RecordingHost::context("api", "api", None);
        let out = Suite::outbound().unwrap();
        let sent = c.deliver_message(&ctx, &out).await.unwrap();
        assert_eq!(sent.external_id.as_deref(), Some("r-1"));
        let seen = rx.requests();
        let req = &seen[0].request;
        assert_eq!(req.header("webhook-id"), out.idempotency_key);
        let ts = req.header("webhook-timestamp");
        assert_eq!(
            req.header("webhook-signature"),
            expected_signature(&out.idempotency_key, ts, &req.body)
        );
        let body = req.json();
        assert_eq!(body["type"], "message.outbound");
        assert_eq!(body["data"]["message"]["text"], "Hi Mary");
        assert_eq!(
            body["data"]["conversation"]["contact"]["external_id"],
            "c-42"
        );
        rx.stop().await;
    })
}
