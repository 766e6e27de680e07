//! The daemon's configuration: typed sections, loaded from TOML with environment
//! overrides and `*_file` secrets, validated with every problem named by its key path.
//!
//! - [`tree`] — the raw tree (file, environment, secret files).
//! - [`typed`] — typing a tree with every problem named by its key path.
//! - [`hub`] — `[hub]`, services from a Web1on1 hub.
//! - this file: the typed sections and the loader that reports all problems at once.

pub mod hub;
pub mod tree;
pub mod typed;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use config::{Map, Value, ValueKind};
use jiff::Timestamp;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use switchboard_core::{AnyParams, DurationParam, Issue, Scope};

pub use hub::HubConfig;
use tree::join;
pub use typed::{Unknown, typed, typed_with};

/// The whole configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// `[server]`.
    pub server: ServerConfig,
    /// `[storage]`.
    pub storage: StorageConfig,
    /// `[log]`.
    pub log: LogConfig,
    /// `[delivery]`.
    pub delivery: DeliveryConfig,
    /// `[supervisor]`.
    pub supervisor: SupervisorConfig,
    /// `[services.<id>]`, by id (after a hub sync: with the hub's services merged in).
    pub services: BTreeMap<String, ServiceConfig>,
    /// `[hub]`: services from a Web1on1 hub.
    pub hub: Option<HubConfig>,
}

impl Config {
    /// The first configured token with `scope` of each organization, as
    /// (organization, token): what the CLI's `services` and `deliveries` talk to the
    /// running daemon with.
    pub fn token_per_organization(&self, scope: Scope) -> Vec<(String, String)> {
        let mut tokens: Vec<(String, String)> = Vec::new();
        for svc in self.services.values() {
            if tokens.iter().any(|(org, _)| *org == svc.organization) {
                continue;
            }
            if let Some(t) = svc
                .params
                .tokens()
                .into_iter()
                .find(|t| t.scopes.contains(&scope))
            {
                tokens.push((svc.organization.clone(), t.token.expose().to_owned()));
            }
        }
        tokens
    }
}

/// `[server]`: the HTTP listener.
#[derive(Debug, Clone, Deserialize)]
pub struct ServerConfig {
    /// Where the HTTP server binds. Default `127.0.0.1:8080`.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// How providers reach us; URL-bound signatures (Twilio) use it. Default
    /// `http://{listen}`.
    #[serde(default)]
    pub public_url: Option<String>,
    /// Deadline for a graceful stop. Default `10s`.
    #[serde(default = "default_shutdown_timeout")]
    pub shutdown_timeout: DurationParam,
    /// Largest request body accepted, in bytes. Default 1 MiB.
    #[serde(default = "default_max_body")]
    pub max_body: usize,
    /// The bytes of request bodies held in memory at once, all requests together; a body
    /// waits for room (until `body_read_timeout`, then 503). At least `max_body`.
    /// Default 8 MiB (reading a body costs two to three times its size while it is
    /// parsed). Takes effect at restart.
    #[serde(default = "default_max_body_in_flight")]
    pub max_body_in_flight: usize,
    /// A request's whole body must arrive within this, or it is answered 408. Default
    /// `30s`.
    #[serde(default = "default_body_read_timeout")]
    pub body_read_timeout: DurationParam,
    /// A request's head (request line and headers) must arrive within this, counted
    /// from when the connection is ready for it: it is also how long a keep-alive
    /// connection may sit idle between requests. Default `10s`.
    #[serde(default = "default_header_read_timeout")]
    pub header_read_timeout: DurationParam,
    /// A connection on which a response has waited this long without the peer taking a
    /// byte is closed (a client that stopped reading). Default `60s`.
    #[serde(default = "default_write_timeout")]
    pub write_timeout: DurationParam,
    /// Most client connections open at once; more are answered 503 and closed. Default:
    /// three quarters of the open-file limit (`LimitNOFILE`); a value must leave at
    /// least 128 descriptors for storage and outgoing connections.
    #[serde(default)]
    pub max_connections: Option<usize>,
    /// Most connections open at once from one IP address. Behind a reverse proxy every
    /// connection comes from the proxy: raise it to `max_connections` there. Default 256.
    #[serde(default = "default_max_connections_per_peer")]
    pub max_connections_per_peer: usize,
    /// A `/v1/events` client that has not taken a frame for this long is closed with
    /// code 1008, saying so; it resumes with `after=`. Less than `write_timeout`.
    /// Default `20s`.
    #[serde(default = "default_events_stall_timeout")]
    pub events_stall_timeout: DurationParam,
    /// This instance's name among several sharing a PostgreSQL database: the owner of
    /// its leases, shown in `GET /v1/services`. Unique per running instance. Default:
    /// the hostname, `-`, the process id.
    #[serde(default = "default_instance_id")]
    pub instance_id: String,
    /// How long a lease lasts unless renewed (every third of it): how long a dead
    /// instance's services stay held before a survivor takes them. 3s to 60s; default
    /// `15s`. Every instance of a cluster should use the same.
    #[serde(default = "default_lease_ttl")]
    pub lease_ttl: DurationParam,
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}
fn default_shutdown_timeout() -> DurationParam {
    DurationParam(Duration::from_secs(10))
}
fn default_max_body() -> usize {
    1024 * 1024
}
fn default_max_body_in_flight() -> usize {
    8 * 1024 * 1024
}
fn default_body_read_timeout() -> DurationParam {
    DurationParam(Duration::from_secs(30))
}
fn default_header_read_timeout() -> DurationParam {
    DurationParam(Duration::from_secs(10))
}
fn default_write_timeout() -> DurationParam {
    DurationParam(Duration::from_secs(60))
}
fn default_max_connections_per_peer() -> usize {
    256
}
fn default_events_stall_timeout() -> DurationParam {
    DurationParam(Duration::from_secs(20))
}
fn default_lease_ttl() -> DurationParam {
    DurationParam(Duration::from_secs(15))
}

