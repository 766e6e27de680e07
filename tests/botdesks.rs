//! End-to-end: bot desks with handoff (issue 17), against the real binary, a fake
//! Twilio, a fake nimchat desk for the human agents, and fake Haptik and AskHandle bots
//! that check every request against the shapes their providers document.
//!
//! - a signed Twilio SMS reaches the Haptik bot; its answer reaches the SMS API;
//! - `chat_pinned` (and, separately, `POST /v1/conversations/{id}/handoff`) moves the
//!   conversation to nimchat, which gets the transcript in order, then live messages;
//! - a late bot answer after the handoff is not sent;
//! - the same flow with AskHandle, whose webhook subscriptions are registered at
//!   start-up and recreated when one is deleted, and whose missed answers are caught up
//!   after a restart;
//! - a wrong path token gets 401 with nothing stored;
//! - `handoff_after` fires after a restart (the due time is stored), and a keyword
//!   hands off with the message that named it, which the bot never gets;
//! - `check-config` refuses a bad `handoff` by its key.
#![cfg(all(
    feature = "haptik",
    feature = "askhandle",
    feature = "nimchat",
    feature = "twilio",
    feature = "api"
))]

#[path = "fakes/askhandle.rs"]
mod askhandle;
mod common;
#[path = "fakes/haptik.rs"]
mod haptik;
#[path = "fakes/nimchat.rs"]
mod nimchat;
#[path = "fakes/twilio/mod.rs"]
mod twilio_kit;

use std::time::Duration;

use askhandle::*;
use common::*;
use haptik::*;
use nimchat::{ACCESS_TOKEN, ACCOUNT, FakeNimchat, HMAC_TOKEN, INBOX, SECRET, post_webhook};
use serde_json::{Value, json};
use twilio_kit::{
    FROM_PARAM, FakeTwilio, PUBLIC, SMS_CONTACT, SMS_NUMBER, post_signed, sms_params,
    twilio_service,
};

const T: Duration = Duration::from_secs(15);

