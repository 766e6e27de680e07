//! The compliance suite, with an independent `X-Chatwoot-Signature` signer, and the
//! desk-specific hook cases: path tokens, stale signatures, echoes, private notes,
//! resolutions.

use hmac::{Hmac, Mac};
use http::Method;
use serde_json::{Value, json};
use sha2::Sha256;
use switchboard_core::testkit::RecordingHost;
use switchboard_core::testkit::compliance::{self, Fixture, SERVICE_ID, Sample};
use switchboard_core::{AuthorType, Connector, DeskLink, HookError, ServiceType};

const SECRET: &str = "nimchat-webhook-secret";
const TOKEN: &str = "a-hook-token-of-24-chars-or-more";

struct Suite;

/// Chatwoot's `message_created` for an agent's reply in desk conversation 42.
fn agent_reply(n: u32, extra: Value) -> Value {
    let mut body = json!({
        "event": "message_created", "id": 1000 + n, "content": format!("Hello from Anna ({n})"),
        "created_at": "2026-12-02T14:00:00.000Z", "message_type": "outgoing",
        "content_type": "text", "content_attributes": {}, "private": false,
        "source_id": null, "additional_attributes": {},
        "sender": {"id": 7, "name": "Anna", "email": "anna@desk.example", "type": "user"},
        "conversation": {"id": 42, "inbox_id": 3, "status": "open",
                         "contact_inbox": {"source_id": "src-1"}, "messages": []},
        "account": {"id": 1, "name": "Acme"}, "inbox": {"id": 3, "name": "switchboard"}
    });
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            b.insert(k.clone(), v.clone());
        }
    }
    body
}

fn sign_at(sample: &mut Sample, at: i64) {
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(format!("{at}.").as_bytes());
    mac.update(&sample.body);
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    sample.set_header("x-chatwoot-signature", format!("sha256={hex}"));
    sample.set_header("x-chatwoot-timestamp", at.to_string());
    sample.set_header("x-chatwoot-delivery", "d-1");
}

fn link() -> DeskLink {
    DeskLink {
        conversation_id: "1".into(),
        desk_conversation_id: "42".into(),
        desk_contact_id: Some("src-1".into()),
    }
}

impl Fixture for Suite {
    type Type = crate::Nimchat;

    fn params(api_base: &str) -> Value {
        json!({"base_url": api_base, "inbox_identifier": "inbox-abc", "account_id": 1,
               "api_access_token": "nimchat-access-token", "hmac_token": "nimchat-hmac-token",
               "webhook_secret": SECRET})
    }

    fn invalid() -> Vec<(Value, Vec<&'static str>)> {
        vec![
            (
                json!({"base_url": "ftp://x", "inbox_identifier": " ",
                       "api_access_token": "nimchat-access-token", "hook_token": "short"}),
                vec!["base_url", "inbox_identifier", "account_id", "hook_token"],
            ),
            (
                json!({"base_url": "https://d.example", "inbox_identifier": "i"}),
                vec!["webhook_secret"],
            ),
        ]
    }

    fn message(n: u32) -> Option<Sample> {
        Some(Sample::new(
            "application/json",
            agent_reply(n, json!({})).to_string(),
        ))
    }

    /// `X-Chatwoot-Signature: sha256=<hex HMAC-SHA256 of "{timestamp}.{raw body}">`.
    fn sign(sample: &mut Sample, _: &str) {
        sign_at(sample, jiff::Timestamp::now().as_second());
    }

    fn garbage() -> Vec<(Sample, u16)> {
        let no_event = json!({"id": 1, "content": "x"});
        let no_conversation = json!({"event": "message_created", "id": 5,
                                     "message_type": "outgoing"});
        let odd_type = agent_reply(9, json!({"message_type": "sideways"}));
        [no_event, no_conversation, odd_type]
            .iter()
            .map(|b| (Sample::new("application/json", b.to_string()), 422))
            .collect()
    }

    fn links() -> Vec<DeskLink> {
        vec![link()]
    }
}

switchboard_core::compliance_suite!(Suite);

fn connector(params: Value) -> std::sync::Arc<dyn Connector> {
    let p = serde_json::from_value(params).unwrap();
    crate::Nimchat::build(&p).unwrap()
}

fn linked() -> (
    switchboard_core::ServiceContext,
    std::sync::Arc<RecordingHost>,
) {
    let (ctx, host) = RecordingHost::context(SERVICE_ID, "nimchat", None);
    host.recorded().links.push(link());
    (ctx, host)
}

