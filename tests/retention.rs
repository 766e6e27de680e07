//! Event retention end to end (issue 21), with `storage.event_retention = "1s"`: events
//! delivered to their webhook are pruned from the real SQLite file, while those whose
//! delivery is dead (an admin may retry it) or still being retried stay; a stream
//! resuming from before the horizon is told, and the stream and webhooks keep working.
//! Three organizations keep the three cases apart: each has its own api service and
//! webhook target.
#![cfg(all(feature = "api", feature = "webhook"))]

mod common;

use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::*;
use futures_util::StreamExt;
use tokio_tungstenite::tungstenite::Message as Frame;

const DEAD_TOKEN: &str = "dead-org-token-0123456789";
const HELD_TOKEN: &str = "held-org-token-0123456789";

fn org_services(org: &str, token: &str, target: &str, max_attempts: u32) -> String {
    format!(
        r#"
[services.api_{org}]
type = "api"
organization = "{org}"
[services.api_{org}.params.tokens.t]
token = "{token}"
scopes = ["read", "ingest"]

[services.hook_{org}]
type = "webhook"
organization = "{org}"
[services.hook_{org}.params]
url = "{target}"
secret = "{WEBHOOK_SECRET}"
max_attempts = {max_attempts}
"#
    )
}

/// The daemon's database, opened read-only beside it.
fn read_only(db: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap()
}

