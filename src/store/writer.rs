//! The single writer: one thread owning the only read-write connection. Writes from every
//! task queue here; each batch runs in one transaction with a savepoint per job, and a
//! job's caller gets its result only after `COMMIT` returned ("group commit": one fsync
//! for everything that arrived while the previous batch was committing).
//!
//! The connection is SQLite's (rusqlite) or PostgreSQL's (the synchronous `postgres`
//! client), behind [`Db`]; jobs are written once for both. rusqlite rather than sqlx on
//! the SQLite side: sqlx hands every statement to a worker thread and back, which
//! measured ~75 µs per statement on the 2-core CI machine against ~0.5 µs here, and an
//! ingest is about ten statements.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::ops::Neg;
use std::path::Path;
use std::sync::Arc;
use std::thread::JoinHandle;

use tokio::sync::{mpsc, oneshot};

use super::error::StoreError;
use super::routes::{Routes, Shared};
use super::rows::now_ms;
use super::sql::{Db, PgConn};

/// Most jobs in one transaction; bounds the latency one batch adds to the next.
const MAX_BATCH: usize = 512;
/// Jobs waiting for the writer before callers wait for room (backpressure).
const QUEUE: usize = 8192;
/// The writer's page cache, KiB. It holds the hot index pages of a database of millions
/// of messages; memory is only taken as pages are read.
const WRITER_CACHE_KIB: i64 = 32 * 1024;

/// What a job sees: the connection inside the batch's transaction, the batch's clock,
/// the event routes, and the effects to publish after commit.
pub struct WriteCx<'c> {
    /// The connection, inside a transaction and the job's savepoint.
    pub db: Db<'c>,
    /// The batch's time, unix ms.
    pub now: i64,
    /// Which webhook services take which events.
    pub routes: &'c Routes,
    /// What to announce once committed.
    pub fx: Effects,
    /// This instance's id where leases fence deliveries (PostgreSQL shared by several
    /// instances); `None` on SQLite.
    pub instance: Option<&'c str>,
}

/// What a batch changed that others must hear about after the commit.
#[derive(Debug, Default, Clone)]
pub struct Effects {
    /// Highest event seq written (0: none).
    pub last_seq: i64,
    /// Services with new or rescheduled outbox rows.
    pub outbox: BTreeSet<String>,
    /// Of those, services where a retried dead row became a queue's head (see
    /// [`super::routes::OutboxSignal`]).
    pub requeued: BTreeSet<String>,
}

