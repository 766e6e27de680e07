//! A real Prosody for tests: its own config file and data directory in a temp dir, on
//! free loopback ports, users made with `prosodyctl register`. Stopped (SIGTERM, then
//! SIGKILL) when dropped.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How a test Prosody secures client connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// Plaintext allowed (PLAIN over TCP), for `tls = "none"`.
    Plain,
    /// A certificate for `localhost` signed by a test CA; STARTTLS required, and a
    /// direct-TLS port too.
    Tls,
}

/// A running (or stopped) Prosody.
pub struct Prosody {
    dir: tempfile::TempDir,
    child: Option<Child>,
    /// Client-to-server port (STARTTLS or plain).
    pub port: u16,
    /// Direct TLS port (XEP-0368), served only with [`Security::Tls`].
    pub tls_port: u16,
    /// The test CA's certificate (PEM), with [`Security::Tls`].
    pub ca_file: Option<PathBuf>,
    security: Security,
    log_level: &'static str,
    smacks: bool,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Prosody {
    /// Writes the config, registers `users` (name, password) and starts the server.
    /// `log_level` is Prosody's minimum (`debug` shows stream closes, `info` keeps the
    /// server fast under load).
    pub fn start(security: Security, users: &[(&str, &str)], log_level: &'static str) -> Prosody {
        Self::start_with(security, users, log_level, true)
    }

    /// Like [`Prosody::start`], with or without XEP-0198 stream management.
    pub fn start_with(
        security: Security,
        users: &[(&str, &str)],
        log_level: &'static str,
        smacks: bool,
    ) -> Prosody {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("data")).unwrap();
        std::fs::create_dir_all(dir.path().join("certs")).unwrap();
        let ca_file = (security == Security::Tls).then(|| make_certs(dir.path()));
        let mut p = Prosody {
            dir,
            child: None,
            port: free_port(),
            tls_port: free_port(),
            ca_file,
            security,
            log_level,
            smacks,
        };
        p.write_config();
        for (user, pass) in users {
            p.register(user, pass);
        }
        p.launch();
        p
    }

    fn config_path(&self) -> PathBuf {
        self.dir.path().join("prosody.cfg.lua")
    }

    /// Prosody's log file.
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("prosody.log")
    }

    /// Everything Prosody logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    fn write_config(&self) {
        let d = self.dir.path().display();
        let (security, tls_ports) = match self.security {
            Security::Plain => (
                "c2s_require_encryption = false\nallow_unencrypted_plain_auth = true\n".to_owned(),
                String::new(),
            ),
            Security::Tls => (
                format!(
                    "c2s_require_encryption = true\nssl = {{ certificate = \"{d}/certs/localhost.crt\"; key = \"{d}/certs/localhost.key\" }}\n"
                ),
                self.tls_port.to_string(),
            ),
        };
        let config = format!(
            r#"-- Written by the switchboard test harness.
pidfile = "{d}/prosody.pid"
data_path = "{d}/data"
certificates = "{d}/certs"
run_as_root = true
log = {{ {level} = "{d}/prosody.log" }}
interfaces = {{ "127.0.0.1" }}
c2s_ports = {{ {port} }}
c2s_direct_tls_ports = {{ {tls_ports} }}
s2s_ports = {{ }}
modules_enabled = {{ "roster"; "saslauth"; "tls"; "disco"; "ping"; "posix"{smacks} }}
modules_disabled = {{ "s2s" }}
smacks_hibernation_time = 2
-- Prosody keeps this many unacknowledged stanzas per session and silently drops the
-- oldest beyond it (default 500), so a client that dies during a bigger burst loses
-- the overflow whatever it does. A server that relays floods needs it raised.
smacks_max_queue_size = 10000
storage = "internal"
authentication = "internal_hashed"
{security}
VirtualHost "localhost"
"#,
            level = self.log_level,
            port = self.port,
            smacks = if self.smacks { "; \"smacks\"" } else { "" },
        );
        std::fs::write(self.config_path(), config).unwrap();
    }

    fn register(&self, user: &str, pass: &str) {
        let out = Command::new("prosodyctl")
            .arg("--config")
            .arg(self.config_path())
            .args(["register", user, "localhost", pass])
            .output()
            .expect("prosodyctl runs (is prosody installed? scripts/test.sh installs it)");
        assert!(
            out.status.success(),
            "prosodyctl register {user}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn launch(&mut self) {
        assert!(self.child.is_none(), "already running");
        let child = Command::new("prosody")
            .arg("-F")
            .arg("--config")
            .arg(self.config_path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prosody starts");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "prosody did not open its port:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops the server (SIGTERM, bounded wait, then SIGKILL).
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if child.try_wait().unwrap().is_some() {
                return;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts it again on the same ports and data.
    pub fn restart_after_stop(&mut self) {
        self.launch();
    }
}

impl Drop for Prosody {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A test CA and a leaf certificate for `localhost` signed by it (rustls refuses a
/// self-signed CA certificate used as the server's own). Returns the CA's PEM path.
fn make_certs(dir: &Path) -> PathBuf {
    let certs = dir.join("certs");
    let run = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(&certs)
            .output()
            .expect("openssl runs (scripts/test.sh installs it)");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    std::fs::write(
        certs.join("leaf.ext"),
        "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost\n",
    )
    .unwrap();
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-days",
        "2",
        "-subj",
        "/CN=switchboard test CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "localhost.key",
        "-out",
        "localhost.csr",
        "-subj",
        "/CN=localhost",
    ]);
    run(&[
        "x509",
        "-req",
        "-in",
        "localhost.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "localhost.crt",
        "-days",
        "2",
        "-extfile",
        "leaf.ext",
    ]);
    certs.join("ca.crt")
}
