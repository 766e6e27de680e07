//! The running daemon's shared state: config, store, metrics, the running services and
//! the API tokens. The HTTP layer and the supervisor both hold an `Arc<App>`.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use sha2::{Digest, Sha256};
use switchboard_core::{
    Clock, ConnState, Connector, HostError, InboundMessage, Ingested, Message, MessageStatus,
    ServiceContext, StatusChange, SystemMessage,
};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, ServiceConfig, ServiceStatus};
use crate::metrics::Metrics;
use crate::store::{NewOutbound, ServiceInfo, ServiceRef, Store};

/// What a bearer token may do, and for whom.
#[derive(Debug, Clone)]
pub struct TokenInfo {
    /// The api service that owns the token.
    pub service_id: String,
    /// That service's organization: the token sees nothing else.
    pub organization: String,
    /// The token's name in the config (for logs).
    pub name: String,
    /// Granted scopes.
    pub scopes: Vec<switchboard_core::Scope>,
}

/// Tokens by the SHA-256 of their value, so lookups never compare secrets byte by byte.
#[derive(Debug, Default)]
pub struct TokenTable(HashMap<[u8; 32], TokenInfo>);

impl TokenTable {
    /// Builds the table from every api service in the config.
    pub fn from_config(config: &Config) -> Self {
        #[allow(unused_mut)]
        let mut map = HashMap::new();
        #[cfg(feature = "api")]
        for svc in config.services.values() {
            let Some(api) = svc.params.as_api() else {
                continue;
            };
            for (name, t) in &api.tokens {
                map.insert(
                    digest(t.token.expose().as_bytes()),
                    TokenInfo {
                        service_id: svc.id.clone(),
                        organization: svc.organization.clone(),
                        name: name.clone(),
                        scopes: t.scopes.clone(),
                    },
                );
            }
        }
        TokenTable(map)
    }

    /// The token presented, if known.
    pub fn lookup(&self, presented: &str) -> Option<&TokenInfo> {
        self.0.get(&digest(presented.as_bytes()))
    }
}

fn digest(b: &[u8]) -> [u8; 32] {
    Sha256::digest(b).into()
}

/// A service the supervisor is running.
pub struct RunningService {
    /// Its config.
    pub config: ServiceConfig,
    /// The connector.
    pub connector: Arc<dyn Connector>,
    /// Its context (shared with the connector's tasks).
    pub ctx: ServiceContext,
    /// Its host (state cell).
    pub host: Arc<ServiceHost>,
}

impl RunningService {
    /// Whether its webhooks take requests.
    pub fn accepts_hooks(&self) -> bool {
        matches!(
            self.config.status,
            ServiceStatus::Active | ServiceStatus::PendingArchive
        )
    }
}

/// The daemon's shared state.
pub struct App {
    /// The config in force.
    pub config: RwLock<Arc<Config>>,
    /// Storage.
    pub store: Store,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Running services by id.
    pub services: RwLock<BTreeMap<String, Arc<RunningService>>>,
    /// API tokens.
    pub tokens: RwLock<Arc<TokenTable>>,
    /// Outgoing HTTP.
    pub http: reqwest::Client,
    /// Time.
    pub clock: Arc<dyn Clock>,
    /// Fires on SIGTERM/SIGINT.
    pub shutdown: CancellationToken,
    /// The address the HTTP server is bound to.
    pub bound: std::net::SocketAddr,
    /// Each configured service's effective status (see `supervisor::effective_status`).
    pub statuses: RwLock<HashMap<String, String>>,
    /// The control loop.
    pub control: tokio::sync::mpsc::UnboundedSender<Control>,
    /// Ephemeral events (typing) for the event stream: not stored, not resumable.
    pub ephemeral: tokio::sync::broadcast::Sender<Ephemeral>,
    /// How the last hub syncs went, for the status page.
    pub hub_sync: RwLock<HubSync>,
    /// The status page's login sessions.
    pub sessions: crate::http::status::Sessions,
}

/// The outcome of the hub syncs so far (none when no hub is configured).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HubSync {
    /// When a sync last succeeded.
    pub last_ok: Option<jiff::Timestamp>,
    /// How many services that sync returned.
    pub services: usize,
    /// When a sync last failed, and why (never containing a credential).
    pub last_error: Option<(jiff::Timestamp, String)>,
}

/// An event that is streamed live but never stored (it has no `seq`).
#[derive(Debug, Clone)]
pub struct Ephemeral {
    /// Only this organization's streams get it.
    pub organization: String,
    /// The frame: `{"type","timestamp","data"}`.
    pub body: String,
}

impl App {
    /// The config in force.
    pub fn config(&self) -> Arc<Config> {
        self.config.read().expect("config lock").clone()
    }

