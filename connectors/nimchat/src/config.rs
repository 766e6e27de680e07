//! `[services.<id>.params]` of a `nimchat` service.

use serde::Deserialize;
use switchboard_core::{IdString, Params, Secret, Validator};

/// One API-channel inbox of a nimchat (Chatwoot-style) account.
#[derive(Debug, Clone, Deserialize)]
pub struct NimchatParams {
    /// The desk's base URL, e.g. `https://desk.example.com`. Required.
    pub base_url: String,
    /// The inbox's identifier (Settings → Inboxes → the API inbox), which the public
    /// client API takes instead of a token. Required.
    pub inbox_identifier: String,
    /// The account, for the application API. Required with `api_access_token`.
    #[serde(default)]
    pub account_id: Option<IdString>,
    /// An agent's or bot's access token for the application API (or
    /// `api_access_token_file`): with it, failed replies come back as private notes and
    /// `/v1` agents' replies are mirrored as outgoing messages.
    #[serde(default)]
    pub api_access_token: Option<Secret>,
    /// The inbox's HMAC token (or `hmac_token_file`), when it enforces identity
    /// validation: contacts are created with `identifier_hash`.
    #[serde(default)]
    pub hmac_token: Option<Secret>,
    /// The webhook's signing secret (or `webhook_secret_file`): replies must carry
    /// `X-Chatwoot-Signature`. One of `webhook_secret` and `hook_token` is required.
    #[serde(default)]
    pub webhook_secret: Option<Secret>,
    /// For desks that cannot sign: the secret last segment of the webhook URL,
    /// `/hooks/{id}/{hook_token}` (or `hook_token_file`), at least 24 characters.
    #[serde(default)]
    pub hook_token: Option<Secret>,
}

/// Shortest accepted `hook_token`: it is the only credential of an unsigned desk.
pub const MIN_HOOK_TOKEN: usize = 24;

impl NimchatParams {
    /// `base_url` without a trailing slash, ready for paths to be appended.
    pub fn base(&self) -> &str {
        self.base_url.trim_end_matches('/')
    }

    /// The application API's account and token, when both are set.
    pub fn app_api(&self) -> Option<(&str, &Secret)> {
        Some((
            self.account_id.as_ref()?.0.as_str(),
            self.api_access_token.as_ref()?,
        ))
    }
}

fn blank(s: &Option<Secret>) -> bool {
    s.as_ref().is_some_and(|s| s.expose().trim().is_empty())
}

impl Params for NimchatParams {
    const SECRETS: &'static [&'static str] = &[
        "api_access_token",
        "hmac_token",
        "webhook_secret",
        "hook_token",
    ];

    fn validate(&self, v: &mut Validator) {
        v.url("base_url", &self.base_url);
        v.non_empty("inbox_identifier", &self.inbox_identifier);
        if self.inbox_identifier.contains(['/', '?', '#']) {
            v.error("inbox_identifier", "must not contain '/', '?' or '#'");
        }
        for (key, s) in [
            ("api_access_token", &self.api_access_token),
            ("hmac_token", &self.hmac_token),
            ("webhook_secret", &self.webhook_secret),
        ] {
            if blank(s) {
                v.error(key, "must not be empty");
            }
        }
        match (&self.account_id, &self.api_access_token) {
            (Some(a), _) if a.0.trim().is_empty() => v.error("account_id", "must not be empty"),
            (None, Some(_)) => v.error("account_id", "is required with api_access_token"),
            _ => {}
        }
        if let Some(t) = &self.hook_token {
            let t = t.expose();
            if t.len() < MIN_HOOK_TOKEN
                || !t
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b))
            {
                v.error(
                    "hook_token",
                    format!(
                        "must be at least {MIN_HOOK_TOKEN} characters of A-Z, a-z, 0-9, - and _"
                    ),
                );
            }
        }
        if self.webhook_secret.is_none() && self.hook_token.is_none() {
            v.error(
                "webhook_secret",
                "one of webhook_secret and hook_token is required: a desk reply must be authenticated",
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: serde_json::Value) -> NimchatParams {
        serde_json::from_value(json).unwrap()
    }

    fn keys(p: &NimchatParams) -> Vec<String> {
        let mut v = Validator::new("p");
        p.validate(&mut v);
        v.into_issues()
            .iter()
            .map(|i| i.path.trim_start_matches("p.").to_owned())
            .collect()
    }

    #[test]
    fn a_reply_needs_a_signature_or_a_path_token() {
        let p =
            parse(serde_json::json!({"base_url": "https://d.example", "inbox_identifier": "in-1"}));
        assert_eq!(keys(&p), ["webhook_secret"]);
        let p = parse(
            serde_json::json!({"base_url": "https://d.example/", "inbox_identifier": "in-1",
            "hook_token": "abcdefghijklmnopqrstuvwxyz"}),
        );
        assert!(keys(&p).is_empty());
        assert_eq!(p.base(), "https://d.example");
        assert!(p.app_api().is_none());
    }

    #[test]
    fn every_problem_names_its_key() {
        let p = parse(
            serde_json::json!({"base_url": "ftp://x", "inbox_identifier": "a/b",
            "api_access_token": "tok", "hmac_token": " ", "hook_token": "short"}),
        );
        assert_eq!(
            keys(&p),
            [
                "base_url",
                "inbox_identifier",
                "hmac_token",
                "account_id",
                "hook_token"
            ]
        );
    }
}
