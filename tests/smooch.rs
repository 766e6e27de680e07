//! End-to-end tests of the `smooch` service type: the real binary and SQLite, Sunshine
//! webhooks posted over loopback, and a fake Sunshine API on 127.0.0.1:0 that checks
//! every Post Message request the way the v2 spec describes it.
#![cfg(all(feature = "smooch", feature = "api"))]

mod common;
#[path = "fakes/smooch.rs"]
mod sunshine;

use std::time::Duration;

use common::*;
use serde_json::{Value, json};
use sunshine::{Answer, FakeSunshine};

const APP_ID: &str = "5ebee0975ac5304b664a12fa";
const KEY_ID: &str = "app_5ebee0975ac5304b664a12fb";
const API_SECRET: &str = "sunshine-api-secret-0123456789";
const HOOK_SECRET: &str = "sunshine-webhook-secret-abcdef";
/// The conversation of the v2 fixture.
const CONV: &str = "f52b01137aa6c250bc7251fa";

const V2: &str = include_str!("../connectors/smooch/fixtures/v2_conversation_message.json");
const V1: &str = include_str!("../connectors/smooch/fixtures/v1_message_appUser_text.json");
const DELIVERY_USER: &str = include_str!("../connectors/smooch/fixtures/v2_delivery_user.json");
const DELIVERY_CHANNEL: &str =
    include_str!("../connectors/smooch/fixtures/v2_delivery_channel.json");
const DELIVERY_FAILURE: &str =
    include_str!("../connectors/smooch/fixtures/v2_delivery_failure.json");

// ---- helpers ----

fn config(dir: &std::path::Path, api_base: &str) -> String {
    base_config(dir)
        + &api_service("")
        + &format!(
            r#"
[services.sun]
type = "smooch"
[services.sun.params]
appId = "{APP_ID}"
keyId = "{KEY_ID}"
secret = "{API_SECRET}"
webhook_secret = "{HOOK_SECRET}"
api_base = "{api_base}"
"#
        )
}

fn fixture(text: &str) -> Value {
    serde_json::from_str(text).unwrap()
}

/// The v2 fixture carrying one `conversation:message` event per content, message ids
/// `{prefix}-0`, `{prefix}-1`, …
fn v2_messages(prefix: &str, contents: &[Value]) -> Value {
    let mut body = fixture(V2);
    let template = body["events"][0].clone();
    body["events"] = contents
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let mut e = template.clone();
            e["id"] = json!(format!("evt-{prefix}-{i}"));
            e["payload"]["message"]["id"] = json!(format!("{prefix}-{i}"));
            e["payload"]["message"]["content"] = c.clone();
            e
        })
        .collect();
    body
}

/// A delivery fixture re-aimed at `message_id`.
fn delivery(text: &str, message_id: &str) -> Value {
    let mut body = fixture(text);
    body["events"][0]["payload"]["message"]["id"] = json!(message_id);
    body
}

/// POSTs a webhook body as Sunshine does; the status.
async fn hook(d: &Daemon, key: Option<&str>, body: &Value) -> u16 {
    let mut req = reqwest::Client::new()
        .post(d.url("/hooks/sun"))
        .header("content-type", "application/json")
        .body(body.to_string());
    if let Some(k) = key {
        req = req.header("x-api-key", k);
    }
    req.send().await.unwrap().status().as_u16()
}

async fn conversations(api: &Api) -> Vec<Value> {
    api.conversations("sun").await
}

async fn messages(api: &Api, conv: &str) -> Vec<Value> {
    api.messages(conv).await
}

/// A daemon with smooch service `sun` on `sun`.
fn start(sun: &FakeSunshine) -> Harness {
    Harness::start(|dir| config(dir, &sun.url()))
}

/// [`start`], with the v2 fixture ingested: its conversation's id.
async fn opened(sun: &FakeSunshine) -> (Harness, String) {
    let h = start(sun);
    assert_eq!(hook(&h.daemon, Some(HOOK_SECRET), &fixture(V2)).await, 200);
    let conv = h.conversation("sun", CONV).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    (h, conv)
}

fn no_secrets_logged(d: &Daemon) {
    d.assert_never_logged(&[API_SECRET, HOOK_SECRET]);
}

// ---- inbound ----