/// The nimchat desk `desk` of the human agents, with the application API (so the bot's
/// answers in a transcript show as outgoing messages).
fn human_desk(fake: &FakeNimchat) -> String {
    format!(
        r#"
[services.desk]
type = "nimchat"
[services.desk.params]
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

/// The Haptik bot `bot`, handing off to `desk`.
fn haptik_bot(fake: &FakeHaptik) -> String {
    format!(
        r#"
[services.bot]
type = "haptik"
handoff = "desk"
[services.bot.params]
base_url = "{}"
token = "{HAPTIK_TOKEN}"
client_id = "{CLIENT_ID}"
business_id = {BUSINESS}
hook_token = "{HOOK_TOKEN}"
"#,
        fake.url()
    )
}

/// The AskHandle bot `ah` (dashboard login), handing off to `desk`.
fn askhandle_bot(fake: &FakeAskHandle) -> String {
    format!(
        r#"
[services.ah]
type = "askhandle"
handoff = "desk"
[services.ah.params]
api_base = "{}"
username = "{USERNAME}"
password = "{PASSWORD}"
hook_token = "{AH_HOOK_TOKEN}"
"#,
        fake.url()
    )
}

/// The twilio service `sms`, answered first by `desk`.
fn sms_to(twilio: &FakeTwilio, desk: &str) -> String {
    twilio_service("sms", twilio, FROM_PARAM).replace(
        "type = \"twilio\"\n",
        &format!("type = \"twilio\"\ndesk = \"{desk}\"\n"),
    )
}

async fn sms(h: &Harness, sid: &str, text: &str) {
    let p = sms_params(sid, SMS_CONTACT, SMS_NUMBER, text);
    let r = post_signed(&h.daemon, &format!("{PUBLIC}/hooks/sms"), &p).await;
    assert_eq!(r.status, 200, "{}", r.body);
}

async fn outbound(api: &Api, id: &str) -> Vec<Value> {
    api.messages(id)
        .await
        .into_iter()
        .filter(|m| m["direction"] == "outbound")
        .collect()
}

fn sent_bodies(twilio: &FakeTwilio) -> Vec<String> {
    twilio
        .requests()
        .iter()
        .map(|r| r.field("Body").unwrap_or_default().to_owned())
        .collect()
}

/// Waits until the SMS API got `n` messages; their bodies.
async fn sent(twilio: &FakeTwilio, n: usize) -> Vec<String> {
    eventually(T, &format!("{n} SMS sent"), || async {
        let b = sent_bodies(twilio);
        (b.len() >= n).then_some(b)
    })
    .await
}

/// The human desk's one conversation's messages (type, content), once it has `n`.
async fn at_desk(fake: &FakeNimchat, n: usize) -> Vec<(String, String)> {
    eventually(T, &format!("{n} messages at the human desk"), || async {
        let convs = fake.conversations();
        let c = convs.first()?;
        let m: Vec<(String, String)> = fake
            .messages(c.id)
            .into_iter()
            .map(|m| (m.message_type.to_owned(), m.content.clone()))
            .collect();
        (m.len() >= n).then_some(m)
    })
    .await
}

fn pair(kind: &str, text: &str) -> (String, String) {
    (kind.to_owned(), text.to_owned())
}

/// Lets in-flight deliveries land before checking that nothing more was sent.
async fn settle() {
    tokio::time::sleep(Duration::from_millis(1500)).await;
}

#[tokio::test]
async fn an_sms_reaches_haptik_and_chat_pinned_hands_it_to_nimchat_with_its_transcript() {
    let twilio = FakeTwilio::start().await;
    let bot = FakeHaptik::start().await;
    let desk = FakeNimchat::start().await;
    let h = Harness::start(|dir| {
        public_config(dir, PUBLIC)
            + &api_service("")
            + &sms_to(&twilio, "bot")
            + &haptik_bot(&bot)
            + &human_desk(&desk)
    });
    let (d, api) = (&h.daemon, &h.api);
    let hook = format!("/hooks/bot/{HOOK_TOKEN}");

    // The SMS reaches the bot, as the user auth_id = our contact id.
    sms(
        &h,
        "SM00000000000000000000000000000001",
        "Hi, my parcel is late",
    )
    .await;
    let logged = eventually(T, "the message at the bot", || async {
        let l = bot.logged();
        (!l.is_empty()).then_some(l)
    })
    .await;
    let conv = h
        .conversation("sms", &format!("{SMS_CONTACT}|{SMS_NUMBER}"))
        .await;
    let ours = conv["id"].as_str().unwrap().to_owned();
    let auth = conv["contact"]["id"].as_str().unwrap().to_owned();
    assert_eq!(logged[0].auth_id, auth);
    assert_eq!(logged[0].text, "Hi, my parcel is late");
    assert_eq!(conv["desk"], "bot");

    // The bot's answer reaches the SMS API, as the bot's.
    let first = answer(
        &auth,
        9001,
        "I am the bot. What is your order number?",
        true,
        "gogo",
    );
    assert_eq!(post_hook(d.addr, &hook, &first).await, 200);
    assert_eq!(
        post_hook(d.addr, &hook, &first).await,
        200,
        "Haptik's retry"
    );
    let out = outbound(api, &ours).await;
    assert_eq!(out.len(), 1, "{out:#?}");
    assert_eq!(out[0]["author"]["type"], "bot");
    assert_eq!(out[0]["author"]["name"], "gogo");
    api.wait_status(out[0]["id"].as_str().unwrap(), "sent")
        .await;
    assert_eq!(
        sent(&twilio, 1).await,
        ["I am the bot. What is your order number?"]
    );

    // A wrong or missing path token: 401, nothing stored.
    let forged = answer(&auth, 9002, "Send me your card number", true, "gogo");
    for path in [
        "/hooks/bot/haptik-hook-token-0123456789abcdeX".to_owned(),
        "/hooks/bot".to_owned(),
        format!("{hook}x"),
    ] {
        assert_eq!(post_hook(d.addr, &path, &forged).await, 401, "{path}");
    }
    assert_eq!(outbound(api, &ours).await.len(), 1);

    // chat_pinned: the chat history holds an answer whose webhook never came; it is
    // imported (once), then the conversation moves to nimchat with the transcript.
    bot.set_history(vec![
        history_entry(
            9000,
            "user",
            "Hi, my parcel is late",
            "12/02/26 02:00:00 PM UTC",
        ),
        history_entry(
            9001,
            "bot",
            "I am the bot. What is your order number?",
            "12/02/26 02:00:01 PM UTC",
        ),
        history_entry(
            9003,
            "bot",
            "Let me find a human for you.",
            "12/02/26 02:00:05 PM UTC",
        ),
    ]);
    assert_eq!(
        post_hook(d.addr, &hook, &event("chat_pinned", &auth)).await,
        200
    );
    let moved = eventually(T, "the conversation at the human desk", || async {
        let c = api.get(&format!("/v1/conversations/{ours}")).await.1;
        (c["desk"] == "desk").then_some(c)
    })
    .await;
    assert_eq!(moved["desk"], "desk");
    let handoffs = events_of(d, "conversation.handoff").await;
    assert_eq!(handoffs.len(), 1, "{handoffs:#?}");
    assert_eq!(handoffs[0]["data"]["from"], "bot");
    assert_eq!(handoffs[0]["data"]["to"], "desk");
    assert_eq!(handoffs[0]["data"]["reason"], "chat_pinned");
    assert_eq!(
        at_desk(&desk, 3).await,
        [
            pair("incoming", "Hi, my parcel is late"),
            pair("outgoing", "I am the bot. What is your order number?"),
            pair("outgoing", "Let me find a human for you."),
        ],
        "the transcript, in order"
    );
    assert_eq!(
        sent(&twilio, 2).await,
        [
            "I am the bot. What is your order number?",
            "Let me find a human for you."
        ]
    );

    // Live: the contact's next message goes to the desk, not to the bot.
    sms(&h, "SM00000000000000000000000000000002", "Order 12345").await;
    assert_eq!(at_desk(&desk, 4).await[3], pair("incoming", "Order 12345"));
    assert_eq!(
        bot.logged().len(),
        1,
        "the bot no longer gets the contact's messages"
    );

    // A late bot answer: acknowledged, never sent.
    let late = answer(&auth, 9004, "Are you still there?", true, "gogo");
    assert_eq!(post_hook(d.addr, &hook, &late).await, 200);
    settle().await;
    assert_eq!(sent_bodies(&twilio).len(), 2);
    assert!(
        outbound(api, &ours)
            .await
            .iter()
            .all(|m| m["text"] != "Are you still there?")
    );

    // The human agent answers from nimchat: it reaches the SMS API.
    let theirs = desk.conversations()[0].id;
    let reply = desk.agent_message(theirs, "Hi, Anna here. It ships today.", json!({}));
    let now = jiff::Timestamp::now().as_second();
    assert_eq!(
        post_webhook(d.addr, "/hooks/desk", &reply, Some(SECRET), now, "d-1").await,
        200
    );
    assert_eq!(sent(&twilio, 3).await[2], "Hi, Anna here. It ships today.");
    assert!(bot.problems().is_empty(), "{:?}", bot.problems());
    assert!(desk.problems().is_empty(), "{:?}", desk.problems());
    d.assert_never_logged(&[HAPTIK_TOKEN, HOOK_TOKEN]);
}

#[tokio::test]
async fn the_handoff_route_moves_a_bot_conversation_with_its_transcript() {
    let twilio = FakeTwilio::start().await;
    let bot = FakeHaptik::start().await;
    let desk = FakeNimchat::start().await;
    let h = Harness::start(|dir| {
        public_config(dir, PUBLIC)
            + &api_service("")
            + &sms_to(&twilio, "bot")
            + &haptik_bot(&bot)
            + &human_desk(&desk)
    });
    let (d, api) = (&h.daemon, &h.api);
    sms(
        &h,
        "SM00000000000000000000000000000011",
        "Can I talk to someone?",
    )
    .await;
    eventually(T, "the message at the bot", || async {
        (!bot.logged().is_empty()).then_some(())
    })
    .await;
    let conv = h
        .conversation("sms", &format!("{SMS_CONTACT}|{SMS_NUMBER}"))
        .await;
    let ours = conv["id"].as_str().unwrap().to_owned();
    let auth = conv["contact"]["id"].as_str().unwrap().to_owned();
    let a = answer(&auth, 7001, "I can try to help first.", true, "gogo");
    assert_eq!(
        post_hook(d.addr, &format!("/hooks/bot/{HOOK_TOKEN}"), &a).await,
        200
    );
    sent(&twilio, 1).await;

    let path = format!("/v1/conversations/{ours}/handoff");
    for (to, status) in [("sms", 422), ("nowhere", 422)] {
        let (s, b) = api.post(&path, &json!({"to": to})).await;
        assert_eq!(s, status, "{to}: {b}");
    }
    let (s, _) = api
        .post("/v1/conversations/999999/handoff", &json!({"to": "desk"}))
        .await;
    assert_eq!(s, 404);
    assert!(
        events_of(d, "conversation.handoff").await.is_empty(),
        "refusals move nothing"
    );

    let (s, moved) = api.post(&path, &json!({"to": "desk"})).await;
    assert_eq!(s, 200, "{moved}");
    assert_eq!(moved["desk"], "desk");
    let (s, again) = api.post(&path, &json!({"to": "desk"})).await;
    assert_eq!(s, 409, "{again}");
    assert_eq!(
        at_desk(&desk, 2).await,
        [
            pair("incoming", "Can I talk to someone?"),
            pair("outgoing", "I can try to help first."),
        ]
    );
    let ev = events_of(d, "conversation.handoff").await;
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0]["data"]["reason"], "api");

    // To switchboard's own agents: /v1 shows no desk.
    let (s, to_api) = api.post(&path, &json!({"to": "api"})).await;
    assert_eq!(s, 200, "{to_api}");
    assert_eq!(to_api["desk"], Value::Null);
    assert_eq!(
        events_of(d, "conversation.handoff").await[1]["data"]["to"],
        Value::Null
    );
}

