//! Reads, on a small pool of connections of their own (see [`Reader`]).

use std::cell::RefCell;
use std::sync::{Arc, LazyLock, Mutex};

use switchboard_core::{ConnState, Conversation, Message};
use tokio::sync::Semaphore;

use super::error::StoreError;
use super::outbox::{LIVE, OutboxKind, OutboxState};
use super::rows::{CONVERSATION_COLS, ConversationRow, MESSAGE_COLS, MessageRow};
use super::service::ServiceInfo;
use super::sql::{Db, Param, PgConn, Row};

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
    fn from_row(r: &Row<'_, '_>) -> Result<Self, StoreError> {
        let kind: String = r.get(1)?;
        let seq: Option<i64> = r.get(7)?;
        let event = match seq {
            Some(seq) => Some(EventRow {
                seq,
                kind: r.get(8)?,
                organization: r.get(9)?,
                created_at: r.get(10)?,
                data: r.get(11)?,
            }),
            None => None,
        };
        let attempts: i64 = r.get(4)?;
        Ok(OutboxItem {
            id: r.get(0)?,
            kind: OutboxKind::parse(&kind),
            ref_id: r.get(2)?,
            queue_key: r.get(3)?,
            attempts: u32::try_from(attempts.max(0)).unwrap_or(u32::MAX),
            next_attempt_at: r.get(5)?,
            created_at: r.get(6)?,
            event,
        })
    }
}

/// A stored event.
#[derive(Debug, Clone)]
pub struct EventRow {
    /// Position.
    pub seq: i64,
    /// Type.
    pub kind: String,
    /// Organization.
    pub organization: String,
    /// Unix ms.
    pub created_at: i64,
    /// JSON.
    pub data: String,
}

impl EventRow {
    /// Reads `seq, type, organization, created_at, data`.
    pub fn from_row(r: &Row<'_, '_>) -> Result<Self, StoreError> {
        Ok(EventRow {
            seq: r.get(0)?,
            kind: r.get(1)?,
            organization: r.get(2)?,
            created_at: r.get(3)?,
            data: r.get(4)?,
        })
    }

    /// The stream/webhook body.
    pub fn body(&self) -> String {
        super::rows::event_body(&self.kind, self.created_at, self.seq, &self.data)
    }
}

/// Reads, on a small pool of connections of their own, each read on a blocking thread.
/// SQLite's are `query_only` (WAL lets them run beside the writer and see only
/// committed data); PostgreSQL's are read-only sessions.
#[derive(Clone)]
pub struct Reader {
    pool: Arc<Pool>,
}

impl std::fmt::Debug for Reader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reader").finish_non_exhaustive()
    }
}

/// Opens a reader connection.
pub(super) type Open = Box<dyn Fn() -> Result<Conn, StoreError> + Send + Sync>;

/// A reader's connection.
pub(super) enum Conn {
    Lite(rusqlite::Connection),
    Pg(Box<RefCell<PgConn>>),
}

impl Conn {
    fn db(&self) -> Db<'_> {
        match self {
            Conn::Lite(c) => Db::Lite(c),
            Conn::Pg(c) => Db::Pg(c),
        }
    }

    fn broken(&self) -> bool {
        match self {
            Conn::Lite(_) => false,
            Conn::Pg(c) => c.borrow().client.is_closed(),
        }
    }
}

struct Pool {
    open: Open,
    idle: Mutex<Vec<Conn>>,
    permits: Semaphore,
}

impl Drop for Pool {
    fn drop(&mut self) {
        // The synchronous PostgreSQL client blocks when it closes, which a runtime
        // thread must not: idle connections close on a thread of their own.
        let idle = std::mem::take(&mut *self.idle.lock().unwrap_or_else(|e| e.into_inner()));
        if idle.iter().any(|c| matches!(c, Conn::Pg(_))) {
            let _ = std::thread::Builder::new()
                .name("sb-read-close".into())
                .spawn(move || drop(idle));
        }
    }
}

fn closed() -> StoreError {
    StoreError::Unavailable("storage is shutting down".into())
}

impl Reader {
    /// A pool of at most `size` connections made by `open`, opened as reads need them.
    pub(super) fn new(size: usize, open: Open) -> Self {
        Reader {
            pool: Arc::new(Pool {
                open,
                idle: Mutex::new(Vec::new()),
                permits: Semaphore::new(size),
            }),
        }
    }

