//! End-to-end tests of the `mailgun` service type: the real binary and SQLite, route
//! forwards and event webhooks signed here with the signing key (independently of the
//! connector's code) and posted over loopback, and a fake Messages API on 127.0.0.1:0
//! that checks every send the way Mailgun documents it.
#![cfg(all(feature = "mailgun", feature = "api"))]

mod common;
#[path = "fakes/mailgun.rs"]
mod mailgun;

use std::time::Duration;

use common::*;
use hmac::{Hmac, Mac};
use mailgun::{Answer, FakeMailgun};
use serde_json::{Value, json};
use sha2::Sha256;

const DOMAIN: &str = "mg.example.com";
const API_KEY: &str = "key-mailgun-api-e2e-0123456789";
const SIGNING_KEY: &str = "key-mailgun-signing-e2e-abcdef";
/// The documented forward, as a field map.
const FORWARD: &str = include_str!("../connectors/mailgun/fixtures/docs_route_forward_sample.json");
/// The Message-Id of the documented forward.
const ROOT: &str = "CABPem2N_Ucj3wRRZnLVpVF_fRjkTBXHZReZC3zY-hHsRa=T51g@samples.mailgun.com";

// ---- helpers ----

fn config(dir: &std::path::Path, api_base: &str) -> String {
    base_config(dir)
        + &api_service("")
        + &format!(
            r#"
[services.mail]
type = "mailgun"
[services.mail.params]
domain = "{DOMAIN}"
api_key = "{API_KEY}"
signing_key = "{SIGNING_KEY}"
from = "Support <support@{DOMAIN}>"
api_base = "{api_base}"
"#
        )
}

fn start(m: &FakeMailgun) -> Harness {
    Harness::start(|dir| config(dir, &m.url()))
}

fn hex_hmac(key: &str, data: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(data.as_bytes());
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn now() -> i64 {
    jiff::Timestamp::now().as_second()
}

/// A fresh token for every call, as Mailgun gives one per request.
fn token() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "tok{:020}{}",
        N.fetch_add(1, Ordering::SeqCst),
        std::process::id()
    )
}

/// The signature triple for `timestamp` and `token`, signed with `key`.
fn triple(key: &str, timestamp: i64, token: &str) -> [(String, String); 3] {
    [
        ("timestamp".into(), timestamp.to_string()),
        ("token".into(), token.to_owned()),
        (
            "signature".into(),
            hex_hmac(key, &format!("{timestamp}{token}")),
        ),
    ]
}

/// The documented forward's fields with `changes` applied (null removes), without its
/// own (unverifiable) triple.
fn mail_fields(changes: Value) -> Vec<(String, String)> {
    let mut v: Value = serde_json::from_str(FORWARD).unwrap();
    for k in ["timestamp", "token", "signature"] {
        v.as_object_mut().unwrap().remove(k);
    }
    for (k, c) in changes.as_object().unwrap() {
        if c.is_null() {
            v.as_object_mut().unwrap().remove(k);
        } else {
            v[k] = c.clone();
        }
    }
    v.as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
        .collect()
}

