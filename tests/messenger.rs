//! End-to-end tests of the `messenger` service type: the real binary and SQLite,
//! webhooks signed here with the app secret (independently of the connector's code) and
//! posted over loopback, and a fake Graph Send API on 127.0.0.1:0 that checks every send
//! the way the Messenger Platform documents it.
#![cfg(all(feature = "messenger", feature = "api"))]

mod common;
#[path = "fakes/messenger.rs"]
mod graph;

use std::time::Duration;

use common::*;
use graph::{Answer, FakeGraph, graph_error};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

const PAGE: &str = "682498302938465";
const PSID: &str = "1254459154682919";
const APP_SECRET: &str = "messenger-app-secret-e2e-0123";
const VERIFY: &str = "messenger-verify-token-e2e";
const PAGE_TOKEN: &str = "EAAGmessengerpagetoken0123456789";

const EVENT_TEXT: &str =
    include_str!("../connectors/messenger/fixtures/docs_messages_event_text.json");
const ENTRY_ATTACHMENT: &str =
    include_str!("../connectors/messenger/fixtures/docs_messages_entry_attachment.json");

// ---- helpers ----

fn config(dir: &std::path::Path, api_base: &str) -> String {
    base_config(dir).replace(
        "retry_max = \"400ms\"",
        "retry_max = \"400ms\"\nmax_attempts = 3",
    ) + &api_service("")
        + &format!(
            r#"
[services.fb]
type = "messenger"
[services.fb.params]
page_id = "{PAGE}"
page_access_token = "{PAGE_TOKEN}"
app_secret = "{APP_SECRET}"
verify_token = "{VERIFY}"
api_base = "{api_base}"
"#
        )
}

fn start(g: &FakeGraph) -> Harness {
    Harness::start(|dir| config(dir, &g.url()))
}

/// The documented examples with their placeholders filled.
fn filled(text: &str) -> Value {
    let text = text
        .replace("<PSID>", PSID)
        .replace("<PAGE_ID>", PAGE)
        .replace("<image|video|audio|file|reel|ig_reel>", "image")
        .replace(
            "<ATTACHMENT_URL>",
            "https://scontent.xx.fbcdn.net/v/t1/photo.jpg",
        );
    serde_json::from_str(&text).unwrap()
}

fn text_event(mid: &str, text: &str) -> Value {
    let mut e = filled(EVENT_TEXT);
    e["message"]["mid"] = json!(mid);
    e["message"]["text"] = json!(text);
    e
}

fn page_body(events: Vec<Value>) -> Value {
    json!({"object": "page", "entry": [{"id": PAGE, "time": 1458692752478u64, "messaging": events}]})
}

/// `sha256=` + hex HMAC-SHA256(key, raw body), as Facebook signs.
fn sign(key: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(body);
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256={hex}")
}

/// POSTs raw bytes with this signature header (none for `None`); the status.
async fn post_raw(d: &Daemon, signature: Option<&str>, body: &[u8]) -> u16 {
    let mut req = reqwest::Client::new()
        .post(d.url("/hooks/fb"))
        .header("content-type", "application/json")
        .body(body.to_vec());
    if let Some(s) = signature {
        req = req.header("x-hub-signature-256", s);
    }
    req.send().await.unwrap().status().as_u16()
}

/// POSTs a body signed with the app secret.
async fn hook(d: &Daemon, body: &Value) -> u16 {
    let bytes = body.to_string().into_bytes();
    post_raw(d, Some(&sign(APP_SECRET, &bytes)), &bytes).await
}

fn thread() -> String {
    format!("{PAGE}:{PSID}")
}

/// [`start`] with the contact's first message stored: its conversation's id.
async fn opened(g: &FakeGraph) -> (Harness, String) {
    let h = start(g);
    assert_eq!(
        hook(
            &h.daemon,
            &page_body(vec![text_event("mid.first", "hello")])
        )
        .await,
        200
    );
    let conv = h.conversation("fb", &thread()).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    (h, conv)
}

fn no_secrets_logged(d: &Daemon) {
    d.assert_never_logged(&[APP_SECRET, VERIFY, PAGE_TOKEN]);
}

fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

// ---- the webhook ----

