//! The `webhook` service type: every event of its organization, filtered by `events`,
//! POSTed to `url` through the durable outbox and signed per the Standard Webhooks spec.
//!
//! - [`config`] — params.
//! - [`client`] — the signed POST and its answer.
//! - [`connector`] — the running service.
//! - `tests` — config, signature and retry classification.

pub mod client;
pub mod config;
pub mod connector;

#[cfg(test)]
mod tests;

pub use config::WebhookParams;
pub use connector::WebhookConnector;

use std::sync::Arc;

use switchboard_core::{Connector, EventSubscription, ServiceType};

/// The `webhook` service type. It subscribes to its organization's events.
pub struct Webhook;

impl ServiceType for Webhook {
    const NAME: &'static str = "webhook";
    type Params = WebhookParams;

    fn build(params: &WebhookParams) -> Result<Arc<dyn Connector>, String> {
        Ok(Arc::new(WebhookConnector::new(params.clone())?))
    }

    fn subscription(params: &WebhookParams) -> Option<EventSubscription> {
        Some(EventSubscription::types(params.events.clone()))
    }
}
