//! `sb-bench`: measures a release `switchboard` from the outside, over loopback, with
//! durable commits (`synchronous = "full"`), and writes `docs/benchmarks.md`.
//!
//! ```text
//! bash bench/run.sh            # builds, runs everything, writes docs/, draws the chart
//! sb-bench all [--quick] [--out docs/benchmarks.md] [--xmpp FILE]
//! sb-bench ingest [--secs 10] [--clients 64] [--rate 2000]
//! sb-bench relay  [--secs 10] [--clients 64] [--rate 2000]
//! sb-bench mirror [--secs 10] [--clients 64] [--rate 500]
//! sb-bench engines [--secs 10] [--clients 64] [--rounds 3]
//! ```
//!
//! - [`daemon`] — starting switchboard and the bare ceiling server.
//! - [`engines`] — ingest on SQLite against PostgreSQL with 1 and 3 instances.
//! - [`growth`] — ingest as history grows, with and without event retention; database size.
//! - [`load`] — closed and open load loops, percentiles.
//! - [`servers`] — the ceiling server and the timestamping webhook sink.
//! - [`desk`] — the timestamping nimchat desk of the mirror phase.
//! - [`xmpp`] — rows from the XMPP one-sender benchmark that `bench/run.sh` runs first.

mod daemon;
mod desk;
mod engines;
mod growth;
mod load;
mod servers;
mod xmpp;

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use load::{Counter, ingest_url, ms, pct};

/// Sizes of one run.
struct Plan {
    secs: u64,
    clients: usize,
    rate: u64,
    relay_rate: u64,
    mirror_rate: u64,
    conversations: u64,
    services: usize,
    small: u64,
    large: u64,
    window: u64,
    /// Interleaved rounds of the engines comparison.
    engine_rounds: usize,
}

impl Plan {
    fn full() -> Self {
        Plan {
            secs: 10,
            clients: 64,
            rate: 2000,
            relay_rate: 2000,
            mirror_rate: 500,
            conversations: 10_000,
            services: 100,
            small: 10_000,
            large: 1_000_000,
            window: 20_000,
            engine_rounds: 3,
        }
    }

    fn quick() -> Self {
        Plan {
            secs: 3,
            large: 50_000,
            window: 5_000,
            engine_rounds: 1,
            ..Plan::full()
        }
    }
}

/// One row of the results table.
struct Row {
    what: String,
    result: String,
    target: String,
    verdict: String,
}

fn row(
    rows: &mut Vec<Row>,
    what: impl Into<String>,
    result: impl Into<String>,
    target: &str,
    met: Option<bool>,
) {
    rows.push(Row {
        what: what.into(),
        result: result.into(),
        target: target.into(),
        verdict: match met {
            Some(true) => "met".into(),
            Some(false) => "**missed**".into(),
            None => String::new(),
        },
    });
}

fn latency_cell(lat: &[Duration]) -> String {
    format!(
        "{} / {} / {} ms",
        ms(pct(lat, 0.5)),
        ms(pct(lat, 0.99)),
        ms(pct(lat, 0.999))
    )
}

fn mib(kib: Option<u64>) -> f64 {
    kib.unwrap_or(0) as f64 / 1024.0
}

/// Writes quantile curves (1000 points) for the chart.
fn curve(csv: &mut String, series: &str, sorted: &[Duration]) {
    for i in 1..=1000 {
        let q = i as f64 / 1000.0;
        let _ = writeln!(
            csv,
            "{series},{q:.3},{:.4}",
            pct(sorted, q).as_secs_f64() * 1000.0
        );
    }
}

/// One warm-up second, a closed loop and an open loop against `url`.
async fn load_phases(
    url: &str,
    clients: usize,
    rate: u64,
    secs: Duration,
) -> (load::Closed, load::Open) {
    let next = Counter::default();
    load::closed_loop(url, clients, Duration::from_secs(1), None, 1000, &next).await;
    let closed = load::closed_loop(url, clients, secs, None, 1000, &next).await;
    let open = load::open_loop(url, rate, secs, 1000, &next).await;
    (closed, open)
}

