//! The cluster's statements, on its own synchronous `postgres::Client` (called only from
//! the cluster's thread). Every time is the database's `clock_timestamp()`, never an
//! instance's clock.

use std::collections::BTreeMap;
use std::time::Duration;

use postgres::{Client, GenericClient, NoTls};

/// The advisory lock under which the tables are created ("swbclstr"), so instances
/// starting together do not race on `CREATE TABLE IF NOT EXISTS`.
const SCHEMA_LOCK: i64 = 0x7377_6263_6c73_7472;

/// The tables, created at join time (they are not in the storage migrations). The store
/// fences delivery commits with `SELECT 1 FROM leases WHERE name = $1 AND owner = $2
/// AND expires_at > clock_timestamp() FOR SHARE`.
const SCHEMA: &str = "\
    CREATE TABLE IF NOT EXISTS cluster_instances (id TEXT PRIMARY KEY, started_at TIMESTAMPTZ NOT NULL, heartbeat_at TIMESTAMPTZ NOT NULL);\
    CREATE TABLE IF NOT EXISTS leases (name TEXT PRIMARY KEY, owner TEXT NOT NULL, expires_at TIMESTAMPTZ NOT NULL, epoch BIGINT NOT NULL);";

/// Instances silent this long are deleted from `cluster_instances` at join (they are
/// long gone; the row only documents them).
const FORGET_AFTER: &str = "1 day";

/// Connects with every wait bounded by `bound` (connect, TCP, statements), so a
/// database that stops answering turns into an error rather than a hung thread.
pub fn connect(url: &str, bound: Duration) -> Result<Client, postgres::Error> {
    let mut config: postgres::Config = url.parse()?;
    let ms = bound.as_millis().max(1);
    config
        .connect_timeout(bound)
        .tcp_user_timeout(bound)
        .keepalives(true)
        .keepalives_idle(bound)
        .application_name("switchboard-cluster")
        .options(&format!("-c statement_timeout={ms} -c lock_timeout={ms}"));
    config.connect(NoTls)
}

/// Creates the tables if missing, and forgets instances silent for a day.
pub fn prepare(client: &mut Client) -> Result<(), postgres::Error> {
    let mut tx = client.transaction()?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&SCHEMA_LOCK])?;
    tx.batch_execute(SCHEMA)?;
    tx.execute(
        &format!(
            "DELETE FROM cluster_instances WHERE heartbeat_at < clock_timestamp() - interval '{FORGET_AFTER}'"
        ),
        &[],
    )?;
    tx.commit()
}

/// Registers `id`, unless an instance with that id heartbeated within `ttl` (it is
/// still running: two instances under one id would both hold its leases). Returns
/// whether it registered.
pub fn register(client: &mut Client, id: &str, ttl: Duration) -> Result<bool, postgres::Error> {
    let n = client.execute(
        "INSERT INTO cluster_instances (id, started_at, heartbeat_at) \
         VALUES ($1, clock_timestamp(), clock_timestamp()) \
         ON CONFLICT (id) DO UPDATE SET started_at = clock_timestamp(), heartbeat_at = clock_timestamp() \
         WHERE cluster_instances.heartbeat_at < clock_timestamp() - $2::bigint * interval '1 millisecond'",
        &[&id, &millis(ttl)],
    )?;
    Ok(n == 1)
}

/// Heartbeats `id` and returns the live instances (heartbeat within `ttl`), `id`
/// among them, each with how long until it counts as dead unless it heartbeats again.
pub fn heartbeat(
    client: &mut Client,
    id: &str,
    ttl: Duration,
) -> Result<BTreeMap<String, Duration>, postgres::Error> {
    // The CTE's upsert is not visible to the outer SELECT (one snapshot): our own row is
    // taken from its RETURNING.
    let rows = client.query(
        "WITH beat AS (\
             INSERT INTO cluster_instances (id, started_at, heartbeat_at) \
             VALUES ($1, clock_timestamp(), clock_timestamp()) \
             ON CONFLICT (id) DO UPDATE SET heartbeat_at = clock_timestamp() RETURNING id, heartbeat_at), \
         live AS (SELECT id, heartbeat_at FROM cluster_instances WHERE id <> $1 \
             UNION ALL SELECT id, heartbeat_at FROM beat) \
         SELECT id, (extract(epoch FROM heartbeat_at - clock_timestamp()) * 1000)::bigint + $2::bigint \
         FROM live WHERE heartbeat_at > clock_timestamp() - $2::bigint * interval '1 millisecond'",
        &[&id, &millis(ttl)],
    )?;
    Ok(rows
        .iter()
        .map(|r| {
            let left: i64 = r.get(1);
            (r.get(0), Duration::from_millis(left.max(0).unsigned_abs()))
        })
        .collect())
}

