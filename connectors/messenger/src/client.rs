//! The Graph API's Send API, all of this connector's HTTP:
//! `POST {api_base}/{version}/me/messages?access_token=…`, the request bodies for one of
//! our messages, and how Graph's `{"error":{…}}` answers are classified.

use std::time::Duration;

use http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};
use switchboard_core::backoff::retry_after;
use switchboard_core::model::Attachment;
use switchboard_core::{CredentialWatch, DeliveryError, Message, Secret};

use crate::config::MessengerParams;

/// One Send API request may take this long.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest `message.text` the Send API takes, in characters.
pub const TEXT_MAX: usize = 2000;
/// How long a rate-limited send waits when Graph gives no estimate: its limits are
/// counted over a rolling hour, and a minute lets a burst drain without hammering.
pub const RATE_LIMIT_WAIT: Duration = Duration::from_secs(60);

/// The Page's Send API and the token replies are sent with.
#[derive(Debug)]
pub struct Client {
    url: url::Url,
    token: Secret,
}

impl Client {
    /// A client for the page in `params`; fails, at load rather than on the first reply,
    /// when `api_base` cannot take the API's path.
    pub fn new(params: &MessengerParams) -> Result<Self, String> {
        Ok(Client {
            url: send_url(&params.api_base, &params.api_version)?,
            token: params.page_access_token.clone(),
        })
    }

    /// Sends one request body; the `message_id` Graph gave it. A rejected token (code
    /// 190) is told to `credentials` and answered as a transient error, so the reply
    /// waits for the token to be fixed. The token rides in the query, as the API
    /// documents: errors never carry the URL.
    pub async fn send(
        &self,
        http: &reqwest::Client,
        credentials: &CredentialWatch,
        body: &Value,
    ) -> Result<Option<String>, DeliveryError> {
        let resp = http
            .post(self.url.clone())
            .query(&[("access_token", self.token.expose())])
            .timeout(REQUEST_TIMEOUT)
            .json(body)
            .send()
            .await
            .map_err(|e| DeliveryError::from_reqwest(&e))?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| DeliveryError::from_reqwest(&e))?;
        if status.is_success() {
            let id = sent_id(&bytes);
            if id.is_none() {
                tracing::warn!(
                    "Graph accepted a message without a message_id; its receipts match by watermark only"
                );
            }
            return Ok(id);
        }
        match classify(status, &headers, &bytes) {
            Failure::TokenRejected(reason) => Err(credentials.refused(reason, None)),
            Failure::Other(e) => Err(e),
        }
    }
}

/// `{api_base}/{version}/me/messages`.
pub fn send_url(api_base: &str, version: &str) -> Result<url::Url, String> {
    let mut url = url::Url::parse(api_base).map_err(|e| format!("api_base: {e}"))?;
    url.path_segments_mut()
        .map_err(|_| "api_base cannot take a path".to_owned())?
        .pop_if_empty()
        .extend([version, "me", "messages"]);
    Ok(url)
}

/// The request bodies for one message to `psid`: its text (in pieces of at most
/// [`TEXT_MAX`] characters), then one attachment message per file, since a Send API
/// message carries either text or one attachment.
pub fn message_bodies(psid: &str, msg: &Message) -> Vec<Value> {
    let envelope = |message: Value| json!({"recipient": {"id": psid}, "messaging_type": "RESPONSE", "message": message});
    let mut out = Vec::new();
    if let Some(text) = msg.text.as_deref().filter(|t| !t.trim().is_empty()) {
        for piece in chunks(text, TEXT_MAX) {
            out.push(envelope(json!({ "text": piece })));
        }
    }
    for a in &msg.attachments {
        out.push(envelope(json!({"attachment": {
            "type": media_kind(a),
            "payload": {"url": a.url, "is_reusable": false}
        }})));
    }
    out
}

/// `text` in pieces of at most `max` characters.
fn chunks(text: &str, max: usize) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let cut = rest.char_indices().nth(max).map_or(rest.len(), |(i, _)| i);
        out.push(&rest[..cut]);
        rest = &rest[cut..];
    }
    out
}