/// [`load_phases`] against a fresh switchboard with `storage.synchronous = synchronous`,
/// with the writer thread's and the whole process's CPU per acknowledged message in the
/// closed loop.
async fn switchboard_phases(
    synchronous: &str,
    clients: usize,
    rate: u64,
    secs: Duration,
) -> anyhow::Result<(load::Closed, load::Open, CpuPerMessage)> {
    let dir = daemon::Scratch::new(&format!("ingest-{synchronous}"))?;
    let sb = daemon::switchboard(&dir.0, &daemon::config_with(&dir.0, synchronous, "", ""))?;
    let url = ingest_url(&sb.base);
    let next = Counter::default();
    load::closed_loop(&url, clients, Duration::from_secs(1), None, 1000, &next).await;
    let (w0, p0) = (sb.cpu_ticks(Some("sb-writer")), sb.cpu_ticks(None));
    let closed = load::closed_loop(&url, clients, secs, None, 1000, &next).await;
    let (w1, p1) = (sb.cpu_ticks(Some("sb-writer")), sb.cpu_ticks(None));
    let open = load::open_loop(&url, rate, secs, 1000, &next).await;
    sb.stop();
    let per = |ticks: u64| ticks as f64 * 10_000.0 / closed.acked.max(1) as f64;
    let cpu = CpuPerMessage {
        writer_us: per(w1 - w0),
        process_us: per(p1 - p0),
    };
    Ok((closed, open, cpu))
}

/// CPU time per acknowledged message in a closed loop, from `/proc` ticks.
struct CpuPerMessage {
    /// The writer thread's.
    writer_us: f64,
    /// The whole daemon's.
    process_us: f64,
}

