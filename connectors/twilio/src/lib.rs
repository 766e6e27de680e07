//! The `twilio` service type: SMS and WhatsApp messages in through Twilio's signed
//! webhooks, replies out through the Messages API, delivery status from Twilio's status
//! callbacks.
//!
//! - [`config`] — params (account, auth token, sender, API base).
//! - [`signature`] — `X-Twilio-Signature` (HMAC-SHA1 over URL and sorted form fields).
//! - [`webhook`] — inbound messages and status callbacks, parsed.
//! - [`client`] — the REST API: create a message, check the credentials, read errors.
//! - [`connector`] — the running service.

pub mod client;
pub mod config;
pub mod connector;
pub mod signature;
pub mod webhook;

pub use config::TwilioParams;
pub use connector::TwilioConnector;
