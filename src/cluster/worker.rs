//! The cluster's thread: every third of the TTL it heartbeats, works out which names
//! are rightfully its own (rendezvous hashing over the live instances), gives up the
//! others and takes or renews its own, all on its own synchronous connection.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use postgres::Client;

use super::rendezvous;
use super::sql;
use super::state::{Draining, Shared};

/// What the API asks of the thread.
pub enum Command {
    /// The names changed, or some work stopped: run a round now.
    Wake,
    /// Release everything, deregister, and end; answered once done.
    Leave(tokio::sync::oneshot::Sender<()>),
    /// End at once without releasing anything, as a killed process would (tests).
    #[cfg(test)]
    Crash,
}

/// The fraction of the TTL after the start of its last successful renew at which a
/// lease is reported lost locally: before the database lets another instance take it.
const LOCAL_SHARE: f64 = 5.0 / 6.0;

/// How long after another instance's heartbeat runs out the round that notices is due.
const DEATH_MARGIN: Duration = Duration::from_millis(20);

/// The connection and what a round carries over to the next.
pub struct Worker {
    shared: Arc<Shared>,
    url: String,
    client: Option<Client>,
    rx: Receiver<Command>,
    /// The last round failed (logged once per outage).
    failing: bool,
}

/// Connects, creates the tables and registers `id`, waiting out a previous instance
/// with the same id that may still be running (its heartbeat is within the TTL).
pub fn setup(url: &str, id: &str, ttl: Duration) -> Result<Client, String> {
    let db = sql::redacted(url);
    let mut client =
        sql::connect(url, ttl / 3).map_err(|e| format!("cluster: connecting to {db}: {e}"))?;
    sql::prepare(&mut client).map_err(|e| format!("cluster: creating its tables in {db}: {e}"))?;
    let give_up = Instant::now() + ttl + ttl / 3;
    loop {
        if sql::register(&mut client, id, ttl)
            .map_err(|e| format!("cluster: registering in {db}: {e}"))?
        {
            return Ok(client);
        }
        if Instant::now() >= give_up {
            return Err(format!(
                "cluster: another instance with id {id:?} is running on {db} (server.instance_id must differ per instance)"
            ));
        }
        tracing::info!(instance = %id, "an instance with this id heartbeated within the lease TTL; waiting for it to expire");
        std::thread::sleep(ttl / 6);
    }
}

impl Worker {
    /// A worker on an established connection.
    pub fn new(shared: Arc<Shared>, url: String, client: Client, rx: Receiver<Command>) -> Self {
        Worker {
            shared,
            url,
            client: Some(client),
            rx,
            failing: false,
        }
    }

    /// Runs rounds until told to leave (or until the [`super::Cluster`] is dropped,
    /// which leaves too).
    pub fn run(mut self) {
        let mut next = Instant::now();
        loop {
            let wait = next.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(wait) {
                Ok(Command::Wake) | Err(RecvTimeoutError::Timeout) => {}
                Ok(Command::Leave(done)) => {
                    self.leave();
                    let _ = done.send(());
                    return;
                }
                Err(RecvTimeoutError::Disconnected) => return self.leave(),
                #[cfg(test)]
                Ok(Command::Crash) => {
                    // Held names stay reported held until the guard's deadlines.
                    self.shared.update(|st| st.closed = true);
                    return;
                }
            }
            // Several wakes in a row make one round.
            while let Ok(Command::Wake) = self.rx.try_recv() {}
            next = self.round();
        }
    }

    /// One round; returns when the next is due.
    fn round(&mut self) -> Instant {
        let renew = self.shared.ttl / 3;
        let started = Instant::now();
        match self.try_round(started) {
            Ok((pending, next_death)) => {
                if self.failing {
                    tracing::info!("cluster: the database answers again");
                    self.failing = false;
                }
                // A name that is rightfully ours but still held elsewhere (being
                // released, or expiring) is tried again soon.
                let due = started + if pending { renew / 10 } else { renew };
                // An instance that stopped heartbeating counts as dead at a known time:
                // a round right after it hands its names on without waiting a period.
                next_death.map_or(due, |d| due.min(started + d + DEATH_MARGIN))
            }
            Err(e) => {
                self.client = None;
                let lost = self.shared.update(|st| {
                    st.draining.clear();
                    st.revoke_all()
                });
                if !self.failing || lost > 0 {
                    tracing::warn!(error = %e, db = %sql::redacted(&self.url), leases_lost = lost,
                        "cluster: renewing leases failed; this instance holds none until the database answers");
                }
                self.failing = true;
                started + renew
            }
        }
    }

