//! Prometheus metrics at `/metrics`, in the classic text exposition format (version
//! 0.0.4) written by the `prometheus` crate, which every scraper and `promtool` reads.
//! What each metric means is in the README ("Metrics").

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder, exponential_buckets,
};

/// The exposition's content type.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Every metric the daemon keeps.
pub struct Metrics {
    registry: Registry,
    messages: IntCounterVec,
    ingest_latency: HistogramVec,
    delivery_latency: HistogramVec,
    deliveries: IntCounterVec,
    outbox_depth: IntGaugeVec,
    outbox_dead: IntGaugeVec,
    connector_state: IntGaugeVec,
    restarts: IntCounterVec,
    provider_budget: IntGaugeVec,
    http_requests: IntCounterVec,
    http_latency: HistogramVec,
    http_connections: IntGauge,
    http_refused: IntCounterVec,
    writer_batch: Histogram,
    writer_failures: IntCounter,
    events_pruned: IntCounter,
    leases_held: IntGauge,
    instance: IntGaugeVec,
    /// Held while the outbox gauges are replaced and while encoding, so a scrape never
    /// sees them half-replaced.
    outbox_swap: std::sync::Mutex<()>,
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

/// 0.5 ms to ~65 s.
fn latency_buckets() -> Vec<f64> {
    exponential_buckets(0.0005, 2.0, 18).expect("valid buckets")
}

fn counter(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
    r.register(Box::new(c.clone())).expect("registered once");
    c
}

fn gauge(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    let g = IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric");
    r.register(Box::new(g.clone())).expect("registered once");
    g
}

fn histogram(r: &Registry, name: &str, help: &str, labels: &[&str]) -> HistogramVec {
    let h = HistogramVec::new(
        HistogramOpts::new(name, help).buckets(latency_buckets()),
        labels,
    )
    .expect("valid metric");
    r.register(Box::new(h.clone())).expect("registered once");
    h
}

impl Metrics {
    /// Creates and registers every metric.
    pub fn new() -> Self {
        let r = Registry::new();
        let writer_batch = Histogram::with_opts(
            HistogramOpts::new(
                "switchboard_writer_batch_jobs",
                "Jobs per committed write batch",
            )
            .buckets(exponential_buckets(1.0, 2.0, 10).expect("valid buckets")),
        )
        .expect("valid metric");
        r.register(Box::new(writer_batch.clone()))
            .expect("registered once");
        let writer_failures = IntCounter::new(
            "switchboard_writer_failed_batches_total",
            "Write batches that could not be committed (nothing in them was acknowledged)",
        )
        .expect("valid metric");
        r.register(Box::new(writer_failures.clone()))
            .expect("registered once");
        let http_connections = IntGauge::new(
            "switchboard_http_connections",
            "Client connections open now",
        )
        .expect("valid metric");
        r.register(Box::new(http_connections.clone()))
            .expect("registered once");
        let events_pruned = IntCounter::new(
            "switchboard_events_pruned_total",
            "Events deleted by event retention (storage.event_retention)",
        )
        .expect("valid metric");
        r.register(Box::new(events_pruned.clone()))
            .expect("registered once");
        let leases_held = IntGauge::new(
            "switchboard_leases_held",
            "Leases this instance holds now (services, @hub, @housekeeping; with SQLite every runnable one)",
        )
        .expect("valid metric");
        r.register(Box::new(leases_held.clone()))
            .expect("registered once");
        #[cfg(target_os = "linux")]
        r.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))
        .expect("registered once");
        Metrics {
            messages: counter(
                &r,
                "switchboard_messages_total",
                "Messages in and out by service and outcome (inbound: stored, duplicate, rejected; outbound: sent, retried, failed)",
                &["service", "service_type", "direction", "outcome"],
            ),
            ingest_latency: histogram(
                &r,
                "switchboard_ingest_latency_seconds",
                "From receiving inbound messages to their commit",
                &["service", "service_type"],
            ),
            delivery_latency: histogram(
                &r,
                "switchboard_delivery_latency_seconds",
                "From queueing a delivery to its success",
                &["service", "kind"],
            ),
            deliveries: counter(
                &r,
                "switchboard_deliveries_total",
                "Delivery attempts by service, kind (message, event) and result (success, retry, dead, deferred, throttled)",
                &["service", "kind", "result"],
            ),
            outbox_depth: gauge(
                &r,
                "switchboard_outbox_depth",
                "Deliveries waiting per service",
                &["service", "service_type"],
            ),
            outbox_dead: gauge(
                &r,
                "switchboard_outbox_dead",
                "Dead deliveries kept per service",
                &["service", "service_type"],
            ),
            connector_state: gauge(
                &r,
                "switchboard_connector_state",
                "1 for each service's current connection state, 0 for the others",
                &["service", "state"],
            ),
            restarts: counter(
                &r,
                "switchboard_connector_restarts_total",
                "Connection restarts per service",
                &["service", "service_type"],
            ),
            provider_budget: gauge(
                &r,
                "switchboard_provider_budget_remaining",
                "Requests a rate-limited provider's budget still allows now, per service (as the connector last saw it)",
                &["service"],
            ),
            http_requests: counter(
                &r,
                "switchboard_http_requests_total",
                "HTTP requests by route, method and status",
                &["route", "method", "status"],
            ),
            http_latency: histogram(
                &r,
                "switchboard_http_request_duration_seconds",
                "HTTP request duration by route",
                &["route"],
            ),
            http_connections,
            http_refused: counter(
                &r,
                "switchboard_http_connections_refused_total",
                "Client connections refused by the limit that refused them (max_connections, max_connections_per_peer)",
                &["limit"],
            ),
            writer_batch,
            writer_failures,
            events_pruned,
            leases_held,
            instance: gauge(
                &r,
                "switchboard_instance_info",
                "1, labelled with this instance's id (server.instance_id)",
                &["instance"],
            ),
            outbox_swap: std::sync::Mutex::new(()),
            registry: r,
        }
    }

    /// The text exposition.
    pub fn encode(&self) -> String {
        let mut out = Vec::new();
        let _swap = self.outbox_swap.lock().unwrap_or_else(|e| e.into_inner());
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut out)
            .expect("writing to memory cannot fail");
        String::from_utf8(out).expect("the text format is UTF-8")
    }

    /// Counts a message.
    pub fn message(&self, service: &str, service_type: &str, direction: &str, outcome: &str) {
        self.messages
            .with_label_values(&[service, service_type, direction, outcome])
            .inc();
    }

    /// Records an ingest's latency.
    pub fn ingest_latency(&self, service: &str, service_type: &str, seconds: f64) {
        self.ingest_latency
            .with_label_values(&[service, service_type])
            .observe(seconds);
    }

    /// Records a successful delivery's latency.
    pub fn delivery_latency(&self, service: &str, kind: &str, seconds: f64) {
        self.delivery_latency
            .with_label_values(&[service, kind])
            .observe(seconds);
    }

    /// Counts a delivery attempt.
    pub fn delivery(&self, service: &str, kind: &str, result: &str) {
        self.deliveries
            .with_label_values(&[service, kind, result])
            .inc();
    }

    /// Replaces the outbox gauges with `rows` (service, type, live, dead): a service that
    /// is not listed any more has no series rather than its last value.
    pub fn set_outbox(&self, rows: &[(String, String, i64, i64)]) {
        let _swap = self.outbox_swap.lock().unwrap_or_else(|e| e.into_inner());
        self.outbox_depth.reset();
        self.outbox_dead.reset();
        for (service, service_type, live, dead) in rows {
            let labels = [service.as_str(), service_type.as_str()];
            self.outbox_depth.with_label_values(&labels).set(*live);
            self.outbox_dead.with_label_values(&labels).set(*dead);
        }
    }

    /// Sets a service's connection state gauge.
    pub fn set_state(&self, service: &str, state: &str) {
        for s in ["connecting", "connected", "backoff", "failed", "stopped"] {
            self.connector_state
                .with_label_values(&[service, s])
                .set(i64::from(s == state));
        }
    }

    /// Sets one of a service's provider gauges.
    pub fn set_gauge(&self, service: &str, gauge: switchboard_core::Gauge, value: i64) {
        // `Gauge` is non-exhaustive: a gauge of a newer core is not shown.
        if gauge == switchboard_core::Gauge::ProviderBudgetRemaining {
            self.provider_budget
                .with_label_values(&[service])
                .set(value)
        }
    }

    /// Counts a connection restart.
    pub fn restart(&self, service: &str, service_type: &str) {
        self.restarts
            .with_label_values(&[service, service_type])
            .inc();
    }

    /// Counts an HTTP request.
    pub fn http(&self, route: &str, method: &str, status: u16, seconds: f64) {
        self.http_requests
            .with_label_values(&[route, method, &status.to_string()])
            .inc();
        self.http_latency
            .with_label_values(&[route])
            .observe(seconds);
    }

    /// Sets the number of open client connections.
    pub fn set_http_connections(&self, open: usize) {
        self.http_connections
            .set(i64::try_from(open).unwrap_or(i64::MAX));
    }

    /// Counts a connection refused by `limit`.
    pub fn http_connection_refused(&self, limit: &str) {
        self.http_refused.with_label_values(&[limit]).inc();
    }

    /// Counts a committed batch.
    pub fn writer_batch(&self, jobs: usize) {
        self.writer_batch.observe(jobs as f64);
    }

    /// Counts a failed batch.
    pub fn writer_failure(&self) {
        self.writer_failures.inc();
    }

    /// Counts events deleted by retention, once committed.
    pub fn events_pruned(&self, n: u64) {
        self.events_pruned.inc_by(n);
    }

    /// Sets the number of leases held.
    pub fn set_leases_held(&self, n: usize) {
        self.leases_held.set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    /// Labels the info gauge with this instance's id.
    pub fn set_instance(&self, id: &str) {
        self.instance.reset();
        self.instance.with_label_values(&[id]).set(1);
    }
}
