//! `[services.<id>.params]` of a `haptik` service.

use serde::Deserialize;
use switchboard_core::{IdString, Params, Secret, Validator};

/// One Haptik bot's "Bot as an API" integration.
#[derive(Debug, Clone, Deserialize)]
pub struct HaptikParams {
    /// The base URL Haptik gives at integration, e.g. `https://messenger.haptikapi.com`.
    /// Required.
    pub base_url: String,
    /// The Business Manager's token (or `token_file`), sent as `Authorization: Bearer`.
    /// Required.
    pub token: Secret,
    /// The `client-id` header (Conversation Studio → View Credentials). Required.
    pub client_id: String,
    /// The numeric id of the bot's channel (business). Required.
    pub business_id: IdString,
    /// A team of Haptik's own agents. With it, a `chat_pinned` chat stays at Haptik,
    /// whose agents answer it there (their answers arrive as agents' messages), and
    /// [`crate::client::Client::send_chat_to_agent`] can queue a chat for that team.
    #[serde(default)]
    pub team_name: Option<String>,
    /// The secret last segment of the webhook URL, `/hooks/{id}/{hook_token}` (or
    /// `hook_token_file`), at least 24 characters: Haptik signs nothing. Required.
    pub hook_token: Secret,
}

/// Shortest accepted `hook_token`: it is the hook's only credential.
pub const MIN_HOOK_TOKEN: usize = 24;

impl HaptikParams {
    /// `base_url` without a trailing slash, ready for paths to be appended.
    pub fn base(&self) -> &str {
        self.base_url.trim_end_matches('/')
    }
}

impl Params for HaptikParams {
    const SECRETS: &'static [&'static str] = &["token", "hook_token"];

    fn validate(&self, v: &mut Validator) {
        v.url("base_url", &self.base_url);
        if self.token.expose().trim().is_empty() {
            v.error("token", "must not be empty");
        }
        v.non_empty("client_id", &self.client_id);
        if !self.business_id.0.bytes().all(|b| b.is_ascii_digit()) || self.business_id.0.is_empty()
        {
            v.error("business_id", "must be Haptik's numeric business id");
        }
        if self.team_name.as_ref().is_some_and(|t| t.trim().is_empty()) {
            v.error("team_name", "must not be empty");
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