trait ErasedJob: Send {
    /// Runs the job; its error, if it failed.
    fn run(&mut self, cx: &mut WriteCx<'_>) -> Option<StoreError>;
    fn finish(self: Box<Self>, committed: Result<(), StoreError>);
}

struct Job<T, F> {
    f: Option<F>,
    out: Option<Result<T, StoreError>>,
    reply: Option<oneshot::Sender<Result<T, StoreError>>>,
}

impl<T, F> ErasedJob for Job<T, F>
where
    T: Send,
    F: FnOnce(&mut WriteCx<'_>) -> Result<T, StoreError> + Send,
{
    fn run(&mut self, cx: &mut WriteCx<'_>) -> Option<StoreError> {
        let f = self.f.take().expect("a job runs once");
        let out = f(cx);
        let failed = out.as_ref().err().cloned();
        self.out = Some(out);
        failed
    }

    fn finish(mut self: Box<Self>, committed: Result<(), StoreError>) {
        let result = match (committed, self.out.take()) {
            // A job that failed was rolled back to its savepoint: its own error stands.
            (_, Some(Err(e))) => Err(e),
            (Ok(()), Some(ok)) => ok,
            (Err(e), _) => Err(e),
            (Ok(()), None) => Err(StoreError::Internal("job did not run".into())),
        };
        if let Some(reply) = self.reply.take() {
            let _ = reply.send(result);
        }
    }
}

enum Msg {
    Job(Box<dyn ErasedJob>),
    Stop,
}

/// A handle for submitting writes. Cheap to clone.
#[derive(Clone)]
pub struct Writer {
    tx: mpsc::Sender<Msg>,
    thread: Arc<std::sync::Mutex<Option<JoinHandle<()>>>>,
}

impl Writer {
    /// Opens SQLite's read-write connection and starts the writer thread.
    pub fn start(
        path: &Path,
        synchronous_full: bool,
        shared: Arc<Shared>,
    ) -> Result<Self, StoreError> {
        Self::spawn(Conn::Lite(open(path, synchronous_full)?), shared)
    }

    /// Starts the writer thread on a PostgreSQL connection made with `config`;
    /// `instance` fences delivery results with its leases.
    pub fn start_pg(
        config: postgres::Config,
        instance: Option<String>,
        shared: Arc<Shared>,
    ) -> Result<Self, StoreError> {
        let conn = PgConn::new(config.connect(postgres::NoTls)?);
        Self::spawn(
            Conn::Pg(Box::new(PgWriter {
                conn: RefCell::new(conn),
                config,
                instance,
                failed: std::cell::Cell::new(false),
            })),
            shared,
        )
    }

    fn spawn(conn: Conn, shared: Arc<Shared>) -> Result<Self, StoreError> {
        let (tx, rx) = mpsc::channel(QUEUE);
        let thread = std::thread::Builder::new()
            .name("sb-writer".into())
            .spawn(move || writer_loop(conn, rx, shared))
            .map_err(|e| StoreError::Internal(format!("cannot start the writer thread: {e}")))?;
        Ok(Writer {
            tx,
            thread: Arc::new(std::sync::Mutex::new(Some(thread))),
        })
    }

    /// Runs `f` in the next batch and returns its result once the batch has committed.
    pub async fn run<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut WriteCx<'_>) -> Result<T, StoreError> + Send + 'static,
    {
        let (reply, rx) = oneshot::channel();
        let job = Job {
            f: Some(f),
            out: None,
            reply: Some(reply),
        };
        self.tx
            .send(Msg::Job(Box::new(job)))
            .await
            .map_err(|_| StoreError::Unavailable("storage is shutting down".into()))?;
        rx.await
            .map_err(|_| StoreError::Unavailable("storage is shutting down".into()))?
    }

    /// Queues `f` without waiting for it (state reports). Dropped if the queue is full
    /// or storage is closing; such writes are advisory.
    pub fn run_detached<F>(&self, f: F)
    where
        F: FnOnce(&mut WriteCx<'_>) -> Result<(), StoreError> + Send + 'static,
    {
        let job: Job<(), F> = Job {
            f: Some(f),
            out: None,
            reply: None,
        };
        if self.tx.try_send(Msg::Job(Box::new(job))).is_err() {
            tracing::warn!("writer queue full or closed; a state record was dropped");
        }
    }

    /// Finishes every queued job, then stops the thread and closes the connection.
    pub async fn stop(&self) {
        let _ = self.tx.send(Msg::Stop).await;
        let handle = self.thread.lock().ok().and_then(|mut t| t.take());
        if let Some(h) = handle {
            let _ = tokio::task::spawn_blocking(move || h.join()).await;
        }
    }
}

/// Opens the read-write connection with the settings every write relies on.
fn open(path: &Path, synchronous_full: bool) -> Result<rusqlite::Connection, StoreError> {
    let conn = rusqlite::Connection::open(path).map_err(|e| {
        StoreError::Unavailable(format!("cannot open database {}: {e}", path.display()))
    })?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.pragma_update(None, "journal_mode", "wal")?;
    conn.pragma_update(
        None,
        "synchronous",
        if synchronous_full { "full" } else { "normal" },
    )?;
    conn.pragma_update(None, "foreign_keys", "on")?;
    // Ingest inserts into indexes in no particular order (provider ids, conversations):
    // with SQLite's default 2 MiB cache a large database misses on nearly every insert.
    conn.pragma_update(None, "cache_size", WRITER_CACHE_KIB.neg())?;
    conn.set_prepared_statement_cache_capacity(128);
    Ok(conn)
}

/// The writer's connection.
enum Conn {
    Lite(rusqlite::Connection),
    Pg(Box<PgWriter>),
}

struct PgWriter {
    conn: RefCell<PgConn>,
    /// To connect again after the server went away.
    config: postgres::Config,
    /// This instance's id (fencing; see `WriteCx::instance`).
    instance: Option<String>,
    /// The last batch, or a job in it, failed as unavailable: connect again before the
    /// next batch.
    failed: std::cell::Cell<bool>,
}

impl Conn {
    fn db(&self) -> Db<'_> {
        match self {
            Conn::Lite(c) => Db::Lite(c),
            Conn::Pg(pg) => Db::Pg(&pg.conn),
        }
    }

    /// PostgreSQL: a new connection when the old one broke (a server restart or a
    /// failover) or its last batch failed, or a job in it as unavailable; the failed
    /// callers were told, the next batch goes through. A failure is enough: a
    /// connection still open to a server that no longer takes writes (a primary turned
    /// replica behind the same address, as after a failover with a stale DNS answer)
    /// fails every write with 25006 until the client connects again and finds the one
    /// that does (with `target_session_attrs=read-write`, or once the address moved).
    fn heal(&self) {
        if let Conn::Pg(pg) = self
            && (pg.failed.take() || pg.conn.borrow().client.is_closed())
        {
            match pg.config.connect(postgres::NoTls) {
                Ok(c) => *pg.conn.borrow_mut() = PgConn::new(c),
                Err(e) => {
                    tracing::warn!(error = %e, "reconnecting the writer to PostgreSQL failed")
                }
            }
        }
    }
}

fn writer_loop(conn: Conn, mut rx: mpsc::Receiver<Msg>, shared: Arc<Shared>) {
    let mut stopping = false;
    while !stopping {
        let Some(first) = rx.blocking_recv() else {
            break;
        };
        let mut batch: Vec<Box<dyn ErasedJob>> = Vec::new();
        match first {
            Msg::Job(j) => batch.push(j),
            Msg::Stop => break,
        }
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(Msg::Job(j)) => batch.push(j),
                Ok(Msg::Stop) => {
                    stopping = true;
                    break;
                }
                Err(_) => break,
            }
        }
        conn.heal();
        run_batch(&conn, batch, &shared);
    }
    rx.close();
    // Anything that raced the stop gets a clear answer instead of a dropped channel.
    while let Ok(msg) = rx.try_recv() {
        if let Msg::Job(j) = msg {
            j.finish(Err(StoreError::Unavailable(
                "storage is shutting down".into(),
            )));
        }
    }
    if let Conn::Lite(c) = &conn
        && let Err(e) = c.pragma_update(None, "wal_checkpoint", "TRUNCATE")
    {
        tracing::debug!(error = %e, "final WAL checkpoint did not complete");
    }
}