/// The hostname, `-`, the process id: unique among the instances running now.
pub fn default_instance_id() -> String {
    format!("{}-{}", hostname(), std::process::id())
}

fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most `buf.len()` bytes into `buf`.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
    match std::str::from_utf8(&buf[..end]) {
        Ok(h) if rc == 0 && !h.is_empty() => h.to_owned(),
        _ => "switchboard".to_owned(),
    }
}

/// The bounds of `server.lease_ttl`: shorter leases make every renew hiccup stop
/// services; longer ones keep a dead instance's services down for longer.
pub const LEASE_TTL_MIN: Duration = Duration::from_secs(3);
/// See [`LEASE_TTL_MIN`].
pub const LEASE_TTL_MAX: Duration = Duration::from_secs(60);

impl ServerConfig {
    /// What serde cannot check of the connection and body limits.
    fn check_limits(&self) -> Vec<Issue> {
        let mut v = switchboard_core::Validator::new("server");
        if self.max_body_in_flight < self.max_body {
            v.error(
                "max_body_in_flight",
                format!("must be at least max_body ({} bytes)", self.max_body),
            );
        }
        for (key, d) in [
            ("body_read_timeout", self.body_read_timeout),
            ("header_read_timeout", self.header_read_timeout),
            ("write_timeout", self.write_timeout),
            ("events_stall_timeout", self.events_stall_timeout),
        ] {
            if d.0.is_zero() {
                v.error(key, "must be positive");
            }
        }
        if self.events_stall_timeout.0 >= self.write_timeout.0 {
            v.error(
                "events_stall_timeout",
                "must be less than write_timeout, so a stalled stream is told why before its connection is cut",
            );
        }
        if self.max_connections == Some(0) {
            v.error("max_connections", "must be at least 1");
        }
        if self.max_connections_per_peer == 0 {
            v.error("max_connections_per_peer", "must be at least 1");
        }
        if self.lease_ttl.0 < LEASE_TTL_MIN || self.lease_ttl.0 > LEASE_TTL_MAX {
            v.error(
                "lease_ttl",
                format!(
                    "must be between 3s and 60s, got {}",
                    humantime::format_duration(self.lease_ttl.0)
                ),
            );
        }
        if self.instance_id.is_empty()
            || self.instance_id.len() > 128
            || self.instance_id.chars().any(char::is_control)
        {
            v.error(
                "instance_id",
                "must be 1-128 characters, none of them control characters",
            );
        }
        v.into_issues()
    }
}

/// `[storage]`: the SQLite database, or the PostgreSQL one.
#[derive(Clone, Deserialize)]
pub struct StorageConfig {
    /// `sqlite://PATH`, created if missing, relative to the working directory (default
    /// `sqlite://switchboard.db`); or `postgres://user:password@host:port/db`, a
    /// database several instances may share.
    #[serde(default = "default_storage_url")]
    pub url: String,
    /// `full` (default): every commit is on disk before it is acknowledged, surviving
    /// power loss. `normal`: commits survive a crash of switchboard but may be lost
    /// with the machine's power.
    #[serde(default)]
    pub synchronous: Synchronous,
    /// Delivered and streamed events older than this are pruned (an event that still has
    /// an outbox row, dead ones included, is kept). Default `7d`; at least `1s`.
    #[serde(default = "default_event_retention")]
    pub event_retention: DurationParam,
}

