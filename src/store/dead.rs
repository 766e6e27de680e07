//! Dead deliveries: listing them, and putting them back in their queue.
//!
//! A retried delivery is the same outbox row, so it keeps its reference (the event's
//! `seq`, hence its `webhook-id` `evt_{seq}`; or the message) and its id, which orders
//! it before every row still live behind it in its conversation. The outbox keeps one
//! rule (see `src/dispatch.rs`): the oldest live row of a queue is its head and the only
//! `ready` one. So a retry demotes the queue's current head to `queued` and promotes the
//! oldest live row, now the retried one (or an older retried row of the same queue). A
//! lane already delivering that queue stops before its next attempt (the committed
//! retry bumps [`super::routes::OutboxSignal`]), so only an attempt already in flight
//! goes out before the retried row. Its attempts and age start
//! over, so `max_attempts` and `max_age` apply afresh.
//!
//! A retried message that had been marked `failed` goes back to `pending` (with a
//! `message.status` event): the provider is asked again, and its answer may move it
//! forward as usual.

use super::Store;
use super::error::StoreError;
use super::outbox::{OutboxKind, OutboxState};
use super::read::Reader;
use super::rows::{MESSAGE_COLS, MessageRow};
use super::sql::Row;
use super::writer::WriteCx;
use switchboard_core::EventData;

/// Which deliveries to list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryState {
    /// Given up on.
    Dead,
    /// Queued or ready (being tried).
    Live,
}

/// One outbox row, with what it delivers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryRow {
    /// The outbox row's id.
    pub id: i64,
    /// The service it goes to.
    pub service_id: String,
    /// `message` or `event`.
    pub kind: String,
    /// The message id or the event seq.
    pub ref_id: i64,
    /// 0 queued, 1 ready, 3 dead.
    pub state: i64,
    /// Attempts so far (since the last retry).
    pub attempts: i64,
    /// The last attempt's error.
    pub last_error: Option<String>,
    /// When it was queued, or last requeued (unix ms).
    pub created_at: i64,
    /// When it is tried next (unix ms).
    pub next_attempt_at: i64,
    /// The conversation it belongs to, if any.
    pub conversation_id: Option<i64>,
    /// The event's type, for event deliveries.
    pub event_type: Option<String>,
}

const DELIVERY_COLS: &str = "o.id, o.service_id, o.kind, o.ref_id, o.state, o.attempts, o.last_error, \
     o.created_at, o.next_attempt_at, coalesce(m.conversation_id, e.conversation_id) AS conversation_id, \
     e.type AS event_type";
const DELIVERY_FROM: &str = "outbox o \
     LEFT JOIN messages m ON o.kind = 'message' AND m.id = o.ref_id \
     LEFT JOIN events e ON o.kind = 'event' AND e.seq = o.ref_id \
     JOIN services s ON s.id = o.service_id";

impl DeliveryRow {
    fn from_row(r: &Row<'_, '_>) -> Result<Self, StoreError> {
        Ok(DeliveryRow {
            id: r.get(0)?,
            service_id: r.get(1)?,
            kind: r.get(2)?,
            ref_id: r.get(3)?,
            state: r.get(4)?,
            attempts: r.get(5)?,
            last_error: r.get(6)?,
            created_at: r.get(7)?,
            next_attempt_at: r.get(8)?,
            conversation_id: r.get(9)?,
            event_type: r.get(10)?,
        })
    }
}

impl Reader {
    /// A page of `organization`'s deliveries in `state`, in id order after `after`;
    /// only `service_id`'s when given. A service's organization is the one recorded
    /// with its state (so dead rows of a service no longer configured stay visible).
    pub async fn deliveries(
        &self,
        organization: &str,
        state: DeliveryState,
        service_id: Option<&str>,
        after: i64,
        limit: u32,
    ) -> Result<Vec<DeliveryRow>, StoreError> {
        let states = match state {
            DeliveryState::Dead => "o.state = 3",
            DeliveryState::Live => "o.state < 2",
        };
        let sql = format!(
            "SELECT {DELIVERY_COLS} FROM {DELIVERY_FROM} \
             WHERE s.organization = ?1 AND {states} AND (CAST(?2 AS TEXT) IS NULL OR o.service_id = ?2) AND o.id > ?3 \
             ORDER BY o.id LIMIT ?4"
        );
        let (organization, service_id) = (organization.to_owned(), service_id.map(str::to_owned));
        self.run(move |db| {
            db.query(
                &sql,
                &[&organization, &service_id, &after, &i64::from(limit)],
                DeliveryRow::from_row,
            )
        })
        .await
    }

    /// One of `organization`'s deliveries.
    pub async fn delivery(
        &self,
        organization: &str,
        id: i64,
    ) -> Result<Option<DeliveryRow>, StoreError> {
        let sql = format!(
            "SELECT {DELIVERY_COLS} FROM {DELIVERY_FROM} WHERE s.organization = ?1 AND o.id = ?2"
        );
        let organization = organization.to_owned();
        self.run(move |db| db.query_opt(&sql, &[&organization, &id], DeliveryRow::from_row))
            .await
    }
}

