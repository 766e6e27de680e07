//! Benchmark (ignored by default): XMPP → webhook relay. Visitors on a real Prosody send
//! chat messages; the daemon ingests them and pushes signed `message.created` webhooks to
//! a fake receiver, which timestamps each. Reports p50/p99 latency (visitor send →
//! webhook received) at a paced rate, and throughput for a burst.
//!
//! ```text
//! cargo test --release --test smartsupp_bench -- --ignored --nocapture
//! ```
//! Knobs: `BENCH_VISITORS` (8), `BENCH_PACED` (2000 messages), `BENCH_RATE` (200/s),
//! `BENCH_BURST` (8000 messages).
#![cfg(all(feature = "smartsupp", feature = "api", feature = "webhook"))]

mod common;
#[path = "fakes/smartsupp/prosody.rs"]
mod prosody;
#[path = "fakes/smartsupp/visitor.rs"]
mod visitor;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::HeaderMap;
use common::*;
use prosody::{Prosody, Security};
use visitor::Visitor;

fn knob(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

type Arrivals = Arc<Mutex<Vec<(Instant, Received)>>>;

/// A webhook receiver that timestamps each request on arrival and answers 200.
async fn receiver() -> (FakeServer, Arrivals) {
    let got: Arrivals = Default::default();
    let sink = got.clone();
    let app = axum::Router::new().fallback(move |headers: HeaderMap, body: Bytes| {
        let sink = sink.clone();
        async move {
            let at = Instant::now();
            sink.lock().unwrap().push((
                at,
                Received {
                    path: "/events".into(),
                    headers,
                    body,
                },
            ));
            axum::http::StatusCode::OK
        }
    });
    (FakeServer::spawn(app).await, got)
}

/// Arrival time per message text, checking every signature.
fn arrivals_by_text(got: &Arrivals) -> HashMap<String, Instant> {
    got.lock()
        .unwrap()
        .iter()
        .filter_map(|(at, r)| {
            let v = r.json();
            (v["type"] == "message.created").then(|| {
                assert!(verify_standard_webhook(WEBHOOK_SECRET, r), "bad signature");
                (
                    v["data"]["message"]["text"].as_str().unwrap().to_owned(),
                    *at,
                )
            })
        })
        .collect()
}

async fn wait_all(got: &Arrivals, texts: &[String], limit: Duration) -> HashMap<String, Instant> {
    let deadline = Instant::now() + limit;
    loop {
        let by_text = arrivals_by_text(got);
        if texts.iter().all(|t| by_text.contains_key(t)) {
            return by_text;
        }
        assert!(
            Instant::now() < deadline,
            "only {} of {} webhooks arrived within {limit:?}",
            texts.iter().filter(|t| by_text.contains_key(*t)).count(),
            texts.len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Inbound messages of the `chat` service stored so far (from /metrics).
async fn stored(api: &Api) -> usize {
    let text = api
        .http
        .get(format!("{}/metrics", api.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter(|l| l.starts_with("switchboard_messages_total{"))
        .filter(|l| l.contains("service=\"chat\"") && l.contains("direction=\"inbound\""))
        .filter(|l| l.contains("outcome=\"stored\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .map(|v| v as usize)
        .sum()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

#[tokio::test]
#[ignore = "benchmark: cargo test --release --test smartsupp_bench -- --ignored --nocapture"]
async fn xmpp_to_webhook_relay() {
    let visitors_n = knob("BENCH_VISITORS", 8);
    let paced = knob("BENCH_PACED", 2_000);
    let rate = knob("BENCH_RATE", 200);
    let burst = knob("BENCH_BURST", 8_000);

    let names: Vec<String> = (0..visitors_n).map(|i| format!("visitor{i}")).collect();
    let mut users: Vec<(&str, &str)> = vec![("agent", "agent-secret-1")];
    users.extend(names.iter().map(|n| (n.as_str(), "visitor-secret")));
    let xmpp = Prosody::start(Security::Plain, &users, "warn");
    let (rx, got) = receiver().await;
    let url = rx.url("/events");
    let h = Harness::start(|dir| {
        base_config(dir).replace("info,switchboard=debug", "info")
            + &api_service("")
            + &webhook_service(&url, "events = [\"message.created\"]")
            + &format!(
                "\n[services.chat]\ntype = \"smartsupp\"\n[services.chat.params]\njid = \"agent@localhost\"\npassword = \"agent-secret-1\"\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\n",
                xmpp.port
            )
    });
    let api = &h.api;
    eventually(Duration::from_secs(20), "connected", || async {
        let (_, s) = api.get("/v1/services").await;
        s["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["id"] == "chat" && s["state"]["kind"] == "connected")
            .then_some(())
    })
    .await;
    let mut visitors = Vec::new();
    for n in &names {
        visitors.push(Visitor::connect(xmpp.port, n, "visitor-secret").await);
    }
    // Warm up: open every conversation.
    let warm: Vec<String> = names.iter().map(|n| format!("warm-up {n}")).collect();
    for (v, t) in visitors.iter().zip(&warm) {
        v.say("agent@localhost", t, t).await;
    }
    wait_all(&got, &warm, Duration::from_secs(20)).await;

    // Latency at a paced rate, round-robin over the visitors.
    let interval = Duration::from_secs_f64(1.0 / rate as f64);
    let mut sent_at: Vec<(String, Instant)> = Vec::with_capacity(paced);
    let mut tick = tokio::time::interval(interval);
    for i in 0..paced {
        tick.tick().await;
        let text = format!("paced {i}");
        let v = &visitors[i % visitors.len()];
        let at = Instant::now();
        v.say("agent@localhost", &format!("p{i}"), &text).await;
        sent_at.push((text, at));
    }
    let texts: Vec<String> = sent_at.iter().map(|(t, _)| t.clone()).collect();
    let arrived = wait_all(&got, &texts, Duration::from_secs(120)).await;
    let mut lat: Vec<Duration> = sent_at
        .iter()
        .map(|(t, at)| arrived[t].duration_since(*at))
        .collect();
    lat.sort();
    eprintln!(
        "paced: {paced} messages at {rate}/s over {visitors_n} visitors: p50 {:?}, p99 {:?}, max {:?}",
        percentile(&lat, 0.50),
        percentile(&lat, 0.99),
        lat.last().unwrap()
    );

    // Throughput: everything at once.
    let per = burst / visitors.len();
    let started = Instant::now();
    let mut texts = Vec::with_capacity(burst);
    for (vi, v) in visitors.iter().enumerate() {
        let msgs: Vec<(String, String)> = (0..per)
            .map(|i| (format!("b{vi}-{i}"), format!("burst {vi}-{i}")))
            .collect();
        texts.extend(msgs.iter().map(|(_, t)| t.clone()));
        for chunk in msgs.chunks(200) {
            v.send_many("agent@localhost", chunk).await;
        }
    }
    let all_stored = eventually(Duration::from_secs(300), "the burst stored", || async {
        (stored(api).await >= warm.len() + paced + texts.len()).then(Instant::now)
    })
    .await;
    let arrived = wait_all(&got, &texts, Duration::from_secs(300)).await;
    let last = texts.iter().map(|t| arrived[t]).max().unwrap();
    let ingest = all_stored.duration_since(started);
    eprintln!(
        "burst: {} messages from {visitors_n} visitors stored in {ingest:?}: {:.0} messages/s",
        texts.len(),
        texts.len() as f64 / ingest.as_secs_f64()
    );
    let took = last.duration_since(started);
    let mut lat: Vec<Duration> = texts
        .iter()
        .map(|t| arrived[t].duration_since(started))
        .collect();
    lat.sort();
    eprintln!(
        "burst: {} messages from {visitors_n} visitors relayed to the webhook in {took:?}: {:.0} messages/s (p50 arrival {:?})",
        texts.len(),
        texts.len() as f64 / took.as_secs_f64(),
        percentile(&lat, 0.50)
    );

    for v in visitors {
        v.close().await;
    }
    h.finish();
    rx.stop().await;
}
