//! The dispatcher: drains one service's outbox. Only the head of each queue
//! (conversation) is ever ready, so a conversation's deliveries go one at a time, in
//! order, while different conversations proceed in parallel. Results are committed before
//! the next delivery of the same queue can start. Nothing here polls: it sleeps until the
//! next retry is due, a new row is committed, or the connection comes back.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use switchboard_core::{
    Backoff, ConnState, DeliveryError, EventDelivery, MessageStatus, OutboundMessage, RetryLimits,
};
use tokio::task::JoinSet;
use tracing::Instrument;

use crate::app::RunningService;
use crate::config::DeliveryConfig;
use crate::metrics::Metrics;
use crate::store::rows::now_ms;
use crate::store::{OutboxItem, Outcome, Store};

/// How long an attempt may take in all before it counts as a timeout.
const ATTEMPT_DEADLINE: Duration = Duration::from_secs(120);
/// Retry delay after the connection was found down mid-delivery.
const DEFER_MS: i64 = 1_000;

/// Everything a dispatcher needs.
pub struct Dispatcher {
    svc: Arc<RunningService>,
    store: Store,
    metrics: Arc<Metrics>,
    backoff: Backoff,
    limits: RetryLimits,
    on_drained: Option<Box<dyn Fn() + Send + Sync>>,
}

impl Dispatcher {
    /// A dispatcher for `svc` with the daemon's delivery settings.
    pub fn new(
        svc: Arc<RunningService>,
        store: Store,
        metrics: Arc<Metrics>,
        delivery: &DeliveryConfig,
    ) -> Self {
        let limits = svc.connector.retry_limits().unwrap_or(RetryLimits {
            max_attempts: delivery.max_attempts,
            max_age: delivery.max_age.0,
        });
        Dispatcher {
            svc,
            store,
            metrics,
            backoff: Backoff {
                initial: delivery.retry_initial.0,
                max: delivery.retry_max.0,
            },
            limits,
            on_drained: None,
        }
    }

    /// Calls `f` (once) when the service's outbox is empty: a `pendingArchive` service is
    /// archived then.
    pub fn on_drained(&mut self, f: Box<dyn Fn() + Send + Sync>) {
        self.on_drained = Some(f);
    }

