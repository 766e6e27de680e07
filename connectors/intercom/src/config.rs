//! `[services.<id>.params]` of an `intercom` service.

use std::time::Duration;

use serde::Deserialize;
use switchboard_core::{DurationParam, IdString, Params, Secret, Validator};

/// The default REST API (US region; EU is `https://api.eu.intercom.io`, AU
/// `https://api.au.intercom.io`).
pub const DEFAULT_API_BASE: &str = "https://api.intercom.io";

/// Shortest accepted `poll_interval`: Intercom timestamps are whole seconds, and the
/// poller's same-second check relies on polls being at least a second apart.
pub const MIN_POLL_INTERVAL: Duration = Duration::from_secs(1);

/// An Intercom workspace connected through one developer app.
#[derive(Debug, Clone, Deserialize)]
pub struct IntercomParams {
    /// The workspace (app) id, e.g. `a86dr8yl`. Required. Notifications naming another
    /// workspace are acknowledged and ignored: a public app installed in several
    /// workspaces signs all of them with the same client secret.
    pub app_id: String,
    /// The workspace's access token (or `access_token_file`), sent as a bearer token.
    /// Required; needs the "read conversations" and "write conversations" permissions.
    pub access_token: Secret,
    /// The admin on whose behalf all replies are made (number or string). Required.
    pub assignee_id: IdString,
    /// The developer app's client secret (or `client_secret_file`), which signs
    /// notifications (`X-Hub-Signature`). Required.
    pub client_secret: Secret,
    /// REST API base URL. Default `https://api.intercom.io`.
    #[serde(default = "default_api_base")]
    pub api_base: String,
    /// How often the catch-up poller looks for conversations updated since its cursor
    /// (it also runs on every start). Default `60s`; at least `1s`.
    #[serde(default = "default_poll_interval")]
    pub poll_interval: DurationParam,
}

fn default_api_base() -> String {
    DEFAULT_API_BASE.to_owned()
}

fn default_poll_interval() -> DurationParam {
    DurationParam(Duration::from_secs(60))
}

impl IntercomParams {
    /// `api_base` without a trailing slash, ready for paths to be appended.
    pub fn base(&self) -> &str {
        self.api_base.trim_end_matches('/')
    }
}

impl Params for IntercomParams {
    const SECRETS: &'static [&'static str] = &["access_token", "client_secret"];

    fn validate(&self, v: &mut Validator) {
        v.non_empty("app_id", &self.app_id);
        if self.access_token.expose().trim().is_empty() {
            v.error("access_token", "must not be empty");
        }
        v.non_empty("assignee_id", &self.assignee_id.0);
        if self.client_secret.expose().trim().is_empty() {
            v.error("client_secret", "must not be empty");
        }
        v.url("api_base", &self.api_base);
        if self.poll_interval.0 < MIN_POLL_INTERVAL {
            v.error("poll_interval", "must be at least 1s");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: serde_json::Value) -> Result<IntercomParams, String> {
        serde_json::from_value(json).map_err(|e| e.to_string())
    }

    fn issues(p: &IntercomParams) -> Vec<String> {
        let mut v = Validator::new("p");
        p.validate(&mut v);
        v.into_issues().iter().map(|i| i.to_string()).collect()
    }

    #[test]
    fn defaults_and_numeric_assignee() {
        let p = parse(serde_json::json!({
            "app_id": "a86dr8yl", "access_token": "tok", "assignee_id": 991267696,
            "client_secret": "shh"
        }))
        .unwrap();
        assert_eq!(p.assignee_id.0, "991267696");
        assert_eq!(p.api_base, DEFAULT_API_BASE);
        assert_eq!(p.poll_interval.0, Duration::from_secs(60));
        assert!(issues(&p).is_empty(), "{:?}", issues(&p));
        assert!(!format!("{p:?}").contains("tok\""));
        assert!(!format!("{p:?}").contains("shh"));
    }

    #[test]
    fn every_problem_names_its_key() {
        let p = parse(serde_json::json!({
            "app_id": " ", "access_token": "", "assignee_id": "", "client_secret": "",
            "api_base": "ftp://x", "poll_interval": "100ms"
        }))
        .unwrap();
        let keys: Vec<String> = issues(&p)
            .iter()
            .map(|i| i.split(':').next().unwrap().to_owned())
            .collect();
        assert_eq!(
            keys,
            [
                "p.app_id",
                "p.access_token",
                "p.assignee_id",
                "p.client_secret",
                "p.api_base",
                "p.poll_interval"
            ]
        );
    }

    #[test]
    fn base_has_no_trailing_slash() {
        let p = parse(serde_json::json!({
            "app_id": "a", "access_token": "t", "assignee_id": "1", "client_secret": "s",
            "api_base": "http://127.0.0.1:9/"
        }))
        .unwrap();
        assert_eq!(p.base(), "http://127.0.0.1:9");
    }
}
