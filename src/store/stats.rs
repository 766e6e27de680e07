//! Read-only figures for the operator's status page: messages per service and
//! direction in recent time buckets, and the deliveries that are failing. Both read
//! existing columns only and stay cheap on a large database (see each function).

use super::error::StoreError;
use super::read::Reader;

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
        let first = self.first_message_at_or_after(since).await?;
        let rows: Vec<(String, String, i64, i64)> = sqlx::query_as(
            "SELECT service_id, direction, (created_at - ?2) / ?3 AS bucket, count(*) FROM messages \
             WHERE id >= ?1 AND created_at >= ?2 AND created_at < ?4 \
             GROUP BY service_id, direction, bucket ORDER BY service_id, direction",
        )
        .bind(first)
        .bind(since)
        .bind(bucket_ms)
        .bind(now)
        .fetch_all(&self.pool)
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

    /// The smallest message id whose `created_at` is at or after `since` (one past the
    /// last id when none is), by bisection over the id range.
    async fn first_message_at_or_after(&self, since: i64) -> Result<i64, StoreError> {
        let (lo, hi): (Option<i64>, Option<i64>) =
            sqlx::query_as("SELECT min(id), max(id) FROM messages")
                .fetch_one(&self.pool)
                .await?;
        let (Some(mut lo), Some(hi)) = (lo, hi) else {
            return Ok(0);
        };
        // Invariant: every message below `lo` is older than `since`; `end` is past the
        // answer.
        let mut end = hi + 1;
        while lo < end {
            let mid = lo + (end - lo) / 2;
            // The first existing message at or after `mid` (ids may have gaps).
            let probe: Option<(i64, i64)> = sqlx::query_as(
                "SELECT id, created_at FROM messages WHERE id >= ? ORDER BY id LIMIT 1",
            )
            .bind(mid)
            .fetch_optional(&self.pool)
            .await?;
            match probe {
                Some((id, at)) if at < since => lo = id + 1,
                _ => end = mid,
            }
        }
        Ok(lo)
    }

    /// Deliveries that failed at least once (retrying or dead), newest first, at most
    /// `limit`; only those of `services` (the caller's organization's). The outbox
    /// holds live and dead rows only, so this scans a small table.
    pub async fn failing_deliveries(
        &self,
        services: &[String],
        limit: u32,
    ) -> Result<Vec<FailingDelivery>, StoreError> {
        #[derive(sqlx::FromRow)]
        struct Row {
            id: i64,
            service_id: String,
            kind: String,
            attempts: i64,
            last_error: String,
            state: i64,
            created_at: i64,
            next_attempt_at: i64,
        }
        let list = serde_json::to_string(services).unwrap_or_else(|_| "[]".into());
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT id, service_id, kind, attempts, last_error, state, created_at, next_attempt_at \
             FROM outbox WHERE last_error IS NOT NULL \
               AND service_id IN (SELECT value FROM json_each(?1)) \
             ORDER BY id DESC LIMIT ?2",
        )
        .bind(list)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| FailingDelivery {
                id: r.id,
                service_id: r.service_id,
                kind: r.kind,
                attempts: r.attempts,
                last_error: r.last_error,
                dead: r.state == 3,
                created_at: r.created_at,
                next_attempt_at: r.next_attempt_at,
            })
            .collect())
    }
}

#[cfg(test)]
mod tests;
