//! `[services.<id>.params]` of a `mailgun` service: one Mailgun sending domain, the
//! key that sends through it, the key that signs its webhooks, and our address.

use serde::Deserialize;
use switchboard_core::{Params, Secret, Validator};

/// Mailgun's API in the US region; the EU region is `https://api.eu.mailgun.net`.
pub const DEFAULT_API_BASE: &str = "https://api.mailgun.net";

/// A Mailgun domain's mailbox.
#[derive(Debug, Clone, Deserialize)]
pub struct MailgunParams {
    /// The sending domain (`mg.example.com`): the `{domain}` of the send path, and the
    /// right-hand side of the Message-Ids we generate. Required.
    pub domain: String,
    /// The API key replies are sent with, as Basic `api:<key>` (or `api_key_file`).
    /// Required.
    pub api_key: Secret,
    /// The HTTP webhook signing key that signs routes' forwards and event webhooks (or
    /// `signing_key_file`). Required.
    pub signing_key: Secret,
    /// Our address, as replies show it: `Support <support@mg.example.com>`. Required.
    pub from: String,
    /// Base URL of the Mailgun API. Default `https://api.mailgun.net`.
    #[serde(default = "default_api_base")]
    pub api_base: String,
}

fn default_api_base() -> String {
    DEFAULT_API_BASE.to_owned()
}

impl Params for MailgunParams {
    const SECRETS: &'static [&'static str] = &["api_key", "signing_key"];

    fn validate(&self, v: &mut Validator) {
        let d = self.domain.trim();
        if d.is_empty() {
            v.error("domain", "must not be empty");
        } else if !d.contains('.') || d.contains(['/', '@', ' ', '<', '>']) {
            v.error(
                "domain",
                format!("expected a domain name like mg.example.com, got {d:?}"),
            );
        }
        for (key, secret) in [
            ("api_key", &self.api_key),
            ("signing_key", &self.signing_key),
        ] {
            if secret.expose().trim().is_empty() {
                v.error(key, "must not be empty");
            }
        }
        if crate::webhook::address(&self.from).is_none() {
            v.error(
                "from",
                format!(
                    "expected an address like \"Support <support@{d}>\", got {:?}",
                    self.from
                ),
            );
        }
        v.api_base("api_base", &self.api_base);
    }
}
