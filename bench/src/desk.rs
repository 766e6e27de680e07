//! A minimal nimchat desk for the mirror benchmark: the client API's contact,
//! conversation and message endpoints on 127.0.0.1:0, answering as Chatwoot does and
//! timestamping each contact message on arrival by its benchmark number. Checking the
//! requests' shapes is the end-to-end tests' fake's job (`tests/fakes/nimchat.rs`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{Method, Uri};
use axum::response::IntoResponse;

/// The inbox identifier the bench configures.
pub const INBOX: &str = "bench-inbox";

/// What the desk saw.
#[derive(Default)]
pub struct Seen {
    /// First arrival per message number.
    pub first: HashMap<u64, Instant>,
    /// Message posts in all, repeats included.
    pub posts: u64,
    /// Conversations created.
    pub conversations: u64,
    /// Posts whose message id (`echo_id` = `mir_<our message id>`, ids follow the commit
    /// order) is below the last one posted to the same conversation. The benchmark
    /// number is no guide: 64 clients draw numbers before they race to commit.
    pub out_of_order: u64,
    last: HashMap<String, u64>,
}

/// The desk.
#[derive(Clone, Default)]
pub struct Desk {
    pub seen: Arc<Mutex<Seen>>,
    ids: Arc<AtomicU64>,
}

impl Desk {
    /// Starts on 127.0.0.1:0; returns its `base_url`.
    pub async fn start(&self) -> anyhow::Result<String> {
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(self.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(url)
    }

    /// Messages that arrived at least once.
    pub fn count(&self) -> usize {
        self.seen.lock().unwrap().first.len()
    }
}

async fn handle(
    State(desk): State<Desk>,
    method: Method,
    uri: Uri,
    body: Bytes,
) -> impl IntoResponse {
    let now = Instant::now();
    let id = desk.ids.fetch_add(1, Ordering::Relaxed) + 1;
    let path = uri.path();
    let json = |v: serde_json::Value| {
        ([("content-type", "application/json")], v.to_string()).into_response()
    };
    if method == Method::GET {
        return json(serde_json::json!([]));
    }
    if path.ends_with("/contacts") {
        return json(
            serde_json::json!({"id": id, "source_id": format!("src-{id}"), "pubsub_token": "t"}),
        );
    }
    if path.ends_with("/conversations") {
        desk.seen.lock().unwrap().conversations += 1;
        return json(serde_json::json!({"id": id, "inbox_id": "1", "messages": [], "contact": {}}));
    }
    // …/conversations/{id}/messages: the benchmark's text names its number.
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let content = v["content"].as_str().unwrap_or_default();
    if let Some(n) = content
        .strip_prefix("Hello, this is message ")
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse::<u64>().ok())
    {
        let conversation = path.rsplit('/').nth(1).unwrap_or_default().to_owned();
        let mut guard = desk.seen.lock().unwrap();
        let s = &mut *guard;
        s.posts += 1;
        s.first.entry(n).or_insert(now);
        let id = v["echo_id"]
            .as_str()
            .and_then(|e| e.strip_prefix("mir_"))
            .and_then(|i| i.parse::<u64>().ok())
            .unwrap_or(0);
        let last = s.last.entry(conversation).or_insert(0);
        if id < *last {
            s.out_of_order += 1;
        }
        *last = (*last).max(id);
    }
    json(serde_json::json!({"id": id.to_string(), "content": content, "message_type": "incoming"}))
}