    /// Runs until the service's shutdown fires, then lets in-flight attempts finish.
    pub async fn run(self) {
        let this = Arc::new(self);
        let id = this.svc.config.id.clone();
        let notify = this.store.outbox_notifier(&id);
        let mut state = this.svc.host.watch_state();
        let needs_connection = this.svc.connector.needs_connection();
        let concurrency = this.svc.connector.delivery_concurrency().max(1);
        let shutdown = this.svc.ctx.shutdown.clone();
        let mut inflight: JoinSet<i64> = JoinSet::new();
        let mut inflight_ids: HashSet<i64> = HashSet::new();
        let mut drained_reported = false;

        loop {
            let paused = needs_connection && !matches!(state.borrow().0, ConnState::Connected);
            let mut wake_at: Option<i64> = None;
            if !paused && inflight.len() < concurrency {
                let now = now_ms();
                let limit = (concurrency + inflight.len()) as u32;
                match this.store.read.due(&id, now, limit).await {
                    Ok(due) => {
                        for item in due {
                            if inflight.len() >= concurrency {
                                break;
                            }
                            if inflight_ids.insert(item.id) {
                                let me = this.clone();
                                inflight.spawn(
                                    async move {
                                        let id = item.id;
                                        me.attempt(item).await;
                                        id
                                    }
                                    .in_current_span(),
                                );
                            }
                        }
                        if inflight.len() < concurrency {
                            let next = this.store.read.next_due(&id).await;
                            wake_at = next.as_ref().ok().copied().flatten().filter(|&t| t > now);
                            // No ready row at all: nothing is queued behind one either.
                            // Re-armed whenever rows appear again, since a reply may
                            // arrive between the report and the archive decision.
                            let drained = matches!(next, Ok(None)) && inflight.is_empty();
                            if !drained {
                                drained_reported = false;
                            } else if !drained_reported && let Some(f) = &this.on_drained {
                                drained_reported = true;
                                f();
                            }
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "reading the outbox failed; retrying shortly");
                        wake_at = Some(now + 1_000);
                    }
                }
            }
            let sleep = wake_at.map(|t| Duration::from_millis((t - now_ms()).max(0) as u64));
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = notify.notified() => {}
                Some(done) = inflight.join_next(), if !inflight.is_empty() => {
                    if let Ok(id) = done { inflight_ids.remove(&id); }
                }
                _ = state.changed() => {}
                _ = tokio::time::sleep(sleep.unwrap_or(Duration::MAX)), if sleep.is_some() => {}
            }
        }
        // Attempts in flight finish (their results are committed) within the shutdown
        // deadline; the supervisor aborts them after it.
        while inflight.join_next().await.is_some() {}
    }

    /// One attempt, with its result committed before returning.
    async fn attempt(&self, item: OutboxItem) {
        let svc = &self.svc;
        let attempt = item.attempts + 1;
        let now = now_ms();
        let age = Duration::from_millis((now - item.created_at).max(0) as u64);
        let result = if item.attempts > 0 && age > self.limits.max_age {
            Err(DeliveryError::permanent(format!(
                "gave up after {} attempts: older than {}",
                item.attempts,
                humantime::format_duration(self.limits.max_age)
            )))
        } else {
            match tokio::time::timeout(ATTEMPT_DEADLINE, self.deliver(&item, attempt)).await {
                Ok(r) => r,
                Err(_) => Err(DeliveryError::transient("delivery timed out")),
            }
        };
        let outcome = match result {
            Ok(sent) => {
                self.metrics
                    .delivery_latency(&svc.config.id, &item.kind, age.as_secs_f64());
                self.count(&item, "success");
                match sent {
                    Some((external_id, status)) => {
                        self.metrics.message(
                            &svc.config.id,
                            svc.config.type_name(),
                            "outbound",
                            "sent",
                        );
                        tracing::debug!(message_id = item.ref_id, attempt, "message delivered");
                        Outcome::Sent {
                            external_id,
                            status,
                        }
                    }
                    None => Outcome::EventDelivered,
                }
            }
            Err(DeliveryError::Unavailable { reason }) => {
                self.count(&item, "deferred");
                tracing::debug!(reason, "connection unavailable; delivery waits");
                Outcome::Defer {
                    at: now_ms() + DEFER_MS,
                }
            }
            Err(DeliveryError::Transient {
                reason,
                retry_after,
            }) if attempt < self.limits.max_attempts => {
                let mut delay = self.backoff.delay(attempt);
                if let Some(hint) = retry_after {
                    delay = delay.max(hint);
                }
                self.count(&item, "retry");
                if item.kind == "message" {
                    self.metrics.message(
                        &svc.config.id,
                        svc.config.type_name(),
                        "outbound",
                        "retried",
                    );
                }
                tracing::warn!(kind = %item.kind, ref_id = item.ref_id, attempt, error = %reason, retry_in = ?delay, "delivery failed; will retry");
                Outcome::Retry {
                    at: now_ms() + delay.as_millis() as i64,
                    attempts: attempt,
                    error: reason,
                }
            }
            Err(e) => {
                self.count(&item, "dead");
                if item.kind == "message" {
                    self.metrics.message(
                        &svc.config.id,
                        svc.config.type_name(),
                        "outbound",
                        "failed",
                    );
                }
                let error = match &e {
                    DeliveryError::Transient { reason, .. } => {
                        format!("gave up after {attempt} attempts: {reason}")
                    }
                    other => other.to_string(),
                };
                tracing::error!(kind = %item.kind, ref_id = item.ref_id, attempt, error = %error, "delivery is dead");
                Outcome::Dead {
                    attempts: attempt,
                    error,
                }
            }
        };
        if let Err(e) = self.store.delivery_result(item.id, outcome).await {
            // The row stays due and is attempted again: at least once, never lost.
            tracing::warn!(error = %e, "recording a delivery result failed; it will be retried");
        }
    }

    /// Hands the item to the connector. `Ok(Some(..))` for a sent message,
    /// `Ok(None)` for a delivered event.
    async fn deliver(
        &self,
        item: &OutboxItem,
        attempt: u32,
    ) -> Result<Option<(Option<String>, MessageStatus)>, DeliveryError> {
        let svc = &self.svc;
        match item.kind.as_str() {
            "message" => {
                let Some((message, conversation)) = self
                    .store
                    .read
                    .outbound(item.ref_id)
                    .await
                    .map_err(|e| DeliveryError::transient(e.to_string()))?
                else {
                    return Err(DeliveryError::permanent("the message no longer exists"));
                };
                let out = OutboundMessage {
                    idempotency_key: format!("{}-{}", svc.config.id, message.id),
                    message,
                    conversation,
                    attempt,
                };
                let sent = svc.connector.deliver_message(&svc.ctx, &out).await?;
                Ok(Some((sent.external_id, sent.status)))
            }
            "event" => {
                let Some(row) = self
                    .store
                    .read
                    .event(item.ref_id)
                    .await
                    .map_err(|e| DeliveryError::transient(e.to_string()))?
                else {
                    return Err(DeliveryError::permanent("the event no longer exists"));
                };
                let body = row.body();
                let event = serde_json::from_str(&body).map_err(|e| {
                    DeliveryError::permanent(format!("stored event is not valid: {e}"))
                })?;
                let delivery = EventDelivery {
                    delivery_id: format!("evt_{}", row.seq),
                    event,
                    body: Bytes::from(body),
                    attempt,
                };
                svc.connector.deliver_event(&svc.ctx, &delivery).await?;
                Ok(None)
            }
            other => Err(DeliveryError::permanent(format!(
                "unknown outbox kind {other:?}"
            ))),
        }
    }

    fn count(&self, item: &OutboxItem, result: &str) {
        self.metrics
            .delivery(&self.svc.config.id, &item.kind, result);
    }
}
