//! A fake Dashly Web API on 127.0.0.1:0 for the end-to-end tests. It checks what the
//! seed documents — `auth_token` and `id_as_string=true` on every request (query on GET,
//! form on POST), `count` from 1 to 50, the reply's form — and answers in the `meta`
//! envelope, mistakes with the documented errors (recorded in `problems`). It counts
//! requests like Dashly: more than 60 in the last 60 s gets `TooManyRequests`.
//!
//! Conversations are listed oldest change first, `after` a `last_update` (a float,
//! exclusive), `next_after` the page's last `last_update` when the page is full; parts
//! by id, `after` a part id.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::common::FakeServer;

/// The app.
pub const APP_ID: &str = "4321";
/// The app's API key.
pub const AUTH_TOKEN: &str = "app.4321.fake-dashly-auth-token";
/// The admin replies are made as.
pub const ADMIN: &str = "77";
/// Dashly's limit.
pub const LIMIT: usize = 60;

/// One request the fake got.
#[derive(Debug, Clone)]
pub struct Req {
    /// `GET` or `POST`.
    pub method: Method,
    /// The path.
    pub path: String,
    /// The arguments (query of a GET, form of a POST).
    pub args: HashMap<String, String>,
    /// `content-type`.
    pub content_type: String,
    /// When it arrived.
    pub at: Instant,
    /// The status answered.
    pub status: u16,
}

/// A canned answer for the next reply requests.
#[derive(Clone)]
pub struct Scripted {
    /// Status, `meta.error` and its message.
    pub status: u16,
    /// `meta.error`.
    pub error: &'static str,
    /// `meta.error_message`.
    pub message: String,
    /// `Retry-After`, if any.
    pub retry_after: Option<u64>,
}

struct Conv {
    user: Value,
    last_update: f64,
    parts: Vec<Value>,
}

/// The fake's state.
#[derive(Default)]
pub struct Shared {
    conversations: Mutex<BTreeMap<String, Conv>>,
    requests: Mutex<Vec<Req>>,
    problems: Mutex<Vec<String>>,
    /// Answers for the next reply requests, before normal processing.
    pub reply_script: Mutex<VecDeque<Scripted>>,
    /// Answers for the next poll requests (list, parts).
    pub poll_script: Mutex<VecDeque<Scripted>>,
    /// When set, every request is answered `NotAuthenticated`.
    pub refuse_key: Mutex<bool>,
    next_part: Mutex<u64>,
    clock: Mutex<f64>,
}

impl Shared {
    /// A strictly increasing "now" (unix seconds, microseconds): no two changes share a
    /// `last_update`.
    fn tick(&self) -> f64 {
        let now = jiff::Timestamp::now().as_microsecond() as f64 / 1e6;
        let mut c = self.clock.lock().unwrap();
        *c = now.max(*c + 0.001);
        (*c * 1000.0).round() / 1000.0
    }

    fn problem(&self, p: String) {
        self.problems.lock().unwrap().push(p);
    }
}

/// A running fake.
pub struct FakeDashly {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its state.
    pub state: Arc<Shared>,
    server: FakeServer,
}

impl FakeDashly {
    /// Starts an empty fake.
    pub async fn start() -> FakeDashly {
        let state = Arc::new(Shared {
            next_part: Mutex::new(1000),
            ..Shared::default()
        });
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(state.clone());
        let server = FakeServer::spawn(app).await;
        FakeDashly {
            addr: server.addr,
            state,
            server,
        }
    }

