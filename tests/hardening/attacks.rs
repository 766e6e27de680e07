//! Items 1 and 3 of issue 14: unauthenticated hook bodies, forged-but-well-formed
//! signatures, cleartext HTTP/2, slowloris and idle sockets, and the connection caps —
//! each against the real binary, with its memory and `/healthz` measured meanwhile.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::task::JoinSet;

use super::kit::*;
use crate::common::*;

const MIB: usize = 1024 * 1024;

/// An attacking connection reset before an answer could be read.
const RESET: &str = "reset";
/// One closed without an answer.
const EOF: &str = "eof";
/// One still open when the attack ended.
const OPEN: &str = "open";

/// What each attacking connection does after its request head.
#[derive(Clone, Copy)]
enum Body {
    /// Sends `chunk` bytes every `every` until the server answers or closes.
    Trickle { chunk: usize, every: Duration },
    /// Sends as fast as the server takes it.
    Flood,
}

/// Opens `n` connections spread over source addresses 127.0.0.2-9, each sending `head`
/// then a body of `len` bytes as `body` says; returns the first line each got back
/// ([`RESET`], [`EOF`] or [`OPEN`] when none) once all are done or `limit` passed.
async fn attack(
    addr: SocketAddr,
    n: usize,
    head: String,
    len: usize,
    body: Body,
    limit: Duration,
) -> Vec<String> {
    let chunk = vec![b'a'; 64 * 1024];
    let chunk: &'static [u8] = chunk.leak();
    let mut tasks = JoinSet::new();
    for i in 0..n {
        let head = head.clone();
        tasks.spawn(async move {
            let mut s = connect_from(peer(2 + (i % 8) as u8), addr, None).await;
            if s.write_all(head.as_bytes()).await.is_err() {
                return RESET.to_owned();
            }
            let (mut rd, mut wr) = s.into_split();
            let writer = async move {
                let mut sent = 0;
                while sent < len {
                    let n = match body {
                        Body::Trickle { chunk, .. } => chunk,
                        Body::Flood => 64 * 1024,
                    }
                    .min(len - sent);
                    if wr.write_all(&chunk[..n]).await.is_err() {
                        return;
                    }
                    sent += n;
                    if let Body::Trickle { every, .. } = body {
                        tokio::time::sleep(every).await;
                    }
                }
                // Keep the write half open: the answer comes on the read half.
                std::future::pending::<()>().await;
            };
            let reader = async move {
                let mut out = Vec::new();
                let mut buf = [0u8; 256];
                loop {
                    match tokio::io::AsyncReadExt::read(&mut rd, &mut buf).await {
                        Ok(n) if n > 0 => {
                            out.extend_from_slice(&buf[..n]);
                            if out.contains(&b'\n') {
                                break;
                            }
                        }
                        // Closed with our body unread, the kernel resets the connection
                        // and may drop the answer before we read it.
                        Err(_) if out.is_empty() => return RESET.to_owned(),
                        _ => break,
                    }
                }
                let text = String::from_utf8_lossy(&out).into_owned();
                text.lines().next().unwrap_or(EOF).trim().to_owned()
            };
            tokio::select! {
                line = reader => line,
                _ = writer => RESET.to_owned(),
            }
        });
    }
    let mut lines = Vec::new();
    let deadline = tokio::time::Instant::now() + limit;
    while let Ok(Some(r)) = tokio::time::timeout_at(deadline, tasks.join_next()).await {
        lines.push(r.unwrap_or_default());
    }
    tasks.abort_all();
    while lines.len() < n {
        lines.push(OPEN.to_owned());
    }
    lines
}

