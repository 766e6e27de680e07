//! The desk's webhook without I/O: who may post (a `X-Chatwoot-Signature` over
//! `"{timestamp}.{body}"`, at most five minutes old, or the secret path token), and what
//! a verified body asks for.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use switchboard_core::{
    Attachment, AuthorType, HookError, HookHead, Secret, SignatureShape, parse_json,
};

use crate::payload::{Envelope, MessageEvent, MessageType, StatusEvent};

/// The signature header.
pub const SIGNATURE: &str = "x-chatwoot-signature";
/// The unix-seconds timestamp it covers.
pub const TIMESTAMP: &str = "x-chatwoot-timestamp";
/// The delivery id, the same on every retry of one webhook.
pub const DELIVERY: &str = "x-chatwoot-delivery";
/// Oldest (and furthest ahead) a signed timestamp may be, in seconds.
pub const MAX_SKEW_SECS: i64 = 300;

const SHAPE: SignatureShape = SignatureShape::PrefixedHex {
    prefix: "sha256=",
    bytes: 32,
};

/// How this desk's replies are authenticated.
#[derive(Debug, Clone)]
pub enum Auth {
    /// `X-Chatwoot-Signature` with this secret; the hook is `/hooks/{id}`.
    Signed(Secret),
    /// The hook is `/hooks/{id}/{token}`.
    PathToken(Secret),
}

impl Auth {
    /// Checks the head: the signature headers' presence and shape, or the path token
    /// (in constant time). Any other sub-path of a signed hook is 404; of a path-token
    /// hook, 401 (a wrong token and an unknown path look the same).
    pub fn authorize(&self, head: &HookHead) -> Result<(), HookError> {
        match self {
            Auth::Signed(_) => {
                if !head.subpath.is_empty() {
                    return Err(HookError::NotFound);
                }
                head.require_signature(SIGNATURE, "X-Chatwoot-Signature", SHAPE)?;
                timestamp(head).map(|_| ())
            }
            Auth::PathToken(token) => {
                if token.matches(head.subpath.as_bytes()) {
                    Ok(())
                } else {
                    Err(HookError::Unauthorized(
                        "the hook URL's token is missing or wrong".into(),
                    ))
                }
            }
        }
    }

    /// Checks the whole request: [`Auth::authorize`], then for a signed hook the MAC
    /// over `"{timestamp}.{body}"` and the timestamp's age against `now` (unix s).
    pub fn verify(&self, head: &HookHead, body: &[u8], now: i64) -> Result<(), HookError> {
        self.authorize(head)?;
        let Auth::Signed(secret) = self else {
            return Ok(());
        };
        let ts = timestamp(head)?;
        let presented = head
            .header(SIGNATURE)
            .and_then(|v| v.trim().strip_prefix("sha256="))
            .and_then(hex)
            .ok_or_else(|| HookError::Unauthorized("X-Chatwoot-Signature is malformed".into()))?;
        let mut mac =
            Hmac::<Sha256>::new_from_slice(secret.expose().as_bytes()).expect("HMAC takes any key");
        mac.update(ts.as_bytes());
        mac.update(b".");
        mac.update(body);
        let expected = mac.finalize().into_bytes();
        if !bool::from(expected.as_slice().ct_eq(&presented)) {
            return Err(HookError::Unauthorized(
                "X-Chatwoot-Signature does not match".into(),
            ));
        }
        let at: i64 = ts.parse().map_err(|_| {
            HookError::Unauthorized("X-Chatwoot-Timestamp is not unix seconds".into())
        })?;
        if (now - at).abs() > MAX_SKEW_SECS {
            return Err(HookError::Unauthorized(
                "X-Chatwoot-Timestamp is more than 5 minutes away".into(),
            ));
        }
        Ok(())
    }
}

fn timestamp(head: &HookHead) -> Result<&str, HookError> {
    match head.header(TIMESTAMP).map(str::trim) {
        Some(t) if !t.is_empty() && t.len() <= 12 && t.bytes().all(|b| b.is_ascii_digit()) => Ok(t),
        Some(_) => Err(HookError::Unauthorized(
            "X-Chatwoot-Timestamp is not unix seconds".into(),
        )),
        None => Err(HookError::Unauthorized(
            "X-Chatwoot-Timestamp is missing".into(),
        )),
    }
}

fn hex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// What a verified webhook asks of us.
#[derive(Debug, PartialEq, Eq)]
pub enum Action {
    /// An agent's or bot's reply in desk conversation `conversation`.
    Reply {
        /// The desk's conversation id.
        conversation: String,
        /// The desk's message id.
        message_id: String,
        /// Text.
        text: Option<String>,
        /// Files by URL.
        attachments: Vec<Attachment>,
        /// Agent or bot.
        kind: AuthorType,
        /// The name the contact sees.
        name: Option<String>,
    },
    /// The desk resolved conversation `conversation`.
    Resolved {
        /// The desk's conversation id.
        conversation: String,
    },
    /// Nothing for the contact (an echo of ours, a private note, an activity, another
    /// event), and why.
    Ignore(&'static str),
}

/// Reads a verified body.
pub fn parse(body: &[u8], marker: &str) -> Result<Action, HookError> {
    let envelope: Envelope = parse_json(body, "the webhook")?;
    match envelope.event.as_str() {
        "message_created" => {
            let m: MessageEvent = parse_json(body, "message_created")?;
            Ok(message(m, marker))
        }
        "conversation_status_changed" => {
            let c: StatusEvent = parse_json(body, "conversation_status_changed")?;
            Ok(if c.status == "resolved" {
                Action::Resolved {
                    conversation: c.id.to_string(),
                }
            } else {
                Action::Ignore("a status other than resolved")
            })
        }
        _ => Ok(Action::Ignore("an event this desk does not act on")),
    }
}

fn message(m: MessageEvent, marker: &str) -> Action {
    if m.private {
        return Action::Ignore("a private note");
    }
    match m.message_type {
        MessageType::Outgoing => {}
        MessageType::Incoming => return Action::Ignore("an echo of a contact's message"),
        MessageType::Activity | MessageType::Template => {
            return Action::Ignore("an activity or template message");
        }
    }
    if m.content_attributes
        .as_ref()
        .is_some_and(|a| a.get(marker).is_some())
    {
        return Action::Ignore("an echo of a reply mirrored from switchboard");
    }
    let sender = m.sender.unwrap_or_default();
    let kind = match sender.kind.as_deref() {
        Some("agent_bot" | "captain_assistant") => AuthorType::Bot,
        _ => AuthorType::Agent,
    };
    let attachments = m
        .attachments
        .into_iter()
        .filter_map(|a| {
            let url = a.data_url?;
            let att = Attachment {
                url,
                content_type: a.file_type.filter(|t| t.contains('/')),
                name: None,
            };
            att.has_http_url().then_some(att)
        })
        .collect();
    let text = m.content.filter(|t| !t.trim().is_empty());
    Action::Reply {
        conversation: m.conversation.id.to_string(),
        message_id: m.id.to_string(),
        text,
        attachments,
        kind,
        name: sender.name,
    }
}