    /// A running service.
    pub fn service(&self, id: &str) -> Option<Arc<RunningService>> {
        self.services
            .read()
            .expect("services lock")
            .get(id)
            .cloned()
    }

    /// All running services.
    pub fn running(&self) -> Vec<Arc<RunningService>> {
        self.services
            .read()
            .expect("services lock")
            .values()
            .cloned()
            .collect()
    }

    /// How providers reach us: `server.public_url`, else the bound address.
    pub fn public_url(&self) -> String {
        match &self.config().server.public_url {
            Some(u) => u.trim_end_matches('/').to_owned(),
            None => format!("http://{}", self.bound),
        }
    }

    /// A service's effective status, if it is configured.
    pub fn status_of(&self, id: &str) -> Option<String> {
        self.statuses
            .read()
            .expect("statuses lock")
            .get(id)
            .cloned()
    }

    /// The token table.
    pub fn tokens(&self) -> Arc<TokenTable> {
        self.tokens.read().expect("tokens lock").clone()
    }
}

/// A service's identity as stored with its state, with its effective status.
pub fn service_info(svc: &ServiceConfig, status: &str) -> ServiceInfo {
    ServiceInfo {
        id: svc.id.clone(),
        kind: svc.type_name().to_owned(),
        name: svc.name.clone(),
        status: status.to_owned(),
        organization: svc.organization.clone(),
    }
}

/// Requests to the daemon's control loop, which serializes every change of the running
/// set.
#[derive(Debug)]
pub enum Control {
    /// Re-read the config file (SIGHUP, `POST /v1/admin/reload`); the answer carries the
    /// problems of an invalid config.
    Reload(Option<tokio::sync::oneshot::Sender<Result<(), Vec<String>>>>),
    /// The hub's current service list.
    Hub(Vec<serde_json::Value>),
    /// Apply the current config again (a pendingArchive service drained).
    Reapply,
}

/// The [`switchboard_core::Host`] of one service: storage operations scoped to it, and
/// its connection-state cell.
pub struct ServiceHost {
    store: Store,
    metrics: Arc<Metrics>,
    ephemeral: tokio::sync::broadcast::Sender<Ephemeral>,
    info: ServiceInfo,
    service_ref: ServiceRef,
    state: watch::Sender<(ConnState, i64)>,
}

impl ServiceHost {
    /// A host for `svc`.
    pub fn new(
        store: Store,
        metrics: Arc<Metrics>,
        ephemeral: tokio::sync::broadcast::Sender<Ephemeral>,
        svc: &ServiceConfig,
        status: &str,
    ) -> Self {
        let info = service_info(svc, status);
        ServiceHost {
            store,
            metrics,
            ephemeral,
            service_ref: ServiceRef {
                id: svc.id.clone(),
                organization: svc.organization.clone(),
                opens_conversations: svc.status != ServiceStatus::PendingArchive,
            },
            info,
            state: watch::Sender::new((ConnState::Stopped, crate::store::rows::now_ms())),
        }
    }

    /// The current state and since when (unix ms).
    pub fn state(&self) -> (ConnState, i64) {
        self.state.borrow().clone()
    }

    /// Follows state changes.
    pub fn watch_state(&self) -> watch::Receiver<(ConnState, i64)> {
        self.state.subscribe()
    }

    /// The service's identity as stored.
    pub fn info(&self) -> &ServiceInfo {
        &self.info
    }

    /// Sets the state; a change is stored and becomes a `service.state` event.
    pub fn report(&self, state: ConnState) {
        let now = crate::store::rows::now_ms();
        let changed = self.state.send_if_modified(|(cur, since)| {
            if *cur == state {
                return false;
            }
            if cur.kind() != state.kind() {
                *since = now;
            }
            *cur = state.clone();
            true
        });
        if !changed {
            return;
        }
        self.metrics.set_state(&self.info.id, state.kind());
        let since = self.state.borrow().1;
        self.store
            .record_service(self.info.clone(), state, since, true);
    }

    /// Ingests on behalf of an HTTP caller that already validated the messages.
    pub async fn ingest_checked(
        &self,
        messages: Vec<InboundMessage>,
    ) -> Result<Vec<Ingested>, HostError> {
        let started = std::time::Instant::now();
        let n = messages.len();
        let result = self.store.ingest(self.service_ref.clone(), messages).await;
        match &result {
            Ok(done) => {
                self.metrics.ingest_latency(
                    &self.info.id,
                    &self.info.kind,
                    started.elapsed().as_secs_f64(),
                );
                for i in done {
                    let outcome = if i.created { "stored" } else { "duplicate" };
                    self.metrics
                        .message(&self.info.id, &self.info.kind, "inbound", outcome);
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, messages = n, "inbound messages not stored");
                for _ in 0..n {
                    self.metrics
                        .message(&self.info.id, &self.info.kind, "inbound", "rejected");
                }
            }
        }
        Ok(result?)
    }
}

