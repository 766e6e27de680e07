//! The compliance suite (the path token as the credential), and the bot-desk cases:
//! echoes skipped, answers after a handoff dropped, a room out of bot use handing off.

use http::Method;
use serde_json::{Value, json};
use switchboard_core::testkit::RecordingHost;
use switchboard_core::testkit::compliance::{self, Fixture, SERVICE_ID, Sample};
use switchboard_core::{AuthorType, Connector, DeskLink, ServiceType};

const TOKEN: &str = "an-askhandle-hook-token-012345";
const ROOM: &str = "de1e39a5-a391-4d7f-836d-cf3589529af8";

struct Suite;

/// `message.added` for answer `n` in our room (the seed's example payload, with its room).
fn added(n: u32, support: bool) -> Value {
    json!({
        "data": {"uuid": format!("d8a2e337-9d4d-4515-979a-6f59037984{n:02}"),
                 "body": format!("Bot answer {n}"), "email": "bot@askhandle.example",
                 "nickname": "Handle bot", "is_support_sender": support,
                 "sent_at": "2026-12-02T13:06:12.373601+00:00", "room": {"uuid": ROOM}},
        "webhook": {"uuid": "273dcd5c-64e6-4560-a777-0b52caac9615", "event": "message.added",
                    "target": "http://127.0.0.1/"}
    })
}

fn link() -> DeskLink {
    DeskLink {
        conversation_id: "1".into(),
        desk_conversation_id: ROOM.into(),
        desk_contact_id: None,
    }
}

impl Fixture for Suite {
    type Type = crate::AskHandle;

    fn params(api_base: &str) -> Value {
        json!({"api_base": api_base, "token": "9944b09199c62bcf9418ad846dd0e4bbdfc6ee4b",
               "hook_token": TOKEN})
    }

    fn invalid() -> Vec<(Value, Vec<&'static str>)> {
        vec![
            (
                json!({"api_base": "ftp://x", "hook_token": "short"}),
                vec!["api_base", "token", "hook_token"],
            ),
            (
                json!({"username": "test", "hook_token": TOKEN}),
                vec!["password"],
            ),
            (
                json!({"token": "t", "username": "test", "password": "p", "hook_token": TOKEN}),
                vec!["token"],
            ),
        ]
    }

    fn message(n: u32) -> Option<Sample> {
        Some(Sample::new("application/json", added(n, true).to_string()))
    }

    /// AskHandle signs nothing: the credential is the path token.
    fn sign(sample: &mut Sample, _: &str) {
        sample.subpath = if sample.subpath.is_empty() {
            TOKEN.to_owned()
        } else {
            format!("{TOKEN}/{}", sample.subpath)
        };
    }

    fn garbage() -> Vec<(Sample, u16)> {
        let no_webhook = json!({"data": {"uuid": "x"}});
        let no_uuid = json!({"data": {"body": "x", "is_support_sender": true},
                             "webhook": {"event": "message.added", "target": "t"}});
        // The answer's key is its uuid: a blank one would make all such answers one.
        let blank_uuid = json!({"data": {"uuid": " ", "body": "x", "is_support_sender": true},
                                "webhook": {"event": "message.added", "target": "t"}});
        [no_webhook, no_uuid, blank_uuid]
            .iter()
            .map(|b| (Sample::new("application/json", b.to_string()), 422))
            .collect()
    }

    fn links() -> Vec<DeskLink> {
        vec![link()]
    }

    fn error(status: u16, text: &str) -> switchboard_core::testkit::fake::Answer {
        switchboard_core::testkit::fake::Answer::json(status, json!({ "detail": text }))
    }
}

switchboard_core::compliance_suite!(Suite);

fn connector() -> std::sync::Arc<dyn Connector> {
    let p = serde_json::from_value(Suite::params(compliance::NOWHERE)).unwrap();
    crate::AskHandle::build(&p).unwrap()
}

async fn post(c: &dyn Connector, ctx: &switchboard_core::ServiceContext, body: Value) -> u16 {
    let mut s = Sample::new("application/json", body.to_string());
    Suite::sign(&mut s, "");
    match c.handle_webhook(ctx, s.request(Method::POST)).await {
        Ok(r) => r.status.as_u16(),
        Err(e) => e.status().as_u16(),
    }
}

fn linked() -> (
    switchboard_core::ServiceContext,
    std::sync::Arc<RecordingHost>,
) {
    let (ctx, host) = RecordingHost::context(SERVICE_ID, "askhandle", None);
    host.recorded().links.push(link());
    (ctx, host)
}

#[test]
fn answers_are_stored_once_and_echoes_and_other_events_get_200() {
    compliance::block_on(async {
        let c = connector();
        let (ctx, host) = linked();
        assert_eq!(post(&*c, &ctx, added(1, true)).await, 200);
        assert_eq!(post(&*c, &ctx, added(1, true)).await, 200);
        assert_eq!(post(&*c, &ctx, added(2, false)).await, 200, "our echo");
        let lead = json!({"data": {"uuid": "l-1", "nickname": "Mary"},
                          "webhook": {"event": "lead.added", "target": "t"}});
        assert_eq!(post(&*c, &ctx, lead).await, 200);
        let rec = host.recorded();
        let keys: std::collections::BTreeSet<_> = rec
            .replies
            .iter()
            .map(|r| r.idempotency_key.clone())
            .collect();
        assert_eq!(keys.len(), 1);
        assert_eq!(rec.replies[0].author.kind, AuthorType::Bot);
        assert_eq!(rec.replies[0].author.name.as_deref(), Some("Handle bot"));
        assert_eq!(
            rec.kv.get(&format!("seen:{ROOM}")).map(String::as_str),
            Some("2026-12-02T13:06:12.373601Z")
        );
    })
}

#[test]
fn a_room_out_of_bot_use_hands_off() {
    compliance::block_on(async {
        let c = connector();
        let (ctx, host) = linked();
        let room = |bot: bool| {
            json!({"data": {"uuid": ROOM, "label": "switchboard-1",
                                               "is_bot_use": bot, "messages": []},
                                      "webhook": {"event": "chat.added", "target": "t"}})
        };
        assert_eq!(post(&*c, &ctx, room(true)).await, 200);
        assert!(host.recorded().handoffs.is_empty());
        assert_eq!(post(&*c, &ctx, room(false)).await, 200);
        assert_eq!(
            host.recorded().handoffs,
            [("1".to_owned(), "bot_use_off".to_owned())]
        );
    })
}
