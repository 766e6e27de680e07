//! The crash test: concurrent clients post inbound messages with unique ids through the
//! `api` service and the Twilio webhook while the daemon is killed with SIGKILL at random
//! moments and restarted. Clients retry anything not acknowledged. At the end every
//! acknowledged message exists exactly once, every `message.created` reached the webhook
//! receiver (deduplicated by `webhook-id`), and every reply posted before the kills
//! reached the fake Twilio at least once.
//!
//! Each kill lands right after the receiver answered a delivery 2xx, before the daemon
//! can have committed that result (deliveries are pipelined and their results committed
//! in batches): the test asserts that such deliveries are made again with the same
//! `webhook-id` and body, and that no conversation's events ever arrive out of order
//! except as a replay of a run it already received.
//!
//! Small by default, for CI. A long soak:
//! `CRASH_KILLS=50 CRASH_CLIENTS=32 cargo test --release --test crash -- --nocapture`
#![cfg(all(feature = "api", feature = "twilio", feature = "webhook"))]

mod common;
#[path = "fakes/twilio/mod.rs"]
mod twilio_kit;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use serde_json::json;
use twilio_kit::*;

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A port free right now, so every restart listens where the clients post.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One message a client keeps posting until it is acknowledged.
enum Inbound {
    Api(String),
    Twilio(Vec<(String, String)>),
}

impl Inbound {
    fn external_id(&self) -> String {
        match self {
            Inbound::Api(id) => id.clone(),
            Inbound::Twilio(p) => p.iter().find(|(k, _)| k == "MessageSid").unwrap().1.clone(),
        }
    }
}