async fn all(plan: &Plan, out: &str, xmpp: Option<&str>) -> anyhow::Result<()> {
    let load_at_start = loadavg();
    let mut rows = Vec::new();
    let mut csv = String::from("series,quantile,latency_ms\n");
    let secs = Duration::from_secs(plan.secs);

    // 1. The ceiling: a bare handler parsing the same JSON.
    eprintln!("ceiling …");
    let bare = daemon::bare()?;
    let url = format!("{}/v1/services/bench/messages", bare.base);
    let (ceiling, ceiling_open) = load_phases(&url, plan.clients, plan.rate, secs).await;
    drop(bare);

    // 2. switchboard ingest, durable.
    eprintln!("ingest …");
    let (ingest, ingest_open, cpu) =
        switchboard_phases("full", plan.clients, plan.rate, secs).await?;
    let ratio = ingest.rate / ceiling.rate;
    row(
        &mut rows,
        format!(
            "Ingest, {} clients, closed loop: switchboard, `synchronous = \"full\"` (default: fsync per commit)",
            plan.clients
        ),
        format!("{:.0} msg/s ({} errors)", ingest.rate, ingest.errors),
        "≥ 10,000 msg/s",
        Some(ingest.rate >= 10_000.0),
    );
    row(
        &mut rows,
        format!(
            "Ingest, {} clients, closed loop: bare HTTP handler (ceiling)",
            plan.clients
        ),
        format!("{:.0} msg/s ({} errors)", ceiling.rate, ceiling.errors),
        "",
        None,
    );
    row(
        &mut rows,
        "CPU per acknowledged message in that closed loop (`/proc` ticks): writer thread / whole daemon",
        format!("{:.1} / {:.1} µs", cpu.writer_us, cpu.process_us),
        "writer ≤ 24 µs (half of 48)",
        Some(cpu.writer_us <= 24.0),
    );
    row(
        &mut rows,
        "switchboard ÷ ceiling",
        format!("{:.0}%", ratio * 100.0),
        "≥ 50%",
        Some(ratio >= 0.5),
    );
    row(
        &mut rows,
        format!(
            "Ack latency at {} msg/s, p50 / p99 / p999: switchboard",
            plan.rate
        ),
        format!(
            "{} ({} errors)",
            latency_cell(&ingest_open.latencies),
            ingest_open.errors
        ),
        "p99 ≤ 20 ms",
        Some(pct(&ingest_open.latencies, 0.99) <= Duration::from_millis(20)),
    );
    row(
        &mut rows,
        format!(
            "Ack latency at {} msg/s, p50 / p99 / p999: ceiling",
            plan.rate
        ),
        latency_cell(&ceiling_open.latencies),
        "",
        None,
    );
    curve(&mut csv, "switchboard ack", &ingest_open.latencies);

    // 2b. The same with `synchronous = "normal"`: commits survive kill -9, not power loss.
    eprintln!("ingest, synchronous = normal …");
    let (normal, normal_open, _) =
        switchboard_phases("normal", plan.clients, plan.rate, secs).await?;
    row(
        &mut rows,
        format!(
            "Ingest, {} clients, `synchronous = \"normal\"` (survives kill -9, not power loss)",
            plan.clients
        ),
        format!(
            "{:.0} msg/s ({:.0}% of ceiling)",
            normal.rate,
            normal.rate / ceiling.rate * 100.0
        ),
        "",
        None,
    );
    row(
        &mut rows,
        format!(
            "Ack latency at {} msg/s, p50 / p99 / p999, `normal`",
            plan.rate
        ),
        format!(
            "{} ({} errors)",
            latency_cell(&normal_open.latencies),
            normal_open.errors
        ),
        "",
        None,
    );
    curve(
        &mut csv,
        "switchboard ack (synchronous=normal)",
        &normal_open.latencies,
    );
    curve(&mut csv, "bare handler ack", &ceiling_open.latencies);

    // 2c. The storage engines: SQLite, PostgreSQL with one and three instances.
    engines_rows(plan, &mut rows).await?;

    // 3. Relay: inbound → signed webhook received, in the same run.
    relay(plan, ingest.rate, &mut rows, &mut csv).await?;
    // 4. Mirror: inbound → posted at a desk, in the same run.
    mirror(plan, &mut rows, &mut csv).await?;

    // 4. Memory: idle, and with many open conversations.
    eprintln!("memory …");
    let dir = daemon::Scratch::new("memory")?;
    let sb = daemon::switchboard(&dir.0, &daemon::config(&dir.0, ""))?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let fresh_rss = sb.rss_kib();
    let next = Counter::default();
    load::closed_loop(
        &ingest_url(&sb.base),
        plan.clients,
        Duration::from_secs(3600),
        Some(plan.conversations),
        plan.conversations,
        &next,
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let conv_rss = sb.rss_kib();
    sb.stop();
    row(
        &mut rows,
        "RSS idle (fresh start)",
        format!("{:.1} MiB", mib(fresh_rss)),
        "≤ 30 MB",
        Some(mib(fresh_rss) * 1.048_576 <= 30.0),
    );
    row(
        &mut rows,
        format!("RSS with {} open conversations", plan.conversations),
        format!("{:.1} MiB", mib(conv_rss)),
        "≤ 100 MB",
        Some(mib(conv_rss) * 1.048_576 <= 100.0),
    );

    // 5. Start-up with many services.
    eprintln!("start-up …");
    let mut startups = Vec::new();
    let sink_url = servers::Sink::default().start().await?;
    let services: String = (0..plan.services)
        .map(|i| {
            if i % 2 == 0 {
                daemon::webhook(&format!("hook{i}"), &sink_url)
            } else {
                format!("[services.api{i}]\ntype = \"api\"\n[services.api{i}.params.tokens.t]\ntoken = \"token-{i:04}-0123456789abcdef\"\nscopes = [\"read\"]\n")
            }
        })
        .collect();
    let dir = daemon::Scratch::new("startup")?;
    let http = reqwest::Client::new();
    for _ in 0..5 {
        let started = Instant::now();
        let sb = daemon::switchboard(&dir.0, &daemon::config(&dir.0, &services))?;
        loop {
            if http
                .get(format!("{}/readyz", sb.base))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                break;
            }
            if started.elapsed() > Duration::from_secs(60) {
                bail!("not ready within 60 s");
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        startups.push(started.elapsed());
        sb.stop();
    }
    startups.sort();
    row(
        &mut rows,
        format!(
            "Start-up to /readyz 200 with {} services (median of 5; first run creates the database)",
            plan.services + 1
        ),
        format!(
            "{} ms (min {}, max {})",
            ms(startups[2]),
            ms(startups[0]),
            ms(startups[4])
        ),
        "",
        None,
    );

    growth::growth(plan, &mut rows).await?;
    if let Some(path) = xmpp {
        xmpp::rows(path, &mut rows)?;
    }

    write_report(out, plan, &rows, &load_at_start)?;
    let csv_path = out.replace(".md", "-latency.csv");
    std::fs::write(&csv_path, csv).with_context(|| format!("writing {csv_path}"))?;
    eprintln!("wrote {out} and {csv_path}");
    Ok(())
}

/// One relay run against a fresh daemon with a webhook to a [`servers::Sink`]: a closed
/// loop of `clients` over `contacts` conversations, then until every acknowledged
/// message's webhook arrived (or 60 s).
struct RelayRun {
    /// The ingest side.
    ingest: load::Closed,
    /// Distinct messages received per second, from the first post to the last arrival.
    delivered_rate: f64,
    /// Distinct messages received.
    delivered: usize,
    /// Deliveries in all, and those that came out of their conversation's order.
    deliveries: u64,
    out_of_order: u64,
}

/// Ingest per storage engine ([`engines`]), medians of interleaved rounds.
async fn engines_rows(plan: &Plan, rows: &mut Vec<Row>) -> anyhow::Result<()> {
    let secs = Duration::from_secs(plan.secs);
    let results = engines::compare(plan.clients, secs, plan.engine_rounds).await?;
    let sqlite = engines::median(&results[0].1, |r| r.rate);
    for (setup, runs) in &results {
        let rate = engines::median(runs, |r| r.rate);
        let each: Vec<String> = runs.iter().map(|r| format!("{:.0}", r.rate)).collect();
        let errors: u64 = runs.iter().map(|r| r.errors).sum();
        row(
            rows,
            format!(
                "Ingest, {} clients, closed loop, durable commits: {}",
                plan.clients,
                setup.label()
            ),
            format!(
                "{rate:.0} msg/s, {:.0}% of SQLite (runs: {}; {errors} errors)",
                rate / sqlite * 100.0,
                each.join(", ")
            ),
            "",
            None,
        );
        row(
            rows,
            format!(
                "CPU per acknowledged message, {}: writer threads / daemons / PostgreSQL server",
                setup.label()
            ),
            format!(
                "{:.1} / {:.1} / {:.1} µs",
                engines::median(runs, |r| r.writer_us),
                engines::median(runs, |r| r.daemon_us),
                engines::median(runs, |r| r.db_us)
            ),
            "",
            None,
        );
    }
    Ok(())
}

async fn relay_closed(clients: usize, contacts: u64, secs: Duration) -> anyhow::Result<RelayRun> {
    let sink = servers::Sink::default();
    let sink_url = sink.start().await?;
    let dir = daemon::Scratch::new(&format!("relay-{contacts}"))?;
    let sb = daemon::switchboard(
        &dir.0,
        &daemon::config(&dir.0, &daemon::webhook("sink", &sink_url)),
    )?;
    let started = Instant::now();
    let ingest = load::closed_loop(
        &ingest_url(&sb.base),
        clients,
        secs,
        None,
        contacts,
        &Counter::default(),
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while (sink.count() as u64) < ingest.acked && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let a = sink.arrived.lock().unwrap();
    let last = a.first.values().max().copied().unwrap_or(started);
    let run = RelayRun {
        delivered_rate: a.first.len() as f64 / last.duration_since(started).as_secs_f64().max(1e-9),
        delivered: a.first.len(),
        deliveries: a.deliveries,
        out_of_order: a.out_of_order,
        ingest,
    };
    drop(a);
    sb.stop();
    Ok(run)
}

fn relay_cell(r: &RelayRun) -> String {
    format!(
        "{:.0} acknowledged/s, {:.0} delivered/s ({:.0}%; {} of {} arrived, {} deliveries, {} out of order)",
        r.ingest.rate,
        r.delivered_rate,
        r.delivered_rate / r.ingest.rate * 100.0,
        r.delivered,
        r.ingest.acked,
        r.deliveries,
        r.out_of_order
    )
}

/// The relay rows: sustained with many conversations, one conversation, and latency at
/// a fixed rate.
async fn relay(
    plan: &Plan,
    ingest_rate: f64,
    rows: &mut Vec<Row>,
    csv: &mut String,
) -> anyhow::Result<()> {
    let secs = Duration::from_secs(plan.secs);
    eprintln!("relay, {} conversations …", plan.clients);
    let many = relay_closed(plan.clients, plan.clients as u64, secs).await?;
    let complete = |r: &RelayRun| r.out_of_order == 0 && r.delivered as u64 == r.ingest.acked;
    row(
        rows,
        format!(
            "Relay, {0} clients over {0} conversations, closed loop: inbound acknowledged → signed webhook received (same run)",
            plan.clients
        ),
        format!(
            "{} ({:.0}% of the ingest-only rate above)",
            relay_cell(&many),
            many.delivered_rate / ingest_rate * 100.0
        ),
        "delivered ≥ 80% of acknowledged",
        Some(complete(&many) && many.delivered_rate >= 0.8 * many.ingest.rate),
    );
    eprintln!("relay, one conversation …");
    let one = relay_closed(16, 1, secs).await?;
    row(
        rows,
        "Relay, 16 clients into one conversation, closed loop (same run)",
        relay_cell(&one),
        "≥ 1,000 delivered/s",
        Some(complete(&one) && one.delivered_rate >= 1000.0),
    );

    eprintln!("relay latency …");
    let sink = servers::Sink::default();
    let sink_url = sink.start().await?;
    let dir = daemon::Scratch::new("relay")?;
    let sb = daemon::switchboard(
        &dir.0,
        &daemon::config(&dir.0, &daemon::webhook("sink", &sink_url)),
    )?;
    let next = Counter::default();
    let relay = load::open_loop(&ingest_url(&sb.base), plan.relay_rate, secs, 1000, &next).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while sink.count() < relay.scheduled.len() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let arrived = sink.arrived.lock().unwrap().first.clone();
    let mut relay_lat: Vec<Duration> = relay
        .scheduled
        .iter()
        .filter_map(|(n, at)| arrived.get(n).map(|t| t.duration_since(*at)))
        .collect();
    relay_lat.sort();
    sb.stop();
    row(
        rows,
        format!(
            "Relay latency, inbound → signed webhook received, at {} msg/s over 1,000 conversations, p50 / p99 / p999",
            plan.relay_rate
        ),
        format!(
            "{} ({} of {} arrived)",
            latency_cell(&relay_lat),
            relay_lat.len(),
            relay.scheduled.len()
        ),
        "p99 ≤ 20 ms",
        Some(
            relay_lat.len() == relay.scheduled.len()
                && pct(&relay_lat, 0.99) <= Duration::from_millis(20),
        ),
    );
    curve(csv, "relay to webhook", &relay_lat);
    Ok(())
}

/// A daemon whose api service `bench` is routed to a nimchat desk on `desk_url`.
fn mirror_config(dir: &std::path::Path, desk_url: &str) -> String {
    daemon::config(
        dir,
        &format!(
            "[services.desk]\ntype = \"nimchat\"\n[services.desk.params]\nbase_url = \"{desk_url}\"\n\
             inbox_identifier = \"{}\"\nhook_token = \"bench-hook-token-0123456789abcdef\"\n",
            desk::INBOX
        ),
    )
    .replace("[services.bench]\ntype = \"api\"\n", "[services.bench]\ntype = \"api\"\ndesk = \"desk\"\n")
}

/// The mirror rows: a closed loop of `clients` over as many conversations routed to a
/// desk on loopback (acknowledged and mirrored per second, from the first post to the
/// last arrival at the desk), and ack → desk post latency at `rate` msg/s.
async fn mirror(plan: &Plan, rows: &mut Vec<Row>, csv: &mut String) -> anyhow::Result<()> {
    let secs = Duration::from_secs(plan.secs);
    eprintln!("mirror, {} conversations …", plan.clients);
    let desk = desk::Desk::default();
    let url = desk.start().await?;
    let dir = daemon::Scratch::new("mirror")?;
    let sb = daemon::switchboard(&dir.0, &mirror_config(&dir.0, &url))?;
    let started = Instant::now();
    let next = Counter::default();
    let ingest = load::closed_loop(
        &ingest_url(&sb.base),
        plan.clients,
        secs,
        None,
        plan.clients as u64,
        &next,
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(120);
    while (desk.count() as u64) < ingest.acked && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (arrived, posts, conversations, out_of_order, last) = {
        let s = desk.seen.lock().unwrap();
        let last = s.first.values().max().copied().unwrap_or(started);
        (
            s.first.len(),
            s.posts,
            s.conversations,
            s.out_of_order,
            last,
        )
    };
    let mirrored = arrived as f64 / last.duration_since(started).as_secs_f64().max(1e-9);
    row(
        rows,
        format!(
            "Mirror, {0} clients over {0} conversations routed to a nimchat desk on loopback, closed loop: inbound acknowledged → posted at the desk",
            plan.clients
        ),
        format!(
            "{:.0} acknowledged/s, {:.0} mirrored/s ({:.0}%; {} of {} arrived, {} posts, {} desk conversations, {} out of order)",
            ingest.rate,
            mirrored,
            mirrored / ingest.rate * 100.0,
            arrived,
            ingest.acked,
            posts,
            conversations,
            out_of_order
        ),
        "",
        None,
    );

    eprintln!("mirror latency …");
    let open = load::open_loop(
        &ingest_url(&sb.base),
        plan.mirror_rate,
        secs,
        plan.clients as u64,
        &next,
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(60);
    let want = open.scheduled.len() + arrived;
    while desk.count() < want && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let first = desk.seen.lock().unwrap().first.clone();
    let mut lat: Vec<Duration> = open
        .scheduled
        .iter()
        .filter_map(|(n, at)| first.get(n).map(|t| t.duration_since(*at)))
        .collect();
    lat.sort();
    sb.stop();
    row(
        rows,
        format!(
            "Mirror latency, inbound → posted at the desk, at {} msg/s over {} conversations, p50 / p99 / p999",
            plan.mirror_rate, plan.clients
        ),
        format!(
            "{} ({} of {} arrived)",
            latency_cell(&lat),
            lat.len(),
            open.scheduled.len()
        ),
        "",
        None,
    );
    curve(csv, "mirror to desk", &lat);
    Ok(())
}

fn fmt_n(n: u64) -> String {
    match n {
        n if n >= 1_000_000 && n % 1_000_000 == 0 => format!("{}M", n / 1_000_000),
        n if n >= 1000 && n % 1000 == 0 => format!("{}k", n / 1000),
        n => n.to_string(),
    }
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .next()
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|k| k.parse::<u64>().ok())
        })
        .map(|k| format!("{:.0} GiB", k as f64 / 1_048_576.0))
        .unwrap_or_default();
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!("{cpu}, {cores} cores, {mem} RAM, Linux {}", kernel.trim())
}

/// Marks where hand-written notes begin; the harness keeps everything below it.
const NOTES: &str = "<!-- notes: kept across runs of the harness -->";

/// The 1, 5 and 15 minute load averages: other work on the machine skews every figure.
fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" / "))
        .unwrap_or_else(|| "unknown".into())
}

