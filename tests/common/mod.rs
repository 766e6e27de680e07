//! Test kit for end-to-end tests: the real `switchboard` binary on 127.0.0.1:0 with a
//! temporary SQLite file, a fake HTTP receiver, and independent signature checks.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The example token of the test configs.
pub const TOKEN: &str = "test-token-0123456789";
/// A read-only token.
pub const READ_TOKEN: &str = "read-token-0123456789";
/// The webhook secret of the test configs.
pub const WEBHOOK_SECRET: &str = "whsec_dGVzdC13ZWJob29rLXNlY3JldC0xMjM0NTY=";

/// The settings every test daemon shares: loopback, a file database in `dir`, fast
/// retries and reconnects.
pub fn base_config(dir: &Path) -> String {
    format!(
        r#"
[server]
listen = "127.0.0.1:0"
shutdown_timeout = "5s"

[storage]
url = "sqlite://{}/switchboard.db"

[log]
level = "info,switchboard=debug"

[delivery]
retry_initial = "50ms"
retry_max = "400ms"

[supervisor]
restart_initial = "100ms"
restart_max = "1s"
failed_retry = "2s"
"#,
        dir.display()
    )
}

/// An api service `api` with a full-scope token and a read-only one.
pub fn api_service(extra_params: &str) -> String {
    format!(
        r#"
[services.api]
type = "api"
[services.api.params]
{extra_params}
[services.api.params.tokens.full]
token = "{TOKEN}"
scopes = ["read", "reply", "ingest", "admin"]
[services.api.params.tokens.reader]
token = "{READ_TOKEN}"
scopes = ["read"]
"#
    )
}

/// A webhook service `hook` pointing at `url`.
pub fn webhook_service(url: &str, extra: &str) -> String {
    format!(
        r#"
[services.hook]
type = "webhook"
[services.hook.params]
url = "{url}"
secret = "{WEBHOOK_SECRET}"
{extra}
"#
    )
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
        let ok = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.pid().to_string())
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{name} failed");
    }

    /// SIGTERM, then waits (bounded) for the exit.
    pub fn terminate(mut self) -> ExitStatus {
        self.signal("TERM");
        self.wait(Duration::from_secs(20))
    }

    /// SIGKILL, then waits.
    pub fn kill(mut self) {
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
pub fn run_cli(args: &[&str], env: &[(&str, &str)]) -> (ExitStatus, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_switchboard"));
    cmd.args(args).env_remove("SWITCHBOARD_CONFIG");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    (
        out.status,
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// One request a [`Receiver`] got.
#[derive(Debug, Clone)]
pub struct Received {
    /// Request path.
    pub path: String,
    /// Headers.
    pub headers: HeaderMap,
    /// Raw body.
    pub body: Bytes,
}

impl Received {
    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap()
    }

    /// A header as text.
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap())
            .unwrap_or("")
    }
}

/// A fake HTTP endpoint on 127.0.0.1:0 that records every request and answers 200,
/// or 503 while `failing` is set.
pub struct Receiver {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Recorded requests, oldest first (failed ones included).
    pub got: Arc<Mutex<Vec<(Received, u16)>>>,
    /// Answer 503 while true.
    pub failing: Arc<std::sync::atomic::AtomicBool>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Receiver {
    /// Starts a receiver.
    pub async fn start() -> Receiver {
        Self::start_on("127.0.0.1:0").await
    }

    /// Starts a receiver on a given address (to come back on the same port).
    pub async fn start_on(addr: &str) -> Receiver {
        let got: Arc<Mutex<Vec<(Received, u16)>>> = Default::default();
        let failing: Arc<std::sync::atomic::AtomicBool> = Default::default();
        let (g, f) = (got.clone(), failing.clone());
        let app = axum::Router::new().fallback(
            move |uri: axum::http::Uri, headers: HeaderMap, body: Bytes| {
                let (g, f) = (g.clone(), f.clone());
                async move {
                    let status = if f.load(std::sync::atomic::Ordering::SeqCst) {
                        StatusCode::SERVICE_UNAVAILABLE
                    } else {
                        StatusCode::OK
                    };
                    g.lock().unwrap().push((
                        Received {
                            path: uri.path().to_owned(),
                            headers,
                            body,
                        },
                        status.as_u16(),
                    ));
                    status
                }
            },
        );
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = rx.await;
                })
                .await
                .unwrap();
        });
        Receiver {
            addr,
            got,
            failing,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// `http://addr{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Requests answered 2xx.
    pub fn accepted(&self) -> Vec<Received> {
        self.got
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, s)| *s < 300)
            .map(|(r, _)| r.clone())
            .collect()
    }

    /// All requests, with the status they got.
    pub fn all(&self) -> Vec<(Received, u16)> {
        self.got.lock().unwrap().clone()
    }

    /// Stops listening (the port closes).
    pub async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

