//! `switchboard run`: open storage, bind, start the services, serve, and stop gracefully
//! on SIGTERM/SIGINT; SIGHUP re-reads the config.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::Context;
use switchboard_core::SystemClock;
use tokio::net::TcpListener;
use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;

use crate::app::{App, TokenTable};
use crate::config::{self, Config};
use crate::metrics::Metrics;
use crate::store::Store;
use crate::supervisor::Supervisor;

/// How often expired bookkeeping is pruned.
const HOUSEKEEPING: Duration = Duration::from_secs(3600);

/// Runs the daemon until a termination signal; returns once everything has stopped.
pub async fn run(config: Config, config_path: PathBuf) -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let config = Arc::new(config);
    let metrics = Arc::new(Metrics::new());
    let db_path = config.storage.path().map_err(anyhow::Error::msg)?;
    let store = Store::open(&db_path, config.storage.synchronous, metrics.clone())
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let listener = TcpListener::bind(config.server.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.server.listen))?;
    let local = listener.local_addr()?;

    let http = reqwest::Client::builder()
        .user_agent(concat!("switchboard/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(30))
        .build()
        .context("building the HTTP client")?;
    let shutdown = CancellationToken::new();
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
    });
    let supervisor = Arc::new(Supervisor::new(app.clone()));
    supervisor.apply(config.clone()).await;

    let router = crate::http::router(app.clone());
    let server_shutdown = shutdown.clone();
    let server = tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(async move { server_shutdown.cancelled().await })
            .await
    });
    tracing::info!(listen = %local, services = config.services.len(), db = %db_path.display(), "switchboard is running");

    let housekeeping_store = store.clone();
    let housekeeping_stop = shutdown.clone();
    let housekeeping = tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = housekeeping_stop.cancelled() => return,
                _ = tokio::time::sleep(HOUSEKEEPING) => {
                    if let Err(e) = housekeeping_store.prune().await {
                        tracing::warn!(error = %e, "housekeeping failed");
                    }
                }
            }
        }
    });

    wait_for_signals(&app, &supervisor, &config_path).await?;

    let deadline = app.config().server.shutdown_timeout.0;
    tracing::info!(deadline = ?deadline, "shutting down");
    shutdown.cancel();
    let stopped = tokio::time::timeout(deadline, async {
        supervisor.stop_all(deadline).await;
        let _ = server.await;
        let _ = housekeeping.await;
    })
    .await;
    if stopped.is_err() {
        tracing::warn!("shutdown deadline passed; stopping with work in flight (it stays queued)");
    }
    store.close().await;
    tracing::info!("stopped");
    Ok(())
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

/// Waits for SIGTERM or SIGINT; reloads on SIGHUP meanwhile.
async fn wait_for_signals(
    app: &Arc<App>,
    supervisor: &Arc<Supervisor>,
    config_path: &Path,
) -> anyhow::Result<()> {
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let mut hup = signal(SignalKind::hangup()).context("installing the SIGHUP handler")?;
    loop {
        tokio::select! {
            _ = term.recv() => return Ok(()),
            _ = int.recv() => return Ok(()),
            _ = hup.recv() => {
                if let Err(lines) = reload(app, supervisor, config_path).await {
                    for line in lines {
                        tracing::error!(problem = %line, "reload rejected; the running services are unchanged");
                    }
                }
            }
        }
    }
}

/// Re-reads the config and applies it; an invalid config changes nothing.
pub async fn reload(
    app: &Arc<App>,
    supervisor: &Arc<Supervisor>,
    config_path: &Path,
) -> Result<(), Vec<String>> {
    let new = config::load(config_path)
        .map_err(|e| e.0.iter().map(|i| i.to_string()).collect::<Vec<_>>())?;
    let old = app.config();
    let mut refused = Vec::new();
    if new.server.listen != old.server.listen {
        refused.push("server.listen: changing the listen address needs a restart".to_owned());
    }
    if new.storage.url != old.storage.url {
        refused.push("storage.url: changing the database needs a restart".to_owned());
    }
    if !refused.is_empty() {
        return Err(refused);
    }
    supervisor.apply(Arc::new(new)).await;
    tracing::info!("config reloaded");
    Ok(())
}
