//! Catch-up: Intercom does not replay notifications we missed while down, so on start
//! and every `poll_interval` this searches the conversations updated since a stored
//! cursor, fetches each one's parts and ingests the contact's parts not stored yet.
//!
//! Why `POST /conversations/search` and not `GET /conversations`: in 2.14 the list
//! endpoint takes only `per_page` and `starting_after` — no filter and no documented
//! order — so finding what changed would mean paging through every conversation of the
//! workspace on every poll. Search filters on `updated_at` server-side and pages with
//! the same `starting_after` cursor. Neither returns parts, hence the
//! `GET /conversations/{id}` per changed conversation.
//!
//! The cursor is the largest `updated_at` seen (Intercom's clock, so our clock's skew
//! does not matter), advanced only after a whole pass has been committed. Each search
//! reaches back [`OVERLAP`] before it, because a search index lags behind writes and
//! search results are not ordered: a conversation updated just before another but
//! indexed just after it would otherwise fall behind the cursor. Re-reading the overlap
//! is safe since ingest dedupes on the part id.

use std::collections::HashMap;

use switchboard_core::{ConnectorError, ServiceContext};

use crate::client::{ApiError, Client};

/// Sync-state key of the cursor: unix seconds, Intercom's clock.
pub const CURSOR_KEY: &str = "catchup_updated_at";
/// Sync-state key of the service's first start (unix seconds, our clock): parts older
/// than this, less [`OVERLAP`], are history, never imported.
pub const FLOOR_KEY: &str = "catchup_floor";
/// How far each search reaches back before the cursor, in seconds.
pub const OVERLAP: i64 = 300;
/// 429s tolerated for one request before the pass gives up (each waits out the hint).
const THROTTLE_RETRIES: u32 = 5;

/// Which conversations this process has already read, so a poll re-reading the overlap
/// does not fetch unchanged conversations again. In memory only: after a restart every
/// conversation in the overlap is fetched once more, and dedupe absorbs it.
#[derive(Debug, Default)]
pub struct Seen {
    /// Conversation id → (`updated_at` read, read twice at that `updated_at`).
    conversations: HashMap<String, (i64, bool)>,
}

impl Seen {
    /// Whether a conversation with this `updated_at` must be fetched. Timestamps are
    /// whole seconds, so a part added in the same second as our fetch leaves
    /// `updated_at` unchanged: a conversation is read a second time, one poll (at least
    /// a second) later, before an unchanged `updated_at` counts as read.
    pub fn needs_fetch(&self, id: &str, updated_at: i64) -> bool {
        match self.conversations.get(id) {
            None => true,
            Some(&(read, confirmed)) => updated_at > read || (updated_at == read && !confirmed),
        }
    }

    /// Records a committed read.
    pub fn record(&mut self, id: &str, updated_at: i64) {
        match self.conversations.get_mut(id) {
            Some(entry) if entry.0 == updated_at => entry.1 = true,
            Some(entry) if entry.0 > updated_at => {}
            _ => {
                self.conversations
                    .insert(id.to_owned(), (updated_at, false));
            }
        }
    }

    /// Forgets conversations the search no longer reaches.
    pub fn prune(&mut self, lower: i64) {
        self.conversations.retain(|_, (u, _)| *u > lower);
    }
}

/// What one pass did, for logs and tests.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PassStats {
    /// Conversations the search returned.
    pub listed: usize,
    /// Conversations fetched.
    pub fetched: usize,
    /// Messages newly stored.
    pub stored: usize,
}

/// Reads the cursor and the history floor; a service's first start sets both to now,
/// since a new service is not meant to import the workspace's history.
async fn load_cursor(ctx: &ServiceContext) -> Result<(i64, i64), ConnectorError> {
    let read = |key: &'static str| async move {
        let value = ctx.kv_get(key).await.map_err(transient)?;
        Ok::<_, ConnectorError>(value.and_then(|s| s.trim().parse::<i64>().ok()))
    };
    if let (Some(cursor), Some(floor)) = (read(CURSOR_KEY).await?, read(FLOOR_KEY).await?) {
        return Ok((cursor, floor));
    }
    let now = ctx.clock.now().as_second();
    // The floor first: a cursor without a floor is never left behind.
    ctx.kv_put(FLOOR_KEY, &now.to_string())
        .await
        .map_err(transient)?;
    ctx.kv_put(CURSOR_KEY, &now.to_string())
        .await
        .map_err(transient)?;
    tracing::info!(
        cursor = now,
        "catch-up starts now: earlier conversations are not imported"
    );
    Ok((now, now))
}

