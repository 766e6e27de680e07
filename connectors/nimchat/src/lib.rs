//! The `nimchat` service type: a Chatwoot-style desk that answers channels'
//! conversations (`desk = "<this id>"` on a channel) through one API-channel inbox.
//!
//! Contacts' messages are mirrored in through the inbox's public client API (contact,
//! conversation, message); agents' and bots' replies come back on `/hooks/{id}` as
//! `message_created` webhooks and go to the contact through the channel. Echoes of what
//! we posted, private notes and activity messages are acknowledged and dropped. With
//! the application API (`account_id` + `api_access_token`), `/v1` agents' replies are
//! mirrored as outgoing messages and failed replies come back as private notes.
//!
//! - [`config`] — params.
//! - [`payload`] — webhook and API wire types.
//! - [`client`] — the client and application APIs.
//! - [`webhook`] — the signature or path-token check and what a body asks, no I/O.
//! - [`mirror`] — mirroring without a second desk conversation or message.
//! - [`connector`] — the [`Connector`](switchboard_core::Connector) implementation.
//! - `tests` — the compliance suite.

pub mod client;
pub mod config;
pub mod connector;
pub mod mirror;
pub mod payload;
pub mod webhook;

#[cfg(test)]
mod tests;

pub use config::NimchatParams;
pub use connector::NimchatConnector;

/// The `nimchat` service type.
pub struct Nimchat;

impl switchboard_core::ServiceType for Nimchat {
    const NAME: &'static str = "nimchat";
    const DESK: bool = true;
    type Params = NimchatParams;

    fn build(
        params: &NimchatParams,
    ) -> Result<std::sync::Arc<dyn switchboard_core::Connector>, String> {
        Ok(std::sync::Arc::new(NimchatConnector::new(params)?))
    }
}
