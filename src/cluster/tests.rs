//! Several `Cluster`s on one real PostgreSQL database, with a 3 s TTL (renewed every
//! second): a name is never held by two at once, a joining instance takes its share, a
//! leaving one's names move within a renew period, a dead one's only after its leases
//! expired.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use switchboard_core::testkit::postgres::PgServer;

use super::rendezvous;
use super::{Cluster, HOUSEKEEPING, HUB};
use crate::metrics::Metrics;

const TTL: Duration = Duration::from_secs(3);
const RENEW: Duration = Duration::from_secs(1);
/// Room for the rounds' queries and thread scheduling on a loaded machine.
const SLACK: Duration = Duration::from_millis(700);
/// How often the holders are sampled.
const SAMPLE: Duration = Duration::from_millis(10);

fn names() -> BTreeSet<String> {
    (0..12)
        .map(|n| format!("svc_{n}"))
        .chain([HUB.to_owned(), HOUSEKEEPING.to_owned()])
        .collect()
}

/// A database of its own on the shared test server, or `None` (skipped).
fn database() -> Option<String> {
    let server = PgServer::shared_or_skip()?;
    Some(server.database().expect("createdb"))
}

/// Joins as `id` with every name, acknowledging stops as the supervisor does.
async fn node(url: &str, id: &str) -> Arc<Cluster> {
    let c = Cluster::join(url, id.to_owned(), TTL, Arc::new(Metrics::new()))
        .await
        .expect("join");
    for name in names() {
        let mut held = c.held(&name);
        let c = c.clone();
        tokio::spawn(async move {
            while held.changed().await.is_ok() {
                if !*held.borrow_and_update() {
                    c.work_stopped(&name);
                }
            }
        });
    }
    c.set_names(names());
    c
}

