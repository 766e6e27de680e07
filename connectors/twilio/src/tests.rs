//! Unit tests of the connector's own helpers; parsing and signatures are tested beside
//! their code, the whole connector by the compliance suite.

use crate::client::sender;
use crate::connector::KEY_PARAM;
use crate::webhook::query_param;

#[test]
fn replies_go_from_the_address_the_contact_wrote_to() {
    let wa = Some("whatsapp:+316|whatsapp:+14155238886");
    assert_eq!(
        sender(wa, Some("+14155550100"), "whatsapp:+316").as_deref(),
        Some("whatsapp:+14155238886")
    );
    assert_eq!(
        sender(None, Some("+14155550100"), "whatsapp:+316").as_deref(),
        Some("whatsapp:+14155550100")
    );
    assert_eq!(
        sender(None, Some("+14155550100"), "+316").as_deref(),
        Some("+14155550100")
    );
    assert_eq!(
        sender(Some("not a pair"), Some("whatsapp:+1"), "whatsapp:+316").as_deref(),
        Some("whatsapp:+1")
    );
    assert_eq!(sender(None, None, "+316"), None);
}

#[test]
fn query_params_are_decoded() {
    assert_eq!(
        query_param(Some("a=1&idempotency_key=sms-12"), KEY_PARAM).as_deref(),
        Some("sms-12")
    );
    assert_eq!(query_param(Some("a=1"), KEY_PARAM), None);
    assert_eq!(query_param(None, KEY_PARAM), None);
}

// ---- the compliance suite ----

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha1::Sha1;
use switchboard_core::OutboundMessage;
use switchboard_core::testkit::compliance::{self, Fixture, Sample};
use switchboard_core::testkit::fake::{Answer, Request};

const ACCOUNT: &str = "AC0123456789abcdef0123456789abcdef";
const AUTH_TOKEN: &str = "twilio-auth-token-0123456789";
const CONTACT: &str = "+31612345678";
const NUMBER: &str = "+14155550100";
const FORM: &str = "application/x-www-form-urlencoded";

fn form(pairs: &[(&str, &str)]) -> Sample {
    Sample::new(FORM, serde_urlencoded::to_string(pairs).unwrap())
}

struct Suite;

impl Fixture for Suite {
    type Type = crate::Twilio;

    fn params(api_base: &str) -> Value {
        json!({"account_sid": ACCOUNT, "auth_token": AUTH_TOKEN, "from": NUMBER, "api_base": api_base})
    }

    fn invalid() -> Vec<(Value, Vec<&'static str>)> {
        vec![
            (
                json!({"account_sid": "AC123", "auth_token": " ", "messaging_service_sid": "MGxyz",
                       "api_base": "api.twilio.com", "timeout": 0}),
                vec![
                    "account_sid",
                    "auth_token",
                    "messaging_service_sid",
                    "api_base",
                    "timeout",
                ],
            ),
            (
                json!({"account_sid": ACCOUNT, "auth_token": AUTH_TOKEN}),
                vec!["from"],
            ),
        ]
    }

    fn message(n: u32) -> Option<Sample> {
        let sid = format!("SM{n:032x}");
        Some(form(&[
            ("AccountSid", ACCOUNT),
            ("MessageSid", &sid),
            ("From", CONTACT),
            ("To", NUMBER),
            ("Body", "Hello"),
            ("NumMedia", "0"),
        ]))
    }

    /// Base64 HMAC-SHA1, keyed with the auth token, of the URL followed by every POST
    /// field's name and value, sorted by name (Twilio's webhook security page).
    fn sign(sample: &mut Sample, url: &str) {
        let text = String::from_utf8_lossy(&sample.body).into_owned();
        let mut fields: Vec<(String, String)> =
            serde_urlencoded::from_str(&text).unwrap_or_default();
        fields.sort();
        let mut data = url.to_owned();
        for (k, v) in fields {
            data.push_str(&k);
            data.push_str(&v);
        }
        let mut mac = Hmac::<Sha1>::new_from_slice(AUTH_TOKEN.as_bytes()).unwrap();
        mac.update(data.as_bytes());
        sample.set_header(
            "x-twilio-signature",
            STANDARD.encode(mac.finalize().into_bytes()),
        );
    }

    fn garbage() -> Vec<(Sample, u16)> {
        vec![
            (
                form(&[
                    ("AccountSid", ACCOUNT),
                    ("MessageSid", "SM1"),
                    ("Body", "hi"),
                ]),
                422,
            ),
            (
                form(&[("AccountSid", ACCOUNT), ("From", CONTACT), ("To", NUMBER)]),
                422,
            ),
        ]
    }

    fn outbound() -> Option<OutboundMessage> {
        let pair = format!("{CONTACT}|{NUMBER}");
        Some(compliance::outbound(
            Some(&pair),
            CONTACT,
            "Hi Mary",
            &["https://f.example/a.png"],
        ))
    }

    fn route(req: &Request) -> (bool, Answer) {
        let account = format!("/2010-04-01/Accounts/{ACCOUNT}");
        let basic = format!(
            "Basic {}",
            STANDARD.encode(format!("{ACCOUNT}:{AUTH_TOKEN}"))
        );
        let send = req.path == format!("{account}/Messages.json");
        if req.header("authorization") != basic {
            return (send, Answer::empty(401));
        }
        match req.method.as_str() {
            "GET" if req.path == format!("{account}.json") => (
                false,
                Answer::json(200, json!({"sid": ACCOUNT, "status": "active"})),
            ),
            "POST" if send => (
                true,
                Answer::json(
                    201,
                    json!({"sid": "SM0123456789abcdef0123456789abcdef", "status": "queued"}),
                ),
            ),
            _ => (false, Answer::empty(404)),
        }
    }

    fn error(status: u16, text: &str) -> Answer {
        Answer::json(
            status,
            json!({"code": 21211, "message": text, "more_info": "https://www.twilio.com/docs/errors/21211", "status": status}),
        )
    }
}

switchboard_core::compliance_suite!(Suite);
