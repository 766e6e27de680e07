//! The compliance suite (the path token as the credential), and the bot-desk cases:
//! bot and agent answers, a late answer after the handoff, `chat_pinned` with and
//! without Haptik's own team, `chat_complete`, ignored events.

use http::Method;
use serde_json::{Value, json};
use switchboard_core::testkit::RecordingHost;
use switchboard_core::testkit::compliance::{self, Fixture, SERVICE_ID, Sample};
use switchboard_core::{AuthorType, Connector, DeskLink, ServiceType};

const TOKEN: &str = "a-haptik-hook-token-0123456789";

struct Suite;

/// Haptik's `message` event for answer `n` to user 7 (the documented example's shape).
fn event(name: &str, n: u32, extra: Value) -> Value {
    let mut body = json!({
        "version": "1.0", "timestamp": "2026-12-02T14:00:00.000Z",
        "user": {"auth_id": "7", "user_name": "ab112468917fgghdebc", "device_platform": "api"},
        "business_id": 343, "business_name": "Acme", "event_name": name,
        "agent": {"id": 4415, "name": "gogo", "profile_image": "https://assets.example/p.png",
                  "is_automated": true, "email": null},
        "message": {"id": 5000 + n, "body": {"text": format!("Bot answer {n}"), "type": "TEXT",
                                             "data": {"quick_replies": []}}}
    });
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            b.insert(k.clone(), v.clone());
        }
    }
    body
}

fn link() -> DeskLink {
    DeskLink {
        conversation_id: "1".into(),
        desk_conversation_id: "7".into(),
        desk_contact_id: Some("7".into()),
    }
}

impl Fixture for Suite {
    type Type = crate::Haptik;

    fn params(api_base: &str) -> Value {
        json!({"base_url": api_base, "token": "haptik-bearer-token", "client_id": "cl-1",
               "business_id": 343, "hook_token": TOKEN})
    }

    fn invalid() -> Vec<(Value, Vec<&'static str>)> {
        vec![(
            json!({"base_url": "ftp://x", "token": " ", "client_id": "", "business_id": "b-1",
                   "team_name": " ", "hook_token": "short"}),
            vec![
                "base_url",
                "token",
                "client_id",
                "business_id",
                "team_name",
                "hook_token",
            ],
        )]
    }

    fn message(n: u32) -> Option<Sample> {
        Some(Sample::new(
            "application/json",
            event("message", n, json!({})).to_string(),
        ))
    }

    /// Haptik signs nothing: the credential is the path token.
    fn sign(sample: &mut Sample, _: &str) {
        sample.subpath = if sample.subpath.is_empty() {
            TOKEN.to_owned()
        } else {
            format!("{TOKEN}/{}", sample.subpath)
        };
    }

    fn garbage() -> Vec<(Sample, u16)> {
        let no_event = json!({"user": {"auth_id": "7"}});
        let no_user = event("message", 1, json!({"user": null}));
        let no_message = event("message", 1, json!({"message": null}));
        // The answer's key is its id: a blank one would make all such answers one.
        let blank_id = event(
            "message",
            1,
            json!({"message": {"id": " ", "body": {"text": "Bot answer"}}}),
        );
        [no_event, no_user, no_message, blank_id]
            .iter()
            .map(|b| (Sample::new("application/json", b.to_string()), 422))
            .collect()
    }

    fn links() -> Vec<DeskLink> {
        vec![link()]
    }

    fn error(status: u16, text: &str) -> switchboard_core::testkit::fake::Answer {
        switchboard_core::testkit::fake::Answer::json(status, json!({ "error_message": text }))
    }
}

switchboard_core::compliance_suite!(Suite);

fn connector(params: Value) -> std::sync::Arc<dyn Connector> {
    let p = serde_json::from_value(params).unwrap();
    crate::Haptik::build(&p).unwrap()
}

fn linked() -> (
    switchboard_core::ServiceContext,
    std::sync::Arc<RecordingHost>,
) {
    let (ctx, host) = RecordingHost::context(SERVICE_ID, "haptik", None);
    host.recorded().links.push(link());
    (ctx, host)
}

async fn post(c: &dyn Connector, ctx: &switchboard_core::ServiceContext, body: Value) -> u16 {
    let mut s = Sample::new("application/json", body.to_string());
    Suite::sign(&mut s, "");
    match c.handle_webhook(ctx, s.request(Method::POST)).await {
        Ok(r) => r.status.as_u16(),
        Err(e) => e.status().as_u16(),
    }
}

#[test]
fn bot_and_agent_answers_keep_their_author() {
    compliance::block_on(async {
        let c = connector(Suite::params(compliance::NOWHERE));
        let (ctx, host) = linked();
        assert_eq!(post(&*c, &ctx, event("message", 1, json!({}))).await, 200);
        let human = json!({"agent": {"id": 9, "name": "Anna", "is_automated": false,
                                     "email": "anna@acme.example"}});
        assert_eq!(post(&*c, &ctx, event("message", 2, human)).await, 200);
        let rec = host.recorded();
        assert_eq!(rec.replies.len(), 2);
        assert_eq!(rec.replies[0].conversation_id, "1");
        assert_eq!(rec.replies[0].idempotency_key, "msg-5001");
        assert_eq!(rec.replies[0].author.kind, AuthorType::Bot);
        assert_eq!(rec.replies[0].author.name.as_deref(), Some("gogo"));
        assert_eq!(rec.replies[0].text.as_deref(), Some("Bot answer 1"));
        assert_eq!(rec.replies[1].author.kind, AuthorType::Agent);
        assert_eq!(rec.replies[1].author.name.as_deref(), Some("Anna"));
    })
}

#[test]
fn chat_pinned_hands_off_once_and_chat_complete_closes() {
    compliance::block_on(async {
        let c = connector(Suite::params(compliance::NOWHERE));
        let (ctx, host) = linked();
        let pinned = event("chat_pinned", 1, json!({"message": null}));
        assert_eq!(post(&*c, &ctx, pinned.clone()).await, 200);
        assert_eq!(post(&*c, &ctx, pinned).await, 200);
        assert_eq!(
            host.recorded().handoffs,
            [("1".to_owned(), "chat_pinned".to_owned())]
        );
        let complete = event("chat_complete", 1, json!({"message": null}));
        assert_eq!(post(&*c, &ctx, complete).await, 200);
        assert_eq!(host.recorded().closed, ["1"]);
    })
}

#[test]
fn with_a_haptik_team_a_pinned_chat_stays_at_haptik() {
    compliance::block_on(async {
        let mut params = Suite::params(compliance::NOWHERE);
        params["team_name"] = json!("support");
        let c = connector(params);
        let (ctx, host) = linked();
        let pinned = event("chat_pinned", 1, json!({"message": null}));
        assert_eq!(post(&*c, &ctx, pinned).await, 200);
        assert!(host.recorded().handoffs.is_empty());
    })
}

#[test]
fn unknown_users_events_and_empty_bodies_are_acknowledged_and_dropped() {
    compliance::block_on(async {
        let c = connector(Suite::params(compliance::NOWHERE));
        let (ctx, host) = linked();
        for body in [
            event("message", 1, json!({"user": {"auth_id": "999"}})),
            event(
                "message",
                1,
                json!({"message": {"id": 1, "body": {"type": "CAROUSEL"}}}),
            ),
            event("user_feedback", 1, json!({})),
        ] {
            assert_eq!(post(&*c, &ctx, body.clone()).await, 200, "{body}");
        }
        let rec = host.recorded();
        assert!(rec.replies.is_empty() && rec.handoffs.is_empty(), "{rec:?}");
    })
}
