//! Reads, on a small sqlx pool of query-only connections. WAL lets them run beside the
//! writer and see only committed data.

use std::sync::LazyLock;

use sqlx::SqlitePool;
use switchboard_core::{ConnState, Conversation, Message};

use super::error::StoreError;
use super::outbox::{LIVE, OutboxKind, OutboxState};
use super::rows::{CONVERSATION_COLS, ConversationRow, MESSAGE_COLS, MessageRow};
use super::service::ServiceInfo;

/// Conversation listing filters (`GET /v1/conversations`).
#[derive(Debug, Clone, Default)]
pub struct ConversationFilter {
    /// Only this service's.
    pub service_id: Option<String>,
    /// Only `open` or `closed`.
    pub status: Option<String>,
    /// Only those updated after this instant (unix ms).
    pub updated_after: Option<i64>,
}

/// A delivery the dispatcher may attempt: the head of its queue, or a row behind it.
#[derive(Debug, Clone)]
pub struct OutboxItem {
    /// Outbox row id; a queue's rows go in this order.
    pub id: i64,
    /// What it delivers; `None` for a kind this build does not know.
    pub kind: Option<OutboxKind>,
    /// The message id or event seq.
    pub ref_id: i64,
    /// The queue (conversation) it belongs to.
    pub queue_key: String,
    /// Attempts so far.
    pub attempts: u32,
    /// When it is due (unix ms); in the future for a retry that waits.
    pub next_attempt_at: i64,
    /// When it was queued (unix ms).
    pub created_at: i64,
    /// The event, for an event delivery, read with the row (`None` if it is gone).
    pub event: Option<EventRow>,
}

/// The head of a queue: where a lane starts.
#[derive(Debug, Clone)]
pub struct QueueHead {
    /// Its outbox row id.
    pub id: i64,
    /// The queue.
    pub queue_key: String,
    /// When it is due (unix ms).
    pub next_attempt_at: i64,
}

/// The columns [`OutboxItem::from_row`] reads: the outbox row `o` and its event `e`.
const ITEM_COLS: &str = "o.id, o.kind, o.ref_id, o.queue_key, o.attempts, o.next_attempt_at, \
    o.created_at, e.seq, e.type, e.organization, e.created_at, e.data";

/// Joins each event row to its event; message rows get NULLs.
const ITEM_FROM: &str = "outbox o LEFT JOIN events e ON o.kind = 'event' AND e.seq = o.ref_id";

/// [`Reader::heads`]: ready rows by due time, through the `outbox_ready` index.
pub(super) static HEADS: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT id, queue_key, next_attempt_at FROM outbox WHERE service_id = ? AND state = {ready} \
         ORDER BY next_attempt_at, id LIMIT ?",
        ready = OutboxState::Ready.code()
    )
});

/// [`Reader::queue_after`]: one queue's live rows in order, through `outbox_live`.
pub(super) static QUEUE_AFTER: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {ITEM_COLS} FROM {ITEM_FROM} WHERE o.service_id = ? AND o.queue_key = ? \
         AND o.{LIVE} AND o.id > ? ORDER BY o.id LIMIT ?"
    )
});

impl OutboxItem {
    fn from_row(r: &sqlx::sqlite::SqliteRow) -> Result<Self, sqlx::Error> {
        use sqlx::Row;
        let kind: String = r.try_get(1)?;
        let seq: Option<i64> = r.try_get(7)?;
        let event = match seq {
            Some(seq) => Some(EventRow {
                seq,
                kind: r.try_get(8)?,
                organization: r.try_get(9)?,
                created_at: r.try_get(10)?,
                data: r.try_get(11)?,
            }),
            None => None,
        };
        Ok(OutboxItem {
            id: r.try_get(0)?,
            kind: OutboxKind::parse(&kind),
            ref_id: r.try_get(2)?,
            queue_key: r.try_get(3)?,
            attempts: r.try_get::<i64, _>(4)?.max(0) as u32,
            next_attempt_at: r.try_get(5)?,
            created_at: r.try_get(6)?,
            event,
        })
    }
}

/// A stored event.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct EventRow {
    /// Position.
    pub seq: i64,
    /// Type.
    #[sqlx(rename = "type")]
    pub kind: String,
    /// Organization.
    pub organization: String,
    /// Unix ms.
    pub created_at: i64,
    /// JSON.
    pub data: String,
}

impl EventRow {
    /// The stream/webhook body.
    pub fn body(&self) -> String {
        super::rows::event_body(&self.kind, self.created_at, self.seq, &self.data)
    }
}

/// Reads.
#[derive(Clone, Debug)]
pub struct Reader {
    pub(super) pool: SqlitePool,
}

impl Reader {
    /// Wraps a pool.
    pub fn new(pool: SqlitePool) -> Self {
        Reader { pool }
    }

