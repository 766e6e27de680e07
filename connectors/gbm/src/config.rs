//! `[services.<id>.params]` of a `gbm` service. The camel-case names are Web1on1's
//! (docs/web1on1.md); each also has a lower-case alias because environment overrides arrive
//! lower-cased when the file does not already spell the key.

use jiff::tz::TimeZone;
use serde::Deserialize;
use switchboard_core::{Params, Secret, Validator};

use crate::auth::ServiceAccount;
use crate::hours::{ClockTime, Day, Window};

/// The Business Messages API.
pub const DEFAULT_API_BASE: &str = "https://businessmessages.googleapis.com";
/// Google's OAuth 2.0 token endpoint, when the service-account key names none.
pub const DEFAULT_TOKEN_URL: &str = "https://oauth2.googleapis.com/token";
/// The out-of-hours answer when `offlineMessage` is not set.
pub const DEFAULT_OFFLINE_MESSAGE: &str = "Thank you for your message. We are not available right now; we will answer as soon as we are back.";

/// A Business Messages agent and the credentials to answer through it.
#[derive(Debug, Clone, Deserialize)]
pub struct GbmParams {
    /// The Web1on1 location id (a location in its knowledge base). Required;
    /// switchboard only keeps it, the agent's setup at Google uses it.
    pub location: String,
    /// The greeting sent into every new conversation, as a `system` message. Required.
    #[serde(rename = "welcomeMessage", alias = "welcomemessage")]
    pub welcome_message: String,
    /// The conversation starter. Required; it is part of the agent's setup at
    /// Google (shown before the user writes), so switchboard only keeps it.
    pub starter: String,
    /// URL of the brand's privacy policy, for the agent's setup. Default: none.
    #[serde(default)]
    pub privacy: Option<String>,
    /// Opening time each open day, `"HH:MM"`. Default `"00:00"`.
    #[serde(rename = "startTime", alias = "starttime", default = "day_start")]
    pub start_time: ClockTime,
    /// Closing time, `"HH:MM"`, inclusive of that minute; before `startTime` it runs
    /// past midnight. Default `"23:59"`.
    #[serde(rename = "endTime", alias = "endtime", default = "day_end")]
    pub end_time: ClockTime,
    /// First open day, `"MONDAY"` … `"SUNDAY"`. Default `"MONDAY"`.
    #[serde(rename = "startDay", alias = "startday", default = "monday")]
    pub start_day: Day,
    /// Last open day; may wrap past Sunday (`FRIDAY`–`MONDAY`). Default `"SUNDAY"`.
    #[serde(rename = "endDay", alias = "endday", default = "sunday")]
    pub end_day: Day,
    /// Web1on1's setup-flow step (`verifyAgent`, `verifyLocation`, `launchAgent`,
    /// `launchLocation`): accepted and checked, no behaviour here. Default: none.
    #[serde(default)]
    pub step: Option<Step>,
    /// Sent once per conversation when a contact writes outside the opening hours.
    /// Default: "Thank you for your message. We are not available right now; we will
    /// answer as soon as we are back."
    #[serde(
        rename = "offlineMessage",
        alias = "offlinemessage",
        default = "default_offline"
    )]
    pub offline_message: String,
    /// IANA time zone of the opening hours. Default `"Europe/Amsterdam"`.
    #[serde(default = "default_timezone")]
    pub timezone: String,
    /// The partner's client token from the Business Communications console (or
    /// `client_token_file`). Required: it keys the `X-Goog-Signature` HMAC and is what
    /// Google's webhook-setup request presents.
    pub client_token: Secret,
    /// The service-account key JSON (normally given as `service_account_file`, a path
    /// read when the config is loaded). Required: replies are authorized with it.
    pub service_account: Secret,
    /// Base URL of the Business Messages API. Default
    /// `https://businessmessages.googleapis.com`.
    #[serde(default = "default_api_base")]
    pub api_base: String,
    /// OAuth 2.0 token endpoint, also the JWT's audience. Default: the key file's
    /// `token_uri`, else `https://oauth2.googleapis.com/token`.
    #[serde(default)]
    pub token_url: Option<String>,
}