/// Checks a Standard Webhooks signature, computed here independently of switchboard.
pub fn verify_standard_webhook(secret: &str, r: &Received) -> bool {
    let key = B64.decode(secret.strip_prefix("whsec_").unwrap()).unwrap();
    let id = r.header("webhook-id");
    let ts = r.header("webhook-timestamp");
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{id}.{ts}.").as_bytes());
    mac.update(&r.body);
    let expected = format!("v1,{}", B64.encode(mac.finalize().into_bytes()));
    let fresh = ts
        .parse::<i64>()
        .is_ok_and(|t| (t - jiff::Timestamp::now().as_second()).abs() < 300);
    fresh
        && r.header("webhook-signature")
            .split(' ')
            .any(|s| s == expected)
}

/// Polls `f` every 20 ms until it returns `Some`, for at most `limit`.
pub async fn eventually<T, F, Fut>(limit: Duration, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        if Instant::now() > deadline {
            panic!("timed out after {limit:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A client for the daemon's API.
pub struct Api {
    /// Base URL.
    pub base: String,
    /// Bearer token.
    pub token: String,
    /// HTTP client.
    pub http: reqwest::Client,
}

impl Api {
    /// A client with the full-scope token.
    pub fn new(d: &Daemon) -> Api {
        let _ = rustls::crypto::ring::default_provider().install_default();
        Api {
            base: d.url(""),
            token: TOKEN.into(),
            http: reqwest::Client::new(),
        }
    }

    /// GET → (status, JSON).
    pub async fn get(&self, path: &str) -> (u16, serde_json::Value) {
        let r = self
            .http
            .get(format!("{}{}", self.base, path))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(serde_json::Value::Null))
    }

    /// POST JSON → (status, JSON).
    pub async fn post(&self, path: &str, body: &serde_json::Value) -> (u16, serde_json::Value) {
        self.post_raw(path, body.to_string()).await
    }

    /// POST a raw body → (status, JSON).
    pub async fn post_raw(
        &self,
        path: &str,
        body: impl Into<reqwest::Body>,
    ) -> (u16, serde_json::Value) {
        let r = self
            .http
            .post(format!("{}{}", self.base, path))
            .bearer_auth(&self.token)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(serde_json::Value::Null))
    }

    /// Posts an agent's reply into conversation `conversation` (expects 202); its id.
    pub async fn reply(&self, conversation: &str, body: serde_json::Value) -> String {
        let (s, m) = self
            .post(&format!("/v1/conversations/{conversation}/messages"), &body)
            .await;
        assert_eq!(s, 202, "{m}");
        m["id"].as_str().unwrap().to_owned()
    }

    /// Waits (at most 15 s) until message `id` has `status`; the message.
    pub async fn wait_status(&self, id: &str, status: &str) -> serde_json::Value {
        eventually(
            Duration::from_secs(15),
            &format!("message {id} to be {status}"),
            || async {
                let (_, m) = self.get(&format!("/v1/messages/{id}")).await;
                (m["status"] == status).then_some(m)
            },
        )
        .await
    }

    /// Waits (at most 15 s) until service `id` is in connection state `kind` as
    /// `GET /v1/services` shows it; that state.
    pub async fn wait_state(&self, id: &str, kind: &str) -> serde_json::Value {
        self.wait_state_within(id, kind, Duration::from_secs(15))
            .await
    }

    /// [`Api::wait_state`] with its own limit (XMPP logins against Prosody take longer).
    pub async fn wait_state_within(
        &self,
        id: &str,
        kind: &str,
        limit: Duration,
    ) -> serde_json::Value {
        eventually(limit, &format!("service {id} to be {kind}"), || async {
            let (_, list) = self.get("/v1/services").await;
            let svc = list["data"].as_array()?.iter().find(|s| s["id"] == id)?;
            (svc["state"]["kind"] == kind).then(|| svc["state"].clone())
        })
        .await
    }

    /// Posts an inbound message through the `api` service.
    pub async fn inbound(
        &self,
        external_id: &str,
        contact: &str,
        text: &str,
    ) -> (u16, serde_json::Value) {
        self.post(
            "/v1/services/api/messages",
            &serde_json::json!({"external_id": external_id, "contact": {"external_id": contact}, "text": text}),
        )
        .await
    }
}

/// Reads events from `/v1/events?after=` over the websocket until `n` arrived or
/// `limit` passed.
pub async fn read_events(
    d: &Daemon,
    token: &str,
    after: i64,
    n: usize,
    limit: Duration,
) -> Vec<serde_json::Value> {
    use futures_util::StreamExt;
    let url = format!(
        "ws://{}/v1/events?after={after}&access_token={token}",
        d.addr
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("websocket connects");
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + limit;
    while out.len() < n {
        match tokio::time::timeout_at(deadline, ws.next()).await {
            Ok(Some(Ok(tokio_tungstenite::tungstenite::Message::Text(t)))) => {
                out.push(serde_json::from_str(&t).unwrap())
            }
            Ok(Some(Ok(_))) => {}
            _ => break,
        }
    }
    out
}
