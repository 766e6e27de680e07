//! Fake HTTP servers for tests: [`FakeServer`] serves any axum router on 127.0.0.1:0 and
//! stops with [`FakeServer::stop`] or when dropped; [`Recorder`] is a fake provider that
//! records every request and answers from a function, unless a test scripts a failure
//! for the sends.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

/// A server on 127.0.0.1 that a test starts, and stops, or that stops when dropped.
pub struct FakeServer {
    /// Where it listens.
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl FakeServer {
    /// Serves `router` on a free port.
    pub async fn spawn(router: axum::Router) -> FakeServer {
        Self::spawn_on("127.0.0.1:0", router).await
    }

    /// Serves `router` on `addr` (to come back on the same port after a stop).
    pub async fn spawn_on(addr: &str, router: axum::Router) -> FakeServer {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .unwrap_or_else(|e| panic!("binding a fake server on {addr}: {e}"));
        let addr = listener.local_addr().expect("a bound address");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router)
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                })
                .await;
        });
        FakeServer {
            addr,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// `http://127.0.0.1:port{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Stops listening and waits (at most 5 s) for the server to finish; the port closes.
    pub async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            let abort = t.abort_handle();
            if tokio::time::timeout(Duration::from_secs(5), t)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

/// One request a [`Recorder`] got.
#[derive(Debug, Clone)]
pub struct Request {
    /// `GET`, `POST`, …
    pub method: Method,
    /// The path, without the query.
    pub path: String,
    /// The raw query, if any.
    pub query: Option<String>,
    /// Headers as sent: a fake checks credentials and content types here.
    pub headers: HeaderMap,
    /// The raw body.
    pub body: Bytes,
    /// When it arrived.
    pub at: Instant,
}

impl Request {
    /// A header as text (empty when absent).
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// The body as JSON (`null` when it is not).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// What a [`Recorder`] answers.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The HTTP status.
    pub status: u16,
    /// Extra headers (`Retry-After`, …).
    pub headers: Vec<(&'static str, String)>,
    /// `Content-Type` of `body`.
    pub content_type: &'static str,
    /// The body, `content_type` says how to read it.
    pub body: Vec<u8>,
}

impl Answer {
    /// `status` with a JSON body.
    pub fn json(status: u16, body: serde_json::Value) -> Answer {
        Answer {
            status,
            headers: Vec::new(),
            content_type: "application/json",
            body: body.to_string().into_bytes(),
        }
    }

    /// `status` with an empty body.
    pub fn empty(status: u16) -> Answer {
        Answer {
            status,
            headers: Vec::new(),
            content_type: "text/plain",
            body: Vec::new(),
        }
    }

    /// The same answer with one more header.
    pub fn with_header(mut self, name: &'static str, value: &str) -> Answer {
        self.headers.push((name, value.to_owned()));
        self
    }

    fn into_response(self) -> Response {
        let mut resp = (
            StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            [(axum::http::header::CONTENT_TYPE, self.content_type)],
            self.body,
        )
            .into_response();
        for (name, value) in self.headers {
            if let Ok(v) = HeaderValue::from_str(&value) {
                resp.headers_mut().insert(HeaderName::from_static(name), v);
            }
        }
        resp
    }
}

/// Which sends a [`Recorder`] fails instead of answering them normally.
#[derive(Debug, Clone, Default)]
pub enum Script {
    /// Every send answered by the route.
    #[default]
    Nothing,
    /// Every send, with this answer.
    All(Answer),
    /// Only the `n`th send after the script was set (1-based).
    Nth(usize, Answer),
}

/// The normal answer to a request, and whether a request is a send (the requests a
/// [`Script`] fails; token fetches and account checks are not).
pub type Route = fn(&Request) -> (bool, Answer);

/// A request as a [`Recorder`] saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    /// The request.
    pub request: Request,
    /// The status it was answered with.
    pub status: u16,
    /// Whether it was a send.
    pub send: bool,
}

#[derive(Default)]
struct State {
    seen: Vec<Seen>,
    sends: usize,
    script: Script,
}

/// A fake provider: records every request with the status it got.
pub struct Recorder {
    server: FakeServer,
    state: Arc<Mutex<State>>,
}

impl Recorder {
    /// Starts one that answers with `route`.
    pub async fn start(route: Route) -> Recorder {
        let state: Arc<Mutex<State>> = Arc::default();
        let shared = state.clone();
        let router = axum::Router::new().fallback(
            move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                let state = shared.clone();
                async move {
                    let req = Request {
                        method,
                        path: uri.path().to_owned(),
                        query: uri.query().map(str::to_owned),
                        headers,
                        body,
                        at: Instant::now(),
                    };
                    let (is_send, normal) = route(&req);
                    let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
                    let answer = if is_send {
                        st.sends += 1;
                        match &st.script {
                            Script::All(a) => a.clone(),
                            Script::Nth(n, a) if *n == st.sends => a.clone(),
                            _ => normal,
                        }
                    } else {
                        normal
                    };
                    st.seen.push(Seen {
                        request: req,
                        status: answer.status,
                        send: is_send,
                    });
                    answer.into_response()
                }
            },
        );
        Recorder {
            server: FakeServer::spawn(router).await,
            state,
        }
    }

    /// `http://127.0.0.1:port{path}`.
    pub fn url(&self, path: &str) -> String {
        self.server.url(path)
    }

    /// Fails sends from now on as `script` says (counting sends from here).
    pub fn script(&self, script: Script) {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        st.script = script;
        st.sends = 0;
    }

    /// Every request so far, oldest first.
    pub fn requests(&self) -> Vec<Seen> {
        self.state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .seen
            .clone()
    }

    /// Stops the server.
    pub async fn stop(self) {
        self.server.stop().await
    }
}
