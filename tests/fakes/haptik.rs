//! A fake Haptik on 127.0.0.1: the Log Message API and `get_chat_history` v2.0, each
//! request checked against Haptik's documented shapes (headers `Authorization: Bearer`
//! and `client-id`; `{user: {auth_id}, message_body, message_type: 0, business_id}` with
//! nothing else; the history's query). A wrong request is recorded as a problem and
//! answered with Haptik's `{"error_message": …}`. It builds the webhook events Haptik
//! sends (`message`, `chat_pinned`, `chat_complete`, as "Which information is sent as
//! Webhook Payload?" shows them); Haptik signs nothing, so the test posts them to the
//! path-token hook.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use switchboard_core::testkit::fake::FakeServer;

/// The Business Manager token the fake accepts.
pub const HAPTIK_TOKEN: &str = "haptik-business-manager-token";
/// The client id it accepts.
pub const CLIENT_ID: &str = "haptik-client-7";
/// The bot's business id.
pub const BUSINESS: u64 = 343;
/// The hook token of the `haptik` service.
pub const HOOK_TOKEN: &str = "haptik-hook-token-0123456789abcdef";
/// Haptik's user name for every user (its own id, which the history API takes).
pub const USER_NAME: &str = "ab112468917fgghdebc";

/// A message logged from a user.
#[derive(Debug, Clone)]
pub struct Logged {
    pub auth_id: String,
    pub text: String,
}

#[derive(Default)]
struct State_ {
    logged: Vec<Logged>,
    history: Vec<Value>,
    problems: Vec<String>,
}

type Shared = Arc<Mutex<State_>>;

/// The fake Haptik.
pub struct FakeHaptik {
    pub addr: SocketAddr,
    state: Shared,
    server: Option<FakeServer>,
}

impl FakeHaptik {
    /// Starts on a free port.
    pub async fn start() -> FakeHaptik {
        let state = Shared::default();
        let router = axum::Router::new()
            .route(
                "/v1.0/log_message_from_user/",
                axum::routing::post(log_message),
            )
            .route(
                "/integration/external/v2.0/get_chat_history/",
                axum::routing::get(history),
            )
            .fallback(|uri: axum::http::Uri, State(s): State<Shared>| async move {
                s.lock()
                    .unwrap()
                    .problems
                    .push(format!("unknown route {uri}"));
                StatusCode::NOT_FOUND
            })
            .with_state(state.clone());
        let server = FakeServer::spawn(router).await;
        FakeHaptik {
            addr: server.addr,
            state,
            server: Some(server),
        }
    }

    /// The `base_url` to configure.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// What users said to the bot, in order.
    pub fn logged(&self) -> Vec<Logged> {
        self.state.lock().unwrap().logged.clone()
    }

    /// Requests that were not what Haptik documents.
    pub fn problems(&self) -> Vec<String> {
        self.state.lock().unwrap().problems.clone()
    }

    /// Makes the chat's history (`chat_json`) hold `messages`.
    pub fn set_history(&self, messages: Vec<Value>) {
        self.state.lock().unwrap().history = messages;
    }

    /// Stops serving.
    pub async fn stop(mut self) {
        if let Some(s) = self.server.take() {
            s.stop().await;
        }
    }
}

fn refuse(s: &mut State_, status: StatusCode, problem: &str) -> Response {
    s.problems.push(problem.to_owned());
    (status, Json(json!({"error_message": problem}))).into_response()
}

fn check_headers(s: &mut State_, h: &HeaderMap) -> Option<Response> {
    let bearer = format!("Bearer {HAPTIK_TOKEN}");
    if h.get("authorization").and_then(|v| v.to_str().ok()) != Some(bearer.as_str()) {
        return Some(refuse(
            s,
            StatusCode::UNAUTHORIZED,
            "invalid token provided",
        ));
    }
    if h.get("client-id").and_then(|v| v.to_str().ok()) != Some(CLIENT_ID) {
        return Some(refuse(
            s,
            StatusCode::UNAUTHORIZED,
            "invalid client_id in headers",
        ));
    }
    None
}

