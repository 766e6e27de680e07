//! A fake nimchat (Chatwoot-style) desk on 127.0.0.1: the API inbox's public client API
//! (contacts, conversations, messages) and the application API's conversation messages,
//! each request checked against the shapes `nimchat-api.txt` documents (unknown fields,
//! a wrong `identifier_hash`, a missing token are recorded as problems and refused). It
//! sends agents' replies the way Chatwoot does: a `message_created` webhook signed with
//! `X-Chatwoot-Signature` over `"{timestamp}.{body}"`, computed here.
//!
//! Knobs: [`FakeNimchat::down`]/[`FakeNimchat::up`] close and reopen its port (an
//! outage); [`FakeNimchat::stall_posts`] makes contact-message posts hang, before or
//! after they are stored, and [`FakeNimchat::stall_conversations`] conversation
//! creations after they are stored (a crash lands there deterministically).
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use switchboard_core::testkit::fake::FakeServer;

/// The inbox identifier of the fake's API inbox.
pub const INBOX: &str = "inbox-7f3a";
/// The account of the application API.
pub const ACCOUNT: u64 = 17;
/// The application API's token.
pub const ACCESS_TOKEN: &str = "nimchat-agent-access-token";
/// The inbox's HMAC token (identity validation).
pub const HMAC_TOKEN: &str = "nimchat-inbox-hmac-token";
/// The webhook's signing secret.
pub const SECRET: &str = "nimchat-webhook-signing-secret";

/// A contact of the inbox.
#[derive(Debug, Clone)]
pub struct Contact {
    pub source_id: String,
    pub identifier: Option<String>,
    pub name: Option<String>,
    pub email: Option<String>,
    pub phone_number: Option<String>,
}

/// A conversation.
#[derive(Debug, Clone)]
pub struct Conversation {
    pub id: u64,
    pub source_id: String,
    pub custom_attributes: Value,
    pub status: String,
}

/// A message, whoever posted it.
#[derive(Debug, Clone)]
pub struct Message {
    pub id: u64,
    pub conversation_id: u64,
    pub content: String,
    /// `incoming` (client API) or `outgoing` (application API, or an agent here).
    pub message_type: &'static str,
    pub private: bool,
    pub content_attributes: Value,
}

/// When a contact-message post hangs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stall {
    /// Answered normally.
    Never,
    /// Hangs before storing the message.
    BeforeStore,
    /// Stores the message, then hangs (its answer never comes).
    AfterStore,
}

#[derive(Debug)]
struct Desk {
    contacts: Vec<Contact>,
    conversations: Vec<Conversation>,
    messages: Vec<Message>,
    /// Requests that broke the documented shapes.
    problems: Vec<String>,
    /// Every request: method and path.
    seen: Vec<String>,
    stall: Stall,
    /// Whether conversation creations hang once stored.
    stall_conversations: bool,
    /// Posts that reached the stall.
    stalled: u32,
    next_id: u64,
}

type Shared = Arc<Mutex<Desk>>;

/// The fake desk.
pub struct FakeNimchat {
    pub addr: SocketAddr,
    state: Shared,
    server: Option<FakeServer>,
}

impl FakeNimchat {
    /// Starts on a free port.
    pub async fn start() -> FakeNimchat {
        let state = Arc::new(Mutex::new(Desk {
            contacts: vec![],
            conversations: vec![],
            messages: vec![],
            problems: vec![],
            seen: vec![],
            stall: Stall::Never,
            stall_conversations: false,
            stalled: 0,
            next_id: 100,
        }));
        let server = FakeServer::spawn(router(state.clone())).await;
        FakeNimchat {
            addr: server.addr,
            state,
            server: Some(server),
        }
    }

    /// The `base_url` to configure.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Closes the port: connections are refused.
    pub async fn down(&mut self) {
        if let Some(s) = self.server.take() {
            s.stop().await;
        }
    }

    /// Listens again on the same port, with the same state.
    pub async fn up(&mut self) {
        let addr = self.addr.to_string();
        self.server = Some(FakeServer::spawn_on(&addr, router(self.state.clone())).await);
    }

