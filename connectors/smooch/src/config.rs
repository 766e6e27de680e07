//! `[services.<id>.params]` of a `smooch` service. The camel-case names are Web1on1's
//! (docs/web1on1.md); each also has a lower-case alias because environment overrides arrive
//! lower-cased when the file does not already spell the key.

use serde::Deserialize;
use switchboard_core::{Params, Secret, Validator};

/// The Sunshine API of the default (US) region.
pub const DEFAULT_API_BASE: &str = "https://api.smooch.io";

/// A Sunshine Conversations app and the credentials to talk to it.
#[derive(Debug, Clone, Deserialize)]
pub struct SmoochParams {
    /// The Sunshine app id: the `{appId}` of every API path. Required.
    #[serde(rename = "appId", alias = "appid")]
    pub app_id: String,
    /// The API key id (`app_…` or `int_…`), the user name of Basic authentication.
    /// Required.
    #[serde(rename = "keyId", alias = "keyid")]
    pub key_id: String,
    /// The API key secret, the password of Basic authentication (or `secret_file`).
    /// Required.
    pub secret: Secret,
    /// The webhook's shared secret, which Sunshine sends in `X-API-Key` with every
    /// webhook request (or `webhook_secret_file`). Required.
    pub webhook_secret: Secret,
    /// Base URL of the Sunshine API. Default `https://api.smooch.io`; the EU region is
    /// `https://api.eu-1.smooch.io`.
    #[serde(default = "default_api_base")]
    pub api_base: String,
    /// Web1on1's optional "advanced settings" object: accepted so that Web1on1's
    /// configs load, not used. Default: absent.
    #[serde(default)]
    pub advanced: Option<serde_json::Value>,
}

fn default_api_base() -> String {
    DEFAULT_API_BASE.to_owned()
}

impl Params for SmoochParams {
    const SECRETS: &'static [&'static str] = &["secret", "webhook_secret"];

    fn validate(&self, v: &mut Validator) {
        v.non_empty("appId", &self.app_id);
        v.non_empty("keyId", &self.key_id);
        if self.secret.expose().trim().is_empty() {
            v.error("secret", "must not be empty");
        }
        if self.webhook_secret.expose().trim().is_empty() {
            v.error("webhook_secret", "must not be empty");
        }
        v.url("api_base", &self.api_base);
        if let Ok(u) = url::Url::parse(&self.api_base)
            && (u.query().is_some() || u.fragment().is_some())
        {
            v.error(
                "api_base",
                "must not have a query or fragment: API paths are appended to it",
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issues(p: &SmoochParams) -> Vec<String> {
        let mut v = Validator::new("services.s.params");
        p.validate(&mut v);
        v.into_issues().iter().map(|i| i.to_string()).collect()
    }

    #[test]
    fn seed_names_lower_case_aliases_and_defaults() {
        let p: SmoochParams = serde_json::from_value(serde_json::json!({
            "appId": "5876bc219b9d2b54a086647fd5", "keyId": "app_5876bc219b9d2b5400d34558",
            "secret": "0BPGhSWvROXtb37fkp8Q4iJO", "webhook_secret": "whk",
            "advanced": {"anything": [1, 2]}
        }))
        .unwrap();
        assert_eq!(p.app_id, "5876bc219b9d2b54a086647fd5");
        assert_eq!(p.api_base, DEFAULT_API_BASE);
        assert!(issues(&p).is_empty());
        let dbg = format!("{p:?}");
        assert!(!dbg.contains("0BPGhSWvROXtb37fkp8Q4iJO") && !dbg.contains("whk"));

        let lower: SmoochParams = serde_json::from_value(serde_json::json!({
            "appid": "a", "keyid": "k", "secret": "s", "webhook_secret": "w"
        }))
        .unwrap();
        assert_eq!((lower.app_id.as_str(), lower.key_id.as_str()), ("a", "k"));
    }

    #[test]
    fn validation_names_each_key() {
        let p: SmoochParams = serde_json::from_value(serde_json::json!({
            "appId": " ", "keyId": "", "secret": "", "webhook_secret": "",
            "api_base": "ftp://x"
        }))
        .unwrap();
        assert_eq!(
            issues(&p),
            [
                "services.s.params.appId: must not be empty",
                "services.s.params.keyId: must not be empty",
                "services.s.params.secret: must not be empty",
                "services.s.params.webhook_secret: must not be empty",
                "services.s.params.api_base: expected an http(s) URL, got \"ftp://x\"",
            ]
        );
    }
}
