//! What a running connector can reach: its identity, the host's storage operations, an
//! HTTP client, a clock and its shutdown signal.

use std::sync::Arc;

use async_trait::async_trait;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::error::HostError;
use crate::model::{Attachment, Author, Conversation, Message, MessageStatus};

/// A message from a contact, normalized by its connector.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InboundMessage {
    /// The provider's id for the message: the dedupe key, unique per service.
    #[cfg_attr(feature = "openapi", schema(pattern = r"\S"))]
    pub external_id: String,
    /// The sender.
    pub contact: ContactInfo,
    /// The provider's thread id; without one the contact's open conversation is used.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(pattern = r"\S"))]
    pub conversation_external_id: Option<String>,
    /// Plain text.
    #[serde(default)]
    pub text: Option<String>,
    /// Files by URL.
    #[serde(default)]
    pub attachments: Vec<Attachment>,
}

/// What a provider tells us about a contact.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ContactInfo {
    /// The provider's id for the person: unique per service.
    #[cfg_attr(feature = "openapi", schema(pattern = r"\S"))]
    pub external_id: String,
    /// Display name.
    #[serde(default)]
    pub name: Option<String>,
    /// E-mail address.
    #[serde(default)]
    pub email: Option<String>,
    /// Phone number.
    #[serde(default)]
    pub phone: Option<String>,
}

/// The result of ingesting one inbound message.
#[derive(Debug, Clone)]
pub struct Ingested {
    /// The stored message: the new one, or the original for a duplicate.
    pub message: Message,
    /// Its conversation.
    pub conversation: Conversation,
    /// False when the external id was already stored (nothing new was written).
    pub created: bool,
    /// True when this message opened the conversation.
    pub conversation_created: bool,
}

/// A message switchboard itself sends into a conversation (welcome, out-of-hours).
#[derive(Debug, Clone)]
pub struct SystemMessage {
    /// The conversation to answer in.
    pub conversation_id: String,
    /// The text.
    pub text: String,
    /// Usually `system` or `bot`.
    pub author: Author,
    /// Makes the send idempotent (e.g. `welcome`, `offline`): a repeat returns the first.
    pub idempotency_key: String,
}

/// A provider receipt for an outbound message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatusChange {
    /// The status moved forward; a `message.status` event was written.
    Updated,
    /// Already at or past that status (duplicate or late receipt): nothing written.
    Unchanged,
    /// No outbound message with that external id on this service.
    UnknownMessage,
}

/// The live state of a service's connection, as `GET /v1/services` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum ConnState {
    /// Not running (not active, or shut down).
    Stopped,
    /// Trying to connect.
    Connecting,
    /// Up and working.
    Connected,
    /// Waiting before the next attempt.
    Backoff {
        /// Attempts so far in this streak.
        attempt: u32,
        /// When the next attempt starts.
        #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
        until: Timestamp,
    },
    /// Not working for a reason an operator must look at (bad credentials, bad config);
    /// still retried, slowly.
    Failed {
        /// What went wrong, never containing a secret.
        reason: String,
    },
}

impl ConnState {
    /// The `kind` spelling.
    pub fn kind(&self) -> &'static str {
        match self {
            ConnState::Stopped => "stopped",
            ConnState::Connecting => "connecting",
            ConnState::Connected => "connected",
            ConnState::Backoff { .. } => "backoff",
            ConnState::Failed { .. } => "failed",
        }
    }
}

/// A source of time, replaceable in tests of availability windows and schedules.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// The current instant.
    fn now(&self) -> Timestamp;
}

/// The system clock, optionally shifted by a fixed offset (used by end-to-end tests of
/// time windows; zero in production).
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock {
    /// Added to the system time.
    pub offset: jiff::SignedDuration,
}

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
            .checked_add(self.offset)
            .unwrap_or(Timestamp::MAX)
    }
}

/// The storage and state operations the daemon offers its connectors. Implemented by the
/// binary; every write returns only after it has been committed.
#[async_trait]
pub trait Host: Send + Sync {
    /// Stores inbound messages in one transaction: upsert contacts, find or open
    /// conversations, insert messages (deduped on external id), append events, enqueue
    /// webhook deliveries. A duplicate yields the original with `created: false`.
    async fn ingest(
        &self,
        service_id: &str,
        messages: Vec<InboundMessage>,
    ) -> Result<Vec<Ingested>, HostError>;

    /// Applies a provider receipt to the outbound message with that external id, forward
    /// only.
    async fn update_status(
        &self,
        service_id: &str,
        external_id: &str,
        status: MessageStatus,
        error: Option<String>,
    ) -> Result<StatusChange, HostError>;

    /// Queues a message from switchboard itself; idempotent on its key.
    async fn send_system(&self, msg: SystemMessage) -> Result<Message, HostError>;

    /// Reads a sync-state value (cursor, token).
    async fn kv_get(&self, service_id: &str, key: &str) -> Result<Option<String>, HostError>;

