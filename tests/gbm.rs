//! End-to-end tests of the `gbm` service type: the real binary and SQLite, Google's own
//! sample webhooks signed here and posted over loopback, and fakes of Google's token
//! endpoint and Business Messages API that check every request (see `gbm_kit`).
#![cfg(all(feature = "gbm", feature = "api"))]

mod common;
#[path = "fakes/gbm.rs"]
mod gbm_kit;

use std::path::Path;
use std::time::Duration;

use common::*;
use gbm_kit::{Answer, FakeGoogle, goog_signature, key_file, key_pair};
use serde_json::{Value, json};

const T: Duration = Duration::from_secs(15);
const CLIENT_TOKEN: &str = "gbm-partner-client-token-0123456789";
const WELCOME: &str = "Welcome to Example Bikes! How can we help?";
const OFFLINE: &str = "We are closed now and answer on Monday from 09:00.";
/// The conversation of Google's samples.
const CONV: &str = "CONVERSATION_ID";

const TEXT: &[u8] = include_bytes!("../connectors/gbm/fixtures/text-message.json");
const IMAGE: &[u8] = include_bytes!("../connectors/gbm/fixtures/image-message.json");
const SUGGESTION: &[u8] = include_bytes!("../connectors/gbm/fixtures/suggestion-message.json");

// ---- helpers ----

/// A daemon config with an api service and a `gbm` service `g` whose key file (naming
/// the fake's token endpoint) lies in `dir`; `hours` adds opening-hours params.
fn config(dir: &Path, google: &FakeGoogle, hours: &str) -> String {
    let key = dir.join("service-account.json");
    std::fs::write(&key, key_file(&google.token_url())).unwrap();
    base_config(dir)
        + &api_service("")
        + &format!(
            r#"
[services.g]
type = "gbm"
[services.g.params]
location = "5876bc219b9d2b54a0c464c9"
welcomeMessage = "{WELCOME}"
starter = "Hello"
offlineMessage = "{OFFLINE}"
client_token = "{CLIENT_TOKEN}"
service_account_file = "{}"
api_base = "{}"
{hours}
"#,
            key.display(),
            google.api_base()
        )
}

/// A daemon on [`config`] whose clock starts at `clock` (RFC 3339), or the real one.
fn start(google: &FakeGoogle, hours: &str, clock: Option<&str>) -> Harness {
    let env: Vec<(&str, &str)> = clock
        .map(|at| ("SWITCHBOARD_CLOCK_START", at))
        .into_iter()
        .collect();
    Harness::start_with_env(|dir| config(dir, google, hours), &env)
}

/// A daemon on [`config`] with the conversation Google's sample `body` opened: its id.
async fn opened(google: &FakeGoogle, body: &[u8]) -> (Harness, String) {
    let h = start(google, "", None);
    assert_eq!(signed(&h.daemon, body).await, 200);
    let conv = h.conversation("g", CONV).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    (h, conv)
}

/// POSTs `body` to the service's hook as Google does, signed unless told otherwise;
/// the status and the body of the answer.
async fn hook(d: &Daemon, body: &[u8], signature: Option<&str>) -> (u16, String) {
    let mut req = reqwest::Client::new()
        .post(d.url("/hooks/g"))
        .header("content-type", "application/json")
        .body(body.to_vec());
    if let Some(s) = signature {
        req = req.header("x-goog-signature", s);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.text().await.unwrap())
}

async fn signed(d: &Daemon, body: &[u8]) -> u16 {
    hook(d, body, Some(&goog_signature(CLIENT_TOKEN, body)))
        .await
        .0
}

/// Google's text sample with another message id and conversation.
fn text_message(message_id: &str, conversation: &str, text: &str) -> Vec<u8> {
    let mut v: Value = serde_json::from_slice(TEXT).unwrap();
    v["message"]["messageId"] = json!(message_id);
    v["message"]["name"] = json!(format!(
        "conversations/{conversation}/messages/{message_id}"
    ));
    v["message"]["text"] = json!(text);
    v["conversationId"] = json!(conversation);
    v["requestId"] = json!(format!("req-{message_id}"));
    v.to_string().into_bytes()
}

async fn conversations(api: &Api) -> Vec<Value> {
    api.conversations("g").await
}

