//! `switchboard run`: open storage, bind, start the services, serve, and stop gracefully
//! on SIGTERM/SIGINT; SIGHUP re-reads the config.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::Context;
use switchboard_core::SystemClock;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::app::{App, Control, TokenTable};
use crate::config::{self, Config};
use crate::metrics::Metrics;
use crate::store::Store;
use crate::supervisor::Supervisor;

/// How often due `handoff_after` timers are looked for (one indexed query).
const HANDOFF_TICK: Duration = Duration::from_secs(1);

/// Runs the daemon until a termination signal; returns once everything has stopped.
pub async fn run(config: Config, config_path: PathBuf) -> anyhow::Result<()> {
    // Handlers first: a SIGTERM that arrives while storage opens or services start must
    // stop the daemon gracefully, not kill it with the default action.
    let signals = Signals::install()?;
    let _ = rustls::crypto::ring::default_provider().install_default();
    return_large_buffers();
    let fd_limit = crate::http::server::raise_fd_limit();
    crate::http::server::connection_cap(config.server.max_connections, fd_limit)
        .map_err(anyhow::Error::msg)?;
    let config = Arc::new(config);
    let metrics = Arc::new(Metrics::new());
    let location = config.storage.location().map_err(anyhow::Error::msg)?;
    // On shared storage, delivery results are fenced by this instance's leases.
    let fence = config
        .storage
        .is_shared()
        .then(|| config.server.instance_id.clone());
    let store = Store::open_at(&location, fence, metrics.clone())
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    // Refused from here on, the store is closed first: its threads and connections end
    // before the process does (a PostgreSQL client must not close on a runtime thread).
    let started = async {
        let listener = crate::http::server::listen(config.server.listen)
            .with_context(|| format!("cannot listen on {}", config.server.listen))?;
        // Shared by every connector and the hub client: redirects are refused, never
        // followed.
        let http = switchboard_core::outbound::client_builder()
            .build()
            .context("building the HTTP client")?;
        // A service id keeps the organization it was first stored with: its
        // conversations, events and webhooks belong to that tenant.
        let known = known_organizations(&store).await?;
        let moved = config::organization_moves(&known, &config);
        if !moved.is_empty() {
            anyhow::bail!("{}", moved.join("\n"));
        }
        let cluster = join_cluster(&config, &metrics).await?;
        anyhow::Ok((listener, http, known, cluster))
    };
    let (listener, http, known, cluster) = match started.await {
        Ok(started) => started,
        Err(e) => {
            store.close().await;
            return Err(e);
        }
    };
    let local = listener.local_addr()?;
    let shutdown = CancellationToken::new();
    let (control, control_rx) = mpsc::unbounded_channel();
    let app = Arc::new(App {
        config: RwLock::new(config.clone()),
        store: store.clone(),
        metrics,
        services: RwLock::new(Default::default()),
        tokens: RwLock::new(Arc::new(TokenTable::from_config(&config))),
        http,
        clock: Arc::new(clock_from_env()?),
        shutdown: shutdown.clone(),
        bound: local,
        statuses: Default::default(),
        control,
        ephemeral: tokio::sync::broadcast::channel(1024).0,
        hub_sync: Default::default(),
        sessions: Default::default(),
        cluster: cluster.clone(),
    });
    let supervisor = Arc::new(Supervisor::new(app.clone()));
    // The hub's last good list: services keep running when the hub is down at start.
    let hub_list = match config.hub {
        Some(_) => crate::hub::stored_list(&store).await,
        None => Vec::new(),
    };
    let mut state = ControlState {
        file: config.clone(),
        hub: hub_list,
        hub_problems: Vec::new(),
        boundary: None,
        known,
        fd_limit,
    };
    state.apply(&app, &supervisor).await;

    let router = crate::http::router(app.clone());
    let server = tokio::spawn(crate::http::server::serve(
        listener,
        router,
        app.clone(),
        fd_limit,
    ));
    tracing::info!(listen = %local, services = config.services.len(), storage = ?location, "switchboard is running");
    crate::notify::ready(&app);
    let watchdog = tokio::spawn(crate::notify::watchdog(app.clone()));

    // Once per cluster: retention and receipt expiry, and the `handoff_after` timers
    // (stored with their conversations, so they survive a restart).
    let housekeeping = tokio::spawn(crate::cluster::while_held(
        cluster.clone(),
        crate::cluster::HOUSEKEEPING.to_owned(),
        shutdown.clone(),
        config.server.shutdown_timeout.0,
        {
            let app = app.clone();
            move |stop| {
                let app = app.clone();
                async move {
                    tokio::join!(
                        crate::housekeeping::run(app.clone(), stop.clone()),
                        fire_handoffs(app.store.clone(), stop),
                    );
                }
            }
        },
        || {},
    ));

    let (hub_config, hub_config_rx) = watch::channel(config.hub.clone());
    let hub = tokio::spawn(crate::hub::sync_task(app.clone(), hub_config_rx));
    control_loop(
        &app,
        &supervisor,
        &config_path,
        state,
        control_rx,
        hub_config,
        signals,
    )
    .await?;

    let deadline = app.config().server.shutdown_timeout.0;
    tracing::info!(deadline = ?deadline, "shutting down");
    crate::notify::stopping();
    shutdown.cancel();
    let stopped = tokio::time::timeout(deadline, async {
        supervisor.stop_all(deadline).await;
        let _ = server.await;
        let _ = housekeeping.await;
        let _ = hub.await;
        let _ = watchdog.await;
    })
    .await;
    if stopped.is_err() {
        tracing::warn!("shutdown deadline passed; stopping with work in flight (it stays queued)");
    }
    // The services stopped: the other instances may take them now rather than after
    // the lease TTL.
    let ttl = app.config().server.lease_ttl.0;
    if tokio::time::timeout(ttl, cluster.leave()).await.is_err() {
        tracing::warn!("leaving the cluster timed out; the leases expire within the lease TTL");
    }
    store.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// Joins the other instances on the PostgreSQL database, or, with SQLite, is the one
/// instance.
async fn join_cluster(
    config: &Config,
    metrics: &Arc<Metrics>,
) -> anyhow::Result<Arc<crate::cluster::Cluster>> {
    let id = config.server.instance_id.clone();
    match config.storage.location().map_err(anyhow::Error::msg)? {
        crate::config::StorageLocation::Postgres { url } => {
            crate::cluster::Cluster::join(&url, id, config.server.lease_ttl.0, metrics.clone())
                .await
        }
        crate::config::StorageLocation::Sqlite { .. } => {
            Ok(crate::cluster::Cluster::single(id, metrics.clone()))
        }
    }
}

/// Fires the due `handoff_after` timers until `stop`.
async fn fire_handoffs(store: Store, stop: CancellationToken) {
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(HANDOFF_TICK) => {
                match store.fire_due_handoffs().await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(conversations = n, "handoff_after: handed off"),
                    Err(e) => tracing::warn!(error = %e, "handoff timers failed"),
                }
            }
        }
    }
}

