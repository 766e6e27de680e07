//! Oversized, truncated, wrong-charset and deeply nested bodies, correctly signed so they
//! reach every inbound parser, get clean 4xx errors (the contract's JSON error body) and
//! store nothing.

mod common;
#[path = "fakes/gbm.rs"]
mod gbm_kit;

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use common::*;
use hmac::{Hmac, Mac};
use serde_json::Value;

const MAX_BODY: usize = 8192;
const SMOOCH_KEY: &str = "hostile-smooch-webhook-key";
const INTERCOM_SECRET: &str = "hostile-intercom-client-secret";
const GBM_TOKEN: &str = "hostile-gbm-client-token-0123456789";
const TWILIO_TOKEN: &str = "0123456789abcdef0123456789abcdef";

fn config(dir: &std::path::Path) -> String {
    let key = dir.join("sa.json");
    std::fs::write(&key, gbm_kit::key_file("http://127.0.0.1:9/token")).unwrap();
    base_config(dir).replace(
        "shutdown_timeout = \"5s\"",
        &format!("shutdown_timeout = \"5s\"\nmax_body = {MAX_BODY}"),
    ) + &api_service("")
        + &format!(
            r#"
[services.sun]
type = "smooch"
[services.sun.params]
appId = "app1"
keyId = "key1"
secret = "api-secret"
webhook_secret = "{SMOOCH_KEY}"
api_base = "http://127.0.0.1:9"

[services.ic]
type = "intercom"
[services.ic.params]
app_id = "app1"
access_token = "intercom-access-token"
assignee_id = 1
client_secret = "{INTERCOM_SECRET}"
api_base = "http://127.0.0.1:9"

[services.g]
type = "gbm"
[services.g.params]
location = "loc1"
welcomeMessage = "hi"
starter = "hello"
client_token = "{GBM_TOKEN}"
service_account_file = "{}"
api_base = "http://127.0.0.1:9"

[services.sms]
type = "twilio"
[services.sms.params]
account_sid = "AC0123456789abcdef0123456789abcdef"
auth_token = "{TWILIO_TOKEN}"
from = "+14155550100"
api_base = "http://127.0.0.1:9"
"#,
            key.display()
        )
}

/// The headers that make a body authentic for each JSON provider.
fn signed(hook: &str, body: &[u8]) -> Vec<(&'static str, String)> {
    match hook {
        "sun" => vec![("x-api-key", SMOOCH_KEY.to_owned())],
        "ic" => {
            let mut mac = Hmac::<sha1::Sha1>::new_from_slice(INTERCOM_SECRET.as_bytes()).unwrap();
            mac.update(body);
            let hex: String = mac
                .finalize()
                .into_bytes()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            vec![("x-hub-signature", format!("sha1={hex}"))]
        }
        "g" => vec![("x-goog-signature", gbm_kit::goog_signature(GBM_TOKEN, body))],
        "api" => vec![("authorization", format!("Bearer {TOKEN}"))],
        other => panic!("no signer for {other}"),
    }
}

