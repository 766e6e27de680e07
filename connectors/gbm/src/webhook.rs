//! What Google POSTs to the webhook: the `X-Goog-Signature` check, the webhook-setup
//! request, and the `UserMessage` payloads (a message, a suggestion response, a user
//! status, receipts) turned into what the core stores.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha512;
use switchboard_core::model::Attachment;
use switchboard_core::{ContactInfo, HookError, InboundMessage, MessageStatus, Receipt, Secret};

/// Google's signature header: base64 HMAC-SHA512 of the raw body, keyed with the
/// partner's client token.
pub const SIGNATURE_HEADER: &str = "x-goog-signature";

/// The most bytes read of a request without `X-Goog-Signature`: Google's webhook-setup
/// request (`{"clientToken": …, "secret": …}`) is far smaller, and nothing else may come
/// unsigned.
pub const HANDSHAKE_MAX_BODY: usize = 4096;

/// Where Google serves the images users send; their URL arrives as the message text.
const IMAGE_HOST: &str = "storage.googleapis.com";

/// Whether `presented` signs `body`, compared in constant time.
pub fn signature_matches(client_token: &Secret, body: &[u8], presented: &str) -> bool {
    let Ok(presented) = STANDARD.decode(presented.trim()) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha512>::new_from_slice(client_token.expose().as_bytes()) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(&presented).is_ok()
}

/// Google's webhook-setup request: it expects `secret` back as plain text once our
/// side has checked `clientToken`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Handshake {
    /// The partner's client token, as Google has it.
    pub client_token: String,
    /// What to echo.
    pub secret: String,
}

/// The webhook-setup request in `body`, if that is what it is: exactly
/// `{clientToken, secret}`, nothing of a user message.
pub fn handshake(body: &[u8]) -> Option<Handshake> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    let o = v.as_object()?;
    if o.len() != 2 {
        return None;
    }
    serde_json::from_value(v).ok()
}