/// Web1on1's setup-flow steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub enum Step {
    /// Verify the agent with Google.
    VerifyAgent,
    /// Verify the location.
    VerifyLocation,
    /// Launch the agent.
    LaunchAgent,
    /// Launch the location.
    LaunchLocation,
}

switchboard_core::string_enum!(Step {
    VerifyAgent = "verifyAgent",
    VerifyLocation = "verifyLocation",
    LaunchAgent = "launchAgent",
    LaunchLocation = "launchLocation",
});

fn day_start() -> ClockTime {
    ClockTime::new(0, 0).expect("a valid time")
}

fn day_end() -> ClockTime {
    ClockTime::new(23, 59).expect("a valid time")
}

fn monday() -> Day {
    Day(jiff::civil::Weekday::Monday)
}

fn sunday() -> Day {
    Day(jiff::civil::Weekday::Sunday)
}

fn default_offline() -> String {
    DEFAULT_OFFLINE_MESSAGE.to_owned()
}

fn default_timezone() -> String {
    "Europe/Amsterdam".to_owned()
}

fn default_api_base() -> String {
    DEFAULT_API_BASE.to_owned()
}

impl GbmParams {
    /// The opening hours.
    pub fn window(&self) -> Window {
        Window {
            start_day: self.start_day.0,
            end_day: self.end_day.0,
            start: self.start_time,
            end: self.end_time,
        }
    }

    /// The time zone of the opening hours.
    pub fn time_zone(&self) -> Result<TimeZone, String> {
        TimeZone::get(self.timezone.trim()).map_err(|_| {
            format!(
                "unknown time zone {:?}; expected an IANA name such as \"Europe/Amsterdam\"",
                self.timezone
            )
        })
    }

    /// The token endpoint: `token_url`, else the key's `token_uri`, else Google's.
    pub fn token_url(&self, account: &ServiceAccount) -> String {
        self.token_url
            .clone()
            .or_else(|| account.token_uri.clone())
            .unwrap_or_else(|| DEFAULT_TOKEN_URL.to_owned())
    }
}

