//! `[services.<id>.params]` of a `messenger` service: one Facebook Page, the app that
//! receives its webhooks, and the Graph API it replies through.

use serde::Deserialize;
use switchboard_core::{Params, Secret, Validator};

/// The Graph API host.
pub const DEFAULT_API_BASE: &str = "https://graph.facebook.com";
/// The Graph API version replies go through unless `api_version` says otherwise.
pub const DEFAULT_API_VERSION: &str = "v21.0";

/// A Facebook Page's Messenger inbox.
#[derive(Debug, Clone, Deserialize)]
pub struct MessengerParams {
    /// The Page's id: webhook entries for another page are not this service's. Required.
    pub page_id: String,
    /// The Page access token replies are sent with (or `page_access_token_file`).
    /// Required.
    pub page_access_token: Secret,
    /// The app secret that signs webhooks in `X-Hub-Signature-256` (or
    /// `app_secret_file`). Required.
    pub app_secret: Secret,
    /// What the app's webhook setup sends as `hub.verify_token` (or
    /// `verify_token_file`). Required.
    pub verify_token: Secret,
    /// The Graph API version, `v<major>.<minor>`. Default `v21.0`.
    #[serde(default = "default_api_version")]
    pub api_version: String,
    /// Base URL of the Graph API. Default `https://graph.facebook.com`.
    #[serde(default = "default_api_base")]
    pub api_base: String,
}

fn default_api_version() -> String {
    DEFAULT_API_VERSION.to_owned()
}

fn default_api_base() -> String {
    DEFAULT_API_BASE.to_owned()
}

/// Whether `v` looks like a Graph version (`v21.0`): it becomes a path segment.
fn is_version(v: &str) -> bool {
    let Some(rest) = v.strip_prefix('v') else {
        return false;
    };
    let mut parts = rest.split('.');
    let digits =
        |p: Option<&str>| p.is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    digits(parts.next()) && digits(parts.next()) && parts.next().is_none()
}

impl Params for MessengerParams {
    const SECRETS: &'static [&'static str] = &["page_access_token", "app_secret", "verify_token"];

    fn validate(&self, v: &mut Validator) {
        v.non_empty("page_id", &self.page_id);
        if !self.page_id.trim().is_empty() && !self.page_id.bytes().all(|b| b.is_ascii_digit()) {
            v.error("page_id", "expected the Page's numeric id");
        }
        for (key, secret) in [
            ("page_access_token", &self.page_access_token),
            ("app_secret", &self.app_secret),
            ("verify_token", &self.verify_token),
        ] {
            if secret.expose().trim().is_empty() {
                v.error(key, "must not be empty");
            }
        }
        if !is_version(&self.api_version) {
            v.error(
                "api_version",
                format!(
                    "expected a Graph API version like \"{DEFAULT_API_VERSION}\", got {:?}",
                    self.api_version
                ),
            );
        }
        v.api_base("api_base", &self.api_base);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issues(p: &MessengerParams) -> Vec<String> {
        let mut v = Validator::new("services.m.params");
        p.validate(&mut v);
        v.into_issues().iter().map(|i| i.to_string()).collect()
    }

    #[test]
    fn defaults_and_validation_name_each_key() {
        let p: MessengerParams = serde_json::from_value(serde_json::json!({
            "page_id": "1234567890", "page_access_token": "EAAtoken",
            "app_secret": "appsecret", "verify_token": "verify-me"
        }))
        .unwrap();
        assert_eq!(p.api_version, "v21.0");
        assert_eq!(p.api_base, DEFAULT_API_BASE);
        assert!(issues(&p).is_empty());
        let dbg = format!("{p:?}");
        assert!(
            !dbg.contains("EAAtoken") && !dbg.contains("appsecret") && !dbg.contains("verify-me")
        );

        let bad: MessengerParams = serde_json::from_value(serde_json::json!({
            "page_id": "my-page", "page_access_token": " ", "app_secret": "",
            "verify_token": "", "api_version": "21", "api_base": "ftp://x"
        }))
        .unwrap();
        assert_eq!(
            issues(&bad),
            [
                "services.m.params.page_id: expected the Page's numeric id",
                "services.m.params.page_access_token: must not be empty",
                "services.m.params.app_secret: must not be empty",
                "services.m.params.verify_token: must not be empty",
                "services.m.params.api_version: expected a Graph API version like \"v21.0\", got \"21\"",
                "services.m.params.api_base: expected an http(s) URL, got \"ftp://x\"",
            ]
        );
        assert!(is_version("v3.10") && !is_version("v21") && !is_version("v21.0/x"));
    }
}
