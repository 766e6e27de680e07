//! The supervisor: one connection task and one dispatcher per running service, each in a
//! tracing span carrying `service_id` and `service_type`. A connection that fails is
//! restarted with capped exponential backoff and full jitter, reset after a stable
//! period; authentication and fatal failures are reported as `failed` and retried slowly.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use switchboard_core::{Backoff, ConnState, ConnectorError, ServiceContext};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::app::{App, Control, RunningService, ServiceHost, TokenTable, service_info};
use crate::config::{Config, ServiceConfig, ServiceStatus, SupervisorConfig};
use crate::dispatch::Dispatcher;
use crate::store::{Routes, WebhookRoute};
use jiff::Timestamp;

#[cfg(test)]
mod tests;

struct Handle {
    cancel: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

/// Starts, restarts and stops services.
pub struct Supervisor {
    app: Arc<App>,
    handles: tokio::sync::Mutex<HashMap<String, Handle>>,
}

/// A service's status as it is now: its configured status, with an `active` service
/// outside its date window shown as `disabled` (Web1on1's `startDate`/`endDate` flip a
/// service between disabled and active, docs/web1on1.md) and a drained
/// `pendingArchive` service as `archived`.
pub fn effective_status(svc: &ServiceConfig, now: Timestamp, outbox_empty: bool) -> ServiceStatus {
    match svc.status {
        ServiceStatus::Active if !in_window(svc, now) => ServiceStatus::Disabled,
        ServiceStatus::PendingArchive if outbox_empty => ServiceStatus::Archived,
        other => other,
    }
}

/// Whether `now` is inside the service's `start_date`/`end_date` window.
pub fn in_window(svc: &ServiceConfig, now: Timestamp) -> bool {
    svc.start_date.is_none_or(|s| now >= s) && svc.end_date.is_none_or(|e| now < e)
}

/// Whether a service in this effective status runs.
pub fn runs(status: ServiceStatus) -> bool {
    matches!(
        status,
        ServiceStatus::Active | ServiceStatus::PendingArchive
    )
}

/// The next instant after `now` at which an active service's window opens or closes.
pub fn next_boundary(config: &Config, now: Timestamp) -> Option<Timestamp> {
    config
        .services
        .values()
        .filter(|s| s.status == ServiceStatus::Active)
        .flat_map(|s| [s.start_date, s.end_date])
        .flatten()
        .filter(|t| *t > now)
        .min()
}

impl Supervisor {
    /// A supervisor with nothing running.
    pub fn new(app: Arc<App>) -> Self {
        Supervisor {
            app,
            handles: tokio::sync::Mutex::new(HashMap::new()),
        }
    }

    /// Brings the running set in line with `config` at the clock's current time: stops
    /// services that are gone, changed or no longer runnable, starts new and changed
    /// ones, leaves the rest untouched, and records every status change as a
    /// `service.state` event. Returns when a date window next opens or closes.
    pub async fn apply(&self, config: Arc<Config>) -> Option<Timestamp> {
        let mut handles = self.handles.lock().await;
        let now = self.app.clock.now();
        let mut status: BTreeMap<String, ServiceStatus> = BTreeMap::new();
        for svc in config.services.values() {
            let drained = svc.status == ServiceStatus::PendingArchive
                && self
                    .app
                    .store
                    .read
                    .live_deliveries(&svc.id)
                    .await
                    .is_ok_and(|n| n == 0);
            status.insert(svc.id.clone(), effective_status(svc, now, drained));
        }
        let current = self.app.services.read().expect("services lock").clone();
        // In a cluster, the instance that ran a service records its change of status.
        let held_before: BTreeSet<String> = current
            .keys()
            .filter(|id| self.app.cluster.holds(id))
            .cloned()
            .collect();

        // Stop what is gone, changed, or no longer runnable.
        let grace = config.server.shutdown_timeout.0;
        for (id, running) in &current {
            let keep = config.services.get(id).is_some_and(|new| {
                runs(status[id]) && new.fingerprint == running.config.fingerprint
            });
            if keep {
                continue;
            }
            self.app.services.write().expect("services lock").remove(id);
            if let Some(h) = handles.remove(id) {
                stop(h, grace).await;
            }
            running.host.report(ConnState::Stopped);
            tracing::info!(service_id = %id, "service stopped");
        }

        let previous = std::mem::replace(
            &mut *self.app.statuses.write().expect("statuses lock"),
            status.iter().map(|(k, v)| (k.clone(), *v)).collect(),
        );
        *self.app.config.write().expect("config lock") = config.clone();
        *self.app.tokens.write().expect("tokens lock") = Arc::new(TokenTable::from_config(&config));

        // The leases follow the runnable set: what stopped above is given up.
        self.app.cluster.set_names(lease_names(&config, &status));

        // Record services that do not run, so the API and CLI show them; a change of
        // status is an event. Every instance of a cluster sees the change (a date
        // window flips for all): the one that ran the service records it, and for one
        // that ran nowhere, the housekeeping lease's holder.
        let housekeeper = self.app.cluster.holds(crate::cluster::HOUSEKEEPING);
        for svc in config.services.values().filter(|s| !runs(status[&s.id])) {
            let changed = previous.get(&svc.id).is_some_and(|p| *p != status[&svc.id]);
            let ran = previous.get(&svc.id).is_some_and(|p| runs(*p));
            let records = self.app.cluster.is_single()
                || held_before.contains(&svc.id)
                || (!ran && housekeeper);
            let info = service_info(svc, status[&svc.id].as_str());
            if let Err(e) = self
                .app
                .store
                .record_service_now(
                    info,
                    ConnState::Stopped,
                    crate::store::rows::now_ms(),
                    changed && records,
                )
                .await
            {
                tracing::warn!(service_id = %svc.id, error = %e, "recording a service status failed");
            }
            if changed {
                tracing::info!(service_id = %svc.id, status = status[&svc.id].as_str(), "service status changed");
            }
        }

        // Start what is new or changed. Routes first, so that events from the new
        // services' first seconds already reach new webhooks.
        self.app.store.set_routes(routes(&config, &status));
        let to_start: Vec<&ServiceConfig> = {
            let running = self.app.services.read().expect("services lock");
            config
                .services
                .values()
                .filter(|s| runs(status[&s.id]) && !running.contains_key(&s.id))
                .collect()
        };
        for svc in to_start {
            match self.start(svc, status[&svc.id], &config) {
                Ok((running, handle)) => {
                    self.app
                        .services
                        .write()
                        .expect("services lock")
                        .insert(svc.id.clone(), running);
                    handles.insert(svc.id.clone(), handle);
                }
                Err(e) => {
                    // Params were validated; a build failure is a bug or an unreadable file.
                    tracing::error!(service_id = %svc.id, error = %e, "service could not be built");
                }
            }
        }
        next_boundary(&config, now)
    }

