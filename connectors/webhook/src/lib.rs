//! The `webhook` service type: every event of its organization, filtered by `events`,
//! POSTed to `url` through the durable outbox and signed per the Standard Webhooks spec.
//!
//! - [`config`] — params.
//! - [`connector`] — delivery.

pub mod config;
pub mod connector;

pub use config::WebhookParams;
pub use connector::WebhookConnector;