fn transient(e: switchboard_core::HostError) -> ConnectorError {
    ConnectorError::Transient(e.to_string())
}

/// One catch-up pass over everything updated since the cursor.
pub async fn pass(
    client: &Client,
    ctx: &ServiceContext,
    seen: &mut Seen,
) -> Result<PassStats, ConnectorError> {
    let (cursor, floor) = load_cursor(ctx).await?;
    let since = cursor - OVERLAP;
    let mut stats = PassStats::default();
    let mut newest = cursor;
    let mut page_cursor: Option<String> = None;
    loop {
        let page = throttled(|| client.search_updated_since(ctx, since, page_cursor.as_deref()))
            .await
            .map_err(ApiError::into_connector)?;
        for conv in &page.conversations {
            stats.listed += 1;
            let id = conv.id.0.as_str();
            let updated_at = conv.updated_at.unwrap_or(cursor);
            newest = newest.max(updated_at);
            if id.is_empty() || !seen.needs_fetch(id, updated_at) {
                continue;
            }
            let full = match throttled(|| client.conversation(ctx, id)).await {
                Ok(c) => c,
                Err(ApiError::Status { status, .. }) if status == http::StatusCode::NOT_FOUND => {
                    // Deleted between the search and the fetch: nothing left to read.
                    seen.record(id, updated_at);
                    continue;
                }
                Err(e) => return Err(e.into_connector()),
            };
            stats.fetched += 1;
            let messages = full.contact_messages_since(floor - OVERLAP);
            if !messages.is_empty() {
                let done = ctx.ingest(messages).await.map_err(transient)?;
                stats.stored += done.iter().filter(|i| i.created).count();
            }
            seen.record(id, updated_at);
        }
        match page.next_cursor() {
            Some(next) if Some(next) != page_cursor.as_deref() => {
                page_cursor = Some(next.to_owned())
            }
            _ => break,
        }
    }
    // Everything up to `newest` is committed: only now may the cursor move past it.
    if newest > cursor {
        ctx.kv_put(CURSOR_KEY, &newest.to_string())
            .await
            .map_err(transient)?;
    }
    seen.prune(newest - OVERLAP);
    if stats.stored > 0 {
        tracing::info!(
            stored = stats.stored,
            fetched = stats.fetched,
            cursor = newest,
            "catch-up stored messages missed by notifications"
        );
    } else {
        tracing::debug!(
            listed = stats.listed,
            fetched = stats.fetched,
            cursor = newest,
            "catch-up pass found nothing new"
        );
    }
    Ok(stats)
}

/// Runs a request again after each 429 (the client has already paused for the hint).
async fn throttled<T, F, Fut>(mut call: F) -> Result<T, ApiError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, ApiError>>,
{
    let mut tries = 0;
    loop {
        match call().await {
            Err(e) if e.throttled().is_some() && tries < THROTTLE_RETRIES => {
                tries += 1;
                tracing::debug!(
                    tries,
                    "Intercom throttled a catch-up request; retrying after the pause"
                );
            }
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seen_reads_unchanged_conversations_twice_then_skips() {
        let mut s = Seen::default();
        assert!(s.needs_fetch("1", 100));
        s.record("1", 100);
        assert!(
            s.needs_fetch("1", 100),
            "same-second parts are read once more"
        );
        s.record("1", 100);
        assert!(!s.needs_fetch("1", 100));
        assert!(!s.needs_fetch("1", 99));
        assert!(s.needs_fetch("1", 101));
        s.record("1", 101);
        assert!(s.needs_fetch("1", 101));
        s.prune(101);
        assert!(s.needs_fetch("1", 101), "pruned entries are forgotten");
    }
}