/// The instances that hold `name` now.
fn holding<'a>(nodes: &'a [&'a Arc<Cluster>], name: &str) -> Vec<&'a str> {
    nodes
        .iter()
        .filter(|c| c.holds(name))
        .map(|c| c.instance_id())
        .collect()
}

/// Samples every name's holders until `done` says so or `limit` passes, asserting that
/// no name is ever held twice. Returns the time it took, or panics at the limit.
async fn watch_until(
    nodes: &[&Arc<Cluster>],
    limit: Duration,
    what: &str,
    mut done: impl FnMut() -> bool,
) -> Duration {
    let start = Instant::now();
    loop {
        for name in names() {
            let h = holding(nodes, &name);
            assert!(h.len() <= 1, "{name} held by {h:?} at once");
        }
        if done() {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < limit,
            "{what}: not within {limit:?}; holders: {:?}",
            names()
                .iter()
                .map(|n| (n.clone(), holding(nodes, n)))
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(SAMPLE).await;
    }
}

/// Whether each name is held by its rightful instance among `live`.
fn settled(nodes: &[&Arc<Cluster>]) -> bool {
    let live: Vec<&str> = nodes.iter().map(|c| c.instance_id()).collect();
    names().iter().all(|n| {
        let owner = rendezvous::owner(live.iter().copied(), n).unwrap();
        holding(nodes, n) == [owner]
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_name_has_one_holder_and_the_share_follows_joins_and_leaves() {
    let Some(url) = database() else { return };
    let a = node(&url, "a").await;
    let b = node(&url, "b").await;
    watch_until(&[&a, &b], RENEW * 3 + SLACK, "a and b settle", || {
        settled(&[&a, &b])
    })
    .await;
    // Steady state: nothing moves, nothing is held twice.
    let steady = Instant::now();
    watch_until(&[&a, &b], TTL + SLACK, "steady", || steady.elapsed() >= TTL).await;
    assert!(settled(&[&a, &b]));
    let holders = a.holders().await;
    for n in names() {
        assert_eq!(
            holders.get(&n).map(String::as_str),
            holding(&[&a, &b], &n).first().copied(),
            "{n}"
        );
    }

    // A third joins: its rendezvous share moves to it within one renew period (the
    // others' next round gives it up; it retries every tenth of a period meanwhile).
    let c = node(&url, "c").await;
    let share: Vec<String> = names()
        .into_iter()
        .filter(|n| rendezvous::owner(["a", "b", "c"], n) == Some("c"))
        .collect();
    assert!(!share.is_empty(), "c's share of the test names is empty");
    let took = watch_until(&[&a, &b, &c], RENEW + SLACK, "c takes its share", || {
        settled(&[&a, &b, &c])
    })
    .await;
    eprintln!("c took {} names in {took:?}", share.len());

    // One leaves: the others take its names at their next round.
    let b_names: Vec<String> = names().into_iter().filter(|n| b.holds(n)).collect();
    b.leave().await;
    assert!(
        b_names.iter().all(|n| !b.holds(n)),
        "leave reports nothing held"
    );
    let took = watch_until(
        &[&a, &b, &c],
        RENEW + SLACK,
        "a and c take b's names",
        || settled(&[&a, &c]),
    )
    .await;
    eprintln!("b's {} names moved in {took:?}", b_names.len());
    a.leave().await;
    c.leave().await;
}

/// When each of `owner`'s leases expires, by the database's clock, as a local instant.
fn expiries(url: &str, owner: &str) -> Vec<(String, Instant)> {
    let (url, owner) = (url.to_owned(), owner.to_owned());
    // The synchronous client must not run on a tokio thread.
    std::thread::spawn(move || {
        let mut db = postgres::Client::connect(&url, postgres::NoTls).expect("connect");
        let now = Instant::now();
        db.query(
            "SELECT name, (extract(epoch FROM expires_at - clock_timestamp()) * 1000)::bigint \
             FROM leases WHERE owner = $1 AND expires_at > clock_timestamp()",
            &[&owner],
        )
        .expect("query")
        .iter()
        .map(|r| {
            let ms: i64 = r.get(1);
            (r.get(0), now + Duration::from_millis(ms.max(0) as u64))
        })
        .collect()
    })
    .join()
    .expect("query thread")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_instances_names_move_only_after_its_leases_expired() {
    let Some(url) = database() else { return };
    let a = node(&url, "a").await;
    let b = node(&url, "b").await;
    watch_until(&[&a, &b], RENEW * 3 + SLACK, "a and b settle", || {
        settled(&[&a, &b])
    })
    .await;
    let held_by_b: Vec<String> = names().into_iter().filter(|n| b.holds(n)).collect();
    assert!(!held_by_b.is_empty());

    // b stops renewing without releasing anything, as a killed process would.
    b.crash();
    let crashed = Instant::now();
    let expiry = expiries(&url, "b");
    assert_eq!(
        expiry.len(),
        held_by_b.len(),
        "b's leases are still in force"
    );
    let limit = TTL + RENEW + SLACK;
    let took = watch_until(&[&a, &b], limit, "a takes b's names", || {
        let now = Instant::now();
        for (name, expires) in &expiry {
            if a.holds(name) {
                // The sampling and the expiry query are a few ms apart.
                assert!(
                    now + Duration::from_millis(50) >= *expires,
                    "a took {name} {:?} before b's lease expired",
                    *expires - now
                );
            }
        }
        held_by_b.iter().all(|n| a.holds(n))
    })
    .await;
    assert!(
        crashed.elapsed() >= TTL - RENEW,
        "took over after {took:?}: sooner than a lease can expire"
    );
    // b's own view gave its names up before its leases expired (the local deadline).
    assert!(held_by_b.iter().all(|n| !b.holds(n)));
    eprintln!("a took b's names {took:?} after b died");
    a.leave().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_single_instance_holds_every_name() {
    let c = Cluster::single("solo".into(), Arc::new(Metrics::new()));
    assert!(c.held("anything").borrow().to_owned());
    c.set_names(names());
    assert!(c.holds(HUB));
    let holders = c.holders().await;
    assert_eq!(holders.len(), names().len());
    assert!(holders.values().all(|h| h == "solo"));
    c.leave().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_instance_with_the_same_id_is_refused() {
    let Some(url) = database() else { return };
    let a = node(&url, "twin").await;
    let started = Instant::now();
    let e = Cluster::join(&url, "twin".into(), TTL, Arc::new(Metrics::new()))
        .await
        .expect_err("the id is taken");
    assert!(e.to_string().contains("server.instance_id"), "{e}");
    assert!(
        started.elapsed() >= TTL,
        "it waited for the other to expire"
    );
    a.leave().await;
    // Once the first left, the id is free at once.
    let again = Cluster::join(&url, "twin".into(), TTL, Arc::new(Metrics::new()))
        .await
        .expect("rejoin");
    again.leave().await;
}

/// Which instances run each name's work now.
type Running = Arc<std::sync::Mutex<std::collections::BTreeMap<String, Vec<String>>>>;

/// Joins as `id` and runs every name's work under [`super::while_held`]: the work
/// records itself in `running`, and takes `stop_time` to stop once cancelled.
async fn gated_node(
    url: &str,
    id: &str,
    running: &Running,
    stop_time: Duration,
    stop: &tokio_util::sync::CancellationToken,
) -> Arc<Cluster> {
    let c = Cluster::join(url, id.to_owned(), TTL, Arc::new(Metrics::new()))
        .await
        .expect("join");
    for name in names() {
        let (running, id, key) = (running.clone(), id.to_owned(), name.clone());
        tokio::spawn(super::while_held(
            c.clone(),
            name,
            stop.child_token(),
            TTL,
            move |cancel| {
                let (running, id, key) = (running.clone(), id.clone(), key.clone());
                async move {
                    running
                        .lock()
                        .unwrap()
                        .entry(key.clone())
                        .or_default()
                        .push(id.clone());
                    cancel.cancelled().await;
                    tokio::time::sleep(stop_time).await;
                    running
                        .lock()
                        .unwrap()
                        .get_mut(&key)
                        .unwrap()
                        .retain(|i| *i != id);
                }
            },
            || {},
        ));
    }
    c.set_names(names());
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn work_moves_to_a_joining_instance_only_once_it_stopped_where_it_ran() {
    let Some(url) = database() else { return };
    let running: Running = Default::default();
    let stop = tokio_util::sync::CancellationToken::new();
    // Stopping takes a third of a renew period: the lease must wait for it.
    let slow = RENEW / 3;
    let a = gated_node(&url, "a", &running, slow, &stop).await;
    let b = gated_node(&url, "b", &running, slow, &stop).await;
    let runs_once = |live: &[&str]| {
        let r = running.lock().unwrap();
        names().iter().all(|n| {
            let owner = rendezvous::owner(live.iter().copied(), n).unwrap();
            r.get(n).is_some_and(|ids| ids == &[owner])
        })
    };
    let never_twice = || {
        let r = running.lock().unwrap();
        for (n, ids) in r.iter() {
            assert!(ids.len() <= 1, "{n} runs on {ids:?} at once");
        }
    };
    watch_until(&[&a, &b], RENEW * 3 + SLACK, "work runs on a and b", || {
        never_twice();
        runs_once(&["a", "b"])
    })
    .await;
    let c = gated_node(&url, "c", &running, slow, &stop).await;
    let took = watch_until(
        &[&a, &b, &c],
        RENEW + slow + SLACK,
        "c runs its share",
        || {
            never_twice();
            runs_once(&["a", "b", "c"])
        },
    )
    .await;
    eprintln!("c's share moved in {took:?}, each stop taking {slow:?}");
    stop.cancel();
    for n in [&a, &b, &c] {
        n.leave().await;
    }
}