#[tokio::test]
async fn v2_and_v1_inbound_become_contacts_conversations_and_messages() {
    let sun = FakeSunshine::start(APP_ID, KEY_ID, API_SECRET).await;
    let h = start(&sun);
    let (d, api) = (&h.daemon, &h.api);

    assert_eq!(hook(d, Some(HOOK_SECRET), &fixture(V2)).await, 200);
    assert_eq!(hook(d, Some(HOOK_SECRET), &fixture(V1)).await, 200);

    let mut convs = conversations(api).await;
    convs.sort_by_key(|c| c["external_id"].as_str().unwrap().to_owned());
    assert_eq!(convs.len(), 2);
    let v1 = &convs[0];
    assert_eq!(v1["external_id"], "105e47578be874292d365ee8");
    assert_eq!(v1["contact"]["external_id"], "c7f6e6d6c3a637261bd9656f");
    assert_eq!(v1["contact"]["name"], "Steve");
    let v2 = &convs[1];
    assert_eq!(v2["external_id"], CONV);
    assert_eq!(v2["contact"]["external_id"], "26508c10541a4b0ff472e5e2");
    assert_eq!(v2["contact"]["name"], "Steve Rogers");

    let m1 = messages(api, v1["id"].as_str().unwrap()).await;
    assert_eq!(m1.len(), 1);
    assert_eq!(m1[0]["external_id"], "55c8c1498590aa1900b9b9b1");
    assert_eq!(m1[0]["text"], "Hi! Do you have time to chat?");
    assert_eq!(m1[0]["direction"], "inbound");
    let m2 = messages(api, v2["id"].as_str().unwrap()).await;
    assert_eq!(m2.len(), 1);
    assert_eq!(m2[0]["external_id"], "5f74c7d84a146f3abd72af1d");
    assert_eq!(m2[0]["text"], "hello");
    assert_eq!(m2[0]["author"]["type"], "contact");

    assert!(sun.calls().is_empty());
    no_secrets_logged(d);
    h.finish();
    sun.stop().await;
}

#[tokio::test]
async fn a_wrong_or_missing_key_is_401_and_stores_nothing() {
    let sun = FakeSunshine::start(APP_ID, KEY_ID, API_SECRET).await;
    let h = start(&sun);
    let (d, api) = (&h.daemon, &h.api);
    let events_before = read_events(d, TOKEN, 0, 1000, Duration::from_millis(300)).await;

    let same_length = HOOK_SECRET.replace('a', "b");
    assert_eq!(same_length.len(), HOOK_SECRET.len());
    for key in [
        None,
        Some("wrong"),
        Some(same_length.as_str()),
        Some(API_SECRET),
    ] {
        assert_eq!(hook(d, key, &fixture(V2)).await, 401, "{key:?}");
        assert_eq!(hook(d, key, &fixture(V1)).await, 401, "{key:?}");
    }
    assert!(conversations(api).await.is_empty());
    let events_after = read_events(d, TOKEN, 0, 1000, Duration::from_millis(300)).await;
    assert_eq!(events_before.len(), events_after.len(), "no events written");

    // The same body with the right key is taken: it was the key that was refused.
    assert_eq!(hook(d, Some(HOOK_SECRET), &fixture(V2)).await, 200);
    assert_eq!(conversations(api).await.len(), 1);

    // Bad bodies are refused whole, also with the right key.
    let mut broken = v2_messages(
        "bad",
        &[
            json!({"type": "text", "text": "a"}),
            json!({"type": "text", "text": "b"}),
        ],
    );
    broken["events"][1]["payload"]["message"]
        .as_object_mut()
        .unwrap()
        .remove("id");
    assert_eq!(hook(d, Some(HOOK_SECRET), &broken).await, 422);
    let r = reqwest::Client::new()
        .post(d.url("/hooks/sun"))
        .header("x-api-key", HOOK_SECRET)
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let conv = conversations(api).await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        messages(api, &conv).await.len(),
        1,
        "nothing of the bad bodies stored"
    );

    no_secrets_logged(d);
    h.finish();
    sun.stop().await;
}

