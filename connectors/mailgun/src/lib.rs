//! The `mailgun` service type: e-mail through a Mailgun domain. A route forwards each
//! incoming mail to `/hooks/{service_id}` (a form, or multipart when it has files);
//! event webhooks (`delivered`, `failed`, `opened`) go to `/hooks/{service_id}/events`.
//! Both are signed in their bodies with the webhook signing key, and each token passes
//! once. Mails thread by `In-Reply-To`/`References`; replies go out through the
//! Messages API with a Message-Id derived from their idempotency key.
//!
//! - [`config`] — params (`domain`, `api_key`, `signing_key`, `from`, `api_base`).
//! - [`form`] — the posted form, urlencoded or multipart (pure).
//! - [`webhook`] — the signature triple, a forwarded mail, an event's receipt (pure).
//! - [`thread`] — which conversation a mail joins; what a reply needs to stay in it.
//! - [`client`] — the Messages API: the reply's form, errors.
//! - [`connector`] — the [`Connector`](switchboard_core::Connector) tying them together.

pub mod client;
pub mod config;
pub mod connector;
pub mod form;
pub mod thread;
pub mod webhook;

#[cfg(test)]
mod tests;

pub use config::MailgunParams;
pub use connector::MailgunConnector;

/// The `mailgun` service type.
pub struct Mailgun;

impl switchboard_core::ServiceType for Mailgun {
    const NAME: &'static str = "mailgun";
    type Params = MailgunParams;

    fn build(
        params: &MailgunParams,
    ) -> Result<std::sync::Arc<dyn switchboard_core::Connector>, String> {
        Ok(std::sync::Arc::new(MailgunConnector::new(params.clone())?))
    }
}
