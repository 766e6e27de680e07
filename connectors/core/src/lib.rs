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
//! - [`secret`] — [`Secret`], a string that never prints.
//! - [`service_type`] — [`ServiceType`]: a type's name, params, factory and declared
//!   capabilities (tokens, event subscription, desk), and their type-erased form.
//! - [`signing`] — Standard Webhooks signatures.
//! - [`backoff`] — capped exponential backoff with full jitter; `Retry-After` parsing.
//! - `testkit` (feature `testkit`) — a recording host and a fixed clock for unit tests.

pub mod backoff;
pub mod connector;
pub mod context;
pub mod error;
pub mod model;
pub mod params;
pub mod secret;
pub mod service_type;
pub mod signing;
#[cfg(feature = "testkit")]
pub mod testkit;

pub use backoff::Backoff;
pub use connector::{
    Connector, Delivered, EventDelivery, HookRequest, HookResponse, OutboundMessage, RetryLimits,
    parse_json,
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
pub use service_type::{AnyParams, EventSubscription, GrantedToken, Registered, ServiceType};
