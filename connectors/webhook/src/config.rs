//! `[services.<id>.params]` of a `webhook` service.

use serde::Deserialize;
use switchboard_core::model::EVENT_TYPES;
use switchboard_core::signing::WebhookKey;
use switchboard_core::{DurationParam, Params, Secret, Validator};

/// Where and how events are pushed.
#[derive(Debug, Clone, Deserialize)]
pub struct WebhookParams {
    /// The receiver's URL (http or https).
    pub url: String,
    /// Signing secret: `whsec_` + base64 of at least 16 random bytes.
    pub secret: Secret,
    /// Event types to send; all when absent.
    #[serde(default)]
    pub events: Option<Vec<String>>,
    /// Per-attempt timeout. Default `10s`.
    #[serde(default = "default_timeout")]
    pub timeout: DurationParam,
    /// Attempts before a delivery is dead. Default 12.
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// Age after which a delivery is dead. Default `24h`.
    #[serde(default = "default_max_age")]
    pub max_age: DurationParam,
}

fn default_timeout() -> DurationParam {
    DurationParam(std::time::Duration::from_secs(10))
}
fn default_max_attempts() -> u32 {
    12
}
fn default_max_age() -> DurationParam {
    DurationParam(std::time::Duration::from_secs(24 * 3600))
}

impl WebhookParams {
    /// Whether this webhook takes events of `kind`.
    pub fn wants(&self, kind: &str) -> bool {
        self.events
            .as_ref()
            .is_none_or(|list| list.iter().any(|e| e == kind))
    }
}

impl Params for WebhookParams {
    const SECRETS: &'static [&'static str] = &["secret"];

    fn validate(&self, v: &mut Validator) {
        v.url("url", &self.url);
        if let Err(e) = WebhookKey::parse(&self.secret) {
            v.error("secret", e);
        }
        if let Some(events) = &self.events {
            for (i, e) in events.iter().enumerate() {
                if !EVENT_TYPES.contains(&e.as_str()) {
                    v.error(
                        &format!("events[{i}]"),
                        format!(
                            "unknown event type {e:?}; expected one of {}",
                            EVENT_TYPES.join(", ")
                        ),
                    );
                }
            }
        }
        if self.max_attempts == 0 {
            v.error("max_attempts", "must be at least 1");
        }
        if self.timeout.0.is_zero() {
            v.error("timeout", "must be greater than zero");
        }
    }
}
