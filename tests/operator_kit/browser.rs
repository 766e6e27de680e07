//! A headless Debian Chromium driven over the Chrome DevTools Protocol: one websocket
//! to the browser, one page target in flat session mode. Enough to navigate, type,
//! click, read the DOM, collect console errors and take screenshots.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio_tungstenite::tungstenite::Message;

type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<Value>>>>;
type Sink = futures_util::stream::SplitSink<
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
    Message,
>;

/// Where Debian puts the browser.
pub const CHROMIUM: &str = "/usr/bin/chromium";
/// How long one protocol command may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(20);

/// A running headless browser with one page open.
pub struct Browser {
    child: Child,
    _profile: tempfile::TempDir,
    sink: tokio::sync::Mutex<Sink>,
    pending: Pending,
    next_id: AtomicU64,
    session: String,
    /// Console errors, uncaught exceptions and browser log errors, in arrival order.
    pub errors: Arc<Mutex<Vec<String>>>,
    reader: tokio::task::JoinHandle<()>,
}

/// Whether the browser is installed; when it is not, a test skips loudly unless
/// `SWITCHBOARD_REQUIRE_BROWSER` is set (CI sets it), and then fails.
pub fn available() -> bool {
    if Path::new(CHROMIUM).exists() {
        return true;
    }
    if std::env::var_os("SWITCHBOARD_REQUIRE_BROWSER").is_some() {
        panic!("{CHROMIUM} is missing and SWITCHBOARD_REQUIRE_BROWSER is set");
    }
    eprintln!(
        "\n*** SKIPPED: {CHROMIUM} is not installed (apt-get install chromium); \
         set SWITCHBOARD_REQUIRE_BROWSER=1 to make this a failure ***\n"
    );
    false
}

