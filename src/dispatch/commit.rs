//! The committer: one task per dispatcher that records delivery results in the order the
//! lanes reported them, as many per transaction as arrived while the previous commit
//! ran. Lanes go on delivering meanwhile; one that needs its results on disk (before it
//! stops, or when it is [`super::MAX_UNCOMMITTED`] ahead) waits for a flush.

use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::store::{Outcome, Store};

/// Most results in one transaction.
const MAX_BATCH: usize = 1024;
/// Attempts at committing one batch before its results are left to be delivered again.
const COMMIT_TRIES: u32 = 5;

enum Report {
    Result(i64, Outcome),
    /// Answered once everything reported before it is committed (or given up on).
    Flush(oneshot::Sender<()>),
}

/// The lanes' handle on the committer. The task ends when every handle is dropped.
pub struct Committer {
    tx: mpsc::UnboundedSender<Report>,
}

impl Committer {
    /// Starts the task; it ends once the handle and its clones are dropped and what they
    /// sent is committed.
    pub fn start(store: Store, shutdown: CancellationToken) -> (Self, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(run(store, rx, shutdown));
        (Committer { tx }, task)
    }

    /// Queues a result; unbounded, since a lane waits for a flush every
    /// [`super::MAX_UNCOMMITTED`] results.
    pub fn report(&self, outbox_id: i64, outcome: Outcome) {
        let _ = self.tx.send(Report::Result(outbox_id, outcome));
    }

    /// Waits until everything reported so far is committed.
    pub async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.tx.send(Report::Flush(done)).is_ok() {
            let _ = wait.await;
        }
    }
}

async fn run(store: Store, mut rx: mpsc::UnboundedReceiver<Report>, shutdown: CancellationToken) {
    let mut results = Vec::new();
    let mut flushes = Vec::new();
    while let Some(first) = rx.recv().await {
        let mut next = Some(first);
        while let Some(report) = next.take().or_else(|| rx.try_recv().ok()) {
            match report {
                Report::Result(id, outcome) => results.push((id, outcome)),
                Report::Flush(done) => flushes.push(done),
            }
            if results.len() >= MAX_BATCH {
                break;
            }
        }
        if !results.is_empty() {
            commit(&store, std::mem::take(&mut results), &shutdown).await;
        }
        for done in flushes.drain(..) {
            let _ = done.send(());
        }
    }
}

/// Commits one batch, retrying a storage that is briefly unavailable. Given up after
/// [`COMMIT_TRIES`] or at shutdown: the rows stay live and are delivered again later,
/// with the same ids (at least once).
async fn commit(store: &Store, results: Vec<(i64, Outcome)>, shutdown: &CancellationToken) {
    for attempt in 1..=COMMIT_TRIES {
        match store.delivery_results(results.clone()).await {
            Ok(()) => return,
            Err(e) => {
                tracing::warn!(error = %e, results = results.len(), attempt, "recording delivery results failed");
            }
        }
        if shutdown.is_cancelled() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await;
    }
    tracing::warn!(
        results = results.len(),
        "delivery results not recorded; those deliveries will be made again"
    );
}