/// Takes or renews the leases of `names` for `ttl`: a name is taken if it has no row,
/// if `owner` holds it, or if its lease expired. Returns the names now held, with their
/// epochs. The epoch grows whenever a name is taken after a gap (another owner, or an
/// expired or released lease), so one unbroken holding has one epoch.
pub fn acquire(
    client: &mut Client,
    owner: &str,
    names: &[&str],
    ttl: Duration,
) -> Result<BTreeMap<String, i64>, postgres::Error> {
    if names.is_empty() {
        return Ok(BTreeMap::new());
    }
    // In name order, so two instances' overlapping upserts lock rows in the same order.
    let rows = client.query(
        "INSERT INTO leases (name, owner, expires_at, epoch) \
         SELECT n, $1, clock_timestamp() + $2::bigint * interval '1 millisecond', 1 \
         FROM unnest($3::text[]) AS n ORDER BY n \
         ON CONFLICT (name) DO UPDATE SET owner = EXCLUDED.owner, expires_at = EXCLUDED.expires_at, \
             epoch = leases.epoch + CASE WHEN leases.owner = EXCLUDED.owner \
                 AND leases.expires_at >= clock_timestamp() THEN 0 ELSE 1 END \
         WHERE leases.owner = EXCLUDED.owner OR leases.expires_at < clock_timestamp() \
         RETURNING name, epoch",
        &[&owner, &millis(ttl), &names],
    )?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// Gives up `owner`'s leases of `names` (all of them if `None`). The row is kept with
/// its expiry in the past rather than deleted, so the next owner's epoch follows this
/// one's instead of starting again at 1.
pub fn release(
    client: &mut impl GenericClient,
    owner: &str,
    names: Option<&[&str]>,
) -> Result<u64, postgres::Error> {
    match names {
        Some([]) => Ok(0),
        Some(names) => client.execute(
            "UPDATE leases SET expires_at = '-infinity' WHERE owner = $1 AND name = ANY($2::text[])",
            &[&owner, &names],
        ),
        None => client.execute(
            "UPDATE leases SET expires_at = '-infinity' WHERE owner = $1",
            &[&owner],
        ),
    }
}

/// Releases every lease of `id` and deletes its instance row.
pub fn leave(client: &mut Client, id: &str) -> Result<(), postgres::Error> {
    let mut tx = client.transaction()?;
    release(&mut tx, id, None)?;
    tx.execute("DELETE FROM cluster_instances WHERE id = $1", &[&id])?;
    tx.commit()
}

/// Who holds each unexpired lease.
pub fn holders(client: &mut Client) -> Result<BTreeMap<String, String>, postgres::Error> {
    let rows = client.query(
        "SELECT name, owner FROM leases WHERE expires_at > clock_timestamp()",
        &[],
    )?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// `url` with any password removed, for logs.
pub fn redacted(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            if u.password().is_some() {
                let _ = u.set_password(None);
            }
            // A password may also be a query parameter (`?password=…`).
            if u.query_pairs().any(|(k, _)| k == "password") {
                let kept: Vec<(String, String)> = u
                    .query_pairs()
                    .filter(|(k, _)| k != "password")
                    .map(|(k, v)| (k.into_owned(), v.into_owned()))
                    .collect();
                u.query_pairs_mut().clear().extend_pairs(kept);
            }
            u.to_string()
        }
        // The key=value form: say which server without repeating the string.
        Err(_) => "the configured database".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn urls_are_logged_without_their_password() {
        assert_eq!(
            super::redacted("postgres://sb:s3cret@db:5432/switchboard"),
            "postgres://sb@db:5432/switchboard"
        );
        let q = super::redacted("postgres://sb@db/x?password=s3cret&sslmode=disable");
        assert!(
            !q.contains("s3cret") && q.contains("sslmode=disable"),
            "{q}"
        );
        assert_eq!(
            super::redacted("host=db password=s3cret"),
            "the configured database"
        );
    }
}
