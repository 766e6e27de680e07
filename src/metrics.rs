//! Prometheus metrics, exposed at `/metrics` in the OpenMetrics text format by the
//! `prometheus-client` crate. What each metric means is in the README ("Metrics").

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Labels naming a service.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ServiceLabels {
    /// Service id.
    pub service: String,
    /// Service type.
    pub service_type: String,
}

/// Messages by service, direction and outcome.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MessageLabels {
    /// Service id.
    pub service: String,
    /// Service type.
    pub service_type: String,
    /// `inbound` or `outbound`.
    pub direction: String,
    /// inbound: `stored`, `duplicate`, `rejected`; outbound: `sent`, `retried`, `failed`.
    pub outcome: String,
}

/// Deliveries by service, kind and result.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DeliveryLabels {
    /// Service id.
    pub service: String,
    /// `message` or `event`.
    pub kind: String,
    /// `success`, `retry`, `dead`, `deferred`.
    pub result: String,
}

/// Connection state per service.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabels {
    /// Service id.
    pub service: String,
    /// `connecting`, `connected`, `backoff`, `failed`, `stopped`.
    pub state: String,
}

/// HTTP requests by route and status.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    /// The matched route pattern, e.g. `/hooks/{service_id}`.
    pub route: String,
    /// Method.
    pub method: String,
    /// Status code.
    pub status: String,
}

/// Route label for latency.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    /// The matched route pattern.
    pub route: String,
}

/// Kind label for latency.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    /// Service id.
    pub service: String,
    /// `message` or `event`.
    pub kind: String,
}

fn latency_buckets() -> impl Iterator<Item = f64> {
    // 0.5 ms to ~65 s.
    exponential_buckets(0.0005, 2.0, 18)
}

/// Every metric the daemon keeps.
pub struct Metrics {
    registry: Registry,
    /// Messages in and out.
    pub messages: Family<MessageLabels, Counter>,
    /// Time from a provider's request (or API call) to the commit of its messages.
    pub ingest_latency: Family<ServiceLabels, Histogram>,
    /// Time from a delivery being queued to its success.
    pub delivery_latency: Family<KindLabels, Histogram>,
    /// Delivery attempts by result.
    pub deliveries: Family<DeliveryLabels, Counter>,
    /// Live (queued or ready) deliveries per service.
    pub outbox_depth: Family<ServiceLabels, Gauge>,
    /// Dead deliveries kept per service.
    pub outbox_dead: Family<ServiceLabels, Gauge>,
    /// 1 for the service's current connection state, 0 for the others.
    pub connector_state: Family<StateLabels, Gauge>,
    /// Connection restarts per service.
    pub reconnects: Family<ServiceLabels, Counter>,
    /// HTTP requests.
    pub http_requests: Family<HttpLabels, Counter>,
    /// HTTP request duration.
    pub http_latency: Family<RouteLabels, Histogram>,
    /// Jobs per committed write batch.
    pub writer_batch: Histogram,
    /// Write batches that failed to commit.
    pub writer_failures: Counter,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Creates and registers every metric.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("switchboard");
        let messages = Family::<MessageLabels, Counter>::default();
        registry.register(
            "messages",
            "Messages in and out, by outcome",
            messages.clone(),
        );
        let ingest_latency = Family::<ServiceLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(latency_buckets())
        });
        registry.register(
            "ingest_latency_seconds",
            "From receiving an inbound message to its commit",
            ingest_latency.clone(),
        );
        let delivery_latency = Family::<KindLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(latency_buckets())
        });
        registry.register(
            "delivery_latency_seconds",
            "From queueing a delivery to its success",
            delivery_latency.clone(),
        );
        let deliveries = Family::<DeliveryLabels, Counter>::default();
        registry.register(
            "deliveries",
            "Delivery attempts by result",
            deliveries.clone(),
        );
        let outbox_depth = Family::<ServiceLabels, Gauge>::default();
        registry.register(
            "outbox_depth",
            "Deliveries waiting per service",
            outbox_depth.clone(),
        );
        let outbox_dead = Family::<ServiceLabels, Gauge>::default();
        registry.register(
            "outbox_dead",
            "Dead deliveries kept per service",
            outbox_dead.clone(),
        );
        let connector_state = Family::<StateLabels, Gauge>::default();
        registry.register(
            "connector_state",
            "1 for each service's current connection state",
            connector_state.clone(),
        );
        let reconnects = Family::<ServiceLabels, Counter>::default();
        registry.register(
            "connector_restarts",
            "Connection restarts per service",
            reconnects.clone(),
        );
        let http_requests = Family::<HttpLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests by route and status",
            http_requests.clone(),
        );
        let http_latency = Family::<RouteLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(latency_buckets())
        });
        registry.register(
            "http_request_duration_seconds",
            "HTTP request duration by route",
            http_latency.clone(),
        );
        let writer_batch = Histogram::new(exponential_buckets(1.0, 2.0, 10));
        registry.register(
            "writer_batch_jobs",
            "Jobs per committed write batch",
            writer_batch.clone(),
        );
        let writer_failures = Counter::default();
        registry.register(
            "writer_failed_batches",
            "Write batches that could not be committed",
            writer_failures.clone(),
        );
        Metrics {
            registry,
            messages,
            ingest_latency,
            delivery_latency,
            deliveries,
            outbox_depth,
            outbox_dead,
            connector_state,
            reconnects,
            http_requests,
            http_latency,
            writer_batch,
            writer_failures,
        }
    }

    /// The text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }

    /// Counts a committed batch.
    pub fn writer_batch(&self, jobs: usize) {
        self.writer_batch.observe(jobs as f64);
    }

    /// Counts a failed batch.
    pub fn writer_failure(&self) {
        self.writer_failures.inc();
    }

    /// Counts a message.
    pub fn message(&self, service: &str, service_type: &str, direction: &str, outcome: &str) {
        self.messages
            .get_or_create(&MessageLabels {
                service: service.into(),
                service_type: service_type.into(),
                direction: direction.into(),
                outcome: outcome.into(),
            })
            .inc();
    }

    /// Sets a service's connection state gauge.
    pub fn set_state(&self, service: &str, state: &str) {
        for s in ["connecting", "connected", "backoff", "failed", "stopped"] {
            self.connector_state
                .get_or_create(&StateLabels {
                    service: service.into(),
                    state: s.into(),
                })
                .set(i64::from(s == state));
        }
    }
}
