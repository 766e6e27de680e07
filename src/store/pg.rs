//! What only PostgreSQL needs: connecting, its migration set (`migrations/postgres/`),
//! and telling the other instances that share the database about each commit.
//!
//! Commits are announced with `pg_notify('switchboard', …)` inside the transaction
//! (PostgreSQL delivers it at commit, and only if it commits); every instance listens on
//! a connection of its own and publishes what it hears as if its own writer had
//! committed it: event streams read on, dispatchers wake.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::error::StoreError;
use super::routes::Shared;
use super::writer::Effects;

/// The advisory lock that one write transaction of any instance holds at a time, from
/// its first statement to its commit: PostgreSQL runs the instances' write batches one
/// after another, as SQLite runs its one writer's.
///
/// Each statement after the lock sees every batch committed before it, so the read-
/// then-write steps of a batch hold across instances exactly as on SQLite:
/// - an outbox row is inserted `ready` only when its queue has no live row, and a
///   delivered head's successor is made `ready` (under read committed without the
///   lock, an ingest and a delivery result committing side by side each missed the
///   other's row and left a queue with no head: nothing more delivered);
/// - event seqs are handed out in commit order, so a reader of `after=N` never passes a
///   number that commits later;
/// - an ingest that another instance just stored finds the stored copy.
///
/// It is taken first, before any row lock, so two batches never wait on each other.
/// Its key is 0x5357_4254_0001 ("SWBT", 1).
///
/// How every write batch on PostgreSQL starts, in one round trip.
pub const BEGIN: &str = "BEGIN; SELECT pg_advisory_xact_lock(91634240061441)";
/// The advisory lock that lets one instance at a time migrate.
const MIGRATE_LOCK: i64 = 0x5357_4254_0002;
/// The notification channel.
const CHANNEL: &str = "switchboard";
/// Most service ids one notification names; more wake every dispatcher.
const MAX_NAMED: usize = 64;

/// The migration set, in order: (version, name, SQL).
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "init",
        include_str!("../../migrations/postgres/0001_init.sql"),
    ),
    (
        2,
        "outbox_retention",
        include_str!("../../migrations/postgres/0002_outbox_retention.sql"),
    ),
    (
        3,
        "desk_links",
        include_str!("../../migrations/postgres/0003_desk_links.sql"),
    ),
    (
        4,
        "event_retention",
        include_str!("../../migrations/postgres/0004_event_retention.sql"),
    ),
    (
        5,
        "desks",
        include_str!("../../migrations/postgres/0005_desks.sql"),
    ),
    (
        6,
        "hook_nonces",
        include_str!("../../migrations/postgres/0006_hook_nonces.sql"),
    ),
    (
        7,
        "handoff",
        include_str!("../../migrations/postgres/0007_handoff.sql"),
    ),
];

/// The connection settings of `url` (`postgres://user:password@host:port/db?…`), with
/// switchboard's application name and a connect timeout.
pub fn config(url: &str) -> Result<postgres::Config, StoreError> {
    let mut config: postgres::Config = url
        .parse()
        .map_err(|e| StoreError::Unavailable(format!("storage.url: {e}")))?;
    if config.get_application_name().is_none() {
        config.application_name("switchboard");
    }
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(Duration::from_secs(5));
    }
    // A server that is gone without closing its connections (its machine lost, the
    // network cut) would hold a waiting call for the kernel's retransmission limit
    // (about 15 min): data left unacknowledged fails the connection after 30 s, and a
    // connection waiting for an answer is probed after 15 s quiet (3 probes, 5 s apart).
    // The URL's own `tcp_user_timeout` and `keepalives_*` win.
    if config.get_tcp_user_timeout().is_none() {
        config.tcp_user_timeout(Duration::from_secs(30));
    }
    if config.get_keepalives_idle() == DEFAULT_KEEPALIVES_IDLE {
        config.keepalives_idle(Duration::from_secs(15));
    }
    if config.get_keepalives_interval().is_none() {
        config.keepalives_interval(Duration::from_secs(5));
    }
    if config.get_keepalives_retries().is_none() {
        config.keepalives_retries(3);
    }
    Ok(config)
}

/// The client's `keepalives_idle` when the URL names none (2 hours).
const DEFAULT_KEEPALIVES_IDLE: Duration = Duration::from_secs(2 * 60 * 60);