/// "401 Unauthorized: 700, reset: 300" — how the connections ended.
fn outcomes(lines: &[String]) -> String {
    let mut by: std::collections::BTreeMap<&str, usize> = Default::default();
    for l in lines {
        *by.entry(l.strip_prefix("HTTP/1.1 ").unwrap_or(l))
            .or_default() += 1;
    }
    by.iter()
        .map(|(k, v)| format!("{k}: {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// How many of `lines` start with `status` (`"HTTP/1.1 401"`).
fn count(lines: &[String], status: &str) -> usize {
    lines.iter().filter(|l| l.starts_with(status)).count()
}

/// The attack: 1,000 connections each trickling ~1 MiB to a Smooch hook
/// without `X-API-Key` took RSS from 15.7 to 1,057 MiB. Now each is answered 401 from
/// its head, before a byte of the body is read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hook_bodies_without_credentials_cost_no_memory() {
    let _alone = one_attack_at_a_time().await;
    raise_nofile();
    let h = Harness::start(|dir| hooks_config(dir, "max_connections_per_peer = 5000"));
    let d = &h.daemon;
    let (base_rss, _) = rss_mib(d.pid());
    let n = 1000;
    let (trickle, limit) = (Duration::from_millis(100), Duration::from_secs(20));
    let duration = Duration::from_secs(if full() { 30 } else { 3 });
    let rss = RssSampler::start(d.pid());
    let probes = Prober::start(d.addr);
    let started = Instant::now();
    let head = format!(
        "POST /hooks/sun HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {MIB}\r\n\r\n"
    );
    // Refused at once, the attacker comes back: round after round of 1,000 for a while.
    let mut lines = Vec::new();
    let mut slowest = Duration::ZERO;
    while started.elapsed() < duration {
        let round = Instant::now();
        lines.extend(
            attack(
                d.addr,
                n,
                head.clone(),
                MIB,
                Body::Trickle {
                    chunk: 16 * 1024,
                    every: trickle,
                },
                limit,
            )
            .await,
        );
        slowest = slowest.max(round.elapsed());
    }
    let took = started.elapsed();
    let probes = probes.finish().await;
    let peak = rss.finish().await;
    let (_, hwm) = rss_mib(d.pid());
    println!(
        "smooch without X-API-Key, rounds of {n} connections for {took:?} (slowest round {slowest:?}): {}; RSS {base_rss:.1} -> peak {peak:.1} MiB (VmHWM {hwm:.1}); /healthz {}",
        outcomes(&lines),
        probes.summary()
    );
    let refused = count(&lines, "HTTP/1.1 401") + count(&lines, RESET);
    assert_eq!(
        refused,
        lines.len(),
        "every connection refused: {}",
        outcomes(&lines)
    );
    assert!(
        slowest < Duration::from_secs(5),
        "each round refused at once, not after its bodies: {slowest:?}"
    );
    assert!(hwm < 100.0, "peak RSS {hwm:.1} MiB");
    assert_eq!(probes.failed, 0, "{}", probes.summary());
    h.finish();
}

/// A forged but well-formed `X-Twilio-Signature` passes the head check, so its body is
/// read — within `server.max_body_in_flight` across all requests. The rest wait for room
/// (503 once `body_read_timeout` passes) without being read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_signatures_are_read_within_the_body_budget() {
    let _alone = one_attack_at_a_time().await;
    raise_nofile();
    let h = Harness::start(|dir| {
        hooks_config(
            dir,
            "max_connections_per_peer = 5000\nbody_read_timeout = \"3s\"",
        )
    });
    let d = &h.daemon;
    let (base_rss, _) = rss_mib(d.pid());
    let n = 1000;
    let rss = RssSampler::start(d.pid());
    let probes = Prober::start(d.addr);
    let started = Instant::now();
    let head = format!(
        "POST /hooks/sms HTTP/1.1\r\nhost: x\r\ncontent-type: application/x-www-form-urlencoded\r\n\
         x-twilio-signature: AAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\ncontent-length: {MIB}\r\n\r\nBody="
    );
    let limit = if full() { 120 } else { 30 };
    let lines = attack(
        d.addr,
        n,
        head,
        MIB - 5,
        Body::Flood,
        Duration::from_secs(limit),
    )
    .await;
    let took = started.elapsed();
    let probes = probes.finish().await;
    let peak = rss.finish().await;
    let (_, hwm) = rss_mib(d.pid());
    let (unauthorized, busy) = (count(&lines, "HTTP/1.1 401"), count(&lines, "HTTP/1.1 503"));
    println!(
        "twilio with a forged signature, {n} connections x 1 MiB: {} in {took:?}; RSS {base_rss:.1} -> peak {peak:.1} MiB (VmHWM {hwm:.1}); /healthz {}",
        outcomes(&lines),
        probes.summary()
    );
    assert_eq!(
        unauthorized + busy + count(&lines, "HTTP/1.1 408") + count(&lines, RESET),
        n,
        "each read and refused, or refused unread: {}",
        outcomes(&lines)
    );
    assert!(
        unauthorized > 0,
        "some bodies were read and their signature checked"
    );
    assert!(hwm < 100.0, "peak RSS {hwm:.1} MiB");
    assert_eq!(probes.failed, 0, "{}", probes.summary());
    let (_, messages) = h.api.get("/v1/conversations").await;
    assert_eq!(messages["data"], serde_json::json!([]), "nothing stored");
    h.finish();
}

/// `axum::serve` answered an HTTP/2 preface with HTTP/2 (5 connections x 200 streams
/// did what 1,000 connections did). HTTP/1.1 alone is served now.
#[tokio::test]
async fn cleartext_http2_is_not_spoken() {
    let h = Harness::start(|dir| hooks_config(dir, ""));
    let d = &h.daemon;
    let mut s = tokio::net::TcpStream::connect(d.addr).await.unwrap();
    // The client preface and an empty SETTINGS frame (RFC 9113, 3.4).
    s.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        .await
        .unwrap();
    let answer = answer(&mut s, Duration::from_secs(5)).await;
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 "),
        "no HTTP/2 frame comes back: {:?}",
        answer.as_bytes().get(..16)
    );
    assert!(
        closed_within(&mut s, Duration::from_secs(5)).await,
        "and the connection is closed"
    );
    h.finish();
}

