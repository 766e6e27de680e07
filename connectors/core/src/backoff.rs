//! Capped exponential backoff with full jitter, for delivery retries and reconnects.

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};

/// A retry schedule: the ceiling doubles from `initial` up to `max`; each actual delay is
/// drawn uniformly from zero to the ceiling ("full jitter"), so many clients that failed
/// together do not retry together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Ceiling for the first retry.
    pub initial: Duration,
    /// Largest ceiling.
    pub max: Duration,
}

impl Backoff {
    /// The ceiling before retry number `attempt` (1-based).
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let n = attempt.clamp(1, 64) as usize;
        ExponentialBuilder::default()
            .with_min_delay(self.initial)
            .with_max_delay(self.max)
            .with_factor(2.0)
            .without_max_times()
            .build()
            .nth(n - 1)
            .unwrap_or(self.max)
    }

    /// A delay before retry number `attempt`, with full jitter.
    pub fn delay(&self, attempt: u32) -> Duration {
        let ceiling = self.ceiling(attempt).as_millis() as u64;
        Duration::from_millis(fastrand::u64(0..=ceiling))
    }
}

/// Parses a `Retry-After` header: delay-seconds or an HTTP date.
pub fn retry_after(headers: &http::HeaderMap) -> Option<Duration> {
    let value = headers
        .get(http::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = jiff::fmt::rfc2822::parse(value).ok()?.timestamp();
    let secs = at.as_second() - jiff::Timestamp::now().as_second();
    Some(Duration::from_secs(secs.max(0) as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ceiling_doubles_then_caps() {
        let b = Backoff {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(60),
        };
        assert_eq!(b.ceiling(1), Duration::from_secs(1));
        assert_eq!(b.ceiling(2), Duration::from_secs(2));
        assert_eq!(b.ceiling(4), Duration::from_secs(8));
        assert_eq!(b.ceiling(7), Duration::from_secs(60));
        assert_eq!(b.ceiling(1000), Duration::from_secs(60));
        for attempt in 1..20 {
            assert!(b.delay(attempt) <= b.ceiling(attempt));
        }
    }

    #[test]
    fn parses_retry_after() {
        let mut h = http::HeaderMap::new();
        h.insert("retry-after", "7".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(7)));
        let later = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(120);
        let date = jiff::fmt::rfc2822::to_string(&later.to_zoned(jiff::tz::TimeZone::UTC)).unwrap();
        h.insert("retry-after", date.parse().unwrap());
        let d = retry_after(&h).unwrap();
        assert!(
            d > Duration::from_secs(100) && d <= Duration::from_secs(120),
            "{d:?}"
        );
        h.insert("retry-after", "soon".parse().unwrap());
        assert_eq!(retry_after(&h), None);
    }
}
