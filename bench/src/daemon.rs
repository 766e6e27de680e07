//! Starting the release `switchboard` (and the bare ceiling server) for a measurement.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};

/// The bench api token.
pub const TOKEN: &str = "bench-token-0123456789abcdef";

/// A child process killed on drop.
pub struct Proc {
    child: Child,
    /// `http://addr`.
    pub base: String,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Proc {
    /// Resident set size in KiB.
    pub fn rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
        line.split_whitespace().nth(1)?.parse().ok()
    }

    /// CPU time (user + system, clock ticks of 10 ms) of the process's threads named
    /// `name` (all threads when `None`), from `/proc/<pid>/task/*/stat`.
    pub fn cpu_ticks(&self, name: Option<&str>) -> u64 {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{}/task", self.child.id())) else {
            return 0;
        };
        tasks
            .filter_map(Result::ok)
            .filter_map(|t| std::fs::read_to_string(t.path().join("stat")).ok())
            .filter_map(|stat| {
                let stat = Stat::parse(&stat)?;
                name.is_none_or(|n| n == stat.comm).then_some(stat.ticks)
            })
            .sum()
    }

    /// SIGTERM and wait.
    pub fn stop(mut self) {
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

/// What the benchmarks read of a `/proc/.../stat` line (stat(5)).
pub struct Stat<'a> {
    /// The thread's or process's name.
    pub comm: &'a str,
    /// The parent's pid.
    pub ppid: u32,
    /// User + system CPU time in clock ticks (10 ms).
    pub ticks: u64,
}

impl<'a> Stat<'a> {
    pub fn parse(stat: &'a str) -> Option<Stat<'a>> {
        // "pid (comm) state …": comm may hold spaces, so split at the last ')'.
        let (head, rest) = stat.rsplit_once(')')?;
        let comm = head.split_once('(')?.1;
        let f: Vec<&str> = rest.split_whitespace().collect();
        // `rest` starts at field 3: ppid is field 4, utime and stime fields 14 and 15.
        Some(Stat {
            comm,
            ppid: f.get(1)?.parse().ok()?,
            ticks: f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?,
        })
    }
}

/// A directory removed on drop.
pub struct Scratch(pub PathBuf);

impl Scratch {
    /// A fresh directory under the system temp dir.
    pub fn new(name: &str) -> anyhow::Result<Self> {
        let dir = std::env::temp_dir().join(format!("sb-bench-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        Ok(Scratch(dir))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn sibling(name: &str, env: &str) -> anyhow::Result<PathBuf> {
    if let Ok(p) = std::env::var(env) {
        return Ok(p.into());
    }
    let bin = std::env::current_exe()?.with_file_name(name);
    if !bin.exists() {
        bail!(
            "{} not found: build it with `cargo build --release -p switchboard` or set {env}",
            bin.display()
        );
    }
    Ok(bin)
}

/// Spawns `cmd` and waits for it to print `listen=ADDR` on stderr.
fn spawn(mut cmd: Command) -> anyhow::Result<Proc> {
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("spawning")?;
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
        .recv_timeout(Duration::from_secs(60))
        .context("the process did not report its address")?;
    Ok(Proc {
        child,
        base: format!("http://{addr}"),
    })
}

/// The api service every bench daemon ingests through.
fn bench_service() -> String {
    format!(
        "[services.bench]\ntype = \"api\"\n[services.bench.params.tokens.bench]\ntoken = \"{TOKEN}\"\nscopes = [\"read\", \"reply\", \"ingest\"]\n"
    )
}

/// The config of a bench daemon: one api service, durable commits, and `extra` services.
pub fn config(dir: &std::path::Path, extra: &str) -> String {
    config_with(dir, "full", "", extra)
}

/// [`config`] with a chosen `storage.synchronous` and more `[storage]` keys.
pub fn config_with(dir: &std::path::Path, synchronous: &str, storage: &str, extra: &str) -> String {
    format!(
        r#"
[server]
listen = "127.0.0.1:0"
[storage]
url = "sqlite://{}/bench.db"
synchronous = "{synchronous}"
{storage}
[log]
level = "warn,switchboard::daemon=info"
{bench}{extra}
"#,
        dir.display(),
        bench = bench_service()
    )
}

/// The config of a bench daemon on PostgreSQL database `url` as instance `instance_id`:
/// [`config`]'s api service, several instances sharing the database.
pub fn config_on(url: &str, instance_id: &str) -> String {
    format!(
        r#"
[server]
listen = "127.0.0.1:0"
instance_id = "{instance_id}"
[storage]
url = "{url}"
[log]
level = "warn,switchboard::daemon=info"
{bench}"#,
        bench = bench_service()
    )
}

/// A webhook service subscribed to `message.created`, pointed at `url`.
pub fn webhook(id: &str, url: &str) -> String {
    format!(
        "[services.{id}]\ntype = \"webhook\"\n[services.{id}.params]\nurl = \"{url}\"\nsecret = \"whsec_YmVuY2gtd2ViaG9vay1zZWNyZXQtMTIzNA==\"\nevents = [\"message.created\"]\n"
    )
}

/// Starts switchboard on `config` in `dir` (the database is kept between starts).
pub fn switchboard(dir: &std::path::Path, config: &str) -> anyhow::Result<Proc> {
    let path = dir.join("switchboard.toml");
    std::fs::write(&path, config)?;
    let mut cmd = Command::new(sibling("switchboard", "SWITCHBOARD_BIN")?);
    cmd.args(["run", "--config"])
        .arg(&path)
        .env_remove("RUST_LOG");
    spawn(cmd)
}

/// Starts the bare ceiling server (this binary, `bare-server`).
pub fn bare() -> anyhow::Result<Proc> {
    let mut cmd = Command::new(std::env::current_exe()?);
    cmd.arg("bare-server");
    spawn(cmd)
}
