//! The request budget. Dashly allows 60 requests a minute per API key, polling and
//! replies together, so every request of every service using one key first takes a
//! token from that key's one [`Budget`].
//!
//! It is a token bucket whose tokens come back one window after they were spent (not
//! at a steady rate): a bucket of 60 refilled at one a second lets 60 go at once and
//! then one a second, 119 in the first minute, while Dashly counts requests per minute.
//! Returning each token a window later means no window of that length ever holds more
//! than the bucket's size. The window is a little longer than a minute
//! ([`WINDOW`]) so that network delays cannot bunch 61 requests into Dashly's minute.
//!
//! Replies go first: while one waits, polling takes nothing, and polling never takes
//! the last [`POLL_RESERVE`] tokens, so a reply queued behind a busy poll finds one. A
//! 429 pauses the whole bucket for its `Retry-After`.

use std::collections::{HashMap, VecDeque};
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Requests per window: Dashly's limit.
pub const PER_MINUTE: usize = 60;
/// A minute plus a margin for the requests' travel time.
pub const WINDOW: Duration = Duration::from_secs(61);
/// Tokens polling leaves to replies.
pub const POLL_RESERVE: usize = 10;
/// The pause after a 429 that names no `Retry-After`.
pub const DEFAULT_PAUSE: Duration = Duration::from_secs(10);
/// The longest pause taken on a `Retry-After`: a far-off one is a hint gone wrong.
pub const MAX_PAUSE: Duration = Duration::from_secs(300);

/// Who asks for a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// A reply to a contact: ahead of polling.
    Reply,
    /// Listing conversations, reading parts, marking read.
    Poll,
}

/// The service is stopping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stopped;

/// One key's budget.
#[derive(Debug)]
pub struct Budget {
    capacity: usize,
    window: Duration,
    reserve: usize,
    state: Mutex<State>,
    changed: Notify,
}

#[derive(Debug, Default)]
struct State {
    /// When each token now out was spent, oldest first.
    spent: VecDeque<Instant>,
    /// Replies waiting for a token.
    replies_waiting: usize,
    /// No request before this (a 429's pause).
    paused_until: Option<Instant>,
}

impl State {
    fn prune(&mut self, now: Instant, window: Duration) {
        while self.spent.front().is_some_and(|t| *t + window <= now) {
            self.spent.pop_front();
        }
    }
}

/// Counts a reply as waiting while it exists, so that a reply whose delivery is dropped
/// mid-wait (the attempt timed out) stops holding polling back.
struct Waiting<'a>(&'a Budget);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        let mut st = self.0.state.lock().expect("budget");
        st.replies_waiting -= 1;
        if st.replies_waiting == 0 {
            self.0.changed.notify_waiters();
        }
    }
}

impl Budget {
    /// A budget of `capacity` requests per `window`, keeping `reserve` from polling.
    pub fn new(capacity: usize, window: Duration, reserve: usize) -> Self {
        Budget {
            capacity: capacity.max(1),
            window,
            reserve: reserve.min(capacity.saturating_sub(1)),
            state: Mutex::default(),
            changed: Notify::new(),
        }
    }

    /// The budget shared by every service using `token` against `api_base`: one per key,
    /// alive while a service holds it.
    pub fn for_key(api_base: &str, token: &str) -> Arc<Budget> {
        static KEYS: Mutex<Option<HashMap<u64, Weak<Budget>>>> = Mutex::new(None);
        // A hash, so the map holds no copy of the key.
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (api_base, token).hash(&mut h);
        let id = h.finish();
        let mut keys = KEYS.lock().expect("budget keys");
        let keys = keys.get_or_insert_with(HashMap::new);
        keys.retain(|_, b| b.strong_count() > 0);
        if let Some(b) = keys.get(&id).and_then(Weak::upgrade) {
            return b;
        }
        let b = Arc::new(Budget::new(PER_MINUTE, WINDOW, POLL_RESERVE));
        keys.insert(id, Arc::downgrade(&b));
        b
    }

    /// Tokens that may be spent now (0 while paused).
    pub fn remaining(&self) -> usize {
        let now = Instant::now();
        let mut st = self.state.lock().expect("budget");
        st.prune(now, self.window);
        if st.paused_until.is_some_and(|t| t > now) {
            return 0;
        }
        self.capacity - st.spent.len()
    }

    /// The bucket's size.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// How long a 429's pause still lasts.
    pub fn paused_for(&self) -> Option<Duration> {
        let until = self.state.lock().expect("budget").paused_until?;
        until
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
    }

    /// Dashly said 429: no request of this key before `wait` (capped at [`MAX_PAUSE`])
    /// has passed. Returns the pause taken.
    pub fn pause(&self, wait: Option<Duration>) -> Duration {
        let wait = wait.unwrap_or(DEFAULT_PAUSE).min(MAX_PAUSE);
        let until = Instant::now() + wait;
        let mut st = self.state.lock().expect("budget");
        if st.paused_until.is_none_or(|t| t < until) {
            st.paused_until = Some(until);
        }
        wait
    }

    /// Takes a token for `class`, waiting as long as it takes unless `stop` fires.
    pub async fn acquire(&self, class: Class, stop: &CancellationToken) -> Result<(), Stopped> {
        let _waiting = (class == Class::Reply).then(|| {
            self.state.lock().expect("budget").replies_waiting += 1;
            Waiting(self)
        });
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let wake = match self.try_take(class) {
                Ok(()) => return Ok(()),
                Err(wake) => wake,
            };
            let sleep = async {
                match wake {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = sleep => {}
                _ = &mut changed => {}
                _ = stop.cancelled() => return Err(Stopped),
            }
        }
    }

    /// Takes a token now, or says when to look again (`None`: when told).
    fn try_take(&self, class: Class) -> Result<(), Option<Instant>> {
        let now = Instant::now();
        let mut st = self.state.lock().expect("budget");
        st.prune(now, self.window);
        if let Some(until) = st.paused_until.filter(|t| *t > now) {
            return Err(Some(until));
        }
        let keep = match class {
            Class::Reply => 0,
            Class::Poll if st.replies_waiting > 0 => return Err(None),
            Class::Poll => self.reserve,
        };
        let free = self.capacity - st.spent.len();
        if free > keep {
            st.spent.push_back(now);
            return Ok(());
        }
        // The token that frees the (keep + 1)th slot comes back first among those needed.
        let needed = keep + 1 - free;
        let back = st.spent.get(needed - 1).map(|t| *t + self.window);
        Err(back)
    }
}
