//! `[hub]`: where to fetch services from a Web1on1 hub, and as whom. The sync itself is
//! in `crate::hub`.

use std::time::Duration;

use serde::Deserialize;
use switchboard_core::{DurationParam, Issue, Secret, Validator};

/// `[hub]`.
#[derive(Debug, Clone, Deserialize)]
pub struct HubConfig {
    /// The hub's API base, e.g. `https://api.web1on1.chat/v2`.
    pub url: String,
    /// A bot user's non-expiring API token (or `token_file`). Give this or email/password.
    #[serde(default)]
    pub token: Option<Secret>,
    /// A user's e-mail, for `POST /auth/token`.
    #[serde(default)]
    pub email: Option<String>,
    /// That user's password (or `password_file`).
    #[serde(default)]
    pub password: Option<Secret>,
    /// How often the service list is fetched. Default `60s`.
    #[serde(default = "default_sync_interval")]
    pub sync_interval: DurationParam,
    /// Only services of this organization are taken (default: all the hub returns).
    #[serde(default)]
    pub organization: Option<String>,
}

fn default_sync_interval() -> DurationParam {
    DurationParam(Duration::from_secs(60))
}

/// Secret keys of `[hub]` that may be given as `<name>_file`.
pub const SECRETS: &[&str] = &["token", "password"];

impl HubConfig {
    /// Checks what serde cannot.
    pub fn validate(&self) -> Vec<Issue> {
        let mut v = Validator::new("hub");
        v.url("url", &self.url);
        match (&self.token, &self.email, &self.password) {
            (Some(_), None, None) | (None, Some(_), Some(_)) => {}
            (Some(_), _, _) => v.error("token", "give either token or email/password, not both"),
            (None, None, None) => v.error("token", "required (or email and password)"),
            (None, Some(_), None) => v.error("password", "required with email"),
            (None, None, Some(_)) => v.error("email", "required with password"),
        }
        if self.sync_interval.0 < Duration::from_secs(1) {
            v.error("sync_interval", "must be at least 1s");
        }
        v.into_issues()
    }

    /// `{url}{path}`.
    pub fn endpoint(&self, path: &str) -> String {
        format!("{}{}", self.url.trim_end_matches('/'), path)
    }
}