#[tokio::test]
async fn a_multi_event_body_is_stored_whole_without_echoes_or_duplicates() {
    let sun = FakeSunshine::start(APP_ID, KEY_ID, API_SECRET).await;
    let h = start(&sun);
    let (d, api) = (&h.daemon, &h.api);

    let mut body = v2_messages(
        "multi",
        &[
            json!({"type": "text", "text": "first"}),
            json!({"type": "image", "mediaUrl": "https://media.smooch.io/apps/a/photo.jpg", "mediaType": "image/jpeg", "altText": "photo.jpg"}),
            json!({"type": "file", "text": "my invoice", "mediaUrl": "https://media.smooch.io/apps/a/invoice.pdf", "mediaType": "application/pdf", "altText": "invoice.pdf"}),
            json!({"type": "text", "text": "an echo of our own reply"}),
        ],
    );
    body["events"][3]["payload"]["message"]["author"] = json!({"type": "business", "displayName": "Anna", "avatarUrl": "https://www.gravatar.com/image.jpg"});
    body["events"].as_array_mut().unwrap().push(json!({
        "id": "evt-typing", "createdAt": "2020-09-30T15:14:29.834Z", "type": "conversation:typing",
        "payload": {"conversation": {"id": CONV}, "user": {"id": "26508c10541a4b0ff472e5e2"}, "activity": {"type": "typing:start"}}
    }));
    assert_eq!(hook(d, Some(HOOK_SECRET), &body).await, 200);

    let convs = conversations(api).await;
    assert_eq!(
        convs.len(),
        1,
        "one Sunshine conversation, one conversation"
    );
    let conv = convs[0]["id"].as_str().unwrap().to_owned();
    let got = messages(api, &conv).await;
    let ids: Vec<&str> = got
        .iter()
        .map(|m| m["external_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        ["multi-0", "multi-1", "multi-2"],
        "the business echo is not stored"
    );
    assert_eq!(got[0]["text"], "first");
    assert_eq!(got[1]["text"], Value::Null);
    assert_eq!(
        got[1]["attachments"],
        json!([{"url": "https://media.smooch.io/apps/a/photo.jpg", "content_type": "image/jpeg", "name": "photo.jpg"}])
    );
    assert_eq!(got[2]["text"], "my invoice");
    assert_eq!(
        got[2]["attachments"],
        json!([{"url": "https://media.smooch.io/apps/a/invoice.pdf", "content_type": "application/pdf", "name": "invoice.pdf"}])
    );

    // Sunshine retries a webhook it got no 2xx for: the same body again stores nothing.
    let before = read_events(d, TOKEN, 0, 1000, Duration::from_millis(300)).await;
    assert_eq!(hook(d, Some(HOOK_SECRET), &body).await, 200);
    let after = read_events(d, TOKEN, 0, 1000, Duration::from_millis(300)).await;
    assert_eq!(before.len(), after.len(), "a duplicate writes no events");
    assert_eq!(messages(api, &conv).await.len(), 3);

    // A body mixing a known message and a new one stores only the new one.
    let mut mixed = v2_messages("later", &[json!({"type": "text", "text": "new"})]);
    mixed["events"]
        .as_array_mut()
        .unwrap()
        .insert(0, body["events"][0].clone());
    assert_eq!(hook(d, Some(HOOK_SECRET), &mixed).await, 200);
    let got = messages(api, &conv).await;
    let ids: Vec<&str> = got
        .iter()
        .map(|m| m["external_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["multi-0", "multi-1", "multi-2", "later-0"]);

    h.finish();
    sun.stop().await;
}

// ---- outbound ----

#[tokio::test]
async fn a_reply_reaches_sunshine_in_the_documented_shape() {
    let sun = FakeSunshine::start(APP_ID, KEY_ID, API_SECRET).await;
    let (h, conv) = opened(&sun).await;
    let (d, api) = (&h.daemon, &h.api);

    let id = api
        .reply(
            &conv,
            json!({"text": "Hi Steve", "author": {"type": "agent", "name": "Anna"}}),
        )
        .await;
    let sent = api.wait_status(&id, "sent").await;
    let calls = sun.calls();
    assert_eq!(calls.len(), 1);
    let c = &calls[0];
    assert_eq!(c.problems, Vec::<String>::new());
    assert_eq!(
        c.path,
        format!("/v2/apps/{APP_ID}/conversations/{CONV}/messages")
    );
    assert_eq!(
        c.body,
        json!({"author": {"type": "business", "displayName": "Anna"},
               "content": {"type": "text", "text": "Hi Steve"}})
    );
    assert_eq!(
        sent["external_id"],
        json!(c.id),
        "the external id is Sunshine's message id"
    );

    // Text with two files: one message per file, the text on the first.
    let id = api.reply(&conv,
        json!({"text": "Your documents", "author": {"type": "bot"},
               "attachments": [
                   {"url": "https://files.example.com/scan.png", "content_type": "image/png", "name": "scan.png"},
                   {"url": "https://files.example.com/terms.pdf", "content_type": "application/pdf", "name": "terms.pdf"}]}),
    )
    .await;
    let sent = api.wait_status(&id, "sent").await;
    let calls = sun.calls();
    assert_eq!(calls.len(), 3);
    assert!(calls.iter().all(|c| c.problems.is_empty()), "{calls:?}");
    assert_eq!(
        calls[1].body,
        json!({"author": {"type": "business"},
               "content": {"type": "image", "mediaUrl": "https://files.example.com/scan.png", "altText": "scan.png", "text": "Your documents"}})
    );
    assert_eq!(
        calls[2].body,
        json!({"author": {"type": "business"},
               "content": {"type": "file", "mediaUrl": "https://files.example.com/terms.pdf", "altText": "terms.pdf"}})
    );
    assert_eq!(sent["external_id"], json!(calls[1].id));

    // Sunshine echoes our replies back as business messages: not stored as inbound.
    let mut echo = v2_messages("echo", &[json!({"type": "text", "text": "Hi Steve"})]);
    echo["events"][0]["payload"]["message"]["id"] = json!(calls[0].id);
    echo["events"][0]["payload"]["message"]["author"] =
        json!({"type": "business", "displayName": "Anna"});
    assert_eq!(hook(d, Some(HOOK_SECRET), &echo).await, 200);
    let all = messages(api, &conv).await;
    assert_eq!(all.len(), 3, "1 inbound + 2 replies");
    assert_eq!(
        all.iter().filter(|m| m["direction"] == "inbound").count(),
        1
    );

    no_secrets_logged(d);
    h.finish();
    sun.stop().await;
}

#[tokio::test]
async fn a_429_is_retried_after_retry_after_and_a_5xx_with_backoff() {
    let sun = FakeSunshine::start(APP_ID, KEY_ID, API_SECRET).await;
    let (h, conv) = opened(&sun).await;
    let api = &h.api;

    sun.script(&[
        Answer::Error(
            429,
            Some("1"),
            json!({"errors": [{"code": "too_many_requests", "title": "Rate limit exceeded"}]}),
        ),
        Answer::Error(
            503,
            None,
            json!({"errors": [{"code": "service_unavailable", "title": "Service Unavailable"}]}),
        ),
    ]);
    let id = api.reply(&conv, json!({"text": "Patience"})).await;
    let sent = api.wait_status(&id, "sent").await;
    let calls = sun.calls();
    let statuses: Vec<u16> = calls.iter().map(|c| c.status).collect();
    assert_eq!(statuses, [429, 503, 201]);
    assert!(
        calls
            .iter()
            .all(|c| c.problems.is_empty() && c.body == calls[0].body)
    );
    // Our own backoff starts at 50 ms here; the wait is Sunshine's Retry-After.
    let waited = calls[1].at - calls[0].at;
    assert!(
        waited >= Duration::from_millis(950),
        "retried after {waited:?}"
    );
    assert_eq!(sent["external_id"], json!(calls[2].id));
    assert_eq!(sent["error"], Value::Null);

    h.finish();
    sun.stop().await;
}

#[tokio::test]
async fn a_retry_after_a_partial_send_sends_only_the_rest() {
    let sun = FakeSunshine::start(APP_ID, KEY_ID, API_SECRET).await;
    let (h, conv) = opened(&sun).await;
    let api = &h.api;

    sun.script(&[
        Answer::Created,
        Answer::Error(
            500,
            None,
            json!({"errors": [{"code": "internal_error", "title": "oops"}]}),
        ),
    ]);
    let id = api.reply(&conv,
        json!({"text": "Two files",
               "attachments": [{"url": "https://files.example.com/a.png", "content_type": "image/png"},
                               {"url": "https://files.example.com/b.pdf", "content_type": "application/pdf"}]}),
    )
    .await;
    let sent = api.wait_status(&id, "sent").await;
    let calls = sun.calls();
    let shape: Vec<(u16, &str)> = calls
        .iter()
        .map(|c| (c.status, c.body["content"]["mediaUrl"].as_str().unwrap()))
        .collect();
    assert_eq!(
        shape,
        [
            (201, "https://files.example.com/a.png"),
            (500, "https://files.example.com/b.pdf"),
            (201, "https://files.example.com/b.pdf"),
        ],
        "the first file is not sent twice"
    );
    assert_eq!(sent["external_id"], json!(calls[0].id));

    h.finish();
    sun.stop().await;
}

#[tokio::test]
async fn a_permanent_4xx_fails_the_message_with_code_and_title() {
    let sun = FakeSunshine::start(APP_ID, KEY_ID, API_SECRET).await;
    let (h, conv) = opened(&sun).await;
    let api = &h.api;

    sun.script(&[Answer::Error(
        423,
        None,
        json!({"errors": [{"code": "locked", "title": "Message limit of 30000 per conversation reached."}]}),
    )]);
    let id = api.reply(&conv, json!({"text": "One too many"})).await;
    let failed = api.wait_status(&id, "failed").await;
    assert_eq!(
        failed["error"],
        "Sunshine answered HTTP 423: locked: Message limit of 30000 per conversation reached."
    );
    // Several retry intervals later, still the one attempt.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(sun.calls().len(), 1);

    h.finish();
    sun.stop().await;
}

#[tokio::test]
async fn replies_wait_while_sunshine_refuses_the_key_and_go_out_once_it_accepts_it() {
    let sun = FakeSunshine::start(APP_ID, KEY_ID, API_SECRET).await;
    let (h, conv) = opened(&sun).await;
    let (d, api) = (&h.daemon, &h.api);
    api.wait_state("sun", "connected").await;

    // The key was revoked at Sunshine: sends get 401 until the operator fixes it.
    let unauthorized =
        json!({"errors": [{"code": "unauthorized", "title": "Authorization Required"}]});
    sun.script(&[
        Answer::Error(401, None, unauthorized.clone()),
        Answer::Error(401, None, unauthorized.clone()),
        Answer::Error(403, None, unauthorized),
    ]);
    let id = api.reply(&conv, json!({"text": "Are you there?"})).await;
    let state = api.wait_state("sun", "failed").await;
    assert!(
        state["reason"]
            .as_str()
            .unwrap()
            .contains("Sunshine rejected keyId/secret"),
        "{state}"
    );
    assert!(!state.to_string().contains(API_SECRET));
    let m = api.get(&format!("/v1/messages/{id}")).await.1;
    assert_eq!(m["status"], "pending", "the reply waits, not failed: {m}");

    // The script is spent: the key works again.
    let sent = api.wait_status(&id, "sent").await;
    let calls = sun.calls();
    let statuses: Vec<u16> = calls.iter().map(|c| c.status).collect();
    assert_eq!(statuses, [401, 401, 403, 201], "sent once");
    assert_eq!(sent["external_id"], json!(calls[3].id));
    api.wait_state("sun", "connected").await;
    no_secrets_logged(d);

    h.finish();
    sun.stop().await;
}

#[tokio::test]
async fn delivery_events_move_the_status_forward_only() {
    let sun = FakeSunshine::start(APP_ID, KEY_ID, API_SECRET).await;
    let (h, conv) = opened(&sun).await;
    let (d, api) = (&h.daemon, &h.api);

    let a = api.reply(&conv, json!({"text": "one"})).await;
    let a_ext = api.wait_status(&a, "sent").await["external_id"]
        .as_str()
        .unwrap()
        .to_owned();
    // Delivered to the channel is what `sent` already says.
    assert_eq!(
        hook(d, Some(HOOK_SECRET), &delivery(DELIVERY_CHANNEL, &a_ext)).await,
        200
    );
    assert_eq!(
        api.get(&format!("/v1/messages/{a}")).await.1["status"],
        "sent"
    );
    assert_eq!(
        hook(d, Some(HOOK_SECRET), &delivery(DELIVERY_USER, &a_ext)).await,
        200
    );
    api.wait_status(&a, "delivered").await;
    // Late and repeated events do not move it back.
    for late in [DELIVERY_CHANNEL, DELIVERY_FAILURE, DELIVERY_USER] {
        assert_eq!(
            hook(d, Some(HOOK_SECRET), &delivery(late, &a_ext)).await,
            200
        );
    }
    let m = api.get(&format!("/v1/messages/{a}")).await.1;
    assert_eq!(
        (&m["status"], &m["error"]),
        (&json!("delivered"), &Value::Null)
    );
    let events = read_events(d, TOKEN, 0, 1000, Duration::from_millis(300)).await;
    let steps: Vec<&str> = events
        .iter()
        .filter(|e| e["type"] == "message.status" && e["data"]["message"]["id"] == a.as_str())
        .map(|e| e["data"]["message"]["status"].as_str().unwrap())
        .collect();
    assert_eq!(steps, ["sent", "delivered"]);

    // A failure event fails a sent message, with Sunshine's code and message.
    let b = api.reply(&conv, json!({"text": "two"})).await;
    let b_ext = api.wait_status(&b, "sent").await["external_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        hook(d, Some(HOOK_SECRET), &delivery(DELIVERY_FAILURE, &b_ext)).await,
        200
    );
    let m = api.wait_status(&b, "failed").await;
    assert_eq!(
        m["error"],
        "delivery failed: uncategorized_error: Unsupported message type `form`"
    );

    // v1.1 webhooks report deliveries too.
    let c = api.reply(&conv, json!({"text": "three"})).await;
    let c_ext = api.wait_status(&c, "sent").await["external_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let v1 = json!({"trigger": "message:delivery:user", "app": {"_id": APP_ID}, "version": "v1.1",
                    "appUser": {"_id": "26508c10541a4b0ff472e5e2"}, "conversation": {"_id": CONV},
                    "destination": {"type": "messenger"}, "message": {"_id": c_ext}, "isFinalEvent": true});
    assert_eq!(hook(d, Some(HOOK_SECRET), &v1).await, 200);
    api.wait_status(&c, "delivered").await;

    // A receipt for a message we do not know is acknowledged, not an error.
    assert_eq!(
        hook(d, Some(HOOK_SECRET), &delivery(DELIVERY_USER, "unknown-id")).await,
        200
    );

    h.finish();
    sun.stop().await;
}

// ---- config ----

#[test]
fn seed_params_env_overrides_and_secret_files() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("hook.secret"), format!("{HOOK_SECRET}\n")).unwrap();
    let path = dir.path().join("switchboard.toml");
    let write = |params: &str| {
        std::fs::write(
            &path,
            base_config(dir.path())
                + &format!(
                    "\n[services.sun]\ntype = \"smooch\"\nsmoochId = \"58caef23feee32390091168a\"\n\
                     smoochAppId = \"app_58caef23feee32390091168a\"\n[services.sun.params]\n{params}"
                ),
        )
        .unwrap();
    };
    let check =
        |env: &[(&str, &str)]| run_cli(&["check-config", "--config", path.to_str().unwrap()], env);
    write(&format!(
        "keyId = \"{KEY_ID}\"\nsecret = \"{API_SECRET}\"\nwebhook_secret_file = \"{}\"\n",
        dir.path().join("hook.secret").display()
    ));
    // appId only from the environment, which arrives lower-cased.
    let (status, out, err) = check(&[("SWITCHBOARD_SERVICES__SUN__PARAMS__APPID", APP_ID)]);
    assert!(status.success(), "{out}{err}");

    let (status, out, err) = check(&[]);
    assert_eq!(status.code(), Some(2), "{out}{err}");
    assert!(err.contains("services.sun.params.appId"), "{err}");

    write(&format!(
        "appId = \"{APP_ID}\"\nkeyId = \"\"\nsecret = \"{API_SECRET}\"\nwebhook_secret = \"x\"\napi_base = \"not a url\"\n"
    ));
    let (status, out, err) = check(&[]);
    assert_eq!(status.code(), Some(2), "{out}{err}");
    for key in ["keyId", "api_base"] {
        assert!(
            err.contains(&format!("services.sun.params.{key}:")),
            "{key}: {err}"
        );
    }

    write(&format!(
        "appId = \"{APP_ID}\"\nkeyId = \"{KEY_ID}\"\nsecret = \"{API_SECRET}\"\nwebhook_secret = \"x\"\nappSecret = \"typo\"\n"
    ));
    let (status, out, err) = check(&[]);
    assert_eq!(status.code(), Some(2), "{out}{err}");
    assert!(
        err.contains("services.sun.params.appSecret: unknown key"),
        "{err}"
    );
    assert!(!err.contains(API_SECRET), "{err}");
}
