//! Test kit for the twilio end-to-end tests.
//!
//! - [`api`] — the fake Twilio REST API.
//! - [`requests`] — Twilio's side of webhooks: payloads and signatures.
//! - [`daemon`] — starting switchboard and reading what it stored.
#![allow(dead_code, unused_imports)]

pub mod api;
pub mod daemon;
pub mod requests;

pub use api::*;
pub use daemon::*;
pub use requests::*;
