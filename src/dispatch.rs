//! The dispatcher: drains one service's outbox, one *lane* per queue (conversation) at a
//! time, many lanes in parallel. Nothing here polls: it sleeps until the next retry is
//! due, a new row is committed, a lane stops, or the connection comes back.
//!
//! - this file — the loop that starts lanes, and the lane itself.
//! - [`attempt`] — one attempt: the connector call, its deadline, its slot, the outcome.
//! - [`commit`] — the committer that records results in batches.
//!
//! # Order and at-least-once: the invariant
//!
//! A lane starts at the head of its queue (the oldest live row) and delivers the queue's
//! rows in id order. It starts the next row as soon as the previous one was *accepted*
//! (2xx, or the provider took the message) or given up (dead); it does not wait for that
//! result's commit. Results go to the committer in the order they happened and are
//! committed in that order, several per transaction. Therefore, for every queue:
//!
//! 1. **A row is attempted only after every row before it in its queue was accepted or
//!    given up.** A failed attempt (retry, connection down) stops the lane, so nothing
//!    behind a failed head is attempted, let alone reported delivered, until the head
//!    is done.
//! 2. **The committed outbox is always a suffix of the queue.** Results are committed in
//!    order, so the rows marked done are always a prefix of what was delivered; the
//!    oldest live row is the queue's head and is `ready`.
//! 3. **After a crash, delivery resumes at the oldest uncommitted row.** Everything after
//!    the committed prefix is delivered again, in order, with the same `webhook-id`
//!    (`evt_<seq>`) or idempotency key (`<service>-<message id>`). A receiver may thus see
//!    a contiguous run it already has once more; deduplicated by id, what it sees is in
//!    order and complete.
//! 4. **Only one lane per queue.** The loop tracks the queues that have a lane and skips
//!    their heads; a lane leaves only after all its results are committed, so the next
//!    look at the outbox sees where it stopped.
//!
//! A lane runs at most [`MAX_UNCOMMITTED`] results ahead of the commits, which bounds
//! both memory and what a crash can make it deliver twice.
//!
//! # Fairness
//!
//! A service has `delivery_concurrency()` slots (16 by default); an attempt takes one
//! while it runs. An attempt that has not answered within [`attempt::SLOW_AFTER`] gives
//! its slot back and goes on outside the slots, so conversations whose target hangs
//! hold no slot that the others need. At most [`MAX_LANES`] lanes exist per service,
//! which bounds the requests in flight to a target in all.

mod attempt;
mod commit;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use switchboard_core::{Backoff, ConnState, RetryLimits};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tracing::Instrument;

use crate::app::RunningService;
use crate::config::DeliveryConfig;
use crate::metrics::Metrics;
use crate::store::rows::now_ms;
use crate::store::{OutboxSignal, QueueHead, Store};
use commit::Committer;

/// Most lanes (and so attempts in flight) per service.
pub const MAX_LANES: usize = 256;
/// Most results a lane has reported but not yet seen committed.
pub const MAX_UNCOMMITTED: usize = 256;
/// Rows a lane reads ahead of what it delivers.
const READ_AHEAD: u32 = 64;

/// Everything a dispatcher needs.
pub struct Dispatcher {
    svc: Arc<RunningService>,
    store: Store,
    metrics: Arc<Metrics>,
    backoff: Backoff,
    limits: RetryLimits,
    on_drained: Option<Box<dyn Fn() + Send + Sync>>,
}

/// What the lanes of one dispatcher share.
struct Lanes {
    /// Attempt slots: `delivery_concurrency()` of them.
    slots: Arc<Semaphore>,
    /// Where results go.
    committer: Committer,
    /// The service's outbox wake-up and retry count.
    signal: Arc<OutboxSignal>,
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

    fn paused(&self, state: &tokio::sync::watch::Receiver<(ConnState, i64)>) -> bool {
        self.svc.connector.needs_connection() && !matches!(state.borrow().0, ConnState::Connected)
    }