#[tokio::test]
async fn the_verification_get_echoes_the_challenge_only_for_the_verify_token() {
    let g = FakeGraph::start("v21.0", PAGE_TOKEN).await;
    let h = start(&g);
    let d = &h.daemon;
    let http = reqwest::Client::new();
    let get = |q: String| {
        let http = http.clone();
        let url = d.url(&format!("/hooks/fb?{q}"));
        async move {
            let r = http.get(url).send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    assert_eq!(
        get(format!(
            "hub.mode=subscribe&hub.verify_token={VERIFY}&hub.challenge=1158201444"
        ))
        .await,
        (200, "1158201444".to_owned())
    );
    let (status, body) =
        get("hub.mode=subscribe&hub.verify_token=guess&hub.challenge=1158201444".into()).await;
    assert_eq!(status, 403);
    assert!(!body.contains("1158201444"));
    let wrong_mode = format!("hub.mode=other&hub.verify_token={VERIFY}&hub.challenge=1");
    assert_eq!(get(wrong_mode).await.0, 403);
    assert_eq!(
        get("x=1".into()).await.0,
        405,
        "a GET that is no verification"
    );
    assert!(h.api.conversations("fb").await.is_empty());
    no_secrets_logged(d);
    h.finish();
    g.stop().await;
}

#[tokio::test]
async fn forged_or_unsigned_posts_are_401_and_store_nothing() {
    let g = FakeGraph::start("v21.0", PAGE_TOKEN).await;
    let h = start(&g);
    let (d, api) = (&h.daemon, &h.api);
    let events_before = read_events(d, TOKEN, 0, 1000, Duration::from_millis(300)).await;

    let body = page_body(vec![text_event("mid.forged", "hi")])
        .to_string()
        .into_bytes();
    let good = sign(APP_SECRET, &body);
    let mut tampered = body.clone();
    let at = tampered.iter().position(|b| *b == b'h').unwrap();
    tampered[at] = b'H';
    let same_length_key = APP_SECRET.replace('a', "b");
    for (what, sig, bytes) in [
        ("unsigned", None, &body),
        ("another key", Some(sign(&same_length_key, &body)), &body),
        (
            "the page token as key",
            Some(sign(PAGE_TOKEN, &body)),
            &body,
        ),
        (
            "a body changed after signing",
            Some(good.clone()),
            &tampered,
        ),
        (
            "sha1 instead of sha256",
            Some(good.replacen("sha256=", "sha1=", 1)),
            &body,
        ),
        ("not hex", Some(format!("sha256={}", "z".repeat(64))), &body),
    ] {
        assert_eq!(post_raw(d, sig.as_deref(), bytes).await, 401, "{what}");
    }
    // A body that would not parse still gets 401: nothing is parsed before the check.
    assert_eq!(post_raw(d, Some(&good), b"{\"object\": ").await, 401);
    assert!(api.conversations("fb").await.is_empty());
    let events_after = read_events(d, TOKEN, 0, 1000, Duration::from_millis(300)).await;
    assert_eq!(events_before.len(), events_after.len(), "no events written");

    // The same bytes with the right signature are taken: it was the signature refused.
    assert_eq!(post_raw(d, Some(&good), &body).await, 200);
    assert_eq!(api.conversations("fb").await.len(), 1);
    no_secrets_logged(d);
    h.finish();
    g.stop().await;
}

#[tokio::test]
async fn a_batch_is_stored_whole_without_echoes_and_a_replay_stores_nothing() {
    let g = FakeGraph::start("v21.0", PAGE_TOKEN).await;
    let h = start(&g);
    let (d, api) = (&h.daemon, &h.api);

    let mut echo = text_event("mid.echo", "our own reply");
    echo["message"]["is_echo"] = json!(true);
    let postback = json!({"sender": {"id": PSID}, "recipient": {"id": PAGE}, "timestamp": 1700000000123u64,
        "postback": {"mid": "mid.postback", "title": "Talk to a person", "payload": "HUMAN"}});
    let mut body = page_body(vec![text_event("mid.1", "first"), echo, postback]);
    let attachment = filled(ENTRY_ATTACHMENT);
    body["entry"].as_array_mut().unwrap().push(attachment);
    assert_eq!(hook(d, &body).await, 200);

    let convs = api.conversations("fb").await;
    assert_eq!(convs.len(), 1, "one page and one person, one conversation");
    assert_eq!(convs[0]["external_id"], thread());
    assert_eq!(convs[0]["contact"]["external_id"], PSID);
    let conv = convs[0]["id"].as_str().unwrap().to_owned();
    let got = api.messages(&conv).await;
    let ids: Vec<&str> = got
        .iter()
        .map(|m| m["external_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            "mid.1",
            "mid.postback",
            "mid.$cAAJdkrCd2ORnva8ErFhjGm0X_Q_c"
        ],
        "the echo is not stored"
    );
    assert_eq!(got[1]["text"], "Talk to a person");
    assert_eq!(
        got[2]["attachments"][0]["url"],
        "https://scontent.xx.fbcdn.net/v/t1/photo.jpg"
    );
    assert!(
        got.iter()
            .all(|m| m["direction"] == "inbound" && m["author"]["type"] == "contact")
    );
    let created = events_of(d, "message.created").await.len();
    assert_eq!(created, 3);

    // Facebook retries a delivery it thinks failed: the same body, signed the same.
    assert_eq!(hook(d, &body).await, 200);
    assert_eq!(
        api.messages(&conv).await.len(),
        3,
        "a replay stores nothing new"
    );
    assert_eq!(events_of(d, "message.created").await.len(), created);

    // One bad event refuses the whole batch.
    let mut bad = page_body(vec![text_event("mid.ok", "fine")]);
    bad["entry"][0]["messaging"]
        .as_array_mut()
        .unwrap()
        .push(json!({"sender": {"id": PSID}, "message": {"text": "no mid"}}));
    assert_eq!(hook(d, &bad).await, 422);
    assert_eq!(
        api.messages(&conv).await.len(),
        3,
        "nothing of the bad batch"
    );
    no_secrets_logged(d);
    h.finish();
    g.stop().await;
}

// ---- replies ----

#[tokio::test]
async fn a_reply_reaches_graph_in_the_documented_shape() {
    let g = FakeGraph::start("v21.0", PAGE_TOKEN).await;
    let (h, conv) = opened(&g).await;
    let (d, api) = (&h.daemon, &h.api);

    let id = api
        .reply(&conv, json!({"text": "Hi, Anna here", "author": {"type": "agent", "name": "Anna"},
            "attachments": [{"url": "https://files.example.com/scan.png", "content_type": "image/png"}]}))
        .await;
    let sent = api.wait_status(&id, "sent").await;
    let calls = g.calls();
    assert_eq!(calls.len(), 2, "text, then the file: {calls:?}");
    assert!(calls.iter().all(|c| c.problems.is_empty()), "{calls:?}");
    assert_eq!(
        calls[0].body,
        json!({"recipient": {"id": PSID}, "messaging_type": "RESPONSE", "message": {"text": "Hi, Anna here"}})
    );
    assert_eq!(
        calls[1].body,
        json!({"recipient": {"id": PSID}, "messaging_type": "RESPONSE",
               "message": {"attachment": {"type": "image", "payload": {"url": "https://files.example.com/scan.png", "is_reusable": false}}}})
    );
    assert_eq!(sent["external_id"], json!(calls[0].id));
    no_secrets_logged(d);
    h.finish();
    g.stop().await;
}

#[tokio::test]
async fn watermarks_move_every_earlier_reply_of_the_conversation_forward() {
    let g = FakeGraph::start("v21.0", PAGE_TOKEN).await;
    let (h, conv) = opened(&g).await;
    let (d, api) = (&h.daemon, &h.api);

    let mut early = Vec::new();
    for i in 0..3 {
        let id = api
            .reply(&conv, json!({"text": format!("reply {i}")}))
            .await;
        api.wait_status(&id, "sent").await;
        early.push(id);
    }
    tokio::time::sleep(Duration::from_millis(20)).await;
    let watermark = now_ms();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let late = api
        .reply(&conv, json!({"text": "after the watermark"}))
        .await;
    api.wait_status(&late, "sent").await;

    let receipt = |kind: &str| {
        page_body(vec![
            json!({"sender": {"id": PSID}, "recipient": {"id": PAGE}, "timestamp": watermark + 5,
            kind: {"watermark": watermark}}),
        ])
    };
    assert_eq!(hook(d, &receipt("delivery")).await, 200);
    for id in &early {
        assert_eq!(api.message(id).await["status"], "delivered", "{id}");
    }
    assert_eq!(
        api.message(&late).await["status"],
        "sent",
        "sent after the watermark"
    );
    assert_eq!(hook(d, &receipt("read")).await, 200);
    for id in &early {
        assert_eq!(api.message(id).await["status"], "read", "{id}");
    }
    assert_eq!(api.message(&late).await["status"], "sent");
    // A late delivery watermark after the read one moves nothing back.
    assert_eq!(hook(d, &receipt("delivery")).await, 200);
    assert_eq!(api.message(&early[0]).await["status"], "read");
    let statuses: Vec<Value> = events_of(d, "message.status").await;
    let count = |status: &str| {
        let of = |e: &&Value| e["data"]["message"]["status"] == status;
        statuses.iter().filter(of).count()
    };
    let (delivered, read) = (count("delivered"), count("read"));
    assert_eq!((delivered, read), (3, 3), "one event per step per message");

    // A delivery naming the late reply's mid moves it even without a newer watermark.
    let mid = api.message(&late).await["external_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let named = page_body(vec![
        json!({"sender": {"id": PSID}, "recipient": {"id": PAGE},
        "delivery": {"mids": [mid], "watermark": watermark}}),
    ]);
    assert_eq!(hook(d, &named).await, 200);
    assert_eq!(api.message(&late).await["status"], "delivered");
    h.finish();
    g.stop().await;
}

#[tokio::test]
async fn a_429_and_a_5xx_are_retried_and_retry_after_is_honoured() {
    let g = FakeGraph::start("v21.0", PAGE_TOKEN).await;
    let (h, conv) = opened(&g).await;
    g.script(&[
        Answer::Error(429, Some("1"), graph_error(100, None, "Too many requests")),
        Answer::Error(
            500,
            None,
            graph_error(
                2,
                None,
                "An unexpected error has occurred. Please retry your request later.",
            ),
        ),
    ]);
    let id = h.api.reply(&conv, json!({"text": "Patience"})).await;
    h.api.wait_status(&id, "sent").await;
    let calls = g.calls();
    let statuses: Vec<u16> = calls.iter().map(|c| c.status).collect();
    assert_eq!(statuses, [429, 500, 200]);
    let waited = calls[1].at - calls[0].at;
    assert!(
        waited >= Duration::from_millis(950),
        "retried after {waited:?}"
    );
    assert!(calls.iter().all(|c| c.body == calls[0].body));
    h.finish();
    g.stop().await;
}

#[tokio::test]
async fn rate_limit_codes_wait_without_spending_attempts() {
    let g = FakeGraph::start("v21.0", PAGE_TOKEN).await;
    let (h, conv) = opened(&g).await;
    // max_attempts is 3 here: four rate limits would kill the reply if they counted.
    let limited = |code| {
        Answer::Error(
            400,
            Some("1"),
            graph_error(
                code,
                None,
                "(#613) Calls to this api have exceeded the rate limit.",
            ),
        )
    };
    g.script(&[limited(613), limited(4), limited(32), limited(613)]);
    let id = h.api.reply(&conv, json!({"text": "Slowly"})).await;
    let sent = h.api.wait_status(&id, "sent").await;
    assert_eq!(sent["error"], Value::Null);
    let calls = g.calls();
    let statuses: Vec<u16> = calls.iter().map(|c| c.status).collect();
    assert_eq!(statuses, [400, 400, 400, 400, 200]);
    for pair in calls.windows(2) {
        let waited = pair[1].at - pair[0].at;
        assert!(waited >= Duration::from_millis(950), "waited {waited:?}");
    }
    h.finish();
    g.stop().await;
}

#[tokio::test]
async fn a_reply_outside_the_24_hour_window_fails_with_graphs_text() {
    let g = FakeGraph::start("v21.0", PAGE_TOKEN).await;
    let (h, conv) = opened(&g).await;
    g.script(&[Answer::Error(
        400,
        None,
        graph_error(
            10,
            Some(2018278),
            "(#10) This message is sent outside of allowed window.",
        ),
    )]);
    let id = h.api.reply(&conv, json!({"text": "Still there?"})).await;
    let failed = h.api.wait_status(&id, "failed").await;
    let error = failed["error"].as_str().unwrap();
    assert!(
        error.contains("outside Messenger's 24-hour window"),
        "{error}"
    );
    assert!(
        error.contains("(#10) This message is sent outside of allowed window."),
        "{error}"
    );
    assert_eq!(g.calls().len(), 1, "not retried");

    // Another 4xx: permanent, with Graph's own words.
    g.script(&[Answer::Error(
        400,
        None,
        graph_error(100, Some(2018001), "(#100) No matching user found"),
    )]);
    let id = h.api.reply(&conv, json!({"text": "Hello?"})).await;
    let failed = h.api.wait_status(&id, "failed").await;
    assert!(
        failed["error"]
            .as_str()
            .unwrap()
            .contains("(#100) No matching user found"),
        "{failed}"
    );
    h.finish();
    g.stop().await;
}

#[tokio::test]
async fn a_rejected_token_fails_the_service_and_holds_replies_until_it_works() {
    let g = FakeGraph::start("v21.0", PAGE_TOKEN).await;
    let (h, conv) = opened(&g).await;
    let (d, api) = (&h.daemon, &h.api);
    api.wait_state("fb", "connected").await;
    let expired = graph_error(
        190,
        Some(463),
        "Error validating access token: Session has expired.",
    );
    g.script(&[
        Answer::Error(400, None, expired.clone()),
        Answer::Error(400, None, expired),
    ]);
    let id = api.reply(&conv, json!({"text": "Are you there?"})).await;
    let state = api.wait_state("fb", "failed").await;
    assert!(
        state["reason"]
            .as_str()
            .unwrap()
            .contains("page access token"),
        "{state}"
    );
    assert_eq!(
        api.message(&id).await["status"],
        "pending",
        "held, not failed"
    );
    let sent = api.wait_status(&id, "sent").await;
    let statuses: Vec<u16> = g.calls().iter().map(|c| c.status).collect();
    assert_eq!(statuses, [400, 400, 200], "sent once");
    assert_eq!(sent["error"], Value::Null);
    api.wait_state("fb", "connected").await;
    no_secrets_logged(d);
    h.finish();
    g.stop().await;
}
