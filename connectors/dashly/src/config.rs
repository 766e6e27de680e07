//! `[services.<id>.params]` of a `dashly` service.

use std::time::Duration;

use serde::Deserialize;
use switchboard_core::{DurationParam, IdString, Params, Secret, Validator};

/// The Web API's base URL.
pub const DEFAULT_API_BASE: &str = "https://api.dashly.app/v1";

/// Shortest accepted `poll_interval`. The budget paces requests anyway; this keeps an
/// idle service from spending it on listing nothing.
pub const MIN_POLL_INTERVAL: Duration = Duration::from_secs(1);

/// A Dashly app read and answered through its Web API.
#[derive(Debug, Clone, Deserialize)]
pub struct DashlyParams {
    /// The app's id (number or string). Required.
    pub app_id: IdString,
    /// The API key from "Settings > Developers" (or `auth_token_file`). Required. Every
    /// service with the same key shares one budget of 60 requests a minute.
    pub auth_token: Secret,
    /// The admin replies are made as; this admin's parts read back by the poller are our
    /// own replies and are skipped. Required.
    pub admin_id: IdString,
    /// How often the conversation list is read when the budget is ample; the poller
    /// slows down when it runs low. Default `5s`; at least `1s`.
    #[serde(default = "default_poll_interval")]
    pub poll_interval: DurationParam,
    /// Web API base URL. Default `https://api.dashly.app/v1`.
    #[serde(default = "default_api_base")]
    pub api_base: String,
    /// Whether conversations are marked read (`POST /conversations/{id}/markread`) once
    /// their new parts are stored. Costs one request of the budget each. Default false.
    #[serde(default)]
    pub markread: bool,
}

fn default_api_base() -> String {
    DEFAULT_API_BASE.to_owned()
}

fn default_poll_interval() -> DurationParam {
    DurationParam(Duration::from_secs(5))
}

impl DashlyParams {
    /// `api_base` without a trailing slash.
    pub fn base(&self) -> &str {
        self.api_base.trim_end_matches('/')
    }
}

impl Params for DashlyParams {
    const SECRETS: &'static [&'static str] = &["auth_token"];

    fn validate(&self, v: &mut Validator) {
        v.non_empty("app_id", &self.app_id.0);
        if self.auth_token.expose().trim().is_empty() {
            v.error("auth_token", "must not be empty");
        }
        v.non_empty("admin_id", &self.admin_id.0);
        if self.poll_interval.0 < MIN_POLL_INTERVAL {
            v.error("poll_interval", "must be at least 1s");
        }
        v.url("api_base", &self.api_base);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: serde_json::Value) -> DashlyParams {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn defaults_numeric_ids_and_no_secret_in_debug() {
        let p = parse(serde_json::json!({
            "app_id": 4321, "auth_token": "app.4321.secret-key", "admin_id": 77
        }));
        assert_eq!((p.app_id.0.as_str(), p.admin_id.0.as_str()), ("4321", "77"));
        assert_eq!(p.api_base, DEFAULT_API_BASE);
        assert_eq!(p.poll_interval.0, Duration::from_secs(5));
        assert!(!p.markread);
        assert!(!format!("{p:?}").contains("secret-key"));
        let mut v = Validator::new("p");
        p.validate(&mut v);
        assert!(v.into_issues().is_empty());
    }

    #[test]
    fn base_has_no_trailing_slash() {
        let p = parse(serde_json::json!({
            "app_id": "1", "auth_token": "t", "admin_id": "2", "api_base": "http://127.0.0.1:9/v1/"
        }));
        assert_eq!(p.base(), "http://127.0.0.1:9/v1");
    }
}
