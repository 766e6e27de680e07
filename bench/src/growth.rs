//! Ingest cost as stored history grows, with every event kept and with events pruned by
//! `storage.event_retention`, and the database's size per message in both cases.
//!
//! One database is filled through the API to `small` messages and kept as a snapshot,
//! then grown to `large`. Each comparison runs windows of `window` messages against a
//! fresh copy of the small snapshot and against the large database, alternating, three
//! of each, and compares the medians (this VM's spread is ±15%).
//!
//! 1. Every event kept: the default week of retention, and the history is minutes old.
//! 2. The large file reopened with `event_retention = "1s"`: everything written before
//!    is past the horizon. The first pass prunes that backlog (timed; ack latency over
//!    its first seconds; writer CPU per event once the load stopped). From then on the
//!    events of each second are pruned as they age, inside the windows: the cost of
//!    pruning at the full ingest rate (a week's retention prunes the same events per
//!    second once the daemon has run a week, a minute's worth at a time).
//! 3. The pruned file reopened with the default retention, nothing left to prune: the
//!    steady state of a history much older than its retention, the figure the issue's
//!    target is about.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::load::{self, Counter, ingest_url, pct};
use crate::{Plan, Row, daemon, fmt_n, latency_cell, row};

/// The database file's size and what is in it, read after the daemon stopped (its last
/// checkpoint truncated the WAL).
struct DbSize {
    /// Bytes on disk.
    file: u64,
    /// Bytes of pages in use (the file less its free pages, which later writes reuse).
    used: u64,
    messages: u64,
    events: u64,
}

impl DbSize {
    fn read(path: &Path) -> anyhow::Result<Self> {
        let conn =
            rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
                .with_context(|| format!("opening {}", path.display()))?;
        let q = |sql: &str| -> anyhow::Result<u64> {
            Ok(conn.query_row(sql, [], |r| r.get::<_, i64>(0))? as u64)
        };
        let (pages, free, page) = (
            q("PRAGMA page_count")?,
            q("PRAGMA freelist_count")?,
            q("PRAGMA page_size")?,
        );
        Ok(DbSize {
            file: std::fs::metadata(path)?.len(),
            used: (pages - free) * page,
            messages: q("SELECT count(*) FROM messages")?,
            events: q("SELECT count(*) FROM events")?,
        })
    }

    fn cell(&self) -> String {
        let per = |b: u64| b as f64 / self.messages.max(1) as f64;
        format!(
            "{:.0} B/message in use, {:.0} B/message on disk ({} messages, {} events; {:.0} MiB in use, file {:.0} MiB)",
            per(self.used),
            per(self.file),
            self.messages,
            self.events,
            self.used as f64 / 1_048_576.0,
            self.file as f64 / 1_048_576.0
        )
    }
}

/// `switchboard_events_pruned_total` from the daemon's `/metrics`.
async fn pruned_total(http: &reqwest::Client, base: &str) -> anyhow::Result<u64> {
    let text = http
        .get(format!("{base}/metrics"))
        .send()
        .await?
        .text()
        .await?;
    Ok(text
        .lines()
        .find_map(|l| l.strip_prefix("switchboard_events_pruned_total "))
        .context("no switchboard_events_pruned_total in /metrics")?
        .trim()
        .parse()?)
}

/// Windows of each kind per comparison, interleaved small / large.
const ROUNDS: usize = 3;
/// Contacts (conversations) the load spreads over.
const CONTACTS: u64 = 10_000;
/// Messages sent to a restarted small daemon before its window.
const WARM_UP: u64 = 2_000;

/// What the phases share: the plan, message numbers (never repeated across the two
/// databases), and the small database's snapshot.
struct Ctx<'p> {
    plan: &'p Plan,
    next: Counter,
    small: daemon::Scratch,
}

impl Ctx<'_> {
    /// `n` messages in a closed loop.
    async fn window(&self, url: &str, n: u64) -> load::Closed {
        let forever = Duration::from_secs(24 * 3600);
        load::closed_loop(
            url,
            self.plan.clients,
            forever,
            Some(n),
            CONTACTS,
            &self.next,
        )
        .await
    }

    /// `plan.rate` messages per second for `plan.secs`.
    async fn open(&self, url: &str) -> load::Open {
        let secs = Duration::from_secs(self.plan.secs);
        load::open_loop(url, self.plan.rate, secs, CONTACTS, &self.next).await
    }

    /// One window against a fresh copy of the small database (`plan.small` messages),
    /// after a short warm-up.
    async fn small_window(&self) -> anyhow::Result<load::Closed> {
        let run = self.small.0.join("run");
        let _ = std::fs::remove_dir_all(&run);
        std::fs::create_dir_all(&run)?;
        std::fs::copy(self.small.0.join("bench.db"), run.join("bench.db"))?;
        let sb = daemon::switchboard(&run, &daemon::config(&run, ""))?;
        let url = ingest_url(&sb.base);
        self.window(&url, WARM_UP).await;
        let at = self.window(&url, self.plan.window).await;
        sb.stop();
        Ok(at)
    }

    /// [`ROUNDS`] windows each against the small database and the daemon at
    /// `large_url`, alternating: the median rates (small, large).
    async fn interleaved(&self, large_url: &str) -> anyhow::Result<(f64, f64)> {
        let (mut small, mut large) = (Vec::new(), Vec::new());
        for _ in 0..ROUNDS {
            small.push(self.small_window().await?.rate);
            large.push(self.window(large_url, self.plan.window).await.rate);
        }
        Ok((load::median(small), load::median(large)))
    }
}

