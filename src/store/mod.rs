//! Storage on one SQLite file in WAL mode, or in a PostgreSQL database that several
//! instances may share (`storage.url = "postgres://…"`). Every write and read below is
//! written once, against [`sql::Db`]; callers do not know which engine they have.
//!
//! - [`writer`] — the single writer thread with group commit; every write goes there.
//! - [`ingest`] — conversations and messages: inbound, replies, receipts.
//! - [`outbox`] — durable deliveries and their results.
//! - [`events`] — the event log.
//! - [`service`] — services' recorded state and sync state.
//! - [`retention`] — pruning old delivered events (`storage.event_retention`).
//! - [`read`] — reads on a pool of query-only connections.
//! - [`rows`] — rows and their conversion into the contract's objects.
//! - [`links`] — desk links: which desk conversation answers which of ours.
//! - [`dead`] — dead deliveries: listing, and retrying them in their queue's order.
//! - [`stats`] — read-only figures for the status page (traffic buckets, failing deliveries).
//! - [`routes`] — what the writer shares (event routes, outbox wake-ups, the event head).
//! - [`error`] — [`StoreError`].
//! - [`sql`] — [`sql::Db`], a connection of either engine, and the common dialect.
//! - [`pg`] — what only PostgreSQL needs: connecting, migrating, commit notifications.
//!
//! Migrations are applied when the store opens: SQLite's (`migrations/`) with sqlx,
//! PostgreSQL's (`migrations/postgres/`, the same schema) by [`pg::migrate`].

pub mod dead;
#[cfg(test)]
mod engines;
pub mod error;
pub mod events;
pub mod handoff;
pub mod ingest;
pub mod links;
pub mod outbox;
pub mod pg;
pub mod read;
pub mod retention;
pub mod routes;
pub mod rows;
pub mod service;
pub mod sql;
pub mod stats;
#[cfg(test)]
mod testdb;
pub mod writer;

use std::cell::RefCell;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use sqlx::ConnectOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use switchboard_core::{
    ConnState, Conversation, DeskLink, InboundMessage, Ingested, Message, MessageStatus,
    StatusChange,
};
use tokio::sync::watch;

pub use error::StoreError;
pub use ingest::{NewOutbound, desk_key_prefix};
pub use outbox::{OutboxKind, OutboxState, Outcome};
pub use read::{ConversationFilter, EventRow, OutboxItem, QueueHead, Reader};
pub use routes::{OutboxSignal, Routes, WebhookRoute};
pub use service::{ServiceInfo, ServiceRef, service_json};

use crate::config::{StorageLocation, Synchronous};
use crate::metrics::Metrics;
use routes::Shared;
use writer::Writer;

/// The store: a writer handle, a read pool and what they share. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    writer: Writer,
    /// Reads.
    pub read: Reader,
    shared: Arc<Shared>,
    /// PostgreSQL: stops the thread that hears other instances' commits.
    listening: Option<Arc<AtomicBool>>,
}

/// Readers per store.
const READERS: usize = 4;

/// SQLite's reader connections: `query_only`, beside the writer in WAL mode.
fn lite_reader(path: &Path, read_only: bool) -> read::Open {
    let path = path.to_owned();
    Box::new(move || {
        use rusqlite::OpenFlags;
        let flags = if read_only {
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX
        } else {
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX
        };
        let conn = rusqlite::Connection::open_with_flags(&path, flags)
            .map_err(|e| open_error(&path, e))?;
        conn.busy_timeout(Duration::from_secs(5))?;
        if !read_only {
            conn.pragma_update(None, "query_only", "ON")?;
        }
        conn.set_prepared_statement_cache_capacity(64);
        Ok(read::Conn::Lite(conn))
    })
}

/// PostgreSQL's reader connections: read-only sessions.
fn pg_reader(config: postgres::Config) -> read::Open {
    Box::new(move || {
        let mut client = config.connect(postgres::NoTls)?;
        client.batch_execute("SET default_transaction_read_only = on")?;
        Ok(read::Conn::Pg(Box::new(RefCell::new(sql::PgConn::new(
            client,
        )))))
    })
}

