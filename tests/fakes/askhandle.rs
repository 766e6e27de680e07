//! A fake AskHandle on 127.0.0.1: token auth (`Authorization: Token <key>`, with the key
//! from `/api/v1/auth/api-token`), rooms, messages and webhooks as `askhandle-api.txt`
//! documents them; a request outside those shapes is recorded as a problem and refused.
//! Knobs: [`FakeAskHandle::rotate_key`] makes the current key stale (401, as after a
//! rotation), [`FakeAskHandle::delete_webhook`] removes a subscription as AskHandle does
//! with a failing target. [`FakeAskHandle::support_message`] adds the bot's answer to a
//! room and builds the `message.added` delivery AskHandle would post.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use switchboard_core::testkit::fake::FakeServer;

/// The dashboard user and password the fake accepts.
pub const USERNAME: &str = "switchboard";
pub const PASSWORD: &str = "askhandle-dashboard-password";
/// The hook token of the `askhandle` service.
pub const AH_HOOK_TOKEN: &str = "askhandle-hook-token-0123456789abc";

/// A stored room.
#[derive(Debug, Clone)]
pub struct Room {
    pub uuid: String,
    pub label: String,
    pub name: String,
    pub is_bot_use: bool,
    pub messages: Vec<Value>,
}

#[derive(Default)]
struct Account {
    key_generation: u32,
    logins: u32,
    rooms: Vec<Room>,
    webhooks: Vec<Value>,
    webhook_posts: u32,
    problems: Vec<String>,
    next: u64,
}

impl Account {
    fn key(&self) -> String {
        format!(
            "9944b09199c62bcf9418ad846dd0e4bbdfc6ee{:02}",
            self.key_generation
        )
    }

    fn uuid(&mut self) -> String {
        self.next += 1;
        format!("00000000-0000-4000-8000-{:012}", self.next)
    }
}

type Shared = Arc<Mutex<Account>>;

/// The fake AskHandle.
pub struct FakeAskHandle {
    pub addr: SocketAddr,
    state: Shared,
    server: Option<FakeServer>,
}

impl FakeAskHandle {
    /// Starts on a free port.
    pub async fn start() -> FakeAskHandle {
        use axum::routing::{get, post};
        let state = Shared::default();
        let router = axum::Router::new()
            .route("/api/v1/auth/api-token", post(login))
            .route("/api/v1/rooms/", post(create_room).get(list_rooms))
            .route("/api/v1/rooms/{label}/", get(get_room))
            .route("/api/v1/messages/", post(create_message))
            .route("/api/v1/webhooks/", post(create_webhook).get(list_webhooks))
            .fallback(|uri: axum::http::Uri, State(s): State<Shared>| async move {
                s.lock()
                    .unwrap()
                    .problems
                    .push(format!("unknown route {uri}"));
                StatusCode::NOT_FOUND
            })
            .with_state(state.clone());
        let server = FakeServer::spawn(router).await;
        FakeAskHandle {
            addr: server.addr,
            state,
            server: Some(server),
        }
    }

