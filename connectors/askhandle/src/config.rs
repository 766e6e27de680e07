//! `[services.<id>.params]` of an `askhandle` service.

use serde::Deserialize;
use switchboard_core::{Params, Secret, Validator};

/// One AskHandle account.
#[derive(Debug, Clone, Deserialize)]
pub struct AskHandleParams {
    /// The API's base URL.
    #[serde(default = "default_api_base")]
    pub api_base: String,
    /// An API key (or `token_file`), sent as `Authorization: Token <key>`. Either this
    /// or `username` + `password`.
    #[serde(default)]
    pub token: Option<Secret>,
    /// A dashboard user, whose key is fetched from `/api/v1/auth/api-token` (again once
    /// when a request is refused with 401).
    #[serde(default)]
    pub username: Option<String>,
    /// That user's password (or `password_file`).
    #[serde(default)]
    pub password: Option<Secret>,
    /// The secret last segment of the webhook URL, `/hooks/{id}/{hook_token}` (or
    /// `hook_token_file`), at least 24 characters: AskHandle signs nothing. Required.
    pub hook_token: Secret,
}

fn default_api_base() -> String {
    "https://dashboard.askhandle.com".into()
}

/// Shortest accepted `hook_token`: it is the hook's only credential.
pub const MIN_HOOK_TOKEN: usize = 24;

impl AskHandleParams {
    /// `api_base` without a trailing slash.
    pub fn base(&self) -> &str {
        self.api_base.trim_end_matches('/')
    }
}

impl Params for AskHandleParams {
    const SECRETS: &'static [&'static str] = &["token", "password", "hook_token"];

    fn validate(&self, v: &mut Validator) {
        v.url("api_base", &self.api_base);
        if self
            .token
            .as_ref()
            .is_some_and(|t| t.expose().trim().is_empty())
        {
            v.error("token", "must not be empty");
        }
        match (&self.token, &self.username, &self.password) {
            (Some(_), None, None) => {}
            (Some(_), _, _) => v.error("token", "set either token or username + password"),
            (None, Some(u), Some(p)) => {
                if u.trim().is_empty() {
                    v.error("username", "must not be empty");
                }
                if p.expose().is_empty() {
                    v.error("password", "must not be empty");
                }
            }
            (None, Some(_), None) => v.error("password", "is required with username"),
            (None, None, Some(_)) => v.error("username", "is required with password"),
            (None, None, None) => {
                v.error("token", "one of token and username + password is required")
            }
        }
        let t = self.hook_token.expose();
        if t.len() < MIN_HOOK_TOKEN
            || !t
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b))
        {
            v.error(
                "hook_token",
                format!("must be at least {MIN_HOOK_TOKEN} characters of A-Z, a-z, 0-9, - and _"),
            );
        }
    }
}
