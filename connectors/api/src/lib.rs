//! The `api` service type: remote systems and agents' tools talk to switchboard over REST
//! and the event stream with this service's bearer tokens; a remote system can post
//! inbound messages to it, and receives the replies to its conversations at
//! `callback_url`, signed like webhooks — a full two-way channel.
//!
//! - [`config`] — params (tokens with scopes, callback).
//! - [`client`] — the signed callback and its answer.
//! - [`connector`] — the running service.
//! - `tests` — the compliance suite and the callback's signature.

pub mod client;
pub mod config;
pub mod connector;

#[cfg(test)]
mod tests;

pub use config::{ApiParams, TokenConfig};
pub use connector::ApiConnector;
pub use switchboard_core::Scope;

use std::sync::Arc;

use switchboard_core::{Connector, GrantedToken, ServiceType};

/// The `api` service type. It grants the bearer tokens of `/v1`.
pub struct Api;

impl ServiceType for Api {
    const NAME: &'static str = "api";
    type Params = ApiParams;

    fn build(params: &ApiParams) -> Result<Arc<dyn Connector>, String> {
        Ok(Arc::new(ApiConnector::new(params.clone())?))
    }

    fn tokens(params: &ApiParams) -> Vec<GrantedToken> {
        params
            .tokens
            .iter()
            .map(|(name, t)| GrantedToken {
                name: name.clone(),
                key: format!("tokens.{name}.token"),
                token: t.token.clone(),
                scopes: t.scopes.clone(),
            })
            .collect()
    }
}
