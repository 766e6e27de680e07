//! The two servers the bench runs itself: the bare ceiling (what an HTTP handler that
//! parses the same JSON and answers the same way costs on this machine), and the webhook
//! sink that timestamps each signed delivery it receives.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::body::Bytes;
use axum::http::StatusCode;

/// Serves the ceiling: parse the JSON body, answer 201 with a message-sized JSON object.
/// No storage: the difference to switchboard is the cost of durability and bookkeeping.
pub async fn bare_server() -> anyhow::Result<()> {
    let app = axum::Router::new().fallback(|body: Bytes| async move {
        let v: serde_json::Value = match serde_json::from_slice(&body) {
            Ok(v) => v,
            Err(_) => return (StatusCode::BAD_REQUEST, String::new()),
        };
        let answer = serde_json::json!({
            "id": "1", "conversation_id": "1", "service_id": "bench", "direction": "inbound",
            "external_id": v["external_id"], "text": v["text"], "attachments": [],
            "author": {"type": "contact", "name": v["contact"]["name"]}, "status": "received",
            "error": null, "created_at": "2026-01-01T00:00:00.000Z",
        });
        (StatusCode::CREATED, answer.to_string())
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    eprintln!("bare server listen={}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}

/// What a [`Sink`] recorded.
#[derive(Default)]
pub struct Arrivals {
    /// First arrival instant per message number.
    pub first: HashMap<u64, Instant>,
    /// Deliveries in all, repeats included.
    pub deliveries: u64,
    /// Deliveries whose event came before one already received from its conversation
    /// (a repeat of the last one received is not counted: that is at-least-once).
    pub out_of_order: u64,
    /// Highest event seq received per conversation.
    last_seq: HashMap<String, u64>,
}

/// Timestamps each `message.created` webhook on arrival, by message number, and checks
/// that each conversation's events come in order.
#[derive(Clone, Default)]
pub struct Sink {
    /// What arrived.
    pub arrived: Arc<Mutex<Arrivals>>,
}

impl Sink {
    /// Starts on 127.0.0.1:0; returns the URL to configure.
    pub async fn start(&self) -> anyhow::Result<String> {
        let arrived = self.arrived.clone();
        let app = axum::Router::new().fallback(move |body: Bytes| {
            let arrived = arrived.clone();
            async move {
                let now = Instant::now();
                if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&body)
                    && let Some(n) = v["data"]["message"]["external_id"]
                        .as_str()
                        .and_then(|id| id.strip_prefix("m-"))
                        .and_then(|n| n.parse::<u64>().ok())
                {
                    let seq = v["seq"].as_u64().unwrap_or(0);
                    let conv = v["data"]["message"]["conversation_id"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned();
                    let mut guard = arrived.lock().unwrap();
                    let a = &mut *guard;
                    a.deliveries += 1;
                    a.first.entry(n).or_insert(now);
                    let last = a.last_seq.entry(conv).or_insert(0);
                    if seq < *last {
                        a.out_of_order += 1;
                    }
                    *last = (*last).max(seq);
                }
                StatusCode::OK
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}/events", listener.local_addr()?);
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(url)
    }

    /// Messages that arrived at least once.
    pub fn count(&self) -> usize {
        self.arrived.lock().unwrap().first.len()
    }
}