#[tokio::test]
async fn the_same_flow_with_askhandle_whose_webhooks_are_kept_registered() {
    let twilio = FakeTwilio::start().await;
    let bot = FakeAskHandle::start().await;
    let desk = FakeNimchat::start().await;
    let mut h = Harness::start(|dir| {
        public_config(dir, PUBLIC)
            + &api_service("")
            + &sms_to(&twilio, "ah")
            + &askhandle_bot(&bot)
            + &human_desk(&desk)
    });
    let target = format!("{PUBLIC}/hooks/ah/{AH_HOOK_TOKEN}");
    let hook = format!("/hooks/ah/{AH_HOOK_TOKEN}");
    let subscribed = |bot: &FakeAskHandle| {
        let mut events: Vec<String> = bot
            .webhooks()
            .iter()
            .filter(|w| w["target"] == target.as_str())
            .map(|w| w["event"].as_str().unwrap_or_default().to_owned())
            .collect();
        events.sort();
        events
    };
    eventually(T, "the subscriptions", || async {
        (subscribed(&bot) == ["chat.added", "message.added"]).then_some(())
    })
    .await;

    // The SMS opens a room and is posted there.
    sms(
        &h,
        "SM00000000000000000000000000000021",
        "Where is my refund?",
    )
    .await;
    let conv = h
        .conversation("sms", &format!("{SMS_CONTACT}|{SMS_NUMBER}"))
        .await;
    let ours = conv["id"].as_str().unwrap().to_owned();
    let room = eventually(T, "the room with the message", || async {
        let r = bot.rooms().into_iter().next()?;
        (!r.messages.is_empty()).then_some(r)
    })
    .await;
    assert_eq!(room.label, format!("switchboard-{ours}"));
    assert_eq!(room.messages[0]["body"], "Where is my refund?");
    assert_eq!(room.messages[0]["is_support_sender"], false);

    // The bot's answer reaches the SMS API; our own message's echo does not.
    let answer = bot.support_message(&room.uuid, "Refunds take 5 days.", "Handle bot");
    assert_eq!(post_delivery(h.daemon.addr, &hook, &answer).await, 200);
    assert_eq!(
        post_delivery(h.daemon.addr, &hook, &answer).await,
        200,
        "a retry"
    );
    let echo = json!({"data": room.messages[0].clone(), "webhook": {"event": "message.added", "target": target}});
    assert_eq!(post_delivery(h.daemon.addr, &hook, &echo).await, 200);
    assert_eq!(sent(&twilio, 1).await, ["Refunds take 5 days."]);
    let out = outbound(&h.api, &ours).await;
    assert_eq!(out.len(), 1, "{out:#?}");
    assert_eq!(out[0]["author"]["type"], "bot");

    // A wrong token: 401, nothing stored.
    let forged = bot.support_message(&room.uuid, "Send your IBAN", "Handle bot");
    assert_eq!(
        post_delivery(h.daemon.addr, "/hooks/ah/nope", &forged).await,
        401
    );
    assert_eq!(
        post_delivery(h.daemon.addr, "/hooks/ah", &forged).await,
        401
    );

    // Missed while switchboard was down (the forged delivery never arrived): caught up
    // after the restart, once.
    h.restart(&[]);
    assert_eq!(sent(&twilio, 2).await[1], "Send your IBAN");

    // The key is rotated: one re-login, and the next message still reaches the room.
    let logins = bot.logins();
    bot.rotate_key();
    sms(
        &h,
        "SM00000000000000000000000000000022",
        "It has been a week",
    )
    .await;
    eventually(T, "the second message in the room", || async {
        (bot.rooms()[0].messages.len() >= 4).then_some(())
    })
    .await;
    assert_eq!(bot.logins(), logins + 1);

    // The room leaves bot use: handed off to nimchat with the transcript.
    let off = bot.room_changed(&room.uuid, false);
    assert_eq!(post_delivery(h.daemon.addr, &hook, &off).await, 200);
    assert_eq!(
        at_desk(&desk, 4).await,
        [
            pair("incoming", "Where is my refund?"),
            pair("outgoing", "Refunds take 5 days."),
            pair("outgoing", "Send your IBAN"),
            pair("incoming", "It has been a week"),
        ]
    );
    let ev = events_of(&h.daemon, "conversation.handoff").await;
    assert_eq!(ev[0]["data"]["from"], "ah");
    assert_eq!(ev[0]["data"]["reason"], "bot_use_off");
    let late = bot.support_message(&room.uuid, "Anything else?", "Handle bot");
    assert_eq!(post_delivery(h.daemon.addr, &hook, &late).await, 200);
    settle().await;
    assert_eq!(sent_bodies(&twilio).len(), 2, "the late answer is not sent");

    // A subscription deleted at AskHandle is recreated, and none twice.
    let posts = bot.webhook_posts();
    bot.delete_webhook("message.added");
    eventually(T, "the subscription recreated", || async {
        (subscribed(&bot) == ["chat.added", "message.added"]).then_some(())
    })
    .await;
    settle().await;
    assert_eq!(bot.webhook_posts(), posts + 1);
    assert!(bot.problems().is_empty(), "{:?}", bot.problems());
    assert!(desk.problems().is_empty(), "{:?}", desk.problems());
    h.daemon.assert_never_logged(&[PASSWORD, AH_HOOK_TOKEN]);
}

