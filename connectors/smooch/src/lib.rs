//! The `smooch` service type: Smooch / Sunshine Conversations. Sunshine POSTs v2
//! (`events[]`) or v1.1 (`trigger`) webhooks to `/hooks/{service_id}`, authenticated by
//! the webhook's shared secret in `X-API-Key`; replies go out through the v2 Messages API
//! with Basic `keyId:secret`, and delivery events move their status forward.
//!
//! - [`config`] — params (`appId`, `keyId`, `secret`, `webhook_secret`, `api_base`).
//! - [`webhook`] — turns a webhook body into inbound messages and receipts.
//! - [`client`] — the Post Message request bodies and error classification.
//! - [`connector`] — the [`Connector`](switchboard_core::Connector) tying them together.

pub mod client;
pub mod config;
pub mod connector;
pub mod webhook;

#[cfg(test)]
mod tests;

pub use config::SmoochParams;
pub use connector::SmoochConnector;

/// The `smooch` service type.
pub struct Smooch;

impl switchboard_core::ServiceType for Smooch {
    const NAME: &'static str = "smooch";
    type Params = SmoochParams;

    fn build(
        params: &SmoochParams,
    ) -> Result<std::sync::Arc<dyn switchboard_core::Connector>, String> {
        Ok(std::sync::Arc::new(SmoochConnector::new(params.clone())?))
    }
}
