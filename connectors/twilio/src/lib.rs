//! The `twilio` service type: SMS and WhatsApp messages in through Twilio's signed
//! webhooks, replies out through the Messages API, delivery status from Twilio's status
//! callbacks.
//!
//! - [`config`] — params (account, auth token, sender, API base).
//! - [`signature`] — `X-Twilio-Signature` (HMAC-SHA1 over URL and sorted form fields).
//! - [`webhook`] — inbound messages and status callbacks, parsed; the TwiML answer.
//! - [`client`] — the REST API: create a message, check the credentials, read errors.
//! - [`connector`] — the running service.
//! - `tests` — unit tests.

pub mod client;
pub mod config;
pub mod connector;
pub mod signature;
pub mod webhook;

#[cfg(test)]
mod tests;

pub use config::TwilioParams;
pub use connector::TwilioConnector;

/// The `twilio` service type.
pub struct Twilio;

impl switchboard_core::ServiceType for Twilio {
    const NAME: &'static str = "twilio";
    type Params = TwilioParams;

    fn build(
        params: &TwilioParams,
    ) -> Result<std::sync::Arc<dyn switchboard_core::Connector>, String> {
        Ok(std::sync::Arc::new(TwilioConnector::new(params.clone())?))
    }
}
