//! Twilio's side of its webhooks: the test account, inbound and status-callback
//! payloads as Twilio posts them, and `X-Twilio-Signature` computed here with our own
//! HMAC-SHA1, independently of the code under test.

use std::net::SocketAddr;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, Mac};
use sha1::Sha1;

use super::api::FakeTwilio;
use crate::common::Daemon;

/// The test account.
pub const ACCOUNT_SID: &str = "AC0123456789abcdef0123456789abcdef";
/// Its auth token.
pub const AUTH_TOKEN: &str = "f0e1d2c3b4a5968778695a4b3c2d1e0f";
/// A Messaging Service of the account.
pub const MESSAGING_SERVICE: &str = "MG00112233445566778899aabbccddeeff";
/// The public URL the test daemons claim; nothing listens there, signatures bind to it.
pub const PUBLIC: &str = "https://sb.example.com";
/// The account's SMS number.
pub const SMS_NUMBER: &str = "+14155550100";
/// The contact who texts it.
pub const SMS_CONTACT: &str = "+31612345678";
/// The account's WhatsApp sender.
pub const WA_NUMBER: &str = "whatsapp:+14155238886";
/// The contact who writes to it on WhatsApp.
pub const WA_CONTACT: &str = "whatsapp:+31687654321";
/// `from` of the twilio services in these tests.
pub const FROM_PARAM: &str = "from = \"+14155550100\"";

/// A `twilio` service `id` pointed at `fake`, with `sender` (`from = …` or
/// `messaging_service_sid = …`).
pub fn twilio_service(id: &str, fake: &FakeTwilio, sender: &str) -> String {
    format!(
        r#"
[services.{id}]
type = "twilio"
[services.{id}.params]
account_sid = "{ACCOUNT_SID}"
auth_token = "{AUTH_TOKEN}"
{sender}
api_base = "{}"
timeout = "5s"
"#,
        fake.url()
    )
}

/// `[(k, v)]` as owned pairs.
pub fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
    p.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Pairs in a canonical order, to compare forms whose order does not matter.
pub fn sorted(p: &[(String, String)]) -> Vec<(String, String)> {
    let mut p = p.to_vec();
    p.sort();
    p
}

/// `X-Twilio-Signature` per Twilio's security docs: base64(HMAC-SHA1(auth token, URL +
/// each POST parameter's name and value, sorted by name)).
pub fn twilio_signature(token: &str, url: &str, params: &[(String, String)]) -> String {
    let mut data = url.to_owned();
    for (k, v) in sorted(params) {
        data.push_str(&k);
        data.push_str(&v);
    }
    let mut mac = Hmac::<Sha1>::new_from_slice(token.as_bytes()).unwrap();
    mac.update(data.as_bytes());
    B64.encode(mac.finalize().into_bytes())
}

/// An inbound SMS as Twilio posts it.
pub fn sms_params(sid: &str, from: &str, to: &str, body: &str) -> Vec<(String, String)> {
    pairs(&[
        ("ToCountry", "US"),
        ("ToState", "CA"),
        ("SmsMessageSid", sid),
        ("NumMedia", "0"),
        ("ToCity", "SAN FRANCISCO"),
        ("FromZip", ""),
        ("SmsSid", sid),
        ("FromState", ""),
        ("SmsStatus", "received"),
        ("FromCity", ""),
        ("Body", body),
        ("FromCountry", "NL"),
        ("To", to),
        ("ToZip", "94105"),
        ("NumSegments", "1"),
        ("MessageSid", sid),
        ("AccountSid", ACCOUNT_SID),
        ("From", from),
        ("ApiVersion", "2010-04-01"),
    ])
}

/// An inbound WhatsApp message from [`WA_CONTACT`] ("Mary") to [`WA_NUMBER`].
pub fn whatsapp_params(sid: &str, body: &str, media: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut p = pairs(&[
        ("SmsMessageSid", sid),
        ("NumMedia", "0"),
        ("ProfileName", "Mary"),
        (
            "MessageType",
            if media.is_empty() { "text" } else { "image" },
        ),
        ("SmsSid", sid),
        ("WaId", "31687654321"),
        ("SmsStatus", "received"),
        ("Body", body),
        ("To", WA_NUMBER),
        ("NumSegments", "1"),
        ("ReferralNumMedia", "0"),
        ("MessageSid", sid),
        ("AccountSid", ACCOUNT_SID),
        ("From", WA_CONTACT),
        ("ApiVersion", "2010-04-01"),
    ]);
    with_media(&mut p, media);
    p
}

/// Sets `NumMedia` and adds `MediaUrl{N}` / `MediaContentType{N}`.
pub fn with_media(p: &mut Vec<(String, String)>, media: &[(&str, &str)]) {
    p.iter_mut().find(|(k, _)| k == "NumMedia").unwrap().1 = media.len().to_string();
    for (i, (url, kind)) in media.iter().enumerate() {
        p.push((format!("MediaContentType{i}"), kind.to_string()));
        p.push((format!("MediaUrl{i}"), url.to_string()));
    }
}

/// A status callback for an outbound message.
pub fn status_params(sid: &str, status: &str, error_code: Option<&str>) -> Vec<(String, String)> {
    let mut p = pairs(&[
        ("SmsSid", sid),
        ("SmsStatus", status),
        ("MessageStatus", status),
        ("To", WA_CONTACT),
        ("MessageSid", sid),
        ("AccountSid", ACCOUNT_SID),
        ("From", WA_NUMBER),
        ("ApiVersion", "2010-04-01"),
    ]);
    if let Some(code) = error_code {
        p.push(("ErrorCode".into(), code.into()));
    }
    p
}

/// The path and query of one of the daemon's public URLs.
pub fn path_of(public: &str) -> String {
    let rest = public.split_once("://").unwrap().1;
    rest[rest.find('/').unwrap()..].to_owned()
}

/// What the daemon answered.
#[derive(Debug)]
pub struct HookAnswer {
    pub status: u16,
    pub content_type: String,
    pub body: String,
}

/// Posts `params` form-encoded to the daemon at `path`, with `signature` if given.
pub async fn post_hook(
    d: &Daemon,
    path: &str,
    params: &[(String, String)],
    signature: Option<&str>,
) -> HookAnswer {
    post_form(d.addr, path, params, signature).await
}

/// Posts `params` the way Twilio posts to `public_url`: to the daemon's real address,
/// signed over the public URL.
pub async fn post_signed(d: &Daemon, public_url: &str, params: &[(String, String)]) -> HookAnswer {
    let sig = twilio_signature(AUTH_TOKEN, public_url, params);
    post_hook(d, &path_of(public_url), params, Some(&sig)).await
}

pub(super) async fn post_form(
    addr: SocketAddr,
    path: &str,
    params: &[(String, String)],
    signature: Option<&str>,
) -> HookAnswer {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut req = reqwest::Client::new()
        .post(format!("http://{addr}{path}"))
        .timeout(Duration::from_secs(10))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("user-agent", "TwilioProxy/1.1")
        .body(serde_urlencoded::to_string(params).unwrap());
    if let Some(s) = signature {
        req = req.header("x-twilio-signature", s);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let content_type = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    HookAnswer {
        status,
        content_type,
        body: resp.text().await.unwrap(),
    }
}
