//! # switchboard-core
//!
//! What every switchboard connector shares, so that the daemon (which depends on the
//! connectors) and the connectors (which cannot depend on the daemon) meet in one place.
//!
//! ## Layout
//! - [`connector`] — the [`Connector`] trait and the request/answer types it handles.
//! - [`context`] — [`ServiceContext`], the [`Host`] storage operations, connection state.
//! - [`model`] — the contract's objects (message, conversation, contact, event).
//! - [`error`] — connector, delivery, webhook and host errors, each saying what to do next.
//! - [`params`] — config value types and the validation report.
//! - [`outbound`] — the HTTP client policy: redirects refused and named, timeouts set.
//! - [`secret`] — [`Secret`], a string that never prints.
//! - [`signing`] — Standard Webhooks signatures.
//! - [`backoff`] — capped exponential backoff with full jitter; `Retry-After` parsing.
//! - `testkit` (feature `testkit`) — a recording host and a fixed clock for unit tests.

pub mod backoff;
pub mod connector;
pub mod context;
pub mod error;
pub mod model;
pub mod outbound;
pub mod params;
pub mod secret;
pub mod signing;
#[cfg(feature = "testkit")]
pub mod testkit;

pub use backoff::Backoff;
pub use connector::{
    Connector, Delivered, EventDelivery, HookAdmission, HookHead, HookRequest, HookResponse,
    OutboundMessage, RetryLimits, SignatureShape, parse_json,
};
pub use context::{
    Clock, ConnState, ContactInfo, CredentialWatch, Host, InboundMessage, Ingested, ServiceContext,
    StatusChange, SystemClock, SystemMessage,
};
pub use error::{ConnectorError, DeliveryError, HookError, HostError};
pub use model::{
    Attachment, Author, AuthorType, Contact, Conversation, ConversationStatus, Direction, Event,
    Message, MessageStatus, Scope,
};
pub use params::{DurationParam, IdString, Issue, Params, Port, Validator};
pub use secret::Secret;