fn options(path: &Path, synchronous: Synchronous) -> SqliteConnectOptions {
    SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(match synchronous {
            Synchronous::Full => SqliteSynchronous::Full,
            Synchronous::Normal => SqliteSynchronous::Normal,
        })
        .busy_timeout(Duration::from_secs(5))
        .foreign_keys(true)
        .disable_statement_logging()
}

fn open_error(path: &Path, e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(format!("cannot open database {}: {e}", path.display()))
}

/// Applies pending migrations to the database at `path`, creating it if missing.
pub async fn migrate(path: &Path, synchronous: Synchronous) -> Result<(), StoreError> {
    let new = !path.exists();
    let mut conn = options(path, synchronous)
        .connect()
        .await
        .map_err(|e| open_error(path, e))?;
    sqlx::migrate!("./migrations")
        .run(&mut conn)
        .await
        .map_err(|e| StoreError::Internal(format!("migrating {}: {e}", path.display())))?;
    use sqlx::Connection;
    conn.close().await.map_err(|e| open_error(path, e))?;
    if new {
        // It holds conversations and the hub's service secrets: owner only, whatever the
        // umask (SQLite gives its -wal and -shm files the same mode).
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| open_error(path, e))?;
    }
    Ok(())
}

/// Applies pending migrations to the database at `location`.
pub async fn migrate_at(location: &StorageLocation) -> Result<(), StoreError> {
    match location {
        StorageLocation::Sqlite { path, synchronous } => migrate(path, *synchronous).await,
        StorageLocation::Postgres { url } => {
            let config = pg::config(url)?;
            blocking(move || pg::migrate(&config)).await
        }
    }
}

/// Runs blocking database work (the synchronous PostgreSQL client) off the runtime.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StoreError::Internal(format!("storage task failed: {e}")))?
}

impl Store {
    /// Opens (creating and migrating if needed) the SQLite database at `path`.
    pub async fn open(
        path: &Path,
        synchronous: Synchronous,
        metrics: Arc<Metrics>,
    ) -> Result<Store, StoreError> {
        migrate(path, synchronous).await?;
        let read = Reader::new(READERS, lite_reader(path, false));
        let shared = Arc::new(Shared::new(read.last_seq().await?, metrics));
        let writer = Writer::start(path, synchronous == Synchronous::Full, shared.clone())?;
        Ok(Store {
            writer,
            read,
            shared,
            listening: None,
        })
    }

    /// Opens (migrating if needed) the store at `location`. On PostgreSQL, `instance`
    /// is this instance's id when leases fence its deliveries (see
    /// `outbox::delivery_results`); the store also hears the other instances' commits.
    pub async fn open_at(
        location: &StorageLocation,
        instance: Option<String>,
        metrics: Arc<Metrics>,
    ) -> Result<Store, StoreError> {
        let url = match location {
            StorageLocation::Sqlite { path, synchronous } => {
                return Store::open(path, *synchronous, metrics).await;
            }
            StorageLocation::Postgres { url } => url,
        };
        let config = pg::config(url)?;
        migrate_at(location).await?;
        let read = Reader::new(READERS, pg_reader(config.clone()));
        let shared = Arc::new(Shared::new(read.last_seq().await?, metrics));
        let (c, s) = (config.clone(), shared.clone());
        let writer = blocking(move || Writer::start_pg(c, instance, s)).await?;
        let stop = Arc::new(AtomicBool::new(false));
        pg::listen(config, shared.clone(), stop.clone())
            .map_err(|e| StoreError::Internal(format!("cannot start the listener thread: {e}")))?;
        Ok(Store {
            writer,
            read,
            shared,
            listening: Some(stop),
        })
    }

