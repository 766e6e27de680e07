//! Sunshine's Messages API, all of this connector's HTTP: Post Message
//! (`POST /v2/apps/{appId}/conversations/{conversationId}/messages`) with Basic
//! `keyId:secret`, the request bodies for one of our messages, and how its answers are
//! read.

use std::time::Duration;

use http::StatusCode;
use serde_json::{Value, json};
use switchboard_core::backoff::retry_after;
use switchboard_core::model::Attachment;
use switchboard_core::{CredentialWatch, DeliveryError, Message, Secret, refuses_credentials};

use crate::config::SmoochParams;

/// One Post Message request may take this long.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The app's Messages API and the key that signs in to it.
#[derive(Debug)]
pub struct Client {
    api_base: String,
    app_id: String,
    key_id: String,
    secret: Secret,
}

impl Client {
    /// A client for the app in `params`; fails, at load rather than on the first reply,
    /// when `api_base` cannot take the API's paths.
    pub fn new(params: &SmoochParams) -> Result<Self, String> {
        messages_url(&params.api_base, &params.app_id, "x")?;
        Ok(Client {
            api_base: params.api_base.clone(),
            app_id: params.app_id.clone(),
            key_id: params.key_id.clone(),
            secret: params.secret.clone(),
        })
    }

    /// Posts one message body into Sunshine conversation `conversation`; the id Sunshine
    /// gave it. A refused key (401/403) is told to `credentials` and answered as a
    /// transient error, so the reply waits for the key to be fixed.
    pub async fn post(
        &self,
        http: &reqwest::Client,
        credentials: &CredentialWatch,
        conversation: &str,
        body: &Value,
    ) -> Result<Option<String>, DeliveryError> {
        let url = messages_url(&self.api_base, &self.app_id, conversation)
            .map_err(DeliveryError::permanent)?;
        let resp = http
            .post(url)
            .basic_auth(&self.key_id, Some(self.secret.expose()))
            .timeout(REQUEST_TIMEOUT)
            .json(body)
            .send()
            .await
            .map_err(|e| DeliveryError::from_reqwest(&e))?;
        let status = resp.status();
        let hint = retry_after(resp.headers());
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| DeliveryError::from_reqwest(&e))?;
        if refuses_credentials(status) {
            // Our keyId/secret, not the message, are wrong (revoked or rotated key).
            return Err(credentials.refused(classify(status, None, &bytes).to_string(), hint));
        }
        if !status.is_success() {
            return Err(classify(status, hint, &bytes));
        }
        let id = created_id(&bytes);
        if id.is_none() {
            // Accepted all the same: sending again would duplicate it.
            tracing::warn!(
                status = status.as_u16(),
                "Sunshine accepted a message without returning its id; its receipts cannot be matched"
            );
        }
        Ok(id)
    }
}

/// The spec's limit on `altText`.
const ALT_TEXT_MAX: usize = 128;

/// The Post Message URL, with the ids percent-encoded as path segments.
pub fn messages_url(
    api_base: &str,
    app_id: &str,
    conversation_id: &str,
) -> Result<url::Url, String> {
    let mut url = url::Url::parse(api_base).map_err(|e| format!("api_base: {e}"))?;
    url.path_segments_mut()
        .map_err(|_| "api_base cannot take a path".to_owned())?
        .pop_if_empty()
        .extend([
            "v2",
            "apps",
            app_id,
            "conversations",
            conversation_id,
            "messages",
        ]);
    Ok(url)
}

/// The request bodies for one message. A Sunshine message carries at most one file, so
/// a message with attachments becomes one `image`/`file` message per attachment, the
/// text riding on the first (the spec gives both types a `text`); without attachments
/// it is one `text` message.
pub fn message_bodies(msg: &Message) -> Vec<Value> {
    let mut author = json!({"type": "business"});
    if let Some(name) = msg.author.name.as_deref().filter(|n| !n.trim().is_empty()) {
        author["displayName"] = json!(name);
    }
    let text = msg.text.as_deref().filter(|t| !t.is_empty());
    if msg.attachments.is_empty() {
        return match text {
            Some(t) => vec![json!({"author": author, "content": {"type": "text", "text": t}})],
            None => vec![],
        };
    }
    msg.attachments
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let mut content = json!({"type": media_kind(a), "mediaUrl": a.url});
            if let Some(name) = a.name.as_deref().filter(|n| !n.trim().is_empty()) {
                content["altText"] = json!(truncate(name, ALT_TEXT_MAX));
            }
            if i == 0
                && let Some(t) = text
            {
                content["text"] = json!(t);
            }
            json!({"author": author, "content": content})
        })
        .collect()
}

/// `image` for pictures (by content type, else by the URL's extension), `file` for the
/// rest: channels show an image inline and offer a file for download.
fn media_kind(a: &Attachment) -> &'static str {
    let is_image = match a.content_type.as_deref() {
        Some(ct) => ct.trim().to_ascii_lowercase().starts_with("image/"),
        None => url::Url::parse(&a.url).is_ok_and(|u| {
            let path = u.path().to_ascii_lowercase();
            [".png", ".jpg", ".jpeg", ".gif", ".webp"]
                .iter()
                .any(|ext| path.ends_with(ext))
        }),
    };
    if is_image { "image" } else { "file" }
}

fn truncate(s: &str, max_chars: usize) -> &str {
    match s.char_indices().nth(max_chars) {
        Some((at, _)) => &s[..at],
        None => s,
    }
}

