//! A fake Mailgun Messages API on 127.0.0.1:0 for the `mailgun` tests. It checks each
//! `POST /v3/{domain}/messages` the way Mailgun documents it (Basic `api:<key>`, a form
//! with `from`, `to`, `subject` and `text`, custom headers as `h:` fields with
//! Message-Ids in angle brackets), records it, and answers like Mailgun — or as a test
//! scripted.
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
use serde_json::json;

use crate::common::FakeServer;

/// How the fake answers the next send.
#[derive(Clone, Debug)]
pub enum Answer {
    /// 200 `{"id": "<Message-Id>", "message": "Queued. Thank you."}`.
    Queued,
    /// A status, an optional `Retry-After`, and Mailgun's `{"message": …}`.
    Error(u16, Option<&'static str>, &'static str),
}

/// One request the fake got.
#[derive(Clone, Debug)]
pub struct Call {
    /// When it arrived.
    pub at: Instant,
    /// Its form fields, in order.
    pub fields: Vec<(String, String)>,
    /// What it did wrong by the documentation; empty when well-formed.
    pub problems: Vec<String>,
    /// The status it was answered with.
    pub status: u16,
}

impl Call {
    /// The first value of a field.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

struct FakeState {
    domain: String,
    authorization: String,
    calls: Vec<Call>,
    script: VecDeque<Answer>,
}

/// The running fake.
pub struct FakeMailgun {
    state: Arc<Mutex<FakeState>>,
    server: FakeServer,
}

impl FakeMailgun {
    /// A fake for `domain` that takes API key `key`.
    pub async fn start(domain: &str, key: &str) -> FakeMailgun {
        let state = Arc::new(Mutex::new(FakeState {
            domain: domain.to_owned(),
            authorization: format!("Basic {}", B64.encode(format!("api:{key}"))),
            calls: Vec::new(),
            script: VecDeque::new(),
        }));
        let app = axum::Router::new()
            .route("/v3/{domain}/messages", axum::routing::post(send))
            .fallback(undocumented)
            .with_state(state.clone());
        FakeMailgun {
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

fn bracketed(v: &str) -> bool {
    v.split_whitespace()
        .all(|id| id.starts_with('<') && id.ends_with('>') && id.contains('@') && id.len() > 4)
}

fn check(
    st: &FakeState,
    domain: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> (Vec<String>, Vec<(String, String)>) {
    let mut problems = Vec::new();
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(st.authorization.as_str())
    {
        problems.push("authorization: not Basic api:<key>".to_owned());
    }
    if domain != st.domain {
        problems.push(format!("domain {domain}"));
    }
    let ct = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !ct.starts_with("application/x-www-form-urlencoded") {
        problems.push(format!("content-type: {ct:?}"));
    }
    let fields: Vec<(String, String)> = serde_urlencoded::from_bytes(body).unwrap_or_else(|_| {
        problems.push("body: not a form".into());
        Vec::new()
    });
    let get = |n: &str| fields.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str());
    for required in ["from", "to", "subject", "text"] {
        if get(required).is_none_or(|v| v.trim().is_empty()) {
            problems.push(format!("{required}: required"));
        }
    }
    for (k, v) in &fields {
        let known = ["from", "to", "cc", "bcc", "subject", "text", "html"].contains(&k.as_str())
            || k.starts_with("h:")
            || k.starts_with("o:")
            || k.starts_with("v:");
        if !known {
            problems.push(format!("unknown field {k}"));
        }
        if ["h:Message-Id", "h:In-Reply-To", "h:References"].contains(&k.as_str()) && !bracketed(v)
        {
            problems.push(format!("{k}: not <id@domain> ids: {v:?}"));
        }
    }
    if get("h:In-Reply-To").is_some() != get("h:References").is_some() {
        problems.push("h:In-Reply-To and h:References go together".into());
    }
    (problems, fields)
}

async fn send(
    State(state): State<Arc<Mutex<FakeState>>>,
    Path(domain): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut st = state.lock().unwrap();
    let (problems, fields) = check(&st, &domain, &headers, &body);
    let answer = if problems.is_empty() {
        st.script.pop_front().unwrap_or(Answer::Queued)
    } else {
        Answer::Error(400, None, "the request broke the documented shape")
    };
    let n = st.calls.len();
    let (status, resp) = match answer {
        Answer::Queued => {
            let id = fields
                .iter()
                .find(|(k, _)| k == "h:Message-Id")
                .map(|(_, v)| v.clone())
                .unwrap_or_else(|| format!("<20261202.{n}@{domain}>"));
            (
                200,
                axum::Json(json!({"id": id, "message": "Queued. Thank you."})).into_response(),
            )
        }
        Answer::Error(status, retry_after, message) => {
            let mut r = (
                StatusCode::from_u16(status).unwrap(),
                axum::Json(json!({"message": message})),
            )
                .into_response();
            if let Some(ra) = retry_after {
                r.headers_mut().insert("retry-after", ra.parse().unwrap());
            }
            (status, r)
        }
    };
    st.calls.push(Call {
        at: Instant::now(),
        fields,
        problems,
        status,
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
        fields: Vec::new(),
        problems: vec![format!("{method} {}: not a documented path", uri.path())],
        status: 404,
    });
    (
        StatusCode::NOT_FOUND,
        axum::Json(json!({"message": "Not Found"})),
    )
        .into_response()
}