async fn conversation_id(api: &Api, external: &str) -> String {
    api.conversation("g", external).await["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn messages(api: &Api, conv: &str) -> Vec<Value> {
    api.messages(conv).await
}

/// `(author type, text)` of a conversation's outbound messages, oldest first.
async fn outbound(api: &Api, conv: &str) -> Vec<(String, String)> {
    messages(api, conv)
        .await
        .iter()
        .filter(|m| m["direction"] == "outbound")
        .map(|m| {
            (
                m["author"]["type"].as_str().unwrap().to_owned(),
                m["text"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

/// Waits until the fake has answered `n` Create Message requests with 200.
async fn wait_created(google: &FakeGoogle, n: usize) -> Vec<gbm_kit::Call> {
    eventually(T, &format!("{n} messages created at Google"), || async {
        let ok: Vec<_> = google
            .calls()
            .into_iter()
            .filter(|c| c.status == 200)
            .collect();
        (ok.len() >= n).then_some(ok)
    })
    .await
}

async fn event_count(d: &Daemon) -> usize {
    read_events(d, TOKEN, 0, 1000, Duration::from_millis(300))
        .await
        .len()
}

fn no_secrets_logged(d: &Daemon) {
    let key_body = key_pair().private_pem.lines().nth(1).unwrap().to_owned();
    d.assert_never_logged(&[CLIENT_TOKEN, &key_body, "ya29."]);
}

// ---- inbound ----

#[tokio::test]
async fn signed_samples_become_messages_and_duplicates_change_nothing() {
    let google = FakeGoogle::start().await;
    let h = start(&google, "", None);
    let (d, api) = (&h.daemon, &h.api);

    assert_eq!(signed(d, TEXT).await, 200);
    assert_eq!(signed(d, SUGGESTION).await, 200);

    let convs = conversations(api).await;
    assert_eq!(convs.len(), 1, "{convs:#?}");
    assert_eq!(convs[0]["external_id"], CONV);
    assert_eq!(convs[0]["contact"]["external_id"], CONV);
    assert_eq!(convs[0]["contact"]["name"], "USER_NAME");
    let conv = convs[0]["id"].as_str().unwrap().to_owned();
    let got = messages(api, &conv).await;
    let inbound: Vec<(&str, &str)> = got
        .iter()
        .filter(|m| m["direction"] == "inbound")
        .map(|m| {
            (
                m["external_id"].as_str().unwrap(),
                m["text"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        inbound,
        [
            ("MESSAGE_ID", "MESSAGE_TEXT"),
            ("REQUEST_ID", "SUGGESTION_TEXT")
        ]
    );
    assert!(
        got.iter()
            .all(|m| m["direction"] == "outbound" || m["author"]["type"] == "contact")
    );
    // The new conversation was greeted, once, as a bot at Google.
    assert_eq!(
        outbound(api, &conv).await,
        [("system".into(), WELCOME.into())]
    );
    let created = wait_created(&google, 1).await;
    assert_eq!(created[0].conversation, CONV);
    assert_eq!(
        created[0].body["representative"],
        json!({"representativeType": "BOT"})
    );
    assert_eq!(created[0].body["text"], WELCOME);

    // Google retries for days until it gets a 2xx: a retry is acknowledged, nothing new.
    let before = event_count(d).await;
    assert_eq!(signed(d, TEXT).await, 200);
    assert_eq!(signed(d, SUGGESTION).await, 200);
    assert_eq!(event_count(d).await, before, "a duplicate writes no events");
    assert_eq!(messages(api, &conv).await.len(), 3);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(google.calls().len(), 1, "no second welcome");

    no_secrets_logged(d);
    h.finish();
    google.stop().await;
}

#[tokio::test]
async fn an_image_arrives_as_an_attachment() {
    let google = FakeGoogle::start().await;
    let (h, conv) = opened(&google, IMAGE).await;
    let api = &h.api;
    let got = messages(api, &conv).await;
    let sample: Value = serde_json::from_slice(IMAGE).unwrap();
    assert_eq!(got[0]["external_id"], "MESSAGE_ID");
    assert_eq!(got[0]["text"], Value::Null);
    assert_eq!(
        got[0]["attachments"],
        json!([{"url": sample["message"]["text"]}]),
        "the signed storage URL, JSON escapes decoded"
    );

    h.finish();
    google.stop().await;
}

#[tokio::test]
async fn typing_reaches_the_event_stream_live_and_is_not_stored() {
    use futures_util::StreamExt;
    let google = FakeGoogle::start().await;
    let (h, conv) = opened(&google, TEXT).await;
    let d = &h.daemon;
    let stored = event_count(d).await;

    let url = format!("ws://{}/v1/events?access_token={TOKEN}", d.addr);
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let typing =
        json!({"agent": "brands/1/agents/2", "conversationId": CONV, "requestId": "typing-1",
                        "userStatus": {"isTyping": true, "createTime": "2021-05-04T10:00:00Z"},
                        "sendTime": "2021-05-04T10:00:00Z"})
        .to_string();
    assert_eq!(signed(d, typing.as_bytes()).await, 200);
    let frame = tokio::time::timeout(T, async {
        loop {
            if let Some(Ok(tokio_tungstenite::tungstenite::Message::Text(t))) = ws.next().await {
                let v: Value = serde_json::from_str(&t).unwrap();
                if v["type"] == "conversation.typing" {
                    return v;
                }
            }
        }
    })
    .await
    .expect("a conversation.typing frame");
    assert_eq!(frame["data"]["conversation_id"], json!(conv));
    assert_eq!(frame["data"]["typing"], true);
    assert!(frame.get("seq").is_none(), "ephemeral: no sequence number");
    assert_eq!(event_count(d).await, stored, "typing is not stored");
    h.finish();
    google.stop().await;
}

#[tokio::test]
async fn bad_or_missing_signatures_are_401_and_store_nothing() {
    let google = FakeGoogle::start().await;
    let h = start(&google, "", None);
    let (d, api) = (&h.daemon, &h.api);
    let before = event_count(d).await;

    let other_key = goog_signature("another-partners-token", TEXT);
    let other_body = goog_signature(CLIENT_TOKEN, SUGGESTION);
    for sig in [
        None,
        Some(other_key.as_str()),
        Some(other_body.as_str()),
        Some("not base64 at all"),
        Some(""),
    ] {
        let (status, body) = hook(d, TEXT, sig).await;
        assert_eq!(status, 401, "{sig:?}");
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["error"]["code"], "unauthorized", "{body}");
    }
    // A body changed after signing (one byte appended) is refused.
    let mut tampered = TEXT.to_vec();
    tampered.push(b' ');
    let (status, _) = hook(d, &tampered, Some(&goog_signature(CLIENT_TOKEN, TEXT))).await;
    assert_eq!(status, 401);

    assert!(conversations(api).await.is_empty());
    assert_eq!(event_count(d).await, before, "no events written");
    assert!(google.calls().is_empty());

    // The same body signed with the client token is taken: it was the signature.
    assert_eq!(signed(d, TEXT).await, 200);
    assert_eq!(conversations(api).await.len(), 1);

    no_secrets_logged(d);
    h.finish();
    google.stop().await;
}

#[tokio::test]
async fn the_webhook_setup_request_gets_its_secret_back() {
    let google = FakeGoogle::start().await;
    let h = start(&google, "", None);
    let (d, api) = (&h.daemon, &h.api);

    let setup = json!({"clientToken": CLIENT_TOKEN, "secret": "8472019375"}).to_string();
    let resp = reqwest::Client::new()
        .post(d.url("/hooks/g"))
        .header("content-type", "application/json")
        .body(setup.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    assert_eq!(resp.text().await.unwrap(), "8472019375");
    // Signed, it is answered the same way.
    assert_eq!(
        hook(
            d,
            setup.as_bytes(),
            Some(&goog_signature(CLIENT_TOKEN, setup.as_bytes()))
        )
        .await,
        (200, "8472019375".to_owned())
    );
    // Someone else's client token gets no echo.
    let wrong = json!({"clientToken": "someone-elses-token", "secret": "8472019375"}).to_string();
    let (status, body) = hook(d, wrong.as_bytes(), None).await;
    assert_eq!(status, 401);
    assert!(!body.contains("8472019375"), "{body}");
    assert!(conversations(api).await.is_empty());

    no_secrets_logged(d);
    h.finish();
    google.stop().await;
}

// ---- opening hours ----

const OFFICE_HOURS: &str = r#"startDay = "MONDAY"
endDay = "FRIDAY"
startTime = "09:00"
endTime = "17:00"
timezone = "Europe/Amsterdam""#;

#[tokio::test]
async fn inside_opening_hours_there_is_no_offline_message() {
    let google = FakeGoogle::start().await;
    // Wednesday 2026-03-04, 10:30 in Amsterdam.
    let h = start(&google, OFFICE_HOURS, Some("2026-03-04T09:30:00Z"));
    let (d, api) = (&h.daemon, &h.api);

    assert_eq!(
        signed(d, &text_message("m-1", "conv-a", "Hello?")).await,
        200
    );
    assert_eq!(
        signed(d, &text_message("m-2", "conv-a", "Anyone?")).await,
        200
    );
    let conv = conversation_id(api, "conv-a").await;
    // System messages are queued before the webhook is answered: this is final.
    assert_eq!(
        outbound(api, &conv).await,
        [("system".into(), WELCOME.into())]
    );
    wait_created(&google, 1).await;

    h.finish();
    google.stop().await;
}

#[tokio::test]
async fn outside_opening_hours_each_conversation_gets_one_offline_message() {
    let google = FakeGoogle::start().await;
    // Saturday 2026-03-07, 13:00 in Amsterdam.
    let h = start(&google, OFFICE_HOURS, Some("2026-03-07T12:00:00Z"));
    let (d, api) = (&h.daemon, &h.api);

    for (id, text) in [
        ("a-1", "Hello?"),
        ("a-2", "Are you open?"),
        ("a-3", "Hello??"),
    ] {
        assert_eq!(signed(d, &text_message(id, "conv-a", text)).await, 200);
    }
    assert_eq!(signed(d, &text_message("b-1", "conv-b", "Hi")).await, 200);
    // A retry of a message from the closed hours asks for nothing more.
    assert_eq!(
        signed(d, &text_message("a-2", "conv-a", "Are you open?")).await,
        200
    );

    let a = conversation_id(api, "conv-a").await;
    let b = conversation_id(api, "conv-b").await;
    let expected = vec![
        ("system".to_owned(), WELCOME.to_owned()),
        ("system".to_owned(), OFFLINE.to_owned()),
    ];
    assert_eq!(outbound(api, &a).await, expected);
    assert_eq!(outbound(api, &b).await, expected);
    let inbound = messages(api, &a)
        .await
        .iter()
        .filter(|m| m["direction"] == "inbound")
        .count();
    assert_eq!(inbound, 3, "still ingested while closed");

    let created = wait_created(&google, 4).await;
    let mut offline: Vec<&str> = created
        .iter()
        .filter(|c| c.body["text"] == OFFLINE)
        .map(|c| c.conversation.as_str())
        .collect();
    offline.sort();
    assert_eq!(offline, ["conv-a", "conv-b"]);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(google.calls().len(), 4);

    h.finish();
    google.stop().await;
}

// ---- outbound ----

#[tokio::test]
async fn replies_have_the_documented_shape_and_share_one_token_until_it_is_refused() {
    let google = FakeGoogle::start().await;
    let (h, conv) = opened(&google, TEXT).await;
    let (d, api) = (&h.daemon, &h.api);
    wait_created(&google, 1).await;

    let id = api
        .reply(
            &conv,
            json!({"text": "Hi, how can I help?", "author": {"type": "agent", "name": "Anna"}}),
        )
        .await;
    let sent = api.wait_status(&id, "sent").await;
    let calls = google.calls();
    let c = calls.last().unwrap();
    assert_eq!(c.problems, Vec::<String>::new());
    assert_eq!(c.conversation, CONV);
    assert_eq!(c.authorization, "Bearer ya29.fake-access-token-1");
    let message_id = c.body["messageId"].as_str().unwrap();
    assert_eq!(
        c.body,
        json!({"messageId": message_id,
               "representative": {"representativeType": "HUMAN", "displayName": "Anna"},
               "text": "Hi, how can I help?"})
    );
    assert_eq!(
        &message_id[14..15],
        "5",
        "a name-based (v5) UUID: {message_id}"
    );
    assert_eq!(sent["external_id"], message_id, "receipts match on it");

    let id = api
        .reply(
            &conv,
            json!({"text": "Opening hours: 9-17", "author": {"type": "bot"}}),
        )
        .await;
    api.wait_status(&id, "sent").await;
    let c = google.calls().last().unwrap().clone();
    assert_eq!(
        c.body["representative"],
        json!({"representativeType": "BOT"})
    );
    assert_ne!(c.body["messageId"], message_id, "every message its own id");

    // The startup check, the welcome and two replies: one token.
    let tokens = google.token_calls();
    assert_eq!(tokens.len(), 1, "{tokens:?}");
    assert_eq!(tokens[0].problems, Vec::<String>::new());
    assert_eq!(tokens[0].status, 200);

    // Google stops taking the token: one new grant, the same message id again.
    google.revoke_tokens();
    let id = api.reply(&conv, json!({"text": "Still there?"})).await;
    let sent = api.wait_status(&id, "sent").await;
    let calls = google.calls();
    let last_two: Vec<(u16, &str, &Value)> = calls[calls.len() - 2..]
        .iter()
        .map(|c| (c.status, c.authorization.as_str(), &c.body["messageId"]))
        .collect();
    assert_eq!(
        last_two,
        [
            (401, "Bearer ya29.fake-access-token-1", &sent["external_id"]),
            (200, "Bearer ya29.fake-access-token-2", &sent["external_id"]),
        ]
    );
    let tokens = google.token_calls();
    assert_eq!(tokens.len(), 2);
    assert!(tokens.iter().all(|t| t.problems.is_empty()), "{tokens:?}");
    assert_eq!(
        api.get("/v1/services").await.1["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["id"] == "g")
            .unwrap()["state"]["kind"],
        "connected"
    );

    no_secrets_logged(d);
    h.finish();
    google.stop().await;
}

#[tokio::test]
async fn retries_reuse_the_message_id_and_google_errors_are_classified() {
    let google = FakeGoogle::start().await;
    let (h, conv) = opened(&google, TEXT).await;
    let api = &h.api;
    wait_created(&google, 1).await;
    let base = google.calls().len();

    // A 503, then an answer lost after Google took the message: no duplicate.
    google.script(&[
        Answer::Error(503, "UNAVAILABLE", "The service is currently unavailable."),
        Answer::AcceptThenFail,
    ]);
    let id = api.reply(&conv, json!({"text": "One moment"})).await;
    let sent = api.wait_status(&id, "sent").await;
    let calls = google.calls();
    let tries: Vec<(u16, &Value)> = calls[base..]
        .iter()
        .map(|c| (c.status, &c.body["messageId"]))
        .collect();
    let mid = &sent["external_id"];
    assert_eq!(tries, [(503, mid), (503, mid), (409, mid)]);

    // A bad request fails the message at once, with Google's status and message.
    google.script(&[Answer::Error(
        400,
        "INVALID_ARGUMENT",
        "Invalid argument: text exceeds 3072 characters",
    )]);
    let id = api
        .reply(&conv, json!({"text": "Too long, says the script"}))
        .await;
    let failed = api.wait_status(&id, "failed").await;
    assert_eq!(
        failed["error"],
        "Business Messages answered HTTP 400: INVALID_ARGUMENT: Invalid argument: text exceeds 3072 characters"
    );

    // Files: the text with the non-image as a link, then the image on its own.
    let base = google.calls().len();
    let id = api.reply(&conv,
        json!({"text": "Your documents", "author": {"type": "agent", "name": "Anna"},
               "attachments": [
                   {"url": "https://files.example.com/scan.png", "content_type": "image/png", "name": "scan.png"},
                   {"url": "https://files.example.com/terms.pdf", "content_type": "application/pdf", "name": "terms.pdf"}]}),
    )
    .await;
    let sent = api.wait_status(&id, "sent").await;
    let calls = google.calls();
    assert_eq!(calls.len(), base + 2);
    assert!(
        calls[base..]
            .iter()
            .all(|c| c.problems.is_empty() && c.status == 200)
    );
    let human = json!({"representativeType": "HUMAN", "displayName": "Anna"});
    assert_eq!(
        calls[base].body,
        json!({"messageId": sent["external_id"], "representative": human,
               "text": "Your documents\nterms.pdf: https://files.example.com/terms.pdf"})
    );
    let image_id = calls[base + 1].body["messageId"].clone();
    assert_ne!(image_id, sent["external_id"]);
    assert_eq!(
        calls[base + 1].body,
        json!({"messageId": image_id, "representative": human,
               "image": {"contentInfo": {"fileUrl": "https://files.example.com/scan.png", "altText": "scan.png"}},
               "fallback": "scan.png: https://files.example.com/scan.png"})
    );

    h.finish();
    google.stop().await;
}

#[tokio::test]
async fn receipts_move_replies_forward() {
    let google = FakeGoogle::start().await;
    let (h, conv) = opened(&google, TEXT).await;
    let (d, api) = (&h.daemon, &h.api);

    let id = api.reply(&conv, json!({"text": "Here you go"})).await;
    let ext = api.wait_status(&id, "sent").await["external_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let receipt = |kind: &str| {
        json!({"agent": "brands/BRAND_ID/agents/AGENT_ID", "conversationId": CONV,
               "customAgentId": "CUSTOM_AGENT_ID", "requestId": format!("rcpt-{kind}"),
               "receipts": {"receipts": [{"message": format!("conversations/{CONV}/messages/{ext}"),
                                          "receiptType": kind}],
                            "createTime": "2026-03-04T10:00:00Z"},
               "sendTime": "2026-03-04T10:00:01Z"})
        .to_string()
    };
    assert_eq!(signed(d, receipt("DELIVERED").as_bytes()).await, 200);
    api.wait_status(&id, "delivered").await;
    assert_eq!(signed(d, receipt("READ").as_bytes()).await, 200);
    api.wait_status(&id, "read").await;
    // Late and repeated receipts do not move it back.
    assert_eq!(signed(d, receipt("DELIVERED").as_bytes()).await, 200);
    assert_eq!(
        api.get(&format!("/v1/messages/{id}")).await.1["status"],
        "read"
    );

    h.finish();
    google.stop().await;
}

// ---- config ----

#[test]
fn config_problems_name_their_key_and_never_show_the_key_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("switchboard.toml");
    let key = dir.path().join("sa.json");
    std::fs::write(&key, key_file("https://oauth2.googleapis.com/token")).unwrap();
    let write = |params: &str| {
        std::fs::write(
            &path,
            base_config(dir.path())
                + &format!("\n[services.g]\ntype = \"gbm\"\n[services.g.params]\n{params}"),
        )
        .unwrap();
    };
    let check =
        |env: &[(&str, &str)]| run_cli(&["check-config", "--config", path.to_str().unwrap()], env);
    let good = format!(
        "location = \"l\"\nstarter = \"Hi\"\nclient_token = \"{CLIENT_TOKEN}\"\nservice_account_file = \"{}\"\n",
        key.display()
    );

    // welcomeMessage only from the environment, which arrives lower-cased.
    write(&good);
    let (status, out, err) =
        check(&[("SWITCHBOARD_SERVICES__G__PARAMS__WELCOMEMESSAGE", "Hello!")]);
    assert!(status.success(), "{out}{err}");
    let (status, _, err) = check(&[]);
    assert_eq!(status.code(), Some(2));
    assert!(err.contains("services.g.params.welcomeMessage"), "{err}");

    // An unreadable key file names its key.
    write(&format!(
        "location = \"l\"\nwelcomeMessage = \"W\"\nstarter = \"Hi\"\nclient_token = \"x\"\nservice_account_file = \"{}\"\n",
        dir.path().join("missing.json").display()
    ));
    let (status, _, err) = check(&[]);
    assert_eq!(status.code(), Some(2));
    assert!(
        err.contains("services.g.params.service_account_file: cannot read"),
        "{err}"
    );

    // A key file that is not a key: named, and not quoted.
    let broken = dir.path().join("broken.json");
    let pem = key_pair().private_pem.clone();
    std::fs::write(
        &broken,
        format!("{{\"private_key\": \"{}", pem.replace('\n', "\\n")),
    )
    .unwrap();
    write(&format!(
        "location = \"l\"\nwelcomeMessage = \"W\"\nstarter = \"Hi\"\nclient_token = \"x\"\nservice_account_file = \"{}\"\n\
         timezone = \"Europe/Atlantis\"\n",
        broken.display()
    ));
    let (status, out, err) = check(&[]);
    assert_eq!(status.code(), Some(2), "{out}{err}");
    for key in ["service_account", "timezone"] {
        assert!(
            err.contains(&format!("services.g.params.{key}:")),
            "{key}: {err}"
        );
    }
    assert!(err.contains("not JSON"), "{err}");
    assert!(!err.contains(pem.lines().nth(1).unwrap()), "{err}");

    // Opening hours in another shape than Web1on1's.
    write(&(good + "welcomeMessage = \"W\"\nstartTime = \"9:00\"\nendDay = \"Someday\"\n"));
    let (status, out, err) = check(&[]);
    assert_eq!(status.code(), Some(2), "{out}{err}");
    for key in ["startTime", "endDay"] {
        assert!(
            err.contains(&format!("services.g.params.{key}:")),
            "{key}: {err}"
        );
    }
}
