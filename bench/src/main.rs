//! `sb-bench`: measures a release `switchboard` from the outside, over loopback, on a
//! fresh temporary database with durable commits (`synchronous = "full"`).
//!
//! ```text
//! cargo build --release -p switchboard -p switchboard-bench
//! $CARGO_TARGET_DIR/release/sb-bench ingest [--secs 10] [--clients 64] [--rate 2000] [--webhook]
//! ```
//!
//! `ingest` runs two phases against `POST /v1/services/{id}/messages`:
//! - closed loop: `--clients` concurrent clients, each posting its next message as soon
//!   as the previous one was acknowledged → acknowledged messages per second;
//! - open loop: messages sent at a fixed `--rate`, each latency measured from the
//!   moment it was *scheduled* (so a stall counts against every message it delays) →
//!   p50/p99/p999 acknowledgement latency.
//!
//! With `--webhook`, a `webhook` service subscribed to every event is configured too
//! (its target is a local sink), so every ingest also enqueues three or four deliveries.
//! The load generator runs on the same machine as the daemon and competes for its cores.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

const TOKEN: &str = "bench-token-0123456789abcdef";

struct Options {
    secs: u64,
    clients: usize,
    rate: u64,
    webhook: bool,
}

fn parse_args() -> anyhow::Result<(String, Options)> {
    let mut args = std::env::args().skip(1);
    let cmd = args.next().unwrap_or_else(|| "ingest".into());
    let mut o = Options {
        secs: 10,
        clients: 64,
        rate: 2000,
        webhook: false,
    };
    while let Some(a) = args.next() {
        let mut val = || args.next().context("missing value");
        match a.as_str() {
            "--secs" => o.secs = val()?.parse()?,
            "--clients" => o.clients = val()?.parse()?,
            "--rate" => o.rate = val()?.parse()?,
            "--webhook" => o.webhook = true,
            other => bail!("unknown argument {other:?}"),
        }
    }
    Ok((cmd, o))
}

/// A daemon started for the measurement; killed on drop.
struct Daemon {
    child: Child,
    base: String,
    _dir: TempDir,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Daemon {
    fn rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
        line.split_whitespace().nth(1)?.parse().ok()
    }
}

/// A temporary directory removed on drop (no extra dependency for one directory).
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn daemon_binary() -> anyhow::Result<PathBuf> {
    if let Ok(p) = std::env::var("SWITCHBOARD_BIN") {
        return Ok(p.into());
    }
    let me = std::env::current_exe()?;
    let bin = me.with_file_name("switchboard");
    if !bin.exists() {
        bail!(
            "{} not found: build it with `cargo build --release -p switchboard` or set SWITCHBOARD_BIN",
            bin.display()
        );
    }
    Ok(bin)
}