    /// Sets when contact-message posts hang.
    pub fn stall_posts(&self, stall: Stall) {
        self.state.lock().unwrap().stall = stall;
    }

    /// While set, a conversation creation stores the conversation and then hangs.
    pub fn stall_conversations(&self, on: bool) {
        self.state.lock().unwrap().stall_conversations = on;
    }

    /// How many posts reached the stall.
    pub fn stalled(&self) -> u32 {
        self.state.lock().unwrap().stalled
    }

    pub fn contacts(&self) -> Vec<Contact> {
        self.state.lock().unwrap().contacts.clone()
    }

    pub fn conversations(&self) -> Vec<Conversation> {
        self.state.lock().unwrap().conversations.clone()
    }

    /// Messages of conversation `id`, in order.
    pub fn messages(&self, id: u64) -> Vec<Message> {
        let s = self.state.lock().unwrap();
        s.messages
            .iter()
            .filter(|m| m.conversation_id == id)
            .cloned()
            .collect()
    }

    /// Every message, in order.
    pub fn all_messages(&self) -> Vec<Message> {
        self.state.lock().unwrap().messages.clone()
    }

    /// Requests that broke the documented shapes (should stay empty).
    pub fn problems(&self) -> Vec<String> {
        self.state.lock().unwrap().problems.clone()
    }

    /// Every request so far, as `METHOD path`.
    pub fn seen(&self) -> Vec<String> {
        self.state.lock().unwrap().seen.clone()
    }

    /// Stores an agent's (or a bot's, or a private) message in conversation `id` and
    /// returns the `message_created` body Chatwoot would send for it.
    pub fn agent_message(&self, id: u64, content: &str, extra: Value) -> Value {
        let mut s = self.state.lock().unwrap();
        s.next_id += 1;
        let mid = s.next_id;
        let private = extra["private"].as_bool().unwrap_or(false);
        let message_type = match extra["message_type"].as_str() {
            Some("incoming") => "incoming",
            _ => "outgoing",
        };
        s.messages.push(Message {
            id: mid,
            conversation_id: id,
            content: content.into(),
            message_type,
            private,
            content_attributes: extra["content_attributes"].clone(),
        });
        let conv = s.conversations.iter().find(|c| c.id == id).cloned();
        let source = conv.map(|c| c.source_id).unwrap_or_default();
        let mut body = json!({
            "event": "message_created",
            "id": mid,
            "content": content,
            "created_at": "2026-12-02T14:00:00.000Z",
            "message_type": "outgoing",
            "content_type": "text",
            "content_attributes": {},
            "private": false,
            "source_id": null,
            "additional_attributes": {},
            "sender": {"id": 3, "name": "Anna de Vries", "email": "anna@desk.example", "type": "user"},
            "conversation": {
                "id": id, "inbox_id": 5, "status": "open", "can_reply": true,
                "channel": "Channel::Api", "contact_inbox": {"source_id": source},
                "messages": [], "meta": {}, "additional_attributes": {}, "custom_attributes": {}
            },
            "account": {"id": ACCOUNT, "name": "Acme"},
            "inbox": {"id": 5, "name": "switchboard"}
        });
        if let Some(e) = extra.as_object() {
            for (k, v) in e {
                body[k] = v.clone();
            }
        }
        body
    }

    /// The `conversation_status_changed` body for conversation `id` now `status`.
    pub fn status_changed(&self, id: u64, status: &str) -> Value {
        let mut s = self.state.lock().unwrap();
        if let Some(c) = s.conversations.iter_mut().find(|c| c.id == id) {
            c.status = status.into();
        }
        json!({"event": "conversation_status_changed", "id": id, "inbox_id": 5,
               "status": status, "messages": [], "meta": {}, "channel": "Channel::Api",
               "changed_attributes": [{"status": {"previous_value": "open", "current_value": status}}],
               "account_id": ACCOUNT})
    }
}

