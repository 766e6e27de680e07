//! The `askhandle` service type: an AskHandle bot that answers channels' conversations
//! first (`desk = "<this id>"` on a channel) and hands them to human agents
//! (`handoff = "<desk id>"`) with their transcript.
//!
//! Each of our conversations is an AskHandle room, created on its first mirrored message
//! (label `switchboard-<conversation id>`, so that a retry finds it) and linked by its
//! uuid. Contacts' messages are posted to the room; the bot's and support's answers come
//! back as `message.added` webhooks (`is_support_sender: true`; our own posts come back
//! with `false` and are skipped). A room switched away from bot use hands off. The
//! webhooks are registered at start-up and re-registered when one disappears; after
//! downtime, the answers of linked rooms are caught up.
//!
//! - [`config`] — params.
//! - [`payload`] — AskHandle's objects and the webhook envelope.
//! - [`client`] — the REST API, with token or username/password auth.
//! - [`webhook`] — the path-token check and what a body asks, no I/O.
//! - [`rooms`] — mirroring into rooms, subscriptions and catch-up.
//! - [`connector`] — the [`Connector`](switchboard_core::Connector) implementation.
//! - `tests` — the compliance suite.

pub mod client;
pub mod config;
pub mod connector;
pub mod payload;
pub mod rooms;
pub mod webhook;

#[cfg(test)]
mod tests;

pub use config::AskHandleParams;
pub use connector::AskHandleConnector;

/// The `askhandle` service type.
pub struct AskHandle;

impl switchboard_core::ServiceType for AskHandle {
    const NAME: &'static str = "askhandle";
    const DESK: bool = true;
    type Params = AskHandleParams;

    fn build(
        params: &AskHandleParams,
    ) -> Result<std::sync::Arc<dyn switchboard_core::Connector>, String> {
        Ok(std::sync::Arc::new(AskHandleConnector::new(params)))
    }
}