/// SQLite's `synchronous` setting in WAL mode.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub enum Synchronous {
    /// fsync the WAL at every commit.
    #[default]
    Full,
    /// fsync at checkpoints only.
    Normal,
}

fn default_storage_url() -> String {
    "sqlite://switchboard.db".into()
}
fn default_event_retention() -> DurationParam {
    DurationParam(Duration::from_secs(7 * 24 * 3600))
}

/// Where `[storage]` keeps the data.
#[derive(Clone, PartialEq, Eq)]
pub enum StorageLocation {
    /// A SQLite file.
    Sqlite {
        /// The file.
        path: PathBuf,
        /// `storage.synchronous`.
        synchronous: Synchronous,
    },
    /// A PostgreSQL database.
    Postgres {
        /// `postgres://…` (it may carry a password: never log it as it is).
        url: String,
    },
}

impl std::fmt::Debug for StorageLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StorageLocation::Sqlite { path, synchronous } => f
                .debug_struct("Sqlite")
                .field("path", path)
                .field("synchronous", synchronous)
                .finish(),
            StorageLocation::Postgres { url } => f
                .debug_struct("Postgres")
                .field("url", &redact_url(url))
                .finish(),
        }
    }
}

/// `url` with any password replaced by `***`.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        Ok(u) => u.to_string(),
        Err(_) if url.contains('@') => "(a URL with credentials)".into(),
        Err(_) => url.to_owned(),
    }
}

impl std::fmt::Debug for StorageConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StorageConfig")
            .field("url", &redact_url(&self.url))
            .field("synchronous", &self.synchronous)
            .field("event_retention", &self.event_retention)
            .finish()
    }
}

impl StorageConfig {
    /// Where `url` keeps the data.
    pub fn location(&self) -> Result<StorageLocation, String> {
        if self.url.starts_with("postgres://") || self.url.starts_with("postgresql://") {
            self.url
                .parse::<postgres::Config>()
                .map_err(|e| format!("not a PostgreSQL URL: {e}"))?;
            return Ok(StorageLocation::Postgres {
                url: self.url.clone(),
            });
        }
        Ok(StorageLocation::Sqlite {
            path: self.path()?,
            synchronous: self.synchronous,
        })
    }

    /// The database file path named by a `sqlite:` `url`.
    pub fn path(&self) -> Result<PathBuf, String> {
        let rest = self
            .url
            .strip_prefix("sqlite://")
            .or_else(|| self.url.strip_prefix("sqlite:"))
            .ok_or_else(|| {
                format!(
                    "expected sqlite://PATH or postgres://…, got {:?}",
                    redact_url(&self.url)
                )
            })?;
        let rest = rest.split('?').next().unwrap_or(rest);
        if rest.is_empty() || rest == ":memory:" {
            return Err(format!("expected a database file path, got {:?}", self.url));
        }
        Ok(PathBuf::from(rest))
    }

    /// Whether several instances may share it (PostgreSQL).
    pub fn is_shared(&self) -> bool {
        matches!(self.location(), Ok(StorageLocation::Postgres { .. }))
    }
}

/// `[log]`.
#[derive(Debug, Clone, Deserialize)]
pub struct LogConfig {
    /// A tracing `EnvFilter` directive; `RUST_LOG` wins if set. Default `info`.
    #[serde(default = "default_level")]
    pub level: String,
    /// `text` for terminals, `json` for one object per line. Default `text`.
    #[serde(default)]
    pub format: LogFormat,
}

/// Log line format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub enum LogFormat {
    /// Human-readable.
    #[default]
    Text,
    /// One JSON object per line, with span fields.
    Json,
}

fn default_level() -> String {
    "info".into()
}

/// `[delivery]`: how the outbox retries deliveries (services may override limits).
#[derive(Debug, Clone, Deserialize)]
pub struct DeliveryConfig {
    /// Backoff ceiling before the first retry. Default `1s`.
    #[serde(default = "default_retry_initial")]
    pub retry_initial: DurationParam,
    /// Largest backoff ceiling. Default `5m`.
    #[serde(default = "default_retry_max")]
    pub retry_max: DurationParam,
    /// Attempts before a delivery is dead. Default 12.
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// Age after which a delivery is dead. Default `24h`.
    #[serde(default = "default_max_age")]
    pub max_age: DurationParam,
}

