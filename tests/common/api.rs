//! A client for the daemon's `/v1` (with the full-scope test token) and its event
//! stream.

use std::time::Duration;

use serde_json::Value;

use super::{Daemon, TOKEN, eventually};

/// A client for the daemon's API.
pub struct Api {
    /// Base URL.
    pub base: String,
    /// The bearer token every request carries.
    pub token: String,
    /// A client without a timeout of its own: each wait bounds itself.
    pub http: reqwest::Client,
}

impl Api {
    /// A client with the full-scope token.
    pub fn new(d: &Daemon) -> Api {
        let _ = rustls::crypto::ring::default_provider().install_default();
        Api {
            base: d.url(""),
            token: TOKEN.into(),
            http: reqwest::Client::new(),
        }
    }

    /// GET → (status, JSON).
    pub async fn get(&self, path: &str) -> (u16, serde_json::Value) {
        let r = self
            .http
            .get(format!("{}{}", self.base, path))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(serde_json::Value::Null))
    }

    /// POST JSON → (status, JSON).
    pub async fn post(&self, path: &str, body: &serde_json::Value) -> (u16, serde_json::Value) {
        self.post_raw(path, body.to_string()).await
    }

    /// POST a raw body → (status, JSON).
    pub async fn post_raw(
        &self,
        path: &str,
        body: impl Into<reqwest::Body>,
    ) -> (u16, serde_json::Value) {
        let r = self
            .http
            .post(format!("{}{}", self.base, path))
            .bearer_auth(&self.token)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(serde_json::Value::Null))
    }

    /// Posts an agent's reply into conversation `conversation` (expects 202); its id.
    pub async fn reply(&self, conversation: &str, body: serde_json::Value) -> String {
        let (s, m) = self
            .post(&format!("/v1/conversations/{conversation}/messages"), &body)
            .await;
        assert_eq!(s, 202, "{m}");
        m["id"].as_str().unwrap().to_owned()
    }

    /// Waits (at most 15 s) until message `id` has `status`; the message.
    pub async fn wait_status(&self, id: &str, status: &str) -> serde_json::Value {
        eventually(
            Duration::from_secs(15),
            &format!("message {id} to be {status}"),
            || async {
                let (_, m) = self.get(&format!("/v1/messages/{id}")).await;
                (m["status"] == status).then_some(m)
            },
        )
        .await
    }

    /// Waits (at most 15 s) until service `id` is in connection state `kind` as
    /// `GET /v1/services` shows it; that state.
    pub async fn wait_state(&self, id: &str, kind: &str) -> serde_json::Value {
        self.wait_state_within(id, kind, Duration::from_secs(15))
            .await
    }

    /// [`Api::wait_state`] with its own limit (XMPP logins against Prosody take longer).
    pub async fn wait_state_within(
        &self,
        id: &str,
        kind: &str,
        limit: Duration,
    ) -> serde_json::Value {
        eventually(limit, &format!("service {id} to be {kind}"), || async {
            let (_, list) = self.get("/v1/services").await;
            let svc = list["data"].as_array()?.iter().find(|s| s["id"] == id)?;
            (svc["state"]["kind"] == kind).then(|| svc["state"].clone())
        })
        .await
    }

    /// A service's conversations, oldest first (the first page).
    pub async fn conversations(&self, service: &str) -> Vec<Value> {
        let (s, list) = self
            .get(&format!("/v1/conversations?service_id={service}"))
            .await;
        assert_eq!(s, 200, "{list}");
        list["data"].as_array().unwrap().clone()
    }

    /// The conversation of `service` with this provider id (panics if there is none).
    pub async fn conversation(&self, service: &str, external_id: &str) -> Value {
        self.conversations(service)
            .await
            .into_iter()
            .find(|c| c["external_id"] == external_id)
            .unwrap_or_else(|| panic!("no conversation {external_id:?} on {service}"))
    }

    /// The messages of conversation `id`, oldest first (the first page).
    pub async fn messages(&self, id: &str) -> Vec<Value> {
        let (s, list) = self.get(&format!("/v1/conversations/{id}/messages")).await;
        assert_eq!(s, 200, "{list}");
        list["data"].as_array().unwrap().clone()
    }

    /// Every message of conversation `id`, oldest first, through the API's paging.
    pub async fn all_messages(&self, id: &str) -> Vec<Value> {
        let mut out = Vec::new();
        let mut after = String::new();
        loop {
            let (status, page) = self
                .get(&format!(
                    "/v1/conversations/{id}/messages?limit=100&after={after}"
                ))
                .await;
            assert_eq!(status, 200, "{page}");
            out.extend(page["data"].as_array().unwrap().iter().cloned());
            match page["next"].as_str() {
                Some(n) => after = n.to_owned(),
                None => return out,
            }
        }
    }

    /// How often each inbound external id is stored, over every conversation and
    /// message, through the API's paging: what exactly-once checks count.
    pub async fn stored_inbound(&self) -> std::collections::BTreeMap<String, usize> {
        let mut stored = std::collections::BTreeMap::new();
        let mut after = String::new();
        loop {
            let (status, page) = self
                .get(&format!("/v1/conversations?limit=100&after={after}"))
                .await;
            assert_eq!(status, 200, "{page}");
            for c in page["data"].as_array().unwrap() {
                for m in self.all_messages(c["id"].as_str().unwrap()).await {
                    if m["direction"] == "inbound" {
                        *stored
                            .entry(m["external_id"].as_str().unwrap().to_owned())
                            .or_default() += 1;
                    }
                }
            }
            match page["next"].as_str() {
                Some(n) => after = n.to_owned(),
                None => return stored,
            }
        }
    }

    /// Message `id` as the API shows it now.
    pub async fn message(&self, id: &str) -> Value {
        self.get(&format!("/v1/messages/{id}")).await.1
    }

    /// Posts an inbound message through the `api` service.
    pub async fn inbound(
        &self,
        external_id: &str,
        contact: &str,
        text: &str,
    ) -> (u16, serde_json::Value) {
        self.post(
            "/v1/services/api/messages",
            &serde_json::json!({"external_id": external_id, "contact": {"external_id": contact}, "text": text}),
        )
        .await
    }
}

/// Reads events from `/v1/events?after=` over the websocket until `n` arrived or
/// `limit` passed.
pub async fn read_events(
    d: &Daemon,
    token: &str,
    after: i64,
    n: usize,
    limit: Duration,
) -> Vec<serde_json::Value> {
    use futures_util::StreamExt;
    let url = format!(
        "ws://{}/v1/events?after={after}&access_token={token}",
        d.addr
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("websocket connects");
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + limit;
    while out.len() < n {
        match tokio::time::timeout_at(deadline, ws.next()).await {
            Ok(Some(Ok(tokio_tungstenite::tungstenite::Message::Text(t)))) => {
                out.push(serde_json::from_str(&t).unwrap())
            }
            Ok(Some(Ok(_))) => {}
            _ => break,
        }
    }
    out
}

/// Every stored event of type `kind` (read from the stream for 400 ms).
pub async fn events_of(d: &Daemon, kind: &str) -> Vec<Value> {
    read_events(d, TOKEN, 0, 1000, Duration::from_millis(400))
        .await
        .into_iter()
        .filter(|e| e["type"] == kind)
        .collect()
}