    /// Opens an existing SQLite database for reading only (the `services` command).
    pub async fn open_read_only(path: &Path) -> Result<Reader, StoreError> {
        if !path.exists() {
            return Err(open_error(path, "no such file"));
        }
        let reader = Reader::new(1, lite_reader(path, true));
        reader.ping_checked().await?;
        Ok(reader)
    }

    /// Opens the store at `location` for reading only (the `services` command).
    pub async fn open_read_only_at(location: &StorageLocation) -> Result<Reader, StoreError> {
        match location {
            StorageLocation::Sqlite { path, .. } => Store::open_read_only(path).await,
            StorageLocation::Postgres { url } => {
                let reader = Reader::new(1, pg_reader(pg::config(url)?));
                reader.ping_checked().await?;
                Ok(reader)
            }
        }
    }

    /// Finishes queued writes and closes everything.
    pub async fn close(&self) {
        self.writer.stop().await;
        self.read.close().await;
        if let Some(stop) = &self.listening {
            stop.store(true, Ordering::Release);
        }
    }

    /// Replaces the event routes.
    pub fn set_routes(&self, routes: Routes) {
        self.shared.set_routes(routes)
    }

    /// The event routes in force.
    pub fn routes(&self) -> Arc<Routes> {
        self.shared.routes()
    }

    /// Follows the committed event head.
    pub fn subscribe_events(&self) -> watch::Receiver<i64> {
        self.shared.subscribe_seq()
    }

    /// The wake-up for a service's dispatcher, fired when its outbox changes, and the
    /// count of its dead rows' retries.
    pub fn outbox_signal(&self, service_id: &str) -> Arc<OutboxSignal> {
        self.shared.notifier(service_id)
    }

    /// See [`ingest::ingest`].
    pub async fn ingest(
        &self,
        service: ServiceRef,
        messages: Vec<InboundMessage>,
    ) -> Result<Vec<Ingested>, StoreError> {
        self.writer
            .run(move |cx| ingest::ingest(cx, &service, messages))
            .await
    }

    /// See [`ingest::reply`].
    pub async fn reply(
        &self,
        organization: Option<String>,
        conversation_id: i64,
        new: NewOutbound,
    ) -> Result<(Message, Conversation, bool), StoreError> {
        self.writer
            .run(move |cx| ingest::reply(cx, organization.as_deref(), conversation_id, new))
            .await
    }

    /// See [`outbox::delivery_results`].
    pub async fn delivery_results(&self, results: Vec<(i64, Outcome)>) -> Result<(), StoreError> {
        self.writer
            .run(move |cx| outbox::delivery_results(cx, results))
            .await
    }

    /// See [`ingest::update_status`].
    pub async fn update_status(
        &self,
        service_id: &str,
        external_id: &str,
        status: MessageStatus,
        error: Option<String>,
    ) -> Result<StatusChange, StoreError> {
        let (s, e) = (service_id.to_owned(), external_id.to_owned());
        self.writer
            .run(move |cx| ingest::update_status(cx, &s, &e, status, error))
            .await
    }

    /// See [`ingest::ingest_once`].
    pub async fn ingest_once(
        &self,
        service: ServiceRef,
        nonce: &str,
        expires_at: i64,
        messages: Vec<InboundMessage>,
    ) -> Result<Option<Vec<Ingested>>, StoreError> {
        let nonce = nonce.to_owned();
        self.writer
            .run(move |cx| ingest::ingest_once(cx, &service, &nonce, expires_at, messages))
            .await
    }

    /// See [`ingest::apply_watermark`].
    pub async fn apply_watermark(
        &self,
        service_id: &str,
        conversation_external_id: &str,
        status: MessageStatus,
        before_ms: i64,
    ) -> Result<usize, StoreError> {
        let (s, c) = (service_id.to_owned(), conversation_external_id.to_owned());
        self.writer
            .run(move |cx| ingest::apply_watermark(cx, &s, &c, status, before_ms))
            .await
    }