/// What one signed request asks of us.
#[derive(Debug, PartialEq)]
pub enum Parsed {
    /// A message from the user (text, an image, or a tapped suggestion).
    Message(InboundMessage),
    /// The user started or stopped typing.
    Typing {
        /// The contact (its conversation id).
        contact: String,
        /// Started (true) or stopped.
        typing: bool,
    },
    /// Delivery and read receipts for our messages (`external_id`: the `messageId` we
    /// sent it with).
    Receipts(Vec<Receipt>),
    /// A payload the core has no place for; the name says which.
    Ignored(&'static str),
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UserMessage {
    #[serde(default)]
    conversation_id: Option<String>,
    #[serde(default)]
    request_id: Option<String>,
    #[serde(default)]
    context: Option<Context>,
    #[serde(default)]
    message: Option<Message>,
    #[serde(default)]
    suggestion_response: Option<SuggestionResponse>,
    #[serde(default)]
    user_status: Option<UserStatus>,
    #[serde(default)]
    receipts: Option<Receipts>,
    #[serde(default)]
    survey_response: Option<serde_json::Value>,
    #[serde(default)]
    authentication_response: Option<serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Context {
    #[serde(default)]
    user_info: Option<UserInfo>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UserInfo {
    #[serde(default)]
    display_name: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Message {
    #[serde(default)]
    message_id: Option<String>,
    #[serde(default)]
    text: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SuggestionResponse {
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    postback_data: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UserStatus {
    #[serde(default)]
    is_typing: Option<bool>,
    #[serde(default)]
    requested_live_agent: Option<bool>,
}

#[derive(Deserialize)]
struct Receipts {
    #[serde(default)]
    receipts: Vec<ReceiptBody>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReceiptBody {
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    receipt_type: Option<String>,
}

/// Parses a signed `UserMessage`. Errors name the missing field; nothing is stored for
/// a body that fails here.
pub fn parse(body: &[u8]) -> Result<Parsed, HookError> {
    let m: UserMessage = switchboard_core::parse_json(body, "a Business Messages UserMessage")?;
    let conversation = || required(m.conversation_id.clone(), "conversationId");
    let contact = |conversation: &str| ContactInfo {
        // Business Messages names no user id: a conversation is one user with one
        // agent, so its id is the contact's key too.
        external_id: conversation.to_owned(),
        name: non_empty(
            m.context
                .as_ref()
                .and_then(|c| c.user_info.as_ref())
                .and_then(|u| u.display_name.clone()),
        ),
        ..ContactInfo::default()
    };

    if let Some(msg) = &m.message {
        let conversation = conversation()?;
        let id = non_empty(msg.message_id.clone())
            .or_else(|| non_empty(m.request_id.clone()))
            .ok_or_else(|| missing("message.messageId"))?;
        let text = non_empty(msg.text.clone()).ok_or_else(|| missing("message.text"))?;
        let (text, attachments) = match image_url(&text) {
            Some(url) => (
                None,
                vec![Attachment {
                    url: url.to_owned(),
                    content_type: None,
                    name: None,
                }],
            ),
            None => (Some(text), vec![]),
        };
        return Ok(Parsed::Message(InboundMessage {
            external_id: id,
            contact: contact(&conversation),
            conversation_external_id: Some(conversation),
            text,
            attachments,
        }));
    }
    if let Some(s) = &m.suggestion_response {
        let conversation = conversation()?;
        // A suggestion response points at our message, not at a message of its own:
        // the request id is the only id it has.
        let id = required(m.request_id.clone(), "requestId")?;
        let text = non_empty(s.text.clone())
            .or_else(|| non_empty(s.postback_data.clone()))
            .ok_or_else(|| missing("suggestionResponse.text"))?;
        return Ok(Parsed::Message(InboundMessage {
            external_id: id,
            contact: contact(&conversation),
            conversation_external_id: Some(conversation),
            text: Some(text),
            attachments: vec![],
        }));
    }
    if let Some(status) = &m.user_status {
        if let Some(typing) = status.is_typing {
            return Ok(Parsed::Typing {
                contact: conversation()?,
                typing,
            });
        }
        if status.requested_live_agent == Some(true) {
            return Ok(Parsed::Ignored("live agent request"));
        }
        return Ok(Parsed::Ignored("user status"));
    }
    if let Some(r) = &m.receipts {
        let receipts = r
            .receipts
            .iter()
            .filter_map(|r| {
                let status = match r.receipt_type.as_deref()? {
                    "DELIVERED" => MessageStatus::Delivered,
                    "READ" => MessageStatus::Read,
                    _ => return None,
                };
                let name = r.message.as_deref()?;
                let id = name.rsplit_once("/messages/").map_or(name, |(_, id)| id);
                (!id.is_empty()).then(|| Receipt {
                    external_id: id.to_owned(),
                    status,
                    error: None,
                })
            })
            .collect();
        return Ok(Parsed::Receipts(receipts));
    }
    if m.survey_response.is_some() {
        return Ok(Parsed::Ignored("survey response"));
    }
    if m.authentication_response.is_some() {
        return Ok(Parsed::Ignored("authentication response"));
    }
    Ok(Parsed::Ignored("payload of an unknown kind"))
}

/// The image URL when the whole text is one: users' images arrive as a link to
/// Google's storage in `message.text`. Any other text, links included, stays text.
fn image_url(text: &str) -> Option<&str> {
    let t = text.trim();
    if t.contains(char::is_whitespace) {
        return None;
    }
    let u = url::Url::parse(t).ok()?;
    (u.scheme() == "https" && u.host_str() == Some(IMAGE_HOST)).then_some(t)
}

fn required(value: Option<String>, field: &str) -> Result<String, HookError> {
    non_empty(value).ok_or_else(|| missing(field))
}

fn missing(field: &str) -> HookError {
    HookError::Unprocessable(format!("{field} is missing"))
}

/// The value unless it is blank; kept as sent (a user's whitespace is theirs).
fn non_empty(s: Option<String>) -> Option<String> {
    s.filter(|s| !s.trim().is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const TEXT: &[u8] = include_bytes!("../fixtures/text-message.json");
    const IMAGE: &[u8] = include_bytes!("../fixtures/image-message.json");
    const SUGGESTION: &[u8] = include_bytes!("../fixtures/suggestion-message.json");

    fn message(body: &[u8]) -> InboundMessage {
        match parse(body).unwrap() {
            Parsed::Message(m) => m,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_text_sample() {
        let m = message(TEXT);
        assert_eq!(m.external_id, "MESSAGE_ID");
        assert_eq!(
            m.conversation_external_id.as_deref(),
            Some("CONVERSATION_ID")
        );
        assert_eq!(m.contact.external_id, "CONVERSATION_ID");
        assert_eq!(m.contact.name.as_deref(), Some("USER_NAME"));
        assert_eq!(m.text.as_deref(), Some("MESSAGE_TEXT"));
        assert!(m.attachments.is_empty());
    }

    #[test]
    fn the_image_sample_is_an_attachment() {
        let m = message(IMAGE);
        assert_eq!(m.text, None);
        let url = &m.attachments[0].url;
        assert!(
            url.starts_with("https://storage.googleapis.com/business-messages-us/936640919331/")
                && url.contains("?x-goog-algorithm=GOOG4-RSA-SHA256&x-goog-credential="),
            "{url}"
        );
        // A link the user typed is text, and so is a sentence around a storage link.
        let mut v: serde_json::Value = serde_json::from_slice(IMAGE).unwrap();
        v["message"]["text"] = json!("https://example.com/a.png");
        assert!(message(v.to_string().as_bytes()).attachments.is_empty());
        v["message"]["text"] = json!("see https://storage.googleapis.com/x/y");
        assert!(message(v.to_string().as_bytes()).attachments.is_empty());
    }

    #[test]
    fn the_suggestion_sample_is_its_text() {
        let m = message(SUGGESTION);
        assert_eq!(m.external_id, "REQUEST_ID");
        assert_eq!(m.text.as_deref(), Some("SUGGESTION_TEXT"));
        assert_eq!(
            m.conversation_external_id.as_deref(),
            Some("CONVERSATION_ID")
        );
    }

    #[test]
    fn status_receipts_and_the_rest() {
        let typing = json!({"agent": "brands/b/agents/a", "conversationId": "c1", "requestId": "r",
            "userStatus": {"isTyping": true, "createTime": "2021-05-04T10:00:00Z"}, "sendTime": "x"});
        assert_eq!(
            parse(typing.to_string().as_bytes()).unwrap(),
            Parsed::Typing {
                contact: "c1".into(),
                typing: true
            }
        );
        let live = json!({"conversationId": "c1", "userStatus": {"requestedLiveAgent": true}});
        assert_eq!(
            parse(live.to_string().as_bytes()).unwrap(),
            Parsed::Ignored("live agent request")
        );
        let receipts = json!({"agent": "brands/b/agents/a", "conversationId": "c1", "sendTime": "x",
            "receipts": {"receipts": [
                {"message": "conversations/c1/messages/m-1", "receiptType": "DELIVERED"},
                {"message": "conversations/c1/messages/m-2", "receiptType": "READ"},
                {"message": "conversations/c1/messages/m-3", "receiptType": "RECEIPT_TYPE_UNSPECIFIED"}],
              "createTime": "x"}});
        assert_eq!(
            parse(receipts.to_string().as_bytes()).unwrap(),
            Parsed::Receipts(vec![
                Receipt {
                    external_id: "m-1".into(),
                    status: MessageStatus::Delivered,
                    error: None,
                },
                Receipt {
                    external_id: "m-2".into(),
                    status: MessageStatus::Read,
                    error: None,
                },
            ])
        );
        let survey = json!({"conversationId": "c1", "surveyResponse": {"survey": "s"}});
        assert_eq!(
            parse(survey.to_string().as_bytes()).unwrap(),
            Parsed::Ignored("survey response")
        );
    }

    #[test]
    fn bad_bodies_are_named() {
        assert!(matches!(parse(b"{not json"), Err(HookError::BadRequest(_))));
        assert!(matches!(parse(b"[1]"), Err(HookError::Unprocessable(_))));
        let mut v: serde_json::Value = serde_json::from_slice(TEXT).unwrap();
        v.as_object_mut().unwrap().remove("conversationId");
        assert_eq!(
            parse(v.to_string().as_bytes()).unwrap_err(),
            HookError::Unprocessable("conversationId is missing".into())
        );
        let mut v: serde_json::Value = serde_json::from_slice(TEXT).unwrap();
        v["message"]["text"] = json!("  ");
        assert_eq!(
            parse(v.to_string().as_bytes()).unwrap_err(),
            HookError::Unprocessable("message.text is missing".into())
        );
    }

    #[test]
    fn handshakes_are_recognised_and_messages_are_not() {
        let h = handshake(br#"{"clientToken": "ct", "secret": "s3"}"#).unwrap();
        assert_eq!((h.client_token.as_str(), h.secret.as_str()), ("ct", "s3"));
        assert!(handshake(TEXT).is_none());
        assert!(handshake(br#"{"clientToken": "ct", "secret": "s3", "message": {}}"#).is_none());
        assert!(handshake(br#"{"clientToken": "ct"}"#).is_none());
    }

    #[test]
    fn signatures() {
        let key = Secret::new("client-token");
        // Computed with `openssl dgst -sha512 -hmac client-token -binary | base64`.
        let sig = "n338yt211ancmj7DO3F0iP3MSOT9752u2dJHxSTo5YqzvB2JoyewNoZReaZJ0fxnr6x3j7kMihtme9Ge0goyZg==";
        assert!(signature_matches(&key, b"{}", sig));
        assert!(!signature_matches(&key, b"{} ", sig));
        assert!(!signature_matches(&Secret::new("client-tokeN"), b"{}", sig));
        assert!(!signature_matches(&key, b"{}", "not base64!"));
        assert!(!signature_matches(&key, b"{}", ""));
    }
}
