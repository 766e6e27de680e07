//! Several instances on one PostgreSQL database: failover, and the database's outage.
//!
//! Three daemons with distinct `server.instance_id`s share one database on a real
//! PostgreSQL; an XMPP service (`chat`, a real Prosody) and a webhook are spread over
//! them by their leases. Eight clients post inbound messages through all three, each
//! client to its own conversation, one message after the other, moving to the next
//! instance whenever one does not answer. Mid-run the instance that holds the XMPP
//! session is SIGKILLed, and later the instance that took it over gets SIGTERM.
//!
//! At the end:
//! - every acknowledged message is stored exactly once;
//! - every `message.created` reached the webhook receiver, a redelivery with the same
//!   `webhook-id` and body, and per conversation the first arrivals in posting order;
//! - the XMPP session was up again on a survivor within `lease_ttl + 5 s` of the kill,
//!   and moved on at the SIGTERM; messages in both directions flowed after each move;
//! - Prosody's log never shows the account's session open twice at once;
//! - the survivor's event stream, open from the start, saw every stored event once, in
//!   seq order, whichever instance stored it.
//!
//! Two more tests take the database itself away under load, with two instances on it:
//! a restart of the server, and the loss of the primary with its synchronous standby
//! promoted. Nothing acknowledged is lost or doubled, and both instances recover by
//! themselves.
//!
//! They need shared storage, so they run on PostgreSQL whatever `SWITCHBOARD_TEST_STORAGE`
//! says (and skips without PostgreSQL unless `SWITCHBOARD_REQUIRE_POSTGRES=1`).
#![cfg(all(feature = "api", feature = "webhook", feature = "smartsupp"))]

mod common;
#[path = "fakes/smartsupp/prosody.rs"]
mod prosody;
#[path = "fakes/smartsupp/visitor.rs"]
mod visitor;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use prosody::{Prosody, Security};
use serde_json::{Value, json};
use switchboard_core::testkit::postgres::{PgOptions, PgServer};
use visitor::Visitor;

const T: Duration = Duration::from_secs(30);
/// `lease_ttl` of [`base_config`].
const LEASE_TTL: Duration = Duration::from_secs(3);
const CLIENTS: usize = 8;
const AGENT: (&str, &str) = ("agent", "agent-secret-1");
const VISITOR: (&str, &str) = ("visitor", "visitor-secret-1");
const AGENT_JID: &str = "agent@localhost";

/// Three instance ids such that one instance holds both `chat` and `hook`, and once it
/// is gone one of the other two holds both: the SIGKILL and then the SIGTERM each move
/// the XMPP session and the webhook's dispatcher together. Leases follow rendezvous
/// hashing over the ids, so the ids decide (the test checks what the instances report).
fn instance_ids() -> [String; 3] {
    use switchboard::cluster::rendezvous::owner;
    fn together<'a>(ids: &[&'a str]) -> Option<&'a str> {
        let chat = owner(ids.iter().copied(), "chat");
        (chat == owner(ids.iter().copied(), "hook")).then_some(chat?)
    }
    (0..1000)
        .map(|n| ["a", "b", "c"].map(|x| format!("node-{x}{n}")))
        .find(|ids| {
            let all: Vec<&str> = ids.iter().map(String::as_str).collect();
            together(&all).is_some_and(|first| {
                let rest: Vec<&str> = all.iter().copied().filter(|i| *i != first).collect();
                together(&rest).is_some()
            })
        })
        .expect("ids that put chat and hook together")
}

/// One instance: its directory, daemon and API client.
struct Node {
    name: String,
    daemon: Daemon,
    api: Api,
    _dir: tempfile::TempDir,
}

/// Starts instance `name` on the shared database `url`.
fn start_node(name: &str, url: &str, services: &str) -> Node {
    let dir = tempfile::tempdir().unwrap();
    let config = base_config_on(url).replacen(
        "[server]\n",
        &format!("[server]\ninstance_id = \"{name}\"\n"),
        1,
    ) + services;
    let daemon = Daemon::start(dir.path(), &config);
    let api = Api::new(&daemon);
    Node {
        name: name.to_owned(),
        daemon,
        api,
        _dir: dir,
    }
}