    /// Writes a sync-state value.
    async fn kv_put(&self, service_id: &str, key: &str, value: &str) -> Result<(), HostError>;

    /// Reports the connection state.
    fn set_state(&self, service_id: &str, state: ConnState);

    /// An ephemeral signal (typing) for the event stream; not stored.
    fn typing(&self, service_id: &str, contact_external_id: &str, typing: bool) {
        let _ = (service_id, contact_external_id, typing);
    }
}

/// Everything a connector gets from the supervisor for one service.
#[derive(Clone)]
pub struct ServiceContext {
    /// The service's id (`[a-z0-9_]+`).
    pub service_id: Arc<str>,
    /// Its type (`smartsupp`, `twilio`, …).
    pub service_type: &'static str,
    /// Its tenant.
    pub organization: Arc<str>,
    /// `server.public_url` without a trailing slash: how providers reach us.
    pub public_url: Arc<str>,
    /// Shared HTTP client (connection pooling, rustls).
    pub http: reqwest::Client,
    /// Fires when this service must stop (shutdown, reload, disable).
    pub shutdown: CancellationToken,
    /// The time source.
    pub clock: Arc<dyn Clock>,
    host: Arc<dyn Host>,
}

impl std::fmt::Debug for ServiceContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceContext")
            .field("service_id", &self.service_id)
            .field("service_type", &self.service_type)
            .finish_non_exhaustive()
    }
}

impl ServiceContext {
    /// Builds a context. Called by the supervisor (and by connector tests with a fake host).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        service_id: &str,
        service_type: &'static str,
        organization: &str,
        public_url: &str,
        http: reqwest::Client,
        shutdown: CancellationToken,
        clock: Arc<dyn Clock>,
        host: Arc<dyn Host>,
    ) -> Self {
        ServiceContext {
            service_id: service_id.into(),
            service_type,
            organization: organization.into(),
            public_url: public_url.trim_end_matches('/').into(),
            http,
            shutdown,
            clock,
            host,
        }
    }

    /// See [`Host::ingest`].
    pub async fn ingest(&self, messages: Vec<InboundMessage>) -> Result<Vec<Ingested>, HostError> {
        self.host.ingest(&self.service_id, messages).await
    }

    /// See [`Host::update_status`].
    pub async fn update_status(
        &self,
        external_id: &str,
        status: MessageStatus,
        error: Option<String>,
    ) -> Result<StatusChange, HostError> {
        self.host
            .update_status(&self.service_id, external_id, status, error)
            .await
    }

    /// See [`Host::send_system`].
    pub async fn send_system(&self, msg: SystemMessage) -> Result<Message, HostError> {
        self.host.send_system(msg).await
    }

    /// See [`Host::kv_get`].
    pub async fn kv_get(&self, key: &str) -> Result<Option<String>, HostError> {
        self.host.kv_get(&self.service_id, key).await
    }

    /// See [`Host::kv_put`].
    pub async fn kv_put(&self, key: &str, value: &str) -> Result<(), HostError> {
        self.host.kv_put(&self.service_id, key, value).await
    }

    /// Reports the connection state.
    pub fn set_state(&self, state: ConnState) {
        self.host.set_state(&self.service_id, state)
    }

    /// Reports a typing signal from a contact.
    pub fn typing(&self, contact_external_id: &str, typing: bool) {
        self.host
            .typing(&self.service_id, contact_external_id, typing)
    }

    /// The public URL of one of this service's hooks: `{public_url}/hooks/{id}[/sub]`.
    pub fn hook_url(&self, subpath: &str) -> String {
        if subpath.is_empty() {
            format!("{}/hooks/{}", self.public_url, self.service_id)
        } else {
            format!("{}/hooks/{}/{}", self.public_url, self.service_id, subpath)
        }
    }
}

/// For HTTP connectors, whose only "connection" is their credentials: a send that finds
/// them refused calls [`rejected`](Self::rejected), and `run` — parked in
/// [`connected_until_rejected`](Self::connected_until_rejected) — returns
/// [`ConnectorError::Auth`], so the service shows `failed` while its replies wait in the
/// outbox (the send itself answers with a transient error) instead of each reply failing.
#[derive(Debug, Default)]
pub struct CredentialWatch(tokio::sync::Notify);

impl CredentialWatch {
    /// A send found the credentials refused.
    pub fn rejected(&self) {
        self.0.notify_waiters();
    }

    /// Reports `connected`, then waits: `Ok` on shutdown, `Err(Auth(reason))` once a send
    /// reports the credentials refused.
    pub async fn connected_until_rejected(
        &self,
        ctx: &ServiceContext,
        reason: &str,
    ) -> Result<(), crate::ConnectorError> {
        ctx.set_state(ConnState::Connected);
        tokio::select! {
            _ = ctx.shutdown.cancelled() => Ok(()),
            _ = self.0.notified() => Err(crate::ConnectorError::Auth(reason.to_owned())),
        }
    }
}