    fn start(
        &self,
        svc: &ServiceConfig,
        status: ServiceStatus,
        config: &Config,
    ) -> Result<(Arc<RunningService>, Handle), String> {
        let policy = &config.supervisor;
        let connector = svc.params.build()?;
        let cancel = self.app.shutdown.child_token();
        let host = Arc::new(ServiceHost::new(
            self.app.store.clone(),
            self.app.metrics.clone(),
            self.app.ephemeral.clone(),
            svc,
            status,
        ));
        let ctx = ServiceContext::new(
            &svc.id,
            svc.type_name(),
            &svc.organization,
            &self.app.public_url(),
            self.app.http.clone(),
            cancel.clone(),
            self.app.clock.clone(),
            host.clone(),
        );
        let running = Arc::new(RunningService {
            config: svc.clone(),
            connector,
            ctx,
            host,
        });
        let span =
            tracing::info_span!("service", service_id = %svc.id, service_type = svc.type_name());
        let work = Work {
            app: self.app.clone(),
            policy: policy.clone(),
            delivery: config.delivery.clone(),
            grace: config.server.shutdown_timeout.0,
            span: span.clone(),
        };
        let tasks = if self.app.cluster.is_single() {
            // One instance: the service runs from now until it is stopped.
            work.spawn(running.clone())
        } else {
            // Its hooks are served here from now on; its connection and dispatcher run
            // only while this instance holds its lease.
            let svc = running.clone();
            let host = running.host.clone();
            let gate = crate::cluster::while_held(
                self.app.cluster.clone(),
                running.config.id.clone(),
                cancel.clone(),
                work.grace,
                move |period| {
                    let tasks = work.spawn(svc.for_period(period));
                    async move {
                        // Dropped when a lost lease's grace is over, or with the gate
                        // when the supervisor aborts it: the tasks are aborted then.
                        let _abort = AbortOnDrop(tasks.iter().map(|t| t.abort_handle()).collect());
                        for t in tasks {
                            let _ = t.await;
                        }
                    }
                },
                move || host.forget_state(),
            );
            vec![tokio::spawn(gate.instrument(span))]
        };
        tracing::info!(service_id = %svc.id, service_type = svc.type_name(), "service started");
        Ok((running, Handle { cancel, tasks }))
    }

