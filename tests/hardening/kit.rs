//! What the hardening tests share: raw loopback sockets from chosen source addresses,
//! the daemon's memory from `/proc`, a `/healthz` prober, and size knobs.
#![allow(
    dead_code,
    reason = "some serve only the modules gated on connector features"
)]

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use crate::common::*;

/// The webhook secret of the Smooch service of [`hooks_config`].
pub const SMOOCH_KEY: &str = "hardening-smooch-webhook-key";
/// The auth token of its Twilio service.
pub const TWILIO_TOKEN: &str = "0123456789abcdef0123456789abcdef";

/// A daemon with an api service, a Smooch service `sun` and a Twilio service `sms`
/// (their APIs unreachable); `server` lines go into `[server]`.
pub fn hooks_config(dir: &Path, server: &str) -> String {
    base_config(dir).replace(
        "shutdown_timeout = \"5s\"",
        &format!("shutdown_timeout = \"5s\"\n{server}"),
    ) + &api_service("")
        + &smooch_service("sun", SMOOCH_KEY)
        + &twilio_service_nowhere("sms", TWILIO_TOKEN)
}

/// Held by each attack test while it runs: two at once on a two-core machine would
/// measure each other's load, not their own.
pub async fn one_attack_at_a_time() -> tokio::sync::MutexGuard<'static, ()> {
    static LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    LOCK.lock().await
}

/// Whether the full-size attacks of issue 14 run (`HARDENING_FULL=1`), rather than the
/// CI-sized ones.
pub fn full() -> bool {
    std::env::var("HARDENING_FULL").is_ok_and(|v| v == "1")
}

/// Raises this process's open-file limit to its hard limit, so a test can hold
/// thousands of sockets; returns the soft limit now in force.
pub fn raise_nofile() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: only the struct passed is read and written.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim), 0);
        lim.rlim_cur = lim.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
    }
    lim.rlim_cur
}

/// A TCP connection to `to` from source address `from` (any 127.x.y.z works on Linux),
/// so one test can be several peers. `rcvbuf` shrinks the receive buffer (a client that
/// never reads then stalls the sender quickly).
pub async fn connect_from(from: IpAddr, to: SocketAddr, rcvbuf: Option<u32>) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    if let Some(n) = rcvbuf {
        socket.set_recv_buffer_size(n).unwrap();
    }
    socket.bind(SocketAddr::new(from, 0)).unwrap();
    tokio::time::timeout(Duration::from_secs(10), socket.connect(to))
        .await
        .expect("connect in time")
        .expect("connects")
}

/// A loopback source address: `127.0.0.{n}`.
pub fn peer(n: u8) -> IpAddr {
    IpAddr::from([127, 0, 0, n])
}

/// A process's resident memory now and at its peak (`VmRSS`, `VmHWM`), in MiB.
pub fn rss_mib(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
            .unwrap_or(0.0)
            / 1024.0
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Whether the server closed `s`: a read returns EOF or a reset within `limit`. Bytes
/// it sends first (a 408 or 503) are read past.
pub async fn closed_within(s: &mut TcpStream, limit: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => {}
        }
    }
}

/// Reads what the server answers on `s` until it closes or `limit` passes.
pub async fn answer(s: &mut TcpStream, limit: Duration) -> String {
    let deadline = tokio::time::Instant::now() + limit;
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => out.extend_from_slice(&buf[..n]),
            _ => return String::from_utf8_lossy(&out).into_owned(),
        }
    }
}

/// Probes `GET /healthz` on a fresh connection from 127.0.0.1 every 50 ms until
/// stopped; collects each answer's latency (a failure, a non-200 or no answer within
/// [`PROBE_LIMIT`] counts as failed). Tests assert that none failed; the latencies are
/// printed, and measured for docs/hardening.md, not asserted: this machine's load
/// (other builds share its two cores) decides them more than the daemon does.
pub struct Prober {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<Probes>,
}

/// How long a `/healthz` probe may take before it counts as failed.
pub const PROBE_LIMIT: Duration = Duration::from_secs(5);

/// What a [`Prober`] saw.
#[derive(Debug, Default)]
pub struct Probes {
    /// Latencies of the 200 answers.
    pub ok: Vec<Duration>,
    /// Probes that failed or were not 200 within [`PROBE_LIMIT`].
    pub failed: usize,
}

impl Probes {
    /// The `p`-th percentile (0-100) of the latencies.
    pub fn percentile(&self, p: f64) -> Duration {
        let mut v = self.ok.clone();
        v.sort();
        if v.is_empty() {
            return Duration::MAX;
        }
        let i = ((p / 100.0) * (v.len() - 1) as f64).round() as usize;
        v[i]
    }

    /// "n probes, p50 …, p99 …, max …, f failed".
    pub fn summary(&self) -> String {
        format!(
            "{} probes, p50 {:?}, p99 {:?}, max {:?}, {} failed",
            self.ok.len(),
            self.percentile(50.0),
            self.percentile(99.0),
            self.percentile(100.0),
            self.failed
        )
    }
}

impl Prober {
    /// Starts probing `addr`.
    pub fn start(addr: SocketAddr) -> Prober {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let task = tokio::spawn(async move {
            let mut probes = Probes::default();
            while !flag.load(Ordering::Relaxed) {
                let started = Instant::now();
                match tokio::time::timeout(PROBE_LIMIT, healthz(addr)).await {
                    Ok(true) => probes.ok.push(started.elapsed()),
                    _ => probes.failed += 1,
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            probes
        });
        Prober { stop, task }
    }

    /// Stops and returns what it saw.
    pub async fn finish(self) -> Probes {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.unwrap()
    }
}

/// One `GET /healthz` on a new connection: whether it answered 200.
async fn healthz(addr: SocketAddr) -> bool {
    let Ok(mut s) = TcpStream::connect(addr).await else {
        return false;
    };
    if s.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .await
        .is_err()
    {
        return false;
    }
    let mut head = [0u8; 12];
    s.read_exact(&mut head).await.is_ok() && &head == b"HTTP/1.1 200"
}

/// Samples a process's resident memory every 50 ms until stopped; the highest seen.
pub struct RssSampler {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<f64>,
}

impl RssSampler {
    /// Starts sampling `pid`.
    pub fn start(pid: u32) -> RssSampler {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let task = tokio::spawn(async move {
            let mut peak: f64 = 0.0;
            while !flag.load(Ordering::Relaxed) {
                peak = peak.max(rss_mib(pid).0);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            peak
        });
        RssSampler { stop, task }
    }

    /// Stops; the peak resident memory seen, in MiB.
    pub async fn finish(self) -> f64 {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.unwrap()
    }
}

/// The value of an unlabelled or labelled sample in a Prometheus exposition.
pub fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        l.strip_prefix(series)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

/// `GET url` → its body as text.
pub async fn get_text(url: String) -> String {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::get(url).await.unwrap().text().await.unwrap()
}
