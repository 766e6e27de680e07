//! A fake Graph Send API on 127.0.0.1:0 for the `messenger` tests. It checks each
//! `POST /{version}/me/messages` the way the Messenger Platform documents it (the page
//! token in `access_token`, a JSON body with `recipient.id`, `messaging_type` and a
//! `message` holding either `text` of at most 2000 characters or one `attachment` by
//! URL), records it, and answers like Graph — or as a test scripted.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::common::FakeServer;

/// How the fake answers the next send.
#[derive(Clone, Debug)]
pub enum Answer {
    /// 200 with `recipient_id` and a new `message_id`.
    Sent,
    /// An HTTP status, an optional `Retry-After`, and Graph's error object.
    Error(u16, Option<&'static str>, Value),
}

/// Graph's error body: `{"error": {message, type, code, error_subcode?, fbtrace_id}}`.
pub fn graph_error(code: i64, subcode: Option<i64>, message: &str) -> Value {
    let mut e = json!({"message": message, "type": "OAuthException", "code": code, "fbtrace_id": "A1b2C3d4"});
    if let Some(s) = subcode {
        e["error_subcode"] = json!(s);
    }
    json!({ "error": e })
}

/// One request the fake got.
#[derive(Clone, Debug)]
pub struct Call {
    /// When it arrived.
    pub at: Instant,
    /// Its JSON body.
    pub body: Value,
    /// What it did wrong by the documentation; empty when well-formed.
    pub problems: Vec<String>,
    /// The status it was answered with.
    pub status: u16,
    /// The `message_id` given, for 200.
    pub id: Option<String>,
}

struct FakeState {
    version: String,
    token: String,
    calls: Vec<Call>,
    script: VecDeque<Answer>,
}

/// The running fake.
pub struct FakeGraph {
    state: Arc<Mutex<FakeState>>,
    server: FakeServer,
}

impl FakeGraph {
    /// A fake Graph at API version `version` that takes page token `token`.
    pub async fn start(version: &str, token: &str) -> FakeGraph {
        let state = Arc::new(Mutex::new(FakeState {
            version: version.to_owned(),
            token: token.to_owned(),
            calls: Vec::new(),
            script: VecDeque::new(),
        }));
        let app = axum::Router::new()
            .route("/{version}/me/messages", axum::routing::post(send))
            .fallback(undocumented)
            .with_state(state.clone());
        FakeGraph {
            state,
            server: FakeServer::spawn(app).await,
        }
    }

    /// Its base URL, for `api_base`.
    pub fn url(&self) -> String {
        format!("http://{}", self.server.addr)
    }

    /// Answers the next sends in this order, then 200 again.
    pub fn script(&self, answers: &[Answer]) {
        self.state
            .lock()
            .unwrap()
            .script
            .extend(answers.iter().cloned());
    }

    /// Every request so far, oldest first.
    pub fn calls(&self) -> Vec<Call> {
        self.state.lock().unwrap().calls.clone()
    }

    /// Stops listening.
    pub async fn stop(self) {
        self.server.stop().await
    }
}

fn check(
    st: &FakeState,
    version: &str,
    query: Option<&str>,
    headers: &HeaderMap,
    body: &[u8],
) -> (Vec<String>, Value) {
    let mut problems = Vec::new();
    if version != st.version {
        problems.push(format!("version {version}, expected {}", st.version));
    }
    let token = query.and_then(|q| {
        url::form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == "access_token")
            .map(|(_, v)| v.into_owned())
    });
    if token.as_deref() != Some(st.token.as_str()) {
        problems.push("access_token: not the page token".into());
    }
    let ct = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !ct.starts_with("application/json") {
        problems.push(format!("content-type: {ct:?}"));
    }
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        problems.push("body: not JSON".into());
        return (problems, Value::Null);
    };
    for key in v
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_else(Vec::new)
    {
        if ![
            "recipient",
            "messaging_type",
            "message",
            "tag",
            "notification_type",
        ]
        .contains(&key.as_str())
        {
            problems.push(format!("unknown field {key}"));
        }
    }
    if v["recipient"]["id"].as_str().is_none_or(str::is_empty) {
        problems.push("recipient.id: required".into());
    }
    if v["messaging_type"] != "RESPONSE" {
        problems.push(format!("messaging_type: {}", v["messaging_type"]));
    }
    let m = &v["message"];
    match (m.get("text"), m.get("attachment")) {
        (Some(t), None) => match t.as_str() {
            Some(t) if !t.is_empty() && t.chars().count() <= 2000 => {}
            _ => problems.push("message.text: 1-2000 characters".into()),
        },
        (None, Some(a)) => {
            if !["image", "video", "audio", "file"].contains(&a["type"].as_str().unwrap_or("")) {
                problems.push(format!("message.attachment.type: {}", a["type"]));
            }
            let url = a["payload"]["url"].as_str().unwrap_or("");
            if !(url.starts_with("https://") || url.starts_with("http://")) {
                problems.push("message.attachment.payload.url: required URL".into());
            }
        }
        _ => problems.push("message: exactly one of text and attachment".into()),
    }
    (problems, v)
}

async fn send(
    State(state): State<Arc<Mutex<FakeState>>>,
    Path(version): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut st = state.lock().unwrap();
    let (problems, v) = check(&st, &version, query.as_deref(), &headers, &body);
    let answer = if problems.is_empty() {
        st.script.pop_front().unwrap_or(Answer::Sent)
    } else {
        Answer::Error(400, None, graph_error(100, None, &problems.join("; ")))
    };
    let n = st.calls.len();
    let (status, id, resp) = match answer {
        Answer::Sent => {
            let id = format!("m_fake{n:04}");
            let body = json!({"recipient_id": v["recipient"]["id"], "message_id": id});
            (200, Some(id), axum::Json(body).into_response())
        }
        Answer::Error(status, retry_after, body) => {
            let mut r = (StatusCode::from_u16(status).unwrap(), axum::Json(body)).into_response();
            if let Some(ra) = retry_after {
                r.headers_mut().insert("retry-after", ra.parse().unwrap());
            }
            (status, None, r)
        }
    };
    st.calls.push(Call {
        at: Instant::now(),
        body: v,
        problems,
        status,
        id,
    });
    resp
}

async fn undocumented(
    State(state): State<Arc<Mutex<FakeState>>>,
    method: axum::http::Method,
    uri: axum::http::Uri,
) -> Response {
    state.lock().unwrap().calls.push(Call {
        at: Instant::now(),
        body: Value::Null,
        problems: vec![format!("{method} {}: not a documented path", uri.path())],
        status: 404,
        id: None,
    });
    let body = graph_error(803, None, "Unknown path components");
    (StatusCode::NOT_FOUND, axum::Json(body)).into_response()
}