fn default_retry_initial() -> DurationParam {
    DurationParam(Duration::from_secs(1))
}
fn default_retry_max() -> DurationParam {
    DurationParam(Duration::from_secs(300))
}
fn default_max_attempts() -> u32 {
    12
}
fn default_max_age() -> DurationParam {
    DurationParam(Duration::from_secs(24 * 3600))
}

/// `[supervisor]`: how connections are restarted.
#[derive(Debug, Clone, Deserialize)]
pub struct SupervisorConfig {
    /// Backoff ceiling before the first reconnect. Default `1s`.
    #[serde(default = "default_restart_initial")]
    pub restart_initial: DurationParam,
    /// Largest reconnect backoff ceiling. Default `60s`.
    #[serde(default = "default_restart_max")]
    pub restart_max: DurationParam,
    /// A connection up this long resets the backoff. Default `60s`.
    #[serde(default = "default_stable_after")]
    pub stable_after: DurationParam,
    /// Wait after an authentication or fatal failure. Default `5m`.
    #[serde(default = "default_failed_retry")]
    pub failed_retry: DurationParam,
}

fn default_restart_initial() -> DurationParam {
    DurationParam(Duration::from_secs(1))
}
fn default_restart_max() -> DurationParam {
    DurationParam(Duration::from_secs(60))
}
fn default_stable_after() -> DurationParam {
    DurationParam(Duration::from_secs(60))
}
fn default_failed_retry() -> DurationParam {
    DurationParam(Duration::from_secs(300))
}

/// A service's lifecycle status (Web1on1's service statuses, docs/web1on1.md).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub enum ServiceStatus {
    /// Known, not started.
    Queued,
    /// Running (inside its date window, when it has one).
    #[default]
    Active,
    /// Stopped; its webhooks answer 404.
    Disabled,
    /// No new conversations; its outbox drains, then it is archived.
    PendingArchive,
    /// Stopped; its data is kept.
    Archived,
}

switchboard_core::string_enum!(Synchronous { Full = "full", Normal = "normal" });
switchboard_core::string_enum!(LogFormat { Text = "text", Json = "json" });
switchboard_core::string_enum!(ServiceStatus {
    Queued = "queued",
    Active = "active",
    Disabled = "disabled",
    PendingArchive = "pendingArchive",
    Archived = "archived",
});

/// One configured service.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    /// `[a-z0-9_]+`, stable, used in URLs and storage.
    pub id: String,
    /// For humans.
    pub name: Option<String>,
    /// Lifecycle status.
    pub status: ServiceStatus,
    /// Tenant: tokens and webhooks see only their organization.
    pub organization: String,
    /// The desk service that answers this channel's conversations (`desk = "<id>"`):
    /// every contact message is mirrored there. Checked to exist, to share the
    /// organization and to be of a desk type.
    pub desk: Option<String>,
    /// On a desk (a bot): when and to whom it hands its conversations on. Checked
    /// like `desk`.
    pub handoff: Handoff,
    /// Start of the window in which the service is active.
    pub start_date: Option<Timestamp>,
    /// End of that window.
    pub end_date: Option<Timestamp>,
    /// Its type's typed params, with the capabilities the type declares.
    pub params: Arc<dyn AnyParams>,
    /// A digest of everything configured for the service: a reload restarts the service
    /// only when this changes.
    pub fingerprint: String,
}

impl ServiceConfig {
    /// The type name (`api`, `webhook`, …).
    pub fn type_name(&self) -> &'static str {
        self.params.type_name()
    }
}

/// A desk's handoff keys (`handoff`, `handoff_after`, `handoff_keywords`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Handoff {
    /// The desk that takes over (`handoff = "<id>"`); `None` for switchboard's own
    /// agents (`"api"` or no key), who answer through `/v1`.
    pub to: Option<String>,
    /// Hand off when the desk has not answered a contact message for this long.
    pub after: Option<Duration>,
    /// Hand off when a contact message contains one of these (lowercased; matched
    /// case-insensitively as whole words).
    pub keywords: Vec<String>,
}

impl Handoff {
    /// Whether any handoff key was set.
    pub fn configured(&self) -> bool {
        self.to.is_some() || self.after.is_some() || !self.keywords.is_empty()
    }
}

