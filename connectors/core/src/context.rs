//! What a running connector can reach: its identity, the host's storage operations, an
//! HTTP client, a clock and its shutdown signal.

use std::sync::Arc;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::error::HostError;
use crate::host::{
    DeskLink, DeskReply, Gauge, HandedOff, Host, InboundMessage, Ingested, Nonce, Posted,
    StatusChange, SystemMessage, Watermark,
};
use crate::model::{Conversation, Message, MessageStatus};

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

/// Everything a connector gets from the supervisor for one service.
#[derive(Clone)]
pub struct ServiceContext {
    /// The service's id (`[a-z0-9_]+`).
    pub service_id: Arc<str>,
    /// Its type (`smartsupp`, `twilio`, …).
    pub service_type: &'static str,
    /// Its tenant: it sees, and its events reach, only this organization's data.
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
        self.host.ingest(messages).await
    }

    /// See [`Host::ingest_once`].
    pub async fn ingest_once(
        &self,
        nonce: &Nonce,
        messages: Vec<InboundMessage>,
    ) -> Result<Option<Vec<Ingested>>, HostError> {
        self.host.ingest_once(nonce, messages).await
    }

    /// See [`Host::apply_watermark`].
    pub async fn apply_watermark(&self, watermark: &Watermark) -> Result<usize, HostError> {
        self.host.apply_watermark(watermark).await
    }

    /// See [`Host::conversation_of`].
    pub async fn conversation_of(
        &self,
        external_id: &str,
    ) -> Result<Option<Conversation>, HostError> {
        self.host.conversation_of(external_id).await
    }

    /// See [`Host::update_status`].
    pub async fn update_status(
        &self,
        external_id: &str,
        status: MessageStatus,
        error: Option<String>,
    ) -> Result<StatusChange, HostError> {
        self.host.update_status(external_id, status, error).await
    }

    /// See [`Host::send_system`].
    pub async fn send_system(&self, msg: SystemMessage) -> Result<Message, HostError> {
        self.host.send_system(msg).await
    }

    /// See [`Host::post_reply`].
    pub async fn post_reply(&self, reply: DeskReply) -> Result<Posted, HostError> {
        self.host.post_reply(reply).await
    }

    /// See [`Host::link_put`].
    pub async fn link_put(&self, link: DeskLink) -> Result<(), HostError> {
        self.host.link_put(link).await
    }

    /// See [`Host::link_get`].
    pub async fn link_get(&self, conversation_id: &str) -> Result<Option<DeskLink>, HostError> {
        self.host.link_get(conversation_id).await
    }

    /// See [`Host::link_lookup`].
    pub async fn link_lookup(
        &self,
        desk_conversation_id: &str,
    ) -> Result<Option<DeskLink>, HostError> {
        self.host.link_lookup(desk_conversation_id).await
    }

    /// See [`Host::close_conversation`].
    pub async fn close_conversation(
        &self,
        desk_conversation_id: &str,
    ) -> Result<Option<String>, HostError> {
        self.host.close_conversation(desk_conversation_id).await
    }

    /// See [`Host::hand_off`].
    pub async fn hand_off(
        &self,
        conversation_id: &str,
        reason: &str,
    ) -> Result<Option<HandedOff>, HostError> {
        self.host.hand_off(conversation_id, reason).await
    }

    /// See [`Host::kv_get`].
    pub async fn kv_get(&self, key: &str) -> Result<Option<String>, HostError> {
        self.host.kv_get(key).await
    }

    /// See [`Host::kv_put`].
    pub async fn kv_put(&self, key: &str, value: &str) -> Result<(), HostError> {
        self.host.kv_put(key, value).await
    }

    /// Reports the connection state.
    pub fn set_state(&self, state: ConnState) {
        self.host.set_state(state)
    }

    /// See [`Host::set_gauge`].
    pub fn set_gauge(&self, gauge: Gauge, value: i64) {
        self.host.set_gauge(gauge, value)
    }

    /// Reports a typing signal from a contact.
    pub fn typing(&self, contact_external_id: &str, typing: bool) {
        self.host.typing(contact_external_id, typing)
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
/// [`connected_until_rejected`](Self::connected_until_rejected), or racing
/// [`until_rejected`](Self::until_rejected) against its own work — returns
/// [`ConnectorError::Auth`], so the service shows `failed` while its replies wait in the
/// outbox (the send itself answers with a transient error) instead of each reply failing.
/// A refusal while `run` is not waiting (mid-poll, between restarts) is kept until it is.
#[derive(Debug, Default)]
pub struct CredentialWatch {
    /// A refusal not yet seen by `until_rejected`.
    pending: std::sync::atomic::AtomicBool,
    wake: tokio::sync::Notify,
}

impl CredentialWatch {
    /// A send found the credentials refused.
    pub fn rejected(&self) {
        self.pending
            .store(true, std::sync::atomic::Ordering::SeqCst);
        self.wake.notify_waiters();
    }

    /// A send was answered 401 or 403 (see [`refuses_credentials`]): marks the
    /// credentials refused and returns the transient error that keeps the message queued
    /// until they are fixed.
    pub fn refused(
        &self,
        reason: impl Into<String>,
        retry_after: Option<std::time::Duration>,
    ) -> crate::DeliveryError {
        self.rejected();
        crate::DeliveryError::Transient {
            reason: reason.into(),
            retry_after,
        }
    }

    /// Resolves once a send has found the credentials refused (at once if one did since
    /// the last time this resolved), consuming that refusal.
    pub async fn until_rejected(&self) {
        use std::sync::atomic::Ordering;
        loop {
            let woken = self.wake.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            if self.pending.swap(false, Ordering::SeqCst) {
                return;
            }
            woken.await;
        }
    }

    /// Forgets a refusal not yet seen: `run` starts over and takes the credentials as
    /// working until a send of its own finds them refused.
    pub fn reset(&self) {
        self.pending
            .store(false, std::sync::atomic::Ordering::SeqCst);
    }

    /// Reports `connected`, then waits: `Ok` on shutdown, `Err(Auth(reason))` once a send
    /// reports the credentials refused. A refusal from before this call is forgotten
    /// ([`reset`](Self::reset)).
    pub async fn connected_until_rejected(
        &self,
        ctx: &ServiceContext,
        reason: &str,
    ) -> Result<(), crate::ConnectorError> {
        self.reset();
        ctx.set_state(ConnState::Connected);
        tokio::select! {
            _ = ctx.shutdown.cancelled() => Ok(()),
            _ = self.until_rejected() => Err(crate::ConnectorError::Auth(reason.to_owned())),
        }
    }
}

/// Whether an answer to a send says that the provider refuses our credentials or this
/// account's access (401, 403) rather than the message: every later send would fail the
/// same way, so the service is broken, not the message.
pub fn refuses_credentials(status: http::StatusCode) -> bool {
    status == http::StatusCode::UNAUTHORIZED || status == http::StatusCode::FORBIDDEN
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_refusal_while_nobody_waits_is_kept_for_the_next_wait() {
        let watch = CredentialWatch::default();
        watch.rejected();
        tokio::time::timeout(std::time::Duration::from_secs(1), watch.until_rejected())
            .await
            .expect("the earlier refusal is seen");
        let waiting =
            tokio::time::timeout(std::time::Duration::from_millis(50), watch.until_rejected());
        assert!(waiting.await.is_err(), "one refusal is consumed once");
    }
}
