//! The supervisor on a cluster: two daemons' supervisors (each with its own SQLite
//! store, sharing one real PostgreSQL cluster database) run each service's connection
//! on exactly one of them, and the other takes it over when that one leaves.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use switchboard_core::testkit::postgres::PgServer;
use switchboard_core::{ConnState, SystemClock};
use tokio_util::sync::CancellationToken;

use super::Supervisor;
use crate::app::{App, TokenTable};
use crate::cluster::Cluster;
use crate::config::{self, Synchronous};
use crate::metrics::Metrics;
use crate::store::Store;

const TTL: Duration = Duration::from_secs(3);

/// Four webhook services (their default connection is "connected" at once; they
/// subscribe to nothing that happens here, so nothing is delivered).
fn config(instance: &str) -> config::Config {
    let mut text = format!("[server]\ninstance_id = \"{instance}\"\nlease_ttl = \"3s\"\n");
    for n in 0..4 {
        text.push_str(&format!(
            "[services.hook_{n}]\ntype = \"webhook\"\n[services.hook_{n}.params]\n\
             url = \"http://127.0.0.1:9/x\"\n\
             secret = \"whsec_dGVzdC13ZWJob29rLXNlY3JldC0xMjM0NTY=\"\n\
             events = [\"contact.created\"]\n"
        ));
    }
    config::load_str(&text, &[], None).expect("valid config")
}

/// A daemon's state without its HTTP server, on `cluster`.
async fn app(dir: &std::path::Path, cluster: Arc<Cluster>) -> Arc<App> {
    let config = Arc::new(config(cluster.instance_id()));
    let _ = rustls::crypto::ring::default_provider().install_default();
    let metrics = Arc::new(Metrics::new());
    let store = Store::open(
        &dir.join(format!("{}.db", cluster.instance_id())),
        Synchronous::Normal,
        metrics.clone(),
    )
    .await
    .expect("store");
    Arc::new(App {
        config: RwLock::new(config.clone()),
        store,
        metrics,
        services: Default::default(),
        tokens: RwLock::new(Arc::new(TokenTable::from_config(&config))),
        http: reqwest::Client::new(),
        clock: Arc::new(SystemClock::default()),
        shutdown: CancellationToken::new(),
        bound: "127.0.0.1:9".parse().unwrap(),
        statuses: Default::default(),
        control: tokio::sync::mpsc::unbounded_channel().0,
        ephemeral: tokio::sync::broadcast::channel(16).0,
        hub_sync: Default::default(),
        sessions: Default::default(),
        cluster,
    })
}

/// Each service's local connection state on each app: (instance, connected).
fn states(apps: &[&Arc<App>]) -> BTreeMap<String, Vec<(String, bool)>> {
    let mut out: BTreeMap<String, Vec<(String, bool)>> = BTreeMap::new();
    for app in apps {
        for svc in app.running() {
            let connected = matches!(svc.host.state().0, ConnState::Connected);
            out.entry(svc.config.id.clone())
                .or_default()
                .push((app.cluster.instance_id().to_owned(), connected));
        }
    }
    out
}

/// Whether every service is connected on exactly one app, the one holding its lease.
fn each_once(apps: &[&Arc<App>]) -> bool {
    let s = states(apps);
    s.len() == 4
        && s.values()
            .all(|v| v.iter().filter(|(_, c)| *c).count() == 1)
        && apps.iter().all(|a| {
            a.running().iter().all(|svc| {
                a.cluster.holds(&svc.config.id)
                    == matches!(svc.host.state().0, ConnState::Connected)
            })
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_service_runs_on_the_instance_holding_its_lease() {
    let Some(server) = PgServer::shared_or_skip() else {
        return;
    };
    let url = server.database().expect("createdb");
    let dir = tempfile::tempdir().unwrap();
    let join = |id: &str| Cluster::join(&url, id.to_owned(), TTL, Arc::new(Metrics::new()));
    let a = app(dir.path(), join("a").await.unwrap()).await;
    let b = app(dir.path(), join("b").await.unwrap()).await;
    let (sa, sb) = (Supervisor::new(a.clone()), Supervisor::new(b.clone()));
    sa.apply(a.config()).await;
    sb.apply(b.config()).await;
    // Both serve every service's hooks; each connection runs once.
    assert_eq!(a.running().len(), 4);
    assert_eq!(b.running().len(), 4);
    let deadline = Instant::now() + TTL * 2;
    while !each_once(&[&a, &b]) {
        assert!(
            Instant::now() < deadline,
            "not settled: {:?}",
            states(&[&a, &b])
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let holders = a.cluster.holders().await;
    assert!(holders.contains_key(crate::cluster::HOUSEKEEPING));

    // b stops (as on SIGTERM): a runs everything within a renew period and a bit.
    sb.stop_all(Duration::from_secs(2)).await;
    b.cluster.leave().await;
    let deadline = Instant::now() + TTL / 3 + Duration::from_secs(1);
    loop {
        let s = states(&[&a]);
        if s.values().all(|v| v.iter().all(|(_, c)| *c)) {
            break;
        }
        assert!(Instant::now() < deadline, "a did not take over: {s:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    sa.stop_all(Duration::from_secs(2)).await;
    a.cluster.leave().await;
}