/// The service-level keys, before the params are typed by `type`.
#[derive(Deserialize)]
struct RawService {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    status: ServiceStatus,
    #[serde(default = "default_organization")]
    organization: String,
    #[serde(default)]
    desk: Option<String>,
    #[serde(default)]
    handoff: Option<String>,
    #[serde(default)]
    handoff_after: Option<DurationParam>,
    #[serde(default)]
    handoff_keywords: Vec<String>,
    #[serde(default)]
    start_date: Option<Timestamp>,
    #[serde(default)]
    end_date: Option<Timestamp>,
    #[serde(default)]
    touchpoints: Vec<String>,
    #[serde(default)]
    meta: Option<Value>,
    #[serde(default, rename = "smoochId", alias = "smoochid")]
    smooch_id: Option<String>,
    #[serde(default, rename = "smoochAppId", alias = "smoochappid")]
    smooch_app_id: Option<String>,
    #[serde(default)]
    params: Option<Value>,
}

fn default_organization() -> String {
    "default".into()
}

/// The config could not be used; one line per problem.
#[derive(Debug)]
pub struct ConfigErrors(pub Vec<Issue>);

impl std::fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, issue) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{issue}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// Loads and validates the config at `path`, with the process environment.
pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
    let env = environment(std::env::vars_os())?;
    let credentials = std::env::var_os("CREDENTIALS_DIRECTORY").map(PathBuf::from);
    load_with(path, &env, credentials.as_deref())
}

/// The environment as text. A variable that is not UTF-8 is skipped, unless its name
/// says it configures switchboard (`SWITCHBOARD_…`): that one is a problem, named.
pub fn environment(
    vars: impl Iterator<Item = (std::ffi::OsString, std::ffi::OsString)>,
) -> Result<Vec<(String, String)>, ConfigErrors> {
    let mut env = Vec::new();
    let mut issues = Vec::new();
    for (key, value) in vars {
        match (key.into_string(), value.into_string()) {
            (Ok(k), Ok(v)) => env.push((k, v)),
            (key, _) => {
                let name = key.unwrap_or_else(|k| k.to_string_lossy().into_owned());
                if name.starts_with("SWITCHBOARD_") {
                    issues.push(Issue {
                        path: name,
                        message: "the environment variable is not valid UTF-8".into(),
                    });
                }
            }
        }
    }
    if issues.is_empty() {
        Ok(env)
    } else {
        Err(ConfigErrors(issues))
    }
}

/// Loads with an explicit environment (for tests).
pub fn load_with(
    path: &Path,
    env: &[(String, String)],
    credentials_dir: Option<&Path>,
) -> Result<Config, ConfigErrors> {
    let root = tree::read(path, env).map_err(|i| ConfigErrors(vec![i]))?;
    from_tree(root, credentials_dir)
}

/// Loads and validates TOML text with an explicit environment: [`load_with`] without
/// the config file. The filesystem is read only for `*_file` secrets (relative ones
/// against `credentials_dir`).
pub fn load_str(
    text: &str,
    env: &[(String, String)],
    credentials_dir: Option<&Path>,
) -> Result<Config, ConfigErrors> {
    let root = tree::read_str(text, "config", env).map_err(|i| ConfigErrors(vec![i]))?;
    from_tree(root, credentials_dir)
}

