//! The forward fixture, the signature triple, threading keys, event receipts, the
//! reply's form, and the compliance suite (replays refused: Mailgun's token is
//! one-time).

use hmac::{Hmac, Mac};
use http::Method;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use switchboard_core::testkit::RecordingHost;
use switchboard_core::testkit::compliance::{self, Fixture, Sample};
use switchboard_core::testkit::fake::{Answer, Request};
use switchboard_core::{HookError, MessageStatus, OutboundMessage, Receipt, ServiceType};

use crate::form::Form;
use crate::thread::Thread;
use crate::webhook::{address, check_signature, event, mail, message_ids};

const SIGNING_KEY: &str = "key-mailgun-signing-0123456789";
const API_KEY: &str = "key-mailgun-api-abcdef";
const DOMAIN: &str = "mg.example.com";
/// Mailgun's documented route forward, as a field map.
const FORWARD: &str = include_str!("../fixtures/docs_route_forward_sample.json");

fn fields(v: &Value) -> Vec<(String, String)> {
    v.as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
        .collect()
}

/// The fixture without its (unverifiable: 65 hex digits) signature triple.
fn forward() -> Value {
    let mut v: Value = serde_json::from_str(FORWARD).unwrap();
    for k in ["timestamp", "token", "signature"] {
        v.as_object_mut().unwrap().remove(k);
    }
    v
}