    /// See [`ingest::kv_put`].
    pub async fn kv_put(&self, service_id: &str, key: &str, value: &str) -> Result<(), StoreError> {
        let (s, k, v) = (service_id.to_owned(), key.to_owned(), value.to_owned());
        self.writer
            .run(move |cx| service::kv_put(cx, &s, &k, &v))
            .await
    }

    /// See [`links::put`].
    pub async fn link_put(&self, desk_id: &str, link: DeskLink) -> Result<(), StoreError> {
        let desk = desk_id.to_owned();
        self.writer
            .run(move |cx| links::put(cx, &desk, &link))
            .await
    }

    /// See [`links::close`].
    pub async fn link_close(
        &self,
        desk_id: &str,
        desk_conversation_id: &str,
    ) -> Result<Option<String>, StoreError> {
        let (desk, theirs) = (desk_id.to_owned(), desk_conversation_id.to_owned());
        self.writer
            .run(move |cx| links::close(cx, &desk, &theirs))
            .await
    }

    /// See [`handoff::hand_off`].
    pub async fn hand_off(
        &self,
        req: handoff::Request,
    ) -> Result<Option<(Conversation, switchboard_core::HandedOff)>, StoreError> {
        self.writer.run(move |cx| handoff::hand_off(cx, &req)).await
    }

    /// See [`handoff::fire_due`].
    pub async fn fire_due_handoffs(&self) -> Result<usize, StoreError> {
        self.writer.run(handoff::fire_due).await
    }

    /// See [`links::get`].
    pub async fn link_get(
        &self,
        desk_id: &str,
        conversation_id: &str,
    ) -> Result<Option<DeskLink>, StoreError> {
        links::get(&self.read, desk_id, conversation_id).await
    }

    /// See [`links::lookup`].
    pub async fn link_lookup(
        &self,
        desk_id: &str,
        desk_conversation_id: &str,
    ) -> Result<Option<DeskLink>, StoreError> {
        links::lookup(&self.read, desk_id, desk_conversation_id).await
    }

    /// Records a service's state (and a `service.state` event when `event`), without
    /// waiting for the commit.
    pub fn record_service(&self, info: ServiceInfo, state: ConnState, since: i64, event: bool) {
        self.writer
            .run_detached(move |cx| service::record_service(cx, &info, &state, since, event));
    }

    /// Records a service's state and waits for the commit.
    pub async fn record_service_now(
        &self,
        info: ServiceInfo,
        state: ConnState,
        since: i64,
        event: bool,
    ) -> Result<(), StoreError> {
        self.writer
            .run(move |cx| service::record_service(cx, &info, &state, since, event))
            .await
    }

    /// Periodic housekeeping.
    pub async fn prune(&self) -> Result<(), StoreError> {
        self.writer.run(ingest::prune_receipts).await
    }

    /// One retention pass: deletes the events after seq `from` that are older than
    /// `retention` and held by no outbox row, one [`retention::BATCH`] per writer job
    /// with `pause` between jobs so that ingest is never queued behind more than one.
    /// Returns the seq through which every prunable event is gone (where an
    /// incremental pass may start next time) and how many were deleted. A pass from 0
    /// also finds old events whose deliveries finished since they were first seen.
    pub async fn prune_events(
        &self,
        retention: Duration,
        from: i64,
        pause: Duration,
    ) -> Result<(i64, u64), StoreError> {
        let retention_ms = i64::try_from(retention.as_millis()).unwrap_or(i64::MAX);
        let cutoff = rows::now_ms().saturating_sub(retention_ms);
        let (mut through, mut pruned) = (from, 0);
        loop {
            let after = through;
            let batch = self
                .writer
                .run(move |cx| retention::prune_batch(cx, after, cutoff, retention::BATCH))
                .await?;
            self.shared.metrics.events_pruned(batch.pruned);
            (through, pruned) = (batch.through, pruned + batch.pruned);
            if batch.done {
                return Ok((through, pruned));
            }
            tokio::time::sleep(pause).await;
        }
    }
}
