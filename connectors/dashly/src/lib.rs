//! The `dashly` service type: a Dashly app's conversations through its Web API.
//!
//! Dashly sends no webhooks, so one polling loop is both the live intake and the
//! catch-up after downtime: it lists the conversations changed since a stored cursor
//! and reads the parts of those that moved. Replies go out as the configured admin.
//! Dashly allows 60 requests a minute per key: every request takes a token from that
//! key's budget first, replies ahead of polling.
//!
//! - [`config`] — params.
//! - [`budget`] — the per-key token bucket, with reply priority and 429 pauses.
//! - [`payload`] — the `meta`/`data` envelope, conversations and parts, parsed; which
//!   parts are the visitor's (the inbound parser; no I/O).
//! - [`client`] — every request: the key, the budget, errors from `meta`.
//! - [`poll`] — the intake loop's pass: cursor, floor, changed conversations.
//! - [`reply`] — replies.
//! - [`connector`] — the [`Connector`](switchboard_core::Connector) implementation.
//! - `tests` — the compliance suite.

pub mod budget;
pub mod client;
pub mod config;
pub mod connector;
pub mod payload;
pub mod poll;
pub mod reply;

#[cfg(test)]
mod tests;

pub use config::DashlyParams;
pub use connector::DashlyConnector;

/// The `dashly` service type.
pub struct Dashly;

impl switchboard_core::ServiceType for Dashly {
    const NAME: &'static str = "dashly";
    type Params = DashlyParams;

    fn build(
        params: &DashlyParams,
    ) -> Result<std::sync::Arc<dyn switchboard_core::Connector>, String> {
        Ok(std::sync::Arc::new(DashlyConnector::new(params.clone())?))
    }
}
