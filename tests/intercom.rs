//! End-to-end tests of the `intercom` service type: the real binary and SQLite, signed
//! notifications computed here (own HMAC-SHA1, independent of the connector), and a
//! fake Intercom API on loopback that checks every request against the 2.14 spec.
#![cfg(all(feature = "intercom", feature = "api"))]
#![cfg(feature = "intercom")]

mod common;
#[path = "fakes/intercom.rs"]
mod intercom_fake;

use std::time::Duration;

use common::*;
use hmac::{Hmac, Mac};
use intercom_fake::*;
use serde_json::{Value, json};
use sha1::Sha1;

const T: Duration = Duration::from_secs(15);

fn fixture(name: &str) -> Value {
    let path = format!(
        "{}/connectors/intercom/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// An `intercom` service `ic` against the fake, plus the api service for reading.
fn config(dir: &std::path::Path, fake: &FakeIntercom, token: &str) -> String {
    base_config(dir)
        + &api_service("")
        + &format!(
            r#"
[services.ic]
type = "intercom"
[services.ic.params]
app_id = "{APP_ID}"
access_token = "{token}"
assignee_id = {ADMIN}
client_secret = "{CLIENT_SECRET}"
api_base = "{}"
poll_interval = "1s"
"#,
            fake.base()
        )
}

/// A daemon on [`config`] with `token`, once service `ic` is connected.
async fn connected(fake: &FakeIntercom, token: &str) -> Harness {
    let h = Harness::start(|dir| config(dir, fake, token));
    wait_connected(&h.api).await;
    h
}

/// `sha1=<hex HMAC-SHA1(secret, body)>`, as Intercom computes it.
fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha1>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha1={hex}")
}

/// A notification envelope as Intercom sends it.
fn notification(topic: &str, app_id: &str, item: &Value) -> String {
    json!({
        "type": "notification_event", "app_id": app_id, "data": {"type": "notification_event_data", "item": item},
        "links": {}, "id": format!("notif_{}", fastrand_id()), "topic": topic,
        "delivery_status": "pending", "delivery_attempts": 1, "delivered_at": 0,
        "first_sent_at": jiff::Timestamp::now().as_second(), "created_at": jiff::Timestamp::now().as_second(),
        "self": null
    })
    .to_string()
}

fn fastrand_id() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

/// POSTs a body to the service's hook with the given signature header (if any).
async fn post_hook(d: &Daemon, body: &str, signature: Option<&str>) -> (u16, Value) {
    let mut req = reqwest::Client::new()
        .post(d.url("/hooks/ic"))
        .header("content-type", "application/json")
        .body(body.to_owned());
    if let Some(sig) = signature {
        req = req.header("X-Hub-Signature", sig);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// A correctly signed notification.
async fn notify(d: &Daemon, topic: &str, item: &Value) -> (u16, Value) {
    let body = notification(topic, APP_ID, item);
    post_hook(d, &body, Some(&sign(CLIENT_SECRET, body.as_bytes()))).await
}

/// The ic service's conversations, each with its messages (oldest first).
async fn conversations(api: &Api) -> Vec<(Value, Vec<Value>)> {
    let (status, list) = api.get("/v1/conversations?service_id=ic&limit=100").await;
    assert_eq!(status, 200, "{list}");
    let mut out = Vec::new();
    for c in list["data"].as_array().unwrap() {
        let (_, msgs) = api
            .get(&format!(
                "/v1/conversations/{}/messages?limit=100",
                c["id"].as_str().unwrap()
            ))
            .await;
        out.push((c.clone(), msgs["data"].as_array().unwrap().clone()));
    }
    out
}

/// External ids of all inbound messages of the ic service, sorted.
async fn inbound_ids(api: &Api) -> Vec<String> {
    let mut ids: Vec<String> = conversations(api)
        .await
        .into_iter()
        .flat_map(|(_, m)| m)
        .filter(|m| m["direction"] == "inbound")
        .map(|m| m["external_id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    ids
}

async fn state(api: &Api) -> Value {
    let (_, s) = api.get("/v1/services").await;
    s["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "ic")
        .unwrap()["state"]
        .clone()
}

async fn wait_connected(api: &Api) {
    eventually(T, "the intercom service connected", || async {
        (state(api).await["kind"] == "connected").then_some(())
    })
    .await;
}

/// A conversation the contact started, as a notification's `data.item`.
fn user_started(conv_id: &str, source_id: &str, body: &str) -> Value {
    json!({
        "type": "conversation", "id": conv_id, "created_at": jiff::Timestamp::now().as_second(),
        "updated_at": jiff::Timestamp::now().as_second(),
        "source": {"type": "conversation", "id": source_id, "delivered_as": "customer_initiated",
                   "subject": "", "body": body, "author": user("6762f1571bb69f9f2193bbbb", "Joe Bloggs"),
                   "attachments": [{"type": "upload", "name": "invoice.pdf",
                                    "url": "https://downloads.intercomcdn.com/i/o/2/invoice.pdf",
                                    "content_type": "application/pdf", "filesize": 1024}],
                   "url": null, "redacted": false},
        "contacts": {"type": "contact.list", "contacts": [{"type": "contact", "id": "6762f1571bb69f9f2193bbbb", "external_id": "70"}]},
        "conversation_parts": {"type": "conversation_part.list", "conversation_parts": [], "total_count": 0}
    })
}

#[tokio::test]
async fn a_signed_notification_is_ingested_as_readable_text_exactly_once() {
    let fake = FakeIntercom::start(0).await;
    let h = connected(&fake, ACCESS_TOKEN).await;
    let (d, api) = (&h.daemon, &h.api);

    let html = "<p>Hello &amp; good morning!</p><p>My order #42 &lt;urgent&gt;<br>is late</p>\
                <div class=\"intercom-container\"><img src=\"https://downloads.intercomcdn.com/i/o/1/photo.png\"></div>";
    let item = user_started("701", "403918400", html);
    let (status, body) = notify(d, "conversation.user.created", &item).await;
    assert_eq!((status, &body["stored"]), (200, &json!(1)), "{body}");

    let convs = conversations(api).await;
    assert_eq!(convs.len(), 1);
    let (conv, msgs) = &convs[0];
    assert_eq!(conv["external_id"], "701");
    assert_eq!(conv["contact"]["external_id"], "6762f1571bb69f9f2193bbbb");
    assert_eq!(conv["contact"]["name"], "Joe Bloggs");
    assert_eq!(conv["contact"]["email"], "joe.bloggs@example.com");
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0]["external_id"], "403918400");
    assert_eq!(
        msgs[0]["text"],
        "Hello & good morning!\nMy order #42 <urgent>\nis late"
    );
    assert_eq!(
        msgs[0]["attachments"],
        json!([
            {"url": "https://downloads.intercomcdn.com/i/o/2/invoice.pdf", "content_type": "application/pdf", "name": "invoice.pdf"},
            {"url": "https://downloads.intercomcdn.com/i/o/1/photo.png"}
        ])
    );

    // Intercom's retry (a new envelope around the same conversation) is a 200 duplicate.
    let (status, body) = notify(d, "conversation.user.created", &item).await;
    assert_eq!((status, &body["duplicates"]), (200, &json!(1)), "{body}");
    assert_eq!(inbound_ids(api).await, ["403918400"]);

    // The spec's "User reply" conversation, with our own admin reply and a bot part
    // added: only the contact's part is stored.
    let mut reply = fixture("spec_2.14_conversation_object_user_reply_example.json");
    let parts = reply["conversation_parts"]["conversation_parts"]
        .as_array_mut()
        .unwrap();
    parts.insert(0, json!({"type": "conversation_part", "id": "130", "part_type": "comment",
        "body": "<p>How can we help?</p>", "created_at": 1734537560, "author": admin(), "attachments": []}));
    parts.push(
        json!({"type": "conversation_part", "id": "133", "part_type": "comment",
        "body": "<p>Fin here</p>", "created_at": 1734537562,
        "author": {"type": "bot", "id": "1", "name": "Fin"}, "attachments": []}),
    );
    let (status, body) = notify(d, "conversation.user.replied", &reply).await;
    assert_eq!((status, &body["stored"]), (200, &json!(1)), "{body}");
    let convs = conversations(api).await;
    let (_, msgs) = convs
        .iter()
        .find(|(c, _)| c["external_id"] == "524")
        .expect("conversation 524");
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0]["external_id"], "132");
    assert_eq!(msgs[0]["text"], "Thanks again :)");
    assert_eq!(msgs[0]["author"]["type"], "contact");

    let events = read_events(d, TOKEN, 0, 100, Duration::from_millis(500)).await;
    let created = events
        .iter()
        .filter(|e| e["type"] == "message.created")
        .count();
    assert_eq!(created, 2, "one message.created per stored part");
    assert!(fake.problems().is_empty(), "{:?}", fake.problems());
    h.finish();
    fake.stop().await;
}

#[tokio::test]
async fn bad_signatures_other_topics_and_workspaces_store_nothing() {
    let fake = FakeIntercom::start(0).await;
    let h = connected(&fake, ACCESS_TOKEN).await;
    let (d, api) = (&h.daemon, &h.api);

    let item = user_started("702", "403918401", "<p>hi</p>");
    let body = notification("conversation.user.created", APP_ID, &item);
    let other_body = notification("conversation.user.created", APP_ID, &json!({"id": "x"}));
    for sig in [
        None,
        Some(sign("not-the-secret", body.as_bytes())),
        Some(sign(CLIENT_SECRET, other_body.as_bytes())),
        Some(sign(CLIENT_SECRET, body.as_bytes()).replace("sha1=", "sha256=")),
        Some("sha1=".to_owned()),
    ] {
        let (status, resp) = post_hook(d, &body, sig.as_deref()).await;
        assert_eq!(status, 401, "{sig:?}: {resp}");
        assert_eq!(resp["error"]["code"], "unauthorized");
    }

    // Topics we do not use are acknowledged: the docs' signed example, a ping, an admin reply.
    let docs = fixture("docs_signed_notification_user_created.json").to_string();
    let (status, resp) = post_hook(d, &docs, Some(&sign(CLIENT_SECRET, docs.as_bytes()))).await;
    assert_eq!(
        (status, &resp["status"]),
        (200, &json!("ignored")),
        "{resp}"
    );
    for topic in [
        "ping",
        "conversation.admin.replied",
        "conversation.admin.closed",
    ] {
        let (status, resp) = notify(d, topic, &item).await;
        assert_eq!(
            (status, &resp["status"]),
            (200, &json!("ignored")),
            "{topic}: {resp}"
        );
    }
    // Signed by our app, but for another workspace.
    let foreign = notification("conversation.user.created", "otherapp", &item);
    let (status, resp) =
        post_hook(d, &foreign, Some(&sign(CLIENT_SECRET, foreign.as_bytes()))).await;
    assert_eq!(
        (status, &resp["status"]),
        (200, &json!("ignored")),
        "{resp}"
    );
    // Signed but not JSON.
    let junk = "{not json";
    let (status, _) = post_hook(d, junk, Some(&sign(CLIENT_SECRET, junk.as_bytes()))).await;
    assert_eq!(status, 400);

    assert!(conversations(api).await.is_empty(), "nothing was stored");
    let events = read_events(d, TOKEN, 0, 100, Duration::from_millis(500)).await;
    assert!(
        events.iter().all(|e| e["type"] == "service.state"),
        "no contact, conversation or message events: {events:?}"
    );
    // The genuine notification still goes through afterwards.
    let (status, _) = notify(d, "conversation.user.created", &item).await;
    assert_eq!(status, 200);
    assert_eq!(inbound_ids(api).await, ["403918401"]);
    h.finish();
    fake.stop().await;
}

/// Ingests conversation `conv_id` (known to the fake) through a notification and
/// returns switchboard's id for it.
async fn ingest_from_fake(d: &Daemon, api: &Api, fake: &FakeIntercom, conv_id: &str) -> String {
    let (status, _) = notify(d, "conversation.user.created", &fake.conversation(conv_id)).await;
    assert_eq!(status, 200);
    conversations(api)
        .await
        .into_iter()
        .find(|(c, _)| c["external_id"] == conv_id)
        .map(|(c, _)| c["id"].as_str().unwrap().to_owned())
        .unwrap()
}

/// A connected service with conversation `id` at the fake, opened by `contact` with
/// `html`, and ingested: the fake, the harness and our conversation's id.
async fn one_conversation(id: &str, contact: Value, html: &str) -> (FakeIntercom, Harness, String) {
    let fake = FakeIntercom::start(0).await;
    fake.add_conversation(id, contact, html, fake.state.now());
    let h = connected(&fake, ACCESS_TOKEN).await;
    let conv = ingest_from_fake(&h.daemon, &h.api, &fake, id).await;
    (fake, h, conv)
}

async fn message_when(api: &Api, id: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    eventually(T, what, || async {
        let (_, m) = api.get(&format!("/v1/messages/{id}")).await;
        done(&m).then_some(m)
    })
    .await
}

#[tokio::test]
async fn a_reply_is_posted_as_the_admin_in_the_documented_shape() {
    let (fake, h, conv) = one_conversation(
        "801",
        user("c-801", "Mary Major"),
        "<p>Where is my parcel?</p>",
    )
    .await;
    let api = &h.api;

    let (status, msg) = api
        .post(
            &format!("/v1/conversations/{conv}/messages"),
            &json!({"text": "Hi Mary & co,\n<b>on its way</b>", "author": {"type": "agent", "name": "Anna"},
                    "attachments": [{"url": "https://files.example.com/label.png", "content_type": "image/png"}]}),
        )
        .await;
    assert_eq!(status, 202, "{msg}");
    let sent = message_when(api, msg["id"].as_str().unwrap(), "the reply sent", |m| {
        m["status"] == "sent"
    })
    .await;

    let replies = fake.requests(axum::http::Method::POST, "/conversations/801/reply");
    assert_eq!(replies.len(), 1);
    let r = &replies[0];
    assert_eq!(r.header("authorization"), format!("Bearer {ACCESS_TOKEN}"));
    assert_eq!(r.header("intercom-version"), "2.14");
    assert!(r.header("content-type").starts_with("application/json"));
    assert_eq!(
        r.body,
        json!({"message_type": "comment", "type": "admin", "admin_id": ADMIN,
               "body": "Hi Mary &amp; co,<br>&lt;b&gt;on its way&lt;/b&gt;",
               "attachment_urls": ["https://files.example.com/label.png"]})
    );
    // The external id is the admin part the reply created.
    let parts = fake.conversation("801")["conversation_parts"]["conversation_parts"].clone();
    let last = parts.as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["author"]["id"], ADMIN);
    assert_eq!(sent["external_id"], last["id"]);

    // The poller sees that admin part (our reply) on its next passes: it never comes
    // back as an inbound message.
    let searches = fake.searches().len();
    eventually(T, "two more catch-up passes", || async {
        (fake.searches().len() >= searches + 2).then_some(())
    })
    .await;
    let (_, msgs) = api.get(&format!("/v1/conversations/{conv}/messages")).await;
    let directions: Vec<&str> = msgs["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["direction"].as_str().unwrap())
        .collect();
    assert_eq!(directions, ["inbound", "outbound"]);
    assert!(fake.problems().is_empty(), "{:?}", fake.problems());
    h.finish();
    fake.stop().await;
}

/// Rate-limit headers saying the window is spent until `reset` (unix seconds).
fn spent_window(reset: i64) -> Vec<(&'static str, String)> {
    vec![
        ("x-ratelimit-limit", "1666".into()),
        ("x-ratelimit-remaining", "0".into()),
        ("x-ratelimit-reset", reset.to_string()),
    ]
}

#[tokio::test]
async fn a_429_is_waited_out_and_error_lists_become_the_failure_reason() {
    let (fake, h, conv) =
        one_conversation("901", user("c-901", "Max Minor"), "<p>Hello?</p>").await;
    let (d, api) = (&h.daemon, &h.api);

    // Rate limited, with only X-RateLimit-Reset to say when (two seconds on).
    let reset = jiff::Timestamp::now().as_second() + 2;
    fake.state.reply_script.lock().unwrap().push_back(Scripted {
        process: false,
        answer: Some((
            axum::http::StatusCode::TOO_MANY_REQUESTS,
            json!({"type": "error.list", "request_id": null,
                   "errors": [{"code": "rate_limit_exceeded", "message": "Exceeded rate limit"}]}),
        )),
        headers: spent_window(reset),
    });
    let (_, msg) = api
        .post(
            &format!("/v1/conversations/{conv}/messages"),
            &json!({"text": "One moment"}),
        )
        .await;
    let sent = message_when(
        api,
        msg["id"].as_str().unwrap(),
        "sent after the 429",
        |m| m["status"] == "sent",
    )
    .await;
    let replies = fake.requests(axum::http::Method::POST, "/conversations/901/reply");
    assert_eq!(replies.len(), 2, "one 429, one success");
    assert_eq!(replies[0].body, replies[1].body);
    let gap = replies[1].at - replies[0].at;
    // The test config's retry backoff is at most 400 ms: only the reset hint explains this.
    assert!(gap >= Duration::from_millis(1000), "retried after {gap:?}");
    let last = fake.conversation("901")["conversation_parts"]["conversation_parts"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(sent["external_id"], last["id"]);

    // A success that spends the window: the next request waits for its reset.
    let reset = jiff::Timestamp::now().as_second() + 2;
    fake.state.reply_script.lock().unwrap().push_back(Scripted {
        process: true,
        answer: None,
        headers: spent_window(reset),
    });
    for text in ["first of two", "second of two"] {
        api.post(
            &format!("/v1/conversations/{conv}/messages"),
            &json!({"text": text}),
        )
        .await;
    }
    eventually(T, "both replies", || async {
        let n = fake
            .requests(axum::http::Method::POST, "/conversations/901/reply")
            .len();
        (n == 4).then_some(())
    })
    .await;
    let replies = fake.requests(axum::http::Method::POST, "/conversations/901/reply");
    let gap = replies[3].at - replies[2].at;
    assert!(
        gap >= Duration::from_millis(1000),
        "sent {gap:?} after the window was spent"
    );

    // A conversation Intercom does not know: 404 error.list, failed at once.
    let item = user_started("999", "403918999", "<p>from a deleted conversation</p>");
    notify(d, "conversation.user.created", &item).await;
    let gone = conversations(api)
        .await
        .into_iter()
        .find(|(c, _)| c["external_id"] == "999")
        .map(|(c, _)| c["id"].as_str().unwrap().to_owned())
        .unwrap();
    let (_, msg) = api
        .post(
            &format!("/v1/conversations/{gone}/messages"),
            &json!({"text": "Hello?"}),
        )
        .await;
    let failed = message_when(api, msg["id"].as_str().unwrap(), "the reply failed", |m| {
        m["status"] == "failed"
    })
    .await;
    assert_eq!(failed["error"], "HTTP 404 not_found: Resource Not Found");
    assert_eq!(
        fake.requests(axum::http::Method::POST, "/conversations/999/reply")
            .len(),
        1,
        "a 404 is not retried"
    );
    assert!(fake.problems().is_empty(), "{:?}", fake.problems());
    h.finish();
    fake.stop().await;
}

/// Admin parts of a fake conversation whose body shows `text`.
fn admin_parts(fake: &FakeIntercom, conv: &str, text: &str) -> Vec<Value> {
    fake.conversation(conv)["conversation_parts"]["conversation_parts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["author"]["type"] == "admin" && p["body"] == format!("<p>{text}</p>"))
        .cloned()
        .collect()
}

#[tokio::test]
async fn a_reply_whose_answer_was_lost_is_not_posted_twice() {
    let (fake, h, conv) =
        one_conversation("902", user("c-902", "Ro Retry"), "<p>Refund?</p>").await;
    let api = &h.api;
    let bad_gateway = || {
        Some((
            axum::http::StatusCode::BAD_GATEWAY,
            json!({"type": "error.list", "errors": [{"code": "server_error", "message": "Bad gateway"}]}),
        ))
    };
    let post = |text: &'static str| {
        let (api, conv) = (&api, &conv);
        async move {
            let (_, m) = api
                .post(
                    &format!("/v1/conversations/{conv}/messages"),
                    &json!({"text": text}),
                )
                .await;
            let id = m["id"].as_str().unwrap().to_owned();
            message_when(api, &id, "sent", |m| m["status"] == "sent").await
        }
    };

    // Intercom posts the reply, but the answer is a 502 from a proxy.
    fake.state.reply_script.lock().unwrap().push_back(Scripted {
        process: true,
        answer: bad_gateway(),
        headers: vec![],
    });
    let refund = post("Your refund is on its way").await;
    let parts = admin_parts(&fake, "902", "Your refund is on its way");
    assert_eq!(parts.len(), 1, "posted once");
    assert_eq!(refund["external_id"], parts[0]["id"]);
    assert_eq!(
        fake.requests(axum::http::Method::POST, "/conversations/902/reply")
            .len(),
        1,
        "the retry found the part instead of posting again"
    );

    // Saying "ok" twice sends it twice, even when the second answer is lost first.
    let first = post("ok").await;
    fake.state.reply_script.lock().unwrap().push_back(Scripted {
        process: false,
        answer: bad_gateway(),
        headers: vec![],
    });
    let second = post("ok").await;
    let oks = admin_parts(&fake, "902", "ok");
    assert_eq!(oks.len(), 2);
    assert_eq!(first["external_id"], oks[0]["id"]);
    assert_eq!(second["external_id"], oks[1]["id"]);
    assert!(fake.problems().is_empty(), "{:?}", fake.problems());
    h.finish();
    fake.stop().await;
}

#[tokio::test]
async fn catch_up_brings_in_what_was_missed_exactly_once() {
    // Intercom's clock runs ahead of ours: the cursor must be Intercom's time.
    let fake = FakeIntercom::start(100).await;
    let t0 = fake.state.now();
    // History from before the service existed: never imported.
    fake.add_conversation(
        "600",
        user("c-600", "Old Timer"),
        "<p>old question</p>",
        t0 - 7200,
    );
    fake.add_conversation("601", user("c-601", "Bea Live"), "<p>first</p>", t0);
    let mut h = Harness::start(|dir| config(dir, &fake, ACCESS_TOKEN));
    let d = &h.daemon;
    let api = &h.api;
    wait_connected(api).await;
    // Live: the notification and the first passes race for conversation 601; either
    // way it is stored once.
    ingest_from_fake(d, api, &fake, "601").await;
    let b1 = fake.add_part(
        "601",
        "comment",
        user("c-601", "Bea Live"),
        "<p>second</p>",
        t0 + 1,
    );
    let searched = fake.searches().len();
    eventually(T, "a pass after the new part", || async {
        (fake.searches().len() >= searched + 2).then_some(())
    })
    .await;
    let before: Vec<String> = inbound_ids(api).await;
    assert_eq!(before.len(), 2, "{before:?}");
    assert!(before.contains(&b1));
    let cursor_before = fake
        .state
        .conversations
        .lock()
        .unwrap()
        .values()
        .filter(|c| c["updated_at"].as_i64().unwrap() > t0 - 600)
        .map(|c| c["updated_at"].as_i64().unwrap())
        .max()
        .unwrap();
    h.stop();

    // While we are down: replies, a new conversation, an admin note on the old one.
    let c = user("c-601", "Bea Live");
    let b2 = fake.add_part(
        "601",
        "comment",
        c.clone(),
        "<p>are you there?</p>",
        t0 + 10,
    );
    let b3 = fake.add_part(
        "601",
        "open",
        c.clone(),
        "<p>reopening &amp; asking again</p>",
        t0 + 11,
    );
    fake.add_part("601", "comment", admin(), "<p>yes!</p>", t0 + 12);
    let c0 = fake.add_conversation("602", user("c-602", "Cy New"), "<p>new here</p>", t0 + 20);
    let c1 = fake.add_part(
        "602",
        "comment",
        user("c-602", "Cy New"),
        "<p>hello?</p>",
        t0 + 21,
    );
    fake.add_part("602", "note", admin(), "<p>internal</p>", t0 + 22);
    fake.add_part(
        "600",
        "comment",
        admin(),
        "<p>closing old ticket</p>",
        t0 + 30,
    );
    fake.add_conversation("603", user("c-603", "Di Third"), "<p>third</p>", t0 + 31);
    let d3 = fake.conversation("603")["source"]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let searches_before_restart = fake.searches().len();
    h.start_again(&[]);
    let d = &h.daemon;
    let api = &h.api;
    let mut expected: Vec<String> = before.clone();
    expected.extend([b2, b3, c0, c1, d3]);
    expected.sort();
    let got = eventually(T, "the missed parts", || async {
        let ids = inbound_ids(api).await;
        (ids.len() >= expected.len()).then_some(ids)
    })
    .await;
    assert_eq!(got, expected, "daemon log:\n{}", d.log_text());
    // The restart searched from the stored cursor (Intercom's clock) less the overlap.
    let first = &fake.searches()[searches_before_restart];
    assert_eq!(first.body["query"]["value"], json!(cursor_before - 300));
    assert_eq!(first.body["pagination"]["per_page"], 150);
    assert!(
        fake.searches()[searches_before_restart..]
            .iter()
            .any(|s| s.body["pagination"]["starting_after"].is_string()),
        "four conversations in pages of two: the pass paged"
    );

    // Further passes re-read the overlap and add nothing.
    let n = fake.searches().len();
    eventually(T, "two more passes", || async {
        (fake.searches().len() >= n + 2).then_some(())
    })
    .await;
    assert_eq!(inbound_ids(api).await, expected);
    h.stop();

    // A second restart adds nothing either: one message.created per part, ever.
    let n = fake.searches().len();
    h.start_again(&[]);
    let d = &h.daemon;
    let api = &h.api;
    wait_connected(api).await;
    eventually(T, "two passes after the second restart", || async {
        (fake.searches().len() >= n + 2).then_some(())
    })
    .await;
    assert_eq!(inbound_ids(api).await, expected);
    let texts: Vec<String> = conversations(api)
        .await
        .into_iter()
        .flat_map(|(_, m)| m)
        .map(|m| m["text"].as_str().unwrap_or("").to_owned())
        .collect();
    assert!(
        texts.contains(&"reopening & asking again".to_owned()),
        "{texts:?}"
    );
    assert!(
        !texts
            .iter()
            .any(|t| t.contains("old question") || t.contains("yes!") || t.contains("internal")),
        "no history, admin or note parts: {texts:?}"
    );
    let events = read_events(d, TOKEN, 0, 500, Duration::from_millis(800)).await;
    let created = events
        .iter()
        .filter(|e| e["type"] == "message.created")
        .count();
    assert_eq!(created, expected.len());
    assert!(fake.problems().is_empty(), "{:?}", fake.problems());
    h.finish();
    fake.stop().await;
}

#[tokio::test]
async fn a_rejected_token_is_reported_as_failed_without_the_token() {
    let fake = FakeIntercom::start(0).await;
    let h = Harness::start(|dir| config(dir, &fake, "revoked-token-value"));
    let (d, api) = (&h.daemon, &h.api);
    let s = eventually(T, "the service failed", || async {
        let s = state(api).await;
        (s["kind"] == "failed").then_some(s)
    })
    .await;
    let reason = s["reason"].as_str().unwrap();
    assert!(
        reason.contains("unauthorized: Access Token Invalid"),
        "{reason}"
    );
    assert!(!reason.contains("revoked-token-value"));
    assert!(!d.log_text().contains("revoked-token-value"));
    let r = reqwest::get(d.url("/readyz")).await.unwrap();
    assert_eq!(r.status().as_u16(), 503);
    h.finish();
    fake.stop().await;
}

/// The token is revoked while the service runs: Intercom answers the reply 401. The
/// reply waits (still `pending`, never `failed`), the service shows `failed` with
/// Intercom's reason and not the token, and once Intercom takes the token again the
/// reply goes out, once.
#[tokio::test]
async fn a_reply_refused_for_its_token_waits_while_the_service_is_failed() {
    let (fake, h, conv) =
        one_conversation("902", user("c-902", "Mia Major"), "<p>Anyone?</p>").await;
    let (d, api) = (&h.daemon, &h.api);

    let revoked = || Scripted {
        process: false,
        answer: Some((
            axum::http::StatusCode::UNAUTHORIZED,
            json!({"type": "error.list", "request_id": null,
                   "errors": [{"code": "unauthorized", "message": "Access Token Invalid"}]}),
        )),
        headers: Vec::new(),
    };
    fake.state
        .reply_script
        .lock()
        .unwrap()
        .extend([revoked(), revoked()]);
    let (_, msg) = api
        .post(
            &format!("/v1/conversations/{conv}/messages"),
            &json!({"text": "Still there?"}),
        )
        .await;
    let id = msg["id"].as_str().unwrap().to_owned();
    let failed = api.wait_state("ic", "failed").await;
    let reason = failed["reason"].as_str().unwrap();
    assert!(
        reason.contains("Intercom refused the access token"),
        "{failed}"
    );
    assert!(!failed.to_string().contains(ACCESS_TOKEN), "{failed}");
    let m = api.get(&format!("/v1/messages/{id}")).await.1;
    assert_eq!(m["status"], "pending", "the reply waits, not failed: {m}");

    // The script is spent: Intercom takes the token again.
    let sent = message_when(api, &id, "sent once the token works", |m| {
        m["status"] == "sent"
    })
    .await;
    let replies = fake.requests(axum::http::Method::POST, "/conversations/902/reply");
    assert_eq!(replies.len(), 3, "two refusals, one success, nothing after");
    assert!(replies.windows(2).all(|w| w[0].body == w[1].body));
    let last = fake.conversation("902")["conversation_parts"]["conversation_parts"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(sent["external_id"], last["id"]);
    api.wait_state("ic", "connected").await;
    assert!(!d.log_text().contains(ACCESS_TOKEN));
    assert!(fake.problems().is_empty(), "{:?}", fake.problems());
    h.finish();
    fake.stop().await;
}