/// Makes glibc hand buffers of 128 KiB and more (request bodies, event frames) back to
/// the system when they are freed. By default it raises that threshold to the largest
/// buffer freed so far, after which megabyte bodies come from, and stay in, each
/// thread's heap: 8 MiB of bodies in flight held ~100 MiB of resident memory.
fn return_large_buffers() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter; called before other threads run.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
    }
}

/// The daemon's clock: the system clock, unless `SWITCHBOARD_CLOCK_START` (an RFC 3339
/// instant) says where it should start — it then runs on in real time from there. For
/// tests and rehearsals of date windows and opening hours; never set in production.
fn clock_from_env() -> anyhow::Result<SystemClock> {
    let Ok(start) = std::env::var("SWITCHBOARD_CLOCK_START") else {
        return Ok(SystemClock::default());
    };
    let start: jiff::Timestamp = start.parse().with_context(|| {
        format!("SWITCHBOARD_CLOCK_START: expected an RFC 3339 instant, got {start:?}")
    })?;
    let offset = start.duration_since(jiff::Timestamp::now());
    tracing::warn!(clock_start = %start, "the clock is shifted by SWITCHBOARD_CLOCK_START");
    Ok(SystemClock { offset })
}

/// What the control loop keeps between changes.
struct ControlState {
    /// The config file as last loaded.
    file: Arc<Config>,
    /// The hub's last good service list.
    hub: Vec<serde_json::Value>,
    /// Problems of the last merge, logged only when they change.
    hub_problems: Vec<String>,
    /// When a date window next opens or closes.
    boundary: Option<jiff::Timestamp>,
    /// The organization of every service id stored or applied so far.
    known: HashMap<String, String>,
    /// The open-file limit in force (for `server.max_connections`).
    fd_limit: u64,
}