    /// Runs until the service's shutdown fires, then lets the lanes finish their current
    /// attempt and commit what they have.
    pub async fn run(self) {
        let this = Arc::new(self);
        let id = this.svc.config.id.clone();
        let signal = this.store.outbox_signal(&id);
        let mut state = this.svc.host.watch_state();
        let shutdown = this.svc.ctx.shutdown.clone();
        let (committer, committing) = Committer::start(this.store.clone(), shutdown.clone());
        let lanes = Arc::new(Lanes {
            slots: Arc::new(Semaphore::new(
                this.svc.connector.delivery_concurrency().max(1),
            )),
            committer,
            signal: signal.clone(),
        });
        let mut running: JoinSet<String> = JoinSet::new();
        let mut active: HashSet<String> = HashSet::new();
        let mut drained_reported = false;

        loop {
            let mut wake_at: Option<i64> = None;
            if !this.paused(&state) && running.len() < MAX_LANES {
                // Taken before the heads are read: a retry committed after this read
                // stops the lanes started from it.
                let requeues = signal.requeues();
                let limit = (active.len() + MAX_LANES - running.len() + 1) as u32;
                match this.store.read.heads(&id, limit).await {
                    Ok(heads) => {
                        let now = now_ms();
                        let drained = heads.is_empty() && running.is_empty();
                        for head in heads {
                            if active.contains(&head.queue_key) {
                                continue;
                            }
                            if head.next_attempt_at > now {
                                // Heads come in due order: this is the next to wake for.
                                wake_at = Some(head.next_attempt_at);
                                break;
                            }
                            if running.len() >= MAX_LANES {
                                break;
                            }
                            active.insert(head.queue_key.clone());
                            let (me, lanes) = (this.clone(), lanes.clone());
                            running.spawn(me.lane(head, requeues, lanes).in_current_span());
                        }
                        // No ready row at all: nothing is queued behind one either.
                        // Re-armed whenever rows appear again, since a reply may arrive
                        // between the report and the archive decision.
                        if !drained {
                            drained_reported = false;
                        } else if !drained_reported && let Some(f) = &this.on_drained {
                            drained_reported = true;
                            f();
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "reading the outbox failed; retrying shortly");
                        wake_at = Some(now_ms() + 1_000);
                    }
                }
            }
            let sleep = wake_at.map(|t| Duration::from_millis((t - now_ms()).max(0) as u64));
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = signal.wake.notified() => {}
                Some(done) = running.join_next(), if !running.is_empty() => {
                    if let Ok(queue) = done { active.remove(&queue); }
                }
                _ = state.changed() => {}
                _ = tokio::time::sleep(sleep.unwrap_or(Duration::MAX)), if sleep.is_some() => {}
            }
        }
        // Lanes finish their attempt in flight and commit what they have within the
        // shutdown deadline; the supervisor aborts them after it.
        while running.join_next().await.is_some() {}
        drop(lanes);
        let _ = committing.await;
    }

    /// Delivers one queue from `head` on, in order, until it is empty, an attempt fails,
    /// the service stops, or a dead row is retried (`requeues` moves: the queue may have
    /// a new head); returns the queue's key once its results are committed.
    async fn lane(self: Arc<Self>, head: QueueHead, requeues: u64, lanes: Arc<Lanes>) -> String {
        let queue = head.queue_key;
        let state = self.svc.host.watch_state();
        let shutdown = self.svc.ctx.shutdown.clone();
        // The first read starts at the head itself.
        let mut cursor = head.id - 1;
        let mut ahead = std::collections::VecDeque::new();
        let mut uncommitted = 0;
        loop {
            let item = match ahead.pop_front() {
                Some(item) => item,
                None => {
                    match self
                        .store
                        .read
                        .queue_after(&self.svc.config.id, &queue, cursor, READ_AHEAD)
                        .await
                    {
                        Ok(rows) if !rows.is_empty() => {
                            ahead.extend(rows);
                            continue;
                        }
                        Ok(_) => break,
                        Err(e) => {
                            tracing::warn!(error = %e, "reading the outbox failed; the queue waits");
                            break;
                        }
                    }
                }
            };
            if shutdown.is_cancelled() || self.paused(&state) || lanes.signal.requeues() != requeues
            {
                break;
            }
            cursor = item.id;
            let outcome = self.attempt(&item, &lanes.slots).await;
            let proceed = outcome.lets_queue_proceed();
            lanes.committer.report(item.id, outcome);
            uncommitted += 1;
            if !proceed {
                break;
            }
            if uncommitted >= MAX_UNCOMMITTED {
                lanes.committer.flush().await;
                uncommitted = 0;
            }
        }
        lanes.committer.flush().await;
        queue
    }
}