/// 500 slowloris sockets were still open after 45 s and 2,000 idle ones never closed.
/// With `header_read_timeout`, both are closed once it passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_headers_and_idle_sockets_are_closed() {
    let _alone = one_attack_at_a_time().await;
    raise_nofile();
    let h = Harness::start(|dir| {
        hooks_config(
            dir,
            "max_connections_per_peer = 5000\nheader_read_timeout = \"1s\"",
        )
    });
    let d = &h.daemon;
    let (slow, idle) = (500, 2000);
    let probes = Prober::start(d.addr);
    let mut tasks = JoinSet::new();
    let opened = Instant::now();
    for i in 0..slow + idle {
        let addr = d.addr;
        tasks.spawn(async move {
            let mut s = connect_from(peer(2 + (i % 8) as u8), addr, None).await;
            let started = Instant::now();
            if i < slow {
                // One byte of the head every 200 ms: never complete.
                let head = b"POST /hooks/sun HTTP/1.1\r\nhost: x\r\nx-padding: ";
                for b in head.iter().chain(std::iter::repeat(&b'a')) {
                    if s.write_all(&[*b]).await.is_err()
                        || closed_within(&mut s, Duration::from_millis(200)).await
                    {
                        return started.elapsed();
                    }
                    if started.elapsed() > Duration::from_secs(15) {
                        eprintln!("slow {i} never closed");
                        return Duration::MAX;
                    }
                }
            }
            if closed_within(&mut s, Duration::from_secs(15)).await {
                started.elapsed()
            } else {
                eprintln!("idle {i} never closed");
                Duration::MAX
            }
        });
    }
    let mut lived = Vec::new();
    while let Some(r) = tasks.join_next().await {
        lived.push(r.unwrap());
    }
    let all_closed = opened.elapsed();
    let probes = probes.finish().await;
    lived.sort();
    println!(
        "{slow} slowloris + {idle} idle sockets, header_read_timeout 1s: closed after {:?}..{:?}, all within {all_closed:?}; /healthz {}",
        lived[0],
        lived[lived.len() - 1],
        probes.summary()
    );
    assert!(
        lived.iter().all(|l| *l < Duration::from_secs(5)),
        "every socket closed within 5 s: the slowest lived {:?}",
        lived[lived.len() - 1]
    );
    assert!(
        lived[0] >= Duration::from_millis(500),
        "not long before the timeout (it runs from the server's first look at the socket)"
    );
    assert_eq!(probes.failed, 0, "{}", probes.summary());
    let metrics = get_text(d.url("/metrics")).await;
    let open = metric(&metrics, "switchboard_http_connections").unwrap();
    assert!(
        open <= 2.0,
        "the open-connection gauge is back down: {open}"
    );
    h.finish();
}