fn write_report(out: &str, plan: &Plan, rows: &[Row], load_at_start: &str) -> anyhow::Result<()> {
    let commit = std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    let notes = std::fs::read_to_string(out)
        .ok()
        .and_then(|old| old.split_once(NOTES).map(|(_, n)| n.to_owned()))
        .unwrap_or_else(|| "\n".into());
    let mut md = String::new();
    let _ = writeln!(md, "# Benchmarks\n");
    let _ = writeln!(
        md,
        "Generated by `bash bench/run.sh` (`sb-bench all`) on {} at commit `{commit}`.",
        jiff_like_now()
    );
    let _ = writeln!(md, "Machine: {}.", machine());
    let _ = writeln!(
        md,
        "Load average (1 / 5 / 15 min) when the run started: {load_at_start}; when it ended: {}.",
        loadavg()
    );
    let _ = writeln!(
        md,
        "The daemon is a release build with durable commits (`storage.synchronous = \"full\"`: every acknowledged message was fsynced). \
The load generator runs on the same machine and competes with the daemon for its cores. Phases: {} s each; {} clients; \
{} msg/s offered for latency; latency counts from each message's scheduled send time.\n",
        plan.secs, plan.clients, plan.rate
    );
    let _ = writeln!(md, "| measurement | result | target | |");
    let _ = writeln!(md, "|---|---|---|---|");
    for r in rows {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} |",
            r.what, r.result, r.target, r.verdict
        );
    }
    let _ = writeln!(md, "\n![Latency by percentile](benchmarks-latency.png)\n");
    let _ = writeln!(md, "Raw quantile curves: `benchmarks-latency.csv`.\n");
    let _ = write!(md, "{NOTES}{notes}");
    std::fs::write(out, md).with_context(|| format!("writing {out}"))?;
    Ok(())
}

