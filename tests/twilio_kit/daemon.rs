//! The daemon side of the twilio tests: start one with a public URL, and read what it
//! stored through its API.

use std::time::Duration;

use serde_json::Value;

use crate::common::*;

/// How long any wait in these tests may take.
pub const T: Duration = Duration::from_secs(15);

/// A daemon whose public URL is `public_url`, with an `api` service for reading and the
/// given twilio services.
pub fn start(dir: &std::path::Path, public_url: &str, services: &str) -> Daemon {
    let config = base_config(dir).replace(
        "[server]\n",
        &format!("[server]\npublic_url = \"{public_url}\"\n"),
    ) + &api_service("")
        + services;
    Daemon::start(dir, &config)
}

/// The conversations of a service.
pub async fn conversations(api: &Api, service: &str) -> Vec<Value> {
    let (s, list) = api
        .get(&format!("/v1/conversations?service_id={service}"))
        .await;
    assert_eq!(s, 200, "{list}");
    list["data"].as_array().unwrap().clone()
}

/// The conversation of `service` with this external id (panics if there is none).
pub async fn conversation(api: &Api, service: &str, external_id: &str) -> Value {
    conversations(api, service)
        .await
        .into_iter()
        .find(|c| c["external_id"] == external_id)
        .unwrap_or_else(|| panic!("no conversation {external_id:?}"))
}

/// A conversation's messages, oldest first.
pub async fn messages(api: &Api, conversation: &Value) -> Vec<Value> {
    let id = conversation["id"].as_str().unwrap();
    let (s, list) = api.get(&format!("/v1/conversations/{id}/messages")).await;
    assert_eq!(s, 200, "{list}");
    list["data"].as_array().unwrap().clone()
}

/// Every stored event of type `kind`.
pub async fn events_of(d: &Daemon, kind: &str) -> Vec<Value> {
    read_events(d, TOKEN, 0, 1000, Duration::from_millis(400))
        .await
        .into_iter()
        .filter(|e| e["type"] == kind)
        .collect()
}

/// Posts an agent's reply into a conversation object; its message id.
pub async fn reply(api: &Api, conversation: &Value, body: Value) -> String {
    api.reply(conversation["id"].as_str().unwrap(), body).await
}

/// Waits until message `id` has `status`.
pub async fn wait_status(api: &Api, id: &str, status: &str) -> Value {
    api.wait_status(id, status).await
}

/// Message `id` as the API shows it now.
pub async fn status_of(api: &Api, id: &str) -> Value {
    api.get(&format!("/v1/messages/{id}")).await.1
}