/// Puts dead row `id` of `organization` back in its queue. `NotFound` for no such row
/// in the organization, `Conflict` when it is not dead.
pub fn retry(cx: &mut WriteCx<'_>, organization: &str, id: i64) -> Result<(), StoreError> {
    let row: Option<(String, String, i64, String, i64)> = cx.db.query_opt(
        "SELECT o.service_id, o.kind, o.ref_id, o.queue_key, o.state FROM outbox o \
             JOIN services s ON s.id = o.service_id WHERE o.id = ? AND s.organization = ?",
        &[&id, &organization],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
    )?;
    let Some((service_id, kind, ref_id, queue_key, state)) = row else {
        return Err(StoreError::NotFound("delivery".into()));
    };
    if state != OutboxState::Dead.code() {
        return Err(StoreError::Conflict(format!(
            "delivery {id} is not dead; only dead deliveries are retried"
        )));
    }
    requeue(cx, id, &service_id, &kind, ref_id, &queue_key)
}

/// Puts every dead row of `service_id` (of `organization`) back in its queue, oldest
/// first; how many. `NotFound` when the organization has no such service.
pub fn retry_dead(
    cx: &mut WriteCx<'_>,
    organization: &str,
    service_id: &str,
) -> Result<usize, StoreError> {
    let known: Option<i64> = cx.db.query_opt(
        "SELECT 1 FROM services WHERE id = ? AND organization = ?",
        &[&service_id, &organization],
        |r| r.get(0),
    )?;
    if known.is_none() {
        return Err(StoreError::NotFound("service".into()));
    }
    let rows: Vec<(i64, String, i64, String)> = cx.db.query("SELECT id, kind, ref_id, queue_key FROM outbox WHERE service_id = ? AND state = 3 ORDER BY id", &[&service_id], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })?;
    for (id, kind, ref_id, queue_key) in &rows {
        requeue(cx, *id, service_id, kind, *ref_id, queue_key)?;
    }
    Ok(rows.len())
}

fn requeue(
    cx: &mut WriteCx<'_>,
    id: i64,
    service_id: &str,
    kind: &str,
    ref_id: i64,
    queue_key: &str,
) -> Result<(), StoreError> {
    let (queued, ready) = (OutboxState::Queued.code(), OutboxState::Ready.code());
    cx.db.execute(
        "UPDATE outbox SET state = ?1, attempts = 0, next_attempt_at = ?2, created_at = ?2, \
             last_error = NULL WHERE id = ?3",
        &[&queued, &cx.now, &id],
    )?;
    // The head changes: every live row of the queue waits, then the oldest becomes ready
    // (a demoted head keeps its retry time; it is only promoted again after the retry).
    cx.db.execute(
        "UPDATE outbox SET state = ?1 WHERE service_id = ?2 AND queue_key = ?3 AND state = ?4",
        &[&queued, &service_id, &queue_key, &ready],
    )?;
    cx.promote_next(service_id, queue_key)?;
    if OutboxKind::parse(kind) == Some(OutboxKind::Message) {
        reopen_message(cx, ref_id)?;
    }
    cx.fx.outbox.insert(service_id.to_owned());
    cx.fx.requeued.insert(service_id.to_owned());
    Ok(())
}

/// A `failed` message goes back to `pending`, with its `message.status` event.
fn reopen_message(cx: &mut WriteCx<'_>, message_id: i64) -> Result<(), StoreError> {
    let n = cx.db.execute(
        "UPDATE messages SET status = 'pending', error = NULL, updated_at = ? \
             WHERE id = ? AND status = 'failed'",
        &[&cx.now, &message_id],
    )?;
    if n == 0 {
        return Ok(());
    }
    let sql = format!("SELECT {MESSAGE_COLS} FROM messages m WHERE m.id = ?");
    let row = cx
        .db
        .query_one(&sql, &[&message_id], |r| MessageRow::from_row(r, 0))?;
    let organization: String = cx.db.query_one(
        "SELECT organization FROM conversations WHERE id = ?",
        &[&row.conversation_id],
        |r| r.get(0),
    )?;
    let (conversation_id, service_id) = (row.conversation_id, row.service_id.clone());
    let message = row.into_message();
    cx.append_event(
        &organization,
        Some(&service_id),
        Some(conversation_id),
        &EventData::message_status(&message),
    )?;
    Ok(())
}

impl Store {
    /// See [`retry`].
    pub async fn retry_delivery(&self, organization: &str, id: i64) -> Result<(), StoreError> {
        let org = organization.to_owned();
        self.writer.run(move |cx| retry(cx, &org, id)).await
    }

    /// See [`retry_dead`].
    pub async fn retry_dead(
        &self,
        organization: &str,
        service_id: &str,
    ) -> Result<usize, StoreError> {
        let (org, svc) = (organization.to_owned(), service_id.to_owned());
        self.writer.run(move |cx| retry_dead(cx, &org, &svc)).await
    }
}

#[cfg(test)]
mod tests;
