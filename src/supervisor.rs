//! The supervisor: one connection task and one dispatcher per running service, each in a
//! tracing span carrying `service_id` and `service_type`. A connection that fails is
//! restarted with capped exponential backoff and full jitter, reset after a stable
//! period; authentication and fatal failures are reported as `failed` and retried slowly.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use switchboard_core::{Backoff, ConnState, ConnectorError, ServiceContext};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::app::{App, RunningService, ServiceHost, TokenTable, service_info};
use crate::config::{Config, ServiceConfig, ServiceStatus, SupervisorConfig};
use crate::dispatch::Dispatcher;
use crate::store::{Routes, WebhookRoute};

struct Handle {
    cancel: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

/// Starts, restarts and stops services.
pub struct Supervisor {
    app: Arc<App>,
    handles: tokio::sync::Mutex<HashMap<String, Handle>>,
}

/// Whether a service with this config should be running now.
pub fn should_run(svc: &ServiceConfig) -> bool {
    matches!(
        svc.status,
        ServiceStatus::Active | ServiceStatus::PendingArchive
    )
}

impl Supervisor {
    /// A supervisor with nothing running.
    pub fn new(app: Arc<App>) -> Self {
        Supervisor {
            app,
            handles: tokio::sync::Mutex::new(HashMap::new()),
        }
    }

    /// Brings the running set in line with `config`: stops services that are gone or
    /// changed, starts new and changed ones, and leaves the rest untouched.
    pub async fn apply(&self, config: Arc<Config>) {
        let mut handles = self.handles.lock().await;
        let current = self.app.services.read().expect("services lock").clone();

        // Stop what is gone, no longer runnable, or changed.
        let mut stopping = Vec::new();
        for (id, running) in &current {
            let keep = config.services.get(id).is_some_and(|new| {
                should_run(new) && new.fingerprint == running.config.fingerprint
            });
            if !keep {
                stopping.push(id.clone());
            }
        }
        let grace = config.server.shutdown_timeout.0;
        for id in &stopping {
            self.app.services.write().expect("services lock").remove(id);
            if let Some(h) = handles.remove(id) {
                stop(h, grace).await;
            }
            if let Some(running) = current.get(id) {
                running.host.report(ConnState::Stopped);
            }
            tracing::info!(service_id = %id, "service stopped");
        }

        *self.app.config.write().expect("config lock") = config.clone();
        *self.app.tokens.write().expect("tokens lock") = Arc::new(TokenTable::from_config(&config));

        // Record services that exist but do not run, so the API and CLI show them.
        for svc in config.services.values().filter(|s| !should_run(s)) {
            let _ = self
                .app
                .store
                .record_service_now(
                    service_info(svc),
                    ConnState::Stopped,
                    crate::store::rows::now_ms(),
                    false,
                )
                .await;
        }

        // Start what is new or changed. Routes first, so that events from the new
        // services' first seconds already reach new webhooks.
        let to_start: Vec<&ServiceConfig> = config
            .services
            .values()
            .filter(|s| {
                should_run(s)
                    && !self
                        .app
                        .services
                        .read()
                        .expect("services lock")
                        .contains_key(&s.id)
            })
            .collect();
        self.app.store.set_routes(routes(&config));
        for svc in to_start {
            match self.start(svc, &config.supervisor, &config) {
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
    }

    fn start(
        &self,
        svc: &ServiceConfig,
        policy: &SupervisorConfig,
        config: &Config,
    ) -> Result<(Arc<RunningService>, Handle), String> {
        let connector = svc.params.build()?;
        let cancel = self.app.shutdown.child_token();
        let host = Arc::new(ServiceHost::new(
            self.app.store.clone(),
            self.app.metrics.clone(),
            svc,
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
        let dispatcher = Dispatcher::new(
            running.clone(),
            self.app.store.clone(),
            self.app.metrics.clone(),
            &config.delivery,
        );
        let tasks = vec![
            tokio::spawn(
                connection_loop(
                    running.clone(),
                    policy.clone(),
                    self.app.metrics.clone(),
                    config.server.shutdown_timeout.0,
                )
                .instrument(span.clone()),
            ),
            tokio::spawn(dispatcher.run().instrument(span)),
        ];
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

async fn stop(h: Handle, grace: Duration) {
    h.cancel.cancel();
    for t in h.tasks {
        let abort = t.abort_handle();
        if tokio::time::timeout(grace, t).await.is_err() {
            abort.abort();
        }
    }
}

/// The webhook subscriptions of the services that will run.
pub fn routes(config: &Config) -> Routes {
    Routes {
        webhooks: config
            .services
            .values()
            .filter(|s| should_run(s))
            .filter_map(|s| {
                let p = s.params.as_webhook()?;
                Some(WebhookRoute {
                    service_id: s.id.clone(),
                    organization: s.organization.clone(),
                    events: p.events.clone(),
                })
            })
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
        metrics
            .reconnects
            .get_or_create(&crate::metrics::ServiceLabels {
                service: svc.config.id.clone(),
                service_type: svc.config.type_name().into(),
            })
            .inc();
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
