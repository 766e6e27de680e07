//! The Business Messages API, all of this connector's message HTTP:
//! `conversations.messages.create` (`POST /v1/conversations/{conversationId}/messages`)
//! with the cached access token, the request bodies for one of our messages, their
//! `messageId`s, and how Google's error answers are read. (The token itself comes from
//! [`crate::auth`].)

use std::time::Duration;

use http::StatusCode;
use serde_json::{Value, json};
use sha1::{Digest, Sha1};
use switchboard_core::backoff::retry_after;
use switchboard_core::model::Attachment;
use switchboard_core::{AuthorType, CredentialWatch, DeliveryError, Message};

use crate::auth::{TokenError, TokenSource};

/// One Create Message request may take this long.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The agent's messages endpoint and the token source that signs in to it.
#[derive(Debug)]
pub struct Client {
    api_base: String,
    tokens: TokenSource,
}

impl Client {
    /// A client for `api_base`; fails, at load rather than on the first reply, when it
    /// cannot take the API's paths.
    pub fn new(api_base: &str, tokens: TokenSource) -> Result<Self, String> {
        messages_url(api_base, "x")?;
        Ok(Client {
            api_base: api_base.to_owned(),
            tokens,
        })
    }

    /// Fetches an access token: proves the key and warms the cache for the first reply.
    pub async fn check(&self, http: &reqwest::Client) -> Result<(), TokenError> {
        self.tokens.get(http).await.map(|_| ())
    }

    /// Creates one message in `conversation`, with one fresh token and a second try when
    /// Google refuses the cached one. Credentials refused twice, or by the token
    /// endpoint, are told to `credentials` and answered as a transient error, so the
    /// reply waits for them to be fixed.
    pub async fn post(
        &self,
        http: &reqwest::Client,
        credentials: &CredentialWatch,
        conversation: &str,
        part: &Part,
    ) -> Result<(), DeliveryError> {
        let url = messages_url(&self.api_base, conversation).map_err(DeliveryError::permanent)?;
        let mut retried = false;
        loop {
            let token = self.tokens.get(http).await.map_err(|e| match e {
                TokenError::Rejected(_) => credentials.refused(e.to_string(), None),
                TokenError::Transient(_) => DeliveryError::transient(e.to_string()),
            })?;
            let resp = http
                .post(url.clone())
                .bearer_auth(token.expose())
                .timeout(REQUEST_TIMEOUT)
                .json(&part.body)
                .send()
                .await
                .map_err(|e| DeliveryError::from_reqwest(&e))?;
            let status = resp.status();
            let hint = retry_after(resp.headers());
            let body = resp
                .bytes()
                .await
                .map_err(|e| DeliveryError::from_reqwest(&e))?;
            if status.is_success() {
                return Ok(());
            }
            // Only 401 is about our credentials: Google's 403 PERMISSION_DENIED names a
            // conversation we may no longer answer (unknown, or older than 30 days).
            if status == StatusCode::UNAUTHORIZED {
                if !retried {
                    // Revoked or expired early: one new token, one more try.
                    tracing::debug!("the access token was refused; fetching a new one");
                    self.tokens.invalidate(&token).await;
                    retried = true;
                    continue;
                }
                return Err(credentials.refused(
                    format!(
                        "a fresh access token was refused: {}",
                        reason(status, &body)
                    ),
                    hint,
                ));
            }
            if already_exists(status, &body) {
                tracing::info!(message_id = %part.message_id,
                    "Business Messages already has this messageId from an earlier attempt; not sending it again");
                return Ok(());
            }
            return Err(classify(status, hint, &body));
        }
    }
}

/// The UUID namespace of our message ids (a random UUID, fixed once).
const NAMESPACE: [u8; 16] = [
    0x5c, 0x1d, 0x8e, 0x3a, 0x94, 0x07, 0x4b, 0x61, 0xa2, 0x3f, 0x0e, 0x7b, 0xd9, 0x58, 0x21, 0xc4,
];

/// The API's limit on `text` and `fallback`.
const TEXT_MAX: usize = 3072;