fn start_daemon(webhook_url: Option<&str>) -> anyhow::Result<Daemon> {
    let dir = std::env::temp_dir().join(format!("sb-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let dir = TempDir(dir);
    let mut config = format!(
        r#"
[server]
listen = "127.0.0.1:0"
[storage]
url = "sqlite://{}/bench.db"
synchronous = "full"
[log]
level = "warn,switchboard::daemon=info"
[services.bench]
type = "api"
[services.bench.params.tokens.bench]
token = "{TOKEN}"
scopes = ["read", "reply", "ingest"]
"#,
        dir.0.display()
    );
    if let Some(url) = webhook_url {
        config += &format!(
            "[services.sink]\ntype = \"webhook\"\n[services.sink.params]\nurl = \"{url}\"\nsecret = \"whsec_YmVuY2gtd2ViaG9vay1zZWNyZXQtMTIzNA==\"\n"
        );
    }
    let path = dir.0.join("switchboard.toml");
    std::fs::write(&path, config)?;
    let mut child = Command::new(daemon_binary()?)
        .args(["run", "--config"])
        .arg(&path)
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting switchboard")?;
    let stderr = child.stderr.take().context("stderr")?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(rest) = line.split("listen=").nth(1) {
                let _ = tx.send(
                    rest.split_whitespace()
                        .next()
                        .unwrap_or_default()
                        .to_owned(),
                );
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(30))
        .context("switchboard did not report its address")?;
    Ok(Daemon {
        child,
        base: format!("http://{addr}"),
        _dir: dir,
    })
}

fn body(n: u64) -> String {
    format!(
        r#"{{"external_id":"m-{n}","contact":{{"external_id":"c-{}","name":"Contact {}"}},"text":"Hello, this is message {n} of the benchmark."}}"#,
        n % 1000,
        n % 1000
    )
}

async fn post(client: &reqwest::Client, url: &str, n: u64) -> anyhow::Result<()> {
    let resp = client
        .post(url)
        .bearer_auth(TOKEN)
        .header("content-type", "application/json")
        .body(body(n))
        .send()
        .await?;
    if resp.status().as_u16() != 201 {
        bail!("unexpected status {}", resp.status());
    }
    Ok(())
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}

/// Closed loop: `clients` workers for `secs`; returns (acknowledged, elapsed, errors).
async fn closed_loop(
    url: &str,
    clients: usize,
    secs: u64,
    next: Arc<AtomicU64>,
) -> (u64, Duration, u64) {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(clients)
        .build()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(secs);
    let ok = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (client, url, ok, errors, next) = (
            client.clone(),
            url.to_owned(),
            ok.clone(),
            errors.clone(),
            next.clone(),
        );
        tasks.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                let n = next.fetch_add(1, Ordering::Relaxed);
                match post(&client, &url, n).await {
                    Ok(()) => ok.fetch_add(1, Ordering::Relaxed),
                    Err(_) => errors.fetch_add(1, Ordering::Relaxed),
                };
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    (
        ok.load(Ordering::Relaxed),
        started.elapsed(),
        errors.load(Ordering::Relaxed),
    )
}

/// Open loop at `rate`/s for `secs`; latencies measured from each scheduled send time.
async fn open_loop(url: &str, rate: u64, secs: u64, next: Arc<AtomicU64>) -> (Vec<Duration>, u64) {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()
        .unwrap();
    let total = rate * secs;
    let interval = Duration::from_secs_f64(1.0 / rate as f64);
    let start = tokio::time::Instant::now();
    let mut tasks = Vec::with_capacity(total as usize);
    for i in 0..total {
        let scheduled = start + interval.mul_f64(i as f64);
        tokio::time::sleep_until(scheduled).await;
        let (client, url) = (client.clone(), url.to_owned());
        let n = next.fetch_add(1, Ordering::Relaxed);
        tasks.push(tokio::spawn(async move {
            let r = post(&client, &url, n).await;
            (r.is_ok(), scheduled.elapsed())
        }));
    }
    let mut lat = Vec::with_capacity(tasks.len());
    let mut errors = 0;
    for t in tasks {
        match t.await {
            Ok((true, d)) => lat.push(d),
            _ => errors += 1,
        }
    }
    lat.sort();
    (lat, errors)
}

/// A sink for webhook deliveries: answers 200 to anything.
async fn sink() -> anyhow::Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                let mut pending = Vec::new();
                loop {
                    let n = match sock.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    };
                    pending.extend_from_slice(&buf[..n]);
                    // One response per complete request (headers + content-length body).
                    while let Some(end) = find(&pending, b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&pending[..end]).to_ascii_lowercase();
                        let len: usize = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse().ok())
                            .unwrap_or(0);
                        if pending.len() < end + 4 + len {
                            break;
                        }
                        pending.drain(..end + 4 + len);
                        if sock
                            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                            .await
                            .is_err()
                        {
                            return;
                        }
                    }
                }
            });
        }
    });
    Ok(format!("http://{addr}/events"))
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

async fn ingest(o: &Options) -> anyhow::Result<()> {
    let webhook = if o.webhook { Some(sink().await?) } else { None };
    let d = start_daemon(webhook.as_deref())?;
    let url = format!("{}/v1/services/bench/messages", d.base);
    let next = Arc::new(AtomicU64::new(0));
    let idle_rss = d.rss_kib();
    // Warm up connections and the page cache.
    closed_loop(&url, o.clients, 1, next.clone()).await;

    let (acked, elapsed, errors) = closed_loop(&url, o.clients, o.secs, next.clone()).await;
    let rate = acked as f64 / elapsed.as_secs_f64();
    let (lat, open_errors) = open_loop(&url, o.rate, o.secs, next.clone()).await;
    let busy_rss = d.rss_kib();

    println!("| measurement | value |");
    println!("|---|---|");
    println!(
        "| webhook subscriber | {} |",
        if o.webhook {
            "yes (every event enqueued)"
        } else {
            "no"
        }
    );
    println!("| closed loop: clients | {} |", o.clients);
    println!("| closed loop: acknowledged msg/s | {rate:.0} |");
    println!("| closed loop: errors | {errors} |");
    println!(
        "| open loop: offered rate | {} msg/s for {} s |",
        o.rate, o.secs
    );
    println!(
        "| open loop: p50 / p99 / p999 / max ack latency (ms) | {} / {} / {} / {} |",
        ms(pct(&lat, 0.50)),
        ms(pct(&lat, 0.99)),
        ms(pct(&lat, 0.999)),
        ms(pct(&lat, 1.0))
    );
    println!("| open loop: errors | {open_errors} |");
    if let (Some(a), Some(b)) = (idle_rss, busy_rss) {
        println!(
            "| daemon RSS idle → after load (MiB) | {:.1} → {:.1} |",
            a as f64 / 1024.0,
            b as f64 / 1024.0
        );
    }
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let (cmd, o) = parse_args()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cmd.as_str() {
        "ingest" => rt.block_on(ingest(&o)),
        other => bail!("unknown command {other:?}; expected: ingest"),
    }
}
