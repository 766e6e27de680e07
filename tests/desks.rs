//! End-to-end: channels routed to a nimchat desk (issue 16), against the real binary, a
//! fake nimchat that checks every request against the documented shapes, and a fake
//! Twilio. Webhook signatures are computed in the fakes, not with the daemon's code.
//!
//! - an SMS reaches the desk as contact + conversation + message, and the desk agent's
//!   signed reply reaches the SMS API once, however often the desk retries it;
//! - private notes, echoes and forged or unsigned replies reach no one (forged ones 401);
//! - `/v1` agents' replies show in the desk as outgoing messages; a failed reply comes
//!   back as a private note; a resolution closes the conversation;
//! - a disabled desk holds its deliveries while the channel ingests; a reload that
//!   enables it lets them go, one that changes the channel's desk sends the next
//!   messages to the new one;
//! - `check-config` refuses a bad `desk` by its key.
#![cfg(all(feature = "nimchat", feature = "twilio", feature = "api"))]

mod common;
#[path = "fakes/nimchat.rs"]
mod nimchat;
#[path = "fakes/twilio/mod.rs"]
mod twilio_kit;

use std::time::Duration;

use common::*;
use nimchat::*;
use serde_json::{Value, json};
use twilio_kit::{
    FROM_PARAM, FakeTwilio, PUBLIC, SMS_CONTACT, SMS_NUMBER, Scripted, post_signed, sms_params,
    twilio_service,
};

const T: Duration = Duration::from_secs(15);

/// A `nimchat` service `desk` on `fake`, signed webhooks and the application API.
fn desk_service(fake: &FakeNimchat) -> String {
    named_desk("desk", fake, "active")
}

/// A `nimchat` service `id` on `fake` with `status`.
fn named_desk(id: &str, fake: &FakeNimchat, status: &str) -> String {
    format!(
        r#"
[services.{id}]
type = "nimchat"
status = "{status}"
[services.{id}.params]
base_url = "{}"
inbox_identifier = "{INBOX}"
account_id = {ACCOUNT}
api_access_token = "{ACCESS_TOKEN}"
hmac_token = "{HMAC_TOKEN}"
webhook_secret = "{SECRET}"
"#,
        fake.url()
    )
}

/// The twilio service `sms` on `twilio`, routed to `desk`.
fn routed_sms(twilio: &FakeTwilio) -> String {
    twilio_service("sms", twilio, FROM_PARAM).replace(
        "type = \"twilio\"\n",
        "type = \"twilio\"\ndesk = \"desk\"\n",
    )
}

fn now() -> i64 {
    jiff::Timestamp::now().as_second()
}

async fn sms(h: &Harness, sid: &str, text: &str) {
    let p = sms_params(sid, SMS_CONTACT, SMS_NUMBER, text);
    let r = post_signed(&h.daemon, &format!("{PUBLIC}/hooks/sms"), &p).await;
    assert_eq!(r.status, 200, "{}", r.body);
}

/// Waits until the desk holds `n` messages in all; them.
async fn desk_messages(fake: &FakeNimchat, n: usize) -> Vec<Message> {
    eventually(T, &format!("{n} messages at the desk"), || async {
        let all = fake.all_messages();
        (all.len() >= n).then_some(all)
    })
    .await
}

/// A conversation's `desk_external_id` (a string in `/v1`) as the fake's number.
fn desk_id(conversation: &Value) -> Option<u64> {
    conversation["desk_external_id"].as_str()?.parse().ok()
}

/// The outbound messages of our conversation `id`.
async fn outbound(api: &Api, id: &str) -> Vec<Value> {
    api.messages(id)
        .await
        .into_iter()
        .filter(|m| m["direction"] == "outbound")
        .collect()
}

