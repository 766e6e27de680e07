//! Webhook parsing against the documented examples, the Send API's bodies and error
//! classes, the verification GET against a recording host, and the compliance suite.

use hmac::{Hmac, Mac};
use http::{HeaderMap, Method, StatusCode};
use serde_json::{Value, json};
use sha2::Sha256;
use switchboard_core::testkit::RecordingHost;
use switchboard_core::testkit::compliance::{self, Fixture, Sample};
use switchboard_core::testkit::fake::{Answer, Request};
use switchboard_core::{
    DeliveryError, HookError, MessageStatus, OutboundMessage, Receipt, ServiceType,
};

use crate::client::{Failure, RATE_LIMIT_WAIT, classify, message_bodies};
use crate::webhook::{parse, verification};

const PAGE: &str = "682498302938465";
const PSID: &str = "1254459154682919";
const APP_SECRET: &str = "messenger-app-secret-0123";
const VERIFY: &str = "verify-token-abc";
const TOKEN: &str = "EAAGpagetoken0123456789";

/// The documented "Text Message" event, one `messaging[]` element (placeholders filled).
const EVENT_TEXT: &str = include_str!("../fixtures/docs_messages_event_text.json");
/// The documented "Message with attachment" entry (placeholders filled).
const ENTRY_ATTACHMENT: &str = include_str!("../fixtures/docs_messages_entry_attachment.json");

fn filled(text: &str) -> Value {
    let text = text
        .replace("<PSID>", PSID)
        .replace("<PAGE_ID>", PAGE)
        .replace("<image|video|audio|file|reel|ig_reel>", "image")
        .replace(
            "<ATTACHMENT_URL>",
            "https://scontent.xx.fbcdn.net/v/photo.jpg",
        );
    serde_json::from_str(&text).unwrap()
}

/// A `page` body with one entry of this page holding `events`.
fn body(events: Vec<Value>) -> Value {
    json!({"object": "page", "entry": [{"id": PAGE, "time": 1458692752478u64, "messaging": events}]})
}

fn text_event(mid: &str, text: &str) -> Value {
    let mut e = filled(EVENT_TEXT);
    e["message"]["mid"] = json!(mid);
    e["message"]["text"] = json!(text);
    e
}

fn parsed(v: &Value) -> crate::webhook::Parsed {
    parse(v.to_string().as_bytes(), PAGE).unwrap()
}

#[test]
fn the_documented_text_and_attachment_messages() {
    let p = parsed(&body(vec![filled(EVENT_TEXT)]));
    let m = &p.messages[0];
    assert_eq!(m.external_id, "mid.1457764197618:41d102a3e1ae206a38");
    assert_eq!(m.contact.external_id, PSID);
    assert_eq!(
        m.conversation_external_id.as_deref(),
        Some(format!("{PAGE}:{PSID}").as_str())
    );
    assert_eq!(m.text.as_deref(), Some("hello, world!"));

    let entry = filled(ENTRY_ATTACHMENT);
    let p = parsed(&json!({"object": "page", "entry": [entry]}));
    let m = &p.messages[0];
    assert_eq!(m.external_id, "mid.$cAAJdkrCd2ORnva8ErFhjGm0X_Q_c");
    assert_eq!(m.text, None);
    assert_eq!(m.attachments.len(), 1);
    assert_eq!(
        m.attachments[0].url,
        "https://scontent.xx.fbcdn.net/v/photo.jpg"
    );
}