impl ControlState {
    /// Merges the hub's services into the config and applies the result. A hub service
    /// that names another organization than its id already has is not moved: the
    /// version running keeps running (or it stays out), and the merge reports why.
    async fn apply(&mut self, app: &App, supervisor: &Supervisor) {
        let merged = match &self.file.hub {
            Some(hub) => {
                let (mut merged, mut problems) =
                    crate::hub::merge(&self.file, &self.hub, hub.organization.as_deref());
                let running = app.config();
                let moved: Vec<String> = merged
                    .services
                    .iter()
                    .filter(|(id, s)| self.known.get(*id).is_some_and(|o| *o != s.organization))
                    .map(|(id, _)| id.clone())
                    .collect();
                for id in moved {
                    let new = merged.services.remove(&id).expect("listed above");
                    problems.push(format!(
                        "hub service skipped: {}",
                        config::organization_move(&id, &self.known[&id], &new.organization)
                    ));
                    if let Some(old) = running.services.get(&id)
                        && old.organization == self.known[&id]
                    {
                        merged.services.insert(id, old.clone());
                    }
                }
                if problems != self.hub_problems {
                    for p in &problems {
                        tracing::warn!(problem = %p, "hub service list");
                    }
                    self.hub_problems = problems;
                }
                Arc::new(merged)
            }
            None => self.file.clone(),
        };
        for (id, svc) in &merged.services {
            self.known
                .entry(id.clone())
                .or_insert_with(|| svc.organization.clone());
        }
        self.boundary = supervisor.apply(merged).await;
    }
}

/// The organization of every service the store has seen.
async fn known_organizations(store: &Store) -> anyhow::Result<HashMap<String, String>> {
    let stored = store
        .read
        .services()
        .await
        .map_err(|e| anyhow::anyhow!("reading the stored services: {e}"))?;
    Ok(stored
        .into_iter()
        .map(|s| (s.info.id, s.info.organization))
        .collect())
}

/// The signals the daemon handles.
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
    xfsz: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> anyhow::Result<Self> {
        Ok(Signals {
            term: signal(SignalKind::terminate()).context("installing the SIGTERM handler")?,
            int: signal(SignalKind::interrupt()).context("installing the SIGINT handler")?,
            hup: signal(SignalKind::hangup()).context("installing the SIGHUP handler")?,
            // A write past the file-size limit raises SIGXFSZ, whose default action kills
            // the process. With a handler installed the write fails with EFBIG instead,
            // SQLite reports a full disk, and requests get 503 until space returns.
            xfsz: signal(SignalKind::from_raw(libc::SIGXFSZ))
                .context("installing the SIGXFSZ handler")?,
        })
    }
}

