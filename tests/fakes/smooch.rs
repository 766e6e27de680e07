//! A fake Sunshine Conversations v2 API on 127.0.0.1:0 for the `smooch` tests. It checks
//! each Post Message request the way the spec describes it (path, Basic auth, content
//! type, the required fields of `messagePost` and its content types), records it, and
//! answers like the spec's examples — or as a test scripted.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Value, json};

use crate::common::FakeServer;

/// How the fake answers the next Post Message.
#[derive(Clone, Debug)]
pub enum Answer {
    /// 201 with the created message, as the spec's examples show.
    Created,
    /// An error status, an optional `Retry-After`, the spec's `{"errors":[…]}` body.
    Error(u16, Option<&'static str>, Value),
}

/// One request the fake got.
#[derive(Clone, Debug)]
pub struct Call {
    /// When it arrived.
    pub at: Instant,
    /// Its path.
    pub path: String,
    /// Its JSON body.
    pub body: Value,
    /// What the request did wrong by the spec; empty when it was well-formed.
    pub problems: Vec<String>,
    /// The status it was answered with.
    pub status: u16,
    /// The id of the created message, for 201.
    pub id: Option<String>,
}

struct FakeState {
    /// The app id the paths must name.
    app_id: String,
    /// The `Authorization` header every request must carry.
    authorization: String,
    calls: Vec<Call>,
    script: VecDeque<Answer>,
}

/// The running fake.
pub struct FakeSunshine {
    addr: std::net::SocketAddr,
    state: Arc<Mutex<FakeState>>,
    server: FakeServer,
}

impl FakeSunshine {
    /// Starts a fake for app `app_id` that takes API key `key_id`:`secret`.
    pub async fn start(app_id: &str, key_id: &str, secret: &str) -> FakeSunshine {
        let state = Arc::new(Mutex::new(FakeState {
            app_id: app_id.to_owned(),
            authorization: format!("Basic {}", B64.encode(format!("{key_id}:{secret}"))),
            calls: Vec::new(),
            script: VecDeque::new(),
        }));
        let app = axum::Router::new()
            .route(
                "/v2/apps/{app_id}/conversations/{conversation_id}/messages",
                axum::routing::post(post_message),
            )
            .fallback(undocumented)
            .with_state(state.clone());
        let server = FakeServer::spawn(app).await;
        let addr = server.addr;
        FakeSunshine {
            addr,
            state,
            server,
        }
    }

    /// Its base URL, for `api_base`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Answers the next requests in this order, then 201 again.
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

/// What the spec requires of a Post Message request from a business.
fn check_request(
    st: &FakeState,
    app_id: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> (Vec<String>, Value) {
    let mut problems = Vec::new();
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(st.authorization.as_str())
    {
        problems.push("authorization: not Basic keyId:secret".to_owned());
    }
    let ct = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !ct.starts_with("application/json") {
        problems.push(format!("content-type: {ct:?}"));
    }
    if app_id != st.app_id {
        problems.push(format!("appId: {app_id}"));
    }
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        problems.push("body: not JSON".into());
        return (problems, Value::Null);
    };
    // messagePost: author and content required; author.type required (business|user).
    match v["author"]["type"].as_str() {
        Some("business") => {}
        other => problems.push(format!("author.type: {other:?}, expected \"business\"")),
    }
    for key in v
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_else(Vec::new)
    {
        if ![
            "author",
            "content",
            "destination",
            "metadata",
            "override",
            "schema",
        ]
        .contains(&key.as_str())
        {
            problems.push(format!("unknown field {key}"));
        }
    }
    let content = &v["content"];
    match content["type"].as_str() {
        // textMessage: text required unless actions/htmlText/markdownText; ≤ 4096.
        Some("text") => match content["text"].as_str() {
            Some(t) if !t.is_empty() && t.chars().count() <= 4096 => {}
            _ => problems.push("content.text: required for text".into()),
        },
        // imageMessage / fileMessage: mediaUrl required (a URI); altText ≤ 128.
        Some("image" | "file") => {
            let ok = content["mediaUrl"]
                .as_str()
                .is_some_and(|u| u.starts_with("https://") || u.starts_with("http://"));
            if !ok {
                problems.push("content.mediaUrl: required URI".into());
            }
            if content["altText"]
                .as_str()
                .is_some_and(|a| a.chars().count() > 128)
            {
                problems.push("content.altText: longer than 128".into());
            }
        }
        other => problems.push(format!("content.type: {other:?}")),
    }
    (problems, v)
}

async fn post_message(
    State(state): State<Arc<Mutex<FakeState>>>,
    Path((app_id, conversation_id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut st = state.lock().unwrap();
    let (problems, v) = check_request(&st, &app_id, &headers, &body);
    let n = st.calls.len();
    let path = format!("/v2/apps/{app_id}/conversations/{conversation_id}/messages");
    let answer = if problems.is_empty() {
        st.script.pop_front().unwrap_or(Answer::Created)
    } else {
        Answer::Error(
            400,
            None,
            json!({"errors": [{"code": "bad_request", "title": problems.join("; ")}]}),
        )
    };
    let (status, id, resp) = match answer {
        Answer::Created => {
            let id = format!("5f748c1a2b5315fc007e{n:04x}");
            let created = json!({"messages": [{
                "id": id, "received": "2020-09-30T13:46:02.733Z",
                "author": v["author"], "content": v["content"],
                "source": {"type": "api:conversations"}
            }]});
            (
                201,
                Some(id),
                (StatusCode::CREATED, axum::Json(created)).into_response(),
            )
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
        path,
        body: v,
        problems,
        status,
        id,
    });
    resp
}

/// Any other method or path: recorded as a problem, answered as Sunshine answers it.
async fn undocumented(
    State(state): State<Arc<Mutex<FakeState>>>,
    method: axum::http::Method,
    uri: axum::http::Uri,
) -> Response {
    state.lock().unwrap().calls.push(Call {
        at: Instant::now(),
        path: uri.path().to_owned(),
        body: Value::Null,
        problems: vec![format!("{method} {uri}: not a documented path")],
        status: 404,
        id: None,
    });
    let body = json!({"errors": [{"code": "not_found", "title": "Resource not found"}]});
    (StatusCode::NOT_FOUND, axum::Json(body)).into_response()
}