#[test]
fn a_batch_keeps_order_skips_echoes_and_other_pages_and_reads_receipts() {
    let mut echo = text_event("m-echo", "our own reply");
    echo["message"]["is_echo"] = json!(true);
    let location = json!({"sender": {"id": PSID}, "recipient": {"id": PAGE}, "timestamp": 5,
        "message": {"mid": "m-loc", "attachments": [{"type": "location", "payload": {"coordinates": {"lat": 1, "long": 2}}}]}});
    let postback = json!({"sender": {"id": PSID}, "recipient": {"id": PAGE}, "timestamp": 1700000000123u64,
        "postback": {"title": "Talk to a person", "payload": "HUMAN"}});
    let delivery = json!({"sender": {"id": PSID}, "recipient": {"id": PAGE},
        "delivery": {"mids": ["m_out_1"], "watermark": 1700000001000u64}});
    let read = json!({"sender": {"id": PSID}, "recipient": {"id": PAGE}, "read": {"watermark": 1700000002000u64}});
    let reaction = json!({"sender": {"id": PSID}, "recipient": {"id": PAGE}, "reaction": {"mid": "x", "action": "react"}});
    let mut b = body(vec![
        text_event("m-1", "first"),
        echo,
        location,
        postback,
        delivery,
        read,
        reaction,
    ]);
    b["entry"]
        .as_array_mut()
        .unwrap()
        .push(json!({"id": "999", "time": 1, "messaging": [text_event("m-other", "not ours")]}));
    b["entry"]
        .as_array_mut()
        .unwrap()
        .push(json!({"id": PAGE, "time": 2, "messaging": [text_event("m-2", "second entry")]}));
    let p = parsed(&b);
    let ids: Vec<&str> = p.messages.iter().map(|m| m.external_id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "m-1",
            "m-loc",
            &format!("postback:{PSID}:1700000000123"),
            "m-2"
        ]
    );
    assert_eq!(p.messages[1].text.as_deref(), Some("[location]"));
    assert_eq!(p.messages[2].text.as_deref(), Some("Talk to a person"));
    assert_eq!(
        p.receipts,
        [Receipt {
            external_id: "m_out_1".into(),
            status: MessageStatus::Delivered,
            error: None
        }]
    );
    let marks: Vec<(MessageStatus, i64)> = p
        .watermarks
        .iter()
        .map(|w| (w.status, w.before.as_millisecond()))
        .collect();
    assert_eq!(
        marks,
        [
            (MessageStatus::Delivered, 1700000001000),
            (MessageStatus::Read, 1700000002000)
        ]
    );
    assert!(
        p.watermarks
            .iter()
            .all(|w| w.conversation_external_id == format!("{PAGE}:{PSID}"))
    );
    assert_eq!(
        (p.skipped, p.other_pages),
        (2, 1),
        "the echo and the reaction"
    );

    // Another product on the same app: signed, so acknowledged, but nothing stored.
    let ig = json!({"object": "instagram", "entry": [{"id": PAGE, "messaging": [text_event("i", "x")]}]});
    assert!(parsed(&ig).messages.is_empty());
}

#[test]
fn malformed_bodies_name_where() {
    let no_mid = body(vec![
        json!({"sender": {"id": PSID}, "message": {"text": "x"}}),
    ]);
    match parse(no_mid.to_string().as_bytes(), PAGE) {
        Err(HookError::Unprocessable(m)) => {
            assert!(m.contains("entry[0].messaging[0].message"), "{m}")
        }
        other => panic!("{other:?}"),
    }
    let blank = body(vec![
        json!({"sender": {"id": " "}, "message": {"mid": "m", "text": "x"}}),
    ]);
    assert!(matches!(
        parse(blank.to_string().as_bytes(), PAGE),
        Err(HookError::Unprocessable(m)) if m == "entry[0].messaging[0].sender.id: must not be empty"
    ));
    assert!(matches!(
        parse(b"{\"object\": ", PAGE),
        Err(HookError::BadRequest(_))
    ));
}

#[test]
fn the_verification_query() {
    let v = verification(Some(
        "hub.mode=subscribe&hub.verify_token=a%20b&hub.challenge=1158201444",
    ))
    .unwrap();
    assert_eq!(
        (
            v.mode.as_str(),
            v.verify_token.as_str(),
            v.challenge.as_str()
        ),
        ("subscribe", "a b", "1158201444")
    );
    assert_eq!(verification(Some("x=1")), None);
    assert_eq!(verification(None), None);
}

fn get(query: &str) -> switchboard_core::HookRequest {
    let mut s = Sample::new("text/plain", "");
    s.query = Some(query.to_owned());
    s.request(Method::GET)
}