impl Browser {
    /// Starts Chromium headless on a fresh profile and opens a blank page.
    pub async fn start() -> Browser {
        let profile = tempfile::tempdir().unwrap();
        let mut cmd = Command::new(CHROMIUM);
        cmd.args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            "--disable-default-apps",
            "--no-first-run",
            "--no-default-browser-check",
            "--window-size=1280,900",
            "--remote-debugging-port=0",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("about:blank")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
        // Its own process group, so that every helper process it starts is stopped too.
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let mut child = cmd.spawn().expect("chromium starts");
        let port_file = profile.path().join("DevToolsActivePort");
        let deadline = Instant::now() + Duration::from_secs(30);
        let (port, path) = loop {
            if let Ok(text) = std::fs::read_to_string(&port_file)
                && let [port, path, ..] = text.lines().collect::<Vec<_>>()[..]
            {
                break (port.to_owned(), path.to_owned());
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!("chromium exited at start: {status}");
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("chromium wrote no DevToolsActivePort within 30s");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let (ws, _) = tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{port}{path}"))
            .await
            .expect("the DevTools websocket");
        let (sink, mut stream) = ws.split();
        let pending: Pending = Default::default();
        let errors: Arc<Mutex<Vec<String>>> = Default::default();
        let (p, e) = (pending.clone(), errors.clone());
        let reader = tokio::spawn(async move {
            while let Some(Ok(msg)) = stream.next().await {
                let Message::Text(text) = msg else { continue };
                let Ok(v) = serde_json::from_str::<Value>(&text) else {
                    continue;
                };
                if let Some(id) = v["id"].as_u64() {
                    if let Some(tx) = p.lock().unwrap().remove(&id) {
                        let _ = tx.send(v);
                    }
                } else if let Some(err) = console_error(&v) {
                    e.lock().unwrap().push(err);
                }
            }
        });
        let mut b = Browser {
            child,
            _profile: profile,
            sink: tokio::sync::Mutex::new(sink),
            pending,
            next_id: AtomicU64::new(1),
            session: String::new(),
            errors,
            reader,
        };
        let target = b
            .call(None, "Target.createTarget", json!({"url": "about:blank"}))
            .await;
        let target_id = target["targetId"].as_str().unwrap().to_owned();
        let attached = b
            .call(
                None,
                "Target.attachToTarget",
                json!({"targetId": target_id, "flatten": true}),
            )
            .await;
        b.session = attached["sessionId"].as_str().unwrap().to_owned();
        for domain in ["Page.enable", "Runtime.enable", "Log.enable"] {
            b.send(domain, json!({})).await;
        }
        b
    }

    async fn call(&self, session: Option<&str>, method: &str, params: Value) -> Value {
        self.try_call(session, method, params)
            .await
            .unwrap_or_else(|err| panic!("{method}: {err}"))
    }

    /// A command's result, or the error DevTools answered with.
    async fn try_call(
        &self,
        session: Option<&str>,
        method: &str,
        params: Value,
    ) -> Result<Value, Value> {
        let id = self.next_id.fetch_add(1, Ordering::SeqCst);
        let (tx, rx) = oneshot::channel();
        self.pending.lock().unwrap().insert(id, tx);
        let mut msg = json!({"id": id, "method": method, "params": params});
        if let Some(s) = session {
            msg["sessionId"] = json!(s);
        }
        self.sink
            .lock()
            .await
            .send(Message::Text(msg.to_string().into()))
            .await
            .expect("the DevTools socket takes a command");
        let reply = tokio::time::timeout(COMMAND_TIMEOUT, rx)
            .await
            .unwrap_or_else(|_| panic!("{method}: no answer within {COMMAND_TIMEOUT:?}"))
            .expect("an answer");
        match reply.get("error") {
            Some(err) => Err(err.clone()),
            None => Ok(reply["result"].clone()),
        }
    }

    /// Sends a command to the page.
    pub async fn send(&self, method: &str, params: Value) -> Value {
        let session = self.session.clone();
        self.call(Some(&session), method, params).await
    }

    /// Evaluates JavaScript in the page (promises awaited); its value.
    pub async fn eval(&self, expression: &str) -> Value {
        self.try_eval(expression)
            .await
            .unwrap_or_else(|err| panic!("Runtime.evaluate: {err}"))
    }

    /// [`Browser::eval`], or the error DevTools answered with instead. An exception the
    /// expression threw still fails the test.
    async fn try_eval(&self, expression: &str) -> Result<Value, Value> {
        let session = self.session.clone();
        let r = self
            .try_call(
                Some(&session),
                "Runtime.evaluate",
                json!({"expression": expression, "returnByValue": true, "awaitPromise": true}),
            )
            .await?;
        if let Some(ex) = r.get("exceptionDetails") {
            panic!("{expression}: {ex}");
        }
        Ok(r["result"]["value"].clone())
    }

    /// Navigates and waits (bounded) until the document has loaded.
    pub async fn goto(&self, url: &str) {
        self.send("Page.navigate", json!({"url": url})).await;
        self.wait_for(
            "document loaded",
            "document.readyState === 'complete' && location.href !== 'about:blank'",
        )
        .await;
    }

    /// Polls a JavaScript condition every 100 ms for at most 30 s. An evaluation that
    /// a navigation cut short ("Inspected target navigated or closed": the document it
    /// ran in was replaced) counts as not yet true; any other error fails the test.
    pub async fn wait_for(&self, what: &str, condition: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match self.try_eval(&format!("!!({condition})")).await {
                Ok(Value::Bool(true)) => return,
                Ok(_) => {}
                Err(err)
                    if err["message"]
                        .as_str()
                        .is_some_and(|m| m.contains("navigated")) => {}
                Err(err) => panic!("Runtime.evaluate: {err}"),
            }
            if Instant::now() > deadline {
                let html = self.eval("document.documentElement.outerHTML").await;
                panic!("timed out waiting for {what} ({condition}); the page:\n{html}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Types into the field matched by a CSS selector, as keystrokes.
    pub async fn type_into(&self, selector: &str, text: &str) {
        self.eval(&format!(
            "document.querySelector({}).focus()",
            serde_json::to_string(selector).unwrap()
        ))
        .await;
        self.send("Input.insertText", json!({"text": text})).await;
    }

    /// Clicks the element matched by a CSS selector with a real mouse press at its
    /// centre.
    pub async fn click(&self, selector: &str) {
        let rect = self
            .eval(&format!(
                "(() => {{ const r = document.querySelector({}).getBoundingClientRect(); \
                 return [r.x + r.width / 2, r.y + r.height / 2]; }})()",
                serde_json::to_string(selector).unwrap()
            ))
            .await;
        let (x, y) = (rect[0].as_f64().unwrap(), rect[1].as_f64().unwrap());
        for kind in ["mousePressed", "mouseReleased"] {
            self.send(
                "Input.dispatchMouseEvent",
                json!({"type": kind, "x": x, "y": y, "button": "left", "clickCount": 1}),
            )
            .await;
        }
    }

    /// Clicks, then waits until a new document has replaced the current one and loaded
    /// (a form submission and its redirect).
    pub async fn click_and_load(&self, selector: &str) {
        self.eval("window.__before_click = true").await;
        self.click(selector).await;
        self.wait_for(
            "the next page",
            "window.__before_click === undefined && document.readyState === 'complete'",
        )
        .await;
    }

    /// The cookies the browser holds for `url`.
    pub async fn cookies(&self, url: &str) -> Vec<Value> {
        let r = self
            .send("Network.getCookies", json!({"urls": [url]}))
            .await;
        r["cookies"].as_array().cloned().unwrap_or_default()
    }

    /// Writes a PNG of the page to `path`.
    pub async fn screenshot(&self, path: &Path) -> PathBuf {
        let r = self
            .send(
                "Page.captureScreenshot",
                json!({"format": "png", "captureBeyondViewport": true}),
            )
            .await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(r["data"].as_str().unwrap())
            .unwrap();
        assert!(png.starts_with(b"\x89PNG"), "a PNG");
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).unwrap();
        }
        std::fs::write(path, png).unwrap();
        path.to_owned()
    }

    /// The errors collected so far.
    pub fn errors(&self) -> Vec<String> {
        self.errors.lock().unwrap().clone()
    }
}

/// A console `error`, an uncaught exception or a browser log entry at level error.
fn console_error(v: &Value) -> Option<String> {
    let p = &v["params"];
    match v["method"].as_str()? {
        "Runtime.consoleAPICalled" if p["type"] == "error" => {
            Some(format!("console.error: {}", p["args"]))
        }
        "Runtime.exceptionThrown" => Some(format!("exception: {}", p["exceptionDetails"])),
        "Log.entryAdded" if p["entry"]["level"] == "error" => Some(format!(
            "log: {} ({})",
            p["entry"]["text"], p["entry"]["url"]
        )),
        _ => None,
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        self.reader.abort();
        // The whole group: the browser and the renderer/GPU/utility processes it forked.
        unsafe {
            libc::kill(-(self.child.id() as i32), libc::SIGKILL);
        }
        let _ = self.child.wait();
    }
}
