//! The compliance suite, with an independent `X-Hub-Signature` signer and a fake
//! Intercom that answers the way the 2.14 spec documents it.

use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha1::Sha1;
use switchboard_core::OutboundMessage;
use switchboard_core::testkit::compliance::{self, Fixture, Sample};
use switchboard_core::testkit::fake::{Answer, Request};

const CLIENT_SECRET: &str = "intercom-client-secret";
const TOKEN: &str = "intercom-access-token";

struct Suite;

impl Fixture for Suite {
    type Type = crate::Intercom;

    fn params(api_base: &str) -> Value {
        json!({"app_id": "a86dr8yl", "access_token": TOKEN, "assignee_id": 846956,
               "client_secret": CLIENT_SECRET, "api_base": api_base})
    }

    fn invalid() -> Vec<(Value, Vec<&'static str>)> {
        vec![(
            json!({"app_id": " ", "access_token": "", "assignee_id": "", "client_secret": "",
                   "api_base": "ftp://x", "poll_interval": "100ms"}),
            vec![
                "app_id",
                "access_token",
                "assignee_id",
                "client_secret",
                "api_base",
                "poll_interval",
            ],
        )]
    }

    fn message(n: u32) -> Option<Sample> {
        let body = json!({
            "type": "notification_event", "id": format!("notif_{n}"),
            "topic": "conversation.user.replied", "app_id": "a86dr8yl",
            "data": {"type": "notification_event_data", "item": {
                "type": "conversation", "id": "conv-1", "updated_at": 1700000000,
                "conversation_parts": {"conversation_parts": [{
                    "id": format!("part-{n}"), "part_type": "comment", "body": "<p>Hello</p>",
                    "created_at": 1700000000, "author": {"type": "user", "id": "contact-1", "name": "Mary"}
                }]}
            }}
        });
        Some(Sample::new("application/json", body.to_string()))
    }

    /// `X-Hub-Signature: sha1=<hex HMAC-SHA1 of the raw body>`, keyed with the app's
    /// client secret (Intercom's signed-notifications page).
    fn sign(sample: &mut Sample, _: &str) {
        let mut mac = Hmac::<Sha1>::new_from_slice(CLIENT_SECRET.as_bytes()).unwrap();
        mac.update(&sample.body);
        let hex: String = mac
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        sample.set_header("x-hub-signature", format!("sha1={hex}"));
    }

    fn garbage() -> Vec<(Sample, u16)> {
        let no_topic = json!({"type": "notification_event", "data": {}});
        let no_item = json!({"topic": "conversation.user.replied", "app_id": "a86dr8yl"});
        let not_a_conversation = json!({"topic": "conversation.user.replied",
            "app_id": "a86dr8yl", "data": {"item": {"id": []}}});
        [no_topic, no_item, not_a_conversation]
            .iter()
            .map(|b| (Sample::new("application/json", b.to_string()), 422))
            .collect()
    }

    fn outbound() -> Option<OutboundMessage> {
        Some(compliance::outbound(
            Some("conv-1"),
            "contact-1",
            "Hi Mary",
            &["https://f.example/a.png"],
        ))
    }

    fn route(req: &Request) -> (bool, Answer) {
        if req.header("authorization") != format!("Bearer {TOKEN}")
            || req.header("intercom-version") != "2.14"
        {
            return (req.path.ends_with("/reply"), Answer::empty(401));
        }
        let empty = json!({"type": "conversation", "id": "conv-1",
                           "conversation_parts": {"conversation_parts": []}});
        match (req.method.as_str(), req.path.as_str()) {
            ("POST", "/conversations/search") => (
                false,
                Answer::json(
                    200,
                    json!({"type": "conversation.list", "conversations": []}),
                ),
            ),
            ("GET", "/conversations/conv-1") => (false, Answer::json(200, empty)),
            ("POST", "/conversations/conv-1/reply") => {
                let mut answer = empty;
                answer["conversation_parts"]["conversation_parts"] = json!([{
                    "id": "part-9", "part_type": "comment", "body": req.json()["body"],
                    "author": {"type": "admin", "id": "846956"}
                }]);
                (true, Answer::json(200, answer))
            }
            _ => (false, Answer::empty(404)),
        }
    }

    fn error(status: u16, text: &str) -> Answer {
        Answer::json(
            status,
            json!({"type": "error.list", "errors": [{"code": "parameter_invalid", "message": text}]}),
        )
    }
}

switchboard_core::compliance_suite!(Suite);