#[test]
fn check_config_refuses_a_handoff_that_is_missing_elsewhere_or_not_a_desk() {
    let dir = tempfile::tempdir().unwrap();
    let base = base_config(dir.path());
    let bot = |handoff: &str| {
        format!(
            r#"
[services.bot]
type = "haptik"
handoff = "{handoff}"
handoff_after = "2m"
[services.bot.params]
base_url = "https://haptik.example"
token = "t"
client_id = "c"
business_id = 1
hook_token = "{HOOK_TOKEN}"
"#
        )
    };
    let elsewhere = r#"
[services.other]
type = "haptik"
organization = "acme"
[services.other.params]
base_url = "https://haptik.example"
token = "t2"
client_id = "c"
business_id = 2
hook_token = "another-haptik-hook-token-0123456"
"#;
    let write = |text: &str| {
        let path = dir.path().join("switchboard.toml");
        std::fs::write(&path, text).unwrap();
        run_cli(&["check-config", "--config", path.to_str().unwrap()], &[])
    };
    for (handoff, expected) in [
        ("nowhere", "no service \"nowhere\""),
        ("api_svc", "cannot be a desk"),
        ("other", "belongs to organization"),
        ("bot", "to itself"),
    ] {
        let api = api_service("")
            .replace("[services.api]", "[services.api_svc]")
            .replace("services.api.", "services.api_svc.");
        let (status, _, err) = write(&format!("{base}{api}{}{elsewhere}", bot(handoff)));
        assert_eq!(status.code(), Some(2), "{handoff}: {err}");
        assert!(err.contains("services.bot.handoff: "), "{err}");
        assert!(err.contains(expected), "{expected}: {err}");
    }
    let (status, _, err) = write(&format!("{base}{}{}", api_service(""), bot("api")));
    assert!(status.success(), "{err}");
}