#[test]
fn echoes_private_notes_and_activities_reach_no_one() {
    compliance::block_on(async {
        let c = connector(Suite::params(compliance::NOWHERE));
        let (ctx, host) = linked();
        for extra in [
            json!({"private": true}),
            json!({"message_type": "incoming", "sender": {"type": "contact", "name": "Mary"}}),
            json!({"message_type": 2}),
            json!({"message_type": "template"}),
            json!({"content_attributes": {"switchboard_id": "mir_7"}}),
            json!({"conversation": {"id": 99}}),
            json!({"content": "", "attachments": []}),
        ] {
            let mut s = Sample::new(
                "application/json",
                agent_reply(1, extra.clone()).to_string(),
            );
            Suite::sign(&mut s, "");
            let r = c.handle_webhook(&ctx, s.request(Method::POST)).await;
            assert!(r.is_ok_and(|r| r.status.is_success()), "{extra}");
        }
        assert!(host.recorded().replies.is_empty(), "{:?}", host.recorded());
    })
}

#[test]
fn a_bot_reply_with_files_keeps_its_author_and_urls() {
    compliance::block_on(async {
        let c = connector(Suite::params(compliance::NOWHERE));
        let (ctx, host) = linked();
        let body = agent_reply(
            3,
            json!({"sender": {"id": 2, "name": "Helper", "type": "agent_bot"},
                   "attachments": [{"id": 1, "file_type": "image",
                                    "data_url": "https://desk.example/rails/a.png"}]}),
        );
        let mut s = Sample::new("application/json", body.to_string());
        Suite::sign(&mut s, "");
        c.handle_webhook(&ctx, s.request(Method::POST))
            .await
            .unwrap();
        let rec = host.recorded();
        let r = &rec.replies[0];
        assert_eq!(r.conversation_id, "1");
        assert_eq!(r.idempotency_key, "msg-1003");
        assert_eq!(r.author.kind, AuthorType::Bot);
        assert_eq!(r.author.name.as_deref(), Some("Helper"));
        assert_eq!(r.attachments[0].url, "https://desk.example/rails/a.png");
    })
}

#[test]
fn a_stale_or_future_signature_is_refused() {
    compliance::block_on(async {
        let c = connector(Suite::params(compliance::NOWHERE));
        let (ctx, host) = linked();
        let now = jiff::Timestamp::now().as_second();
        for at in [now - 301, now + 301] {
            let mut s = Sample::new("application/json", agent_reply(1, json!({})).to_string());
            sign_at(&mut s, at);
            let r = c.handle_webhook(&ctx, s.request(Method::POST)).await;
            assert!(matches!(r, Err(HookError::Unauthorized(_))), "{r:?}");
        }
        assert!(host.recorded().replies.is_empty());
    })
}

#[test]
fn without_a_secret_the_path_token_authenticates() {
    compliance::block_on(async {
        let c = connector(
            json!({"base_url": compliance::NOWHERE, "inbox_identifier": "i",
                                  "hook_token": TOKEN}),
        );
        let (ctx, host) = linked();
        let body = agent_reply(1, json!({})).to_string();
        for (sub, ok) in [
            (TOKEN, true),
            ("", false),
            ("a-hook-token-of-24-chars-or-mord", false),
        ] {
            let s = Sample {
                subpath: sub.into(),
                ..Sample::new("application/json", body.clone())
            };
            let head = s.request(Method::POST).head;
            assert_eq!(c.authorize_hook(&ctx, &head).is_ok(), ok, "{sub:?}");
            let r = c.handle_webhook(&ctx, s.request(Method::POST)).await;
            assert_eq!(r.is_ok(), ok, "{sub:?}: {r:?}");
        }
        assert_eq!(host.recorded().replies.len(), 1);
    })
}

#[test]
fn a_resolution_closes_the_linked_conversation() {
    compliance::block_on(async {
        let c = connector(Suite::params(compliance::NOWHERE));
        let (ctx, host) = linked();
        let body = json!({"event": "conversation_status_changed", "id": 42, "status": "resolved",
                          "inbox_id": 3, "messages": [], "meta": {}, "changed_attributes": []});
        let mut s = Sample::new("application/json", body.to_string());
        Suite::sign(&mut s, "");
        c.handle_webhook(&ctx, s.request(Method::POST))
            .await
            .unwrap();
        assert_eq!(host.recorded().closed, ["1"]);
    })
}

#[test]
fn a_signature_over_another_body_or_key_is_refused() {
    compliance::block_on(async {
        let c = connector(Suite::params(compliance::NOWHERE));
        let (ctx, host) = linked();
        let mut s = Sample::new("application/json", agent_reply(1, json!({})).to_string());
        Suite::sign(&mut s, "");
        // The same headers over a body with other content.
        let forged = Sample {
            body: agent_reply(1, json!({"content": "Send me your password"}))
                .to_string()
                .into_bytes(),
            ..s.clone()
        };
        let r = c.handle_webhook(&ctx, forged.request(Method::POST)).await;
        assert!(matches!(r, Err(HookError::Unauthorized(_))), "{r:?}");
        // Signed with another key.
        let other = connector(
            json!({"base_url": compliance::NOWHERE, "inbox_identifier": "i",
                                      "webhook_secret": "another-secret"}),
        );
        let r = other.handle_webhook(&ctx, s.request(Method::POST)).await;
        assert!(matches!(r, Err(HookError::Unauthorized(_))), "{r:?}");
        assert!(host.recorded().replies.is_empty());
    })
}
