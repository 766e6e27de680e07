//! Issue 14, "Hardening": each item reproduced against the real binary on loopback and
//! shown fixed, bounded in time. CI-sized by default; `HARDENING_FULL=1` runs the
//! full-size attacks whose figures are in docs/hardening.md.
//!
//! - `attacks` — items 1 and 3: hook bodies, h2c, slowloris, idle sockets, caps.
//! - `outbound` — item 2: redirects refused and named; timeouts named.
//! - `stream` — item 4: `/v1/events` clients that never read.
//! - `tenancy` — items 5 and 6: token lifecycle, organization changes refused.
//! - `bodies` — item 1 in detail: head checks per provider, body timeout, budget.
//! - `config_cases` — items 8-11: environment, durations, numbers, `after=0`.

#![cfg(feature = "api")]

mod common;
#[cfg(feature = "gbm")]
#[path = "fakes/gbm.rs"]
mod gbm_kit;

#[path = "hardening/kit.rs"]
mod kit;

#[cfg(all(feature = "smooch", feature = "twilio"))]
#[path = "hardening/attacks.rs"]
mod attacks;

#[cfg(feature = "webhook")]
#[path = "hardening/outbound.rs"]
mod outbound;

#[path = "hardening/stream.rs"]
mod stream;

#[path = "hardening/tenancy.rs"]
mod tenancy;

#[cfg(all(
    feature = "smooch",
    feature = "intercom",
    feature = "gbm",
    feature = "twilio"
))]
#[path = "hardening/bodies.rs"]
mod bodies;

#[path = "hardening/config_cases.rs"]
mod config_cases;