#[test]
fn the_verification_get_answers_the_challenge_only_for_the_token() {
    compliance::block_on(async {
        let c = crate::Messenger::build(
            &serde_json::from_value(Suite::params(compliance::NOWHERE)).unwrap(),
        )
        .unwrap();
        let (ctx, host) = RecordingHost::context("svc", "messenger", None);
        let ok = c
            .handle_webhook(
                &ctx,
                get(&format!(
                    "hub.mode=subscribe&hub.verify_token={VERIFY}&hub.challenge=4711"
                )),
            )
            .await
            .unwrap();
        assert_eq!(
            (ok.status, ok.body.as_ref()),
            (StatusCode::OK, b"4711".as_ref())
        );
        for q in [
            "hub.mode=subscribe&hub.verify_token=wrong&hub.challenge=4711".to_owned(),
            format!("hub.mode=subscribe&hub.verify_token={VERIFY}x&hub.challenge=4711"),
            format!("hub.mode=unsubscribe&hub.verify_token={VERIFY}&hub.challenge=4711"),
            "hub.mode=subscribe&hub.challenge=4711".to_owned(),
        ] {
            let r = c.handle_webhook(&ctx, get(&q)).await.unwrap();
            assert_eq!(r.status, StatusCode::FORBIDDEN, "{q}");
            assert!(!String::from_utf8_lossy(&r.body).contains("4711"), "{q}");
        }
        assert_eq!(
            c.handle_webhook(&ctx, get("a=b")).await.unwrap_err(),
            HookError::MethodNotAllowed
        );
        // The head of a GET earns no body at all.
        let head = get("hub.mode=subscribe").head;
        assert_eq!(
            c.authorize_hook(&ctx, &head).unwrap(),
            switchboard_core::HookAdmission::BodyAuthenticated { max_body: 0 }
        );
        assert!(host.recorded().wrote_nothing());
    });
}

fn outbound_text(text: &str, files: &[&str]) -> OutboundMessage {
    compliance::outbound(Some("p:u"), PSID, text, files)
}

#[test]
fn send_bodies_have_the_documented_shape() {
    let out = outbound_text(
        "Hi Mary",
        &["https://f.example/a.png", "https://f.example/b.pdf"],
    );
    assert_eq!(
        message_bodies(PSID, &out.message),
        [
            json!({"recipient": {"id": PSID}, "messaging_type": "RESPONSE", "message": {"text": "Hi Mary"}}),
            json!({"recipient": {"id": PSID}, "messaging_type": "RESPONSE", "message": {"attachment": {"type": "image", "payload": {"url": "https://f.example/a.png", "is_reusable": false}}}}),
            json!({"recipient": {"id": PSID}, "messaging_type": "RESPONSE", "message": {"attachment": {"type": "file", "payload": {"url": "https://f.example/b.pdf", "is_reusable": false}}}}),
        ]
    );
    let long = "é".repeat(4500);
    let bodies = message_bodies(PSID, &outbound_text(&long, &[]).message);
    let lens: Vec<usize> = bodies
        .iter()
        .map(|b| b["message"]["text"].as_str().unwrap().chars().count())
        .collect();
    assert_eq!(lens, [2000, 2000, 500]);
}

fn graph(status: u16, code: i64, subcode: Option<i64>, message: &str) -> (StatusCode, Vec<u8>) {
    let mut e =
        json!({"message": message, "type": "OAuthException", "code": code, "fbtrace_id": "AbCdEf"});
    if let Some(s) = subcode {
        e["error_subcode"] = json!(s);
    }
    (
        StatusCode::from_u16(status).unwrap(),
        json!({"error": e}).to_string().into_bytes(),
    )
}

#[test]
fn graph_errors_are_classified_by_code() {
    let none = HeaderMap::new();
    let (s, b) = graph(
        400,
        10,
        Some(2018278),
        "(#10) This message is sent outside of allowed window.",
    );
    match classify(s, &none, &b) {
        Failure::Other(DeliveryError::Permanent { reason }) => {
            assert!(
                reason.starts_with("outside Messenger's 24-hour window"),
                "{reason}"
            );
            assert!(
                reason.contains("(#10) This message is sent outside of allowed window."),
                "{reason}"
            );
            assert!(
                reason.contains("code 10, subcode 2018278, fbtrace_id AbCdEf"),
                "{reason}"
            );
        }
        other => panic!("{other:?}"),
    }
    for code in [4, 32, 613] {
        let (s, b) = graph(400, code, None, "(#4) Application request limit reached");
        match classify(s, &none, &b) {
            Failure::Other(DeliveryError::Throttled {
                reason,
                retry_after,
            }) => {
                assert!(reason.contains("Application request limit reached"));
                assert_eq!(retry_after, Some(RATE_LIMIT_WAIT));
            }
            other => panic!("code {code}: {other:?}"),
        }
    }
    let mut usage = HeaderMap::new();
    usage.insert(
        "x-business-use-case-usage",
        r#"{"682498302938465":[{"type":"messenger","call_count":100,"estimated_time_to_regain_access":7}]}"#.parse().unwrap(),
    );
    let (s, b) = graph(
        400,
        613,
        None,
        "Calls to this api have exceeded the rate limit.",
    );
    assert!(matches!(
        classify(s, &usage, &b),
        Failure::Other(DeliveryError::Throttled { retry_after: Some(wait), .. }) if wait.as_secs() == 7 * 60
    ));
    let (s, b) = graph(
        400,
        190,
        Some(463),
        "Error validating access token: Session has expired",
    );
    assert!(
        matches!(classify(s, &none, &b), Failure::TokenRejected(r) if r.contains("Session has expired"))
    );
    let (s, b) = graph(400, 100, Some(2018001), "(#100) No matching user found");
    assert!(matches!(
        classify(s, &none, &b),
        Failure::Other(DeliveryError::Permanent { reason }) if reason.contains("No matching user found")
    ));
    let (s, b) = graph(500, 2, None, "An unexpected error has occurred.");
    assert!(matches!(
        classify(s, &none, &b),
        Failure::Other(DeliveryError::Transient { .. })
    ));
    let (s, b) = graph(400, 1, None, "An unknown error occurred");
    assert!(matches!(
        classify(s, &none, &b),
        Failure::Other(DeliveryError::Transient { .. })
    ));
    assert!(matches!(
        classify(StatusCode::BAD_GATEWAY, &none, b"<html>"),
        Failure::Other(DeliveryError::Transient { .. })
    ));
}