async fn post(
    d: &Daemon,
    path: &str,
    headers: &[(&str, String)],
    content_type: &str,
    body: Vec<u8>,
) -> (u16, Value) {
    let mut req = reqwest::Client::new()
        .post(d.url(path))
        .timeout(Duration::from_secs(10))
        .header("content-type", content_type)
        .body(body);
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

fn assert_clean(what: &str, (status, body): (u16, Value), expected: u16) {
    assert_eq!(status, expected, "{what}: {body}");
    assert!(
        body["error"]["code"].is_string() && body["error"]["message"].is_string(),
        "{what}: not the contract's error body: {body}"
    );
}

/// A body whose `key` holds a value nested `depth` deep, closed properly (valid JSON)
/// or not.
fn nested(key: &str, depth: usize, closed: bool) -> Vec<u8> {
    let mut s = format!("{{\"{key}\":");
    s.push_str(&"[".repeat(depth));
    if closed {
        s.push_str(&"]".repeat(depth));
        s.push('}');
    }
    s.into_bytes()
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_bodies_get_clean_4xx_and_store_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path(), &config(dir.path()));
    let api = Api::new(&d);
    // Each with a key its parser reads.
    let fixtures: [(&str, &str, &str, &[u8]); 4] = [
        (
            "sun",
            "/hooks/sun",
            "events",
            include_bytes!("../connectors/smooch/fixtures/v2_conversation_message.json"),
        ),
        (
            "ic",
            "/hooks/ic",
            "data",
            include_bytes!(
                "../connectors/intercom/fixtures/docs_signed_notification_user_created.json"
            ),
        ),
        (
            "g",
            "/hooks/g",
            "message",
            include_bytes!("../connectors/gbm/fixtures/text-message.json"),
        ),
        (
            "api",
            "/v1/services/api/messages",
            "contact",
            br#"{"external_id":"m-1","contact":{"external_id":"c-1"},"text":"hello"}"#,
        ),
    ];
    for (hook, path, key, good) in fixtures {
        let case = |name: &str| format!("{hook}: {name}");
        // Truncated: half of a real payload.
        let truncated = good[..good.len() / 2].to_vec();
        assert_clean(
            &case("truncated"),
            post(
                &d,
                path,
                &signed(hook, &truncated),
                "application/json",
                truncated,
            )
            .await,
            400,
        );
        // Deeply nested where the parser reads, past serde_json's recursion limit:
        // unterminated (not JSON: 400) and terminated (400 for the depth, or 422).
        for closed in [false, true] {
            let body = nested(key, MAX_BODY / 4, closed);
            let got = post(&d, path, &signed(hook, &body), "application/json", body).await;
            assert!(
                matches!(got.0, 400 | 422) && (closed || got.0 == 400),
                "{}: {got:?}",
                case("nested")
            );
            assert_clean(&case("nested"), got.clone(), got.0);
        }
        // Under a key no parser reads, deep nesting is skipped without recursion: a
        // provider may acknowledge it as an event it does not know, but stores nothing.
        let body = nested("unknown_key", MAX_BODY / 4, true);
        let (status, _) = post(&d, path, &signed(hook, &body), "application/json", body).await;
        assert!(
            status < 500,
            "{}: {status}",
            case("nested under an unknown key")
        );
        // Wrong charset: Latin-1 bytes where UTF-8 is required, and UTF-16.
        let latin1: Vec<u8> = String::from_utf8_lossy(good)
            .replace("a", "\u{0}")
            .bytes()
            .map(|b| if b == 0 { 0xe9 } else { b })
            .collect();
        assert_clean(
            &case("latin-1"),
            post(
                &d,
                path,
                &signed(hook, &latin1),
                "application/json; charset=iso-8859-1",
                latin1,
            )
            .await,
            400,
        );
        let utf16: Vec<u8> = String::from_utf8_lossy(good)
            .encode_utf16()
            .flat_map(|u| u.to_le_bytes())
            .collect();
        assert_clean(
            &case("utf-16"),
            post(
                &d,
                path,
                &signed(hook, &utf16),
                "application/json; charset=utf-16",
                utf16,
            )
            .await,
            400,
        );
        // Oversized.
        let mut big = good.to_vec();
        big.resize(MAX_BODY + 1, b' ');
        assert_clean(
            &case("oversized"),
            post(&d, path, &signed(hook, &big), "application/json", big).await,
            413,
        );
    }

    // Twilio's form body: oversized, and bytes that are not UTF-8 once decoded.
    let url = format!("{}/hooks/sms", d.url(""));
    let params = |body: &str| {
        vec![
            (
                "AccountSid".to_owned(),
                "AC0123456789abcdef0123456789abcdef".to_owned(),
            ),
            ("Body".to_owned(), body.to_owned()),
            ("From".to_owned(), "+31612345678".to_owned()),
            (
                "MessageSid".to_owned(),
                "SM0123456789abcdef0123456789abcdef".to_owned(),
            ),
            ("To".to_owned(), "+14155550100".to_owned()),
        ]
    };
    let twilio_sig = |p: &[(String, String)]| {
        let mut data = url.clone();
        let mut sorted = p.to_vec();
        sorted.sort();
        for (k, v) in sorted {
            data.push_str(&k);
            data.push_str(&v);
        }
        let mut mac = Hmac::<sha1::Sha1>::new_from_slice(TWILIO_TOKEN.as_bytes()).unwrap();
        mac.update(data.as_bytes());
        B64.encode(mac.finalize().into_bytes())
    };
    let form = "application/x-www-form-urlencoded";
    let big = params(&"x".repeat(MAX_BODY));
    let body = serde_urlencoded::to_string(&big).unwrap();
    assert_clean(
        "twilio: oversized",
        post(
            &d,
            "/hooks/sms",
            &[("x-twilio-signature", twilio_sig(&big))],
            form,
            body.into_bytes(),
        )
        .await,
        413,
    );
    // %E9 is Latin-1 "é": not UTF-8 after percent-decoding. Signed over what a lossy
    // decoder would see, so only a charset check can refuse it.
    let lossy = params("caf\u{fffd}");
    let body = serde_urlencoded::to_string(params("cafX"))
        .unwrap()
        .replace("cafX", "caf%E9");
    assert_clean(
        "twilio: latin-1",
        post(
            &d,
            "/hooks/sms",
            &[("x-twilio-signature", twilio_sig(&lossy))],
            form,
            body.into_bytes(),
        )
        .await,
        400,
    );
    let truncated = serde_urlencoded::to_string(params("hello")).unwrap();
    let cut = truncated[..truncated.find("MessageSid").unwrap()].to_owned();
    let cut_params: Vec<(String, String)> = serde_urlencoded::from_str(&cut).unwrap();
    let got = post(
        &d,
        "/hooks/sms",
        &[("x-twilio-signature", twilio_sig(&cut_params))],
        form,
        cut.into_bytes(),
    )
    .await;
    assert!(matches!(got.0, 400 | 422), "twilio: truncated: {got:?}");

    // Nothing of it was stored.
    let (_, list) = api.get("/v1/conversations").await;
    assert_eq!(list["data"], serde_json::json!([]), "nothing stored");
    let events = read_events(&d, TOKEN, 0, 1000, Duration::from_millis(400)).await;
    assert!(
        events.iter().all(|e| e["type"] == "service.state"),
        "{events:?}"
    );
    assert!(d.terminate().success());
}
