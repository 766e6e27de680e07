//! Sunshine webhook bodies → inbound messages and delivery receipts. Two shapes arrive
//! at the same URL, depending on the webhook's version: v2 (`{app, webhook, events[]}`)
//! and v1.1 (`{trigger, app, messages[], appUser, conversation, version}`).
//!
//! Ids line up across the two: a v1.1 `appUser._id` is the v2 `user.id` and a v1.1
//! `conversation._id` the v2 `conversation.id`, so a contact and its conversation are
//! the same whichever version a webhook was created with.

use serde::Deserialize;
use switchboard_core::model::Attachment;
use switchboard_core::{ContactInfo, HookError, InboundMessage, MessageStatus, Receipt};

/// What one webhook request asks of us.
#[derive(Debug, Default, PartialEq)]
pub struct Parsed {
    /// Messages from users, in body order: ingested together, in one transaction.
    pub messages: Vec<InboundMessage>,
    /// Delivery events for our own messages (`external_id`: Sunshine's message id, the
    /// one our delivery recorded).
    pub receipts: Vec<Receipt>,
    /// Business messages (our own replies echoed back, or another integration's) and
    /// events of types we do not handle.
    pub skipped: usize,
}

/// Parses a webhook body of either version. Errors name the offending field; nothing
/// is stored for a body that fails here.
pub fn parse(body: &[u8]) -> Result<Parsed, HookError> {
    let value: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| HookError::BadRequest(format!("the body is not JSON: {e}")))?;
    if value.get("events").is_some() {
        let body: V2Body = serde_json::from_value(value)
            .map_err(|e| HookError::Unprocessable(format!("not a Sunshine v2 webhook: {e}")))?;
        parse_v2(body)
    } else if value.get("trigger").is_some() {
        let body: V1Body = serde_json::from_value(value)
            .map_err(|e| HookError::Unprocessable(format!("not a Sunshine v1.1 webhook: {e}")))?;
        parse_v1(body)
    } else {
        Err(HookError::Unprocessable(
            "expected a Sunshine webhook: a v2 body with \"events\" or a v1.1 body with \"trigger\""
                .into(),
        ))
    }
}

/// How a delivery event type maps onto our statuses. `…:channel` means the channel
/// (Messenger, Twilio, …) took the message, which is what `sent` already says; only
/// `…:user` reports it reached the person.
fn delivery_status(kind: &str) -> Option<MessageStatus> {
    Some(match kind {
        "channel" => MessageStatus::Sent,
        "user" => MessageStatus::Delivered,
        "failure" => MessageStatus::Failed,
        _ => return None,
    })
}

// ---- v2 ----

#[derive(Deserialize)]
struct V2Body {
    events: Vec<V2Event>,
}

#[derive(Deserialize)]
struct V2Event {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    payload: serde_json::Value,
}

#[derive(Deserialize)]
struct V2MessagePayload {
    #[serde(default)]
    conversation: Option<IdV2>,
    message: V2Message,
}

