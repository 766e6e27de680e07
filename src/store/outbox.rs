//! The durable outbox: deliveries of outbound messages to their service's connector and
//! of events to webhook services, and the results the dispatcher reports for them.
//!
//! Rows with the same `queue_key` (one conversation, one service's state, or one lone
//! event) are delivered in id order. The oldest live row of a queue is [`OutboxState::Ready`]
//! and due at `next_attempt_at`; the rows behind it are [`OutboxState::Queued`]. The
//! dispatcher may deliver queued rows as soon as the ones before them were accepted, and
//! report the results in one batch ([`delivery_results`]); a batch keeps that invariant
//! by promoting a queue's oldest live row once, after all of the queue's results in it.

use std::collections::BTreeSet;
use std::sync::LazyLock;

use switchboard_core::MessageStatus;

use super::error::StoreError;
use super::writer::WriteCx;

/// What an outbox row delivers. Stored as text in `outbox.kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OutboxKind {
    /// An outbound message (`ref_id` = `messages.id`) to its conversation's service.
    Message,
    /// An event (`ref_id` = `events.seq`) to a webhook service, or a failed message's
    /// `message.status` to its conversation's desk.
    Event,
    /// A message of a routed conversation (`ref_id` = `messages.id`) to the channel's
    /// desk, which mirrors it.
    Mirror,
}

impl OutboxKind {
    /// The stored spelling, also the `kind` label of the delivery metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            OutboxKind::Message => "message",
            OutboxKind::Event => "event",
            OutboxKind::Mirror => "mirror",
        }
    }

    /// The kind stored as `s`; `None` for one this build does not know (a row written by
    /// a newer version).
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "message" => Some(OutboxKind::Message),
            "event" => Some(OutboxKind::Event),
            "mirror" => Some(OutboxKind::Mirror),
            _ => None,
        }
    }
}

/// Where an outbox row is in its life. Stored as an integer in `outbox.state`; the partial
/// indexes of `migrations/0002_outbox.sql` name these codes, so SQL that should use them
/// is built from [`OutboxState::code`] with literal values (a bound parameter would not
/// match a partial index's `WHERE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutboxState {
    /// Behind the head of its queue.
    Queued,
    /// The head of its queue, due at `next_attempt_at`.
    Ready,
    /// Given up; kept for inspection (and a later manual retry).
    Dead,
}

impl OutboxState {
    /// The stored code. `code() < 2` is "live" (queued or ready).
    pub const fn code(self) -> i64 {
        match self {
            OutboxState::Queued => 0,
            OutboxState::Ready => 1,
            OutboxState::Dead => 3,
        }
    }
}

/// The SQL condition "queued or ready", spelled exactly as the partial indexes are.
pub const LIVE: &str = "state < 2";
const _: () = assert!(OutboxState::Queued.code() < 2 && OutboxState::Ready.code() < 2);
const _: () = assert!(OutboxState::Dead.code() >= 2);

/// What happened to one delivery attempt.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// A message was accepted by the provider.
    Sent {
        /// The provider's id for it, when it gave one.
        external_id: Option<String>,
        /// Usually `sent`; some providers answer `delivered` at once.
        status: MessageStatus,
    },
    /// An event reached its webhook (2xx).
    EventDelivered,
    /// A message reached its desk.
    Mirrored,
    /// Try again at `at` (unix ms).
    Retry {
        /// When the next attempt is due, unix ms.
        at: i64,
        /// Attempts made so far, this one included.
        attempts: u32,
        /// Why this attempt failed.
        error: String,
    },
    /// Give up: the row is kept as dead and the queue moves on.
    Dead {
        /// Attempts made, this one included.
        attempts: u32,
        /// Why it was given up.
        error: String,
    },
    /// The connection is down; try at `at` (unix ms) without counting an attempt.
    Defer {
        /// When to look again, unix ms.
        at: i64,
    },
}

impl Outcome {
    /// Whether the queue may go on to its next row after this one.
    pub fn lets_queue_proceed(&self) -> bool {
        matches!(
            self,
            Outcome::Sent { .. }
                | Outcome::EventDelivered
                | Outcome::Mirrored
                | Outcome::Dead { .. }
        )
    }
}

pub(super) static ENQUEUE: LazyLock<String> = LazyLock::new(|| {
    format!(
        "INSERT INTO outbox (service_id, kind, ref_id, queue_key, state, next_attempt_at, created_at) \
         VALUES (?1, ?2, ?3, ?4, \
           CASE WHEN EXISTS (SELECT 1 FROM outbox WHERE service_id = ?1 AND queue_key = ?4 AND {LIVE}) \
           THEN {queued} ELSE {ready} END, ?5, ?5)",
        queued = OutboxState::Queued.code(),
        ready = OutboxState::Ready.code(),
    )
});

pub(super) static PROMOTE: LazyLock<String> = LazyLock::new(|| {
    // The oldest live row of the queue becomes ready, unless it already is. The later
    // time wins: a retry time that a result in the same batch set stays; otherwise the
    // promoted row is due now and takes its turn behind rows that became due before it.
    format!(
        "UPDATE outbox SET state = {ready}, \
         next_attempt_at = CASE WHEN next_attempt_at > ?3 THEN next_attempt_at ELSE ?3 END WHERE id = \
         (SELECT id FROM outbox WHERE service_id = ?1 AND queue_key = ?2 AND {LIVE} ORDER BY id LIMIT 1) \
         AND state = {queued}",
        ready = OutboxState::Ready.code(),
        queued = OutboxState::Queued.code(),
    )
});

static LIVE_ROW: LazyLock<String> = LazyLock::new(|| {
    format!("SELECT service_id, kind, ref_id, queue_key FROM outbox WHERE id = ? AND {LIVE}")
});

