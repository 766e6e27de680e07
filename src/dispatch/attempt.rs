//! One delivery attempt: hand the row to the connector within a deadline, holding one of
//! the service's slots while it is young, and classify what came back as an [`Outcome`].

use std::time::Duration;

use bytes::Bytes;
use switchboard_core::{DeliveryError, EventDelivery, MessageStatus, Mirror, OutboundMessage};
use tokio::sync::Semaphore;

use super::Dispatcher;
use crate::store::rows::now_ms;
use crate::store::{OutboxItem, OutboxKind, Outcome};

/// How long an attempt may take in all before it counts as a timeout.
const ATTEMPT_DEADLINE: Duration = Duration::from_secs(120);
/// Retry delay after the connection was found down mid-delivery.
const DEFER_MS: i64 = 1_000;
/// An attempt still unanswered after this gives its slot back (see the module docs of
/// the dispatcher: a hanging conversation must not hold the slots the others need).
pub const SLOW_AFTER: Duration = Duration::from_secs(1);

/// What a connector accepted.
enum Accepted {
    /// A message, with the provider's id for it and its status.
    Sent(Option<String>, MessageStatus),
    /// An event.
    Event,
    /// A message mirrored into a desk.
    Mirrored,
}

impl Dispatcher {
    /// Makes one attempt at `item` and says what to record.
    pub(super) async fn attempt(&self, item: &OutboxItem, slots: &Semaphore) -> Outcome {
        let svc = &self.svc;
        let kind = item.kind.map_or("unknown", OutboxKind::as_str);
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
            let permit = slots.acquire().await;
            let call = tokio::time::timeout(ATTEMPT_DEADLINE, self.deliver(item, attempt));
            tokio::pin!(call);
            let r = tokio::select! {
                r = &mut call => r,
                _ = tokio::time::sleep(SLOW_AFTER) => {
                    drop(permit);
                    call.await
                }
            };
            r.unwrap_or_else(|_| Err(DeliveryError::transient("delivery timed out")))
        };
        match result {
            Ok(sent) => {
                self.metrics
                    .delivery_latency(&svc.config.id, kind, age.as_secs_f64());
                self.count(kind, "success");
                match sent {
                    Accepted::Sent(external_id, status) => {
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
                    Accepted::Event => Outcome::EventDelivered,
                    Accepted::Mirrored => Outcome::Mirrored,
                }
            }
            Err(DeliveryError::Unavailable { reason }) => {
                self.count(kind, "deferred");
                tracing::debug!(reason, "connection unavailable; delivery waits");
                Outcome::Defer {
                    at: now_ms() + DEFER_MS,
                }
            }
            Err(DeliveryError::Throttled {
                reason,
                retry_after,
            }) => {
                // The provider's rate limit, not the message: wait as told, attempt
                // unspent (spending attempts on it would kill replies in a burst).
                let wait = retry_after.map_or(DEFER_MS, |d| {
                    (d.as_millis().min(i64::MAX as u128) as i64).max(DEFER_MS)
                });
                self.count(kind, "throttled");
                tracing::debug!(
                    kind,
                    ref_id = item.ref_id,
                    reason,
                    wait_ms = wait,
                    "provider rate limit; delivery waits"
                );
                Outcome::Defer {
                    at: now_ms() + wait,
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
                self.count(kind, "retry");
                if item.kind == Some(OutboxKind::Message) {
                    self.metrics.message(
                        &svc.config.id,
                        svc.config.type_name(),
                        "outbound",
                        "retried",
                    );
                }
                tracing::warn!(kind, ref_id = item.ref_id, attempt, error = %reason, retry_in = ?delay, "delivery failed; will retry");
                Outcome::Retry {
                    at: now_ms() + delay.as_millis() as i64,
                    attempts: attempt,
                    error: reason,
                }
            }
            Err(e) => {
                self.count(kind, "dead");
                if item.kind == Some(OutboxKind::Message) {
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
                tracing::error!(kind, ref_id = item.ref_id, attempt, error = %error, "delivery is dead");
                Outcome::Dead {
                    attempts: attempt,
                    error,
                }
            }
        }
    }

    /// Hands the item to the connector and says what it accepted.
    async fn deliver(&self, item: &OutboxItem, attempt: u32) -> Result<Accepted, DeliveryError> {
        let svc = &self.svc;
        match item.kind {
            Some(OutboxKind::Message) => {
                let (message, conversation) = self.message_of(item).await?;
                let out = OutboundMessage {
                    idempotency_key: format!("{}-{}", svc.config.id, message.id),
                    message,
                    conversation,
                    attempt,
                };
                let sent = svc.connector.deliver_message(&svc.ctx, &out).await?;
                Ok(Accepted::Sent(sent.external_id, sent.status))
            }
            Some(OutboxKind::Mirror) => {
                let (message, conversation) = self.message_of(item).await?;
                let mirror = Mirror {
                    delivery_id: format!("mir_{}", message.id),
                    message,
                    conversation,
                    attempt,
                };
                svc.connector.mirror(&svc.ctx, &mirror).await?;
                Ok(Accepted::Mirrored)
            }
            Some(OutboxKind::Event) => {
                // Read with the outbox row; `None` means the event row is gone.
                let Some(row) = &item.event else {
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
                Ok(Accepted::Event)
            }
            None => Err(DeliveryError::permanent(
                "unknown outbox kind (written by a newer version?)",
            )),
        }
    }

    /// The message a message or mirror row delivers, with its conversation.
    async fn message_of(
        &self,
        item: &OutboxItem,
    ) -> Result<(switchboard_core::Message, switchboard_core::Conversation), DeliveryError> {
        self.store
            .read
            .outbound(item.ref_id)
            .await
            .map_err(|e| DeliveryError::transient(e.to_string()))?
            .ok_or_else(|| DeliveryError::permanent("the message no longer exists"))
    }

    fn count(&self, kind: &str, result: &str) {
        self.metrics.delivery(&self.svc.config.id, kind, result);
    }
}