fn checksum(sql: &str) -> String {
    Sha256::digest(sql.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Applies the pending migrations, one transaction each, while holding an advisory lock
/// (instances starting together migrate one after another). A migration applied before
/// whose text has changed since is an error: the database is not what this build
/// expects. Blocking: call it off the runtime's threads.
pub fn migrate(config: &postgres::Config) -> Result<(), StoreError> {
    let mut client = config.connect(postgres::NoTls)?;
    client.batch_execute(&format!("SELECT pg_advisory_lock({MIGRATE_LOCK})"))?;
    let result = (|| -> Result<(), StoreError> {
        client.batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (\
               version BIGINT PRIMARY KEY, name TEXT NOT NULL, checksum TEXT NOT NULL, \
               applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
        )?;
        let applied: Vec<(i64, String)> = client
            .query("SELECT version, checksum FROM schema_migrations", &[])?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        for &(version, name, sql) in MIGRATIONS {
            let sum = checksum(sql);
            match applied.iter().find(|(v, _)| *v == version) {
                Some((_, old)) if *old == sum => continue,
                Some(_) => {
                    return Err(StoreError::Internal(format!(
                        "migration {version} ({name}) was applied with different contents"
                    )));
                }
                None => {}
            }
            let mut tx = client.transaction()?;
            tx.batch_execute(sql)
                .map_err(|e| StoreError::Internal(format!("migration {version} ({name}): {e}")))?;
            tx.execute(
                "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                &[&version, &name, &sum],
            )?;
            tx.commit()?;
        }
        if let Some(&(v, _)) = applied.iter().max() {
            let known = MIGRATIONS.last().map_or(0, |m| m.0);
            if v > known {
                return Err(StoreError::Internal(format!(
                    "the database has migration {v}, newer than this build knows ({known})"
                )));
            }
        }
        Ok(())
    })();
    let _ = client.batch_execute(&format!("SELECT pg_advisory_unlock({MIGRATE_LOCK})"));
    result
}

/// The statement that queues the notification of what a transaction changed (sent at
/// its commit), if it changed anything others follow: a literal, so that it travels in
/// one round trip with the commit.
pub fn notify_sql(fx: &Effects) -> Option<String> {
    if fx.last_seq == 0 && fx.outbox.is_empty() {
        return None;
    }
    let all = fx.outbox.len() > MAX_NAMED;
    let named = |set: &BTreeSet<String>| -> Vec<String> {
        if all {
            Vec::new()
        } else {
            set.iter().cloned().collect()
        }
    };
    let payload = serde_json::json!({
        "seq": fx.last_seq,
        "outbox": named(&fx.outbox),
        "requeued": named(&fx.requeued),
        "all": all,
    })
    .to_string();
    // standard_conforming_strings (on since PostgreSQL 9.1): only quotes need doubling.
    Some(format!(
        "SELECT pg_notify('{CHANNEL}', '{}')",
        payload.replace('\'', "''")
    ))
}

/// Follows the other instances' commits until `stop` is set: a thread with a `LISTEN`
/// connection of its own, reconnecting after a second when it breaks.
pub fn listen(
    config: postgres::Config,
    shared: Arc<Shared>,
    stop: Arc<AtomicBool>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("sb-pg-listen".into())
        .spawn(move || {
            while !stop.load(Ordering::Acquire) {
                if let Err(e) = listen_once(&config, &shared, &stop) {
                    tracing::warn!(error = %e, "listening for other instances' commits failed; retrying");
                    std::thread::sleep(Duration::from_secs(1));
                }
            }
        })
}

fn listen_once(
    config: &postgres::Config,
    shared: &Shared,
    stop: &AtomicBool,
) -> Result<(), postgres::Error> {
    let mut client = config.connect(postgres::NoTls)?;
    client.batch_execute(&format!("LISTEN {CHANNEL}"))?;
    // What committed while this connection was down is not announced again: catch up
    // with the head and wake every dispatcher once, so that nothing waits for the next
    // commit.
    let head: i64 = client
        .query_one("SELECT coalesce(max(seq), 0) FROM events", &[])?
        .get(0);
    shared.publish_all(head);
    while !stop.load(Ordering::Acquire) {
        use postgres::fallible_iterator::FallibleIterator;
        {
            let mut notifications = client.notifications();
            let mut iter = notifications.timeout_iter(Duration::from_millis(500));
            while let Some(n) = iter.next()? {
                publish(shared, n.payload());
            }
        }
        if client.is_closed() {
            break;
        }
    }
    Ok(())
}

fn publish(shared: &Shared, payload: &str) {
    #[derive(serde::Deserialize)]
    struct Note {
        seq: i64,
        outbox: BTreeSet<String>,
        requeued: BTreeSet<String>,
        all: bool,
    }
    let Ok(note) = serde_json::from_str::<Note>(payload) else {
        tracing::warn!("an unreadable commit notification was ignored");
        return;
    };
    if note.all {
        shared.publish_all(note.seq);
        return;
    }
    shared.publish(&Effects {
        last_seq: note.seq,
        outbox: note.outbox,
        requeued: note.requeued,
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_are_bounded_unless_the_url_says_otherwise() {
        let c =
            config("postgres://sb@db-a:5432,db-b:5432/sb?target_session_attrs=read-write").unwrap();
        assert_eq!(c.get_tcp_user_timeout(), Some(&Duration::from_secs(30)));
        assert_eq!(c.get_keepalives_idle(), Duration::from_secs(15));
        assert_eq!(c.get_keepalives_interval(), Some(Duration::from_secs(5)));
        assert_eq!(c.get_keepalives_retries(), Some(3));
        assert_eq!(c.get_hosts().len(), 2);
        assert_eq!(c.get_connect_timeout(), Some(&Duration::from_secs(5)));

        let c = config(
            "postgres://sb@db/sb?tcp_user_timeout=90&keepalives_idle=60\
             &keepalives_interval=10&keepalives_retries=9&connect_timeout=2",
        )
        .unwrap();
        assert_eq!(c.get_tcp_user_timeout(), Some(&Duration::from_secs(90)));
        assert_eq!(c.get_keepalives_idle(), Duration::from_secs(60));
        assert_eq!(c.get_keepalives_interval(), Some(Duration::from_secs(10)));
        assert_eq!(c.get_keepalives_retries(), Some(9));
        assert_eq!(c.get_connect_timeout(), Some(&Duration::from_secs(2)));
    }
}