    /// The `api_base` to configure.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn rooms(&self) -> Vec<Room> {
        self.state.lock().unwrap().rooms.clone()
    }

    pub fn webhooks(&self) -> Vec<Value> {
        self.state.lock().unwrap().webhooks.clone()
    }

    /// How many subscriptions were ever created.
    pub fn webhook_posts(&self) -> u32 {
        self.state.lock().unwrap().webhook_posts
    }

    pub fn logins(&self) -> u32 {
        self.state.lock().unwrap().logins
    }

    pub fn problems(&self) -> Vec<String> {
        self.state.lock().unwrap().problems.clone()
    }

    /// The key in use stops working; a new login gets the next one.
    pub fn rotate_key(&self) {
        self.state.lock().unwrap().key_generation += 1;
    }

    /// Removes the subscription to `event`.
    pub fn delete_webhook(&self, event: &str) {
        self.state
            .lock()
            .unwrap()
            .webhooks
            .retain(|w| w["event"] != event);
    }

    /// The bot (`nickname`) answers `text` in room `uuid`: stored in the room, and the
    /// `message.added` delivery AskHandle would post, returned.
    pub fn support_message(&self, uuid: &str, text: &str, nickname: &str) -> Value {
        let mut s = self.state.lock().unwrap();
        let id = s.uuid();
        let message = json!({"uuid": id, "nickname": nickname, "email": "bot@askhandle.example",
                             "phone_number": null, "body": text, "is_support_sender": true,
                             "sent_at": jiff::Timestamp::now().to_string(),
                             "room": {"uuid": uuid}});
        if let Some(r) = s.rooms.iter_mut().find(|r| r.uuid == uuid) {
            r.messages.push(message.clone());
        }
        json!({"data": message, "webhook": {"uuid": "w-msg", "event": "message.added",
                                            "target": "http://127.0.0.1/"}})
    }

    /// The `chat.added` delivery for room `uuid` switched to `is_bot_use`.
    pub fn room_changed(&self, uuid: &str, is_bot_use: bool) -> Value {
        let mut s = self.state.lock().unwrap();
        let room = s.rooms.iter_mut().find(|r| r.uuid == uuid).expect("a room");
        room.is_bot_use = is_bot_use;
        json!({"data": room_json(room), "webhook": {"uuid": "w-chat", "event": "chat.added",
                                                   "target": "http://127.0.0.1/"}})
    }

    pub async fn stop(mut self) {
        if let Some(s) = self.server.take() {
            s.stop().await;
        }
    }
}

fn room_json(r: &Room) -> Value {
    json!({"uuid": r.uuid, "label": r.label, "name": r.name, "rating": null,
           "is_bot_use": r.is_bot_use, "created_at": "2026-12-02T14:00:00Z",
           "messages": r.messages})
}

fn refuse(s: &mut Account, status: StatusCode, problem: String) -> Response {
    s.problems.push(problem.clone());
    (status, Json(json!({"detail": problem}))).into_response()
}

fn authed(s: &mut Account, h: &HeaderMap) -> Option<Response> {
    let want = format!("Token {}", s.key());
    (h.get("authorization").and_then(|v| v.to_str().ok()) != Some(want.as_str())).then(|| {
        (
            StatusCode::UNAUTHORIZED,
            Json(json!({"detail": "Invalid token."})),
        )
            .into_response()
    })
}

fn only_keys(body: &Value, allowed: &[&str]) -> Vec<String> {
    body.as_object()
        .map(|o| {
            o.keys()
                .filter(|k| !allowed.contains(&k.as_str()))
                .cloned()
                .collect()
        })
        .unwrap_or_else(|| vec!["<not an object>".into()])
}

async fn login(State(state): State<Shared>, Json(body): Json<Value>) -> Response {
    let mut s = state.lock().unwrap();
    if body != json!({"username": USERNAME, "password": PASSWORD}) {
        return refuse(
            &mut s,
            StatusCode::BAD_REQUEST,
            "Unable to log in with provided credentials.".into(),
        );
    }
    s.logins += 1;
    Json(json!({"token": s.key()})).into_response()
}

async fn create_room(
    State(state): State<Shared>,
    h: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let mut s = state.lock().unwrap();
    if let Some(r) = authed(&mut s, &h) {
        return r;
    }
    let bad = only_keys(&body, &["label", "name", "rating", "is_bot_use"]);
    if !bad.is_empty() {
        return refuse(
            &mut s,
            StatusCode::BAD_REQUEST,
            format!("room: unknown fields {bad:?}"),
        );
    }
    let Some(label) = body["label"].as_str().map(str::to_owned) else {
        return refuse(
            &mut s,
            StatusCode::BAD_REQUEST,
            "room: label is required".into(),
        );
    };
    if s.rooms.iter().any(|r| r.label == label) {
        return refuse(
            &mut s,
            StatusCode::BAD_REQUEST,
            format!("room with label {label} exists"),
        );
    }
    let room = Room {
        uuid: s.uuid(),
        label,
        name: body["name"].as_str().unwrap_or_default().to_owned(),
        is_bot_use: body["is_bot_use"].as_bool().unwrap_or(true),
        messages: vec![],
    };
    s.rooms.push(room.clone());
    (StatusCode::CREATED, Json(room_json(&room))).into_response()
}