    /// The `api_base` to configure.
    pub fn base(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// A visitor's part in conversation `conv` (opened if new, with visitor `user_id`),
    /// written `age` ago; its id.
    pub fn visitor_part_aged(
        &self,
        conv: &str,
        user_id: &str,
        text: &str,
        age: Duration,
    ) -> String {
        let now = self.state.tick();
        let created = now - age.as_secs_f64();
        let part = self.next_part();
        let mut convs = self.state.conversations.lock().unwrap();
        let c = convs.entry(conv.to_owned()).or_insert_with(|| Conv {
            user: json!({"id": user_id, "name": format!("Visitor {user_id}"),
                         "email": format!("{user_id}@example.com")}),
            last_update: now,
            parts: Vec::new(),
        });
        c.parts.push(json!({
            "id": part, "conversation": conv, "created": created.floor() as i64,
            "direction": "u2a", "type": "reply_user", "body": text,
            "from": {"type": "user", "id": user_id, "name": format!("Visitor {user_id}")},
            "attachments": []
        }));
        c.last_update = now - age.as_secs_f64();
        part
    }

    /// A visitor's part written now; its id.
    pub fn visitor_part(&self, conv: &str, user_id: &str, text: &str) -> String {
        self.visitor_part_aged(conv, user_id, text, Duration::ZERO)
    }

    /// Adds a file to the last part of `conv`.
    pub fn attach(&self, conv: &str, url: &str, filename: &str, mime: &str) {
        let mut convs = self.state.conversations.lock().unwrap();
        let part = convs.get_mut(conv).unwrap().parts.last_mut().unwrap();
        part["attachments"]
            .as_array_mut()
            .unwrap()
            .push(json!({"url": url, "filename": filename, "mime_type": mime, "size": 1024}));
    }

    /// A part by another admin or a bot (not the visitor's).
    pub fn other_part(&self, conv: &str, from: Value, text: &str) {
        let now = self.state.tick();
        let part = self.next_part();
        let mut convs = self.state.conversations.lock().unwrap();
        let c = convs.get_mut(conv).unwrap();
        c.parts.push(json!({"id": part, "conversation": conv, "created": now as i64,
            "direction": "a2u", "type": "reply_admin", "body": text, "from": from, "attachments": []}));
        c.last_update = now;
    }

    fn next_part(&self) -> String {
        let mut n = self.state.next_part.lock().unwrap();
        *n += 1;
        n.to_string()
    }

    /// The parts of `conv`.
    pub fn parts(&self, conv: &str) -> Vec<Value> {
        let convs = self.state.conversations.lock().unwrap();
        convs.get(conv).map(|c| c.parts.clone()).unwrap_or_default()
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Req> {
        self.state.requests.lock().unwrap().clone()
    }

    /// Requests with this method and path.
    pub fn requests_to(&self, method: Method, path: &str) -> Vec<Req> {
        self.requests()
            .into_iter()
            .filter(|r| r.method == method && r.path == path)
            .collect()
    }

    /// Conversation list requests.
    pub fn lists(&self) -> Vec<Req> {
        self.requests_to(Method::GET, &format!("/v1/apps/{APP_ID}/conversations"))
    }

    /// Mistakes in requests.
    pub fn problems(&self) -> Vec<String> {
        self.state.problems.lock().unwrap().clone()
    }

    /// The most requests any 60 s window held, and how many were answered 429.
    pub fn busiest_minute(&self) -> (usize, usize) {
        let reqs = self.requests();
        let mut most = 0;
        for (i, r) in reqs.iter().enumerate() {
            let n = reqs[i..]
                .iter()
                .take_while(|s| s.at.duration_since(r.at) < Duration::from_secs(60))
                .count();
            most = most.max(n);
        }
        (most, reqs.iter().filter(|r| r.status == 429).count())
    }

    /// Stops the server.
    pub async fn stop(self) {
        self.server.stop().await;
    }
}

fn envelope(status: u16, error: Option<(&str, &str)>, next_after: Value, data: Value) -> Response {
    let mut meta = json!({"status": status});
    if let Some((code, text)) = error {
        meta["error"] = code.into();
        meta["error_message"] = text.into();
    }
    if !next_after.is_null() || status == 200 {
        meta["next_after"] = next_after;
    }
    let body = json!({"meta": meta, "data": data}).to_string();
    (
        StatusCode::from_u16(status).unwrap(),
        [("content-type", "application/json")],
        body,
    )
        .into_response()
}

fn fail(status: u16, code: &str, text: &str) -> Response {
    envelope(status, Some((code, text)), Value::Null, json!({}))
}

async fn handle(
    State(st): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: axum::http::HeaderMap,
    body: Bytes,
) -> Response {
    let at = Instant::now();
    let path = uri.path().to_owned();
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let raw = if method == Method::GET {
        uri.query().unwrap_or("").as_bytes().to_vec()
    } else {
        body.to_vec()
    };
    let args: HashMap<String, String> = url::form_urlencoded::parse(&raw).into_owned().collect();
    let recent = {
        let reqs = st.requests.lock().unwrap();
        reqs.iter()
            .filter(|r| at.duration_since(r.at) < Duration::from_secs(60))
            .count()
    };
    let resp = if recent >= LIMIT {
        st.problem(format!("request {} {path} over the limit", method));
        fail(429, "TooManyRequests", "Request limit quantity exceeded")
    } else {
        answer(&st, &method, &path, &args, &content_type)
    };
    st.requests.lock().unwrap().push(Req {
        method,
        path,
        args,
        content_type,
        at,
        status: resp.status().as_u16(),
    });
    resp
}

fn scripted(s: Scripted) -> Response {
    let mut r = fail(s.status, s.error, &s.message);
    if let Some(secs) = s.retry_after {
        r.headers_mut()
            .insert("retry-after", secs.to_string().parse().unwrap());
    }
    r
}

fn answer(
    st: &Shared,
    method: &Method,
    path: &str,
    args: &HashMap<String, String>,
    content_type: &str,
) -> Response {
    if *st.refuse_key.lock().unwrap()
        || args.get("auth_token").map(String::as_str) != Some(AUTH_TOKEN)
    {
        return fail(401, "NotAuthenticated", "Invalid (or missing) auth token");
    }
    if args.get("id_as_string").map(String::as_str) != Some("true") {
        st.problem(format!("{method} {path} without id_as_string=true"));
    }
    if *method == Method::POST && !content_type.starts_with("application/x-www-form-urlencoded") {
        st.problem(format!(
            "{method} {path} with content-type {content_type:?}"
        ));
    }
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    // `count`: 1 to 50, default 20; None when out of range.
    let count = || -> Option<usize> {
        match args.get("count").map(|c| c.parse::<usize>()) {
            None => Some(20),
            Some(Ok(n)) if (1..=50).contains(&n) => Some(n),
            _ => None,
        }
    };
    match (method.as_str(), segs.as_slice()) {
        ("GET", ["v1", "apps", app, "conversations"]) => {
            if *app != APP_ID {
                return fail(403, "PermissionDeniedError", "No access to requested data");
            }
            if let Some(s) = st.poll_script.lock().unwrap().pop_front() {
                return scripted(s);
            }
            let Some(count) = count() else {
                return fail(400, "ValidationError", "count: from 1 to 50");
            };
            let after = match args.get("after").map(|a| a.parse::<f64>()) {
                None => f64::MIN,
                Some(Ok(a)) => a,
                Some(Err(_)) => {
                    st.problem(format!("after={:?} is not a number", args["after"]));
                    return fail(400, "ValidationError", "after: a number");
                }
            };
            let convs = st.conversations.lock().unwrap();
            let mut list: Vec<(&String, &Conv)> = convs
                .iter()
                .filter(|(_, c)| c.last_update > after)
                .collect();
            list.sort_by(|a, b| {
                a.1.last_update
                    .total_cmp(&b.1.last_update)
                    .then(a.0.cmp(b.0))
            });
            list.truncate(count);
            let next = if list.len() == count {
                json!(list.last().unwrap().1.last_update)
            } else {
                Value::Null
            };
            let data: Vec<Value> = list
                .iter()
                .map(|(id, c)| {
                    json!({"id": id, "user": c.user, "last_update": c.last_update,
                                      "closed": false, "part_last": c.parts.last()})
                })
                .collect();
            envelope(200, None, next, json!(data))
        }
        ("GET", ["v1", "conversations", id, "parts"]) => {
            if let Some(s) = st.poll_script.lock().unwrap().pop_front() {
                return scripted(s);
            }
            let Some(count) = count() else {
                return fail(400, "ValidationError", "count: from 1 to 50");
            };
            let after = args
                .get("after")
                .and_then(|a| a.parse::<u64>().ok())
                .unwrap_or(0);
            let convs = st.conversations.lock().unwrap();
            let Some(c) = convs.get(*id) else {
                return fail(400, "LookupError", "conversation not found");
            };
            let mut parts: Vec<Value> = c
                .parts
                .iter()
                .filter(|p| p["id"].as_str().unwrap().parse::<u64>().unwrap() > after)
                .cloned()
                .collect();
            parts.truncate(count);
            let next = if parts.len() == count {
                json!(
                    parts.last().unwrap()["id"]
                        .as_str()
                        .unwrap()
                        .parse::<u64>()
                        .unwrap()
                )
            } else {
                Value::Null
            };
            envelope(200, None, next, json!(parts))
        }
        ("POST", ["v1", "conversations", id, "reply"]) => {
            if let Some(s) = st.reply_script.lock().unwrap().pop_front() {
                return scripted(s);
            }
            let body = args.get("body").cloned().unwrap_or_default();
            if args.get("from_admin").map(String::as_str) != Some(ADMIN) || body.trim().is_empty() {
                st.problem(format!(
                    "reply without from_admin={ADMIN} or body: {args:?}"
                ));
                return fail(400, "ValidationError", "body and from_admin are required");
            }
            let now = st.tick();
            let part = {
                let mut n = st.next_part.lock().unwrap();
                *n += 1;
                n.to_string()
            };
            let mut convs = st.conversations.lock().unwrap();
            let Some(c) = convs.get_mut(*id) else {
                return fail(400, "LookupError", "One of provided ids is not found");
            };
            let p = json!({"id": part, "conversation": id, "created": now as i64, "direction": "a2u",
                "type": "reply_admin", "body": body,
                "from": {"type": "admin", "id": ADMIN, "name": "Anna Admin"}, "attachments": []});
            c.parts.push(p.clone());
            c.last_update = now;
            envelope(200, None, Value::Null, p)
        }
        ("POST", ["v1", "conversations", id, "markread"]) => {
            if st.conversations.lock().unwrap().contains_key(*id) {
                envelope(200, None, Value::Null, json!({}))
            } else {
                fail(400, "LookupError", "One of provided ids is not found")
            }
        }
        _ => fail(404, "Error404", "API method does not exist"),
    }
}