    /// Heartbeat, give up, release, take or renew, read the holders. Returns whether a
    /// rightful name could not be taken yet, and when the next other instance counts
    /// as dead unless it heartbeats.
    fn try_round(&mut self, started: Instant) -> Result<(bool, Option<Duration>), postgres::Error> {
        let ttl = self.shared.ttl;
        if self.client.is_none() {
            self.client = Some(sql::connect(&self.url, ttl / 3)?);
        }
        let client = self.client.as_mut().expect("connected above");
        let me = self.shared.id.as_str();
        let live = sql::heartbeat(client, me, ttl)?;
        let next_death = live
            .iter()
            .filter(|(id, _)| id.as_str() != me)
            .map(|(_, left)| *left)
            .min();
        let names = self.shared.update(|st| st.names.clone());
        let mine: BTreeSet<&str> = names
            .iter()
            .map(String::as_str)
            .filter(|n| rendezvous::owner(live.keys().map(String::as_str), n) == Some(me))
            .collect();

        // What is not ours any more is reported lost now, so that its work stops; its
        // lease is released once the work has (a name no longer run here at all has
        // stopped already), and it is not renewed meanwhile.
        let release: Vec<String> = self.shared.update(|st| {
            let gone: Vec<String> = st
                .held()
                .filter(|n| !mine.contains(n.as_str()))
                .cloned()
                .collect();
            for n in gone {
                st.revoke(&n);
                tracing::info!(lease = %n, "lease given up: another instance is its rightful holder now, or it is no longer run here");
                st.draining.insert(
                    n,
                    Draining {
                        since: started,
                        stopped: false,
                    },
                );
            }
            st.draining.retain(|n, _| !mine.contains(n.as_str()));
            st.draining
                .iter()
                .filter(|(n, d)| d.stopped || !names.contains(*n) || started >= d.since + ttl)
                .map(|(n, _)| n.clone())
                .collect()
        });
        let refs: Vec<&str> = release.iter().map(String::as_str).collect();
        sql::release(client, me, Some(&refs))?;
        self.shared.update(|st| {
            for n in &release {
                st.draining.remove(n);
            }
        });

        let wanted: Vec<&str> = mine.iter().copied().collect();
        let got = sql::acquire(client, me, &wanted, ttl)?;
        let until = started + ttl.mul_f64(LOCAL_SHARE);
        self.shared.update(|st| {
            for n in &wanted {
                if got.contains_key(*n) {
                    st.grant(n, until);
                } else if st.revoke(n) {
                    tracing::warn!(lease = %n, "lease lost: another instance holds it");
                }
            }
        });
        let holders = sql::holders(client)?;
        self.shared.update(|st| st.holders = holders);
        Ok((got.len() < wanted.len(), next_death))
    }

    /// Reports nothing held, then releases every lease and deregisters.
    fn leave(&mut self) {
        self.shared.update(|st| {
            st.revoke_all();
            st.holders.clear();
            st.closed = true;
        });
        let ttl = self.shared.ttl;
        let result = match &mut self.client {
            Some(c) => sql::leave(c, &self.shared.id),
            None => sql::connect(&self.url, ttl / 3)
                .and_then(|mut c| sql::leave(&mut c, &self.shared.id)),
        };
        match result {
            Ok(()) => {
                tracing::info!(instance = %self.shared.id, "left the cluster; its leases are released")
            }
            Err(e) => {
                tracing::warn!(error = %e, "cluster: releasing the leases failed; they expire within the lease TTL")
            }
        }
    }
}
