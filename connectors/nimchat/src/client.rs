//! The desk's HTTP APIs, all of this connector's requests: the inbox's public client API
//! (contacts, conversations and the contact's messages; no token) and, with
//! `api_access_token`, the application API (outgoing messages and private notes).

use std::time::Duration;

use hmac::{Hmac, Mac};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use sha2::Sha256;
use switchboard_core::backoff::retry_after;
use switchboard_core::{Contact, DeliveryError, Secret};

use crate::config::NimchatParams;
use crate::payload::{ContactAnswer, ConversationAnswer, List, MessageAnswer};

/// How long one request may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

/// The inbox's endpoints and credentials.
#[derive(Debug, Clone)]
pub struct Client {
    /// `{base}/public/api/v1/inboxes/{inbox_identifier}`.
    inbox: String,
    /// `{base}/api/v1/accounts/{account_id}` and the token, with the application API.
    account: Option<(String, Secret)>,
    hmac_token: Option<Secret>,
}

impl Client {
    /// A client for the inbox in `params`.
    pub fn new(params: &NimchatParams) -> Self {
        Client {
            inbox: format!(
                "{}/public/api/v1/inboxes/{}",
                params.base(),
                params.inbox_identifier
            ),
            account: params.app_api().map(|(account, token)| {
                (
                    format!("{}/api/v1/accounts/{account}", params.base()),
                    token.clone(),
                )
            }),
            hmac_token: params.hmac_token.clone(),
        }
    }

    /// Whether the application API is configured.
    pub fn has_app_api(&self) -> bool {
        self.account.is_some()
    }

    /// `POST …/contacts`, with `identifier` = our contact id (the desk finds the same
    /// contact again by it) and its hash when the inbox validates identities. Returns
    /// the contact's `source_id` in this inbox.
    pub async fn create_contact(
        &self,
        http: &reqwest::Client,
        contact: &Contact,
    ) -> Result<String, DeliveryError> {
        let identifier = contact.id.clone();
        let mut body = json!({ "identifier": identifier });
        if let Some(key) = &self.hmac_token {
            body["identifier_hash"] = Value::String(identifier_hash(key, &identifier));
        }
        for (field, value) in [
            ("name", &contact.name),
            ("email", &contact.email),
            ("phone_number", &contact.phone),
        ] {
            if let Some(v) = value.as_ref().filter(|v| !v.trim().is_empty()) {
                body[field] = Value::String(v.clone());
            }
        }
        let url = format!("{}/contacts", self.inbox);
        let answer: ContactAnswer =
            send(http.post(url).json(&body), "creating the contact").await?;
        Ok(answer.source_id)
    }

    /// `GET …/contacts/{source_id}/conversations`.
    pub async fn conversations(
        &self,
        http: &reqwest::Client,
        source_id: &str,
    ) -> Result<Vec<ConversationAnswer>, DeliveryError> {
        let url = format!("{}/contacts/{source_id}/conversations", self.inbox);
        let list: List<ConversationAnswer> = send(http.get(url), "listing conversations").await?;
        Ok(list.into_vec())
    }

    /// `POST …/contacts/{source_id}/conversations`, naming our conversation in its
    /// custom attributes. Returns the desk's conversation id.
    pub async fn create_conversation(
        &self,
        http: &reqwest::Client,
        source_id: &str,
        conversation_id: &str,
    ) -> Result<String, DeliveryError> {
        let url = format!("{}/contacts/{source_id}/conversations", self.inbox);
        let body = json!({"custom_attributes": {"switchboard_conversation": conversation_id}});
        let answer: ConversationAnswer =
            send(http.post(url).json(&body), "creating the conversation").await?;
        Ok(answer.id.to_string())
    }

    /// `POST …/contacts/{source_id}/conversations/{id}/messages`: a contact's message.
    pub async fn create_message(
        &self,
        http: &reqwest::Client,
        source_id: &str,
        conversation: &str,
        content: &str,
        echo_id: &str,
    ) -> Result<MessageAnswer, DeliveryError> {
        let url = format!(
            "{}/contacts/{source_id}/conversations/{conversation}/messages",
            self.inbox
        );
        let body = json!({"content": content, "echo_id": echo_id});
        send(http.post(url).json(&body), "posting the message").await
    }