/// The growth rows; see the module comment.
pub async fn growth(plan: &Plan, rows: &mut Vec<Row>) -> anyhow::Result<()> {
    eprintln!("growth …");
    let dir = daemon::Scratch::new("growth")?;
    let db = dir.0.join("bench.db");
    let cx = Ctx {
        plan,
        next: Counter::default(),
        small: daemon::Scratch::new("growth-small")?,
    };

    // The small database, kept as a snapshot; the large one grows from it.
    let sb = daemon::switchboard(&dir.0, &daemon::config(&dir.0, ""))?;
    cx.window(&ingest_url(&sb.base), plan.small).await;
    sb.stop();
    std::fs::copy(&db, cx.small.0.join("bench.db"))?;

    // Every event kept: the default week of retention, and the history is minutes old.
    let sb = daemon::switchboard(&dir.0, &daemon::config(&dir.0, ""))?;
    let url = ingest_url(&sb.base);
    cx.window(&url, plan.large.saturating_sub(plan.small)).await;
    let (small_a, kept_rate) = cx.interleaved(&url).await?;
    let lat_kept = cx.open(&url).await;
    sb.stop();
    let kept = DbSize::read(&db)?;

    // A one-second retention: the whole history is past it. The first pass prunes the
    // backlog (ack latency measured over its first seconds, its writer CPU once the
    // load stopped); then each second's events are pruned as they age.
    eprintln!("growth: pruning the history …");
    let sb = daemon::switchboard(
        &dir.0,
        &daemon::config_with(&dir.0, "full", "event_retention = \"1s\"", ""),
    )?;
    let url = ingest_url(&sb.base);
    let http = reqwest::Client::new();
    let started = Instant::now();
    let lat_during = cx.open(&url).await;
    let (pruned0, writer0, t0) = (
        pruned_total(&http, &sb.base).await?,
        sb.cpu_ticks(Some("sb-writer")),
        Instant::now(),
    );
    let mut pruned1 = pruned0;
    while pruned1 < kept.events {
        if started.elapsed() > Duration::from_secs(900) {
            bail!("the pruning backlog was not done within 15 minutes");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        pruned1 = pruned_total(&http, &sb.base).await?;
    }
    let backlog = started.elapsed();
    let idle_prune = (
        pruned1 - pruned0,
        sb.cpu_ticks(Some("sb-writer")) - writer0,
        t0.elapsed(),
    );
    let lat_steady = cx.open(&url).await;
    let (small_b, pruning_rate) = cx.interleaved(&url).await?;
    sb.stop();
    let pruned = DbSize::read(&db)?;

    // The pruned history again with the default retention: nothing more to prune.
    let sb = daemon::switchboard(&dir.0, &daemon::config(&dir.0, ""))?;
    let url = ingest_url(&sb.base);
    cx.window(&url, plan.window).await;
    let (small_c, pruned_rate) = cx.interleaved(&url).await?;
    sb.stop();

    let sizes = format!("{} vs {}", fmt_n(plan.small), fmt_n(plan.large));
    let versus = |small: f64, large: f64| {
        format!(
            "{small:.0} vs {large:.0}: {:.2}× slower (medians of {ROUNDS} interleaved windows of {} messages)",
            small / large,
            fmt_n(plan.window)
        )
    };
    row(
        rows,
        format!(
            "Ingest msg/s with {sizes} messages stored ({} clients), every event kept",
            plan.clients
        ),
        versus(small_a, kept_rate),
        "",
        None,
    );
    row(
        rows,
        format!(
            "Ingest msg/s with {sizes} messages stored, the history's events pruned by retention (none pruned during the windows)"
        ),
        versus(small_c, pruned_rate),
        "≤ 1.2× slower",
        Some(small_c / pruned_rate <= 1.2),
    );
    row(
        rows,
        format!(
            "Ingest msg/s with {sizes} messages stored while retention prunes each second's events as they age (`event_retention = \"1s\"`)"
        ),
        versus(small_b, pruning_rate),
        "",
        None,
    );
    row(
        rows,
        format!(
            "Database per message, {} messages, every event kept",
            fmt_n(plan.large)
        ),
        kept.cell(),
        "",
        None,
    );
    row(
        rows,
        "Database per message, the same history after retention pruned its events",
        pruned.cell(),
        "",
        None,
    );
    let (n, ticks, took) = idle_prune;
    row(
        rows,
        format!(
            "Pruning a backlog of {} events (the first pass after the retention was shortened): time; without load: events/s, writer CPU per event",
            kept.events
        ),
        if n < 10_000 {
            format!(
                "{:.1} s; too little was left after the load to measure",
                backlog.as_secs_f64()
            )
        } else {
            format!(
                "{:.1} s; {:.0} events/s, {:.1} µs",
                backlog.as_secs_f64(),
                n as f64 / took.as_secs_f64(),
                ticks as f64 * 10_000.0 / n as f64
            )
        },
        "",
        None,
    );
    let lat = |o: &load::Open| format!("{} ({} errors)", latency_cell(&o.latencies), o.errors);
    row(
        rows,
        format!(
            "Ack latency at {} msg/s with {} stored, p50 / p99 / p999: events kept / the first {} s of the backlog's pruning / pruning as they age",
            plan.rate,
            fmt_n(plan.large),
            plan.secs
        ),
        format!(
            "{} / {} / {}",
            lat(&lat_kept),
            lat(&lat_during),
            lat(&lat_steady)
        ),
        "p99 ≤ 20 ms",
        Some(
            [&lat_kept, &lat_during, &lat_steady]
                .iter()
                .all(|o| o.errors == 0 && pct(&o.latencies, 0.99) <= Duration::from_millis(20)),
        ),
    );
    Ok(())
}
