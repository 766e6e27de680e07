//! `[services.<id>.params]` of a `twilio` service.

use std::time::Duration;

use serde::Deserialize;
use switchboard_core::{DurationParam, Params, Secret, Validator};

/// Where Twilio's REST API lives.
pub const DEFAULT_API_BASE: &str = "https://api.twilio.com";

/// A twilio service's params.
#[derive(Debug, Clone, Deserialize)]
pub struct TwilioParams {
    /// The Account SID: `AC` followed by 32 hex digits. Required. It is the Basic-auth
    /// user of every API call and names the account in the Messages URL.
    pub account_sid: String,
    /// The account's Auth Token (or `auth_token_file`). Required. It is the Basic-auth
    /// password and the key of the `X-Twilio-Signature` HMAC on inbound requests.
    pub auth_token: Secret,
    /// Sender address (`+14155550100`, `whatsapp:+14155238886`, a short code or an
    /// alphanumeric sender id). Exactly one of `from` and `messaging_service_sid` is
    /// required. A reply goes from the address the contact wrote to, which is part of
    /// the conversation's key; `from` is the sender when that address is unknown.
    #[serde(default)]
    pub from: Option<String>,
    /// Messaging Service SID (`MG` followed by 32 hex digits), instead of `from`: Twilio
    /// picks the sender from the service's pool (sticky sender keeps it stable per
    /// contact). No default.
    #[serde(default)]
    pub messaging_service_sid: Option<String>,
    /// Base URL of the REST API. Default `https://api.twilio.com`.
    #[serde(default = "default_api_base")]
    pub api_base: String,
    /// Per-request timeout of API calls. Default `15s`.
    #[serde(default = "default_timeout")]
    pub timeout: DurationParam,
}

fn default_api_base() -> String {
    DEFAULT_API_BASE.to_owned()
}

fn default_timeout() -> DurationParam {
    DurationParam(Duration::from_secs(15))
}

/// Whether `s` is `prefix` followed by exactly 32 hex digits: the shape of every Twilio
/// SID (the spec's `^AC[0-9a-fA-F]{32}$`, `^MG[0-9a-fA-F]{32}$`).
pub fn is_sid(s: &str, prefix: &str) -> bool {
    s.strip_prefix(prefix)
        .is_some_and(|hex| hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

impl TwilioParams {
    /// `api_base` without a trailing slash.
    pub fn api_base(&self) -> &str {
        self.api_base.trim_end_matches('/')
    }
}

impl Params for TwilioParams {
    const SECRETS: &'static [&'static str] = &["auth_token"];

    fn validate(&self, v: &mut Validator) {
        if !is_sid(&self.account_sid, "AC") {
            v.error(
                "account_sid",
                format!(
                    "expected \"AC\" followed by 32 hex digits, got {:?}",
                    self.account_sid
                ),
            );
        }
        if self.auth_token.expose().trim().is_empty() {
            v.error("auth_token", "must not be empty");
        }
        match (&self.from, &self.messaging_service_sid) {
            (None, None) => v.error("from", "either from or messaging_service_sid is required"),
            (Some(_), Some(_)) => v.error(
                "messaging_service_sid",
                "give either from or messaging_service_sid, not both",
            ),
            (Some(from), None) => {
                if from.trim().is_empty() || from.contains(char::is_whitespace) {
                    v.error(
                        "from",
                        format!("expected a sender address such as \"+14155550100\" or \"whatsapp:+14155238886\", got {from:?}"),
                    );
                }
            }
            (None, Some(sid)) => {
                if !is_sid(sid, "MG") {
                    v.error(
                        "messaging_service_sid",
                        format!("expected \"MG\" followed by 32 hex digits, got {sid:?}"),
                    );
                }
            }
        }
        v.url("api_base", &self.api_base);
        if self.timeout.0.is_zero() {
            v.error("timeout", "must be greater than zero");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issues(json: serde_json::Value) -> Vec<String> {
        let p: TwilioParams = serde_json::from_value(json).unwrap();
        let mut v = Validator::new("p");
        p.validate(&mut v);
        v.into_issues().iter().map(|i| i.to_string()).collect()
    }

    const AC: &str = "AC0123456789abcdef0123456789ABCDEF";

    #[test]
    fn a_minimal_service_is_valid_with_defaults() {
        let p: TwilioParams = serde_json::from_value(
            serde_json::json!({"account_sid": AC, "auth_token": "t", "from": "+14155550100"}),
        )
        .unwrap();
        assert_eq!(p.api_base(), "https://api.twilio.com");
        assert_eq!(p.timeout.0, Duration::from_secs(15));
        assert!(
            issues(
                serde_json::json!({"account_sid": AC, "auth_token": "t", "from": "+14155550100"})
            )
            .is_empty()
        );
    }

    #[test]
    fn problems_name_their_key() {
        assert_eq!(
            issues(serde_json::json!({"account_sid": "AC123", "auth_token": "t"})),
            [
                "p.account_sid: expected \"AC\" followed by 32 hex digits, got \"AC123\"",
                "p.from: either from or messaging_service_sid is required",
            ]
        );
        let both = issues(serde_json::json!({"account_sid": AC, "auth_token": "t",
            "from": "+1", "messaging_service_sid": "MG0123456789abcdef0123456789abcdef"}));
        assert_eq!(
            both,
            ["p.messaging_service_sid: give either from or messaging_service_sid, not both"]
        );
        let bad = issues(serde_json::json!({"account_sid": AC, "auth_token": " ",
            "messaging_service_sid": "MGxyz", "api_base": "api.twilio.com", "timeout": 0}));
        assert_eq!(bad.len(), 4, "{bad:?}");
        assert!(bad[0].starts_with("p.auth_token: must not be empty"));
        assert!(bad[1].starts_with("p.messaging_service_sid: expected \"MG\""));
        assert!(bad[2].starts_with("p.api_base: expected an http(s) URL"));
        assert!(bad[3].starts_with("p.timeout: must be greater than zero"));
    }
}
