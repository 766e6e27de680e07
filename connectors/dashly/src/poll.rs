//! Intake: Dashly's Web API has no webhooks, so live messages and catch-up after
//! downtime are one loop. Each pass lists the conversations changed since a stored
//! cursor (`GET /apps/{id}/conversations?after=`), and reads the parts only of those
//! whose `last_update` moved since this process last read them, from the last part it
//! read; the visitor's new parts are ingested (deduplicated on the part id by the host).
//!
//! - The cursor is `meta.next_after` kept as text (the seed: an integer in some methods,
//!   a float in others); on the last page, which has none, the last conversation's
//!   `last_update` (what the list orders and pages by). It is stored only once the pass
//!   has committed everything before it, so a crash mid-pass re-reads, never skips.
//! - A service's first start stores a floor (now): conversations that last changed
//!   before it are history and cost no parts request; parts written before it, less
//!   [`SLACK`] for the difference between Dashly's clock and ours, are not imported.
//! - Every request takes a token of the key's budget at poll priority; the loop in
//!   `connector` slows down when the budget runs low ([`pace`]).

use std::collections::HashMap;
use std::time::Duration;

use switchboard_core::{ConnectorError, HostError, ServiceContext};

use crate::client::{ApiError, Client};
use crate::payload::{self, Conversation};

/// Sync-state key of the conversation list's cursor.
pub const CURSOR_KEY: &str = "conversations_after";
/// Sync-state key of the first start (unix seconds, our clock).
pub const FLOOR_KEY: &str = "history_floor";
/// Allowance, in seconds, for Dashly's clock running behind ours.
pub const SLACK: f64 = 300.0;
/// 429s tolerated for one request before the pass gives up (each waits its pause).
const THROTTLE_RETRIES: u32 = 5;
/// Parts pages read for one conversation in one pass at most; the rest next pass.
const MAX_PART_PAGES: usize = 20;

/// What this process has read of each conversation: its `last_update` and the cursor
/// after its last part. In memory only: after a restart a conversation past the stored
/// cursor is read from its first part once more, and the host's dedupe absorbs it.
#[derive(Debug, Default)]
pub struct Seen {
    conversations: HashMap<String, Read>,
}

#[derive(Debug, Clone, Default)]
struct Read {
    updated: Option<f64>,
    parts_after: Option<String>,
}

impl Seen {
    /// Whether the conversation changed since it was read.
    pub fn moved(&self, conv: &Conversation) -> bool {
        match (self.conversations.get(&conv.id.0), conv.updated()) {
            (Some(read), Some(now)) => read.updated.is_none_or(|then| now > then),
            (Some(_), None) => false,
            (None, _) => true,
        }
    }

    fn parts_after(&self, id: &str) -> Option<String> {
        self.conversations.get(id)?.parts_after.clone()
    }

    fn record(&mut self, id: &str, updated: Option<f64>, parts_after: Option<String>) {
        let e = self.conversations.entry(id.to_owned()).or_default();
        e.updated = updated.or(e.updated);
        if parts_after.is_some() {
            e.parts_after = parts_after;
        }
    }

    /// Conversations remembered.
    pub fn len(&self) -> usize {
        self.conversations.len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.conversations.is_empty()
    }
}

/// What one pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PassStats {
    /// Conversations listed.
    pub listed: usize,
    /// Conversations whose parts were read.
    pub read: usize,
    /// Messages newly stored.
    pub stored: usize,
    /// Our own replies read back and skipped.
    pub echoes: usize,
}

/// One pass. `markread_as` marks conversations read after storing new parts.
pub async fn pass(
    client: &Client,
    ctx: &ServiceContext,
    seen: &mut Seen,
    admin_id: &str,
    markread: bool,
) -> Result<PassStats, ConnectorError> {
    let (cursor, floor) = load(ctx).await?;
    let mut stats = PassStats::default();
    let mut after = cursor.clone();
    loop {
        let page = throttled(|| client.conversations(ctx, after.as_deref()))
            .await
            .map_err(ApiError::into_connector)?;
        let last = page.items.last().and_then(Conversation::updated_text);
        for conv in &page.items {
            stats.listed += 1;
            let history = conv.updated().is_some_and(|u| u < floor - SLACK);
            if conv.id.0.trim().is_empty() || history || !seen.moved(conv) {
                seen.record(&conv.id.0, conv.updated(), None);
                continue;
            }
            read_conversation(
                client,
                ctx,
                seen,
                conv,
                admin_id,
                floor - SLACK,
                markread,
                &mut stats,
            )
            .await?;
        }
        let next = page.next_after.clone().or(last);
        let progressed = next.is_some() && next != after;
        if progressed {
            after = next;
        }
        if page.next_after.is_none() || page.items.is_empty() || !progressed {
            break;
        }
    }
    // Everything listed up to `after` is committed: only now may the cursor move.
    if after != cursor
        && let Some(a) = &after
    {
        ctx.kv_put(CURSOR_KEY, a).await.map_err(transient)?;
    }
    if stats.stored > 0 {
        tracing::info!(
            stored = stats.stored,
            read = stats.read,
            listed = stats.listed,
            "stored the visitors' new parts"
        );
    } else {
        tracing::debug!(
            listed = stats.listed,
            read = stats.read,
            echoes = stats.echoes,
            "poll found nothing new"
        );
    }
    Ok(stats)
}