/// `(seq, organization)` of every stored event, read from the database file.
fn stored_events(db: &Path) -> Vec<(i64, String)> {
    let conn = read_only(db);
    let mut stmt = conn
        .prepare("SELECT seq, organization FROM events ORDER BY seq")
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

fn of(events: &[(i64, String)], org: &str) -> Vec<i64> {
    events
        .iter()
        .filter(|(_, o)| o == org)
        .map(|(s, _)| *s)
        .collect()
}

/// The states of `service`'s outbox rows.
fn outbox_states(db: &Path, service: &str) -> Vec<i64> {
    let conn = read_only(db);
    let mut stmt = conn
        .prepare("SELECT state FROM outbox WHERE service_id = ?")
        .unwrap();
    stmt.query_map([service], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// Dead outbox rows whose event is still stored.
fn dead_with_event(db: &Path) -> i64 {
    let conn = read_only(db);
    conn.query_row(
        "SELECT count(*) FROM outbox o JOIN events e ON e.seq = o.ref_id \
         WHERE o.kind = 'event' AND o.state = 3",
        [],
        |r| r.get(0),
    )
    .unwrap()
}

async fn post(api: &Api, service: &str, n: usize, contact: &str) {
    let (s, m) = api
        .post(
            &format!("/v1/services/{service}/messages"),
            &serde_json::json!({"external_id": format!("m-{service}-{n}"),
                                "contact": {"external_id": contact}, "text": format!("hello {n}")}),
        )
        .await;
    assert_eq!(s, 201, "{m}");
}

fn as_org(d: &Daemon, token: &str) -> Api {
    Api {
        token: token.into(),
        ..Api::new(d)
    }
}

async fn next_frame(
    ws: &mut (impl StreamExt<Item = Result<Frame, tokio_tungstenite::tungstenite::Error>> + Unpin),
    within: Duration,
) -> Option<serde_json::Value> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, ws.next()).await {
            Ok(Some(Ok(Frame::Text(t)))) => return Some(serde_json::from_str(&t).unwrap()),
            Ok(Some(Ok(_))) => continue,
            _ => return None,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_delivered_events_are_pruned_and_held_ones_kept() {
    // It reads SQLite's file to see what is stored; on PostgreSQL the same statements
    // are checked by the store's engine tests (src/store/engines.rs).
    if sqlite_only("reads SQLite's file") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("switchboard.db");
    let ok = Receiver::start().await;
    let dead = Receiver::start().await;
    let held = Receiver::start().await;
    dead.failing.store(true, Ordering::SeqCst);
    held.failing.store(true, Ordering::SeqCst);
    let config = format!(
        "{}{}{}{}{}",
        base_config(dir.path()).replace("[storage]\n", "[storage]\nevent_retention = \"1s\"\n"),
        api_service(""),
        webhook_service(&ok.url("/hook"), ""),
        org_services("dead", DEAD_TOKEN, &dead.url("/dead"), 1),
        org_services("held", HELD_TOKEN, &held.url("/held"), 100_000),
    );
    let d = Daemon::start(dir.path(), &config);
    let api = Api::new(&d);
    api.wait_state("hook", "connected").await;
    as_org(&d, DEAD_TOKEN)
        .wait_state("hook_dead", "connected")
        .await;
    as_org(&d, HELD_TOKEN)
        .wait_state("hook_held", "connected")
        .await;

    // The held organizations' events first: when the default organization's (younger)
    // events are pruned, the pass that did it has seen these too.
    post(&as_org(&d, DEAD_TOKEN), "api_dead", 1, "c-dead").await;
    post(&as_org(&d, HELD_TOKEN), "api_held", 1, "c-held").await;
    for n in 1..=3 {
        post(&api, "api", n, "c-ok").await;
    }
    let delivered = eventually(Duration::from_secs(10), "3 messages delivered", || async {
        let got = ok.accepted();
        let messages = got
            .iter()
            .filter(|r| r.json()["type"] == "message.created")
            .count();
        (messages == 3).then_some(got)
    })
    .await;
    assert!(
        delivered
            .iter()
            .all(|r| verify_standard_webhook(WEBHOOK_SECRET, r))
    );
    let delivered_seqs: Vec<i64> = delivered
        .iter()
        .map(|r| r.json()["seq"].as_i64().unwrap())
        .collect();
    let last_delivered = *delivered_seqs.iter().max().unwrap();
    let dead_rows = eventually(Duration::from_secs(10), "dead deliveries", || async {
        let states = outbox_states(&db, "hook_dead");
        (states.len() >= 3 && states.iter().all(|&s| s == 3)).then_some(states.len())
    })
    .await;
    assert_eq!(dead_with_event(&db), dead_rows as i64);
    let stored = stored_events(&db);
    let (dead_events, held_events) = (of(&stored, "dead"), of(&stored, "held"));
    assert!(held_events.len() >= 3, "{held_events:?}");

    let kept = eventually(
        Duration::from_secs(15),
        "the delivered events pruned",
        || async {
            let events = stored_events(&db);
            of(&events, "default").is_empty().then_some(events)
        },
    )
    .await;
    assert_eq!(
        of(&kept, "dead"),
        dead_events,
        "dead deliveries keep their events"
    );
    assert_eq!(
        of(&kept, "held"),
        held_events,
        "retried deliveries keep theirs"
    );
    // Several more passes change nothing for them.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let later = stored_events(&db);
    assert_eq!(of(&later, "dead"), dead_events);
    assert_eq!(of(&later, "held"), held_events);
    assert_eq!(dead_with_event(&db), dead_rows as i64);

    // A stream resuming from the start is told what was pruned, then gets what remains
    // and what comes next; the webhook gets the new events too.
    let url = format!("ws://{}/v1/events?after=0&access_token={TOKEN}", d.addr);
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let first = next_frame(&mut ws, Duration::from_secs(5))
        .await
        .expect("a first frame");
    assert_eq!(first["type"], "events.pruned", "{first}");
    assert_eq!(first["data"]["after"], 0);
    assert_eq!(first["data"]["pruned_through"], last_delivered);
    assert!(
        first.get("seq").is_none(),
        "not an event of the log: {first}"
    );
    post(&api, "api", 4, "c-ok").await;
    let next = next_frame(&mut ws, Duration::from_secs(5))
        .await
        .expect("the new event streamed");
    assert_eq!(next["type"], "message.created", "{next}");
    assert!(next["seq"].as_i64().unwrap() > last_delivered);
    assert_eq!(next["data"]["message"]["text"], "hello 4");
    let fresh = eventually(
        Duration::from_secs(10),
        "the new event's webhook",
        || async {
            ok.accepted()
                .into_iter()
                .find(|r| r.json()["seq"] == next["seq"])
        },
    )
    .await;
    assert!(verify_standard_webhook(WEBHOOK_SECRET, &fresh));
    drop(ws);

    // Nothing of the held organization was pruned: no notice, every event.
    let held_stream =
        read_events(&d, HELD_TOKEN, 0, held_events.len(), Duration::from_secs(5)).await;
    let seqs: Vec<i64> = held_stream
        .iter()
        .map(|e| e["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(seqs, held_events);

    let (_, metrics) = {
        let r = reqwest::get(d.url("/metrics")).await.unwrap();
        (r.status(), r.text().await.unwrap())
    };
    let pruned: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("switchboard_events_pruned_total "))
        .expect("the pruned counter")
        .parse()
        .unwrap();
    assert!(pruned >= 5, "{pruned}");

    // Once the retried deliveries succeed, a later full walk prunes their events too;
    // the dead ones stay.
    held.failing.store(false, Ordering::SeqCst);
    eventually(
        Duration::from_secs(20),
        "the held events pruned once delivered",
        || async { of(&stored_events(&db), "held").is_empty().then_some(()) },
    )
    .await;
    assert_eq!(of(&stored_events(&db), "dead"), dead_events);

    assert!(d.terminate().success());
    ok.stop().await;
    dead.stop().await;
    held.stop().await;
}
