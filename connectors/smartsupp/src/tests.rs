//! The compliance suite's config checks. The type has no hooks, and its sends go over
//! XMPP, which the end-to-end tests run against a real Prosody.

use serde_json::{Value, json};
use switchboard_core::testkit::compliance::Fixture;

struct Suite;

impl Fixture for Suite {
    type Type = crate::Smartsupp;

    fn params(_: &str) -> Value {
        json!({"jid": "agent@chat.example", "password": "xmpp-password-value", "host": "127.0.0.1"})
    }

    fn invalid() -> Vec<(Value, Vec<&'static str>)> {
        vec![
            (
                json!({"jid": "not a jid@", "password": "", "host": "http://x y", "tls": "none",
                       "ca_file": "/nonexistent/ca.pem"}),
                vec!["jid", "password", "host", "tls", "ca_file"],
            ),
            (
                json!({"jid": "agent@chat.example", "password": "p", "host": "chat.example", "tls": "none"}),
                vec!["tls"],
            ),
        ]
    }
}

switchboard_core::compliance_suite!(Suite);