/// Types and validates a raw tree, collecting every problem.
pub fn from_tree(
    mut root: Map<String, Value>,
    credentials_dir: Option<&Path>,
) -> Result<Config, ConfigErrors> {
    let mut issues = Vec::new();
    let mut section = |name: &str| root.remove(name).unwrap_or_else(empty_table);

    let server: Option<ServerConfig> = typed(section("server"), "server", &mut issues);
    let storage: Option<StorageConfig> = typed(section("storage"), "storage", &mut issues);
    let log: Option<LogConfig> = typed(section("log"), "log", &mut issues);
    let delivery: Option<DeliveryConfig> = typed(section("delivery"), "delivery", &mut issues);
    let supervisor: Option<SupervisorConfig> =
        typed(section("supervisor"), "supervisor", &mut issues);
    let services_tree = section("services");
    let hub = root.remove("hub").and_then(|v| {
        let mut table = match v.kind {
            ValueKind::Table(t) => t,
            _ => {
                issues.push(Issue {
                    path: "hub".into(),
                    message: "expected a table".into(),
                });
                return None;
            }
        };
        tree::resolve_secret_files(
            &mut table,
            hub::SECRETS,
            "hub",
            credentials_dir,
            &mut issues,
        );
        let hub: HubConfig = typed(
            Value::new(None, ValueKind::Table(table)),
            "hub",
            &mut issues,
        )?;
        issues.extend(hub.validate());
        Some(hub)
    });
    for key in root.keys() {
        issues.push(Issue {
            path: key.clone(),
            message: "unknown key".into(),
        });
    }

    if let Some(server) = &server {
        if let Some(url) = &server.public_url {
            let mut v = switchboard_core::Validator::new("server");
            v.url("public_url", url);
            issues.extend(v.into_issues());
        }
        if server.max_body < 1024 {
            issues.push(Issue {
                path: "server.max_body".into(),
                message: "must be at least 1024 bytes".into(),
            });
        }
        issues.extend(server.check_limits());
    }
    if let Some(storage) = &storage {
        if let Err(e) = storage.location() {
            issues.push(Issue {
                path: "storage.url".into(),
                message: e,
            });
        }
        if storage.event_retention.0 < Duration::from_secs(1) {
            issues.push(Issue {
                path: "storage.event_retention".into(),
                message: "must be at least 1s".into(),
            });
        }
    }
    if let Some(log) = &log
        && let Err(e) = tracing_subscriber::EnvFilter::try_new(&log.level)
    {
        issues.push(Issue {
            path: "log.level".into(),
            message: format!("not a valid filter directive: {e}"),
        });
    }
    if let Some(d) = &delivery {
        if d.max_attempts == 0 {
            issues.push(Issue {
                path: "delivery.max_attempts".into(),
                message: "must be at least 1".into(),
            });
        }
        if d.retry_initial.0.is_zero() || d.retry_max.0 < d.retry_initial.0 {
            issues.push(Issue {
                path: "delivery.retry_max".into(),
                message: "retry_initial must be positive and retry_max at least retry_initial"
                    .into(),
            });
        }
    }

    let mut services = BTreeMap::new();
    match services_tree.kind {
        ValueKind::Table(table) => {
            for (id, value) in table {
                if let Some(svc) = service(&id, value, credentials_dir, Unknown::Error, &mut issues)
                {
                    services.insert(id, svc);
                }
            }
        }
        _ => issues.push(Issue {
            path: "services".into(),
            message: "expected a table of services keyed by id".into(),
        }),
    }
    issues.extend(cross_checks(&services));

    if !issues.is_empty() {
        issues.sort_by(|a, b| a.path.cmp(&b.path).then(a.message.cmp(&b.message)));
        issues.dedup();
        return Err(ConfigErrors(issues));
    }
    Ok(Config {
        server: server.expect("no issues"),
        storage: storage.expect("no issues"),
        log: log.expect("no issues"),
        delivery: delivery.expect("no issues"),
        supervisor: supervisor.expect("no issues"),
        services,
        hub,
    })
}

/// Checks that span services: a bearer token must identify one service; a channel's
/// desk must be another service of its organization, of a desk type.
fn cross_checks(services: &BTreeMap<String, ServiceConfig>) -> Vec<Issue> {
    let mut issues = Vec::new();
    for svc in services.values() {
        if let Some(message) = desk_problem(svc, services) {
            issues.push(Issue {
                path: join(&join("services", &svc.id), "desk"),
                message,
            });
        }
    }
    for svc in services.values() {
        let path = join(&join("services", &svc.id), "handoff");
        if svc.handoff.configured() && !svc.params.can_be_desk() {
            issues.push(Issue {
                path,
                message: format!(
                    "a service of type {:?} is no desk and hands nothing off",
                    svc.type_name()
                ),
            });
            continue;
        }
        let Some(to) = &svc.handoff.to else { continue };
        let problem = match services.get(to) {
            None => Some(format!("no service {to:?} is configured")),
            Some(_) if to == &svc.id => Some("a desk cannot hand off to itself".into()),
            Some(d) if d.organization != svc.organization => Some(format!(
                "service {to:?} belongs to organization {:?}, not {:?}",
                d.organization, svc.organization
            )),
            Some(d) if !d.params.can_be_desk() => Some(format!(
                "service {to:?} is of type {:?}, which cannot be a desk",
                d.type_name()
            )),
            Some(_) => None,
        };
        if let Some(message) = problem {
            issues.push(Issue { path, message });
        }
    }
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    for svc in services.values() {
        for t in svc.params.tokens() {
            let path = format!("services.{}.params.{}", svc.id, t.key);
            if let Some(first) = seen.get(t.token.expose()) {
                issues.push(Issue {
                    path,
                    message: format!("the same token is already configured at {first}"),
                });
            } else {
                seen.insert(t.token.expose().to_owned(), path);
            }
        }
    }
    issues
}