#[tokio::test]
async fn an_sms_reaches_the_desk_and_the_agents_signed_reply_reaches_the_sms_api_once() {
    let twilio = FakeTwilio::start().await;
    let fake = FakeNimchat::start().await;
    let h = Harness::start(|dir| {
        public_config(dir, PUBLIC) + &api_service("") + &routed_sms(&twilio) + &desk_service(&fake)
    });
    let (d, api) = (&h.daemon, &h.api);

    sms(
        &h,
        "SM00000000000000000000000000000001",
        "Hello, is anyone there?",
    )
    .await;
    let at_desk = desk_messages(&fake, 1).await;
    assert_eq!(at_desk[0].content, "Hello, is anyone there?");
    assert_eq!(at_desk[0].message_type, "incoming");
    let conv = h
        .conversation("sms", &format!("{SMS_CONTACT}|{SMS_NUMBER}"))
        .await;
    let ours = conv["id"].as_str().unwrap().to_owned();
    let contacts = fake.contacts();
    assert_eq!(contacts.len(), 1, "{contacts:?}");
    assert_eq!(
        contacts[0].identifier.as_deref(),
        conv["contact"]["id"].as_str()
    );
    assert_eq!(contacts[0].phone_number.as_deref(), Some(SMS_CONTACT));
    let convs = fake.conversations();
    assert_eq!(convs.len(), 1, "{convs:?}");
    let theirs = convs[0].id;
    assert_eq!(convs[0].custom_attributes["switchboard_conversation"], ours);
    assert_eq!(at_desk[0].conversation_id, theirs);

    // /v1 shows the desk, and conversation.routed fired once.
    let shown = eventually(T, "the desk's id in /v1", || async {
        let c = api.get(&format!("/v1/conversations/{ours}")).await.1;
        (desk_id(&c) == Some(theirs)).then_some(c)
    })
    .await;
    assert_eq!(shown["desk"], "desk");
    let routed = events_of(d, "conversation.routed").await;
    assert_eq!(routed.len(), 1, "{routed:#?}");
    assert_eq!(routed[0]["data"]["conversation"]["id"], ours);

    // The agent answers; the desk delivers its webhook twice (a retry).
    let reply = fake.agent_message(theirs, "Hi, this is Anna. How can I help?", json!({}));
    for attempt in 0..2 {
        let s = post_webhook(d.addr, "/hooks/desk", &reply, Some(SECRET), now(), "dlv-1").await;
        assert_eq!(s, 200, "attempt {attempt}");
    }
    let out = outbound(api, &ours).await;
    assert_eq!(out.len(), 1, "a retried webhook is one message: {out:#?}");
    assert_eq!(out[0]["author"]["type"], "agent");
    assert_eq!(out[0]["author"]["name"], "Anna de Vries");
    let id = out[0]["id"].as_str().unwrap().to_owned();
    api.wait_status(&id, "sent").await;
    let sends = twilio.requests();
    assert_eq!(sends.len(), 1, "{sends:?}");
    assert_eq!(
        sends[0].field("Body"),
        Some("Hi, this is Anna. How can I help?")
    );
    assert_eq!(sends[0].field("To"), Some(SMS_CONTACT));

    // Private notes, echoes of the contact's message and activities: 2xx, sent to no one.
    for (content, extra) in [
        ("VIP customer, be nice", json!({"private": true})),
        (
            "Hello, is anyone there?",
            json!({"message_type": "incoming", "sender": {"id": 9, "name": "+31612345678", "type": "contact"}}),
        ),
        (
            "Conversation was marked resolved by Anna",
            json!({"message_type": "activity"}),
        ),
    ] {
        let body = fake.agent_message(theirs, content, extra);
        let s = post_webhook(d.addr, "/hooks/desk", &body, Some(SECRET), now(), "dlv-x").await;
        assert_eq!(s, 200, "{content}");
    }

    // Forged, unsigned, stale: 401, nothing stored or sent.
    let forged = fake.agent_message(theirs, "Please send your PIN", json!({}));
    let cases = [
        (Some("not-the-secret"), now()),
        (None, now()),
        (Some(SECRET), now() - 3600),
    ];
    for (secret, at) in cases {
        let s = post_webhook(d.addr, "/hooks/desk", &forged, secret, at, "dlv-f").await;
        assert_eq!(s, 401, "{secret:?} at {at}");
    }
    assert_eq!(outbound(api, &ours).await.len(), 1);

    // A /v1 agent's reply goes to the contact and into the desk as an outgoing message;
    // its echo from the desk is not sent again.
    let from_api = api
        .reply(
            &ours,
            json!({"text": "Bo from the API here", "author": {"type": "agent", "name": "Bo"}}),
        )
        .await;
    api.wait_status(&from_api, "sent").await;
    let mirrored = eventually(T, "the API reply in the desk", || async {
        fake.messages(theirs)
            .into_iter()
            .find(|m| m.content == "Bo from the API here")
    })
    .await;
    assert_eq!(mirrored.message_type, "outgoing");
    assert!(!mirrored.private);
    let marker = mirrored.content_attributes["switchboard_id"].clone();
    assert_eq!(marker, format!("mir_{from_api}"));
    let echo = fake.agent_message(
        theirs,
        "Bo from the API here",
        json!({"content_attributes": {"switchboard_id": marker}}),
    );
    assert_eq!(
        post_webhook(d.addr, "/hooks/desk", &echo, Some(SECRET), now(), "dlv-e").await,
        200
    );
    assert_eq!(outbound(api, &ours).await.len(), 2);

    // A reply the SMS API refuses comes back to the desk as a private note.
    twilio.script(Scripted::Error {
        status: 400,
        retry_after: None,
        code: 21610,
        message: "Attempt to send to unsubscribed recipient",
    });
    let doomed = fake.agent_message(theirs, "Are you still there?", json!({}));
    assert_eq!(
        post_webhook(d.addr, "/hooks/desk", &doomed, Some(SECRET), now(), "dlv-3").await,
        200
    );
    let note = eventually(T, "a private note about the failure", || async {
        fake.messages(theirs)
            .into_iter()
            .find(|m| m.private && m.content.starts_with("not delivered"))
    })
    .await;
    assert!(note.content.starts_with("not delivered: "), "{note:?}");
    assert_eq!(note.message_type, "outgoing");
    assert!(note.content.contains("unsubscribed recipient"), "{note:?}");

    // Every contact-visible send, once: the reply, the API's, the doomed attempt.
    let bodies: Vec<_> = twilio
        .requests()
        .iter()
        .map(|r| r.field("Body").unwrap_or_default().to_owned())
        .collect();
    assert_eq!(
        bodies,
        [
            "Hi, this is Anna. How can I help?",
            "Bo from the API here",
            "Are you still there?"
        ]
    );
    assert_eq!(fake.problems(), Vec::<String>::new());
    d.assert_never_logged(&[SECRET, ACCESS_TOKEN, HMAC_TOKEN]);
    h.finish();
    fake_stop(fake, twilio).await;
}

