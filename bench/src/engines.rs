//! Ingest per storage engine: SQLite against PostgreSQL with one and with three
//! instances on one database, same machine, same load, A/B interleaved over rounds.
//!
//! PostgreSQL is Debian's server started here (core's test kit) with durable commits
//! (`fsync` and `synchronous_commit` on), as SQLite runs with `synchronous = "full"`.
//! CPU per acknowledged message is read from `/proc` ticks: the daemons' writer threads,
//! the daemons in all, and the PostgreSQL server's processes.

use std::time::Duration;

use switchboard_core::testkit::postgres::{PgOptions, PgServer};

use crate::daemon::{self, Proc, Scratch, Stat};
use crate::load::{self, Counter, ingest_url};

/// Where a run stores.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Setup {
    Sqlite,
    Postgres { instances: usize },
}

impl Setup {
    pub fn label(self) -> String {
        match self {
            Setup::Sqlite => "SQLite, 1 instance".into(),
            Setup::Postgres { instances: 1 } => "PostgreSQL, 1 instance".into(),
            Setup::Postgres { instances } => {
                format!("PostgreSQL, {instances} instances on one database")
            }
        }
    }
}

/// What one closed-loop run achieved.
pub struct EngineRun {
    pub rate: f64,
    pub errors: u64,
    /// Writer threads' CPU per acknowledged message, all instances together (µs).
    pub writer_us: f64,
    /// The daemons' CPU per acknowledged message, all instances together (µs).
    pub daemon_us: f64,
    /// The PostgreSQL server's CPU per acknowledged message (µs; 0 on SQLite).
    pub db_us: f64,
}

/// CPU ticks (10 ms) of the server's processes: the postmaster and its children.
fn server_ticks(pg: &PgServer) -> u64 {
    let Some(postmaster) = std::fs::read_to_string(pg.root().join("data/postmaster.pid"))
        .ok()
        .and_then(|s| s.lines().next()?.trim().parse::<u32>().ok())
    else {
        return 0;
    };
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return 0;
    };
    procs
        .filter_map(Result::ok)
        .filter_map(|p| {
            let pid: u32 = p.file_name().to_str()?.parse().ok()?;
            let text = std::fs::read_to_string(p.path().join("stat")).ok()?;
            let stat = Stat::parse(&text)?;
            (pid == postmaster || stat.ppid == postmaster).then_some(stat.ticks)
        })
        .sum()
}

/// The daemons of one run and their shared storage.
fn start(setup: Setup, pg: &PgServer, dir: &Scratch) -> anyhow::Result<Vec<Proc>> {
    match setup {
        Setup::Sqlite => Ok(vec![daemon::switchboard(
            &dir.0,
            &daemon::config_with(&dir.0, "full", "", ""),
        )?]),
        Setup::Postgres { instances } => {
            let url = pg.database().map_err(anyhow::Error::msg)?;
            (0..instances)
                .map(|i| {
                    let sub = dir.0.join(format!("instance-{i}"));
                    std::fs::create_dir_all(&sub)?;
                    daemon::switchboard(&sub, &daemon::config_on(&url, &format!("bench-{i}")))
                })
                .collect()
        }
    }
}

/// One warm-up second, then a closed loop of `clients` spread over the instances.
pub async fn run(
    setup: Setup,
    pg: &PgServer,
    clients: usize,
    secs: Duration,
) -> anyhow::Result<EngineRun> {
    let dir = Scratch::new("engines")?;
    let procs = start(setup, pg, &dir)?;
    let urls: Vec<String> = procs.iter().map(|p| ingest_url(&p.base)).collect();
    let next = Counter::default();
    load::closed_loop_spread(&urls, clients, Duration::from_secs(1), None, 1000, &next).await;
    let ticks = |name: Option<&str>| procs.iter().map(|p| p.cpu_ticks(name)).sum::<u64>();
    let (w0, d0, s0) = (ticks(Some("sb-writer")), ticks(None), server_ticks(pg));
    let closed = load::closed_loop_spread(&urls, clients, secs, None, 1000, &next).await;
    let (w1, d1, s1) = (ticks(Some("sb-writer")), ticks(None), server_ticks(pg));
    for p in procs {
        p.stop();
    }
    let per = |ticks: u64| ticks as f64 * 10_000.0 / closed.acked.max(1) as f64;
    Ok(EngineRun {
        rate: closed.rate,
        errors: closed.errors,
        writer_us: per(w1 - w0),
        daemon_us: per(d1 - d0),
        db_us: if setup == Setup::Sqlite {
            0.0
        } else {
            per(s1.saturating_sub(s0))
        },
    })
}

/// The setups, interleaved over `rounds`; per setup the runs in order.
pub async fn compare(
    clients: usize,
    secs: Duration,
    rounds: usize,
) -> anyhow::Result<Vec<(Setup, Vec<EngineRun>)>> {
    let pg = PgServer::start(PgOptions { durable: true }).map_err(anyhow::Error::msg)?;
    let setups = [
        Setup::Sqlite,
        Setup::Postgres { instances: 1 },
        Setup::Postgres { instances: 3 },
    ];
    let mut out: Vec<(Setup, Vec<EngineRun>)> = setups.iter().map(|s| (*s, Vec::new())).collect();
    for round in 0..rounds {
        for (setup, runs) in out.iter_mut() {
            eprintln!("engines, round {}: {} …", round + 1, setup.label());
            let r = run(*setup, &pg, clients, secs).await?;
            eprintln!(
                "  {:.0} msg/s ({} errors); CPU/msg: writers {:.1} µs, daemons {:.1} µs, server {:.1} µs",
                r.rate, r.errors, r.writer_us, r.daemon_us, r.db_us
            );
            runs.push(r);
        }
    }
    Ok(out)
}

/// The median of `f` over `runs`.
pub fn median(runs: &[EngineRun], f: impl Fn(&EngineRun) -> f64) -> f64 {
    load::median(runs.iter().map(f).collect())
}