/// Posts until a 2xx; connection errors and 5xx (the daemon is down or restarting) are
/// retried. Returns how many attempts it took.
async fn post_until_acked(
    http: &reqwest::Client,
    base: &str,
    msg: &Inbound,
    client: usize,
) -> usize {
    let deadline = Instant::now() + Duration::from_secs(60);
    for attempt in 1.. {
        assert!(
            Instant::now() < deadline,
            "a message was never acknowledged"
        );
        let sent = match msg {
            Inbound::Api(id) => {
                http.post(format!("{base}/v1/services/api/messages"))
                    .bearer_auth(TOKEN)
                    .json(&json!({"external_id": id, "contact": {"external_id": format!("api-contact-{client}")}, "text": format!("message {id}")}))
                    .send()
                    .await
            }
            Inbound::Twilio(params) => {
                let hook = format!("{PUBLIC}/hooks/sms");
                http.post(format!("{base}{}", path_of(&hook)))
                    .header("x-twilio-signature", twilio_signature(AUTH_TOKEN, &hook, params))
                    .form(params)
                    .send()
                    .await
            }
        };
        match sent {
            Ok(r) if r.status().is_success() => return attempt,
            Ok(r) if r.status().is_server_error() => {}
            Ok(r) => panic!("unexpected answer {} for {}", r.status(), msg.external_id()),
            Err(_) => {}
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    unreachable!()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_messages_survive_kill_9_exactly_once() {
    let kills = env_or("CRASH_KILLS", 5);
    let clients = env_or("CRASH_CLIENTS", 8);
    let twilio = FakeTwilio::start().await;
    let rx = Receiver::start().await;
    let port = free_port();
    let mut h = Harness::start(|dir| {
        base_config(dir).replace(
            "listen = \"127.0.0.1:0\"",
            &format!("listen = \"127.0.0.1:{port}\"\npublic_url = \"{PUBLIC}\""),
        ) + &api_service("")
            + &twilio_service("sms", &twilio, FROM_PARAM)
            + &webhook_service(&rx.url("/events"), "events = [\"message.created\"]")
    });
    let base = h.daemon.url("");
    let api = &h.api;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(3))
        .build()
        .unwrap();

    // Replies posted before any kill: they must reach Twilio however the kills fall.
    let mut replies: Vec<(String, String)> = Vec::new();
    for c in 0..4 {
        let contact = format!("+3161000000{c}");
        let p = sms_params(
            &format!("SM{:032x}", 0xfeed_0000u64 + c),
            &contact,
            SMS_NUMBER,
            "hello",
        );
        post_until_acked(&http, &base, &Inbound::Twilio(p), 0).await;
        let conv = conversation(api, "sms", &format!("{contact}|{SMS_NUMBER}")).await;
        for r in 0..2 {
            let text = format!("reply {r} to {contact}");
            let id = reply(api, &conv, json!({"text": text})).await;
            replies.push((id, text));
        }
    }

    // The clients.
    let stop = Arc::new(AtomicBool::new(false));
    let acked: Arc<Mutex<BTreeSet<String>>> = Default::default();
    let retries = Arc::new(Mutex::new(0usize));
    let mut tasks = Vec::new();
    for client in 0..clients {
        let (http, base, stop, acked, retries) = (
            http.clone(),
            base.clone(),
            stop.clone(),
            acked.clone(),
            retries.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let msg = if n % 2 == 0 {
                    Inbound::Api(format!("api-{client}-{n}"))
                } else {
                    let sid = format!("SM{:016x}{:016x}", client as u64, n);
                    Inbound::Twilio(sms_params(
                        &sid,
                        &format!("+3162000{client:04}"),
                        SMS_NUMBER,
                        &format!("twilio {n}"),
                    ))
                };
                let attempts = post_until_acked(&http, &base, &msg, client).await;
                *retries.lock().unwrap() += attempts - 1;
                acked.lock().unwrap().insert(msg.external_id());
                n += 1;
            }
        }));
    }

    // The killer: SIGKILL right after a webhook delivery was answered 2xx, at random
    // moments; restart at once.
    for _ in 0..kills {
        tokio::time::sleep(Duration::from_millis(fastrand::u64(300..900))).await;
        let seen = rx.got.lock().unwrap().len();
        let wait = Instant::now() + Duration::from_secs(5);
        while rx.got.lock().unwrap().len() == seen && Instant::now() < wait {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        h.crash();
        // The start waits for the daemon's first lines: off the runtime's threads.
        h = tokio::task::spawn_blocking(move || {
            h.start_again(&[]);
            h
        })
        .await
        .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    let retried = *retries.lock().unwrap();
    eprintln!(
        "crash test: {kills} kills, {clients} clients, {} messages acknowledged, {retried} retried posts",
        acked.len()
    );
    assert!(
        acked.len() >= clients * 2,
        "the clients made progress: {}",
        acked.len()
    );
    assert!(
        retried > 0,
        "the kills interrupted some posts (otherwise this test proved nothing)"
    );

    // Every acknowledged message exists exactly once.
    let api = &h.api;
    let stored = api.stored_inbound().await;
    for id in &acked {
        assert_eq!(
            stored.get(id),
            Some(&1),
            "acknowledged {id} must be stored exactly once"
        );
    }
    assert!(stored.values().all(|&n| n == 1), "no duplicates at all");

    // Every message.created reached the webhook receiver; duplicates share a webhook-id.
    let inbound_ids: BTreeSet<String> = stored.keys().cloned().collect();
    let delivered = eventually(
        Duration::from_secs(60),
        "every message.created at the receiver",
        || async {
            let by_id = rx.by_webhook_id();
            let got: BTreeSet<String> = by_id
                .values()
                .filter(|e| e["data"]["message"]["direction"] == "inbound")
                .map(|e| {
                    e["data"]["message"]["external_id"]
                        .as_str()
                        .unwrap()
                        .to_owned()
                })
                .collect();
            (got.is_superset(&inbound_ids)).then_some(by_id.len())
        },
    )
    .await;
    let accepted = rx.accepted();
    eprintln!(
        "crash test: {delivered} distinct events delivered, {} deliveries in all",
        accepted.len()
    );

    // Redelivered after a kill: same webhook-id (and body, checked above). In order:
    // per conversation, first arrivals have rising seqs, and the arrivals form at most
    // one rising run per daemon life (a restart replays from its oldest uncommitted).
    let mut seen: BTreeSet<String> = BTreeSet::new();
    let mut repeats = 0;
    let mut first_seqs: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    let mut runs: BTreeMap<String, (u64, usize)> = BTreeMap::new();
    for r in &accepted {
        let e = r.json();
        let conv = e["data"]["message"]["conversation_id"]
            .as_str()
            .unwrap()
            .to_owned();
        let seq = e["seq"].as_u64().unwrap();
        assert_eq!(r.header("webhook-id"), format!("evt_{seq}"));
        if seen.insert(r.header("webhook-id").to_owned()) {
            first_seqs.entry(conv.clone()).or_default().push(seq);
        } else {
            repeats += 1;
        }
        let (last, breaks) = runs.entry(conv).or_insert((0, 0));
        if seq <= *last {
            *breaks += 1;
        }
        *last = seq;
    }
    for (conv, seqs) in &first_seqs {
        assert!(
            seqs.windows(2).all(|w| w[0] < w[1]),
            "conversation {conv}: first arrivals out of order: {seqs:?}"
        );
    }
    for (conv, (_, breaks)) in &runs {
        assert!(
            *breaks <= kills,
            "conversation {conv}: {breaks} replays for {kills} kills"
        );
    }
    eprintln!("crash test: {repeats} deliveries made again after a kill");
    assert!(
        repeats > 0,
        "some kill landed between a 2xx and the commit of its result"
    );

    // Every reply posted before the kills reached Twilio at least once, and is sent.
    for (id, text) in &replies {
        wait_status(api, id, "sent").await;
        let sends = twilio
            .requests()
            .iter()
            .filter(|s| s.field("Body") == Some(text.as_str()) && s.answered == 201)
            .count();
        assert!(sends >= 1, "reply {text:?} never reached Twilio");
    }
    h.finish();
    rx.stop().await;
    twilio.stop().await;
}
