//! Housekeeping off the hot path: event retention (`storage.event_retention`) and the
//! expiry of early receipts, in one background task of the daemon.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::app::App;

/// Between two retention batches: ingest jobs that queued behind one commit before the
/// next batch is submitted.
const PAUSE: Duration = Duration::from_millis(10);

/// How long after a retention pass the next one starts: a quarter of the retention,
/// between 250 ms (short retentions in tests) and a minute (a week's retention prunes a
/// minute's worth of events each time).
pub fn retention_tick(retention: Duration) -> Duration {
    (retention / 4).clamp(Duration::from_millis(250), Duration::from_secs(60))
}

/// How often the whole event log is walked again, for old events whose deliveries
/// finished (a retry succeeded, a dead one was retried) after a pass first kept them;
/// early receipts expire on the same beat. Four retentions, at most an hour.
pub fn sweep_every(retention: Duration) -> Duration {
    retention
        .saturating_mul(4)
        .clamp(Duration::from_secs(1), Duration::from_secs(3600))
}

/// Runs until `stop`. The retention in force is read from the current config at every
/// pass, so a reload changes it. Between full walks, a pass starts after the last seq
/// the previous one cleared.
pub async fn run(app: Arc<App>, stop: CancellationToken) {
    let mut through = 0;
    let mut last_sweep = Instant::now();
    loop {
        let retention = app.config().storage.event_retention.0;
        let from = if last_sweep.elapsed() >= sweep_every(retention) {
            last_sweep = Instant::now();
            if let Err(e) = app.store.prune().await {
                tracing::warn!(error = %e, "expiring early receipts failed");
            }
            0
        } else {
            through
        };
        let pass = tokio::select! {
            _ = stop.cancelled() => return,
            pass = app.store.prune_events(retention, from, PAUSE) => pass,
        };
        match pass {
            Ok((t, pruned)) => {
                through = t;
                if pruned > 0 {
                    tracing::debug!(pruned, through, "event retention pass");
                }
            }
            Err(e) => tracing::warn!(error = %e, "event retention pass failed"),
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(retention_tick(retention)) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passes_follow_the_retention_within_bounds() {
        assert_eq!(
            retention_tick(Duration::from_secs(1)),
            Duration::from_millis(250)
        );
        assert_eq!(
            retention_tick(Duration::from_secs(20)),
            Duration::from_secs(5)
        );
        let week = Duration::from_secs(7 * 24 * 3600);
        assert_eq!(retention_tick(week), Duration::from_secs(60));
        assert_eq!(sweep_every(Duration::from_secs(1)), Duration::from_secs(4));
        assert_eq!(sweep_every(week), Duration::from_secs(3600));
    }
}