/// The current UTC time, minute precision (no date crate needed for one line).
fn jiff_like_now() -> String {
    std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

async fn ingest_only(secs: u64, clients: usize, rate: u64) -> anyhow::Result<()> {
    let (c, o, cpu) = switchboard_phases("full", clients, rate, Duration::from_secs(secs)).await?;
    println!(
        "closed loop, {clients} clients: {:.0} msg/s acknowledged ({} acked, {} errors); CPU per message: writer {:.1} µs, daemon {:.1} µs",
        c.rate, c.acked, c.errors, cpu.writer_us, cpu.process_us
    );
    println!(
        "open loop, {rate} msg/s: p50/p99/p999 {} ({} errors)",
        latency_cell(&o.latencies),
        o.errors
    );
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |name: &str| args.iter().any(|a| a == name);
    let value = |name: &str, default: &str| -> String {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
            .unwrap_or_else(|| default.to_owned())
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match args.first().map(String::as_str).unwrap_or("all") {
        "all" => {
            let plan = if flag("--quick") {
                Plan::quick()
            } else {
                Plan::full()
            };
            let xmpp = args
                .iter()
                .position(|a| a == "--xmpp")
                .and_then(|i| args.get(i + 1));
            rt.block_on(all(
                &plan,
                &value("--out", "docs/benchmarks.md"),
                xmpp.map(String::as_str),
            ))
        }
        "ingest" => rt.block_on(ingest_only(
            value("--secs", "10").parse()?,
            value("--clients", "64").parse()?,
            value("--rate", "2000").parse()?,
        )),
        "bare-server" => rt.block_on(servers::bare_server()),
        "relay" => {
            let plan = Plan {
                secs: value("--secs", "10").parse()?,
                clients: value("--clients", "64").parse()?,
                relay_rate: value("--rate", "2000").parse()?,
                ..Plan::full()
            };
            let mut rows = Vec::new();
            let mut csv = String::new();
            rt.block_on(relay(&plan, f64::NAN, &mut rows, &mut csv))?;
            for r in rows {
                println!("{}: {} [{}]", r.what, r.result, r.verdict);
            }
            Ok(())
        }
        "mirror" => {
            let plan = Plan {
                secs: value("--secs", "10").parse()?,
                clients: value("--clients", "64").parse()?,
                mirror_rate: value("--rate", "500").parse()?,
                ..Plan::full()
            };
            let (mut rows, mut csv) = (Vec::new(), String::new());
            rt.block_on(mirror(&plan, &mut rows, &mut csv))?;
            for r in rows {
                println!("{}: {}", r.what, r.result);
            }
            Ok(())
        }
        "engines" => {
            let plan = Plan {
                secs: value("--secs", "10").parse()?,
                clients: value("--clients", "64").parse()?,
                engine_rounds: value("--rounds", "3").parse()?,
                ..Plan::full()
            };
            let mut rows = Vec::new();
            rt.block_on(engines_rows(&plan, &mut rows))?;
            for r in rows {
                println!("{}: {}", r.what, r.result);
            }
            Ok(())
        }
        "growth" => {
            let plan = if flag("--quick") {
                Plan::quick()
            } else {
                Plan::full()
            };
            let mut rows = Vec::new();
            rt.block_on(growth::growth(&plan, &mut rows))?;
            for r in rows {
                println!("{}: {}", r.what, r.result);
            }
            Ok(())
        }
        other => {
            bail!(
                "unknown command {other:?}; expected all, ingest, relay, mirror, engines, growth or bare-server"
            )
        }
    }
}