/// Why `svc`'s `desk` cannot answer it among `services`: missing, itself, in another
/// organization, not of a desk type, or routed to a desk of its own. `None` when it has
/// no desk or a good one.
pub fn desk_problem(
    svc: &ServiceConfig,
    services: &BTreeMap<String, ServiceConfig>,
) -> Option<String> {
    let desk = svc.desk.as_ref()?;
    match services.get(desk) {
        None => Some(format!("no service {desk:?} is configured")),
        Some(_) if desk == &svc.id => Some("a service cannot be its own desk".into()),
        Some(d) if d.organization != svc.organization => Some(format!(
            "service {desk:?} belongs to organization {:?}, not {:?}",
            d.organization, svc.organization
        )),
        Some(d) if !d.params.can_be_desk() => Some(format!(
            "service {desk:?} is of type {:?}, which cannot be a desk",
            d.type_name()
        )),
        Some(d) if d.desk.is_some() => Some(format!("service {desk:?} has a desk of its own")),
        Some(_) => None,
    }
}

/// One line per service of `config` whose id already belongs to another organization
/// in `known` (id → organization, from storage and the config in force). Moving a
/// service would leave its conversations, events and webhooks split between tenants.
pub fn organization_moves(
    known: &std::collections::HashMap<String, String>,
    config: &Config,
) -> Vec<String> {
    config
        .services
        .iter()
        .filter_map(|(id, svc)| {
            let was = known.get(id)?;
            (*was != svc.organization).then(|| organization_move(id, was, &svc.organization))
        })
        .collect()
}

/// The line refusing to move service `id` from organization `was` to `now`.
pub fn organization_move(id: &str, was: &str, now: &str) -> String {
    format!(
        "{}: service {id:?} belongs to organization {was:?}; moving it to {now:?} requires a new service id",
        join(&join("services", id), "organization")
    )
}

/// Whether `id` is a valid service id.
pub fn valid_service_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// Types one service (from the config file or the hub).
pub fn service(
    id: &str,
    value: Value,
    credentials_dir: Option<&Path>,
    unknown_keys: Unknown,
    issues: &mut Vec<Issue>,
) -> Option<ServiceConfig> {
    let prefix = join("services", id);
    if !valid_service_id(id) {
        issues.push(Issue {
            path: prefix.clone(),
            message: "a service id is 1-64 characters of a-z, 0-9 and _".into(),
        });
        return None;
    }
    let fingerprint = fingerprint(&value);
    let raw: RawService = typed_with(value, &prefix, unknown_keys, issues)?;
    let params_prefix = join(&prefix, "params");
    let mut params = match raw.params.map(|v| v.kind) {
        Some(ValueKind::Table(t)) => t,
        None | Some(ValueKind::Nil) => Map::new(),
        Some(_) => {
            issues.push(Issue {
                path: params_prefix,
                message: "expected a table".into(),
            });
            return None;
        }
    };
    let Some(entry) = crate::registry::entry(&raw.kind) else {
        issues.push(Issue {
            path: join(&prefix, "type"),
            message: crate::registry::unknown_type_message(&raw.kind),
        });
        return None;
    };
    let before = issues.len();
    tree::resolve_secret_files(
        &mut params,
        entry.secrets,
        &params_prefix,
        credentials_dir,
        issues,
    );
    if issues.len() > before {
        return None;
    }
    let params = crate::registry::parse(
        entry,
        Value::new(None, ValueKind::Table(params)),
        &params_prefix,
        unknown_keys,
        issues,
    )?;
    if let (Some(start), Some(end)) = (raw.start_date, raw.end_date)
        && end <= start
    {
        issues.push(Issue {
            path: join(&prefix, "end_date"),
            message: "must be after start_date".into(),
        });
        return None;
    }
    if raw.organization.trim().is_empty() {
        issues.push(Issue {
            path: join(&prefix, "organization"),
            message: "must not be empty".into(),
        });
        return None;
    }
    if raw.handoff_after.as_ref().is_some_and(|d| d.0.is_zero()) {
        issues.push(Issue {
            path: join(&prefix, "handoff_after"),
            message: "must be longer than zero".into(),
        });
        return None;
    }
    if let Some(i) = raw
        .handoff_keywords
        .iter()
        .position(|k| k.trim().is_empty())
    {
        issues.push(Issue {
            path: format!("{}[{i}]", join(&prefix, "handoff_keywords")),
            message: "must not be empty".into(),
        });
        return None;
    }
    let handoff = Handoff {
        to: raw.handoff.filter(|h| h != "api"),
        after: raw.handoff_after.map(|d| d.0),
        keywords: raw
            .handoff_keywords
            .iter()
            .map(|k| k.trim().to_lowercase())
            .collect(),
    };
    let _ = (
        raw.description,
        raw.touchpoints,
        raw.meta,
        raw.smooch_id,
        raw.smooch_app_id,
    );
    Some(ServiceConfig {
        id: id.to_owned(),
        name: raw.name,
        status: raw.status,
        organization: raw.organization,
        desk: raw.desk,
        handoff,
        start_date: raw.start_date,
        end_date: raw.end_date,
        params,
        fingerprint,
    })
}