/// Posts `body` to the daemon's desk hook as Chatwoot does, signed with `secret` at
/// `timestamp` (unix s; `None` sends no signature). Returns the status.
pub async fn post_webhook(
    daemon: SocketAddr,
    path: &str,
    body: &Value,
    secret: Option<&str>,
    timestamp: i64,
    delivery: &str,
) -> u16 {
    let raw = body.to_string();
    let mut req = reqwest::Client::new()
        .post(format!("http://{daemon}{path}"))
        .timeout(Duration::from_secs(10))
        .header("content-type", "application/json")
        .header("user-agent", "Chatwoot")
        .header("x-chatwoot-delivery", delivery)
        .header("x-chatwoot-timestamp", timestamp.to_string());
    if let Some(secret) = secret {
        req = req.header(
            "x-chatwoot-signature",
            signature(secret, timestamp, raw.as_bytes()),
        );
    }
    req.body(raw)
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}

/// `sha256=<hex HMAC-SHA256 of "{timestamp}.{body}">`.
pub fn signature(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{timestamp}.").as_bytes());
    mac.update(body);
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256={hex}")
}

fn hex_hmac(key: &str, data: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(data.as_bytes());
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn router(state: Shared) -> axum::Router {
    use axum::routing::post;
    let public = "/public/api/v1/inboxes/{inbox}";
    axum::Router::new()
        .route(&format!("{public}/contacts"), post(create_contact))
        .route(
            &format!("{public}/contacts/{{source}}/conversations"),
            post(create_conversation).get(list_conversations),
        )
        .route(
            &format!("{public}/contacts/{{source}}/conversations/{{id}}/messages"),
            post(create_message).get(list_messages),
        )
        .route(
            "/api/v1/accounts/{account}/conversations/{id}/messages",
            post(app_create_message).get(app_list_messages),
        )
        .fallback(|uri: axum::http::Uri, State(s): State<Shared>| async move {
            s.lock()
                .unwrap()
                .problems
                .push(format!("unknown route {uri}"));
            StatusCode::NOT_FOUND
        })
        .with_state(state)
}

/// Records `problem` and answers 422 like Chatwoot's validation errors.
fn refuse(s: &mut Desk, problem: String) -> Response {
    s.problems.push(problem.clone());
    (
        StatusCode::UNPROCESSABLE_ENTITY,
        Json(json!({"message": problem})),
    )
        .into_response()
}

/// The keys of `body` outside `allowed`.
fn unknown_keys(body: &Value, allowed: &[&str]) -> Vec<String> {
    body.as_object()
        .map(|o| {
            o.keys()
                .filter(|k| !allowed.contains(&k.as_str()))
                .cloned()
                .collect()
        })
        .unwrap_or_else(|| vec!["<not an object>".into()])
}

fn check_inbox(s: &mut Desk, inbox: &str) -> Option<Response> {
    (inbox != INBOX).then(|| {
        s.problems.push(format!("unknown inbox {inbox}"));
        StatusCode::NOT_FOUND.into_response()
    })
}

async fn create_contact(
    State(state): State<Shared>,
    Path(inbox): Path<String>,
    Json(body): Json<Value>,
) -> Response {
    let mut s = state.lock().unwrap();
    s.seen.push("POST contacts".into());
    if let Some(r) = check_inbox(&mut s, &inbox) {
        return r;
    }
    let bad = unknown_keys(
        &body,
        &[
            "identifier",
            "identifier_hash",
            "email",
            "name",
            "phone_number",
            "avatar_url",
            "custom_attributes",
        ],
    );
    if !bad.is_empty() {
        return refuse(&mut s, format!("create contact: unknown fields {bad:?}"));
    }
    let identifier = body["identifier"].as_str().map(str::to_owned);
    if let Some(id) = &identifier
        && body["identifier_hash"].as_str() != Some(hex_hmac(HMAC_TOKEN, id).as_str())
    {
        return refuse(
            &mut s,
            "create contact: identifier_hash does not match".into(),
        );
    }
    for k in ["email", "name", "phone_number"] {
        if !body[k].is_null() && !body[k].is_string() {
            return refuse(&mut s, format!("create contact: {k} is not a string"));
        }
    }
    s.next_id += 1;
    let source_id = format!("src-{}", s.next_id);
    let contact = Contact {
        source_id: source_id.clone(),
        identifier,
        name: body["name"].as_str().map(str::to_owned),
        email: body["email"].as_str().map(str::to_owned),
        phone_number: body["phone_number"].as_str().map(str::to_owned),
    };
    s.contacts.push(contact.clone());
    Json(
        json!({"id": s.next_id, "source_id": source_id, "name": contact.name,
                "email": contact.email, "pubsub_token": "pubsub-token"}),
    )
    .into_response()
}

fn conversation_json(c: &Conversation) -> Value {
    json!({"id": c.id, "inbox_id": "5", "messages": [], "contact": {}, "status": c.status})
}

async fn create_conversation(
    State(state): State<Shared>,
    Path((inbox, source)): Path<(String, String)>,
    Json(body): Json<Value>,
) -> Response {
    let answer = {
        let mut s = state.lock().unwrap();
        s.seen.push("POST conversations".into());
        if let Some(r) = check_inbox(&mut s, &inbox) {
            return r;
        }
        let bad = unknown_keys(&body, &["custom_attributes"]);
        if !bad.is_empty() {
            return refuse(
                &mut s,
                format!("create conversation: unknown fields {bad:?}"),
            );
        }
        if !s.contacts.iter().any(|c| c.source_id == source) {
            return refuse(
                &mut s,
                format!("create conversation: unknown contact {source}"),
            );
        }
        s.next_id += 1;
        let c = Conversation {
            id: s.next_id,
            source_id: source,
            custom_attributes: body["custom_attributes"].clone(),
            status: "open".into(),
        };
        s.conversations.push(c.clone());
        if s.stall_conversations {
            s.stalled += 1;
            None
        } else {
            Some(Json(conversation_json(&c)).into_response())
        }
    };
    match answer {
        Some(r) => r,
        None => {
            // Stored, but the answer never comes.
            tokio::time::sleep(Duration::from_secs(600)).await;
            StatusCode::GATEWAY_TIMEOUT.into_response()
        }
    }
}

async fn list_conversations(
    State(state): State<Shared>,
    Path((inbox, source)): Path<(String, String)>,
) -> Response {
    let mut s = state.lock().unwrap();
    s.seen.push("GET conversations".into());
    if let Some(r) = check_inbox(&mut s, &inbox) {
        return r;
    }
    let list: Vec<Value> = s
        .conversations
        .iter()
        .filter(|c| c.source_id == source)
        .map(conversation_json)
        .collect();
    Json(Value::Array(list)).into_response()
}

fn message_json(m: &Message) -> Value {
    json!({"id": m.id.to_string(), "content": m.content, "message_type": m.message_type,
           "content_type": "text", "content_attributes": m.content_attributes,
           "created_at": "1764684000", "conversation_id": m.conversation_id.to_string(),
           "attachments": [], "sender": {}, "private": m.private})
}

async fn create_message(
    State(state): State<Shared>,
    Path((inbox, source, id)): Path<(String, String, u64)>,
    Json(body): Json<Value>,
) -> Response {
    let stall = {
        let mut s = state.lock().unwrap();
        s.seen.push("POST messages".into());
        if let Some(r) = check_inbox(&mut s, &inbox) {
            return r;
        }
        let bad = unknown_keys(&body, &["content", "echo_id"]);
        if !bad.is_empty() {
            return refuse(&mut s, format!("create message: unknown fields {bad:?}"));
        }
        let Some(content) = body["content"].as_str().filter(|c| !c.is_empty()) else {
            return refuse(&mut s, "create message: no content".into());
        };
        if !s
            .conversations
            .iter()
            .any(|c| c.id == id && c.source_id == source)
        {
            return refuse(
                &mut s,
                format!("create message: no conversation {id} of {source}"),
            );
        }
        if s.stall == Stall::BeforeStore {
            s.stalled += 1;
            None
        } else {
            s.next_id += 1;
            let m = Message {
                id: s.next_id,
                conversation_id: id,
                content: content.into(),
                message_type: "incoming",
                private: false,
                content_attributes: json!({}),
            };
            s.messages.push(m.clone());
            if s.stall == Stall::AfterStore {
                s.stalled += 1;
                None
            } else {
                Some(m)
            }
        }
    };
    match stall {
        Some(m) => Json(message_json(&m)).into_response(),
        None => {
            // Hangs until the client gives up or the test ends.
            tokio::time::sleep(Duration::from_secs(600)).await;
            StatusCode::GATEWAY_TIMEOUT.into_response()
        }
    }
}

async fn list_messages(
    State(state): State<Shared>,
    Path((inbox, source, id)): Path<(String, String, u64)>,
) -> Response {
    let mut s = state.lock().unwrap();
    s.seen.push("GET messages".into());
    if let Some(r) = check_inbox(&mut s, &inbox) {
        return r;
    }
    if !s
        .conversations
        .iter()
        .any(|c| c.id == id && c.source_id == source)
    {
        return refuse(
            &mut s,
            format!("list messages: no conversation {id} of {source}"),
        );
    }
    let list: Vec<Value> = s
        .messages
        .iter()
        .filter(|m| m.conversation_id == id && !m.private)
        .map(message_json)
        .collect();
    Json(Value::Array(list)).into_response()
}

fn check_app(s: &mut Desk, account: u64, headers: &HeaderMap) -> Option<Response> {
    if headers
        .get("api_access_token")
        .and_then(|v| v.to_str().ok())
        != Some(ACCESS_TOKEN)
    {
        s.problems.push("application API without its token".into());
        return Some(
            (
                StatusCode::UNAUTHORIZED,
                Json(json!({"error": "You need to sign in or sign up before continuing."})),
            )
                .into_response(),
        );
    }
    (account != ACCOUNT).then(|| {
        s.problems.push(format!("unknown account {account}"));
        StatusCode::NOT_FOUND.into_response()
    })
}

async fn app_create_message(
    State(state): State<Shared>,
    Path((account, id)): Path<(u64, u64)>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let mut s = state.lock().unwrap();
    s.seen.push("POST app messages".into());
    if let Some(r) = check_app(&mut s, account, &headers) {
        return r;
    }
    let bad = unknown_keys(
        &body,
        &[
            "content",
            "message_type",
            "private",
            "content_type",
            "content_attributes",
            "template_params",
        ],
    );
    if !bad.is_empty() {
        return refuse(
            &mut s,
            format!("create message (app): unknown fields {bad:?}"),
        );
    }
    let Some(content) = body["content"].as_str().filter(|c| !c.is_empty()) else {
        return refuse(&mut s, "create message (app): content is required".into());
    };
    if !matches!(
        body["message_type"].as_str(),
        None | Some("outgoing" | "incoming")
    ) {
        return refuse(&mut s, "create message (app): message_type".into());
    }
    if !s.conversations.iter().any(|c| c.id == id) {
        return refuse(
            &mut s,
            format!("create message (app): no conversation {id}"),
        );
    }
    s.next_id += 1;
    let m = Message {
        id: s.next_id,
        conversation_id: id,
        content: content.into(),
        message_type: "outgoing",
        private: body["private"].as_bool().unwrap_or(false),
        content_attributes: body["content_attributes"].clone(),
    };
    s.messages.push(m.clone());
    Json(message_json(&m)).into_response()
}

async fn app_list_messages(
    State(state): State<Shared>,
    Path((account, id)): Path<(u64, u64)>,
    headers: HeaderMap,
) -> Response {
    let mut s = state.lock().unwrap();
    s.seen.push("GET app messages".into());
    if let Some(r) = check_app(&mut s, account, &headers) {
        return r;
    }
    let list: Vec<Value> = s
        .messages
        .iter()
        .filter(|m| m.conversation_id == id)
        .map(message_json)
        .collect();
    Json(json!({"meta": {}, "payload": list})).into_response()
}
