//! Event retention (`storage.event_retention`): events older than the retention are
//! deleted once no outbox row holds them. A row holds its event while the delivery is
//! queued, ready or dead (an admin may retry a dead one, with the same `webhook-id`),
//! so only delivered events, and those no webhook takes, go; `/v1/events` clients could
//! stream them for the whole retention. Messages, conversations and contacts stay.
//!
//! A pass walks the event log by `seq` in batches of [`BATCH`], each its own writer
//! job, so an ingest waits behind at most one small batch. The walk stops at the first
//! event younger than the cut-off: `seq` and `created_at` grow together (a clock that
//! stepped back only delays a few events until the next pass). Each organization's
//! highest pruned `seq` is kept in `event_horizon` (`migrations/0004`), in the same
//! transaction as the delete, for the event stream to tell a client that resumes from
//! before it.

use super::error::StoreError;
use super::writer::WriteCx;

/// Events examined per writer job. A batch of 256 delivered events frees ~50 pages;
/// the commit that carries it stays within a millisecond or two on this project's
/// 2-core VM (see docs/benchmarks.md).
pub const BATCH: i64 = 256;

/// The next events of the walk, oldest first.
pub(super) const WALK: &str =
    "SELECT seq, created_at FROM events WHERE seq > ? ORDER BY seq LIMIT ?";

/// Deletes the walked range's events that no outbox row holds (any state: queued,
/// ready or dead), returning what went for the horizons.
pub(super) const DELETE: &str = "DELETE FROM events WHERE seq > ?1 AND seq <= ?2 AND created_at < ?3 \
     AND NOT EXISTS (SELECT 1 FROM outbox WHERE kind = 'event' AND ref_id = events.seq) \
     RETURNING seq, organization";

const HORIZON: &str = "INSERT INTO event_horizon (organization, pruned_through, updated_at) VALUES (?1, ?2, ?3) \
     ON CONFLICT (organization) DO UPDATE SET \
       pruned_through = CASE WHEN event_horizon.pruned_through > excluded.pruned_through \
         THEN event_horizon.pruned_through ELSE excluded.pruned_through END, \
       updated_at = excluded.updated_at";

/// What one batch did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Batch {
    /// Every prunable event up to this seq is gone: the next batch starts after it.
    pub through: i64,
    /// Events deleted.
    pub pruned: u64,
    /// The walk reached an event younger than the cut-off, or the end of the log.
    pub done: bool,
}

/// Deletes events after `after` created before `cutoff` (unix ms) that no outbox row
/// holds, examining at most `limit` events, and moves each organization's horizon.
pub fn prune_batch(
    cx: &mut WriteCx<'_>,
    after: i64,
    cutoff: i64,
    limit: i64,
) -> Result<Batch, StoreError> {
    let mut through = after;
    let mut young = false;
    let walked: Vec<(i64, i64)> = cx
        .db
        .query(WALK, &[&after, &limit], |r| Ok((r.get(0)?, r.get(1)?)))?;
    for &(seq, created_at) in &walked {
        if created_at >= cutoff {
            young = true;
            break;
        }
        through = seq;
    }
    let done = young || (walked.len() as i64) < limit;
    if through == after {
        return Ok(Batch {
            through,
            pruned: 0,
            done,
        });
    }
    let mut horizons: Vec<(String, i64)> = Vec::new();
    let deleted: Vec<(i64, String)> = cx.db.query(DELETE, &[&after, &through, &cutoff], |r| {
        Ok((r.get(0)?, r.get(1)?))
    })?;
    let pruned = deleted.len() as u64;
    for (seq, organization) in deleted {
        match horizons.iter_mut().find(|(o, _)| *o == organization) {
            Some((_, max)) => *max = (*max).max(seq),
            None => horizons.push((organization, seq)),
        }
    }
    for (organization, seq) in horizons {
        cx.db.execute(HORIZON, &[&organization, &seq, &cx.now])?;
    }
    Ok(Batch {
        through,
        pruned,
        done,
    })
}

#[cfg(test)]
mod tests;