#[derive(Deserialize)]
struct IdV2 {
    #[serde(default)]
    id: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct V2Message {
    #[serde(default)]
    id: Option<String>,
    author: V2Author,
    #[serde(default)]
    content: Content,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct V2Author {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    user_id: Option<String>,
    #[serde(default)]
    display_name: Option<String>,
    #[serde(default)]
    user: Option<V2User>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct V2User {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    profile: Option<Profile>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct Profile {
    #[serde(default)]
    given_name: Option<String>,
    #[serde(default)]
    surname: Option<String>,
    #[serde(default)]
    email: Option<String>,
}

#[derive(Deserialize)]
struct V2DeliveryPayload {
    message: IdV2,
    #[serde(default)]
    error: Option<DeliveryErrorBody>,
}

#[derive(Deserialize)]
struct DeliveryErrorBody {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

fn parse_v2(body: V2Body) -> Result<Parsed, HookError> {
    let mut out = Parsed::default();
    for (i, event) in body.events.into_iter().enumerate() {
        let at = format!("events[{i}].payload");
        if event.kind == "conversation:message" {
            let p: V2MessagePayload = from_payload(event.payload, &at)?;
            let m = p.message;
            if m.author.kind != "user" {
                out.skipped += 1;
                continue;
            }
            let id = required(m.id, &at, "message.id")?;
            let user = m.author.user.unwrap_or(V2User {
                id: None,
                profile: None,
            });
            let contact_id = required(m.author.user_id.or(user.id), &at, "message.author.userId")?;
            let conversation = required(p.conversation.and_then(|c| c.id), &at, "conversation.id")?;
            let profile = user.profile.unwrap_or_default();
            let name = non_empty(m.author.display_name)
                .or_else(|| full_name(profile.given_name, profile.surname));
            let (text, attachments) = m.content.into_text_and_attachments();
            out.messages.push(InboundMessage {
                external_id: id,
                contact: ContactInfo {
                    external_id: contact_id,
                    name,
                    email: non_empty(profile.email),
                    phone: None,
                },
                conversation_external_id: Some(conversation),
                text,
                attachments,
            });
        } else if let Some(kind) = event.kind.strip_prefix("conversation:message:delivery:") {
            let Some(status) = delivery_status(kind) else {
                out.skipped += 1;
                continue;
            };
            let p: V2DeliveryPayload = from_payload(event.payload, &at)?;
            out.receipts.push(Receipt {
                external_id: required(p.message.id, &at, "message.id")?,
                status,
                error: (status == MessageStatus::Failed).then(|| error_text(p.error)),
            });
        } else {
            out.skipped += 1;
        }
    }
    Ok(out)
}

// ---- v1.1 ----

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct V1Body {
    trigger: String,
    #[serde(default)]
    messages: Vec<V1Message>,
    #[serde(default)]
    app_user: Option<V1AppUser>,
    #[serde(default)]
    conversation: Option<IdV1>,
    /// The message a `message:delivery:*` trigger is about.
    #[serde(default)]
    message: Option<IdV1>,
    #[serde(default)]
    error: Option<DeliveryErrorBody>,
}

#[derive(Deserialize)]
struct IdV1 {
    #[serde(rename = "_id", default)]
    id: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct V1Message {
    #[serde(rename = "_id", default)]
    id: Option<String>,
    #[serde(default)]
    role: Option<String>,
    #[serde(default)]
    author_id: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(flatten)]
    content: Content,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct V1AppUser {
    #[serde(rename = "_id", default)]
    id: Option<String>,
    #[serde(default)]
    given_name: Option<String>,
    #[serde(default)]
    surname: Option<String>,
    #[serde(default)]
    email: Option<String>,
}

fn parse_v1(body: V1Body) -> Result<Parsed, HookError> {
    let mut out = Parsed::default();
    if body.trigger == "message:appUser" {
        let app_user = body.app_user;
        let conversation = body.conversation.and_then(|c| c.id);
        for (i, m) in body.messages.into_iter().enumerate() {
            let at = format!("messages[{i}]");
            if m.role.as_deref() != Some("appUser") {
                out.skipped += 1;
                continue;
            }
            let id = required(m.id, &at, "_id")?;
            let contact_id = required(
                app_user.as_ref().and_then(|u| u.id.clone()).or(m.author_id),
                "appUser",
                "_id",
            )?;
            let name = non_empty(m.name).or_else(|| {
                let u = app_user.as_ref()?;
                full_name(u.given_name.clone(), u.surname.clone())
            });
            let (text, attachments) = m.content.into_text_and_attachments();
            out.messages.push(InboundMessage {
                external_id: id,
                contact: ContactInfo {
                    external_id: contact_id,
                    name,
                    email: non_empty(app_user.as_ref().and_then(|u| u.email.clone())),
                    phone: None,
                },
                // Without it the contact's open conversation is used; replies then fail
                // with a clear error, since the v2 API addresses conversations by id.
                conversation_external_id: conversation.clone(),
                text,
                attachments,
            });
        }
    } else if let Some(kind) = body.trigger.strip_prefix("message:delivery:") {
        match delivery_status(kind) {
            Some(status) => out.receipts.push(Receipt {
                external_id: required(body.message.and_then(|m| m.id), "message", "_id")?,
                status,
                error: (status == MessageStatus::Failed).then(|| error_text(body.error)),
            }),
            None => out.skipped += 1,
        }
    } else {
        out.skipped += 1;
    }
    Ok(out)
}

// ---- content, shared by both versions (v1.1 keeps the same fields on the message) ----

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct Content {
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    media_url: Option<String>,
    #[serde(default)]
    media_type: Option<String>,
    #[serde(default)]
    alt_text: Option<String>,
    #[serde(default)]
    coordinates: Option<Coordinates>,
    #[serde(default)]
    location: Option<Place>,
}

#[derive(Deserialize)]
struct Coordinates {
    lat: f64,
    long: f64,
}

#[derive(Deserialize)]
struct Place {
    #[serde(default)]
    address: Option<String>,
    #[serde(default)]
    name: Option<String>,
}

impl Content {
    /// Text and files by URL. Every message gets one or the other: a type we cannot
    /// show (carousel, form, …) without a text fallback becomes a short note rather
    /// than being dropped, so an agent still sees that the user sent something.
    fn into_text_and_attachments(self) -> (Option<String>, Vec<Attachment>) {
        let kind = self.kind.unwrap_or_else(|| "text".into());
        let mut attachments = Vec::new();
        let mut text = non_empty(self.text);
        if let Some(url) = non_empty(self.media_url).filter(|u| is_http_url(u)) {
            // v1.1 sets the text of a media message to its URL: not worth repeating.
            if text.as_deref() == Some(url.as_str()) {
                text = None;
            }
            attachments.push(Attachment {
                url,
                content_type: non_empty(self.media_type),
                name: non_empty(self.alt_text),
            });
        }
        if kind == "location"
            && text.is_none()
            && let Some(c) = self.coordinates
        {
            let place = self
                .location
                .map(|p| {
                    [p.name, p.address]
                        .into_iter()
                        .flatten()
                        .filter(|s| !s.trim().is_empty())
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .filter(|s| !s.is_empty());
            text = Some(match place {
                Some(p) => format!("Location: {p} ({}, {})", c.lat, c.long),
                None => format!("Location: {}, {}", c.lat, c.long),
            });
        }
        if text.is_none() && attachments.is_empty() {
            text = Some(format!("[a {kind} message that switchboard cannot show]"));
        }
        (text, attachments)
    }
}

// ---- helpers ----

fn from_payload<T: serde::de::DeserializeOwned>(
    payload: serde_json::Value,
    at: &str,
) -> Result<T, HookError> {
    serde_json::from_value(payload).map_err(|e| HookError::Unprocessable(format!("{at}: {e}")))
}

fn required(value: Option<String>, at: &str, field: &str) -> Result<String, HookError> {
    non_empty(value).ok_or_else(|| HookError::Unprocessable(format!("{at}.{field} is missing")))
}

/// The value unless it is blank; kept as sent (a user's whitespace is theirs).
fn non_empty(s: Option<String>) -> Option<String> {
    s.filter(|s| !s.trim().is_empty())
}

fn full_name(given: Option<String>, surname: Option<String>) -> Option<String> {
    let parts: Vec<String> = [given, surname].into_iter().flatten().collect();
    non_empty(Some(parts.join(" ")))
}

fn is_http_url(s: &str) -> bool {
    url::Url::parse(s).is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.has_host())
}

fn error_text(e: Option<DeliveryErrorBody>) -> String {
    let (code, message) = e
        .map(|e| (non_empty(e.code), non_empty(e.message)))
        .unwrap_or_default();
    match (code, message) {
        (Some(c), Some(m)) => format!("delivery failed: {c}: {m}"),
        (Some(c), None) => format!("delivery failed: {c}"),
        (None, Some(m)) => format!("delivery failed: {m}"),
        (None, None) => "delivery failed".into(),
    }
}