#[tokio::test]
async fn handoff_after_fires_across_a_restart_and_a_keyword_hands_off_at_once() {
    let twilio = FakeTwilio::start().await;
    let bot = FakeHaptik::start().await;
    let desk = FakeNimchat::start().await;
    let mut h = Harness::start(|dir| {
        public_config(dir, PUBLIC)
            + &api_service("")
            + &sms_to(&twilio, "bot")
            + &haptik_bot(&bot).replace(
                "handoff = \"desk\"\n",
                "handoff = \"desk\"\nhandoff_after = \"3s\"\nhandoff_keywords = [\"human\"]\n",
            )
            + &human_desk(&desk)
    });
    sms(&h, "SM00000000000000000000000000000031", "Hello?").await;
    eventually(T, "the message at the bot", || async {
        (!bot.logged().is_empty()).then_some(())
    })
    .await;
    let conv = h
        .conversation("sms", &format!("{SMS_CONTACT}|{SMS_NUMBER}"))
        .await;
    let ours = conv["id"].as_str().unwrap().to_owned();
    // Down while the timer runs out: it is stored, and fires once the daemon is back.
    h.stop();
    tokio::time::sleep(Duration::from_secs(4)).await;
    h.start_again(&[]);
    let moved = eventually(T, "the timed-out handoff", || async {
        let c = h.api.get(&format!("/v1/conversations/{ours}")).await.1;
        (c["desk"] == "desk").then_some(c)
    })
    .await;
    assert_eq!(moved["desk"], "desk");
    let ev = events_of(&h.daemon, "conversation.handoff").await;
    assert_eq!(ev.len(), 1, "{ev:#?}");
    assert_eq!(ev[0]["data"]["reason"], "timeout");
    assert_eq!(at_desk(&desk, 1).await, [pair("incoming", "Hello?")]);
    drop(h);

    // A keyword: the message that names it goes to the human desk, not to the bot.
    let bot2 = FakeHaptik::start().await;
    let desk2 = FakeNimchat::start().await;
    let h = Harness::start(|dir| {
        public_config(dir, PUBLIC)
            + &api_service("")
            + &sms_to(&twilio, "bot")
            + &haptik_bot(&bot2).replace(
                "handoff = \"desk\"\n",
                "handoff = \"desk\"\nhandoff_keywords = [\"human\"]\n",
            )
            + &human_desk(&desk2)
    });
    sms(&h, "SM00000000000000000000000000000041", "Hi").await;
    sms(
        &h,
        "SM00000000000000000000000000000042",
        "I want a HUMAN please",
    )
    .await;
    assert_eq!(
        at_desk(&desk2, 2).await,
        [
            pair("incoming", "Hi"),
            pair("incoming", "I want a HUMAN please")
        ]
    );
    let ev = events_of(&h.daemon, "conversation.handoff").await;
    assert_eq!(ev[0]["data"]["reason"], "keyword");
    settle().await;
    let logged: Vec<String> = bot2.logged().into_iter().map(|l| l.text).collect();
    assert_eq!(logged, ["Hi"]);
}