    /// Runs `f` on a pooled connection, on a blocking thread.
    pub async fn run<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(Db<'_>) -> Result<T, StoreError> + Send + 'static,
    {
        let _permit = self.pool.permits.acquire().await.map_err(|_| closed())?;
        let pool = self.pool.clone();
        tokio::task::spawn_blocking(move || {
            let popped = pool.idle.lock().map_err(|_| closed())?.pop();
            let conn = match popped {
                Some(c) => c,
                None => (pool.open)()?,
            };
            let out = f(conn.db());
            if !conn.broken() {
                pool.idle.lock().map_err(|_| closed())?.push(conn);
            }
            out
        })
        .await
        .map_err(|e| StoreError::Internal(format!("a read failed: {e}")))?
    }

    /// Closes the pool: reads after this fail as `Unavailable`.
    pub async fn close(&self) {
        self.pool.permits.close();
        let idle = std::mem::take(&mut *self.pool.idle.lock().unwrap_or_else(|e| e.into_inner()));
        let _ = tokio::task::spawn_blocking(move || drop(idle)).await;
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> bool {
        self.ping_checked().await.is_ok()
    }

    /// The database answers, or why not.
    pub async fn ping_checked(&self) -> Result<(), StoreError> {
        self.run(|db| db.value::<i64>("SELECT 1", &[]).map(drop))
            .await
    }

    /// Highest committed event seq.
    pub async fn last_seq(&self) -> Result<i64, StoreError> {
        self.run(|db| {
            Ok(db
                .value("SELECT coalesce(max(seq), 0) FROM events", &[])?
                .unwrap_or(0))
        })
        .await
    }

    /// One conversation with its contact.
    pub async fn conversation(
        &self,
        organization: Option<&str>,
        id: i64,
    ) -> Result<Option<Conversation>, StoreError> {
        let organization = organization.map(str::to_owned);
        self.run(move |db| conversation(db, organization.as_deref(), id))
            .await
    }

    /// The conversation of a service's message (either direction) with that provider id.
    pub async fn conversation_of_message(
        &self,
        service_id: &str,
        external_id: &str,
    ) -> Result<Option<Conversation>, StoreError> {
        let (s, e) = (service_id.to_owned(), external_id.to_owned());
        self.run(move |db| {
            let id: Option<i64> = db.value(
                "SELECT conversation_id FROM messages WHERE service_id = ? AND external_id = ? \
                 ORDER BY id LIMIT 1",
                &[&s, &e],
            )?;
            match id {
                Some(id) => conversation(db, None, id),
                None => Ok(None),
            }
        })
        .await
    }

    /// The contact's most recently active open conversation on a service.
    pub async fn open_conversation_of(
        &self,
        service_id: &str,
        contact_external_id: &str,
    ) -> Result<Option<i64>, StoreError> {
        let (s, c) = (service_id.to_owned(), contact_external_id.to_owned());
        self.run(move |db| {
            db.value(
                "SELECT c.id FROM conversations c JOIN contacts k ON k.id = c.contact_id \
                 WHERE k.service_id = ? AND k.external_id = ? AND c.status = 'open' \
                 ORDER BY c.updated_at DESC LIMIT 1",
                &[&s, &c],
            )
        })
        .await
    }

    /// A page of conversations in id order, after the cursor.
    pub async fn conversations(
        &self,
        organization: &str,
        filter: &ConversationFilter,
        after: i64,
        limit: u32,
    ) -> Result<Vec<Conversation>, StoreError> {
        let (organization, filter) = (organization.to_owned(), filter.clone());
        self.run(move |db| {
            let sql = format!(
                "SELECT {CONVERSATION_COLS} FROM conversations c JOIN contacts k ON k.id = c.contact_id \
                 WHERE c.organization = ?1 AND c.id > ?2 \
                   AND (CAST(?3 AS TEXT) IS NULL OR c.service_id = ?3) AND (CAST(?4 AS TEXT) IS NULL OR c.status = ?4) \
                   AND (CAST(?5 AS BIGINT) IS NULL OR c.updated_at > ?5) \
                 ORDER BY c.id LIMIT ?6"
            );
            let args: [&dyn Param; 6] = [
                &organization,
                &after,
                &filter.service_id,
                &filter.status,
                &filter.updated_after,
                &i64::from(limit),
            ];
            db.query(&sql, &args, |r| {
                Ok(ConversationRow::from_row(r, 0)?.into_conversation())
            })
        })
        .await
    }

    /// A page of a conversation's messages, oldest first.
    pub async fn messages(
        &self,
        conversation_id: i64,
        after: i64,
        limit: u32,
    ) -> Result<Vec<Message>, StoreError> {
        self.run(move |db| {
            let sql = format!(
                "SELECT {MESSAGE_COLS} FROM messages m WHERE m.conversation_id = ? AND m.id > ? ORDER BY m.id LIMIT ?"
            );
            db.query(&sql, &[&conversation_id, &after, &i64::from(limit)], |r| {
                Ok(MessageRow::from_row(r, 0)?.into_message())
            })
        })
        .await
    }

    /// One message, if its conversation belongs to `organization`.
    pub async fn message(
        &self,
        organization: Option<&str>,
        id: i64,
    ) -> Result<Option<Message>, StoreError> {
        let organization = organization.map(str::to_owned);
        self.run(move |db| message(db, organization.as_deref(), id))
            .await
    }

    /// An outbound message and its conversation, for delivery.
    pub async fn outbound(
        &self,
        message_id: i64,
    ) -> Result<Option<(Message, Conversation)>, StoreError> {
        self.run(move |db| {
            let Some(message) = message(db, None, message_id)? else {
                return Ok(None);
            };
            let conv_id = message.conversation_id.parse().unwrap_or_default();
            Ok(conversation(db, None, conv_id)?.map(|c| (message, c)))
        })
        .await
    }

    /// Events after `after`, oldest first; only `organization`'s when given.
    pub async fn events_after(
        &self,
        organization: Option<&str>,
        after: i64,
        limit: u32,
    ) -> Result<Vec<EventRow>, StoreError> {
        let organization = organization.map(str::to_owned);
        self.run(move |db| {
            db.query(
                "SELECT seq, type, organization, created_at, data FROM events \
                 WHERE seq > ?1 AND (CAST(?2 AS TEXT) IS NULL OR organization = ?2) ORDER BY seq LIMIT ?3",
                &[&after, &organization, &i64::from(limit)],
                EventRow::from_row,
            )
        })
        .await
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
        let organization = organization.map(str::to_owned);
        let max_bytes = i64::try_from(max_bytes).unwrap_or(i64::MAX);
        self.run(move |db| {
            db.query(
                "WITH page AS (SELECT seq, octet_length(data) AS n FROM events \
                     WHERE seq > ?1 AND (CAST(?2 AS TEXT) IS NULL OR organization = ?2) ORDER BY seq LIMIT ?3), \
                 sized AS (SELECT seq, sum(n) OVER (ORDER BY seq ROWS UNBOUNDED PRECEDING) - n AS before \
                     FROM page) \
                 SELECT e.seq, e.type, e.organization, e.created_at, e.data \
                 FROM sized JOIN events e ON e.seq = sized.seq \
                 WHERE sized.before < ?4 ORDER BY e.seq",
                &[&after, &organization, &i64::from(limit), &max_bytes],
                EventRow::from_row,
            )
        })
        .await
    }

    /// The highest seq of `organization`'s events that retention pruned (0: none). A
    /// stream resuming from before it may have missed events.
    pub async fn pruned_through(&self, organization: &str) -> Result<i64, StoreError> {
        let organization = organization.to_owned();
        self.run(move |db| {
            Ok(db
                .value(
                    "SELECT coalesce(max(pruned_through), 0) FROM event_horizon WHERE organization = ?",
                    &[&organization],
                )?
                .unwrap_or(0))
        })
        .await
    }

    /// One event.
    pub async fn event(&self, seq: i64) -> Result<Option<EventRow>, StoreError> {
        self.run(move |db| {
            db.query_opt(
                "SELECT seq, type, organization, created_at, data FROM events WHERE seq = ?",
                &[&seq],
                EventRow::from_row,
            )
        })
        .await
    }

    /// The heads of a service's queues (ready rows) in the order they fall due, due or
    /// not: the dispatcher starts the due ones and sleeps until the first that is not.
    /// Light rows: a lane reads its rows, events included, with [`Reader::queue_after`].
    pub async fn heads(&self, service_id: &str, limit: u32) -> Result<Vec<QueueHead>, StoreError> {
        let service_id = service_id.to_owned();
        self.run(move |db| {
            db.query(&HEADS, &[&service_id, &i64::from(limit)], |r| {
                Ok(QueueHead {
                    id: r.get(0)?,
                    queue_key: r.get(1)?,
                    next_attempt_at: r.get(2)?,
                })
            })
        })
        .await
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
        let (s, q) = (service_id.to_owned(), queue_key.to_owned());
        self.run(move |db| {
            db.query(
                &QUEUE_AFTER,
                &[&s, &q, &after, &i64::from(limit)],
                OutboxItem::from_row,
            )
        })
        .await
    }

    /// Live (queued or ready) and dead deliveries per service.
    pub async fn outbox_depth(&self) -> Result<Vec<(String, i64, i64)>, StoreError> {
        self.run(|db| {
            db.query(
                &format!(
                    "SELECT service_id, sum(CASE WHEN {LIVE} THEN 1 ELSE 0 END), \
                     sum(CASE WHEN state = {dead} THEN 1 ELSE 0 END) FROM outbox GROUP BY service_id",
                    dead = OutboxState::Dead.code()
                ),
                &[],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
        })
        .await
    }

    /// Live deliveries of one service.
    pub async fn live_deliveries(&self, service_id: &str) -> Result<i64, StoreError> {
        let service_id = service_id.to_owned();
        self.run(move |db| {
            Ok(db
                .value(
                    &format!("SELECT count(*) FROM outbox WHERE service_id = ? AND {LIVE}"),
                    &[&service_id],
                )?
                .unwrap_or(0))
        })
        .await
    }

    /// A sync-state value.
    pub async fn kv_get(&self, service_id: &str, key: &str) -> Result<Option<String>, StoreError> {
        let (s, k) = (service_id.to_owned(), key.to_owned());
        self.run(move |db| {
            db.value(
                "SELECT value FROM sync_state WHERE service_id = ? AND key = ?",
                &[&s, &k],
            )
        })
        .await
    }

    /// Every stored service with its last recorded state.
    pub async fn services(&self) -> Result<Vec<StoredService>, StoreError> {
        self.run(|db| {
            db.query(
                "SELECT id, type, name, status, organization, state, state_since, last_error \
                 FROM services ORDER BY id",
                &[],
                |r| {
                    let state: String = r.get(5)?;
                    Ok(StoredService {
                        state: serde_json::from_str(&state).unwrap_or(ConnState::Stopped),
                        info: ServiceInfo {
                            id: r.get(0)?,
                            kind: r.get(1)?,
                            name: r.get(2)?,
                            status: r.get(3)?,
                            organization: r.get(4)?,
                        },
                        since: r.get(6)?,
                        last_error: r.get(7)?,
                    })
                },
            )
        })
        .await
    }
}

/// One conversation with its contact, of `organization` when given.
fn conversation(
    db: Db<'_>,
    organization: Option<&str>,
    id: i64,
) -> Result<Option<Conversation>, StoreError> {
    let sql = format!(
        "SELECT {CONVERSATION_COLS} FROM conversations c JOIN contacts k ON k.id = c.contact_id \
         WHERE c.id = ?1 AND (CAST(?2 AS TEXT) IS NULL OR c.organization = ?2)"
    );
    Ok(db
        .query_opt(&sql, &[&id, &organization], |r| {
            ConversationRow::from_row(r, 0)
        })?
        .map(ConversationRow::into_conversation))
}

/// One message, if its conversation is `organization`'s when given.
fn message(db: Db<'_>, organization: Option<&str>, id: i64) -> Result<Option<Message>, StoreError> {
    let sql = format!(
        "SELECT {MESSAGE_COLS} FROM messages m JOIN conversations c ON c.id = m.conversation_id \
         WHERE m.id = ?1 AND (CAST(?2 AS TEXT) IS NULL OR c.organization = ?2)"
    );
    Ok(db
        .query_opt(&sql, &[&id, &organization], |r| MessageRow::from_row(r, 0))?
        .map(MessageRow::into_message))
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