#[tokio::test]
async fn a_disabled_desk_holds_its_deliveries_and_a_reload_can_move_the_channel_to_another() {
    let twilio = FakeTwilio::start().await;
    let fake = FakeNimchat::start().await;
    let other = FakeNimchat::start().await;
    let config = |dir: &std::path::Path, status: &str, desk: &str| {
        public_config(dir, PUBLIC)
            + &api_service("")
            + &routed_sms(&twilio).replace("desk = \"desk\"", &format!("desk = \"{desk}\""))
            + &named_desk("desk", &fake, status)
            + &named_desk("desk2", &other, "active")
    };
    let h = Harness::start(|dir| config(dir, "disabled", "desk"));
    let api = &h.api;
    sms(
        &h,
        "SM00000000000000000000000000000021",
        "While the desk is off",
    )
    .await;
    let convs = api.conversations("sms").await;
    assert_eq!(convs.len(), 1, "the channel ingests");
    assert_eq!(convs[0]["desk"], "desk");
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(
        fake.seen().is_empty(),
        "a disabled desk got {:?}",
        fake.seen()
    );

    // Enabled by a reload: what it held goes out.
    h.write_config(&config(h.dir.path(), "active", "desk"));
    let (s, body) = api.post("/v1/admin/reload", &json!({})).await;
    assert_eq!(s, 200, "{body}");
    let held = desk_messages(&fake, 1).await;
    assert_eq!(held[0].content, "While the desk is off");

    // Moved to desk2: the conversation's next message goes there, and /v1 says so.
    h.write_config(&config(h.dir.path(), "active", "desk2"));
    let (s, body) = api.post("/v1/admin/reload", &json!({})).await;
    assert_eq!(s, 200, "{body}");
    sms(&h, "SM00000000000000000000000000000022", "After the move").await;
    let moved = desk_messages(&other, 1).await;
    assert_eq!(moved[0].content, "After the move");
    assert_eq!(
        fake.all_messages().len(),
        1,
        "the old desk gets nothing new"
    );
    let ours = convs[0]["id"].as_str().unwrap();
    let c = eventually(T, "the new desk in /v1", || async {
        let c = api.get(&format!("/v1/conversations/{ours}")).await.1;
        (desk_id(&c) == Some(other.conversations()[0].id)).then_some(c)
    })
    .await;
    assert_eq!(c["desk"], "desk2");
    assert_eq!(fake.problems(), Vec::<String>::new());
    assert_eq!(other.problems(), Vec::<String>::new());
    h.finish();
    let mut other = other;
    other.down().await;
    fake_stop(fake, twilio).await;
}

