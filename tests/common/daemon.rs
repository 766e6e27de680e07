//! The real binary: a daemon started on a config file, its logs, signals and exit; and
//! one-shot CLI runs.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Sends `kill -<name>` (`TERM`, `STOP`, `KILL`, …) to process `pid`.
pub fn signal(pid: impl std::fmt::Display, name: &str) -> Result<(), String> {
    let status = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .status()
        .map_err(|e| format!("kill -{name} {pid}: {e}"))?;
    status
        .success()
        .then_some(())
        .ok_or_else(|| format!("kill -{name} {pid}: {status}"))
}

/// A running daemon.
pub struct Daemon {
    child: Option<Child>,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Everything it logged so far.
    pub logs: Arc<Mutex<Vec<String>>>,
    /// Its config file.
    pub config_path: PathBuf,
}

impl Daemon {
    /// Writes `config` to `dir/switchboard.toml` and starts the daemon on it.
    pub fn start(dir: &Path, config: &str) -> Daemon {
        let config_path = dir.join("switchboard.toml");
        std::fs::write(&config_path, config).unwrap();
        Self::start_at(&config_path, &[])
    }

    /// Starts the daemon on an existing config file with extra environment.
    pub fn start_at(config_path: &Path, env: &[(&str, &str)]) -> Daemon {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_switchboard"));
        cmd.arg("run")
            .arg("--config")
            .arg(config_path)
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("switchboard starts");
        let stderr = child.stderr.take().unwrap();
        let logs = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = logs.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                // "listen=ADDR" in text logs, "listen":"ADDR" in JSON logs.
                let text = line
                    .split("listen=")
                    .nth(1)
                    .and_then(|r| r.split_whitespace().next());
                let json = line
                    .split("\"listen\":\"")
                    .nth(1)
                    .and_then(|r| r.split('"').next());
                if let Some(addr) = text.or(json) {
                    let _ = tx.send(addr.to_owned());
                }
                sink.lock().unwrap().push(line);
            }
        });
        let addr = match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(a) => a.parse().expect("a socket address"),
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "switchboard did not start:\n{}",
                    logs.lock().unwrap().join("\n")
                );
            }
        };
        Daemon {
            child: Some(child),
            addr,
            logs,
            config_path: config_path.to_owned(),
        }
    }

    /// `http://addr{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// Sends a signal by name (`TERM`, `HUP`, `KILL`).
    pub fn signal(&self, name: &str) {
        signal(self.pid(), name).unwrap();
    }

    /// SIGTERM, then waits (bounded) for the exit.
    pub fn terminate(mut self) -> ExitStatus {
        self.stop()
    }

    /// SIGKILL, then waits.
    pub fn kill(mut self) {
        self.crash()
    }

    /// [`Daemon::terminate`] in place: what is left is a stopped daemon's logs.
    pub fn stop(&mut self) -> ExitStatus {
        self.signal("TERM");
        self.wait(Duration::from_secs(20))
    }

    /// [`Daemon::kill`] in place.
    pub fn crash(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn wait(&mut self, limit: Duration) -> ExitStatus {
        let mut child = self.child.take().unwrap();
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!(
                    "switchboard did not exit within {limit:?}:\n{}",
                    self.log_text()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// All log lines so far, joined.
    pub fn log_text(&self) -> String {
        self.logs.lock().unwrap().join("\n")
    }

    /// Panics if any of `secrets` was logged.
    pub fn assert_never_logged(&self, secrets: &[&str]) {
        let logs = self.log_text();
        for s in secrets {
            assert!(!logs.contains(s), "a secret was logged: {s:?}");
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Runs the binary to completion with arguments; returns (status, stdout, stderr).
/// Bounded: a run that has not exited within a minute is killed and fails the test.
pub fn run_cli(args: &[&str], env: &[(&str, &str)]) -> (ExitStatus, String, String) {
    use std::io::Read;
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_switchboard"));
    cmd.args(args)
        .env_remove("SWITCHBOARD_CONFIG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            text
        })
    };
    let stdout = drain(Box::new(child.stdout.take().unwrap()));
    let stderr = drain(Box::new(child.stderr.take().unwrap()));
    let limit = Duration::from_secs(60);
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "switchboard {args:?} did not exit within {limit:?}; it wrote:\n{}",
                stderr.join().unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    (
        status,
        stdout.join().unwrap_or_default(),
        stderr.join().unwrap_or_default(),
    )
}
