//! A fake Intercom REST API (2.14) on 127.0.0.1:0 for the end-to-end tests. It checks
//! what the spec documents — bearer token, `Intercom-Version: 2.14`, JSON bodies, the
//! search query and reply shapes — answering mistakes with the provider's own
//! `error.list` (and recording them in `problems`), and otherwise answers like
//! Intercom: conversations with their parts, cursor-paged search, replies that append
//! an admin part, and rate-limit headers.
#![allow(dead_code)]

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::common::FakeServer;

/// The workspace's access token.
pub const ACCESS_TOKEN: &str = "dG9rOmZha2UtaW50ZXJjb20tYWNjZXNzLXRva2Vu";
/// The admin replies are made as.
pub const ADMIN: &str = "991267696";
/// The workspace id.
pub const APP_ID: &str = "a86dr8yl";
/// The developer app's client secret (signs notifications).
pub const CLIENT_SECRET: &str = "fake-intercom-client-secret";

/// One request the fake got.
#[derive(Debug, Clone)]
pub struct Req {
    /// `GET` or `POST`.
    pub method: Method,
    /// The path, with the ids Intercom would see.
    pub path: String,
    /// Headers: auth and `Intercom-Version` are checked here.
    pub headers: HeaderMap,
    /// Body as JSON (Null when empty or not JSON).
    pub body: Value,
    /// When it arrived.
    pub at: Instant,
}

impl Req {
    /// A header as text.
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

/// A canned answer for the next reply request.
pub struct Scripted {
    /// Whether the reply is carried out (a part appended) whatever the answer says.
    pub process: bool,
    /// Status and body to answer with instead of the usual answer.
    pub answer: Option<(StatusCode, Value)>,
    /// Headers added to the answer (e.g. a spent rate-limit window).
    pub headers: Vec<(&'static str, String)>,
}

/// The fake's state.
pub struct Shared {
    /// Conversations by id, full (with parts).
    pub conversations: Mutex<BTreeMap<String, Value>>,
    /// Every request, oldest first.
    pub requests: Mutex<Vec<Req>>,
    /// Requests that broke the documented shape.
    pub problems: Mutex<Vec<String>>,
    /// Answers for the next reply requests, before normal processing.
    pub reply_script: Mutex<VecDeque<Scripted>>,
    /// Search results per page at most (smaller than asked, to exercise paging).
    pub page_size: usize,
    /// Seconds the fake's clock is ahead of ours (Intercom's clock is not ours).
    pub clock_offset: i64,
    next_id: AtomicU64,
}

impl Shared {
    /// The fake's "now", unix seconds.
    pub fn now(&self) -> i64 {
        jiff::Timestamp::now().as_second() + self.clock_offset
    }

    fn next_id(&self) -> String {
        self.next_id.fetch_add(1, Ordering::SeqCst).to_string()
    }

    fn problem(&self, p: String) {
        self.problems.lock().unwrap().push(p);
    }
}

/// A running fake.
pub struct FakeIntercom {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its state.
    pub state: Arc<Shared>,
    server: FakeServer,
}

/// A contact as a part author.
pub fn user(id: &str, name: &str) -> Value {
    json!({"type": "user", "id": id, "name": name, "email": format!("{}@example.com", name.to_lowercase().replace(' ', "."))})
}

/// Our admin as a part author.
pub fn admin() -> Value {
    json!({"type": "admin", "id": ADMIN, "name": "Anna Admin", "email": "anna@example.com"})
}

impl FakeIntercom {
    /// Starts a fake whose clock runs `clock_offset` seconds ahead of ours.
    pub async fn start(clock_offset: i64) -> FakeIntercom {
        let state = Arc::new(Shared {
            conversations: Mutex::default(),
            requests: Mutex::default(),
            problems: Mutex::default(),
            reply_script: Mutex::default(),
            page_size: 2,
            clock_offset,
            next_id: AtomicU64::new(5000),
        });
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(state.clone());
        let server = FakeServer::spawn(app).await;
        let addr = server.addr;
        FakeIntercom {
            addr,
            state,
            server,
        }
    }