/// Serializes every change of the running set: signals, reload requests, hub updates,
/// date-window boundaries and archive completions. Returns on SIGTERM or SIGINT.
async fn control_loop(
    app: &Arc<App>,
    supervisor: &Arc<Supervisor>,
    config_path: &Path,
    mut state: ControlState,
    mut control: mpsc::UnboundedReceiver<Control>,
    hub_config: watch::Sender<Option<crate::config::HubConfig>>,
    signals: Signals,
) -> anyhow::Result<()> {
    let Signals {
        mut term,
        mut int,
        mut hup,
        mut xfsz,
    } = signals;
    loop {
        // Sleep until the next window boundary by the daemon's clock, not by polling.
        let until_boundary = state.boundary.map(|b| {
            let left = b.duration_since(app.clock.now());
            Duration::try_from(left).unwrap_or(Duration::ZERO) + Duration::from_millis(5)
        });
        tokio::select! {
            _ = term.recv() => return Ok(()),
            _ = int.recv() => return Ok(()),
            _ = xfsz.recv() => tracing::warn!("a write exceeded the file-size limit (RLIMIT_FSIZE)"),
            _ = hup.recv() => {
                crate::notify::reloading();
                if let Err(lines) = reload(app, &mut state, supervisor, config_path, &hub_config).await {
                    for line in lines {
                        tracing::error!(problem = %line, "reload rejected; the running services are unchanged");
                    }
                }
                crate::notify::reloaded(app);
            }
            Some(msg) = control.recv() => match msg {
                Control::Reload(reply) => {
                    crate::notify::reloading();
                    let result = reload(app, &mut state, supervisor, config_path, &hub_config).await;
                    crate::notify::reloaded(app);
                    if let Err(lines) = &result {
                        for line in lines {
                            tracing::error!(problem = %line, "reload rejected; the running services are unchanged");
                        }
                    }
                    if let Some(reply) = reply {
                        let _ = reply.send(result);
                    }
                }
                Control::Hub(list) => {
                    state.hub = list;
                    state.apply(app, supervisor).await;
                }
                Control::Reapply => state.apply(app, supervisor).await,
            },
            _ = tokio::time::sleep(until_boundary.unwrap_or(Duration::MAX)), if until_boundary.is_some() => {
                state.apply(app, supervisor).await;
            }
        }
    }
}

/// Re-reads the config file and applies it; an invalid config changes nothing and
/// yields the same lines `check-config` prints.
async fn reload(
    app: &App,
    state: &mut ControlState,
    supervisor: &Supervisor,
    config_path: &Path,
    hub_config: &watch::Sender<Option<crate::config::HubConfig>>,
) -> Result<(), Vec<String>> {
    let new = config::load(config_path)
        .map_err(|e| e.0.iter().map(|i| i.to_string()).collect::<Vec<_>>())?;
    let old = &state.file;
    let mut refused = Vec::new();
    if new.server.listen != old.server.listen {
        refused.push("server.listen: changing the listen address needs a restart".to_owned());
    }
    if new.storage.url != old.storage.url {
        refused.push("storage.url: changing the database needs a restart".to_owned());
    }
    if new.server.instance_id != old.server.instance_id {
        refused.push("server.instance_id: changing it needs a restart".to_owned());
    }
    if new.server.lease_ttl.0 != old.server.lease_ttl.0 {
        refused.push("server.lease_ttl: changing it needs a restart".to_owned());
    }
    if new.server.max_body_in_flight != old.server.max_body_in_flight {
        refused.push("server.max_body_in_flight: changing it needs a restart".to_owned());
    }
    if let Err(e) = crate::http::server::connection_cap(new.server.max_connections, state.fd_limit)
    {
        refused.push(e);
    }
    refused.extend(config::organization_moves(&state.known, &new));
    if !refused.is_empty() {
        return Err(refused);
    }
    hub_config.send_replace(new.hub.clone());
    if new.hub.is_none() {
        state.hub.clear();
    }
    state.file = Arc::new(new);
    state.apply(app, supervisor).await;
    tracing::info!("config reloaded");
    Ok(())
}