fn run_batch(conn: &Conn, mut batch: Vec<Box<dyn ErasedJob>>, shared: &Shared) {
    let routes = shared.routes();
    let db = conn.db();
    let mut cx = WriteCx {
        db,
        now: now_ms(),
        routes: &routes,
        fx: Effects::default(),
        instance: match conn {
            Conn::Pg(pg) => pg.instance.as_deref(),
            Conn::Lite(_) => None,
        },
    };
    // Each job runs in a savepoint of its own. Its end (release, or rollback when it
    // failed) travels with the next job's savepoint, and the last one's with the
    // commit: on PostgreSQL every statement is a round trip.
    let result = (|| -> Result<(), StoreError> {
        if db.is_pg() {
            db.batch(super::pg::BEGIN)?;
        } else {
            db.batch("BEGIN IMMEDIATE")?;
        }
        let mut end = "";
        for job in batch.iter_mut() {
            let saved = cx.fx.clone();
            db.batch(&format!("{end}SAVEPOINT job"))?;
            end = match job.run(&mut cx) {
                None => "RELEASE job; ",
                Some(e) => {
                    cx.fx = saved;
                    if let (StoreError::Unavailable(_), Conn::Pg(pg)) = (e, conn) {
                        // The server refused for a reason of its own (read-only, shutting
                        // down, out of resources): a new connection before the next batch.
                        pg.failed.set(true);
                    }
                    "ROLLBACK TO job; RELEASE job; "
                }
            };
        }
        // Other instances hear of the commit (their event streams and dispatchers).
        let notify = if db.is_pg() {
            super::pg::notify_sql(&cx.fx)
        } else {
            None
        };
        match notify {
            Some(notify) => db.batch(&format!("{end}{notify}; COMMIT"))?,
            None => db.batch(&format!("{end}COMMIT"))?,
        }
        Ok(())
    })();
    match result {
        Ok(()) => {
            shared.metrics.writer_batch(batch.len());
            for job in batch {
                job.finish(Ok(()));
            }
            shared.publish(&cx.fx);
        }
        Err(e) => {
            if !matches!(conn, Conn::Lite(c) if c.is_autocommit()) {
                let _ = db.batch("ROLLBACK");
            }
            if let Conn::Pg(pg) = conn {
                pg.failed.set(true);
            }
            tracing::error!(error = %e, jobs = batch.len(), "a write batch failed; nothing in it was stored");
            shared.metrics.writer_failure();
            let e = match e {
                StoreError::Unavailable(m) => StoreError::Unavailable(m),
                other => StoreError::Unavailable(other.to_string()),
            };
            for job in batch {
                job.finish(Err(e.clone()));
            }
        }
    }
}
