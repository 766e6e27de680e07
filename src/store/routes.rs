//! State the writer shares with the rest of the daemon: where events go, who to wake
//! when the outbox changes, and the committed head of the event log.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use tokio::sync::{Notify, watch};

use super::writer::Effects;
use crate::metrics::Metrics;

/// One `webhook` service's subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookRoute {
    /// The webhook service.
    pub service_id: String,
    /// It receives events of this organization only.
    pub organization: String,
    /// Event types it takes; all when `None`.
    pub events: Option<Vec<String>>,
}

/// Which webhook services take which events, and which desk answers which channel.
#[derive(Debug, Clone, Default)]
pub struct Routes {
    /// Subscriptions of running webhook services.
    pub webhooks: Vec<WebhookRoute>,
    /// Channel service id → its desk's service id (`desk = "…"`), whatever the desk's
    /// status: a disabled desk's deliveries wait in its outbox.
    pub desks: HashMap<String, String>,
    /// Desk service id → its handoff keys, for desks that set any.
    pub handoffs: HashMap<String, crate::config::Handoff>,
}

impl Routes {
    /// The desk that answers channel `service_id`'s conversations, if any.
    pub fn desk_of(&self, service_id: &str) -> Option<&str> {
        self.desks.get(service_id).map(String::as_str)
    }

    /// Desk `desk_id`'s handoff keys (none set: to switchboard's own agents, on demand
    /// only).
    pub fn handoff_of(&self, desk_id: &str) -> Option<&crate::config::Handoff> {
        self.handoffs.get(desk_id)
    }

    /// The webhook services that take an event of `kind` in `organization`.
    pub fn subscribers<'a>(
        &'a self,
        organization: &'a str,
        kind: &'a str,
    ) -> impl Iterator<Item = &'a str> {
        self.webhooks
            .iter()
            .filter(move |r| {
                r.organization == organization
                    && r.events
                        .as_ref()
                        .is_none_or(|e| e.iter().any(|e| e == kind))
            })
            .map(|r| r.service_id.as_str())
    }
}

/// What a service's dispatcher hears from committed batches.
#[derive(Default)]
pub struct OutboxSignal {
    /// Fired when the service's outbox has new or rescheduled rows.
    pub wake: Notify,
    /// Bumped when a retried dead row became the head of one of its queues. A lane
    /// reads its queue ahead from its head on, so one that started before the retry
    /// would deliver what is behind the retried row first: lanes stop when this moves,
    /// and the dispatcher starts them again from the heads.
    requeued: AtomicU64,
}

impl OutboxSignal {
    /// How many retries of dead rows have been committed for this service.
    pub fn requeues(&self) -> u64 {
        self.requeued.load(Ordering::Acquire)
    }
}

/// Shared between the writer thread and the async side.
pub struct Shared {
    routes: RwLock<Arc<Routes>>,
    seq: watch::Sender<i64>,
    notifiers: RwLock<HashMap<String, Arc<OutboxSignal>>>,
    /// Counters the writer updates.
    pub metrics: Arc<Metrics>,
}

impl Shared {
    /// Starts with the committed event head `last_seq`.
    pub fn new(last_seq: i64, metrics: Arc<Metrics>) -> Self {
        Shared {
            routes: RwLock::new(Arc::new(Routes::default())),
            seq: watch::Sender::new(last_seq),
            notifiers: RwLock::new(HashMap::new()),
            metrics,
        }
    }

    /// The current routes.
    pub fn routes(&self) -> Arc<Routes> {
        self.routes.read().expect("routes lock").clone()
    }

    /// Replaces the routes (services started or stopped).
    pub fn set_routes(&self, routes: Routes) {
        *self.routes.write().expect("routes lock") = Arc::new(routes);
    }

    /// Follows the committed head of the event log.
    pub fn subscribe_seq(&self) -> watch::Receiver<i64> {
        self.seq.subscribe()
    }

    /// The wake-up for a service's dispatcher.
    pub fn notifier(&self, service_id: &str) -> Arc<OutboxSignal> {
        if let Some(n) = self
            .notifiers
            .read()
            .expect("notifiers lock")
            .get(service_id)
        {
            return n.clone();
        }
        self.notifiers
            .write()
            .expect("notifiers lock")
            .entry(service_id.to_owned())
            .or_default()
            .clone()
    }

    /// Announces commits that are not known in detail (another instance's, while this
    /// one was not listening): the event head moves to `seq` if that is newer, and every
    /// dispatcher looks at its outbox.
    pub fn publish_all(&self, seq: i64) {
        self.publish(&Effects {
            last_seq: seq,
            ..Effects::default()
        });
        for n in self.notifiers.read().expect("notifiers lock").values() {
            n.wake.notify_one();
        }
    }

    /// Announces a committed batch.
    pub fn publish(&self, fx: &Effects) {
        if fx.last_seq > 0 {
            self.seq.send_if_modified(|head| {
                let newer = fx.last_seq > *head;
                if newer {
                    *head = fx.last_seq;
                }
                newer
            });
        }
        if !fx.outbox.is_empty() {
            let notifiers = self.notifiers.read().expect("notifiers lock");
            for service in &fx.outbox {
                if let Some(n) = notifiers.get(service) {
                    // Before the wake-up, so that the woken dispatcher's lanes see it.
                    if fx.requeued.contains(service) {
                        n.requeued.fetch_add(1, Ordering::Release);
                    }
                    n.wake.notify_one();
                }
            }
        }
    }
}
