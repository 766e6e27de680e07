//! A real PostgreSQL server for tests: Debian's `postgresql` binaries, `initdb` into a
//! temporary directory, `pg_ctl start` on a free loopback port, a database per test.
//!
//! Every server is stopped: by [`PgServer`]'s `Drop`, and, for one that outlives its
//! test process (a `static`, a panic, a SIGKILL), by a watchdog started beside it that
//! waits for the test process to end and then stops the server and removes its files.
//!
//! Where the binaries are: `SWITCHBOARD_PG_BIN`, else the newest
//! `/usr/lib/postgresql/*/bin`, else `initdb` on `PATH`. As root (CI), the server runs as
//! the `postgres` user, through `runuser` (initdb refuses root).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

/// A running PostgreSQL cluster owned by this test process.
#[derive(Debug)]
pub struct PgServer {
    bin: PathBuf,
    /// Holds the data directory, the socket and the log; removed when stopped.
    root: PathBuf,
    port: u16,
    run_as: Option<String>,
    /// `fsync` of [`PgOptions::durable`].
    fsync: &'static str,
    stopped: bool,
}

/// Why a server could not be started.
pub type PgResult<T> = Result<T, String>;

/// How to start a server.
#[derive(Debug, Clone, Copy, Default)]
pub struct PgOptions {
    /// Keep `fsync` on (benchmarks that compare durable commits). Tests turn it off: the
    /// server itself is never crashed, only switchboard is.
    pub durable: bool,
}