    /// `http://addr`.
    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Adds a conversation the contact started, created and updated at `at` (fake
    /// clock); returns the source (first message) id.
    pub fn add_conversation(&self, id: &str, author: Value, body: &str, at: i64) -> String {
        let source_id = self.state.next_id();
        let contact_id = author["id"].clone();
        let conv = json!({
            "type": "conversation", "id": id, "created_at": at, "updated_at": at,
            "waiting_since": at, "snoozed_until": null,
            "source": {"type": "conversation", "id": source_id, "delivered_as": "customer_initiated",
                       "subject": "", "body": body, "author": author, "attachments": [],
                       "url": null, "redacted": false},
            "contacts": {"type": "contact.list", "contacts": [{"type": "contact", "id": contact_id, "external_id": null}]},
            "admin_assignee_id": null, "team_assignee_id": null, "open": true, "state": "open",
            "read": false, "tags": {"type": "tag.list", "tags": []}, "priority": "not_priority",
            "title": null, "custom_attributes": {},
            "conversation_parts": {"type": "conversation_part.list", "conversation_parts": [], "total_count": 0}
        });
        self.state
            .conversations
            .lock()
            .unwrap()
            .insert(id.to_owned(), conv);
        source_id
    }

    /// Appends a part at `at` (fake clock) and moves the conversation's `updated_at`;
    /// returns the part id.
    pub fn add_part(
        &self,
        conv: &str,
        part_type: &str,
        author: Value,
        body: &str,
        at: i64,
    ) -> String {
        let id = self.state.next_id();
        let mut all = self.state.conversations.lock().unwrap();
        let c = all.get_mut(conv).expect("known conversation");
        push_part(c, &id, part_type, author, Some(body), at, vec![]);
        id
    }

    /// A conversation as `GET /conversations/{id}` returns it.
    pub fn conversation(&self, id: &str) -> Value {
        self.state.conversations.lock().unwrap()[id].clone()
    }

    /// Requests to paths starting with `prefix`.
    pub fn requests(&self, method: Method, prefix: &str) -> Vec<Req> {
        self.state
            .requests
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.method == method && r.path.starts_with(prefix))
            .cloned()
            .collect()
    }

    /// Searches made so far.
    pub fn searches(&self) -> Vec<Req> {
        self.requests(Method::POST, "/conversations/search")
    }

    /// Shape violations seen so far.
    pub fn problems(&self) -> Vec<String> {
        self.state.problems.lock().unwrap().clone()
    }

