//! The `messenger` service type: a Facebook Page's Messenger inbox. Facebook verifies
//! the webhook with a `GET` (`hub.challenge`), then POSTs `entry[].messaging[]` batches
//! signed with the app secret (`X-Hub-Signature-256`); replies go out through the Graph
//! Send API with the page access token, and `delivery`/`read` watermarks move them
//! forward.
//!
//! - [`config`] — params (`page_id`, `page_access_token`, `app_secret`, `verify_token`,
//!   `api_version`, `api_base`).
//! - [`webhook`] — the verification query and webhook bodies, parsed (pure).
//! - [`client`] — the Send API: request bodies, errors by Graph code.
//! - [`connector`] — the [`Connector`](switchboard_core::Connector) tying them together.

pub mod client;
pub mod config;
pub mod connector;
pub mod webhook;

#[cfg(test)]
mod tests;

pub use config::MessengerParams;
pub use connector::MessengerConnector;

/// The `messenger` service type.
pub struct Messenger;

impl switchboard_core::ServiceType for Messenger {
    const NAME: &'static str = "messenger";
    type Params = MessengerParams;

    fn build(
        params: &MessengerParams,
    ) -> Result<std::sync::Arc<dyn switchboard_core::Connector>, String> {
        Ok(std::sync::Arc::new(MessengerConnector::new(
            params.clone(),
        )?))
    }
}