/// The compliance fixture.
struct Suite;

/// `sha256=` + hex HMAC-SHA256 of the raw body, keyed with the app secret.
fn signature(body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(APP_SECRET.as_bytes()).unwrap();
    mac.update(body);
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256={hex}")
}

impl Fixture for Suite {
    type Type = crate::Messenger;

    /// Graph answers a rejected token with code 190; HTTP 403 is a permission error
    /// about the message (code 10, 200), not the token.
    const REFUSALS: &'static [u16] = &[401];

    fn params(api_base: &str) -> Value {
        json!({"page_id": PAGE, "page_access_token": TOKEN, "app_secret": APP_SECRET,
               "verify_token": VERIFY, "api_base": api_base})
    }

    fn invalid() -> Vec<(Value, Vec<&'static str>)> {
        vec![(
            json!({"page_id": "", "page_access_token": "", "app_secret": " ", "verify_token": "",
                   "api_version": "latest", "api_base": "http://x/?q=1"}),
            vec![
                "page_id",
                "page_access_token",
                "app_secret",
                "verify_token",
                "api_version",
                "api_base",
            ],
        )]
    }

    fn message(n: u32) -> Option<Sample> {
        let b = body(vec![text_event(&format!("mid.{n}"), "hello")]);
        Some(Sample::new("application/json", b.to_string()))
    }

    fn sign(sample: &mut Sample, _: &str) {
        let sig = signature(&sample.body);
        sample.set_header("x-hub-signature-256", sig);
    }

    fn garbage() -> Vec<(Sample, u16)> {
        [
            json!("not a webhook"),
            json!({"object": "page", "entry": [{"id": PAGE, "messaging": [{"sender": {}, "message": {"mid": "m"}}]}]}),
            json!({"object": "page", "entry": [{"id": PAGE, "messaging": [{"sender": {"id": PSID}, "read": {}}]}]}),
        ]
        .iter()
        .map(|b| (Sample::new("application/json", b.to_string()), 422))
        .collect()
    }

    fn outbound() -> Option<OutboundMessage> {
        Some(outbound_text("Here you go", &["https://f.example/a.png"]))
    }

    fn route(req: &Request) -> (bool, Answer) {
        if req.method == Method::POST && req.path == "/v21.0/me/messages" {
            if req.query.as_deref() != Some(&format!("access_token={TOKEN}")) {
                return (true, Suite::error(401, "Invalid OAuth access token."));
            }
            return (
                true,
                Answer::json(
                    200,
                    json!({"recipient_id": PSID, "message_id": "m_AG5Hz2Uq7tuwNEhXfYYKj8mJEM"}),
                ),
            );
        }
        (false, Answer::empty(404))
    }

    /// Graph's error shape; 401 is a rejected token (190), 5xx a service error (2).
    fn error(status: u16, text: &str) -> Answer {
        let code = match status {
            401 => 190,
            500.. => 2,
            _ => 100,
        };
        Answer::json(
            status,
            json!({"error": {"message": text, "type": "OAuthException", "code": code, "fbtrace_id": "Azz"}}),
        )
    }
}

switchboard_core::compliance_suite!(Suite);