/// One Business Messages message: its id and the request body that carries it.
#[derive(Debug, Clone, PartialEq)]
pub struct Part {
    /// The `messageId`: Google's receipts name it.
    pub message_id: String,
    /// The `Message` resource to create.
    pub body: Value,
}

/// The Create Message URL, with the conversation id percent-encoded as a path segment.
pub fn messages_url(api_base: &str, conversation_id: &str) -> Result<url::Url, String> {
    let mut url = url::Url::parse(api_base).map_err(|e| format!("api_base: {e}"))?;
    url.path_segments_mut()
        .map_err(|_| "api_base cannot take a path".to_owned())?
        .pop_if_empty()
        .extend(["v1", "conversations", conversation_id, "messages"]);
    Ok(url)
}

/// The messages that carry `msg`. A Business Messages message holds text *or* one
/// image, so the text comes first, with any file that is not a JPEG, PNG or GIF image
/// as a link below it, then one image message per image (with its URL as the
/// `fallback` for devices that cannot show it). `key` (the dispatcher's idempotency
/// key) and the message's creation time make each `messageId` the same on every retry
/// and distinct across databases, where row-based keys start over.
pub fn parts(msg: &Message, key: &str) -> Vec<Part> {
    let mut representative = json!({"representativeType": match msg.author.kind {
        AuthorType::Agent => "HUMAN",
        AuthorType::Bot | AuthorType::System | AuthorType::Contact => "BOT",
    }});
    if let Some(name) = msg.author.name.as_deref().filter(|n| !n.trim().is_empty()) {
        representative["displayName"] = json!(name);
    }
    let (images, files): (Vec<&Attachment>, Vec<&Attachment>) =
        msg.attachments.iter().partition(|a| is_image(a));
    let mut lines: Vec<String> = msg.text.iter().filter(|t| !t.is_empty()).cloned().collect();
    lines.extend(files.iter().map(|a| link(a)));

    let id = |part: usize| message_id(&format!("{key}/{}/{part}", msg.created_at.as_millisecond()));
    let mut out = Vec::new();
    if !lines.is_empty() {
        let message_id = id(out.len());
        out.push(Part {
            body: json!({"messageId": message_id, "representative": representative,
                         "text": lines.join("\n")}),
            message_id,
        });
    }
    for a in images {
        let mut content_info = json!({"fileUrl": a.url});
        if let Some(name) = a.name.as_deref().filter(|n| !n.trim().is_empty()) {
            content_info["altText"] = json!(name);
        }
        let message_id = id(out.len());
        out.push(Part {
            body: json!({"messageId": message_id, "representative": representative,
                         "image": {"contentInfo": content_info},
                         "fallback": truncate(&link(a), TEXT_MAX)}),
            message_id,
        });
    }
    out
}

/// A file as a line of text: `name: url`, or the URL alone.
fn link(a: &Attachment) -> String {
    match a.name.as_deref().filter(|n| !n.trim().is_empty()) {
        Some(name) => format!("{name}: {}", a.url),
        None => a.url.clone(),
    }
}

/// The image types Business Messages shows inline, by content type, else by the
/// URL's extension.
fn is_image(a: &Attachment) -> bool {
    const TYPES: [&str; 4] = ["image/jpeg", "image/jpg", "image/png", "image/gif"];
    match a.content_type.as_deref() {
        Some(ct) => {
            let ct = ct
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            TYPES.contains(&ct.as_str())
        }
        None => url::Url::parse(&a.url).is_ok_and(|u| {
            let path = u.path().to_ascii_lowercase();
            [".jpg", ".jpeg", ".png", ".gif"]
                .iter()
                .any(|ext| path.ends_with(ext))
        }),
    }
}

/// A name-based (version 5) UUID in our namespace: the same name, the same id.
pub fn message_id(name: &str) -> String {
    uuid_v5(&NAMESPACE, name.as_bytes())
}

