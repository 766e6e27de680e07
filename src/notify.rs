//! systemd integration (`Type=notify`): READY=1 once storage is open and the listener is
//! bound, RELOADING=1/READY=1 around a reload, STOPPING=1 on shutdown, a one-line STATUS=
//! summary, and WATCHDOG=1 pings. Every call is a no-op without `$NOTIFY_SOCKET`.

use std::sync::Arc;
use std::time::Duration;

use sd_notify::NotifyState;
use switchboard_core::ConnState;

use crate::app::App;

/// How often STATUS= is refreshed when no watchdog asks for more.
const STATUS_EVERY: Duration = Duration::from_secs(10);

fn send(states: &[NotifyState<'_>]) {
    if let Err(e) = sd_notify::notify(states) {
        tracing::debug!(error = %e, "sd_notify failed");
    }
}

/// Start-up finished.
pub fn ready(app: &App) {
    send(&[NotifyState::Ready, NotifyState::Status(&summary(app))]);
}

/// A reload begins; systemd waits for the READY=1 that [`reloaded`] sends.
pub fn reloading() {
    match NotifyState::monotonic_usec_now() {
        Ok(now) => send(&[NotifyState::Reloading, now]),
        Err(_) => send(&[NotifyState::Reloading]),
    }
}

/// A reload ended (applied or refused).
pub fn reloaded(app: &App) {
    ready(app);
}

/// Shutdown began.
pub fn stopping() {
    send(&[NotifyState::Stopping, NotifyState::Status("stopping")]);
}

/// "5 services, 4 connected" (services that run; a failed one is named).
pub fn summary(app: &App) -> String {
    let running = app.running();
    let connected = running
        .iter()
        .filter(|s| matches!(s.host.state().0, ConnState::Connected))
        .count();
    let failed: Vec<String> = running
        .iter()
        .filter(|s| matches!(s.host.state().0, ConnState::Failed { .. }))
        .map(|s| s.config.id.clone())
        .collect();
    let mut line = format!(
        "{} service{}, {connected} connected",
        running.len(),
        if running.len() == 1 { "" } else { "s" }
    );
    if !failed.is_empty() {
        line += &format!(", failed: {}", failed.join(", "));
    }
    line
}

/// Pings the watchdog at half its interval, and refreshes STATUS=. Each ping first proves
/// the runtime schedules work: a freshly spawned task must complete, so a runtime whose
/// workers are all blocked stops pinging and systemd restarts the daemon.
pub async fn watchdog(app: Arc<App>) {
    let watchdog = sd_notify::watchdog_enabled();
    let every = watchdog
        .map(|d| d / 2)
        .unwrap_or(STATUS_EVERY)
        .min(STATUS_EVERY);
    loop {
        tokio::select! {
            _ = app.shutdown.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
        let alive = tokio::time::timeout(every, tokio::spawn(async {}))
            .await
            .is_ok_and(|r| r.is_ok());
        let status = summary(&app);
        if watchdog.is_some() && alive {
            send(&[NotifyState::Watchdog, NotifyState::Status(&status)]);
        } else if alive {
            send(&[NotifyState::Status(&status)]);
        } else {
            tracing::error!(
                "the runtime did not run a task in time; withholding the watchdog ping"
            );
        }
    }
}