/// Checks what every inbound message needs, whichever connector produced it.
pub fn validate_inbound(m: &InboundMessage) -> Result<(), HostError> {
    if m.external_id.trim().is_empty() {
        return Err(HostError::Invalid("external_id must not be empty".into()));
    }
    if m.contact.external_id.trim().is_empty() {
        return Err(HostError::Invalid(
            "contact.external_id must not be empty".into(),
        ));
    }
    // A blank thread id is one thread shared by every contact who sends it: their
    // messages would land in the first sender's conversation.
    if m.conversation_external_id
        .as_deref()
        .is_some_and(|c| c.trim().is_empty())
    {
        return Err(HostError::Invalid(
            "conversation_external_id must not be blank (omit it to use the contact's open conversation)"
                .into(),
        ));
    }
    let has_text = m.text.as_deref().is_some_and(|t| !t.is_empty());
    if !has_text && m.attachments.is_empty() {
        return Err(HostError::Invalid(
            "a message needs text or attachments".into(),
        ));
    }
    for (i, a) in m.attachments.iter().enumerate() {
        if !a.has_http_url() {
            return Err(HostError::Invalid(format!(
                "attachments[{i}].url must be an http(s) URL"
            )));
        }
    }
    Ok(())
}

#[async_trait]
impl switchboard_core::Host for ServiceHost {
    async fn ingest(
        &self,
        _service_id: &str,
        messages: Vec<InboundMessage>,
    ) -> Result<Vec<Ingested>, HostError> {
        for m in &messages {
            validate_inbound(m)?;
        }
        self.ingest_checked(messages).await
    }

    async fn update_status(
        &self,
        _service_id: &str,
        external_id: &str,
        status: MessageStatus,
        error: Option<String>,
    ) -> Result<StatusChange, HostError> {
        Ok(self
            .store
            .update_status(&self.info.id, external_id, status, error)
            .await?)
    }

    async fn send_system(&self, msg: SystemMessage) -> Result<Message, HostError> {
        let id = crate::store::rows::parse_id(&msg.conversation_id)
            .ok_or_else(|| HostError::NotFound("conversation".into()))?;
        let (message, _, _) = self
            .store
            .reply(
                Some(self.info.organization.clone()),
                id,
                NewOutbound {
                    text: Some(msg.text),
                    attachments: vec![],
                    author: msg.author,
                    idempotency_key: Some(msg.idempotency_key),
                },
            )
            .await?;
        Ok(message)
    }

    async fn kv_get(&self, _service_id: &str, key: &str) -> Result<Option<String>, HostError> {
        Ok(self.store.read.kv_get(&self.info.id, key).await?)
    }

    async fn kv_put(&self, _service_id: &str, key: &str, value: &str) -> Result<(), HostError> {
        Ok(self.store.kv_put(&self.info.id, key, value).await?)
    }

    fn set_state(&self, _service_id: &str, state: ConnState) {
        self.report(state)
    }

    fn typing(&self, _service_id: &str, contact_external_id: &str, typing: bool) {
        if self.ephemeral.receiver_count() == 0 {
            return; // nobody is streaming
        }
        let (store, tx, info) = (
            self.store.clone(),
            self.ephemeral.clone(),
            self.info.clone(),
        );
        let contact = contact_external_id.to_owned();
        tokio::spawn(async move {
            let conversation = match store.read.open_conversation_of(&info.id, &contact).await {
                Ok(Some(id)) => id,
                Ok(None) => return, // typing before the first message: no conversation yet
                Err(e) => {
                    tracing::debug!(error = %e, "typing signal dropped");
                    return;
                }
            };
            let body = serde_json::json!({
                "type": "conversation.typing",
                "timestamp": jiff::Timestamp::now(),
                "data": {"service_id": info.id, "conversation_id": conversation.to_string(),
                         "contact_external_id": contact, "typing": typing},
            });
            let _ = tx.send(Ephemeral {
                organization: info.organization.clone(),
                body: body.to_string(),
            });
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by the `api_inbound` fuzz target: `"conversation_external_id": ""` was
    /// accepted, and the store looks threads up by service and id, so every contact
    /// sending it shared the first one's conversation.
    #[test]
    fn a_blank_thread_id_is_refused() {
        let m: InboundMessage = serde_json::from_str(
            r#"{"external_id":"m1","contact":{"external_id":"c1"},"text":"hi","conversation_external_id":" "}"#,
        )
        .unwrap();
        let err = validate_inbound(&m).unwrap_err().to_string();
        assert!(
            err.contains("conversation_external_id must not be blank"),
            "{err}"
        );
        let m = InboundMessage {
            conversation_external_id: None,
            ..m
        };
        assert!(validate_inbound(&m).is_ok());
    }
}