fn form_of(v: &Value) -> Form {
    let body = serde_urlencoded::to_string(fields(v)).unwrap();
    Form::parse(Some("application/x-www-form-urlencoded"), body.as_bytes()).unwrap()
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

#[test]
fn the_documented_forward() {
    let m = mail(&form_of(&forward())).unwrap();
    assert_eq!(
        m.message_id,
        "CABPem2N_Ucj3wRRZnLVpVF_fRjkTBXHZReZC3zY-hHsRa=T51g@samples.mailgun.com"
    );
    assert_eq!(m.address, "user@samples.mailgun.com");
    assert_eq!(m.name.as_deref(), Some("Excited User"));
    assert_eq!(m.subject.as_deref(), Some("Message Routes"));
    assert_eq!(
        m.text,
        "Testing Mailgun's forwarded and stored message routes :)"
    );
    assert_eq!(m.full_text, None, "body-plain says nothing more");
    assert_eq!((m.in_reply_to.as_deref(), m.references.len()), (None, 0));
    assert_eq!(
        m.root(),
        m.message_id,
        "a new thread is keyed by the mail itself"
    );
}

#[test]
fn a_reply_mail_threads_and_keeps_the_whole_body() {
    let mut v = forward();
    v["In-Reply-To"] = json!("<ours.2@mg.example.com>");
    v["References"] = json!("<root.1@samples.mailgun.com>\r\n <ours.2@mg.example.com>");
    v["stripped-text"] = json!("Yes, thanks!");
    v["body-plain"] = json!("Yes, thanks!\n\nOn Mon, Anna wrote:\n> Does this help?");
    v["attachments"] = json!(json!([{"url": "https://storage.eu.mailgun.net/v3/domains/x/messages/y/attachments/0", "content-type": "image/png", "name": "screenshot.png", "size": 10}]).to_string());
    let m = mail(&form_of(&v)).unwrap();
    assert_eq!(m.in_reply_to.as_deref(), Some("ours.2@mg.example.com"));
    assert_eq!(
        m.references,
        ["root.1@samples.mailgun.com", "ours.2@mg.example.com"]
    );
    assert_eq!(m.root(), "root.1@samples.mailgun.com");
    assert_eq!(
        m.referenced(),
        ["ours.2@mg.example.com", "root.1@samples.mailgun.com"]
    );
    assert_eq!(m.text, "Yes, thanks!");
    assert_eq!(
        m.full_text.as_deref(),
        Some("Yes, thanks!\n\nOn Mon, Anna wrote:\n> Does this help?")
    );
    assert_eq!(m.attachments[0].name.as_deref(), Some("screenshot.png"));

    // Only In-Reply-To: that is the root as far as the mail tells.
    let mut v = forward();
    v["In-Reply-To"] = json!("<parent@x>");
    assert_eq!(mail(&form_of(&v)).unwrap().root(), "parent@x");
    // No sender at all: 422.
    let mut v = forward();
    v["from"] = json!("nobody");
    v.as_object_mut().unwrap().remove("sender");
    assert!(matches!(
        mail(&form_of(&v)),
        Err(HookError::Unprocessable(_))
    ));
}

#[test]
fn addresses_and_ids() {
    assert_eq!(
        address("\"Doe, Jane\" <Jane.Doe@Example.com>"),
        Some((Some("Doe, Jane".into()), "jane.doe@example.com".into()))
    );
    assert_eq!(address("a@b.c"), Some((None, "a@b.c".into())));
    assert_eq!(address("no address"), None);
    assert_eq!(address("<@b>"), None);
    assert_eq!(message_ids("<a@b> <c@d>\r\n\t<a@b>"), ["a@b", "c@d"]);
    assert_eq!(message_ids("bare@id"), ["bare@id"]);
    assert!(message_ids("  ").is_empty());
}

#[test]
fn the_signature_triple() {
    let now = jiff::Timestamp::from_second(1_700_000_000).unwrap();
    let ts = "1700000100";
    let token = "a71d0000ed34da6768198da96f9daaf8fb98adbccfdbd2fdaf";
    let sig = hex_hmac(SIGNING_KEY, &format!("{ts}{token}"));
    let key = SIGNING_KEY.as_bytes();
    let n = check_signature(key, Some(ts), Some(token), Some(&sig), now).unwrap();
    assert_eq!(n.value, token);
    assert_eq!(n.expires_at.as_second(), 1_700_000_100 + 360);
    let refused = |ts: &str, token: &str, sig: &str| {
        matches!(
            check_signature(key, Some(ts), Some(token), Some(sig), now),
            Err(HookError::Unauthorized(_))
        )
    };
    assert!(refused(
        ts,
        token,
        &hex_hmac("other-key", &format!("{ts}{token}"))
    ));
    assert!(refused(ts, "another-token", &sig), "the token is signed");
    assert!(
        refused("1700000101", token, &sig),
        "the timestamp is signed"
    );
    assert!(refused(ts, token, &sig[..63]));
    for stale in ["1699999699", "1700000301"] {
        let s = hex_hmac(SIGNING_KEY, &format!("{stale}{token}"));
        assert!(
            refused(stale, token, &s),
            "{stale} is more than 5 minutes off"
        );
    }
    let edge = "1699999700";
    let s = hex_hmac(SIGNING_KEY, &format!("{edge}{token}"));
    assert!(!refused(edge, token, &s), "exactly 5 minutes is still in");
    assert!(matches!(
        check_signature(key, Some(ts), None, Some(&sig), now),
        Err(HookError::Unauthorized(_))
    ));
}

fn event_body(kind: &str, extra: Value) -> Value {
    let mut data = json!({"event": kind, "timestamp": 1700000000.5, "id": "evt-1",
        "message": {"headers": {"message-id": "sb.0123@mg.example.com", "to": "mary@example.com"}}});
    for (k, v) in extra.as_object().unwrap() {
        data[k] = v.clone();
    }
    json!({"signature": {"timestamp": "1", "token": "t", "signature": "s"}, "event-data": data})
}

#[test]
fn event_receipts() {
    let r = |kind: &str, extra: Value| event(&event_body(kind, extra)).unwrap();
    let receipt = |status, error: Option<&str>| {
        Some(Receipt {
            external_id: "sb.0123@mg.example.com".into(),
            status,
            error: error.map(str::to_owned),
        })
    };
    assert_eq!(
        r("delivered", json!({})),
        receipt(MessageStatus::Delivered, None)
    );
    assert_eq!(r("opened", json!({})), receipt(MessageStatus::Read, None));
    let failed = json!({"severity": "permanent", "reason": "bounce",
        "delivery-status": {"code": 550, "message": "5.1.1 The email account that you tried to reach does not exist.", "description": ""}});
    assert_eq!(
        r("failed", failed),
        receipt(
            MessageStatus::Failed,
            Some(
                "Mailgun could not deliver the mail (SMTP 550): 5.1.1 The email account that you tried to reach does not exist. [reason: bounce]"
            )
        )
    );
    assert_eq!(
        r("failed", json!({"severity": "temporary"})),
        None,
        "Mailgun tries again"
    );
    assert_eq!(r("clicked", json!({})), None);
    assert!(matches!(
        event(&json!({"signature": {}})),
        Err(HookError::Unprocessable(_))
    ));
    let mut no_id = event_body("delivered", json!({}));
    no_id["event-data"]["message"] = json!({});
    assert!(matches!(event(&no_id), Err(HookError::Unprocessable(_))));
}

fn params() -> crate::MailgunParams {
    serde_json::from_value(Suite::params(compliance::NOWHERE)).unwrap()
}

#[test]
fn the_reply_form() {
    let out = compliance::outbound(
        Some("root.1@samples.mailgun.com"),
        "mary@example.com",
        "Happy to help",
        &["https://files.example.com/terms.pdf"],
    );
    let thread = Thread {
        subject: Some("Message Routes".into()),
        references: vec![
            "root.1@samples.mailgun.com".into(),
            "their.3@samples.mailgun.com".into(),
        ],
    };
    let id = crate::client::message_id(&out.idempotency_key, DOMAIN);
    let form = crate::client::form(&params(), &out, Some(&thread)).unwrap();
    assert_eq!(
        form,
        [
            ("from", "Support <support@mg.example.com>".to_owned()),
            ("to", "mary@example.com".to_owned()),
            ("subject", "Re: Message Routes".to_owned()),
            (
                "text",
                "Happy to help\n\nhttps://files.example.com/terms.pdf\n".to_owned()
            ),
            ("h:Message-Id", format!("<{id}>")),
            ("h:In-Reply-To", "<their.3@samples.mailgun.com>".to_owned()),
            (
                "h:References",
                "<root.1@samples.mailgun.com> <their.3@samples.mailgun.com>".to_owned()
            ),
        ]
    );
    assert_eq!(
        id,
        crate::client::message_id("svc-7", DOMAIN),
        "the same key, the same mail"
    );
    assert_ne!(id, crate::client::message_id("svc-8", DOMAIN));
    // No thread recorded: the conversation's root.
    let form = crate::client::form(&params(), &out, None).unwrap();
    assert!(form.contains(&("h:In-Reply-To", "<root.1@samples.mailgun.com>".to_owned())));
    assert!(form.contains(&("subject", "Re: your message".to_owned())));
}

#[test]
fn an_event_replay_is_refused_and_moves_nothing() {
    compliance::block_on(async {
        let c = crate::Mailgun::build(&params()).unwrap();
        let (ctx, host) = RecordingHost::context("svc", "mailgun", None);
        let mut body = event_body("delivered", json!({}));
        let ts = jiff::Timestamp::now().as_second().to_string();
        let sig = hex_hmac(SIGNING_KEY, &format!("{ts}tok-1"));
        body["signature"] = json!({"timestamp": ts, "token": "tok-1", "signature": sig});
        let mut s = Sample::new("application/json", body.to_string());
        s.subpath = "events".into();
        c.handle_webhook(&ctx, s.request(Method::POST))
            .await
            .unwrap();
        let again = c.handle_webhook(&ctx, s.request(Method::POST)).await;
        assert_eq!(again.unwrap_err().status().as_u16(), 401);
        let rec = host.recorded();
        assert_eq!(
            rec.statuses,
            [(
                "sb.0123@mg.example.com".to_owned(),
                MessageStatus::Delivered,
                None
            )]
        );
    });
}

/// The compliance fixture.
struct Suite;

impl Fixture for Suite {
    type Type = crate::Mailgun;

    /// Mailgun answers a wrong key with 401; 403 concerns the recipient or the domain.
    const REFUSALS: &'static [u16] = &[401];
    const REPLAY_REFUSED: bool = true;

    fn params(api_base: &str) -> Value {
        json!({"domain": DOMAIN, "api_key": API_KEY, "signing_key": SIGNING_KEY,
               "from": "Support <support@mg.example.com>", "api_base": api_base})
    }

    fn invalid() -> Vec<(Value, Vec<&'static str>)> {
        vec![(
            json!({"domain": "mg/x", "api_key": "", "signing_key": " ", "from": "support", "api_base": "ftp://x"}),
            vec!["domain", "api_key", "signing_key", "from", "api_base"],
        )]
    }

    fn message(n: u32) -> Option<Sample> {
        let mut v = forward();
        v["Message-Id"] = json!(format!("<msg-{n}@samples.mailgun.com>"));
        let body = serde_urlencoded::to_string(fields(&v)).unwrap();
        Some(Sample::new("application/x-www-form-urlencoded", body))
    }

    /// Mailgun adds `timestamp`, a fresh `token` and their HMAC to the form.
    fn sign(sample: &mut Sample, _: &str) {
        let ts = jiff::Timestamp::now().as_second().to_string();
        let digest = Sha256::digest(&sample.body);
        let token: String = digest[..25].iter().map(|b| format!("{b:02x}")).collect();
        let sig = hex_hmac(SIGNING_KEY, &format!("{ts}{token}"));
        let sep = if sample.body.is_empty() { "" } else { "&" };
        sample
            .body
            .extend(format!("{sep}timestamp={ts}&token={token}&signature={sig}").bytes());
    }

    fn garbage() -> Vec<(Sample, u16)> {
        let form = |pairs: &[(&str, &str)]| {
            Sample::new(
                "application/x-www-form-urlencoded",
                serde_urlencoded::to_string(pairs).unwrap(),
            )
        };
        vec![
            (form(&[("subject", "no sender")]), 422),
            (form(&[("from", "a@b.c"), ("attachments", "not json")]), 422),
            (
                Sample::new("application/x-www-form-urlencoded", "a=%zz"),
                400,
            ),
        ]
    }

    fn outbound() -> Option<OutboundMessage> {
        Some(compliance::outbound(
            Some("root@x"),
            "mary@example.com",
            "Here you go",
            &[],
        ))
    }

    fn route(req: &Request) -> (bool, Answer) {
        if req.method == Method::POST && req.path == format!("/v3/{DOMAIN}/messages") {
            use base64::Engine;
            let basic = format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("api:{API_KEY}"))
            );
            if req.header("authorization") != basic {
                return (true, Suite::error(401, "Forbidden"));
            }
            let id = format!("<{}>", crate::client::message_id("svc-7", DOMAIN));
            return (
                true,
                Answer::json(200, json!({"id": id, "message": "Queued. Thank you."})),
            );
        }
        (false, Answer::empty(404))
    }

    fn error(status: u16, text: &str) -> Answer {
        Answer::json(status, json!({ "message": text }))
    }
}

switchboard_core::compliance_suite!(Suite);