/// Reads one conversation's parts since the last one read, and stores the visitor's.
#[allow(clippy::too_many_arguments)]
async fn read_conversation(
    client: &Client,
    ctx: &ServiceContext,
    seen: &mut Seen,
    conv: &Conversation,
    admin_id: &str,
    floor: f64,
    markread: bool,
    stats: &mut PassStats,
) -> Result<(), ConnectorError> {
    let id = conv.id.0.as_str();
    let mut after = seen.parts_after(id);
    let mut stored = 0;
    for _ in 0..MAX_PART_PAGES {
        let page = match throttled(|| client.parts(ctx, id, after.as_deref())).await {
            Ok(p) => p,
            Err(ApiError::Api { code, .. }) if code.as_deref() == Some("LookupError") => {
                // Gone between the list and the read: nothing left to read.
                seen.record(id, conv.updated(), None);
                return Ok(());
            }
            Err(e) => return Err(e.into_connector()),
        };
        let sorted = payload::visitor_messages(conv, &page.items, admin_id, floor);
        stats.echoes += sorted.echoes;
        if !sorted.messages.is_empty() {
            let done = ctx.ingest(sorted.messages).await.map_err(transient)?;
            stored += done.iter().filter(|i| i.created).count();
        }
        let next = page
            .next_after
            .clone()
            .or_else(|| page.items.last().map(|p| p.id.0.clone()));
        let progressed = next.is_some() && next != after;
        if progressed {
            after = next;
        }
        if page.next_after.is_none() || page.items.is_empty() || !progressed {
            break;
        }
    }
    stats.read += 1;
    stats.stored += stored;
    seen.record(id, conv.updated(), after);
    if markread && stored > 0 {
        match throttled(|| client.markread(ctx, id)).await {
            Ok(()) => {}
            Err(e) if e.refuses_key() => return Err(e.into_connector()),
            Err(e) => tracing::warn!(error = %e, "could not mark a conversation read"),
        }
    }
    Ok(())
}

/// The cursor and the floor; the first start stores the floor (now) and no cursor.
async fn load(ctx: &ServiceContext) -> Result<(Option<String>, f64), ConnectorError> {
    let floor = ctx.kv_get(FLOOR_KEY).await.map_err(transient)?;
    let floor = match floor.and_then(|f| f.trim().parse::<f64>().ok()) {
        Some(f) => f,
        None => {
            let now = ctx.clock.now().as_second();
            ctx.kv_put(FLOOR_KEY, &now.to_string())
                .await
                .map_err(transient)?;
            tracing::info!(
                floor = now,
                "first start: conversations before now are not imported"
            );
            now as f64
        }
    };
    let cursor = ctx
        .kv_get(CURSOR_KEY)
        .await
        .map_err(transient)?
        .filter(|c| !c.trim().is_empty());
    Ok((cursor, floor))
}

fn transient(e: HostError) -> ConnectorError {
    ConnectorError::Transient(e.to_string())
}

/// Runs a request again after each 429 (whose pause the budget makes the retry wait).
async fn throttled<T, F, Fut>(mut call: F) -> Result<T, ApiError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, ApiError>>,
{
    let mut tries = 0;
    loop {
        match call().await {
            Err(e) if e.throttled() && tries < THROTTLE_RETRIES => tries += 1,
            other => return other,
        }
    }
}

/// The wait before the next pass: `interval` stretched by how much of the budget is
/// spent (`capacity / remaining`: ×2 at half, ×12 at a twelfth), never more than the
/// budget's window. An idle service at the default 5 s thus settles near 10 lists a
/// minute, leaving the rest of the key's 60 to replies and changed conversations.
pub fn pace(interval: Duration, remaining: usize, capacity: usize, window: Duration) -> Duration {
    if remaining >= capacity {
        return interval;
    }
    let stretched = interval.mul_f64(capacity as f64 / remaining.max(1) as f64);
    stretched.min(window.max(interval))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conv(id: &str, updated: f64) -> Conversation {
        serde_json::from_value(serde_json::json!({"id": id, "last_update": updated})).unwrap()
    }

    #[test]
    fn only_moved_conversations_are_read_again() {
        let mut s = Seen::default();
        assert!(s.moved(&conv("1", 10.0)));
        s.record("1", Some(10.0), Some("p9".into()));
        assert!(!s.moved(&conv("1", 10.0)));
        assert!(!s.moved(&conv("1", 9.5)));
        assert!(s.moved(&conv("1", 10.5)));
        s.record("1", Some(10.5), None);
        assert_eq!(
            s.parts_after("1").as_deref(),
            Some("p9"),
            "a part cursor is kept"
        );
    }

    #[test]
    fn pace_slows_when_the_budget_is_low() {
        let i = Duration::from_secs(2);
        let w = Duration::from_secs(61);
        assert_eq!(pace(i, 60, 60, w), i);
        assert_eq!(pace(i, 30, 60, w), i * 2);
        assert_eq!(pace(i, 15, 60, w), i * 4);
        assert_eq!(pace(i, 5, 60, w), i * 12);
        assert_eq!(pace(i, 0, 60, w), w, "at most a window");
        assert_eq!(pace(w * 2, 0, 60, w), w * 2, "never below the interval");
    }
}