    /// Stops listening.
    pub async fn stop(self) {
        self.server.stop().await
    }
}

fn push_part(
    conv: &mut Value,
    id: &str,
    part_type: &str,
    author: Value,
    body: Option<&str>,
    at: i64,
    attachments: Vec<Value>,
) {
    let part = json!({
        "type": "conversation_part", "id": id, "part_type": part_type, "body": body,
        "created_at": at, "updated_at": at, "notified_at": at, "assigned_to": null,
        "author": author, "attachments": attachments, "external_id": null, "redacted": false,
        "metadata": {}, "email_message_metadata": null, "app_package_code": null
    });
    let parts = &mut conv["conversation_parts"];
    parts["conversation_parts"]
        .as_array_mut()
        .unwrap()
        .push(part);
    let n = parts["conversation_parts"].as_array().unwrap().len();
    parts["total_count"] = n.into();
    conv["updated_at"] = at.into();
}

/// The spec's `error.list`.
pub fn error_list(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        axum::Json(json!({
            "type": "error.list", "request_id": "00000000-0000-4000-8000-000000000000",
            "errors": [{"code": code, "message": message}]
        })),
    )
        .into_response()
}

async fn handle(
    State(s): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_owned();
    let json_body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    s.requests.lock().unwrap().push(Req {
        method: method.clone(),
        path: path.clone(),
        headers: headers.clone(),
        body: json_body.clone(),
        at: Instant::now(),
    });
    let header = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    if header("authorization") != format!("Bearer {ACCESS_TOKEN}") {
        return error_list(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Access Token Invalid",
        );
    }
    if header("intercom-version") != "2.14" {
        s.problem(format!(
            "{method} {path}: Intercom-Version {:?}",
            header("intercom-version")
        ));
        return error_list(
            StatusCode::BAD_REQUEST,
            "intercom_version_invalid",
            "Requested version is not valid",
        );
    }
    if method == Method::POST && !header("content-type").starts_with("application/json") {
        s.problem(format!(
            "{method} {path}: content-type {:?}",
            header("content-type")
        ));
        return error_list(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "Content-Type must be application/json",
        );
    }
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let mut resp = match (method.clone(), segments.as_slice()) {
        (Method::POST, ["conversations", "search"]) => search(&s, &json_body),
        (Method::GET, ["conversations", id]) => match s.conversations.lock().unwrap().get(*id) {
            Some(c) => axum::Json(c.clone()).into_response(),
            None => error_list(StatusCode::NOT_FOUND, "not_found", "Resource Not Found"),
        },
        (Method::POST, ["conversations", id, "reply"]) => reply(&s, id, &json_body),
        _ => error_list(StatusCode::NOT_FOUND, "not_found", "Resource Not Found"),
    };
    // Intercom sends its window on every answer.
    let h = resp.headers_mut();
    let reset = jiff::Timestamp::now().as_second() + 10;
    h.entry("x-ratelimit-limit")
        .or_insert("1666".parse().unwrap());
    h.entry("x-ratelimit-remaining")
        .or_insert("1665".parse().unwrap());
    h.entry("x-ratelimit-reset")
        .or_insert(reset.to_string().parse().unwrap());
    resp
}

fn search(s: &Shared, body: &Value) -> Response {
    let q = &body["query"];
    let since = q["value"].as_i64();
    if q["field"] != "updated_at" || !matches!(q["operator"].as_str(), Some(">")) || since.is_none()
    {
        s.problem(format!("search: unexpected query {q}"));
        return error_list(StatusCode::BAD_REQUEST, "query_invalid", "Invalid query");
    }
    let per_page = body["pagination"]["per_page"].as_u64().unwrap_or(20);
    if !(1..=150).contains(&per_page) {
        s.problem(format!("search: per_page {per_page}"));
        return error_list(
            StatusCode::BAD_REQUEST,
            "parameter_invalid",
            "per_page must be 1-150",
        );
    }
    let offset = match &body["pagination"]["starting_after"] {
        Value::Null => 0,
        Value::String(c) => match c
            .strip_prefix("WzE3MzQ1")
            .and_then(|n| n.parse::<usize>().ok())
        {
            Some(n) => n,
            None => {
                s.problem(format!("search: unknown cursor {c}"));
                return error_list(StatusCode::BAD_REQUEST, "cursor_invalid", "Invalid cursor");
            }
        },
        other => {
            s.problem(format!("search: starting_after {other}"));
            return error_list(
                StatusCode::BAD_REQUEST,
                "parameter_invalid",
                "starting_after must be a string",
            );
        }
    };
    let since = since.unwrap();
    // Newest id first: not in updated_at order, as the spec promises no order.
    let matching: Vec<Value> = s
        .conversations
        .lock()
        .unwrap()
        .values()
        .rev()
        .filter(|c| c["updated_at"].as_i64().unwrap() > since)
        .map(|c| {
            let mut item = c.clone();
            // List and search answers carry no parts (spec: only on retrieve).
            item.as_object_mut().unwrap().remove("conversation_parts");
            item
        })
        .collect();
    let size = s.page_size.min(per_page as usize);
    let page: Vec<Value> = matching.iter().skip(offset).take(size).cloned().collect();
    let total_pages = matching.len().div_ceil(size).max(1);
    let mut pages = json!({"type": "pages", "page": offset / size + 1, "per_page": size, "total_pages": total_pages});
    if offset + size < matching.len() {
        pages["next"] = json!({"page": offset / size + 2, "starting_after": format!("WzE3MzQ1{}", offset + size)});
    }
    axum::Json(json!({
        "type": "conversation.list", "pages": pages, "total_count": matching.len(), "conversations": page
    }))
    .into_response()
}

fn reply(s: &Shared, id: &str, body: &Value) -> Response {
    let script = s.reply_script.lock().unwrap().pop_front();
    let Some(Scripted {
        process,
        answer,
        headers,
    }) = script
    else {
        return process_reply(s, id, body);
    };
    let processed = process.then(|| process_reply(s, id, body));
    let mut r = match (answer, processed) {
        (Some((status, body)), _) => (status, axum::Json(body)).into_response(),
        (None, Some(r)) => r,
        (None, None) => panic!("a scripted reply needs an answer or processing"),
    };
    for (k, v) in headers {
        r.headers_mut().insert(k, v.parse().unwrap());
    }
    r
}

fn process_reply(s: &Shared, id: &str, body: &Value) -> Response {
    let Some(obj) = body.as_object() else {
        s.problem(format!("reply: body is not an object: {body}"));
        return error_list(StatusCode::BAD_REQUEST, "parameter_invalid", "Invalid body");
    };
    let allowed = [
        "message_type",
        "type",
        "admin_id",
        "body",
        "attachment_urls",
    ];
    let mut wrong: Vec<String> = obj
        .keys()
        .filter(|k| !allowed.contains(&k.as_str()))
        .map(|k| format!("unexpected field {k}"))
        .collect();
    if obj.get("message_type") != Some(&json!("comment")) {
        wrong.push(format!("message_type {:?}", obj.get("message_type")));
    }
    if obj.get("type") != Some(&json!("admin")) {
        wrong.push(format!("type {:?}", obj.get("type")));
    }
    // The spec's admin_reply_conversation_request types admin_id as a string.
    if obj.get("admin_id") != Some(&json!(ADMIN)) {
        wrong.push(format!("admin_id {:?}", obj.get("admin_id")));
    }
    if !obj.get("body").is_some_and(|b| b.is_string()) {
        wrong.push("body missing (required for comments)".into());
    }
    let urls: Vec<String> = match obj.get("attachment_urls") {
        None => vec![],
        Some(Value::Array(a))
            if a.len() <= 10
                && a.iter()
                    .all(|u| u.as_str().is_some_and(|u| u.starts_with("http"))) =>
        {
            a.iter().map(|u| u.as_str().unwrap().to_owned()).collect()
        }
        Some(other) => {
            wrong.push(format!("attachment_urls {other}"));
            vec![]
        }
    };
    if !wrong.is_empty() {
        s.problem(format!("reply: {}", wrong.join(", ")));
        return error_list(
            StatusCode::BAD_REQUEST,
            "parameter_invalid",
            &wrong.join(", "),
        );
    }
    let mut all = s.conversations.lock().unwrap();
    let Some(conv) = all.get_mut(id) else {
        return error_list(StatusCode::NOT_FOUND, "not_found", "Resource Not Found");
    };
    let part_id = s.next_id();
    let attachments = urls
        .iter()
        .map(|u| json!({"type": "upload", "name": u.rsplit('/').next().unwrap(), "url": u, "content_type": "image/png", "filesize": 1, "width": 1, "height": 1}))
        .collect();
    let text = obj["body"].as_str().unwrap();
    push_part(
        conv,
        &part_id,
        "comment",
        admin(),
        Some(&format!("<p>{text}</p>")),
        s.now(),
        attachments,
    );
    axum::Json(conv.clone()).into_response()
}
