//! The `gbm` service type: Google Business Messages. **Google shut the product down on
//! 2024-07-31**; Web1on1 still offers the type (docs/web1on1.md), so this connector follows the last
//! published API (Business Messages v1) and is kept small.
//!
//! Google POSTs each user message, typing signal and receipt to `/hooks/{service_id}`,
//! signed with `X-Goog-Signature` (base64 HMAC-SHA512 of the body, keyed with the
//! partner's client token); the webhook-setup request (`{clientToken, secret}`) is
//! answered by echoing the secret. New conversations are greeted with `welcomeMessage`,
//! and a contact who writes outside the opening hours gets `offlineMessage` once.
//! Replies go out through `conversations.messages.create` with an OAuth 2.0 access
//! token from the service-account key (RS256 JWT grant), cached until near expiry.
//!
//! - [`config`] — params (Web1on1's, plus credentials and endpoints).
//! - [`hours`] — the opening-hours window, a pure function of local time.
//! - [`webhook`] — signature, setup request, and `UserMessage` payloads.
//! - [`auth`] — the service-account key, the JWT grant, the token cache.
//! - [`client`] — request bodies, `messageId`s, error classification.
//! - [`connector`] — the [`Connector`](switchboard_core::Connector) tying them together.

pub mod auth;
pub mod client;
pub mod config;
pub mod connector;
pub mod hours;
pub mod webhook;

#[cfg(test)]
mod tests;

pub use config::GbmParams;
pub use connector::GbmConnector;

/// The `gbm` service type.
pub struct Gbm;

impl switchboard_core::ServiceType for Gbm {
    const NAME: &'static str = "gbm";
    type Params = GbmParams;

    fn build(
        params: &GbmParams,
    ) -> Result<std::sync::Arc<dyn switchboard_core::Connector>, String> {
        Ok(std::sync::Arc::new(GbmConnector::new(params.clone())?))
    }
}
