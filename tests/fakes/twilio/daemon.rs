//! The daemon side of the twilio tests: one with a public URL and the given twilio
//! services, a conversation opened by a signed SMS, and what it stored.

use std::time::Duration;

use serde_json::Value;

use super::api::FakeTwilio;
use super::requests::{
    FROM_PARAM, PUBLIC, SMS_CONTACT, SMS_NUMBER, post_signed, sms_params, twilio_service,
};
use crate::common::*;

/// How long any wait in these tests may take.
pub const T: Duration = Duration::from_secs(15);

/// A daemon whose public URL is `public_url`, with an `api` service for reading and the
/// given twilio services.
pub fn start(public_url: &str, services: &str) -> Harness {
    Harness::start(|dir| public_config(dir, public_url) + &api_service("") + services)
}

/// A daemon with twilio service `sms` on `fake`, and the conversation an SMS `sid` with
/// `text` from [`SMS_CONTACT`] to [`SMS_NUMBER`] opened.
pub async fn sms_conversation(fake: &FakeTwilio, sid: &str, text: &str) -> (Harness, Value) {
    let h = start(PUBLIC, &twilio_service("sms", fake, FROM_PARAM));
    let p = sms_params(sid, SMS_CONTACT, SMS_NUMBER, text);
    let r = post_signed(&h.daemon, &format!("{PUBLIC}/hooks/sms"), &p).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let conv = h
        .conversation("sms", &format!("{SMS_CONTACT}|{SMS_NUMBER}"))
        .await;
    (h, conv)
}

/// The conversations of a service.
pub async fn conversations(api: &Api, service: &str) -> Vec<Value> {
    api.conversations(service).await
}

/// The conversation of `service` with this external id (panics if there is none).
pub async fn conversation(api: &Api, service: &str, external_id: &str) -> Value {
    api.conversation(service, external_id).await
}

/// A conversation's messages, oldest first.
pub async fn messages(api: &Api, conversation: &Value) -> Vec<Value> {
    api.messages(conversation["id"].as_str().unwrap()).await
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
    api.message(id).await
}
