//! # switchboard
//!
//! A daemon that bridges the chat tools a business already uses (SmartSupp over XMPP,
//! Twilio, Smooch, Intercom, Google Business Messages, …) into one place where its agents
//! and bots answer, without ever losing or duplicating a customer's message.
//!
//! ## Layout
//! - [`cli`] — the command line; [`daemon`]: `run`; [`services_cmd`]: `services`;
//!   [`deliveries_cmd`]: `deliveries list|retry`.
//! - [`config`] — typed config from TOML, environment and secret files, fully validated.
//! - [`registry`] — the one list of compiled-in service types.
//! - [`app`] — shared state and API tokens; [`host`]: each service's
//!   [`switchboard_core::Host`].
//! - [`hub`] — services from a Web1on1 hub, merged with the config.
//! - [`cluster`] — several instances on one PostgreSQL database: leases decide which
//!   instance runs each service, the hub sync and housekeeping.
//! - [`supervisor`] — runs each service's connection with backoff, in its own span.
//! - [`dispatch`] — drains each service's outbox in per-conversation order.
//! - [`housekeeping`] — event retention and other pruning, off the hot path.
//! - [`store`] — SQLite: migrations, the group-commit writer, reads.
//! - [`http`] — the HTTP surface: health, metrics, provider hooks, `/v1`, the event stream.
//! - [`metrics`], [`telemetry`], [`notify`] — Prometheus metrics, logging, systemd.
//!
//! Connectors live in `connectors/<type>/`, each a crate behind a Cargo feature; the
//! trait they implement is in `connectors/core`.

pub mod app;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod daemon;
pub mod deliveries_cmd;
pub mod dispatch;
pub mod host;
pub mod housekeeping;
pub mod http;
pub mod hub;
pub mod metrics;
pub mod notify;
pub mod registry;
pub mod services_cmd;
pub mod store;
pub mod supervisor;
pub mod telemetry;