    /// `GET …/contacts/{source_id}/conversations/{id}/messages`.
    pub async fn messages(
        &self,
        http: &reqwest::Client,
        source_id: &str,
        conversation: &str,
    ) -> Result<Vec<MessageAnswer>, DeliveryError> {
        let url = format!(
            "{}/contacts/{source_id}/conversations/{conversation}/messages",
            self.inbox
        );
        let list: List<MessageAnswer> = send(http.get(url), "listing messages").await?;
        Ok(list.into_vec())
    }

    /// `POST /api/v1/accounts/{account}/conversations/{id}/messages`: an outgoing
    /// message or a private note, carrying `content_attributes` (our marker). `None`
    /// without the application API.
    pub async fn app_message(
        &self,
        http: &reqwest::Client,
        conversation: &str,
        content: &str,
        private: bool,
        content_attributes: Value,
    ) -> Result<Option<MessageAnswer>, DeliveryError> {
        let Some((account, token)) = &self.account else {
            return Ok(None);
        };
        let url = format!("{account}/conversations/{conversation}/messages");
        let body = json!({"content": content, "message_type": "outgoing", "private": private,
                          "content_attributes": content_attributes});
        let req = http
            .post(url)
            .header("api_access_token", token.expose())
            .json(&body);
        send(req, "posting to the application API").await.map(Some)
    }

    /// `GET /api/v1/accounts/{account}/conversations/{id}/messages`; empty without the
    /// application API.
    pub async fn app_messages(
        &self,
        http: &reqwest::Client,
        conversation: &str,
    ) -> Result<Vec<MessageAnswer>, DeliveryError> {
        let Some((account, token)) = &self.account else {
            return Ok(Vec::new());
        };
        let url = format!("{account}/conversations/{conversation}/messages");
        let req = http.get(url).header("api_access_token", token.expose());
        let list: List<MessageAnswer> = send(req, "listing messages").await?;
        Ok(list.into_vec())
    }
}

/// Hex HMAC-SHA256 of `identifier` keyed with the inbox's HMAC token.
pub fn identifier_hash(key: &Secret, identifier: &str) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(key.expose().as_bytes()).expect("HMAC takes any key");
    mac.update(identifier.as_bytes());
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Sends `req` and reads a 2xx answer as `T`; anything else is a delivery error named
/// after `what`, with the desk's own text. Never shows the URL (it holds the inbox
/// identifier) or the token.
async fn send<T: DeserializeOwned>(
    req: reqwest::RequestBuilder,
    what: &str,
) -> Result<T, DeliveryError> {
    let resp = req
        .timeout(REQUEST_TIMEOUT)
        .send()
        .await
        .map_err(|e| DeliveryError::from_reqwest_within(&e, REQUEST_TIMEOUT))?;
    let status = resp.status();
    let hint = retry_after(resp.headers());
    let body = resp
        .bytes()
        .await
        .map_err(|e| DeliveryError::from_reqwest_within(&e, REQUEST_TIMEOUT))?;
    if status.is_success() {
        return serde_json::from_slice(&body).map_err(|e| {
            DeliveryError::transient(format!("{what}: the desk's answer is not understood: {e}"))
        });
    }
    let text = error_text(&body);
    let reason = format!("{what}: the desk answered {}: {text}", status.as_u16());
    if matches!(status.as_u16(), 401 | 403) {
        // The token (or the inbox) is refused, not the message: hold it until fixed.
        return Err(DeliveryError::Transient {
            reason,
            retry_after: hint,
        });
    }
    Err(DeliveryError::from_status(status, hint, reason))
}

/// The desk's error text: `message`, `error` or `errors` of a JSON body, else the
/// body's start.
fn error_text(body: &[u8]) -> String {
    if let Ok(v) = serde_json::from_slice::<Value>(body) {
        for key in ["message", "error", "errors"] {
            match v.get(key) {
                Some(Value::String(s)) => return s.clone(),
                Some(other) if !other.is_null() => return other.to_string(),
                _ => {}
            }
        }
    }
    String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned()
}