async fn log_message(
    State(state): State<Shared>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let mut s = state.lock().unwrap();
    if let Some(r) = check_headers(&mut s, &headers) {
        return r;
    }
    let keys: Vec<&str> = body
        .as_object()
        .map(|o| o.keys().map(String::as_str).collect())
        .unwrap_or_default();
    let mut expected = ["business_id", "message_body", "message_type", "user"];
    expected.sort_unstable();
    let mut got = keys.clone();
    got.sort_unstable();
    if got != expected {
        return refuse(
            &mut s,
            StatusCode::BAD_REQUEST,
            &format!("unexpected fields {keys:?}"),
        );
    }
    if body["message_type"] != 0 {
        return refuse(&mut s, StatusCode::BAD_REQUEST, "message_type must be 0");
    }
    if body["business_id"].as_u64() != Some(BUSINESS) {
        return refuse(
            &mut s,
            StatusCode::BAD_REQUEST,
            "invalid business_id provided",
        );
    }
    let (Some(auth_id), Some(text)) = (
        body["user"]["auth_id"].as_str(),
        body["message_body"].as_str(),
    ) else {
        return refuse(
            &mut s,
            StatusCode::BAD_REQUEST,
            "user.auth_id and message_body are required",
        );
    };
    s.logged.push(Logged {
        auth_id: auth_id.to_owned(),
        text: text.to_owned(),
    });
    Json(json!({"success": true})).into_response()
}

async fn history(
    State(state): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<std::collections::HashMap<String, String>>,
) -> Response {
    let mut s = state.lock().unwrap();
    if let Some(r) = check_headers(&mut s, &headers) {
        return r;
    }
    if q.get("business_id").map(String::as_str) != Some(BUSINESS.to_string().as_str())
        || q.get("user_name").map(String::as_str) != Some(USER_NAME)
        || q.get("conversation_no")
            .is_none_or(|n| n.parse::<u64>().is_err())
    {
        return refuse(
            &mut s,
            StatusCode::BAD_REQUEST,
            "Argument group validation: no valid group.",
        );
    }
    Json(json!({"chat_json": s.history})).into_response()
}

/// A history entry as `get_chat_history` v2.0 shows it.
pub fn history_entry(id: u64, sender: &str, text: &str, timestamp: &str) -> Value {
    json!({"text": text, "sender": sender, "message_id": id, "timestamp": timestamp})
}

/// Haptik's webhook event `name` about user `auth_id`.
pub fn event(name: &str, auth_id: &str) -> Value {
    json!({
        "version": "1.0",
        "timestamp": jiff::Timestamp::now().to_string(),
        "user": {"auth_id": auth_id, "user_name": USER_NAME, "device_platform": "api",
                 "device_platform_name": "api", "user_id": "u-1"},
        "business_id": BUSINESS,
        "business_name": "Acme support",
        "event_name": name,
        "conversation_no": 1
    })
}

/// A `message` event: the bot's answer (`automated`) or agent `name`'s.
pub fn answer(auth_id: &str, id: u64, text: &str, automated: bool, name: &str) -> Value {
    let mut e = event("message", auth_id);
    e["agent"] = json!({"id": 4415, "name": name,
                        "profile_image": "https://assets.haptikapi.example/p.png",
                        "is_automated": automated,
                        "email": if automated { Value::Null } else { json!("anna@acme.example") }});
    e["message"] = json!({"id": id, "body": {"text": text, "type": "TEXT", "data": {}}});
    e
}

/// Posts `body` to the daemon's hook path `path` as Haptik does (unsigned). The status.
pub async fn post_hook(daemon: SocketAddr, path: &str, body: &Value) -> u16 {
    reqwest::Client::new()
        .post(format!("http://{daemon}{path}"))
        .timeout(Duration::from_secs(10))
        .json(body)
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}
