//! Running work only while this instance holds its lease.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::Cluster;

/// Runs `work` each time this instance takes `name`'s lease, until `stop` fires (in the
/// single case: once, at once). The token `work` is given is cancelled when the lease
/// is lost or `stop` fires. After a loss `work` has `grace` to return before it is
/// dropped (a future holding a `JoinSet` aborts its tasks then), `on_lost` runs, and
/// the cluster is told the work stopped so the lease can go to its rightful holder.
/// Returns once `stop` fired and `work` returned.
pub async fn while_held<W, F>(
    cluster: Arc<Cluster>,
    name: String,
    stop: CancellationToken,
    grace: Duration,
    mut work: W,
    mut on_lost: impl FnMut(),
) where
    W: FnMut(CancellationToken) -> F,
    F: Future<Output = ()>,
{
    let mut held = cluster.held(&name);
    loop {
        // Wait for the lease.
        while !*held.borrow_and_update() {
            tokio::select! {
                _ = stop.cancelled() => return,
                changed = held.changed() => if changed.is_err() { return },
            }
        }
        if stop.is_cancelled() {
            return;
        }
        if !cluster.is_single() {
            tracing::info!(lease = %name, "lease taken: starting its work");
        }
        let period = stop.child_token();
        let mut running = Box::pin(work(period.clone()));
        let lost = loop {
            tokio::select! {
                _ = &mut running => break false,
                changed = held.changed() => match changed {
                    Ok(()) if !*held.borrow_and_update() => break true,
                    Ok(()) => {}
                    // The cluster is gone: nothing can be taken from us any more.
                    Err(_) => {
                        (&mut running).await;
                        break false;
                    }
                },
            }
        };
        period.cancel();
        if !lost {
            // `work` ends when `stop` fires (one that ends by itself is not restarted).
            cluster.work_stopped(&name);
            stop.cancelled().await;
            return;
        }
        if tokio::time::timeout(grace, &mut running).await.is_err() {
            tracing::warn!(lease = %name, "work did not stop within the shutdown deadline after its lease was lost; aborted");
        }
        // Before the lease can go: what `work` still holds (tasks) is dropped here.
        drop(running);
        on_lost();
        cluster.work_stopped(&name);
        tracing::info!(lease = %name, "lease lost: its work stopped");
    }
}
