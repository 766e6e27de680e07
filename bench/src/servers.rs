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

/// When each message's `message.created` webhook arrived, by message number.
#[derive(Clone, Default)]
pub struct Sink {
    /// Arrival instants.
    pub arrived: Arc<Mutex<HashMap<u64, Instant>>>,
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
                    arrived.lock().unwrap().entry(n).or_insert(now);
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
}
