//! The `api` service type: remote systems and agents' tools talk to switchboard over REST
//! and the event stream with this service's bearer tokens; a remote system can post
//! inbound messages to it, and receives the replies to its conversations at
//! `callback_url`, signed like webhooks — a full two-way channel.
//!
//! - [`config`] — params (tokens with scopes, callback).
//! - [`connector`] — callback delivery.

pub mod config;
pub mod connector;

pub use config::{ApiParams, TokenConfig};
pub use connector::ApiConnector;
pub use switchboard_core::Scope;
