//! Several instances on one PostgreSQL database: which instance runs what.
//!
//! Work that must run once in the cluster (a service's connection and dispatcher, the
//! hub sync, housekeeping) is guarded by a lease, a row of `leases` with an owner and
//! an expiry. Every instance heartbeats in `cluster_instances`; each name's rightful
//! holder is the live instance (heartbeat within the TTL) with the highest rendezvous
//! weight, so the names spread over the instances and only a joining or leaving
//! instance's share moves. Leases are renewed every third of the TTL; a lease that is
//! not renewed is reported lost here before the database lets another instance take it.
//! All times are the database's clock.
//!
//! With SQLite there is one instance and no database: [`Cluster::single`] holds every
//! name, always.
//!
//! - [`while_held`] — runs work only while its lease is held.
//! - [`rendezvous`] — the rightful holder of a name.
//! - `sql` — the statements, on the cluster's own synchronous connection.
//! - `state` — what this instance holds, its watchers, and the expiry guard.
//! - `worker` — the thread that heartbeats and renews.

mod gate;
pub mod rendezvous;
mod sql;
mod state;
mod worker;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use anyhow::Context;
use tokio::sync::watch;

use crate::metrics::Metrics;
pub use gate::while_held;
use state::Shared;
use worker::{Command, Worker};

/// The lease name of the hub sync (service ids are `[a-z0-9_]+`: no clash).
pub const HUB: &str = "@hub";
/// The lease name of housekeeping: event retention, receipt expiry, the recording of
/// date-window flips.
pub const HOUSEKEEPING: &str = "@housekeeping";

/// This instance's view of the cluster: which names it holds.
pub struct Cluster {
    shared: Arc<Shared>,
    /// The cluster thread (none in the single case). Dropping it makes the thread leave.
    worker: Option<mpsc::Sender<Command>>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("instance_id", &self.shared.id)
            .field("single", &self.shared.single)
            .finish_non_exhaustive()
    }
}

impl Cluster {
    /// One instance, no database (SQLite): holds every name, always.
    pub fn single(instance_id: String, metrics: Arc<Metrics>) -> Arc<Cluster> {
        Arc::new(Cluster {
            shared: Arc::new(Shared::new(instance_id, Duration::MAX, true, metrics)),
            worker: None,
        })
    }

    /// Joins the cluster in the PostgreSQL database at `url`: creates the cluster's
    /// tables if missing, registers, then heartbeats and renews every `ttl / 3` on its
    /// own thread and connection. Fails if the database cannot be reached, or if an
    /// instance with the same id is still running after waiting one TTL for it.
    pub async fn join(
        url: &str,
        instance_id: String,
        ttl: Duration,
        metrics: Arc<Metrics>,
    ) -> anyhow::Result<Arc<Cluster>> {
        let shared = Arc::new(Shared::new(instance_id, ttl, false, metrics));
        let (ready, joined) = tokio::sync::oneshot::channel();
        let (tx, rx) = mpsc::channel();
        let url = url.to_owned();
        let for_worker = shared.clone();
        // The synchronous client runs its own runtime: it must live off tokio's threads.
        std::thread::Builder::new()
            .name("cluster".into())
            .spawn(move || match worker::setup(&url, &for_worker.id, ttl) {
                Ok(client) => {
                    let _ = ready.send(Ok(()));
                    Worker::new(for_worker, url, client, rx).run();
                }
                Err(e) => {
                    let _ = ready.send(Err(e));
                }
            })
            .context("starting the cluster thread")?;
        joined
            .await
            .context("the cluster thread ended")?
            .map_err(anyhow::Error::msg)?;
        let for_guard = shared.clone();
        std::thread::Builder::new()
            .name("cluster-guard".into())
            .spawn(move || for_guard.guard())
            .context("starting the lease guard thread")?;
        tracing::info!(instance = %shared.id, lease_ttl = ?ttl, "joined the cluster");
        Ok(Arc::new(Cluster {
            shared,
            worker: Some(tx),
        }))
    }

    /// This instance's id (`server.instance_id`).
    pub fn instance_id(&self) -> &str {
        &self.shared.id
    }

    /// Whether this is the single-instance case (no database, every name held).
    pub fn is_single(&self) -> bool {
        self.shared.single
    }

    /// The names this instance can run: the runnable services of the config in force,
    /// plus [`HUB`] and [`HOUSEKEEPING`]. Leases follow at once: a name taken out is
    /// reported not held and released; a name added is taken if it is rightfully ours.
    pub fn set_names(&self, names: BTreeSet<String>) {
        let id = self.shared.id.clone();
        let single = self.shared.single;
        self.shared.update(|st| {
            if single {
                st.holders = names.iter().map(|n| (n.clone(), id.clone())).collect();
            }
            st.names = names;
        });
        self.wake();
    }

    /// Follows whether this instance holds `name`'s lease (always true in the single
    /// case). The work it guards runs only while it is true, and should stop at once
    /// when it turns false: the lease goes to another instance soon after.
    pub fn held(&self, name: &str) -> watch::Receiver<bool> {
        self.shared.watch(name)
    }

    /// Whether this instance holds `name`'s lease now.
    pub fn holds(&self, name: &str) -> bool {
        self.shared.holds(name)
    }

    /// Tells the cluster that the work guarded by `name` has stopped (after [`held`]
    /// turned false, or because the service stopped): a lease being given up to its
    /// rightful holder is released now. Until then it is not renewed, so it passes on
    /// within the TTL even if this is never called.
    ///
    /// [`held`]: Cluster::held
    pub fn work_stopped(&self, name: &str) {
        if self.shared.single {
            return;
        }
        let draining = self.shared.update(|st| match st.draining.get_mut(name) {
            Some(d) => {
                d.stopped = true;
                true
            }
            None => false,
        });
        if draining {
            self.wake();
        }
    }

    /// Who holds each lease, as of the last round (for `GET /v1/services`).
    pub async fn holders(&self) -> BTreeMap<String, String> {
        self.shared.lock().holders.clone()
    }

    /// Releases every lease and deregisters (graceful stop: the others take over at
    /// their next round instead of after the TTL). Call it after the work stopped.
    pub async fn leave(&self) {
        let Some(worker) = &self.worker else { return };
        let (done, left) = tokio::sync::oneshot::channel();
        if worker.send(Command::Leave(done)).is_ok() {
            let _ = left.await;
        }
    }

    fn wake(&self) {
        if let Some(w) = &self.worker {
            let _ = w.send(Command::Wake);
        }
    }

    /// Ends the cluster thread without releasing or deregistering, as a killed process
    /// would: its leases stay in the database until they expire.
    #[cfg(test)]
    fn crash(&self) {
        if let Some(w) = &self.worker {
            let _ = w.send(Command::Crash);
        }
    }
}
