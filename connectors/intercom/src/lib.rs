//! The `intercom` service type: Intercom conversations in and out.
//!
//! Contacts' messages arrive as signed notifications on `/hooks/{id}`; because Intercom
//! does not replay notifications missed while we were down, a poller also searches the
//! conversations updated since a stored cursor and ingests what is not stored yet (the
//! part id is the dedupe key, so both paths meet without duplicates). Replies go out as
//! admin comments on behalf of `assignee_id`.
//!
//! - [`config`] — params.
//! - [`html`] — Intercom's HTML bodies as readable text plus image URLs.
//! - [`payload`] — notification and conversation wire types; which parts are the contact's.
//! - [`client`] — the REST API: auth headers, version pinning, rate limits, errors.
//! - [`webhook`] — the signature check and notifications parsed, no I/O.
//! - [`reply`] — replies, without double posts after an unknown outcome.
//! - [`catchup`] — the cursor-driven poller.
//! - [`connector`] — the [`Connector`](switchboard_core::Connector) implementation.
//! - `tests` — the compliance suite.

pub mod catchup;
pub mod client;
pub mod config;
pub mod connector;
pub mod html;
pub mod payload;
pub mod reply;
pub mod webhook;

#[cfg(test)]
mod tests;

pub use config::IntercomParams;
pub use connector::IntercomConnector;

/// The `intercom` service type.
pub struct Intercom;

impl switchboard_core::ServiceType for Intercom {
    const NAME: &'static str = "intercom";
    type Params = IntercomParams;

    fn build(
        params: &IntercomParams,
    ) -> Result<std::sync::Arc<dyn switchboard_core::Connector>, String> {
        Ok(std::sync::Arc::new(IntercomConnector::new(params.clone())?))
    }
}