fn bin_dir() -> PgResult<PathBuf> {
    if let Some(dir) = std::env::var_os("SWITCHBOARD_PG_BIN") {
        return Ok(PathBuf::from(dir));
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((v, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Ok(bin);
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .find(|d| d.join("initdb").exists() && d.join("pg_ctl").exists())
        .ok_or_else(|| {
            "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin, no initdb on PATH; \
             the test command installs Debian's postgresql)"
                .to_string()
        })
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}

fn free_port() -> PgResult<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    Ok(l.local_addr().map_err(|e| e.to_string())?.port())
}

fn run(mut cmd: Command, what: &str) -> PgResult<()> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{what}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{what} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

impl PgServer {
    /// Starts a new cluster with superuser `switchboard` (trust authentication, loopback
    /// only) and returns once it accepts connections.
    pub fn start(opts: PgOptions) -> PgResult<PgServer> {
        let server = PgServer::unstarted(opts.durable)?;
        let mut initdb = server.command("initdb");
        initdb
            .args([
                "-A",
                "trust",
                "-U",
                "switchboard",
                "-E",
                "UTF8",
                "--no-sync",
                "-D",
            ])
            .arg(server.data());
        run(initdb, "initdb")?;
        server.start_on_a_free_port()
    }

    /// A streaming standby of this server: a base backup (`pg_basebackup -R`, so it
    /// follows this server's WAL from then on), started on a port of its own. It is
    /// read-only until [`PgServer::promote`]d. With `synchronous_standby_names = '*'`
    /// set on this server afterwards (see [`PgServer::sql`]; set before, the backup
    /// would copy it), every commit here waits until the standby has it.
    pub fn standby(&self) -> PgResult<PgServer> {
        let standby = PgServer::unstarted(self.fsync == "on")?;
        let mut backup = standby.command("pg_basebackup");
        backup
            .args(["-h", "127.0.0.1", "-U", "switchboard", "-p"])
            .arg(self.port.to_string())
            .args(["-X", "stream", "-R", "--no-sync", "--checkpoint=fast", "-D"])
            .arg(standby.data());
        run(backup, "pg_basebackup")?;
        standby.start_on_a_free_port()
    }

    /// Makes a standby the primary (`pg_ctl promote`); returns once it takes writes.
    pub fn promote(&self) -> PgResult<()> {
        self.pg_ctl(&["-w", "-t", "60", "promote"])
    }

    /// The server dies (immediate shutdown: no checkpoint, every connection cut), as
    /// when its machine is lost. Its files stay until it is dropped.
    pub fn kill(&self) -> PgResult<()> {
        self.pg_ctl(&["-m", "immediate", "-w", "stop"])
    }

    /// Runs `sql` with `psql` as the superuser, in database `postgres`; its output.
    pub fn sql(&self, sql: &str) -> PgResult<String> {
        let out = Command::new(self.bin.join("psql"))
            .args(["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d"])
            .arg(self.url("postgres"))
            .args(["-c", sql])
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("psql: {e}"))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
        } else {
            Err(format!(
                "psql -c {sql:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    }

    /// A server's directory, its user and its watchdog, with no cluster in it yet.
    fn unstarted(durable: bool) -> PgResult<PgServer> {
        let bin = bin_dir()?;
        static N: AtomicU32 = AtomicU32::new(0);
        let root = std::env::temp_dir().join(format!(
            "sb-pg-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&root).map_err(|e| format!("{}: {e}", root.display()))?;
        let run_as = is_root().then(|| "postgres".to_string());
        if run_as.is_some() {
            // The server's user writes its data directory, socket and log here.
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o1777))
                .map_err(|e| e.to_string())?;
        }
        let server = PgServer {
            bin,
            root,
            port: 0,
            run_as,
            fsync: if durable { "on" } else { "off" },
            stopped: false,
        };
        server.watchdog()?;
        Ok(server)
    }

    fn start_on_a_free_port(mut self) -> PgResult<PgServer> {
        // A port found free can be taken before the server binds it: try a few.
        let mut last = String::new();
        for _ in 0..5 {
            self.port = free_port()?;
            match self.pg_ctl_start() {
                Ok(()) => return Ok(self),
                Err(e) => last = format!("{e}\n{}", self.log()),
            }
        }
        Err(last)
    }

    /// `pg_ctl -D <data> <args>`.
    fn pg_ctl(&self, args: &[&str]) -> PgResult<()> {
        let mut ctl = self.command("pg_ctl");
        ctl.arg("-D").arg(self.data()).args(args);
        run(ctl, &format!("pg_ctl {}", args.join(" ")))
    }

    fn pg_ctl_start(&self) -> PgResult<()> {
        let log = self.log_path();
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {} -c fsync={} \
             -c max_connections=300 -c shared_buffers=64MB",
            self.port,
            self.root.display(),
            self.fsync
        );
        self.pg_ctl(&[
            "-l",
            &log.to_string_lossy(),
            "-w",
            "-t",
            "60",
            "-o",
            &options,
            "start",
        ])
    }

    /// An outage: stops the server (fast shutdown: every connection is cut, as a crash
    /// or failover of the database would), keeps it down for `down`, and starts it again
    /// on the same port with its data.
    pub fn outage(&self, down: std::time::Duration) -> PgResult<()> {
        self.pg_ctl(&["-m", "fast", "-w", "stop"])?;
        std::thread::sleep(down);
        self.pg_ctl_start()
    }

    /// One server for the whole test process, started on first use.
    pub fn shared() -> PgResult<&'static PgServer> {
        static SHARED: OnceLock<PgResult<PgServer>> = OnceLock::new();
        SHARED
            .get_or_init(|| PgServer::start(PgOptions::default()))
            .as_ref()
            .map_err(Clone::clone)
    }

    /// The shared server, or why there is none. Without PostgreSQL a test skips (prints
    /// why and returns `None`), unless `SWITCHBOARD_REQUIRE_POSTGRES=1` (the test command
    /// sets it) makes it fail.
    pub fn shared_or_skip() -> Option<&'static PgServer> {
        match PgServer::shared() {
            Ok(s) => Some(s),
            Err(e) if std::env::var_os("SWITCHBOARD_REQUIRE_POSTGRES").is_some() => {
                panic!("SWITCHBOARD_REQUIRE_POSTGRES is set and PostgreSQL did not start: {e}")
            }
            Err(e) => {
                eprintln!("skipped: {e}");
                None
            }
        }
    }

    /// A new, empty database and its URL.
    pub fn database(&self) -> PgResult<String> {
        static N: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "t{}_{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let mut createdb = Command::new(self.bin.join("createdb"));
        createdb
            .args(["-h", "127.0.0.1", "-U", "switchboard", "-p"])
            .arg(self.port.to_string())
            .arg(&name);
        run(createdb, "createdb")?;
        Ok(self.url(&name))
    }

    /// The URL of database `name`.
    pub fn url(&self, name: &str) -> String {
        format!("postgres://switchboard@127.0.0.1:{}/{name}", self.port)
    }

    /// The port it listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.root.join("server.log")).unwrap_or_default()
    }

    /// The server's log file (`log_connections` and the like are set with `ALTER SYSTEM`).
    pub fn log_path(&self) -> PathBuf {
        self.root.join("server.log")
    }

    fn data(&self) -> PathBuf {
        self.root.join("data")
    }

    fn command(&self, tool: &str) -> Command {
        let exe = self.bin.join(tool);
        match &self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(exe);
                c
            }
            None => Command::new(exe),
        }
    }

    /// Stops the server and removes its files once this process is gone, however it ends.
    fn watchdog(&self) -> PgResult<()> {
        use std::os::unix::process::CommandExt;
        let stop = shell_words(&self.command("pg_ctl"));
        let script = format!(
            "while kill -0 {pid} 2>/dev/null; do sleep 0.5; done; \
             {stop} -D '{data}' -m immediate stop >/dev/null 2>&1; rm -rf '{root}'",
            pid = std::process::id(),
            data = self.data().display(),
            root = self.root.display(),
        );
        Command::new("sh")
            .args(["-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Its own process group: a Ctrl-C aimed at the tests does not end it first.
            .process_group(0)
            .spawn()
            .map(drop)
            .map_err(|e| format!("starting the server's watchdog: {e}"))
    }

    /// Stops the server now (fast shutdown) and removes its files.
    pub fn stop(&mut self) {
        if self.stopped {
            return;
        }
        self.stopped = true;
        let _ = self.pg_ctl(&["-m", "fast", "-w", "stop"]);
        let _ = std::fs::remove_dir_all(&self.root);
    }

    /// The directory holding the cluster.
    pub fn root(&self) -> &Path {
        &self.root
    }
}

fn shell_words(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| format!("'{}'", a.to_string_lossy()))
        .collect::<Vec<_>>()
        .join(" ")
}

impl Drop for PgServer {
    fn drop(&mut self) {
        self.stop();
    }
}