/// The id of the message Sunshine created: `messages[0].id` of the 201 answer.
pub fn created_id(body: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(body).ok()?;
    v.get("messages")?
        .get(0)?
        .get("id")?
        .as_str()
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// Classifies a non-2xx answer as the spec describes it: 429 (rate limit, to be retried
/// with backoff) and 5xx are transient, other 4xx (400 bad request, 404 unknown
/// conversation, 423 conversation full) permanent; the connector keeps 401/403 (our
/// credentials) transient and fails the service instead. The reason carries the
/// spec's `errors[0].code` and `title`.
pub fn classify(status: StatusCode, retry_after: Option<Duration>, body: &[u8]) -> DeliveryError {
    let first = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v.get("errors")?.get(0).cloned());
    let field = |name: &str| {
        first
            .as_ref()
            .and_then(|e| e.get(name)?.as_str())
            .map(|s| truncate(s.trim(), 300).to_owned())
            .filter(|s| !s.is_empty())
    };
    let reason = match (field("code"), field("title")) {
        (Some(code), Some(title)) => {
            format!(
                "Sunshine answered HTTP {}: {code}: {title}",
                status.as_u16()
            )
        }
        (Some(code), None) => format!("Sunshine answered HTTP {}: {code}", status.as_u16()),
        (None, Some(title)) => format!("Sunshine answered HTTP {}: {title}", status.as_u16()),
        (None, None) => format!("Sunshine answered HTTP {}", status.as_u16()),
    };
    DeliveryError::from_status(status, retry_after, reason)
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_core::{Author, AuthorType, Direction, MessageStatus};

    fn message(text: Option<&str>, attachments: Vec<Attachment>, name: Option<&str>) -> Message {
        Message {
            id: "1".into(),
            conversation_id: "1".into(),
            service_id: "s".into(),
            direction: Direction::Outbound,
            external_id: None,
            text: text.map(str::to_owned),
            attachments,
            author: Author {
                kind: AuthorType::Agent,
                name: name.map(str::to_owned),
            },
            status: MessageStatus::Pending,
            error: None,
            created_at: jiff::Timestamp::UNIX_EPOCH,
        }
    }

    fn att(url: &str, ct: Option<&str>, name: Option<&str>) -> Attachment {
        Attachment {
            url: url.into(),
            content_type: ct.map(str::to_owned),
            name: name.map(str::to_owned),
        }
    }

    #[test]
    fn url_encodes_ids_and_keeps_a_base_path() {
        let u = messages_url("https://api.smooch.io", "app 1", "c/2").unwrap();
        assert_eq!(
            u.as_str(),
            "https://api.smooch.io/v2/apps/app%201/conversations/c%2F2/messages"
        );
        let u = messages_url("http://127.0.0.1:9/prefix/", "a", "c").unwrap();
        assert_eq!(
            u.as_str(),
            "http://127.0.0.1:9/prefix/v2/apps/a/conversations/c/messages"
        );
    }

    #[test]
    fn text_only_is_one_text_message() {
        let bodies = message_bodies(&message(Some("Hi Mary"), vec![], None));
        assert_eq!(
            bodies,
            [
                json!({"author": {"type": "business"}, "content": {"type": "text", "text": "Hi Mary"}})
            ]
        );
        let bodies = message_bodies(&message(Some("Hi"), vec![], Some("Anna")));
        assert_eq!(
            bodies[0]["author"],
            json!({"type": "business", "displayName": "Anna"})
        );
    }

    #[test]
    fn one_message_per_attachment_text_on_the_first() {
        let long = "x".repeat(200);
        let bodies = message_bodies(&message(
            Some("Here you go"),
            vec![
                att("https://f.example/a.png", Some("image/png"), Some("a.png")),
                att(
                    "https://f.example/b.pdf",
                    Some("application/pdf"),
                    Some(&long),
                ),
                att("https://f.example/c.JPG", None, None),
            ],
            None,
        ));
        assert_eq!(
            bodies,
            [
                json!({"author": {"type": "business"}, "content": {"type": "image", "mediaUrl": "https://f.example/a.png", "altText": "a.png", "text": "Here you go"}}),
                json!({"author": {"type": "business"}, "content": {"type": "file", "mediaUrl": "https://f.example/b.pdf", "altText": "x".repeat(128)}}),
                json!({"author": {"type": "business"}, "content": {"type": "image", "mediaUrl": "https://f.example/c.JPG"}}),
            ]
        );
        assert!(message_bodies(&message(None, vec![], None)).is_empty());
    }

    #[test]
    fn reads_the_created_id() {
        let body = br#"{"messages":[{"id":"5f748c1a2b5315fc007e7977","received":"2020-09-30T13:46:02.733Z"}]}"#;
        assert_eq!(
            created_id(body).as_deref(),
            Some("5f748c1a2b5315fc007e7977")
        );
        assert_eq!(created_id(br#"{"messages":[]}"#), None);
        assert_eq!(created_id(b"<html>"), None);
    }

    #[test]
    fn classifies_like_the_spec() {
        let body = br#"{"errors":[{"code":"locked","title":"Message limit of 30000 per conversation reached."}]}"#;
        assert_eq!(
            classify(StatusCode::LOCKED, None, body),
            DeliveryError::permanent(
                "Sunshine answered HTTP 423: locked: Message limit of 30000 per conversation reached."
            )
        );
        let hint = Some(Duration::from_secs(3));
        assert_eq!(
            classify(StatusCode::TOO_MANY_REQUESTS, hint, b""),
            DeliveryError::Transient {
                reason: "Sunshine answered HTTP 429".into(),
                retry_after: hint
            }
        );
        assert!(matches!(
            classify(StatusCode::BAD_GATEWAY, None, b"<html>bad gateway</html>"),
            DeliveryError::Transient { .. }
        ));
        assert!(matches!(
            classify(StatusCode::UNAUTHORIZED, None, br#"{"errors":[{"code":"unauthorized"}]}"#),
            DeliveryError::Permanent { reason } if reason == "Sunshine answered HTTP 401: unauthorized"
        ));
    }
}
