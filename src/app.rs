//! The running daemon's shared state: config, store, metrics, the running services and
//! the API tokens. The HTTP layer and the supervisor both hold an `Arc<App>`. Each
//! service's [`ServiceHost`] is in `crate::host`.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};

use sha2::{Digest, Sha256};
use switchboard_core::{Clock, Connector, ServiceContext};
use tokio_util::sync::CancellationToken;

use crate::config::{Config, ServiceConfig, ServiceStatus};
pub use crate::host::{ServiceHost, validate_inbound};
use crate::metrics::Metrics;
use crate::store::{ServiceInfo, Store};

/// What a bearer token may do, and for whom.
#[derive(Debug, Clone)]
pub struct TokenInfo {
    /// The service that grants the token.
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
    /// Builds the table from the tokens every configured service grants.
    pub fn from_config(config: &Config) -> Self {
        let mut map = HashMap::new();
        for svc in config.services.values() {
            for t in svc.params.tokens() {
                map.insert(
                    digest(t.token.expose().as_bytes()),
                    TokenInfo {
                        service_id: svc.id.clone(),
                        organization: svc.organization.clone(),
                        name: t.name,
                        scopes: t.scopes,
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
    /// The config it was started with (a changed fingerprint restarts it).
    pub config: ServiceConfig,
    /// The connector built from that config.
    pub connector: Arc<dyn Connector>,
    /// Its context (shared with the connector's tasks).
    pub ctx: ServiceContext,
    /// Its host (state cell).
    pub host: Arc<ServiceHost>,
}

impl RunningService {
    /// The same service with a context whose shutdown is `shutdown`: what its
    /// connection and dispatcher run with during one holding of its lease (its hooks
    /// keep the service's own context).
    pub fn for_period(&self, shutdown: CancellationToken) -> Arc<RunningService> {
        let mut ctx = self.ctx.clone();
        ctx.shutdown = shutdown;
        Arc::new(RunningService {
            config: self.config.clone(),
            connector: self.connector.clone(),
            ctx,
            host: self.host.clone(),
        })
    }

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
    /// The store every service and the HTTP layer write through.
    pub store: Store,
    /// Prometheus metrics, served at `/metrics`.
    pub metrics: Arc<Metrics>,
    /// Running services by id.
    pub services: RwLock<BTreeMap<String, Arc<RunningService>>>,
    /// The bearer tokens of `/v1`, rebuilt from the config on every apply.
    pub tokens: RwLock<Arc<TokenTable>>,
    /// The shared HTTP client of every connector (no redirects, timeouts set).
    pub http: reqwest::Client,
    /// The clock (shifted in tests of date windows).
    pub clock: Arc<dyn Clock>,
    /// Fires on SIGTERM/SIGINT.
    pub shutdown: CancellationToken,
    /// The address the HTTP server is bound to.
    pub bound: std::net::SocketAddr,
    /// Each configured service's effective status (see `supervisor::effective_status`).
    pub statuses: RwLock<HashMap<String, ServiceStatus>>,
    /// The control loop.
    pub control: tokio::sync::mpsc::UnboundedSender<Control>,
    /// Ephemeral events (typing) for the event stream: not stored, not resumable.
    pub ephemeral: tokio::sync::broadcast::Sender<Ephemeral>,
    /// How the last hub syncs went, for the status page.
    pub hub_sync: RwLock<HubSync>,
    /// The status page's login sessions.
    pub sessions: crate::http::status::Sessions,
    /// Which leases this instance holds: which services it runs (all of them with
    /// SQLite).
    pub cluster: Arc<crate::cluster::Cluster>,
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
    pub fn status(&self, id: &str) -> Option<ServiceStatus> {
        self.statuses
            .read()
            .expect("statuses lock")
            .get(id)
            .copied()
    }

    /// [`App::status`] in its config spelling (`pendingArchive`, …).
    pub fn status_of(&self, id: &str) -> Option<String> {
        self.status(id).map(|s| s.as_str().to_owned())
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
