//! The `smartsupp` service type: a SmartSupp account over XMPP. Visitors of a website's
//! chat widget are XMPP contacts of that account; each one-to-one `chat` message becomes
//! an inbound message of the visitor's open conversation, and agents' replies go back as
//! chat messages, marked `sent` once the server acknowledges them (XEP-0198).
//!
//! - [`config`] — params.
//! - [`tls`] — rustls (ring) with the system roots plus `ca_file`.
//! - [`login`] — connect, TLS, SASL, bind, stream management, presence.
//! - [`stanza`] — chat messages to and from switchboard's messages.
//! - [`session`] — the one task that owns a live stream: reads, writes, acknowledgements.
//! - [`connector`] — the reconnect loop and deliveries.
//! - `tests` — the compliance suite's config checks.

pub mod config;
pub mod connector;
pub mod login;
pub mod session;
pub mod stanza;
pub mod tls;

#[cfg(test)]
mod tests;

pub use config::{SmartsuppParams, TlsMode};
pub use connector::SmartsuppConnector;

/// The `smartsupp` service type.
pub struct Smartsupp;

impl switchboard_core::ServiceType for Smartsupp {
    const NAME: &'static str = "smartsupp";
    type Params = SmartsuppParams;

    fn build(
        params: &SmartsuppParams,
    ) -> Result<std::sync::Arc<dyn switchboard_core::Connector>, String> {
        Ok(std::sync::Arc::new(SmartsuppConnector::new(
            params.clone(),
        )?))
    }
}
