//! The `haptik` service type: a Haptik bot ("Bot as an API") that answers channels'
//! conversations first (`desk = "<this id>"` on a channel) and hands them to human
//! agents (`handoff = "<desk id>"`) with their transcript.
//!
//! Contacts' messages go to the bot through the Log Message API (`auth_id` = our contact
//! id); the bot's and Haptik agents' answers come back on `/hooks/{id}/{hook_token}` as
//! `message` events and go to the contact through the channel. `chat_pinned` hands the
//! conversation off, `chat_complete` closes it. A pinned chat's history
//! (`get_chat_history` v2.0) fills in answers whose webhook never arrived.
//!
//! - [`config`] — params.
//! - [`payload`] — webhook, history and error wire types, Haptik's timestamp format.
//! - [`client`] — the Log Message, history and send-to-agent APIs and their errors.
//! - [`webhook`] — the path-token check and what a body asks, no I/O.
//! - [`connector`] — the [`Connector`](switchboard_core::Connector) implementation.
//! - `tests` — the compliance suite.

pub mod client;
pub mod config;
pub mod connector;
pub mod payload;
pub mod webhook;

#[cfg(test)]
mod tests;

pub use config::HaptikParams;
pub use connector::HaptikConnector;

/// The `haptik` service type.
pub struct Haptik;

impl switchboard_core::ServiceType for Haptik {
    const NAME: &'static str = "haptik";
    const DESK: bool = true;
    type Params = HaptikParams;

    fn build(
        params: &HaptikParams,
    ) -> Result<std::sync::Arc<dyn switchboard_core::Connector>, String> {
        Ok(std::sync::Arc::new(HaptikConnector::new(params)))
    }
}