impl Params for GbmParams {
    const SECRETS: &'static [&'static str] = &["client_token", "service_account"];

    fn validate(&self, v: &mut Validator) {
        v.non_empty("location", &self.location);
        v.non_empty("welcomeMessage", &self.welcome_message);
        v.non_empty("starter", &self.starter);
        v.non_empty("offlineMessage", &self.offline_message);
        if let Some(p) = &self.privacy {
            v.url("privacy", p);
        }
        if let Err(e) = self.time_zone() {
            v.error("timezone", e);
        }
        if self.client_token.expose().trim().is_empty() {
            v.error("client_token", "must not be empty");
        }
        match ServiceAccount::parse(&self.service_account) {
            Ok(account) => {
                if self.token_url.is_none() {
                    // The key file's token_uri becomes the endpoint: check it as such.
                    let url = self.token_url(&account);
                    let mut inner = Validator::new("");
                    inner.url("token_uri", &url);
                    for issue in inner.into_issues() {
                        v.error("service_account", format!("the key's {issue}"));
                    }
                }
            }
            Err(e) => v.error("service_account", e),
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
        if let Some(t) = &self.token_url {
            v.url("token_url", t);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::tests::{TestKey, service_account_json};

    fn issues(p: &GbmParams) -> Vec<String> {
        let mut v = Validator::new("services.g.params");
        p.validate(&mut v);
        v.into_issues().iter().map(|i| i.to_string()).collect()
    }

    #[test]
    fn seed_names_aliases_and_defaults() {
        let key = TestKey::get();
        let sa = service_account_json(&key.pem, None);
        let p: GbmParams = serde_json::from_value(serde_json::json!({
            "location": "5876bc219b9d2b54a0c464c9", "privacy": "https://web1on1.chat/privacy",
            "welcomeMessage": "Welcome", "starter": "Hello", "startTime": "00:00",
            "endTime": "23:59", "startDay": "MONDAY", "endDay": "SUNDAY", "step": "verifyAgent",
            "client_token": "ct", "service_account": sa,
        }))
        .unwrap();
        assert_eq!(p.welcome_message, "Welcome");
        assert_eq!(p.step, Some(Step::VerifyAgent));
        assert_eq!(p.offline_message, DEFAULT_OFFLINE_MESSAGE);
        assert_eq!(p.timezone, "Europe/Amsterdam");
        assert_eq!(p.api_base, DEFAULT_API_BASE);
        assert_eq!(issues(&p), Vec::<String>::new());
        let account = ServiceAccount::parse(&p.service_account).unwrap();
        assert_eq!(p.token_url(&account), DEFAULT_TOKEN_URL);
        let dbg = format!("{p:?}");
        assert!(
            !dbg.contains("PRIVATE KEY") && !dbg.contains("\"ct\""),
            "{dbg}"
        );

        let lower: GbmParams = serde_json::from_value(serde_json::json!({
            "location": "l", "welcomemessage": "W", "starter": "s", "starttime": "09:00",
            "endtime": "17:30", "startday": "monday", "endday": "friday",
            "offlinemessage": "Closed", "client_token": "ct", "service_account": sa,
            "token_url": "http://127.0.0.1:9/token",
        }))
        .unwrap();
        assert_eq!(lower.welcome_message, "W");
        assert_eq!(lower.offline_message, "Closed");
        assert_eq!(lower.end_time.to_string(), "17:30");
        assert_eq!(lower.token_url(&account), "http://127.0.0.1:9/token");
        assert_eq!(issues(&lower), Vec::<String>::new());
    }

    #[test]
    fn the_key_files_token_uri_is_the_default_endpoint() {
        let key = TestKey::get();
        let sa = service_account_json(&key.pem, Some("http://127.0.0.1:7/token"));
        let p: GbmParams = serde_json::from_value(serde_json::json!({
            "location": "l", "welcomeMessage": "W", "starter": "s",
            "client_token": "ct", "service_account": sa,
        }))
        .unwrap();
        let account = ServiceAccount::parse(&p.service_account).unwrap();
        assert_eq!(p.token_url(&account), "http://127.0.0.1:7/token");
    }

    #[test]
    fn problems_name_their_key_and_never_the_key_material() {
        let bad_values = serde_json::from_value::<GbmParams>(serde_json::json!({
            "location": "l", "welcomeMessage": "W", "starter": "s", "startTime": "9am",
            "client_token": "ct", "service_account": "{}",
        }))
        .unwrap_err()
        .to_string();
        assert!(
            bad_values.contains("expected a time \"HH:MM\""),
            "{bad_values}"
        );
        assert!(
            serde_json::from_value::<GbmParams>(serde_json::json!({
                "location": "l", "welcomeMessage": "W", "starter": "s", "step": "launch",
                "client_token": "ct", "service_account": "{}",
            }))
            .unwrap_err()
            .to_string()
            .contains("expected one of verifyAgent, verifyLocation, launchAgent, launchLocation")
        );

        let p: GbmParams = serde_json::from_value(serde_json::json!({
            "location": " ", "welcomeMessage": "", "starter": "s", "privacy": "privacy.html",
            "timezone": "Mars/Olympus", "client_token": "", "service_account": "{\"type\": 1",
            "api_base": "ftp://x", "token_url": "nowhere",
        }))
        .unwrap();
        let found = issues(&p);
        let keys: Vec<&str> = found
            .iter()
            .map(|i| {
                i.split(':')
                    .next()
                    .unwrap()
                    .trim_start_matches("services.g.params.")
            })
            .collect();
        assert_eq!(
            keys,
            [
                "location",
                "welcomeMessage",
                "privacy",
                "timezone",
                "client_token",
                "service_account",
                "api_base",
                "token_url"
            ],
            "{found:#?}"
        );
        assert!(found[5].contains("not JSON"), "{}", found[5]);
    }
}