/// The service `id` as instance `node` sees it in `GET /v1/services`.
async fn service(node: &Node, id: &str) -> Option<Value> {
    let (status, list) = node.api.get("/v1/services").await;
    (status == 200).then_some(())?;
    list["data"]
        .as_array()?
        .iter()
        .find(|s| s["id"] == id)
        .cloned()
}

/// Who holds `chat` and `hook`, if every node of `nodes` agrees, both holders are
/// among `nodes` (not a dead instance whose lease has not run out yet) and `chat` is
/// connected.
async fn holders(nodes: &[&Node]) -> Option<(String, String)> {
    let mut seen = None;
    for n in nodes {
        let chat = service(n, "chat").await?;
        (chat["state"]["kind"] == "connected").then_some(())?;
        let hook = service(n, "hook").await?;
        let pair = (
            chat["instance"].as_str()?.to_owned(),
            hook["instance"].as_str()?.to_owned(),
        );
        if seen.get_or_insert(pair.clone()) != &pair {
            return None;
        }
    }
    let (chat, hook) = seen?;
    let live = |h: &str| nodes.iter().any(|n| n.name == h);
    (live(&chat) && live(&hook)).then_some((chat, hook))
}

/// [`holders`], once they stayed the same for `stable`: an instance that joins takes its
/// share from the others within a few rounds (a third of the TTL each).
async fn settled(nodes: &[&Node], stable: Duration, limit: Duration) -> (String, String) {
    let deadline = Instant::now() + limit;
    let mut since: Option<(Instant, (String, String))> = None;
    loop {
        let now = holders(nodes).await;
        match (&since, now) {
            (Some((t, was)), Some(now)) if *was == now => {
                if t.elapsed() >= stable {
                    return now;
                }
            }
            (_, now) => since = now.map(|n| (Instant::now(), n)),
        }
        assert!(
            Instant::now() < deadline,
            "the instances did not agree on stable holders within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The load: [`CLIENTS`] clients, each posting to its own conversation, one message
/// after the other, each next message through the next instance.
struct Clients {
    stop: Arc<AtomicBool>,
    /// Per client, the external ids acknowledged, in posting order.
    acked: Arc<Mutex<Vec<Vec<String>>>>,
    /// Posts that had to be made again (on another instance, or after a 503).
    retried: Arc<Mutex<usize>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Clients {
    fn start(bases: Arc<Vec<String>>) -> Clients {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let acked = Arc::new(Mutex::new(vec![Vec::new(); CLIENTS]));
        let retried = Arc::new(Mutex::new(0usize));
        let tasks = (0..CLIENTS)
            .map(|client| {
                let (http, bases, stop, acked, retried) = (
                    http.clone(),
                    bases.clone(),
                    stop.clone(),
                    acked.clone(),
                    retried.clone(),
                );
                tokio::spawn(async move {
                    let mut n = 0;
                    while !stop.load(Ordering::Relaxed) {
                        let attempts = post_until_acked(&http, &bases, client + n, client, n).await;
                        *retried.lock().unwrap() += attempts - 1;
                        acked.lock().unwrap()[client].push(format!("c{client}-{n:05}"));
                        n += 1;
                    }
                })
            })
            .collect();
        Clients {
            stop,
            acked,
            retried,
            tasks,
        }
    }

    fn total(&self) -> usize {
        self.acked.lock().unwrap().iter().map(Vec::len).sum()
    }

    /// Stops the clients after their message in flight; what they got acknowledged, and
    /// how many posts were retried. Every client made progress, and some posts had to
    /// be retried (otherwise the failure under test interrupted nothing).
    async fn finish(self) -> (Vec<Vec<String>>, usize) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.tasks {
            t.await.unwrap();
        }
        let acked = self.acked.lock().unwrap().clone();
        let retried = *self.retried.lock().unwrap();
        let total: usize = acked.iter().map(Vec::len).sum();
        eprintln!("clients stopped: {total} messages acknowledged");
        assert!(
            acked.iter().all(|a| a.len() >= 10),
            "every client made progress"
        );
        assert!(retried > 0, "the failures interrupted some posts");
        (acked, retried)
    }
}

/// Every acknowledged message is stored exactly once, and nothing twice.
fn stored_once(stored: &BTreeMap<String, usize>, acked: &[Vec<String>]) {
    for id in acked.iter().flatten() {
        assert_eq!(stored.get(id), Some(&1), "acknowledged {id} stored once");
    }
    assert!(stored.values().all(|&n| n == 1), "no duplicates at all");
}

/// Posts message `n` of `client` through the instances, starting at `first`, until one
/// acknowledges it. Returns how many attempts it took.
async fn post_until_acked(
    http: &reqwest::Client,
    bases: &[String],
    first: usize,
    client: usize,
    n: usize,
) -> usize {
    let deadline = Instant::now() + Duration::from_secs(60);
    let body = json!({
        "external_id": format!("c{client}-{n:05}"),
        "contact": {"external_id": format!("client-{client}")},
        "text": format!("message {n} of client {client}"),
    });
    for attempt in 0.. {
        assert!(
            Instant::now() < deadline,
            "c{client}-{n} was never acknowledged"
        );
        let base = &bases[(first + attempt) % bases.len()];
        let sent = http
            .post(format!("{base}/v1/services/api/messages"))
            .bearer_auth(TOKEN)
            .json(&body)
            .send()
            .await;
        match sent {
            Ok(r) if r.status().is_success() => return attempt + 1,
            Ok(r) if r.status().is_server_error() => {}
            Ok(r) => panic!("unexpected answer {} for c{client}-{n}", r.status()),
            Err(_) => {}
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    unreachable!()
}

/// The agent's sessions in Prosody's log, in log order: `(session, opened)` for each
/// authentication and each end of a connection. Prosody prefixes a session's lines
/// with its id.
fn agent_sessions(log: &str) -> Vec<(String, bool)> {
    let mut agent: BTreeSet<String> = BTreeSet::new();
    let mut out = Vec::new();
    for line in log.lines() {
        let Some(session) = line.split_whitespace().nth(3) else {
            continue;
        };
        if line.contains(&format!("Authenticated as {AGENT_JID}")) {
            agent.insert(session.to_owned());
            out.push((session.to_owned(), true));
        } else if agent.contains(session) && line.contains("Client disconnected") {
            agent.remove(session);
            out.push((session.to_owned(), false));
        }
    }
    out
}

/// Follows `/v1/events` on `base` (`http://addr`) from the start until `stop` is set
/// (or the instance goes away); the seqs it got, in order.
fn follow_events(base: &str, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<Vec<i64>> {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::Message as Ws;
    let url = format!(
        "{}/v1/events?after=0&access_token={TOKEN}",
        base.replacen("http", "ws", 1)
    );
    tokio::spawn(async move {
        let (mut ws, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("websocket connects");
        let mut seqs = Vec::new();
        while !stop.load(Ordering::Relaxed) {
            match tokio::time::timeout(Duration::from_millis(200), ws.next()).await {
                Ok(Some(Ok(Ws::Text(t)))) => {
                    let e: Value = serde_json::from_str(&t).unwrap();
                    seqs.push(e["seq"].as_i64().unwrap());
                }
                Ok(Some(Ok(_))) | Err(_) => {}
                Ok(_) => break,
            }
        }
        seqs
    })
}

/// The visitor says `id` to the agent; waits until `node` stored it, then has the agent
/// answer through `node` and waits for the answer at the visitor: both directions run
/// through whichever instance holds the session now.
async fn round_trip(visitor: &Visitor, node: &Node, id: &str) {
    visitor
        .say(AGENT_JID, id, &format!("visitor says {id}"))
        .await;
    let external = format!("visitor@localhost/id:{id}");
    let conv = eventually(T, &format!("{id} stored"), || async {
        let (_, list) = node.api.get("/v1/conversations?service_id=chat").await;
        let conv = list["data"].as_array()?.first()?["id"].as_str()?.to_owned();
        let msgs = node.api.all_messages(&conv).await;
        msgs.iter()
            .any(|m| m["external_id"] == external)
            .then_some(conv)
    })
    .await;
    let answer = format!("agent answers {id}");
    node.api.reply(&conv, json!({"text": answer})).await;
    eventually(T, &format!("the answer to {id} at the visitor"), || async {
        visitor.bodies().contains(&answer).then_some(())
    })
    .await;
}

/// Every message.created of `stored` reached `rx` (within a minute), signed; a
/// redelivery is the same event with the same `webhook-id`; per client, the first
/// arrivals are its acknowledged messages in posting order. Returns how many
/// deliveries were made again. On a miss it prints the outbox and leases of `db_url`.
async fn delivered_in_order(
    rx: &Receiver,
    stored: &BTreeMap<String, usize>,
    acked: &[Vec<String>],
    db_url: &str,
    last: &Node,
) -> usize {
    // Every message.created reached the receiver; a redelivery is the same event.
    let deadline = Instant::now() + Duration::from_secs(60);
    let by_id = loop {
        let by_id = rx.by_webhook_id();
        let got: BTreeSet<&str> = by_id
            .values()
            .filter(|e| e["data"]["message"]["direction"] == "inbound")
            .filter_map(|e| e["data"]["message"]["external_id"].as_str())
            .collect();
        let missing: Vec<&String> = stored
            .keys()
            .filter(|id| !got.contains(id.as_str()))
            .collect();
        if missing.is_empty() {
            break by_id;
        }
        if Instant::now() > deadline {
            // What the outbox and the sessions looked like, for whoever reads the failure.
            let diagnose = std::process::Command::new("psql")
                .arg(db_url)
                .args(["-c", "SELECT service_id, queue_key, state, count(*), min(id) FROM outbox GROUP BY 1, 2, 3"])
                .args(["-c", "SELECT * FROM leases"])
                .args(["-c", "SELECT pid, state, wait_event, xact_start, left(query, 80) FROM pg_stat_activity WHERE datname = current_database()"])
                .output();
            if let Ok(out) = diagnose {
                eprintln!(
                    "{}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            panic!(
                "{} of {} message.created never reached the receiver, e.g. {:?}; hook on {}: {}",
                missing.len(),
                stored.len(),
                &missing[..missing.len().min(5)],
                last.name,
                service(last, "hook").await.unwrap_or_default()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let accepted = rx.accepted();
    assert!(
        accepted
            .iter()
            .all(|r| verify_standard_webhook(WEBHOOK_SECRET, r)),
        "every delivery is signed"
    );
    eprintln!(
        "{} distinct events delivered, {} deliveries in all",
        by_id.len(),
        accepted.len()
    );

    // Per conversation, first arrivals come in the order the client posted them.
    let mut seen: BTreeSet<String> = BTreeSet::new();
    let mut repeats = 0;
    let mut firsts: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for r in &accepted {
        let e = r.json();
        if !seen.insert(r.header("webhook-id").to_owned()) {
            repeats += 1;
            continue;
        }
        let m = &e["data"]["message"];
        if m["direction"] == "inbound" {
            let contact = m["external_id"].as_str().unwrap();
            let conv = contact.split('-').next().unwrap_or(contact);
            firsts
                .entry(conv.to_owned())
                .or_default()
                .push(contact.to_owned());
        }
    }
    for (client, ids) in acked.iter().enumerate() {
        assert_eq!(
            firsts.get(&format!("c{client}")),
            Some(ids),
            "client {client}'s messages: first arrivals complete and in posting order"
        );
    }
    repeats
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_instances_fail_over_without_losing_or_duplicating() {
    let Some(pg) = PgServer::shared_or_skip() else {
        return;
    };
    let url = pg.database().expect("a database");
    let db_url = url.clone();
    // debug: Prosody logs every session's start and end.
    let xmpp = Prosody::start(Security::Plain, &[AGENT, VISITOR], "debug");
    let rx = Receiver::start().await;
    let services = api_service("")
        + &webhook_service(&rx.url("/events"), "events = [\"message.created\"]")
        + &format!(
            "\n[services.chat]\ntype = \"smartsupp\"\n[services.chat.params]\njid = \"{AGENT_JID}\"\npassword = \"{}\"\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\n",
            AGENT.1, xmpp.port
        );
    // Starting waits for each daemon's first log lines: off the runtime's threads.
    let nodes: Vec<Node> = tokio::task::spawn_blocking(move || {
        instance_ids()
            .iter()
            .map(|name| start_node(name, &url, &services))
            .collect()
    })
    .await
    .unwrap();
    let bases: Arc<Vec<String>> = Arc::new(nodes.iter().map(|n| n.daemon.url("")).collect());
    // An event stream on every instance, from the start: the one on the instance that
    // lives through it all must see every event, in order, whichever instance stored it.
    let streams_stop = Arc::new(AtomicBool::new(false));
    let mut streams: BTreeMap<String, _> = nodes
        .iter()
        .map(|n| {
            (
                n.name.clone(),
                follow_events(&n.daemon.url(""), streams_stop.clone()),
            )
        })
        .collect();
    let (holder, hook) = settled(&nodes.iter().collect::<Vec<_>>(), LEASE_TTL, T).await;
    eprintln!("failover: chat and hook on {holder}");
    assert_eq!(hook, holder, "the ids put chat and hook together");
    for n in &nodes {
        // A load balancer's health check: ready whether or not it holds the services.
        let r = n
            .api
            .http
            .get(n.daemon.url("/readyz"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200, "{} ready", n.name);
    }
    let visitor = Visitor::connect(xmpp.port, VISITOR.0, VISITOR.1).await;
    let by_name = |name: &str| nodes.iter().position(|n| n.name == name).unwrap();
    let a = by_name(&holder);
    // The round trip goes through an instance that does not hold the session.
    round_trip(&visitor, &nodes[(a + 1) % 3], "before").await;

    let clients = Clients::start(bases.clone());
    let progress = |what: &str| {
        eprintln!(
            "failover: {what}: {} messages acknowledged so far",
            clients.total()
        );
    };
    tokio::time::sleep(Duration::from_millis(1500)).await;

    // SIGKILL the instance that holds the XMPP session and the webhook's dispatcher,
    // right after the receiver answered a delivery 2xx (before its result can have been
    // committed); a survivor takes both over once the dead instance's leases ran out.
    let mut nodes = nodes;
    let seen = rx.got.lock().unwrap().len();
    let wait = Instant::now() + T;
    while rx.got.lock().unwrap().len() == seen {
        assert!(Instant::now() < wait, "no delivery while the clients post");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    progress(&format!("SIGKILL {holder}"));
    let killed_at = Instant::now();
    let dead = nodes.remove(a);
    dead.daemon.kill();
    let survivors: Vec<&Node> = nodes.iter().collect();
    let (b_name, _) = settled(
        &survivors,
        Duration::ZERO,
        LEASE_TTL + Duration::from_secs(5),
    )
    .await;
    let failover = killed_at.elapsed();
    eprintln!("failover: chat connected on {b_name} {failover:?} after the kill");
    assert!(failover <= LEASE_TTL + Duration::from_secs(5));
    let b = nodes.iter().position(|n| n.name == b_name).unwrap();
    round_trip(&visitor, &nodes[1 - b], "after-kill").await;
    // The survivors may still be moving names between them.
    let (b_name, hook) = settled(&survivors, LEASE_TTL, T).await;
    assert_eq!(hook, b_name, "the ids put chat and hook together");
    let b = nodes.iter().position(|n| n.name == b_name).unwrap();

    // SIGTERM the new holder mid-run: it hands both over as it leaves.
    progress(&format!("SIGTERM {b_name}"));
    let leaving = nodes.remove(b);
    let status = tokio::task::spawn_blocking(move || leaving.daemon.terminate())
        .await
        .unwrap();
    assert!(status.success(), "SIGTERM exits 0: {status}");
    let last = &nodes[0];
    let (c_name, _) = settled(&[last], Duration::ZERO, T).await;
    assert_eq!(c_name, last.name);
    round_trip(&visitor, last, "after-term").await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let (acked, retried) = clients.finish().await;
    eprintln!("failover: {retried} posts retried on another instance");
    let stored = last.api.stored_inbound().await;
    stored_once(&stored, &acked);
    for id in ["before", "after-kill", "after-term"] {
        assert_eq!(stored.get(&format!("visitor@localhost/id:{id}")), Some(&1));
    }

    let repeats = delivered_in_order(&rx, &stored, &acked, &db_url, last).await;
    eprintln!("failover: {repeats} deliveries made again after the kill or the stop");

    // The account's session was never open twice at once.
    let log = xmpp.log();
    let sessions = agent_sessions(&log);
    assert!(
        sessions.iter().filter(|(_, open)| *open).count() >= 3,
        "a session on each holder: {sessions:?}"
    );
    let mut open: BTreeSet<&str> = BTreeSet::new();
    for (session, opened) in &sessions {
        if *opened {
            assert!(
                open.is_empty(),
                "{session} logged in while {open:?} was still connected: {sessions:?}"
            );
            open.insert(session);
        } else {
            open.remove(session.as_str());
        }
    }

    // The survivor's event stream saw every event, once each, in seq order: a reader of
    // `after=N` never passes an event that commits later with a smaller number.
    let all: Vec<i64> = read_events(&last.daemon, TOKEN, 0, usize::MAX, Duration::from_secs(3))
        .await
        .iter()
        .map(|e| e["seq"].as_i64().unwrap())
        .collect();
    streams_stop.store(true, Ordering::Relaxed);
    let live = streams.remove(&last.name).unwrap().await.unwrap();
    eprintln!(
        "failover: the survivor's stream saw {} events live; {} are stored",
        live.len(),
        all.len()
    );
    assert!(all.windows(2).all(|w| w[0] < w[1]));
    assert!(
        live.windows(2).all(|w| w[0] < w[1]),
        "the live stream is in seq order"
    );
    // (Anything the stream got after that read ended is not compared.)
    let through = *all.last().unwrap();
    let live: Vec<i64> = live.into_iter().filter(|s| *s <= through).collect();
    assert_eq!(live, all, "the live stream missed or added events");
    visitor.close().await;
    let last = nodes.remove(0);
    assert!(last.daemon.terminate().success());
    rx.stop().await;
}

/// The database goes away under load for a few seconds (a fast shutdown cuts every
/// connection, as a crash of the server would) and comes back on the same address. Two
/// instances share it. Nothing acknowledged is lost or doubled; meanwhile posts get 503
/// and are retried; both instances recover by themselves (their writers, read pools,
/// listeners and leases reconnect), and every `message.created` still reaches the
/// webhook, in each conversation's order.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_database_outage_under_load_loses_nothing() {
    if PgServer::shared_or_skip().is_none() {
        return;
    }
    // A server of its own, to take down.
    let pg = Arc::new(PgServer::start(PgOptions::default()).expect("PostgreSQL starts"));
    let url = pg.database().expect("a database");
    let down = pg.clone();
    survives_database_failure("outage", &url, move || down.outage(Duration::from_secs(3))).await;
    drop(pg);
}

/// The database's machine is lost and its synchronous standby is promoted, as a managed
/// PostgreSQL or Patroni fails over. The instances are given both servers in one URL
/// with `target_session_attrs=read-write`: each connection they make (writer, readers,
/// listener, leases) goes to whichever server takes writes. Before the promotion the
/// standby is read-only and refused; after it, everything reconnects to it. Nothing
/// acknowledged is lost or doubled: with `synchronous_standby_names = '*'` no commit is
/// acknowledged before the standby has it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lost_primary_and_its_promoted_standby_lose_nothing() {
    if PgServer::shared_or_skip().is_none() {
        return;
    }
    let primary = PgServer::start(PgOptions::default()).expect("PostgreSQL starts");
    let single = primary.database().expect("a database");
    let db = single.rsplit('/').next().unwrap().to_owned();
    let standby = primary.standby().expect("a standby starts");
    // Set after the base backup, which would copy it: the promoted standby, with no
    // standby of its own, would wait for one at every commit.
    primary
        .sql("ALTER SYSTEM SET synchronous_standby_names = '*'")
        .and_then(|_| primary.sql("SELECT pg_reload_conf()"))
        .expect("synchronous replication configured");
    eventually(T, "the standby streaming in sync", || async {
        let state = primary
            .sql("SELECT sync_state FROM pg_stat_replication")
            .ok()?;
        (state == "sync").then_some(())
    })
    .await;
    assert_eq!(
        standby.sql("SELECT pg_is_in_recovery()").unwrap(),
        "t",
        "the standby is read-only before its promotion"
    );
    let url = format!(
        "postgres://switchboard@127.0.0.1:{},127.0.0.1:{}/{db}?target_session_attrs=read-write",
        primary.port(),
        standby.port()
    );
    let standby = Arc::new(standby);
    let promoted = standby.clone();
    survives_database_failure("failover", &url, move || {
        // The standby falls behind: its WAL receiver stops taking the primary's WAL.
        // Commits from here on would be lost at the promotion; with synchronous
        // replication none of them is acknowledged.
        let receiver = promoted.sql("SELECT pid FROM pg_stat_wal_receiver")?;
        signal(&receiver, "STOP")?;
        std::thread::sleep(Duration::from_millis(500));
        primary.kill()?;
        // What the receiver's socket still holds is never read: it dies (the standby's
        // postmaster restarts it, and recovers what was flushed).
        signal(&receiver, "KILL")?;
        // The instances meet a dead primary and a read-only standby meanwhile.
        let deadline = Instant::now() + T;
        while promoted.sql("SELECT pg_is_in_recovery()").as_deref() != Ok("t") {
            if Instant::now() > deadline {
                return Err("the standby did not come back after its receiver died".into());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        std::thread::sleep(Duration::from_secs(1));
        promoted.promote()
    })
    .await;
    assert_eq!(standby.sql("SELECT pg_is_in_recovery()").unwrap(), "f");
}

/// Two instances on `url` under load from the clients; `fail` takes the database away
/// and returns once it is back (blocking). Then: both instances take writes again by
/// themselves, nothing acknowledged is lost or doubled, both read the same, and every
/// `message.created` reaches the webhook in each conversation's order.
async fn survives_database_failure(
    what: &str,
    url: &str,
    fail: impl FnOnce() -> Result<(), String> + Send + 'static,
) {
    let rx = Receiver::start().await;
    let services =
        api_service("") + &webhook_service(&rx.url("/events"), "events = [\"message.created\"]");
    let node_url = url.to_owned();
    let nodes: Vec<Node> = tokio::task::spawn_blocking(move || {
        ["node-x", "node-y"]
            .iter()
            .map(|name| start_node(name, &node_url, &services))
            .collect()
    })
    .await
    .unwrap();
    let hook_held = || async {
        for n in &nodes {
            service(n, "hook").await?["instance"].as_str()?;
        }
        Some(())
    };
    eventually(T, "the webhook's lease taken", hook_held).await;
    let bases: Arc<Vec<String>> = Arc::new(nodes.iter().map(|n| n.daemon.url("")).collect());
    let clients = Clients::start(bases);
    tokio::time::sleep(Duration::from_millis(1000)).await;

    eprintln!(
        "{what}: taking PostgreSQL away, {} messages acknowledged so far",
        clients.total()
    );
    tokio::task::spawn_blocking(fail)
        .await
        .unwrap()
        .expect("PostgreSQL goes away and a server takes writes again");
    let back = Instant::now();
    eprintln!(
        "{what}: PostgreSQL takes writes again, {} messages acknowledged so far",
        clients.total()
    );
    // Both instances take writes again by themselves.
    let before = clients.total();
    eventually(T, "ingest through both instances again", || async {
        (clients.total() >= before + 100).then_some(())
    })
    .await;
    eprintln!("{what}: ingest resumed {:?} after that", back.elapsed());
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let (acked, retried) = clients.finish().await;
    eprintln!("{what}: {retried} posts retried");
    for n in &nodes {
        eventually(T, &format!("{} ready again", n.name), || async {
            let r = n.api.http.get(n.daemon.url("/readyz")).send().await.ok()?;
            (r.status().as_u16() == 200).then_some(())
        })
        .await;
    }
    let stored = nodes[0].api.stored_inbound().await;
    stored_once(&stored, &acked);
    assert_eq!(
        nodes[1].api.stored_inbound().await,
        stored,
        "both see the same"
    );
    eventually(T, "the webhook's lease held again", hook_held).await;
    let repeats = delivered_in_order(&rx, &stored, &acked, url, &nodes[0]).await;
    eprintln!("{what}: {repeats} deliveries made again");
    for n in nodes {
        assert!(n.daemon.terminate().success());
    }
    rx.stop().await;
}