/// Connections beyond `max_connections_per_peer` from one address, and beyond
/// `max_connections` in total, get a 503 and are closed; each limit's refusals are
/// counted and logged (once, not once per connection); `/metrics` shows the open ones.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_the_caps_are_refused_counted_and_logged() {
    let h = Harness::start(|dir| {
        hooks_config(dir, "max_connections = 60\nmax_connections_per_peer = 20")
    });
    let d = &h.daemon;
    let mut held = Vec::new();
    for _ in 0..20 {
        held.push(connect_from(peer(2), d.addr, None).await);
    }
    // Accepted ones stay open; the 21st from 127.0.0.2 is refused.
    for _ in 0..5 {
        let mut s = connect_from(peer(2), d.addr, None).await;
        let got = answer(&mut s, Duration::from_secs(5)).await;
        assert!(got.starts_with("HTTP/1.1 503"), "{got:?}");
        assert!(got.contains("too many connections"), "{got:?}");
    }
    for p in 3..5 {
        for _ in 0..20 {
            held.push(connect_from(peer(p), d.addr, None).await);
        }
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let metrics = |d: &Daemon| get_text(d.url("/metrics"));
    // 60 are open: the scrape itself is refused. Free one for it.
    let mut s = connect_from(peer(5), d.addr, None).await;
    assert!(
        answer(&mut s, Duration::from_secs(5))
            .await
            .starts_with("HTTP/1.1 503")
    );
    held.pop();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let text = metrics(d).await;
    assert_eq!(
        metric(&text, "switchboard_http_connections"),
        Some(60.0),
        "59 held and the scrape's own"
    );
    assert_eq!(
        metric(
            &text,
            "switchboard_http_connections_refused_total{limit=\"max_connections_per_peer\"}"
        ),
        Some(5.0)
    );
    assert_eq!(
        metric(
            &text,
            "switchboard_http_connections_refused_total{limit=\"max_connections\"}"
        ),
        Some(1.0)
    );
    let logs = d.log_text();
    assert_eq!(
        logs.matches("refusing connections: server.max_connections_per_peer")
            .count(),
        1,
        "rate-limited: one line for five refusals\n{logs}"
    );
    assert!(logs.contains("refusing connections: server.max_connections are open"));
    drop(held);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let text = metrics(d).await;
    assert_eq!(metric(&text, "switchboard_http_connections"), Some(1.0));
    h.finish();
}

/// A `server.max_connections` the open-file limit cannot hold stops the start, named;
/// without it the cap follows the limit.
#[test]
fn a_connection_cap_beyond_the_fd_limit_fails_the_start() {
    use std::os::unix::process::CommandExt;
    let dir = tempfile::tempdir().unwrap();
    let config = hooks_config(dir.path(), "max_connections = 1000");
    let path = dir.path().join("switchboard.toml");
    std::fs::write(&path, config).unwrap();
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_switchboard"));
    cmd.arg("run").arg("--config").arg(&path);
    // SAFETY: setrlimit is async-signal-safe; it only lowers the child's own limit.
    unsafe {
        cmd.pre_exec(|| {
            let lim = libc::rlimit {
                rlim_cur: 512,
                rlim_max: 512,
            };
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
            Ok(())
        });
    }
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("server.max_connections: 1000 leaves too few of the 512 open files"),
        "{stderr}"
    );
}