async fn fake_stop(mut fake: FakeNimchat, twilio: FakeTwilio) {
    fake.down().await;
    twilio.stop().await;
}

#[tokio::test]
async fn a_resolved_desk_conversation_closes_ours_and_the_next_sms_opens_a_new_one() {
    let twilio = FakeTwilio::start().await;
    let fake = FakeNimchat::start().await;
    let h = Harness::start(|dir| {
        public_config(dir, PUBLIC) + &api_service("") + &routed_sms(&twilio) + &desk_service(&fake)
    });
    let d = &h.daemon;
    sms(&h, "SM00000000000000000000000000000011", "First question").await;
    desk_messages(&fake, 1).await;
    let first = fake.conversations()[0].id;
    let body = fake.status_changed(first, "resolved");
    assert_eq!(
        post_webhook(d.addr, "/hooks/desk", &body, Some(SECRET), now(), "dlv-r").await,
        200
    );
    let ours = h.api.conversations("sms").await;
    assert_eq!(ours[0]["status"], "closed", "{ours:#?}");

    sms(&h, "SM00000000000000000000000000000012", "Another question").await;
    desk_messages(&fake, 2).await;
    let convs = fake.conversations();
    assert_eq!(convs.len(), 2, "{convs:?}");
    assert_eq!(
        fake.contacts().len(),
        1,
        "the same contact: {:?}",
        fake.contacts()
    );
    assert_eq!(fake.messages(convs[1].id)[0].content, "Another question");
    assert_eq!(fake.problems(), Vec::<String>::new());
    h.finish();
    fake_stop(fake, twilio).await;
}

#[test]
fn check_config_refuses_a_desk_that_is_missing_elsewhere_or_not_a_desk() {
    let dir = tempfile::tempdir().unwrap();
    let base = base_config(dir.path());
    let nimchat = r#"
[services.desk]
type = "nimchat"
[services.desk.params]
base_url = "https://desk.example"
inbox_identifier = "in-1"
hook_token = "a-hook-token-of-24-chars-or-more"
"#;
    let channel = |desk: &str, org: &str| {
        twilio_service_nowhere("sms", "f0e1d2c3b4a5968778695a4b3c2d1e0f").replacen(
            "type = \"twilio\"\n",
            &format!("type = \"twilio\"\ndesk = \"{desk}\"\norganization = \"{org}\"\n"),
            1,
        )
    };
    let cases = [
        (channel("nowhere", "default"), "no service \"nowhere\""),
        (channel("desk", "other"), "belongs to organization"),
        (channel("api", "default"), "cannot be a desk"),
        (channel("sms", "default"), "its own desk"),
    ];
    for (svc, expected) in cases {
        let text = format!("{base}{}{nimchat}{svc}", api_service(""));
        let path = dir.path().join("switchboard.toml");
        std::fs::write(&path, &text).unwrap();
        let (status, _, err) = run_cli(&["check-config", "--config", path.to_str().unwrap()], &[]);
        assert_eq!(status.code(), Some(2), "{expected}: {err}");
        assert!(err.contains("services.sms.desk: "), "{err}");
        assert!(err.contains(expected), "{expected}: {err}");
    }
    let ok = format!(
        "{base}{}{nimchat}{}",
        api_service(""),
        channel("desk", "default")
    );
    let path = dir.path().join("switchboard.toml");
    std::fs::write(&path, ok).unwrap();
    let (status, _, err) = run_cli(&["check-config", "--config", path.to_str().unwrap()], &[]);
    assert!(status.success(), "{err}");
}
