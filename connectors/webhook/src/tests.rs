//! Config through the compliance suite (the type has no hooks and sends no messages),
//! and event delivery against a recording receiver: the stored body verbatim, signed
//! per Standard Webhooks (checked independently of `signing`), every non-2xx retried.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use switchboard_core::testkit::RecordingHost;
use switchboard_core::testkit::compliance::{self, Fixture};
use switchboard_core::testkit::fake::{Answer, Recorder, Request, Script};
use switchboard_core::{DeliveryError, EventData, EventDelivery, ServiceType};

/// `whsec_` + base64 of "webhook-secret-for-unit-tests".
const SECRET: &str = "whsec_d2ViaG9vay1zZWNyZXQtZm9yLXVuaXQtdGVzdHM=";

struct Suite;

impl Fixture for Suite {
    type Type = crate::Webhook;

    fn params(api_base: &str) -> Value {
        json!({"url": format!("{api_base}/events"), "secret": SECRET})
    }

    fn invalid() -> Vec<(Value, Vec<&'static str>)> {
        vec![(
            json!({"url": "ftp://x", "secret": "whsec_!", "events": ["message.created", "message.deleted"],
                   "max_attempts": 0, "timeout": 0}),
            vec!["url", "secret", "events[1]", "max_attempts", "timeout"],
        )]
    }

    fn route(req: &Request) -> (bool, Answer) {
        (req.path == "/events", Answer::empty(200))
    }
}

switchboard_core::compliance_suite!(Suite);

fn delivery() -> EventDelivery {
    let body = r#"{"type":"service.state","timestamp":"2026-01-01T00:00:00Z","seq":3,"data":{"service":{"id":"sun"}}}"#;
    EventDelivery {
        delivery_id: "evt_3".into(),
        event: serde_json::from_str(body).unwrap(),
        body: Bytes::from_static(body.as_bytes()),
        attempt: 1,
    }
}

#[test]
fn events_go_out_verbatim_signed_and_every_failure_is_retried() {
    compliance::block_on(async {
        let rx = Recorder::start(Suite::route).await;
        let p: crate::WebhookParams = serde_json::from_value(Suite::params(&rx.url(""))).unwrap();
        let c = crate::Webhook::build(&p).unwrap();
        let (ctx, _) = RecordingHost::context("hook", "webhook", None);
        let d = delivery();
        assert!(matches!(d.event.data, EventData::ServiceState { .. }));
        c.deliver_event(&ctx, &d).await.unwrap();
        let req = rx.requests()[0].request.clone();
        assert_eq!(req.body, d.body, "the stored bytes, verbatim");
        assert_eq!(req.header("webhook-id"), "evt_3");
        let ts = req.header("webhook-timestamp");
        let key = STANDARD
            .decode(SECRET.strip_prefix("whsec_").unwrap())
            .unwrap();
        let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
        mac.update(format!("evt_3.{ts}.").as_bytes());
        mac.update(&req.body);
        let expected = format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()));
        assert_eq!(req.header("webhook-signature"), expected);

        for status in [400, 404, 410, 500, 503] {
            rx.script(Script::Nth(1, Answer::empty(status)));
            match c.deliver_event(&ctx, &d).await {
                Err(DeliveryError::Transient { .. }) => {}
                other => panic!("HTTP {status}: expected transient, got {other:?}"),
            }
        }
        rx.script(Script::Nth(
            1,
            Answer::empty(429).with_header("retry-after", "7"),
        ));
        match c.deliver_event(&ctx, &d).await {
            Err(DeliveryError::Transient { retry_after, .. }) => {
                assert_eq!(retry_after, Some(Duration::from_secs(7)))
            }
            other => panic!("HTTP 429: {other:?}"),
        }
        assert_eq!(
            c.retry_limits().map(|l| l.max_attempts),
            Some(12),
            "the default max_attempts"
        );
        rx.stop().await;
    })
}
