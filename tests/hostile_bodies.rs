//! Oversized, truncated, wrong-charset and deeply nested bodies, correctly signed so they
//! reach every inbound parser, get clean 4xx errors (the contract's JSON error body) and
//! store nothing. The types come from the registration (`src/connectors.rs`): a type
//! added there without a [`Hostile`] case here does not compile.
#![cfg(feature = "api")]

mod common;
#[cfg(feature = "gbm")]
#[path = "fakes/gbm.rs"]
mod gbm_kit;

use std::path::Path;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use common::*;
use hmac::{Hmac, Mac};
use serde_json::Value;

const MAX_BODY: usize = 8192;
const TWILIO_TOKEN: &str = "0123456789abcdef0123456789abcdef";
const MAILGUN_KEY: &str = "hostile-mailgun-signing-key";

/// What one service type's hook needs to be reached with hostile bodies.
#[allow(
    dead_code,
    reason = "a build without twilio (or the JSON types) has no such case"
)]
enum Case {
    /// A JSON hook: its service config, path, a key its parser reads, a real body, and
    /// the headers that make a body authentic.
    Json {
        service: String,
        path: &'static str,
        key: &'static str,
        good: &'static [u8],
        sign: fn(&[u8]) -> Vec<(&'static str, String)>,
    },
    /// Twilio's form hook `/hooks/sms` (signed over the URL and fields).
    Form { service: String },
    /// Mailgun's route hook `/hooks/mail`, a form that carries its own signature.
    MailForm { service: String },
}

impl Case {
    fn service(&self) -> &str {
        match self {
            Case::Json { service, .. } | Case::Form { service } | Case::MailForm { service } => {
                service
            }
        }
    }
}

/// A type's hostile-body case; `None` for a type that takes no request bodies.
trait Hostile {
    fn case(dir: &Path) -> Option<Case>;
}

/// Every registered type's case, from the one list.
macro_rules! connectors {
    ($( #[$cfg:meta] $krate:ident :: $ty:ident ),* $(,)?) => {
        fn cases(dir: &Path) -> Vec<Case> {
            let mut all = Vec::new();
            $( #[$cfg] all.extend(<$krate::$ty as Hostile>::case(dir)); )*
            all
        }
    };
}
include!("../src/connectors.rs");

#[cfg(feature = "api")]
impl Hostile for switchboard_api::Api {
    /// `POST /v1/services/api/messages` of the api service every test config has.
    fn case(_: &Path) -> Option<Case> {
        Some(Case::Json {
            service: String::new(),
            path: "/v1/services/api/messages",
            key: "contact",
            good: br#"{"external_id":"m-1","contact":{"external_id":"c-1"},"text":"hello"}"#,
            sign: |_| vec![("authorization", format!("Bearer {TOKEN}"))],
        })
    }
}

#[cfg(feature = "webhook")]
impl Hostile for switchboard_webhook::Webhook {
    fn case(_: &Path) -> Option<Case> {
        None
    }
}

#[cfg(feature = "smartsupp")]
impl Hostile for switchboard_smartsupp::Smartsupp {
    fn case(_: &Path) -> Option<Case> {
        None
    }
}

#[cfg(feature = "dashly")]
impl Hostile for switchboard_dashly::Dashly {
    /// Polls; takes no hooks.
    fn case(_: &Path) -> Option<Case> {
        None
    }
}

#[cfg(feature = "smooch")]
impl Hostile for switchboard_smooch::Smooch {
    fn case(_: &Path) -> Option<Case> {
        Some(Case::Json {
            service: smooch_service("sun", "hostile-smooch-webhook-key"),
            path: "/hooks/sun",
            key: "events",
            good: include_bytes!("../connectors/smooch/fixtures/v2_conversation_message.json"),
            sign: |_| vec![("x-api-key", "hostile-smooch-webhook-key".to_owned())],
        })
    }
}

#[cfg(feature = "intercom")]
impl Hostile for switchboard_intercom::Intercom {
    fn case(_: &Path) -> Option<Case> {
        Some(Case::Json {
            service: intercom_service("ic", "hostile-intercom-client-secret"),
            path: "/hooks/ic",
            key: "data",
            good: include_bytes!(
                "../connectors/intercom/fixtures/docs_signed_notification_user_created.json"
            ),
            sign: |body| {
                let mut mac =
                    Hmac::<sha1::Sha1>::new_from_slice(b"hostile-intercom-client-secret").unwrap();
                mac.update(body);
                let hex: String = mac
                    .finalize()
                    .into_bytes()
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect();
                vec![("x-hub-signature", format!("sha1={hex}"))]
            },
        })
    }
}

#[cfg(feature = "gbm")]
impl Hostile for switchboard_gbm::Gbm {
    fn case(dir: &Path) -> Option<Case> {
        Some(Case::Json {
            service: gbm_service(
                dir,
                "g",
                "hostile-gbm-client-token-0123456789",
                &gbm_kit::key_file(&format!("{NOWHERE}/token")),
            ),
            path: "/hooks/g",
            key: "message",
            good: include_bytes!("../connectors/gbm/fixtures/text-message.json"),
            sign: |body| {
                let sig = gbm_kit::goog_signature("hostile-gbm-client-token-0123456789", body);
                vec![("x-goog-signature", sig)]
            },
        })
    }
}

#[cfg(feature = "nimchat")]
impl Hostile for switchboard_nimchat::Nimchat {
    /// A desk reply, signed with `X-Chatwoot-Signature` over `"{timestamp}.{body}"`.
    fn case(_: &Path) -> Option<Case> {
        Some(Case::Json {
            service: format!(
                "\n[services.nc]\ntype = \"nimchat\"\n[services.nc.params]\nbase_url = \"{NOWHERE}\"\n\
                 inbox_identifier = \"in-1\"\nwebhook_secret = \"hostile-nimchat-secret\"\n"
            ),
            path: "/hooks/nc",
            key: "event",
            good: br#"{"event":"message_created","id":1,"content":"hi","message_type":"outgoing","private":false,"sender":{"name":"Anna","type":"user"},"conversation":{"id":42}}"#,
            sign: |body| {
                let ts = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_secs()
                    .to_string();
                let mut mac =
                    Hmac::<sha2::Sha256>::new_from_slice(b"hostile-nimchat-secret").unwrap();
                mac.update(ts.as_bytes());
                mac.update(b".");
                mac.update(body);
                let hex: String = mac
                    .finalize()
                    .into_bytes()
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect();
                vec![
                    ("x-chatwoot-signature", format!("sha256={hex}")),
                    ("x-chatwoot-timestamp", ts),
                ]
            },
        })
    }
}

#[cfg(feature = "messenger")]
impl Hostile for switchboard_messenger::Messenger {
    fn case(_: &Path) -> Option<Case> {
        Some(Case::Json {
            service: messenger_service("fb", "hostile-messenger-app-secret"),
            path: "/hooks/fb",
            key: "entry",
            good: br#"{"object":"page","entry":[{"id":"682498302938465","time":1458692752478,"messaging":[{"sender":{"id":"1254459154682919"},"recipient":{"id":"682498302938465"},"timestamp":1458692752478,"message":{"mid":"mid.1457764197618:41d102a3e1ae206a38","text":"hello, world!"}}]}]}"#,
            sign: |body| {
                let mut mac =
                    Hmac::<sha2::Sha256>::new_from_slice(b"hostile-messenger-app-secret").unwrap();
                mac.update(body);
                let hex: String = mac
                    .finalize()
                    .into_bytes()
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect();
                vec![("x-hub-signature-256", format!("sha256={hex}"))]
            },
        })
    }
}

/// Mailgun signs inside the body: its route forwards are forms carrying the signature
/// triple, its event webhooks JSON with the triple in it (read as JSON before the
/// triple is known). Both are checked in `mailgun_bodies`.
#[cfg(feature = "mailgun")]
impl Hostile for switchboard_mailgun::Mailgun {
    fn case(_: &Path) -> Option<Case> {
        Some(Case::MailForm {
            service: mailgun_service("mail", MAILGUN_KEY),
        })
    }
}

#[cfg(feature = "haptik")]
impl Hostile for switchboard_haptik::Haptik {
    /// A bot answer on the path-token hook (Haptik signs nothing).
    fn case(_: &Path) -> Option<Case> {
        Some(Case::Json {
            service: format!(
                "\n[services.hp]\ntype = \"haptik\"\n[services.hp.params]\nbase_url = \"{NOWHERE}\"\n\
                 token = \"hostile-haptik-token\"\nclient_id = \"cl\"\nbusiness_id = 343\n\
                 hook_token = \"hostile-haptik-hook-token-0123\"\n"
            ),
            path: "/hooks/hp/hostile-haptik-hook-token-0123",
            key: "event_name",
            good: br#"{"event_name":"message","user":{"auth_id":"1"},"agent":{"name":"gogo","is_automated":true},"message":{"id":1,"body":{"text":"hi","type":"TEXT"}}}"#,
            sign: |_| Vec::new(),
        })
    }
}

#[cfg(feature = "askhandle")]
impl Hostile for switchboard_askhandle::AskHandle {
    /// An answer on the path-token hook (AskHandle signs nothing).
    fn case(_: &Path) -> Option<Case> {
        Some(Case::Json {
            service: format!(
                "\n[services.ah]\ntype = \"askhandle\"\n[services.ah.params]\napi_base = \"{NOWHERE}\"\n\
                 token = \"hostile-askhandle-token\"\nhook_token = \"hostile-askhandle-hook-token-01\"\n"
            ),
            path: "/hooks/ah/hostile-askhandle-hook-token-01",
            key: "webhook",
            good: br#"{"data":{"uuid":"m-1","body":"hi","is_support_sender":true,"room":{"uuid":"r-1"}},"webhook":{"event":"message.added","target":"t"}}"#,
            sign: |_| Vec::new(),
        })
    }
}

#[cfg(feature = "twilio")]
impl Hostile for switchboard_twilio::Twilio {
    fn case(_: &Path) -> Option<Case> {
        Some(Case::Form {
            service: twilio_service_nowhere("sms", TWILIO_TOKEN),
        })
    }
}

fn config(dir: &Path, cases: &[Case]) -> String {
    let services: String = cases.iter().map(Case::service).collect();
    base_config(dir).replace(
        "shutdown_timeout = \"5s\"",
        &format!("shutdown_timeout = \"5s\"\nmax_body = {MAX_BODY}"),
    ) + &api_service("")
        + &services
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
    let mut cases = Vec::new();
    let h = Harness::start(|dir| {
        cases = self::cases(dir);
        config(dir, &cases)
    });
    let d = &h.daemon;
    let api = &h.api;
    for c in &cases {
        let Case::Json {
            path,
            key,
            good,
            sign,
            ..
        } = c
        else {
            continue;
        };
        let (path, key, good) = (*path, *key, *good);
        let case = |name: &str| format!("{path}: {name}");
        // Truncated: half of a real payload.
        let truncated = good[..good.len() / 2].to_vec();
        assert_clean(
            &case("truncated"),
            post(d, path, &sign(&truncated), "application/json", truncated).await,
            400,
        );
        // Deeply nested where the parser reads, past serde_json's recursion limit:
        // unterminated (not JSON: 400) and terminated (400 for the depth, or 422).
        for closed in [false, true] {
            let body = nested(key, MAX_BODY / 4, closed);
            let got = post(d, path, &sign(&body), "application/json", body).await;
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
        let (status, _) = post(d, path, &sign(&body), "application/json", body).await;
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
                d,
                path,
                &sign(&latin1),
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
                d,
                path,
                &sign(&utf16),
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
            post(d, path, &sign(&big), "application/json", big).await,
            413,
        );
    }

    if cases.iter().any(|c| matches!(c, Case::Form { .. })) {
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
                d,
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
                d,
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
            d,
            "/hooks/sms",
            &[("x-twilio-signature", twilio_sig(&cut_params))],
            form,
            cut.into_bytes(),
        )
        .await;
        assert!(matches!(got.0, 400 | 422), "twilio: truncated: {got:?}");
    }

    if cases.iter().any(|c| matches!(c, Case::MailForm { .. })) {
        mailgun_bodies(d).await;
    }

    // Nothing of it was stored.
    let (_, list) = api.get("/v1/conversations").await;
    assert_eq!(list["data"], serde_json::json!([]), "nothing stored");
    let events = read_events(d, TOKEN, 0, 1000, Duration::from_millis(400)).await;
    assert!(
        events.iter().all(|e| e["type"] == "service.state"),
        "{events:?}"
    );
    h.finish();
}

/// Mailgun's forward, signed (the triple rides in the form): oversized, a field that is
/// not UTF-8 once decoded, a broken multipart, and the event hook's JSON readers.
async fn mailgun_bodies(d: &Daemon) {
    let ts = jiff::Timestamp::now().as_second().to_string();
    let signed = |token: &str| {
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(MAILGUN_KEY.as_bytes()).unwrap();
        mac.update(format!("{ts}{token}").as_bytes());
        let hex: String = mac
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        format!("timestamp={ts}&token={token}&signature={hex}")
    };
    let form = "application/x-www-form-urlencoded";
    let mail = "from=Mary+%3Cmary%40example.com%3E&Message-Id=%3Cm1%40example.com%3E";
    let big = format!("{}&body-plain={}", signed("t1"), "x".repeat(MAX_BODY));
    assert_clean(
        "mailgun: oversized (unsigned until read, so refused as such)",
        post(d, "/hooks/mail", &[], form, big.into_bytes()).await,
        401,
    );
    let latin1 = format!("{}&{mail}&stripped-text=caf%E9", signed("t2"));
    assert_clean(
        "mailgun: latin-1",
        post(d, "/hooks/mail", &[], form, latin1.into_bytes()).await,
        400,
    );
    let raw = format!("{}&{mail}&stripped-text=caf", signed("t3")).into_bytes();
    let mut raw_latin1 = raw.clone();
    raw_latin1.push(0xe9);
    assert_clean(
        "mailgun: raw latin-1",
        post(d, "/hooks/mail", &[], form, raw_latin1).await,
        400,
    );
    let multipart = "multipart/form-data; boundary=zz";
    assert_clean(
        "mailgun: broken multipart",
        post(
            d,
            "/hooks/mail",
            &[],
            multipart,
            b"--zz\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nno end".to_vec(),
        )
        .await,
        400,
    );
    for (what, body) in [
        ("truncated", br#"{"signature":{"timestamp":"1","#.to_vec()),
        ("nested", nested("event-data", MAX_BODY / 4, true)),
        ("latin-1", b"{\"signature\":\"caf\xe9\"}".to_vec()),
    ] {
        let got = post(d, "/hooks/mail/events", &[], "application/json", body).await;
        assert_clean(&format!("mailgun events: {what}"), got, 400);
    }
}