fn empty_table() -> Value {
    Value::new(None, ValueKind::Table(Map::new()))
}

/// A stable digest of a raw service tree (keys sorted), secrets included but never shown.
fn fingerprint(value: &Value) -> String {
    let json: serde_json::Value = value.clone().try_deserialize().unwrap_or_default();
    // serde_json's map is sorted (no preserve_order), so the text is canonical.
    let digest = Sha256::digest(json.to_string().as_bytes());
    digest.iter().take(12).map(|b| format!("{b:02x}")).collect()
}

// The sample config uses the api type.
#[cfg(all(test, feature = "api"))]
mod tests {
    use super::*;

    #[test]
    fn load_str_reads_text_env_and_secret_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("tok"), "a-t0ken-from-a-file\n").unwrap();
        let text = "[server]\nmax_body = 4096\n\
                    [services.api_in]\ntype = \"api\"\n\
                    [services.api_in.params.tokens.bot]\ntoken_file = \"tok\"\nscopes = [\"ingest\"]\n";
        let env = vec![("SWITCHBOARD_SERVER__MAX_BODY".into(), "8192".into())];
        let c = load_str(text, &env, Some(dir.path())).unwrap();
        assert_eq!(
            c.server.max_body, 8192,
            "the environment overrides the text"
        );
        assert!(c.services.contains_key("api_in"));
        let e = load_str("[server\n", &[], None).unwrap_err();
        assert!(e.to_string().starts_with("config: not valid TOML"), "{e}");
    }

    #[test]
    fn instance_id_defaults_to_host_and_pid_and_lease_ttl_is_bounded_by_its_key() {
        let c = load_str("", &[], None).unwrap();
        assert_eq!(c.server.lease_ttl.0, Duration::from_secs(15));
        let pid = format!("-{}", std::process::id());
        assert!(
            c.server.instance_id.ends_with(&pid) && c.server.instance_id.len() > pid.len(),
            "{}",
            c.server.instance_id
        );
        let text = "[server]\ninstance_id = \"eu-1\"\nlease_ttl = \"60s\"\n";
        let c = load_str(text, &[], None).unwrap();
        assert_eq!(c.server.instance_id, "eu-1");
        assert_eq!(c.server.lease_ttl.0, Duration::from_secs(60));
        let c = load_str("[server]\nlease_ttl = \"3s\"\n", &[], None).unwrap();
        assert_eq!(c.server.lease_ttl.0, Duration::from_secs(3));
        for bad in ["\"61s\"", "\"2s\"", "\"2999ms\"", "0", "\"soon\""] {
            let text = format!("[server]\nlease_ttl = {bad}\n");
            let e = load_str(&text, &[], None).unwrap_err().to_string();
            assert!(e.contains("server.lease_ttl"), "{bad}: {e}");
        }
        for bad in ["\"\"", "\"a\\nb\""] {
            let text = format!("[server]\ninstance_id = {bad}\n");
            let e = load_str(&text, &[], None).unwrap_err().to_string();
            assert!(e.contains("server.instance_id"), "{bad}: {e}");
        }
    }

    #[test]
    fn event_retention_defaults_to_a_week_and_is_bounded_by_its_key() {
        let c = load_str("", &[], None).unwrap();
        assert_eq!(
            c.storage.event_retention.0,
            Duration::from_secs(7 * 24 * 3600)
        );
        let c = load_str("[storage]\nevent_retention = \"1s\"\n", &[], None).unwrap();
        assert_eq!(c.storage.event_retention.0, Duration::from_secs(1));
        for bad in ["\"500ms\"", "0", "\"soon\""] {
            let text = format!("[storage]\nevent_retention = {bad}\n");
            let e = load_str(&text, &[], None).unwrap_err().to_string();
            assert!(e.contains("storage.event_retention"), "{bad}: {e}");
        }
    }
}