/// The Send API's attachment types: `image`, `video`, `audio`, else `file`, by content
/// type or else by the URL's extension.
fn media_kind(a: &Attachment) -> &'static str {
    let by_type = |ct: &str| {
        let ct = ct.trim().to_ascii_lowercase();
        ["image", "video", "audio"]
            .into_iter()
            .find(|k| ct.starts_with(&format!("{k}/")))
    };
    let by_ext = || {
        let path = url::Url::parse(&a.url).ok()?.path().to_ascii_lowercase();
        let ext = path.rsplit_once('.')?.1.to_owned();
        match ext.as_str() {
            "png" | "jpg" | "jpeg" | "gif" | "webp" => Some("image"),
            "mp4" | "mov" | "webm" => Some("video"),
            "mp3" | "m4a" | "ogg" | "wav" | "aac" => Some("audio"),
            _ => None,
        }
    };
    match a.content_type.as_deref() {
        Some(ct) => by_type(ct),
        None => by_ext(),
    }
    .unwrap_or("file")
}

/// The `message_id` of a Send API answer.
pub fn sent_id(body: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(body).ok()?;
    v.get("message_id")?
        .as_str()
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// Graph's error object.
#[derive(Debug, Default, Deserialize)]
struct GraphError {
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    code: Option<i64>,
    #[serde(default)]
    error_subcode: Option<i64>,
    #[serde(default)]
    is_transient: Option<bool>,
    #[serde(default)]
    fbtrace_id: Option<String>,
}

/// How a failed send is handled.
#[derive(Debug, PartialEq, Eq)]
pub enum Failure {
    /// Graph rejected the page token (code 190): the service, not the message, is
    /// broken.
    TokenRejected(String),
    /// Anything else, classified.
    Other(DeliveryError),
}

/// Classifies a non-2xx answer by Graph's error code first, then by HTTP status:
/// 190 is a rejected token; 4, 32 and 613 are rate limits (wait, no attempt spent);
/// 10 with subcode 2018278 is a reply outside Messenger's 24-hour window (permanent,
/// said plainly); `is_transient`, codes 1 and 2, 429 and 5xx are transient; the rest
/// permanent. Every reason carries Graph's own message.
pub fn classify(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> Failure {
    let e: GraphError = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| serde_json::from_value(v.get("error")?.clone()).ok())
        .unwrap_or_default();
    let mut reason = format!("Graph API answered HTTP {}", status.as_u16());
    if let Some(m) = e
        .message
        .as_deref()
        .map(str::trim)
        .filter(|m| !m.is_empty())
    {
        reason.push_str(": ");
        reason.extend(m.chars().take(300));
    }
    let mut ids = Vec::new();
    if let Some(c) = e.code {
        ids.push(format!("code {c}"));
    }
    if let Some(s) = e.error_subcode {
        ids.push(format!("subcode {s}"));
    }
    if let Some(t) = e.fbtrace_id.as_deref().filter(|t| t.len() <= 64) {
        ids.push(format!("fbtrace_id {t}"));
    }
    if !ids.is_empty() {
        reason.push_str(&format!(" ({})", ids.join(", ")));
    }
    let hint = retry_after(headers);
    match e.code {
        Some(190) => {
            Failure::TokenRejected(format!("the page access token was rejected: {reason}"))
        }
        None if status == StatusCode::UNAUTHORIZED => {
            Failure::TokenRejected(format!("the page access token was rejected: {reason}"))
        }
        Some(4 | 32 | 613) => Failure::Other(DeliveryError::throttled(
            format!("rate limited: {reason}"),
            Some(
                hint.or_else(|| regain_access(headers))
                    .unwrap_or(RATE_LIMIT_WAIT),
            ),
        )),
        Some(10) if e.error_subcode == Some(2018278) => {
            Failure::Other(DeliveryError::permanent(format!(
                "outside Messenger's 24-hour window: the contact last wrote more than 24 hours ago, \
                 and a page may only answer within 24 hours of the contact's last message ({reason})"
            )))
        }
        Some(1 | 2) => Failure::Other(DeliveryError::Transient {
            reason,
            retry_after: hint,
        }),
        _ if e.is_transient == Some(true) => Failure::Other(DeliveryError::Transient {
            reason,
            retry_after: hint,
        }),
        _ => Failure::Other(DeliveryError::from_status(status, hint, reason)),
    }
}

/// Graph's own estimate of when a throttled page may call again:
/// `estimated_time_to_regain_access` (minutes) in `X-Business-Use-Case-Usage`.
fn regain_access(headers: &HeaderMap) -> Option<Duration> {
    let v: Value =
        serde_json::from_str(headers.get("x-business-use-case-usage")?.to_str().ok()?).ok()?;
    let minutes = v
        .as_object()?
        .values()
        .filter_map(Value::as_array)
        .flatten()
        .filter_map(|u| u.get("estimated_time_to_regain_access")?.as_u64())
        .max()?;
    (minutes > 0).then(|| Duration::from_secs(minutes.min(24 * 60) * 60))
}