/// RFC 9562 version 5: SHA-1 of namespace and name, with the version and variant bits.
fn uuid_v5(namespace: &[u8; 16], name: &[u8]) -> String {
    let digest = Sha1::new()
        .chain_update(namespace)
        .chain_update(name)
        .finalize();
    let mut b = [0u8; 16];
    b.copy_from_slice(&digest[..16]);
    b[6] = (b[6] & 0x0f) | 0x50;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// Whether an error answer says the `messageId` is taken (`409 ALREADY_EXISTS`): an
/// earlier attempt went through and only its answer was lost.
pub fn already_exists(status: StatusCode, body: &[u8]) -> bool {
    status == StatusCode::CONFLICT && google_error(body).1.as_deref() == Some("ALREADY_EXISTS")
}

/// Classifies an error answer. Google's errors are `{"error": {"code", "message",
/// "status"}}`; 429 and 5xx are retried, other 4xx (400 `INVALID_ARGUMENT`, 403
/// `PERMISSION_DENIED` for an unknown conversation or one older than 30 days, 404) are
/// not.
pub fn classify(status: StatusCode, retry_after: Option<Duration>, body: &[u8]) -> DeliveryError {
    DeliveryError::from_status(status, retry_after, reason(status, body))
}

/// `Business Messages answered HTTP 400: INVALID_ARGUMENT: …`.
pub fn reason(status: StatusCode, body: &[u8]) -> String {
    let (message, code) = google_error(body);
    let mut out = format!("Business Messages answered HTTP {}", status.as_u16());
    for part in [code, message].into_iter().flatten() {
        out.push_str(": ");
        out.push_str(&part);
    }
    out
}

/// `(message, status)` of Google's error body.
fn google_error(body: &[u8]) -> (Option<String>, Option<String>) {
    let v = serde_json::from_slice::<Value>(body).unwrap_or(Value::Null);
    let field = |name: &str| {
        v["error"][name]
            .as_str()
            .map(|s| truncate(s.trim(), 300).to_owned())
            .filter(|s| !s.is_empty())
    };
    (field("message"), field("status"))
}

fn truncate(s: &str, max_chars: usize) -> &str {
    match s.char_indices().nth(max_chars) {
        Some((at, _)) => &s[..at],
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_core::{Author, Direction, MessageStatus};

    fn message(
        kind: AuthorType,
        name: Option<&str>,
        text: Option<&str>,
        files: Vec<Attachment>,
    ) -> Message {
        Message {
            id: "7".into(),
            conversation_id: "3".into(),
            service_id: "g".into(),
            direction: Direction::Outbound,
            external_id: None,
            text: text.map(str::to_owned),
            attachments: files,
            author: Author {
                kind,
                name: name.map(str::to_owned),
            },
            status: MessageStatus::Pending,
            error: None,
            created_at: jiff::Timestamp::from_millisecond(1_767_225_600_123).unwrap(),
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
    fn uuid_v5_matches_the_rfc_construction() {
        // The DNS namespace and "python.org": the example of Python's uuid module.
        let dns = [
            0x6b, 0xa7, 0xb8, 0x10, 0x9d, 0xad, 0x11, 0xd1, 0x80, 0xb4, 0x00, 0xc0, 0x4f, 0xd4,
            0x30, 0xc8,
        ];
        assert_eq!(
            uuid_v5(&dns, b"python.org"),
            "886313e1-3b8a-5372-9b90-0c9aee199e5d"
        );
    }

    #[test]
    fn a_text_reply_is_one_message_with_a_stable_id() {
        let m = message(AuthorType::Agent, Some("Anna"), Some("Hi Mary"), vec![]);
        let p = parts(&m, "gbm-7");
        assert_eq!(p.len(), 1);
        assert_eq!(
            p[0].body,
            json!({"messageId": p[0].message_id,
                   "representative": {"representativeType": "HUMAN", "displayName": "Anna"},
                   "text": "Hi Mary"})
        );
        assert_eq!(parts(&m, "gbm-7"), p, "a retry sends the same messageId");
        assert_ne!(parts(&m, "gbm-8")[0].message_id, p[0].message_id);
        let mut elsewhere = m.clone();
        elsewhere.created_at = jiff::Timestamp::from_millisecond(1_767_225_600_124).unwrap();
        assert_ne!(parts(&elsewhere, "gbm-7")[0].message_id, p[0].message_id);

        for kind in [AuthorType::Bot, AuthorType::System] {
            let p = parts(&message(kind, None, Some("x"), vec![]), "k");
            assert_eq!(
                p[0].body["representative"],
                json!({"representativeType": "BOT"})
            );
        }
    }

    #[test]
    fn images_are_image_messages_and_other_files_links() {
        let m = message(
            AuthorType::Bot,
            None,
            Some("Your documents"),
            vec![
                att(
                    "https://f.example/scan.png",
                    Some("image/png"),
                    Some("scan.png"),
                ),
                att(
                    "https://f.example/terms.pdf",
                    Some("application/pdf"),
                    Some("terms.pdf"),
                ),
                att("https://f.example/photo.JPG", None, None),
                att("https://f.example/anim.webp", Some("image/webp"), None),
            ],
        );
        let p = parts(&m, "k");
        let bodies: Vec<Value> = p
            .iter()
            .map(|p| {
                let mut b = p.body.clone();
                b.as_object_mut().unwrap().remove("messageId");
                b
            })
            .collect();
        let bot = json!({"representativeType": "BOT"});
        assert_eq!(
            bodies,
            [
                json!({"representative": bot, "text": "Your documents\nterms.pdf: https://f.example/terms.pdf\nhttps://f.example/anim.webp"}),
                json!({"representative": bot, "image": {"contentInfo": {"fileUrl": "https://f.example/scan.png", "altText": "scan.png"}},
                       "fallback": "scan.png: https://f.example/scan.png"}),
                json!({"representative": bot, "image": {"contentInfo": {"fileUrl": "https://f.example/photo.JPG"}},
                       "fallback": "https://f.example/photo.JPG"}),
            ]
        );
        let ids: std::collections::HashSet<&str> =
            p.iter().map(|p| p.message_id.as_str()).collect();
        assert_eq!(ids.len(), 3);

        let only_image = parts(
            &message(
                AuthorType::Agent,
                None,
                None,
                vec![att("https://f.example/a.gif", None, None)],
            ),
            "k",
        );
        assert_eq!(only_image.len(), 1);
        assert!(only_image[0].body.get("image").is_some());
        assert!(parts(&message(AuthorType::Agent, None, Some(""), vec![]), "k").is_empty());
    }

    #[test]
    fn urls_encode_the_conversation() {
        assert_eq!(
            messages_url("https://businessmessages.googleapis.com", "a/b c")
                .unwrap()
                .as_str(),
            "https://businessmessages.googleapis.com/v1/conversations/a%2Fb%20c/messages"
        );
        assert_eq!(
            messages_url("http://127.0.0.1:9/base/", "c")
                .unwrap()
                .as_str(),
            "http://127.0.0.1:9/base/v1/conversations/c/messages"
        );
    }

    #[test]
    fn errors_read_like_google_writes_them() {
        let body = br#"{"error": {"code": 400, "message": "Invalid argument: text exceeds 3072 characters", "status": "INVALID_ARGUMENT"}}"#;
        assert_eq!(
            classify(StatusCode::BAD_REQUEST, None, body),
            DeliveryError::permanent(
                "Business Messages answered HTTP 400: INVALID_ARGUMENT: Invalid argument: text exceeds 3072 characters"
            )
        );
        assert!(matches!(
            classify(StatusCode::SERVICE_UNAVAILABLE, None, b"<html>"),
            DeliveryError::Transient { reason, .. } if reason == "Business Messages answered HTTP 503"
        ));
        let taken = br#"{"error": {"code": 409, "message": "Message already exists", "status": "ALREADY_EXISTS"}}"#;
        assert!(already_exists(StatusCode::CONFLICT, taken));
        let aborted = br#"{"error": {"code": 409, "status": "ABORTED"}}"#;
        assert!(!already_exists(StatusCode::CONFLICT, aborted));
    }
}
