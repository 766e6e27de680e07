//! Read-only figures for the operator's status page: messages per service and
//! direction in recent time buckets, and the deliveries that are failing. Both read
//! existing columns only and stay cheap on a large database (see each function).

use super::error::StoreError;
use super::read::Reader;
use super::sql::Db;

/// Messages of one service and direction, counted per bucket, oldest bucket first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Traffic {
    /// The service.
    pub service_id: String,
    /// `inbound` or `outbound`.
    pub direction: String,
    /// One count per bucket, oldest first.
    pub counts: Vec<u32>,
}

/// A delivery that failed at least once: retrying, or dead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailingDelivery {
    /// The outbox row.
    pub id: i64,
    /// The service it goes to.
    pub service_id: String,
    /// `message` or `event`.
    pub kind: String,
    /// Attempts so far.
    pub attempts: i64,
    /// The last attempt's error.
    pub last_error: String,
    /// Whether it was given up on.
    pub dead: bool,
    /// When it was queued (unix ms).
    pub created_at: i64,
    /// When it is tried next (unix ms); meaningless when dead.
    pub next_attempt_at: i64,
}

impl Reader {
    /// Messages stored in `[now - buckets * bucket_ms, now)`, counted per service,
    /// direction and bucket. Message ids grow with their `created_at` (one writer
    /// assigns both), so the first message of the window is found by bisecting on the
    /// primary key (a few dozen index probes) and only the window's rows are counted;
    /// no index on `created_at` is needed. A clock that stepped back while writing can
    /// only move rows between neighbouring buckets.
    pub async fn traffic(
        &self,
        now: i64,
        bucket_ms: i64,
        buckets: u32,
    ) -> Result<Vec<Traffic>, StoreError> {
        let since = now - bucket_ms * i64::from(buckets);
        let rows: Vec<(String, String, i64, i64)> = self
            .run(move |db| {
                let first = first_message_at_or_after(db, since)?;
                db.query(
                    "SELECT service_id, direction, (created_at - ?2) / ?3 AS bucket, count(*) FROM messages \
                     WHERE id >= ?1 AND created_at >= ?2 AND created_at < ?4 \
                     GROUP BY service_id, direction, bucket ORDER BY service_id, direction",
                    &[&first, &since, &bucket_ms, &now],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
                )
            })
            .await?;
        let mut out: Vec<Traffic> = Vec::new();
        for (service_id, direction, bucket, n) in rows {
            let fresh = out
                .last()
                .is_none_or(|t| t.service_id != service_id || t.direction != direction);
            if fresh {
                out.push(Traffic {
                    service_id,
                    direction,
                    counts: vec![0; buckets as usize],
                });
            }
            if let (Some(t), Ok(b)) = (out.last_mut(), usize::try_from(bucket))
                && let Some(slot) = t.counts.get_mut(b)
            {
                *slot = u32::try_from(n).unwrap_or(u32::MAX);
            }
        }
        Ok(out)
    }

    /// Deliveries that failed at least once (retrying or dead), newest first, at most
    /// `limit`; only those of `services` (the caller's organization's). The outbox
    /// holds live and dead rows only, so this scans a small table.
    pub async fn failing_deliveries(
        &self,
        services: &[String],
        limit: u32,
    ) -> Result<Vec<FailingDelivery>, StoreError> {
        let list = serde_json::to_string(services).unwrap_or_else(|_| "[]".into());
        self.run(move |db| {
            // The organization's services, as one JSON array parameter.
            let of_list = if db.is_pg() {
                "SELECT json_array_elements_text(CAST(?1 AS TEXT)::json)"
            } else {
                "SELECT value FROM json_each(?1)"
            };
            db.query(
                &format!(
                    "SELECT id, service_id, kind, attempts, last_error, state, created_at, next_attempt_at \
                     FROM outbox WHERE last_error IS NOT NULL AND service_id IN ({of_list}) \
                     ORDER BY id DESC LIMIT ?2"
                ),
                &[&list, &i64::from(limit)],
                |r| {
                    Ok(FailingDelivery {
                        id: r.get(0)?,
                        service_id: r.get(1)?,
                        kind: r.get(2)?,
                        attempts: r.get(3)?,
                        last_error: r.get(4)?,
                        dead: r.get::<i64>(5)? == 3,
                        created_at: r.get(6)?,
                        next_attempt_at: r.get(7)?,
                    })
                },
            )
        })
        .await
    }
}

/// The smallest message id whose `created_at` is at or after `since` (one past the
/// last id when none is), by bisection over the id range.
fn first_message_at_or_after(db: Db<'_>, since: i64) -> Result<i64, StoreError> {
    let (lo, hi): (Option<i64>, Option<i64>) =
        db.query_one("SELECT min(id), max(id) FROM messages", &[], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?;
    let (Some(mut lo), Some(hi)) = (lo, hi) else {
        return Ok(0);
    };
    // Invariant: every message below `lo` is older than `since`; `end` is past the
    // answer.
    let mut end = hi + 1;
    while lo < end {
        let mid = lo + (end - lo) / 2;
        // The first existing message at or after `mid` (ids may have gaps).
        let probe: Option<(i64, i64)> = db.query_opt(
            "SELECT id, created_at FROM messages WHERE id >= ? ORDER BY id LIMIT 1",
            &[&mid],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        match probe {
            Some((id, at)) if at < since => lo = id + 1,
            _ => end = mid,
        }
    }
    Ok(lo)
}

#[cfg(test)]
mod tests;