static RETRY: LazyLock<String> = LazyLock::new(|| {
    format!(
        "UPDATE outbox SET state = {ready}, attempts = ?, next_attempt_at = ?, last_error = ? WHERE id = ?",
        ready = OutboxState::Ready.code()
    )
});

static DEFER: LazyLock<String> = LazyLock::new(|| {
    format!(
        "UPDATE outbox SET state = {ready}, next_attempt_at = ? WHERE id = ?",
        ready = OutboxState::Ready.code()
    )
});

static DEAD: LazyLock<String> = LazyLock::new(|| {
    format!(
        "UPDATE outbox SET state = {dead}, attempts = ?, last_error = ? WHERE id = ?",
        dead = OutboxState::Dead.code()
    )
});

impl WriteCx<'_> {
    /// Adds a delivery; it is ready at once unless its queue already has a live row.
    pub fn enqueue(
        &mut self,
        service_id: &str,
        kind: OutboxKind,
        ref_id: i64,
        queue_key: &str,
    ) -> Result<(), StoreError> {
        self.db.execute(
            &ENQUEUE,
            &[&service_id, &kind.as_str(), &ref_id, &queue_key, &self.now],
        )?;
        self.fx.outbox.insert(service_id.to_owned());
        Ok(())
    }

    /// Makes the oldest live row of a queue ready, now that the ones before it are done.
    pub(super) fn promote_next(
        &mut self,
        service_id: &str,
        queue_key: &str,
    ) -> Result<(), StoreError> {
        self.db
            .execute(&PROMOTE, &[&service_id, &queue_key, &self.now])?;
        Ok(())
    }
}

impl WriteCx<'_> {
    /// Whether this instance still holds `service_id`'s lease (always, on SQLite). A
    /// dispatcher that lost it (its instance paused past the lease's expiry) must not
    /// commit results: the new holder redelivers those rows, with the same `webhook-id`.
    /// The lease row is locked until the commit, so it cannot change hands in between.
    /// `seen` keeps the answers of one job.
    fn holds_lease(
        &self,
        service_id: &str,
        seen: &mut std::collections::BTreeMap<String, bool>,
    ) -> Result<bool, StoreError> {
        let Some(instance) = self.instance else {
            return Ok(true);
        };
        if let Some(held) = seen.get(service_id) {
            return Ok(*held);
        }
        let held = self
            .db
            .value::<i64>(
                "SELECT 1 FROM leases WHERE name = ? AND owner = ? \
                 AND expires_at > clock_timestamp() FOR SHARE",
                &[&service_id, &instance],
            )?
            .is_some();
        if !held {
            tracing::warn!(
                service_id,
                "delivery results dropped: this instance no longer holds the service's lease"
            );
        }
        seen.insert(service_id.to_owned(), held);
        Ok(held)
    }
}

/// Records the results of delivery attempts, in the order given. Results of one queue
/// must come in id order, each only after the ones before it were accepted (or given
/// up): that is how the dispatcher pipelines a conversation. A result for a row that is
/// no longer live (a duplicate report after a restart) is ignored.
///
/// The dispatcher that reported them is not woken: a queue it is working on needs no
/// wake-up, and it looks at the outbox again whenever one of its queues stops.
pub fn delivery_results(
    cx: &mut WriteCx<'_>,
    results: Vec<(i64, Outcome)>,
) -> Result<(), StoreError> {
    let mut touched: BTreeSet<(String, String)> = BTreeSet::new();
    let mut fenced = std::collections::BTreeMap::new();
    for (outbox_id, outcome) in results {
        let row: Option<(String, String, i64, String)> =
            cx.db.query_opt(&LIVE_ROW, &[&outbox_id], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })?;
        let Some((service_id, kind, ref_id, queue_key)) = row else {
            continue;
        };
        if !cx.holds_lease(&service_id, &mut fenced)? {
            continue;
        }
        let kind = OutboxKind::parse(&kind);
        match outcome {
            Outcome::Sent {
                external_id,
                status,
            } => {
                cx.db
                    .execute("DELETE FROM outbox WHERE id = ?", &[&outbox_id])?;
                if let Some(ext) = &external_id {
                    // Unless another message of the service already has that id (a
                    // provider that reuses ids): the first keeps it.
                    cx.db.execute(
                        "UPDATE messages SET external_id = ?1 WHERE id = ?2 AND external_id IS NULL \
                         AND NOT EXISTS (SELECT 1 FROM messages o WHERE o.service_id = messages.service_id \
                         AND o.direction = messages.direction AND o.external_id = ?1)",
                        &[ext, &ref_id],
                    )?;
                }
                cx.advance_status(ref_id, status, None)?;
                if let Some(ext) = &external_id {
                    super::ingest::apply_early_receipts(cx, &service_id, ext, ref_id)?;
                }
            }
            Outcome::EventDelivered | Outcome::Mirrored => {
                cx.db
                    .execute("DELETE FROM outbox WHERE id = ?", &[&outbox_id])?;
            }
            Outcome::Retry {
                at,
                attempts,
                error,
            } => {
                cx.db
                    .execute(&RETRY, &[&i64::from(attempts), &at, &error, &outbox_id])?;
            }
            Outcome::Dead { attempts, error } => {
                cx.db
                    .execute(&DEAD, &[&i64::from(attempts), &error, &outbox_id])?;
                if kind == Some(OutboxKind::Message) {
                    cx.advance_status(ref_id, MessageStatus::Failed, Some(&error))?;
                }
            }
            Outcome::Defer { at } => {
                cx.db.execute(&DEFER, &[&at, &outbox_id])?;
            }
        }
        touched.insert((service_id, queue_key));
    }
    for (service_id, queue_key) in touched {
        cx.promote_next(&service_id, &queue_key)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
