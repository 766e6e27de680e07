//! `[services.<id>.params]` of an `api` service.

use std::collections::BTreeMap;

use serde::Deserialize;
use switchboard_core::signing::WebhookKey;
use switchboard_core::{DurationParam, Params, Scope, Secret, Validator};

/// One bearer token.
#[derive(Debug, Clone, Deserialize)]
pub struct TokenConfig {
    /// The token itself (or `token_file`). At least 16 characters.
    pub token: Secret,
    /// What it may do.
    pub scopes: Vec<Scope>,
}

/// An api service's params.
#[derive(Debug, Clone, Deserialize)]
pub struct ApiParams {
    /// Bearer tokens by name; the name appears in logs, the token never does.
    #[serde(default)]
    pub tokens: BTreeMap<String, TokenConfig>,
    /// Where outbound messages on this service's conversations are POSTed. Without it,
    /// replies are marked `sent` once stored: the remote system reads them from the event
    /// stream or a webhook.
    #[serde(default)]
    pub callback_url: Option<String>,
    /// `whsec_…` key signing callbacks; required with `callback_url`.
    #[serde(default)]
    pub callback_secret: Option<Secret>,
    /// Per-attempt callback timeout. Default `10s`.
    #[serde(default = "default_timeout")]
    pub callback_timeout: DurationParam,
}

fn default_timeout() -> DurationParam {
    DurationParam(std::time::Duration::from_secs(10))
}

/// Shortest token accepted: 16 characters leave no room for guessing over HTTP.
pub const MIN_TOKEN_LEN: usize = 16;

impl Params for ApiParams {
    const SECRETS: &'static [&'static str] = &["tokens.*.token", "callback_secret"];

    fn validate(&self, v: &mut Validator) {
        for (name, t) in &self.tokens {
            if t.token.expose().len() < MIN_TOKEN_LEN {
                v.error(
                    &format!("tokens.{name}.token"),
                    format!("must be at least {MIN_TOKEN_LEN} characters"),
                );
            }
            if t.scopes.is_empty() {
                v.error(
                    &format!("tokens.{name}.scopes"),
                    "must name at least one scope",
                );
            }
        }
        match (&self.callback_url, &self.callback_secret) {
            (Some(url), Some(secret)) => {
                v.url("callback_url", url);
                if let Err(e) = WebhookKey::parse(secret) {
                    v.error("callback_secret", e);
                }
            }
            (Some(_), None) => v.error("callback_secret", "required when callback_url is set"),
            (None, Some(_)) => v.error("callback_url", "required when callback_secret is set"),
            (None, None) => {}
        }
    }
}