    /// The pool, for reads kept in their own files (`links`).
    pub(super) fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Closes the pool.
    pub async fn close(&self) {
        self.pool.close().await
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> bool {
        sqlx::query("SELECT 1").execute(&self.pool).await.is_ok()
    }

    /// Highest committed event seq.
    pub async fn last_seq(&self) -> Result<i64, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT coalesce(max(seq), 0) FROM events")
                .fetch_one(&self.pool)
                .await?,
        )
    }

    /// One conversation with its contact.
    pub async fn conversation(
        &self,
        organization: Option<&str>,
        id: i64,
    ) -> Result<Option<Conversation>, StoreError> {
        let sql = format!(
            "SELECT {CONVERSATION_COLS} FROM conversations c JOIN contacts k ON k.id = c.contact_id \
             WHERE c.id = ? AND (?2 IS NULL OR c.organization = ?2)"
        );
        let row: Option<ConversationRow> = sqlx::query_as(&sql)
            .bind(id)
            .bind(organization)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(ConversationRow::into_conversation))
    }

    /// The contact's most recently active open conversation on a service.
    pub async fn open_conversation_of(
        &self,
        service_id: &str,
        contact_external_id: &str,
    ) -> Result<Option<i64>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT c.id FROM conversations c JOIN contacts k ON k.id = c.contact_id \
             WHERE k.service_id = ? AND k.external_id = ? AND c.status = 'open' \
             ORDER BY c.updated_at DESC LIMIT 1",
        )
        .bind(service_id)
        .bind(contact_external_id)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// A page of conversations in id order, after the cursor.
    pub async fn conversations(
        &self,
        organization: &str,
        filter: &ConversationFilter,
        after: i64,
        limit: u32,
    ) -> Result<Vec<Conversation>, StoreError> {
        let sql = format!(
            "SELECT {CONVERSATION_COLS} FROM conversations c JOIN contacts k ON k.id = c.contact_id \
             WHERE c.organization = ?1 AND c.id > ?2 \
               AND (?3 IS NULL OR c.service_id = ?3) AND (?4 IS NULL OR c.status = ?4) \
               AND (?5 IS NULL OR c.updated_at > ?5) \
             ORDER BY c.id LIMIT ?6"
        );
        let rows: Vec<ConversationRow> = sqlx::query_as(&sql)
            .bind(organization)
            .bind(after)
            .bind(&filter.service_id)
            .bind(&filter.status)
            .bind(filter.updated_after)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .into_iter()
            .map(ConversationRow::into_conversation)
            .collect())
    }

    /// A page of a conversation's messages, oldest first.
    pub async fn messages(
        &self,
        conversation_id: i64,
        after: i64,
        limit: u32,
    ) -> Result<Vec<Message>, StoreError> {
        let sql = format!(
            "SELECT {MESSAGE_COLS} FROM messages m WHERE m.conversation_id = ? AND m.id > ? ORDER BY m.id LIMIT ?"
        );
        let rows: Vec<MessageRow> = sqlx::query_as(&sql)
            .bind(conversation_id)
            .bind(after)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.into_iter().map(MessageRow::into_message).collect())
    }

    /// One message, if its conversation belongs to `organization`.
    pub async fn message(
        &self,
        organization: Option<&str>,
        id: i64,
    ) -> Result<Option<Message>, StoreError> {
        let sql = format!(
            "SELECT {MESSAGE_COLS} FROM messages m JOIN conversations c ON c.id = m.conversation_id \
             WHERE m.id = ?1 AND (?2 IS NULL OR c.organization = ?2)"
        );
        let row: Option<MessageRow> = sqlx::query_as(&sql)
            .bind(id)
            .bind(organization)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(MessageRow::into_message))
    }

    /// An outbound message and its conversation, for delivery.
    pub async fn outbound(
        &self,
        message_id: i64,
    ) -> Result<Option<(Message, Conversation)>, StoreError> {
        let Some(message) = self.message(None, message_id).await? else {
            return Ok(None);
        };
        let conv_id = message.conversation_id.parse().unwrap_or_default();
        Ok(self
            .conversation(None, conv_id)
            .await?
            .map(|c| (message, c)))
    }

    /// Events after `after`, oldest first; only `organization`'s when given.
    pub async fn events_after(
        &self,
        organization: Option<&str>,
        after: i64,
        limit: u32,
    ) -> Result<Vec<EventRow>, StoreError> {
        let rows = sqlx::query_as(
            "SELECT seq, type, organization, created_at, data FROM events \
             WHERE seq > ?1 AND (?2 IS NULL OR organization = ?2) ORDER BY seq LIMIT ?3",
        )
        .bind(after)
        .bind(organization)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows)
    }

    /// [`Reader::events_after`], stopping once the rows hold `max_bytes` of data: the
    /// rows before the last one hold less than that, so a page of large events stays
    /// near `max_bytes` however many `limit` allows. Sizes are summed in SQL, so rows
    /// past the budget are never loaded.
    pub async fn events_after_within(
        &self,
        organization: Option<&str>,
        after: i64,
        limit: u32,
        max_bytes: usize,
    ) -> Result<Vec<EventRow>, StoreError> {
        let rows = sqlx::query_as(
            "WITH page AS (SELECT seq, octet_length(data) AS n FROM events \
                 WHERE seq > ?1 AND (?2 IS NULL OR organization = ?2) ORDER BY seq LIMIT ?3), \
             sized AS (SELECT seq, sum(n) OVER (ORDER BY seq ROWS UNBOUNDED PRECEDING) - n AS before \
                 FROM page) \
             SELECT e.seq, e.type, e.organization, e.created_at, e.data \
             FROM sized JOIN events e ON e.seq = sized.seq \
             WHERE sized.before < ?4 ORDER BY e.seq",
        )
        .bind(after)
        .bind(organization)
        .bind(limit)
        .bind(i64::try_from(max_bytes).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows)
    }

    /// The highest seq of `organization`'s events that retention pruned (0: none). A
    /// stream resuming from before it may have missed events.
    pub async fn pruned_through(&self, organization: &str) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT coalesce(max(pruned_through), 0) FROM event_horizon WHERE organization = ?",
        )
        .bind(organization)
        .fetch_one(&self.pool)
        .await?)
    }

    /// One event.
    pub async fn event(&self, seq: i64) -> Result<Option<EventRow>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT seq, type, organization, created_at, data FROM events WHERE seq = ?",
        )
        .bind(seq)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// The heads of a service's queues (ready rows) in the order they fall due, due or
    /// not: the dispatcher starts the due ones and sleeps until the first that is not.
    /// Light rows: a lane reads its rows, events included, with [`Reader::queue_after`].
    pub async fn heads(&self, service_id: &str, limit: u32) -> Result<Vec<QueueHead>, StoreError> {
        let rows: Vec<(i64, String, i64)> = sqlx::query_as(&HEADS)
            .bind(service_id)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .into_iter()
            .map(|(id, queue_key, next_attempt_at)| QueueHead {
                id,
                queue_key,
                next_attempt_at,
            })
            .collect())
    }

    /// The live rows of one queue after row `after`, in order: what a dispatcher delivers
    /// next in a conversation whose earlier rows it has delivered.
    pub async fn queue_after(
        &self,
        service_id: &str,
        queue_key: &str,
        after: i64,
        limit: u32,
    ) -> Result<Vec<OutboxItem>, StoreError> {
        let rows = sqlx::query(&QUEUE_AFTER)
            .bind(service_id)
            .bind(queue_key)
            .bind(after)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .iter()
            .map(OutboxItem::from_row)
            .collect::<Result<_, _>>()?)
    }

    /// Live (queued or ready) and dead deliveries per service.
    pub async fn outbox_depth(&self) -> Result<Vec<(String, i64, i64)>, StoreError> {
        Ok(sqlx::query_as(&format!(
            "SELECT service_id, sum({LIVE}), sum(state = {dead}) FROM outbox GROUP BY service_id",
            dead = OutboxState::Dead.code()
        ))
        .fetch_all(&self.pool)
        .await?)
    }

    /// Live deliveries of one service.
    pub async fn live_deliveries(&self, service_id: &str) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar(&format!(
            "SELECT count(*) FROM outbox WHERE service_id = ? AND {LIVE}"
        ))
        .bind(service_id)
        .fetch_one(&self.pool)
        .await?)
    }

    /// A sync-state value.
    pub async fn kv_get(&self, service_id: &str, key: &str) -> Result<Option<String>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT value FROM sync_state WHERE service_id = ? AND key = ?")
                .bind(service_id)
                .bind(key)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// Every stored service with its last recorded state.
    pub async fn services(&self) -> Result<Vec<StoredService>, StoreError> {
        #[derive(sqlx::FromRow)]
        struct Row {
            id: String,
            #[sqlx(rename = "type")]
            kind: String,
            name: Option<String>,
            status: String,
            organization: String,
            state: String,
            state_since: i64,
            last_error: Option<String>,
        }
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT id, type, name, status, organization, state, state_since, last_error \
             FROM services ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| StoredService {
                state: serde_json::from_str(&r.state).unwrap_or(ConnState::Stopped),
                info: ServiceInfo {
                    id: r.id,
                    kind: r.kind,
                    name: r.name,
                    status: r.status,
                    organization: r.organization,
                },
                since: r.state_since,
                last_error: r.last_error,
            })
            .collect())
    }
}

/// A service's last recorded state.
#[derive(Debug, Clone)]
pub struct StoredService {
    /// Identity.
    pub info: ServiceInfo,
    /// Last state.
    pub state: ConnState,
    /// Since when (unix ms).
    pub since: i64,
    /// Last failure reason.
    pub last_error: Option<String>,
}
