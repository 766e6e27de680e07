//! What the status page shows, gathered in one pass: the organization's services with
//! their live state, outbox depth, dead count and last hour's traffic; the failing
//! deliveries; the hub's sync state.

use jiff::Timestamp;

use crate::app::{App, HubSync};
use crate::http::error::ApiError;
use crate::http::schema::ServiceView;
use crate::store::stats::FailingDelivery;

/// Minutes per traffic bucket.
pub const BUCKET_MINUTES: u32 = 5;
/// Buckets per sparkline: the last hour.
pub const BUCKETS: u32 = 12;
/// Failing deliveries listed.
const FAILURES: u32 = 20;

/// One service's row.
#[derive(Debug, Clone)]
pub struct ServiceRow {
    /// Identity, status and live state.
    pub view: ServiceView,
    /// Deliveries queued or being retried.
    pub depth: i64,
    /// Deliveries given up on.
    pub dead: i64,
    /// Inbound messages per bucket, oldest first.
    pub inbound: Vec<u32>,
    /// Outbound messages per bucket, oldest first.
    pub outbound: Vec<u32>,
}

/// The whole page's data.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// The viewer's organization.
    pub organization: String,
    /// When it was gathered.
    pub at: Timestamp,
    /// Services in id order.
    pub services: Vec<ServiceRow>,
    /// Deliveries that failed at least once, newest first.
    pub failures: Vec<FailingDelivery>,
    /// The hub's sync state; `None` when no hub is configured.
    pub hub: Option<(String, HubSync)>,
}

impl Snapshot {
    /// Gathers the page for `organization`.
    pub async fn gather(app: &App, organization: &str) -> Result<Snapshot, ApiError> {
        let views = crate::http::v1::service_views(app, organization).await?;
        let ids: Vec<String> = views.iter().map(|v| v.id.clone()).collect();
        let depth = app.store.read.outbox_depth().await?;
        let at = Timestamp::now();
        let bucket_ms = i64::from(BUCKET_MINUTES) * 60_000;
        let traffic = app
            .store
            .read
            .traffic(at.as_millisecond(), bucket_ms, BUCKETS)
            .await?;
        let failures = app.store.read.failing_deliveries(&ids, FAILURES).await?;
        let series = |id: &str, direction: &str| {
            traffic
                .iter()
                .find(|t| t.service_id == id && t.direction == direction)
                .map(|t| t.counts.clone())
                .unwrap_or_else(|| vec![0; BUCKETS as usize])
        };
        let services = views
            .into_iter()
            .map(|view| {
                let (live, dead) = depth
                    .iter()
                    .find(|(s, _, _)| *s == view.id)
                    .map(|(_, l, d)| (*l, *d))
                    .unwrap_or((0, 0));
                ServiceRow {
                    inbound: series(&view.id, "inbound"),
                    outbound: series(&view.id, "outbound"),
                    depth: live,
                    dead,
                    view,
                }
            })
            .collect();
        let hub = app.config().hub.as_ref().map(|h| {
            let sync = app.hub_sync.read().expect("hub sync lock").clone();
            (h.url.clone(), sync)
        });
        Ok(Snapshot {
            organization: organization.to_owned(),
            at,
            services,
            failures,
            hub,
        })
    }
}
