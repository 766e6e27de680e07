//! Load generators: a closed loop (N clients, each posting its next message when the
//! previous one was acknowledged) and an open loop (a fixed rate, latency measured from
//! each message's scheduled send time, so a stall counts against every message it
//! delays).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::daemon::TOKEN;

/// The ingest URL on `base`.
pub fn ingest_url(base: &str) -> String {
    format!("{base}/v1/services/bench/messages")
}

/// The body of message `n`, from one of `contacts` contacts.
pub fn body(n: u64, contacts: u64) -> String {
    let c = n % contacts;
    format!(
        r#"{{"external_id":"m-{n}","contact":{{"external_id":"c-{c}","name":"Contact {c}"}},"text":"Hello, this is message {n} of the benchmark."}}"#
    )
}

/// Posts message `n`; true on 201.
pub async fn post(client: &reqwest::Client, url: &str, n: u64, contacts: u64) -> bool {
    let resp = client
        .post(url)
        .bearer_auth(TOKEN)
        .header("content-type", "application/json")
        .body(body(n, contacts))
        .send()
        .await;
    matches!(resp, Ok(r) if r.status().as_u16() == 201)
}

/// Message numbers shared by all phases against one database, so ids never repeat.
#[derive(Clone, Default)]
pub struct Counter(Arc<AtomicU64>);

impl Counter {
    fn next(&self) -> u64 {
        self.0.fetch_add(1, Ordering::Relaxed)
    }
}

/// What a closed loop achieved.
pub struct Closed {
    /// Acknowledged per second.
    pub rate: f64,
    /// Acknowledged in all.
    pub acked: u64,
    /// Failed requests.
    pub errors: u64,
}

/// `clients` workers for `duration` (or until `total` messages when given).
pub async fn closed_loop(
    url: &str,
    clients: usize,
    duration: Duration,
    total: Option<u64>,
    contacts: u64,
    next: &Counter,
) -> Closed {
    closed_loop_spread(&[url.to_owned()], clients, duration, total, contacts, next).await
}

/// [`closed_loop`] with the workers spread over `urls` (worker `i` posts to
/// `urls[i % len]`): several instances behind one load.
pub async fn closed_loop_spread(
    urls: &[String],
    clients: usize,
    duration: Duration,
    total: Option<u64>,
    contacts: u64,
    next: &Counter,
) -> Closed {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(clients)
        .build()
        .unwrap();
    let deadline = Instant::now() + duration;
    let ok = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..clients {
        let (client, url, ok, errors, next) = (
            client.clone(),
            urls[i % urls.len()].clone(),
            ok.clone(),
            errors.clone(),
            next.clone(),
        );
        tasks.push(tokio::spawn(async move {
            loop {
                let done = match total {
                    Some(t) => ok.load(Ordering::Relaxed) + errors.load(Ordering::Relaxed) >= t,
                    None => Instant::now() >= deadline,
                };
                if done {
                    return;
                }
                if post(&client, &url, next.next(), contacts).await {
                    ok.fetch_add(1, Ordering::Relaxed);
                } else {
                    errors.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let acked = ok.load(Ordering::Relaxed);
    Closed {
        rate: acked as f64 / started.elapsed().as_secs_f64(),
        acked,
        errors: errors.load(Ordering::Relaxed),
    }
}

/// What an open loop saw.
pub struct Open {
    /// Acknowledgement latencies, sorted.
    pub latencies: Vec<Duration>,
    /// Failed requests.
    pub errors: u64,
    /// Message numbers with the instant each was scheduled.
    pub scheduled: Vec<(u64, Instant)>,
}

/// `rate` messages per second for `duration`.
pub async fn open_loop(
    url: &str,
    rate: u64,
    duration: Duration,
    contacts: u64,
    next: &Counter,
) -> Open {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(512)
        .build()
        .unwrap();
    let total = (rate as f64 * duration.as_secs_f64()) as u64;
    let interval = Duration::from_secs_f64(1.0 / rate as f64);
    let start = tokio::time::Instant::now();
    let mut tasks = Vec::with_capacity(total as usize);
    let mut scheduled = Vec::with_capacity(total as usize);
    for i in 0..total {
        let at = start + interval.mul_f64(i as f64);
        tokio::time::sleep_until(at).await;
        let (client, url) = (client.clone(), url.to_owned());
        let n = next.next();
        scheduled.push((n, at.into_std()));
        tasks.push(tokio::spawn(async move {
            let ok = post(&client, &url, n, contacts).await;
            (ok, at.elapsed())
        }));
    }
    let mut latencies = Vec::with_capacity(tasks.len());
    let mut errors = 0;
    for t in tasks {
        match t.await {
            Ok((true, d)) => latencies.push(d),
            _ => errors += 1,
        }
    }
    latencies.sort();
    Open {
        latencies,
        errors,
        scheduled,
    }
}

/// The median (the upper one of an even count; NaN of none).
pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

/// The `p`-quantile of sorted samples.
pub fn pct(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

/// Milliseconds with two decimals.
pub fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}
