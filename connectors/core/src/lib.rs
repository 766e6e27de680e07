//! # switchboard-core
//!
//! What every switchboard connector shares, so that the daemon (which depends on the
//! connectors) and the connectors (which cannot depend on the daemon) meet in one place.
//!
//! ## Layout
//! - [`service_type`] — [`ServiceType`]: a type's name, params, factory and declared
//!   capabilities (tokens, event subscription, desk), and their type-erased form.
//! - [`connector`] — the [`Connector`] core and its capabilities: [`Hooks`], [`Channel`],
//!   [`EventSink`].
//! - [`hook`] — a hook request, its answer, and the JSON body parser.
//! - [`context`] — [`ServiceContext`], connection state, the clock, [`CredentialWatch`].
//! - [`host`] — the [`Host`] operations (ingest, receipts, replies, desk links, sync
//!   state) and what they take and give.
//! - [`mac`] — hex HMAC-SHA256 signatures checked in constant time.
//! - [`model`] — the objects clients see (message, conversation, contact).
//! - [`event`] — events with their data typed by event type.
//! - [`webhook_channel`] — the webhook-channel helper: a channel supplies `verify` and
//!   `parse`, the helper does the rest of a provider webhook.
//! - [`progress`] — multi-part sends that a retry resumes instead of repeating.
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
pub mod event;
pub mod hook;
pub mod host;
pub mod mac;
pub mod model;
pub mod outbound;
pub mod params;
pub mod progress;
pub mod secret;
pub mod service_type;
pub mod signing;
#[cfg(feature = "testkit")]
pub mod testkit;
pub mod webhook_channel;

pub use backoff::Backoff;
pub use connector::{
    Channel, Connector, Delivered, Desk, EventDelivery, EventSink, Hooks, Mirror, OutboundMessage,
    RetryLimits,
};
pub use context::{
    Clock, ConnState, CredentialWatch, ServiceContext, SystemClock, refuses_credentials,
};
pub use error::{ConnectorError, DeliveryError, HookError, HostError};
pub use event::{Event, EventData};
pub use hook::{HookAdmission, HookHead, HookRequest, HookResponse, SignatureShape, parse_json};
pub use host::{
    ContactInfo, DeskLink, DeskReply, Gauge, HandedOff, Host, InboundMessage, Ingested, Nonce,
    Posted, StatusChange, SystemMessage, Watermark,
};
pub use model::{
    Attachment, Author, AuthorType, Contact, Conversation, ConversationStatus, Direction, Message,
    MessageStatus, Scope,
};
pub use params::{DurationParam, IdString, Issue, Params, Port, Validator};
pub use secret::Secret;
pub use service_type::{AnyParams, EventSubscription, GrantedToken, Registered, ServiceType};
pub use webhook_channel::{Intake, Receipt, Stored, WebhookChannel};
