//! Item 4 of issue 14: `/v1/events` clients that never read. 200 of them took RSS from
//! 37 to 361 MiB (~56 MiB each with 512 KiB messages: a whole page). Now a client holds
//! a page of at most 256 KiB plus one frame, and one that takes nothing for
//! `events_stall_timeout` is closed, told (if it reads again) where to resume.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message as Ws;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use super::kit::*;
use crate::common::*;

const STALL: Duration = Duration::from_secs(2);

fn config(dir: &std::path::Path) -> String {
    base_config(dir).replace(
        "shutdown_timeout = \"5s\"",
        "shutdown_timeout = \"5s\"\nevents_stall_timeout = \"2s\"\nwrite_timeout = \"4s\"\nmax_connections_per_peer = 1000",
    ) + &api_service("")
}

/// Stores `n` messages of `size` bytes of text; the last event's seq.
async fn fill(api: &Api, n: usize, size: usize) -> i64 {
    let text = "x".repeat(size);
    for i in 0..n {
        let (s, m) = api
            .post(
                "/v1/services/api/messages",
                &json!({"external_id": format!("big-{i}"), "contact": {"external_id": format!("c-{}", i % 4)}, "text": text}),
            )
            .await;
        assert_eq!(s, 201, "{m}");
    }
    let (s, _) = api.get("/v1/conversations").await;
    assert_eq!(s, 200);
    // The head: the stream without `after` starts there; one more event marks it.
    let url = format!(
        "ws://{}/v1/events?access_token={TOKEN}",
        api.base.trim_start_matches("http://")
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    api.inbound("marker", "c-marker", "marker").await;
    let mut last = 0;
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(Some(Ok(Ws::Text(t)))) =
            tokio::time::timeout(Duration::from_millis(500), ws.next()).await
        {
            let v: serde_json::Value = serde_json::from_str(&t).unwrap();
            last = last.max(v["seq"].as_i64().unwrap_or(0));
            if v["type"] == "message.created" && v["data"]["message"]["external_id"] == "marker" {
                break;
            }
        }
    }
    assert!(last > 0, "the marker's events arrived");
    last
}

/// A websocket to `/v1/events?after=0` from `from`, with a tiny receive buffer, that is
/// never read.
async fn stuck_client(
    addr: std::net::SocketAddr,
    from: u8,
) -> tokio_tungstenite::WebSocketStream<tokio::net::TcpStream> {
    let tcp = connect_from(peer(from), addr, Some(4096)).await;
    let url = format!("ws://{addr}/v1/events?after=0&access_token={READ_TOKEN}");
    let (ws, _) = tokio_tungstenite::client_async(url, tcp).await.unwrap();
    ws
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_that_never_read_hold_a_bounded_page_and_are_closed() {
    let _alone = one_attack_at_a_time().await;
    raise_nofile();
    let h = Harness::start(config);
    let d = &h.daemon;
    let api = &h.api;
    let (clients, messages, size) = if full() {
        (200, 120, 512 * 1024)
    } else {
        (20, 60, 256 * 1024)
    };
    let last = fill(api, messages, size).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (before, _) = rss_mib(d.pid());
    let gauge = || async {
        metric(
            &get_text(d.url("/metrics")).await,
            "switchboard_http_connections",
        )
        .unwrap()
    };
    // The scrape's own connection, and any the API client keeps alive.
    let base = gauge().await;
    let rss = RssSampler::start(d.pid());
    let probes = Prober::start(d.addr);
    let mut stuck = Vec::new();
    for i in 0..clients {
        stuck.push(stuck_client(d.addr, 2 + (i % 8) as u8).await);
    }
    let connected = Instant::now();
    // Every client has stalled by now (its buffers filled at once), and none was closed.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (during, _) = rss_mib(d.pid());
    let open = gauge().await;
    // Then the stall timeout closes them; the connection gauge says so.
    let closed = eventually(
        Duration::from_secs(15),
        "the stalled clients to be closed",
        || async { (gauge().await <= base).then(|| connected.elapsed()) },
    )
    .await;
    let peak = rss.finish().await;
    let probes = probes.finish().await;
    println!(
        "{clients} clients never reading {messages} events of {} KiB (last seq {last}): RSS {before:.1} -> {during:.1} MiB while stalled, peak {peak:.1}; closed {closed:?} after the last connected; /healthz {}",
        size / 1024,
        probes.summary()
    );
    assert_eq!(
        open,
        base + clients as f64,
        "all held while stalled, and counted"
    );
    // A whole page each would be clients × messages × size (300 MiB here).
    let bound = clients as f64 * 1.5 + 20.0;
    assert!(
        peak - before < bound,
        "grew {:.1} MiB, more than {bound:.1}",
        peak - before
    );
    assert!(
        closed < STALL + Duration::from_secs(6),
        "closed {closed:?} after the last connected"
    );
    assert_eq!(probes.failed, 0, "{}", probes.summary());
    drop(stuck);
    h.finish();
}

/// A client that stops reading past the stall timeout, then reads again, finds a close
/// frame (1008) naming the `after=` to resume from; resuming there loses and repeats
/// nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_client_is_told_where_to_resume() {
    let h = Harness::start(config);
    let d = &h.daemon;
    let api = &h.api;
    let last = fill(api, 40, 256 * 1024).await;

    let mut ws = stuck_client(d.addr, 2).await;
    tokio::time::sleep(STALL + Duration::from_millis(700)).await;
    let mut seqs = Vec::new();
    let close = loop {
        match tokio::time::timeout(Duration::from_secs(10), ws.next()).await {
            Ok(Some(Ok(Ws::Text(t)))) => {
                let v: serde_json::Value = serde_json::from_str(&t).unwrap();
                seqs.push(v["seq"].as_i64().unwrap());
            }
            Ok(Some(Ok(Ws::Close(frame)))) => break frame,
            Ok(Some(Ok(_))) => {}
            other => panic!(
                "expected a close frame after {} events: {other:?}",
                seqs.len()
            ),
        }
    };
    let close = close.expect("a close frame with a reason");
    assert_eq!(close.code, CloseCode::Policy, "{close:?}");
    let after: i64 = close
        .reason
        .split("after=")
        .nth(1)
        .and_then(|r| r.parse().ok())
        .unwrap_or_else(|| panic!("the reason names after=: {:?}", close.reason));
    assert!(
        close.reason.starts_with("too slow: no frame taken for 2s"),
        "{}",
        close.reason
    );
    assert_eq!(Some(&after), seqs.last(), "after= is the last event it got");
    assert!(after < last, "it was stopped short: {after} of {last}");

    let rest = read_events(d, READ_TOKEN, after, usize::MAX, Duration::from_secs(3)).await;
    seqs.extend(rest.iter().map(|e| e["seq"].as_i64().unwrap()));
    seqs.retain(|s| *s <= last);
    let expected: Vec<i64> = (1..=last).collect();
    assert_eq!(seqs, expected, "every event once, in order");
    assert!(
        d.log_text()
            .contains("closing an event stream whose client stopped reading")
    );
    h.finish();
}