async fn list_rooms(State(state): State<Shared>, h: HeaderMap) -> Response {
    let mut s = state.lock().unwrap();
    if let Some(r) = authed(&mut s, &h) {
        return r;
    }
    Json(Value::Array(s.rooms.iter().map(room_json).collect())).into_response()
}

async fn get_room(
    State(state): State<Shared>,
    h: HeaderMap,
    Path(label): Path<String>,
) -> Response {
    let mut s = state.lock().unwrap();
    if let Some(r) = authed(&mut s, &h) {
        return r;
    }
    match s.rooms.iter().find(|r| r.label == label) {
        Some(r) => Json(room_json(r)).into_response(),
        None => (StatusCode::NOT_FOUND, Json(json!({"detail": "Not found."}))).into_response(),
    }
}

async fn create_message(
    State(state): State<Shared>,
    h: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let mut s = state.lock().unwrap();
    if let Some(r) = authed(&mut s, &h) {
        return r;
    }
    let bad = only_keys(
        &body,
        &["body", "nickname", "email", "phone_number", "room"],
    );
    if !bad.is_empty() {
        return refuse(
            &mut s,
            StatusCode::BAD_REQUEST,
            format!("message: unknown fields {bad:?}"),
        );
    }
    let Some(room) = body["room"]["uuid"].as_str().map(str::to_owned) else {
        return refuse(
            &mut s,
            StatusCode::BAD_REQUEST,
            "message: room.uuid is required".into(),
        );
    };
    let id = s.uuid();
    let message = json!({"uuid": id, "nickname": body["nickname"], "email": body["email"],
                         "body": body["body"], "is_support_sender": false,
                         "sent_at": jiff::Timestamp::now().to_string()});
    let Some(i) = s.rooms.iter().position(|r| r.uuid == room) else {
        return refuse(
            &mut s,
            StatusCode::BAD_REQUEST,
            format!("message: no room {room}"),
        );
    };
    s.rooms[i].messages.push(message.clone());
    (StatusCode::CREATED, Json(message)).into_response()
}

async fn list_webhooks(State(state): State<Shared>, h: HeaderMap) -> Response {
    let mut s = state.lock().unwrap();
    if let Some(r) = authed(&mut s, &h) {
        return r;
    }
    Json(Value::Array(s.webhooks.clone())).into_response()
}

async fn create_webhook(
    State(state): State<Shared>,
    h: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let mut s = state.lock().unwrap();
    if let Some(r) = authed(&mut s, &h) {
        return r;
    }
    let events = ["chat.added", "message.added", "lead.added", "lead.changed"];
    let event = body["event"].as_str().unwrap_or_default().to_owned();
    if !only_keys(&body, &["event", "target"]).is_empty() || !events.contains(&event.as_str()) {
        return refuse(
            &mut s,
            StatusCode::BAD_REQUEST,
            format!("webhook: not a subscription {body}"),
        );
    }
    let w = json!({"uuid": s.uuid(), "event": event, "target": body["target"]});
    s.webhooks.push(w.clone());
    s.webhook_posts += 1;
    (StatusCode::CREATED, Json(w)).into_response()
}

/// Posts `body` to the daemon's hook path `path` as AskHandle does (unsigned).
pub async fn post_delivery(daemon: SocketAddr, path: &str, body: &Value) -> u16 {
    reqwest::Client::new()
        .post(format!("http://{daemon}{path}"))
        .timeout(Duration::from_secs(10))
        .json(body)
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}
