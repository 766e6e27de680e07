//! What this instance believes it holds, shared by the API, the cluster's thread and
//! the expiry guard: the names it may run, the leases it holds with the local instant
//! at which each counts as lost unless renewed, and one watch channel per name.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::metrics::Metrics;

/// State shared by the [`super::Cluster`] handle and its threads.
pub struct Shared {
    /// This instance's id.
    pub id: String,
    /// The lease TTL (renewed every third of it).
    pub ttl: Duration,
    /// Without a database every name is held, always.
    pub single: bool,
    state: Mutex<State>,
    /// Wakes the expiry guard when deadlines change or the cluster closes.
    changed: Condvar,
    metrics: Arc<Metrics>,
}

/// The mutable part of [`Shared`].
#[derive(Default)]
pub struct State {
    /// The names this instance can run (the config's runnable services, `@hub`, …).
    pub names: BTreeSet<String>,
    /// Held names, each with the local instant at which it is reported lost unless a
    /// renew succeeds first.
    held: BTreeMap<String, Instant>,
    /// The watchers of each name asked about.
    watchers: HashMap<String, watch::Sender<bool>>,
    /// Who held each lease at the last round (all ours in the single case).
    pub holders: BTreeMap<String, String>,
    /// Names given up (reported not held) whose leases are not released yet: released
    /// once their work stopped, else they expire by themselves within the TTL.
    pub draining: BTreeMap<String, Draining>,
    /// The cluster left (or its thread ended): nothing is renewed any more.
    pub closed: bool,
}

/// A name given up, its lease not released yet.
#[derive(Debug, Clone, Copy)]
pub struct Draining {
    /// When it was given up.
    pub since: Instant,
    /// Its work has stopped: the lease may go now.
    pub stopped: bool,
}

impl Shared {
    /// Shared state with nothing held.
    pub fn new(id: String, ttl: Duration, single: bool, metrics: Arc<Metrics>) -> Self {
        metrics.set_instance(&id);
        metrics.set_leases_held(0);
        Shared {
            id,
            ttl,
            single,
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
            metrics,
        }
    }

    /// Locks the state (a panic elsewhere does not stop lease bookkeeping).
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` on the state, then updates the gauge and wakes the guard.
    pub fn update<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        let mut st = self.lock();
        let out = f(&mut st);
        let held = if self.single {
            st.names.len()
        } else {
            st.held.len()
        };
        self.metrics.set_leases_held(held);
        drop(st);
        self.changed.notify_all();
        out
    }

    /// Follows whether `name` is held.
    pub fn watch(&self, name: &str) -> watch::Receiver<bool> {
        let mut st = self.lock();
        let now = self.single || st.held.contains_key(name);
        st.watchers
            .entry(name.to_owned())
            .or_insert_with(|| watch::Sender::new(now))
            .subscribe()
    }

    /// Whether `name` is held now.
    pub fn holds(&self, name: &str) -> bool {
        self.single || self.lock().held.contains_key(name)
    }

    /// Reports held names lost when their renew is overdue, until the cluster closes
    /// and nothing is held. Runs on its own thread, so a cluster thread stuck in a
    /// database call cannot keep a lease reported held past its deadline.
    pub fn guard(&self) {
        let mut st = self.lock();
        loop {
            let now = Instant::now();
            let overdue: Vec<String> = st
                .held
                .iter()
                .filter(|(_, until)| **until <= now)
                .map(|(n, _)| n.clone())
                .collect();
            for name in overdue {
                st.revoke(&name);
                tracing::warn!(lease = %name, "lease reported lost: it was not renewed in time (the database does not answer)");
            }
            self.metrics.set_leases_held(st.held.len());
            if st.closed && st.held.is_empty() {
                return;
            }
            let wait = st
                .held
                .values()
                .min()
                .map_or(Duration::from_secs(1), |u| u.saturating_duration_since(now));
            st = self
                .changed
                .wait_timeout(st, wait)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

impl State {
    /// Records `name` as held until `until` (local clock), telling its watchers if it
    /// was not.
    pub fn grant(&mut self, name: &str, until: Instant) {
        if self.held.insert(name.to_owned(), until).is_none() {
            self.tell(name, true);
        }
    }

    /// Records `name` as not held, telling its watchers; returns whether it was held.
    pub fn revoke(&mut self, name: &str) -> bool {
        let was = self.held.remove(name).is_some();
        if was {
            self.tell(name, false);
        }
        was
    }

    /// Revokes every held name; returns how many there were.
    pub fn revoke_all(&mut self) -> usize {
        let names: Vec<String> = self.held.keys().cloned().collect();
        for n in &names {
            self.revoke(n);
        }
        names.len()
    }

    /// The names held now.
    pub fn held(&self) -> impl Iterator<Item = &String> {
        self.held.keys()
    }

    fn tell(&mut self, name: &str, on: bool) {
        if let Some(w) = self.watchers.get(name) {
            w.send_replace(on);
        }
    }
}