    /// Stops every service within `deadline`.
    pub async fn stop_all(&self, deadline: Duration) {
        let mut handles = self.handles.lock().await;
        let all: Vec<Handle> = handles.drain().map(|(_, h)| h).collect();
        for h in &all {
            h.cancel.cancel();
        }
        let _ = tokio::time::timeout(deadline, async {
            for h in all {
                for t in h.tasks {
                    let _ = t.await;
                }
            }
        })
        .await;
        for svc in self.app.running() {
            svc.host.report(ConnState::Stopped);
        }
    }
}

/// What a running service's connection and dispatcher are made with.
struct Work {
    app: Arc<App>,
    policy: SupervisorConfig,
    delivery: crate::config::DeliveryConfig,
    grace: Duration,
    span: tracing::Span,
}

impl Work {
    /// Spawns the connection loop and the dispatcher of `running`, which end when its
    /// context's shutdown fires.
    fn spawn(&self, running: Arc<RunningService>) -> Vec<JoinHandle<()>> {
        let mut dispatcher = Dispatcher::new(
            running.clone(),
            self.app.store.clone(),
            self.app.metrics.clone(),
            &self.delivery,
        );
        if running.config.status == ServiceStatus::PendingArchive {
            // Once the outbox is empty the service is archived: the control loop re-applies.
            let control = self.app.control.clone();
            dispatcher.on_drained(Box::new(move || {
                let _ = control.send(Control::Reapply);
            }));
        }
        vec![
            tokio::spawn(
                connection_loop(
                    running,
                    self.policy.clone(),
                    self.app.metrics.clone(),
                    self.grace,
                )
                .instrument(self.span.clone()),
            ),
            tokio::spawn(dispatcher.run().instrument(self.span.clone())),
        ]
    }
}

/// Aborts tasks when dropped.
struct AbortOnDrop(Vec<tokio::task::AbortHandle>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        for t in &self.0 {
            t.abort();
        }
    }
}

async fn stop(h: Handle, grace: Duration) {
    h.cancel.cancel();
    for t in h.tasks {
        let abort = t.abort_handle();
        if tokio::time::timeout(grace, t).await.is_err() {
            abort.abort();
        }
    }
}

/// The lease names this instance can run: its runnable services, the hub sync and
/// housekeeping.
pub fn lease_names(config: &Config, status: &BTreeMap<String, ServiceStatus>) -> BTreeSet<String> {
    config
        .services
        .values()
        .filter(|s| status.get(&s.id).is_some_and(|st| runs(*st)))
        .map(|s| s.id.clone())
        .chain([crate::cluster::HUB, crate::cluster::HOUSEKEEPING].map(String::from))
        .collect()
}

/// The event subscriptions of the services that will run, and every channel's desk (a
/// desk that is not running still gets its deliveries queued: they wait for it).
pub fn routes(config: &Config, status: &BTreeMap<String, ServiceStatus>) -> Routes {
    Routes {
        webhooks: config
            .services
            .values()
            .filter(|s| status.get(&s.id).is_some_and(|st| runs(*st)))
            .filter_map(|s| {
                let subscription = s.params.subscription()?;
                Some(WebhookRoute {
                    service_id: s.id.clone(),
                    organization: s.organization.clone(),
                    events: subscription.types,
                })
            })
            .collect(),
        desks: config
            .services
            .values()
            .filter_map(|s| Some((s.id.clone(), s.desk.clone()?)))
            .collect(),
        handoffs: config
            .services
            .values()
            .filter(|s| s.handoff.configured())
            .map(|s| (s.id.clone(), s.handoff.clone()))
            .collect(),
    }
}

/// Keeps a service's connection up until its token is cancelled.
async fn connection_loop(
    svc: Arc<RunningService>,
    policy: SupervisorConfig,
    metrics: Arc<crate::metrics::Metrics>,
    grace: Duration,
) {
    let backoff = Backoff {
        initial: policy.restart_initial.0,
        max: policy.restart_max.0,
    };
    let cancel = svc.ctx.shutdown.clone();
    let mut attempt: u32 = 0;
    while !cancel.is_cancelled() {
        svc.host.report(ConnState::Connecting);
        let started = Instant::now();
        let run = svc.connector.run(&svc.ctx);
        tokio::pin!(run);
        let result = tokio::select! {
            r = &mut run => r,
            _ = cancel.cancelled() => match tokio::time::timeout(grace, &mut run).await {
                Ok(r) => r,
                Err(_) => {
                    tracing::warn!("connection did not close within the shutdown deadline");
                    Ok(())
                }
            },
        };
        if cancel.is_cancelled() {
            break;
        }
        if started.elapsed() >= policy.stable_after.0 {
            attempt = 0;
        }
        attempt = attempt.saturating_add(1);
        metrics.restart(&svc.config.id, svc.config.type_name());
        let delay = match &result {
            Ok(()) | Err(ConnectorError::Transient(_)) => {
                let delay = backoff.delay(attempt);
                let reason = match &result {
                    Err(e) => e.to_string(),
                    Ok(()) => "connection ended".into(),
                };
                tracing::warn!(attempt, retry_in = ?delay, error = %reason, "connection lost; reconnecting");
                svc.host.report(ConnState::Backoff {
                    attempt,
                    until: svc.ctx.clock.now() + delay,
                });
                delay
            }
            Err(e @ (ConnectorError::Auth(_) | ConnectorError::Fatal(_))) => {
                let reason = e.to_string();
                // Jitter ±10% so a fleet restarted together does not retry together.
                let base = policy.failed_retry.0;
                let delay = base.mul_f64(0.9 + fastrand::f64() * 0.2);
                tracing::error!(retry_in = ?delay, error = %reason, "service failed; an operator should check its configuration");
                svc.host.report(ConnState::Failed { reason });
                delay
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = cancel.cancelled() => break,
        }
    }
}