async fn post(d: &Daemon, path: &str, content_type: &str, body: Vec<u8>) -> u16 {
    reqwest::Client::new()
        .post(d.url(path))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// Forwards a mail urlencoded with this triple.
async fn forward_with(
    d: &Daemon,
    mut fields: Vec<(String, String)>,
    triple: [(String, String); 3],
) -> u16 {
    fields.extend(triple);
    let body = serde_urlencoded::to_string(&fields).unwrap();
    post(
        d,
        "/hooks/mail",
        "application/x-www-form-urlencoded",
        body.into_bytes(),
    )
    .await
}

/// Forwards a mail, signed now with a fresh token.
async fn forward(d: &Daemon, changes: Value) -> u16 {
    forward_with(
        d,
        mail_fields(changes),
        triple(SIGNING_KEY, now(), &token()),
    )
    .await
}

/// A multipart forward of `fields` plus file parts `(field, name, bytes)`.
fn multipart(fields: &[(String, String)], files: &[(&str, &str, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "b0undary-7MA4YWxkTrZu0gW";
    let mut body = Vec::new();
    for (k, v) in fields {
        body.extend(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n")
                .bytes(),
        );
    }
    for (field, name, bytes) in files {
        body.extend(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n").bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend(b"\r\n");
    }
    body.extend(format!("--{boundary}--\r\n").bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// An event webhook body for our message `message_id`, signed now with a fresh token.
fn event(kind: &str, message_id: &str, extra: Value) -> Value {
    let (ts, tok) = (now(), token());
    let mut data = json!({"event": kind, "timestamp": ts as f64 + 0.25, "id": format!("evt-{tok}"),
        "recipient": "user@samples.mailgun.com",
        "message": {"headers": {"message-id": message_id, "to": "user@samples.mailgun.com", "from": format!("support@{DOMAIN}")}}});
    for (k, v) in extra.as_object().unwrap() {
        data[k] = v.clone();
    }
    json!({"signature": {"timestamp": ts.to_string(), "token": tok, "signature": hex_hmac(SIGNING_KEY, &format!("{ts}{tok}"))},
           "event-data": data})
}

async fn post_event(d: &Daemon, body: &Value) -> u16 {
    post(
        d,
        "/hooks/mail/events",
        "application/json",
        body.to_string().into_bytes(),
    )
    .await
}

/// [`start`] with the documented forward stored: its conversation's id.
async fn opened(m: &FakeMailgun) -> (Harness, String) {
    let h = start(m);
    assert_eq!(forward(&h.daemon, json!({})).await, 200);
    let conv = h.conversation("mail", ROOT).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    (h, conv)
}

fn no_secrets_logged(d: &Daemon) {
    d.assert_never_logged(&[API_KEY, SIGNING_KEY]);
}

async fn count_messages(api: &Api) -> usize {
    let mut n = 0;
    for c in api.conversations("mail").await {
        n += api.messages(c["id"].as_str().unwrap()).await.len();
    }
    n
}

// ---- inbound ----

#[tokio::test]
async fn a_forward_becomes_a_contact_a_conversation_and_a_message_in_either_encoding() {
    let m = FakeMailgun::start(DOMAIN, API_KEY).await;
    let (h, conv) = opened(&m).await;
    let (d, api) = (&h.daemon, &h.api);
    let c = h.conversation("mail", ROOT).await;
    assert_eq!(c["contact"]["external_id"], "user@samples.mailgun.com");
    assert_eq!(c["contact"]["email"], "user@samples.mailgun.com");
    assert_eq!(c["contact"]["name"], "Excited User");
    let msgs = api.messages(&conv).await;
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0]["external_id"], ROOT);
    assert_eq!(
        msgs[0]["text"],
        "Testing Mailgun's forwarded and stored message routes :)"
    );

    // Multipart, as a route forwards a mail with files: a new thread, the stored file
    // by URL, the forwarded file named in the text (switchboard keeps media by URL).
    let mut fields = mail_fields(json!({
        "Message-Id": "<multi.1@samples.mailgun.com>", "stripped-text": "Invoice attached",
        "body-plain": "Invoice attached\n-- \nJane",
        "attachments": json!([{"url": "https://storage.eu.mailgun.net/v3/domains/mg/messages/AgEF/attachments/0", "content-type": "application/pdf", "name": "invoice.pdf", "size": 2}]).to_string()
    }));
    fields.extend(triple(SIGNING_KEY, now(), &token()));
    let (ct, body) = multipart(
        &fields,
        &[("attachment-1", "photo.jpg", b"\xff\xd8\xff\xe0binary")],
    );
    assert_eq!(post(d, "/hooks/mail", &ct, body).await, 200);
    let c2 = h.conversation("mail", "multi.1@samples.mailgun.com").await;
    let msgs = api.messages(c2["id"].as_str().unwrap()).await;
    assert_eq!(
        msgs[0]["text"],
        "Invoice attached\n[file not kept: photo.jpg]"
    );
    assert_eq!(
        msgs[0]["attachments"],
        json!([{"url": "https://storage.eu.mailgun.net/v3/domains/mg/messages/AgEF/attachments/0", "content_type": "application/pdf", "name": "invoice.pdf"}])
    );
    assert_eq!(
        c2["contact"]["id"], c["contact"]["id"],
        "one sender, one contact"
    );
    no_secrets_logged(d);
    h.finish();
    m.stop().await;
}

#[tokio::test]
async fn forged_stale_and_replayed_forwards_are_401_and_store_nothing() {
    let m = FakeMailgun::start(DOMAIN, API_KEY).await;
    let h = start(&m);
    let (d, api) = (&h.daemon, &h.api);
    let events_before = read_events(d, TOKEN, 0, 1000, Duration::from_millis(300)).await;
    let fields = mail_fields(json!({}));

    let other_key = SIGNING_KEY.replace('a', "b");
    let t = now();
    let mut swapped = triple(SIGNING_KEY, t, &token());
    swapped[1].1 = token();
    for (what, tr) in [
        ("another key", triple(&other_key, t, &token())),
        ("the API key as key", triple(API_KEY, t, &token())),
        ("a token the signature is not over", swapped),
        ("6 minutes old", triple(SIGNING_KEY, t - 360, &token())),
        ("6 minutes ahead", triple(SIGNING_KEY, t + 360, &token())),
    ] {
        assert_eq!(forward_with(d, fields.clone(), tr).await, 401, "{what}");
    }
    let unsigned = serde_urlencoded::to_string(&fields).unwrap();
    assert_eq!(
        post(
            d,
            "/hooks/mail",
            "application/x-www-form-urlencoded",
            unsigned.into_bytes()
        )
        .await,
        401
    );
    assert!(api.conversations("mail").await.is_empty());
    let events_after = read_events(d, TOKEN, 0, 1000, Duration::from_millis(300)).await;
    assert_eq!(events_before.len(), events_after.len(), "no events written");

    // Taken once; the same triple again is a replay, even on another mail.
    let tr = triple(SIGNING_KEY, now(), &token());
    assert_eq!(forward_with(d, fields.clone(), tr.clone()).await, 200);
    assert_eq!(forward_with(d, fields.clone(), tr.clone()).await, 401);
    let other = mail_fields(json!({"Message-Id": "<other.9@samples.mailgun.com>"}));
    assert_eq!(forward_with(d, other, tr).await, 401);
    assert_eq!(count_messages(api).await, 1);

    // Two deliveries of one token at once: exactly one passes.
    let tr = triple(SIGNING_KEY, now(), &token());
    let a = mail_fields(json!({"Message-Id": "<race.a@samples.mailgun.com>"}));
    let b = mail_fields(json!({"Message-Id": "<race.b@samples.mailgun.com>"}));
    let (ra, rb) = tokio::join!(forward_with(d, a, tr.clone()), forward_with(d, b, tr));
    let mut got = [ra, rb];
    got.sort();
    assert_eq!(got, [200, 401]);
    assert_eq!(count_messages(api).await, 2);

    // A duplicate forward (Mailgun retries with a fresh token): 200, nothing new.
    assert_eq!(forward(d, json!({})).await, 200);
    assert_eq!(count_messages(api).await, 2);
    no_secrets_logged(d);
    h.finish();
    m.stop().await;
}

#[tokio::test]
async fn mails_join_the_thread_they_answer_ours_or_theirs() {
    let m = FakeMailgun::start(DOMAIN, API_KEY).await;
    let (h, conv) = opened(&m).await;
    let (d, api) = (&h.daemon, &h.api);

    // Our reply, then the contact answers it naming only our Message-Id.
    let reply = api.reply(&conv, json!({"text": "How can we help?"})).await;
    let ours = api.wait_status(&reply, "sent").await["external_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let in_reply = |id: &str, parent: &str, refs: Option<&str>| {
        let mut c = json!({"Message-Id": format!("<{id}>"), "In-Reply-To": format!("<{parent}>"),
                           "stripped-text": format!("mail {id}")});
        if let Some(r) = refs {
            c["References"] = json!(r);
        }
        c
    };
    assert_eq!(
        forward(d, in_reply("b@samples.mailgun.com", &ours, None)).await,
        200
    );
    // … then to their own earlier mail, by In-Reply-To only.
    assert_eq!(
        forward(
            d,
            in_reply("c@samples.mailgun.com", "b@samples.mailgun.com", None)
        )
        .await,
        200
    );
    // … and with References whose root is the first mail.
    let refs = format!("<{ROOT}> <unknown.1@elsewhere>");
    assert_eq!(
        forward(
            d,
            in_reply("d@samples.mailgun.com", "unknown.1@elsewhere", Some(&refs))
        )
        .await,
        200
    );
    let ids: Vec<String> = api
        .messages(&conv)
        .await
        .iter()
        .map(|m| m["external_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        ids,
        [
            ROOT,
            &ours,
            "b@samples.mailgun.com",
            "c@samples.mailgun.com",
            "d@samples.mailgun.com"
        ]
    );

    // A mail answering nothing we know opens a conversation keyed by its thread's root.
    assert_eq!(
        forward(
            d,
            in_reply(
                "e@x",
                "gone.1@elsewhere",
                Some("<gone.0@elsewhere> <gone.1@elsewhere>")
            )
        )
        .await,
        200
    );
    let convs = api.conversations("mail").await;
    assert_eq!(convs.len(), 2);
    assert!(convs.iter().any(|c| c["external_id"] == "gone.0@elsewhere"));
    h.finish();
    m.stop().await;
}

// ---- replies ----

#[tokio::test]
async fn a_reply_is_a_mail_in_the_thread_in_the_documented_shape() {
    let m = FakeMailgun::start(DOMAIN, API_KEY).await;
    let (h, conv) = opened(&m).await;
    let (d, api) = (&h.daemon, &h.api);
    let id = api
        .reply(
            &conv,
            json!({"text": "Happy to help", "author": {"type": "agent", "name": "Anna"},
            "attachments": [{"url": "https://files.example.com/terms.pdf", "name": "terms.pdf"}]}),
        )
        .await;
    let sent = api.wait_status(&id, "sent").await;
    let calls = m.calls();
    assert_eq!(calls.len(), 1);
    let c = &calls[0];
    assert_eq!(c.problems, Vec::<String>::new());
    let mid = c.field("h:Message-Id").unwrap();
    assert!(
        mid.starts_with("<sb.") && mid.ends_with(&format!("@{DOMAIN}>")),
        "{mid}"
    );
    let fields: Vec<(&str, &str)> = c
        .fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        fields,
        [
            ("from", format!("Support <support@{DOMAIN}>").as_str()),
            ("to", "user@samples.mailgun.com"),
            ("subject", "Re: Message Routes"),
            (
                "text",
                "Happy to help\n\nterms.pdf: https://files.example.com/terms.pdf\n"
            ),
            ("h:Message-Id", mid),
            ("h:In-Reply-To", format!("<{ROOT}>").as_str()),
            ("h:References", format!("<{ROOT}>").as_str()),
        ]
    );
    assert_eq!(sent["external_id"], mid.trim_matches(['<', '>']));
    no_secrets_logged(d);
    h.finish();
    m.stop().await;
}

#[tokio::test]
async fn a_retried_send_is_the_same_mail_and_retry_after_is_honoured() {
    let m = FakeMailgun::start(DOMAIN, API_KEY).await;
    let (h, conv) = opened(&m).await;
    m.script(&[
        Answer::Error(429, Some("1"), "Too many requests"),
        Answer::Error(500, None, "Internal Server Error"),
    ]);
    let id = h.api.reply(&conv, json!({"text": "Patience"})).await;
    h.api.wait_status(&id, "sent").await;
    let calls = m.calls();
    let statuses: Vec<u16> = calls.iter().map(|c| c.status).collect();
    assert_eq!(statuses, [429, 500, 200]);
    assert!(
        calls.iter().all(|c| c.fields == calls[0].fields),
        "every attempt is the same mail, Message-Id included"
    );
    let waited = calls[1].at - calls[0].at;
    assert!(
        waited >= Duration::from_millis(950),
        "retried after {waited:?}"
    );

    m.script(&[Answer::Error(
        400,
        None,
        "'to' parameter is not a valid address. please check documentation",
    )]);
    let id = h.api.reply(&conv, json!({"text": "Hello?"})).await;
    let failed = h.api.wait_status(&id, "failed").await;
    assert!(
        failed["error"]
            .as_str()
            .unwrap()
            .contains("'to' parameter is not a valid address"),
        "{failed}"
    );

    // A refused key: the service fails and the reply waits.
    m.script(&[
        Answer::Error(401, None, "Forbidden"),
        Answer::Error(401, None, "Forbidden"),
    ]);
    let id = h.api.reply(&conv, json!({"text": "Still there?"})).await;
    h.api.wait_state("mail", "failed").await;
    assert_eq!(h.api.message(&id).await["status"], "pending");
    h.api.wait_status(&id, "sent").await;
    h.api.wait_state("mail", "connected").await;
    no_secrets_logged(&h.daemon);
    h.finish();
    m.stop().await;
}

#[tokio::test]
async fn event_webhooks_move_replies_forward_and_are_signed_once() {
    let m = FakeMailgun::start(DOMAIN, API_KEY).await;
    let (h, conv) = opened(&m).await;
    let (d, api) = (&h.daemon, &h.api);
    let a = api.reply(&conv, json!({"text": "one"})).await;
    let a_mid = api.wait_status(&a, "sent").await["external_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let b = api.reply(&conv, json!({"text": "two"})).await;
    let b_mid = api.wait_status(&b, "sent").await["external_id"]
        .as_str()
        .unwrap()
        .to_owned();

    let delivered = event("delivered", &a_mid, json!({}));
    assert_eq!(post_event(d, &delivered).await, 200);
    assert_eq!(api.message(&a).await["status"], "delivered");
    assert_eq!(post_event(d, &delivered).await, 401, "a replayed event");
    let mut forged = event("opened", &a_mid, json!({}));
    forged["signature"]["signature"] = json!(hex_hmac(API_KEY, "x"));
    assert_eq!(post_event(d, &forged).await, 401);
    assert_eq!(
        api.message(&a).await["status"],
        "delivered",
        "nothing moved"
    );
    assert_eq!(
        post_event(d, &event("opened", &a_mid, json!({}))).await,
        200
    );
    assert_eq!(api.message(&a).await["status"], "read");

    let temporary = json!({"severity": "temporary", "delivery-status": {"code": 452, "message": "mailbox full"}});
    assert_eq!(
        post_event(d, &event("failed", &b_mid, temporary)).await,
        200
    );
    assert_eq!(
        api.message(&b).await["status"],
        "sent",
        "Mailgun tries again"
    );
    let permanent = json!({"severity": "permanent", "reason": "bounce",
        "delivery-status": {"code": 550, "message": "5.1.1 The email account that you tried to reach does not exist."}});
    assert_eq!(
        post_event(d, &event("failed", &b_mid, permanent)).await,
        200
    );
    let failed = api.message(&b).await;
    assert_eq!(failed["status"], "failed");
    assert!(
        failed["error"]
            .as_str()
            .unwrap()
            .contains("5.1.1 The email account"),
        "{failed}"
    );
    no_secrets_logged(d);
    h.finish();
    m.stop().await;
}
