//! The desk's wire types: webhook events as Chatwoot sends them (a `message_created` is
//! the message's `webhook_data` with `event`; a `conversation_status_changed` the
//! conversation's), and the answers of the client and application APIs we read.

use serde::Deserialize;
use serde_json::Value;

/// An id the desk sends as a number or a string.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum Id {
    /// `123`.
    Number(u64),
    /// `"123"`.
    Text(String),
}

impl std::fmt::Display for Id {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Id::Number(n) => write!(f, "{n}"),
            Id::Text(s) => f.write_str(s),
        }
    }
}

/// Any webhook body: which event it is; the rest is read per event.
#[derive(Debug, Deserialize)]
pub struct Envelope {
    /// `message_created`, `conversation_status_changed`, …
    pub event: String,
}

/// `message_created`.
#[derive(Debug, Deserialize)]
pub struct MessageEvent {
    /// The desk's message id: the idempotency key of the reply it becomes.
    pub id: Id,
    /// Text (Markdown-ish); absent for attachment-only messages.
    #[serde(default)]
    pub content: Option<String>,
    /// `incoming` (the contact's: our own mirrored messages coming back), `outgoing`
    /// (an agent's or bot's), `activity`, `template`; some servers send 0-3.
    pub message_type: MessageType,
    /// An internal note, never sent to the contact.
    #[serde(default)]
    pub private: bool,
    /// Who wrote it.
    #[serde(default)]
    pub sender: Option<Sender>,
    /// Its conversation.
    pub conversation: ConversationRef,
    /// Files.
    #[serde(default)]
    pub attachments: Vec<AttachmentData>,
    /// What the creator attached to it: our own outgoing mirrors carry
    /// [`crate::mirror::MARKER`].
    #[serde(default)]
    pub content_attributes: Option<Value>,
}

/// A message's type, as a name or Chatwoot's enum number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageType {
    /// 0.
    Incoming,
    /// 1.
    Outgoing,
    /// 2.
    Activity,
    /// 3.
    Template,
}

impl<'de> Deserialize<'de> for MessageType {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        match (&v, v.as_u64()) {
            (_, Some(0)) => Ok(MessageType::Incoming),
            (_, Some(1)) => Ok(MessageType::Outgoing),
            (_, Some(2)) => Ok(MessageType::Activity),
            (_, Some(3)) => Ok(MessageType::Template),
            (Value::String(s), _) => match s.as_str() {
                "incoming" => Ok(MessageType::Incoming),
                "outgoing" => Ok(MessageType::Outgoing),
                "activity" => Ok(MessageType::Activity),
                "template" => Ok(MessageType::Template),
                other => Err(serde::de::Error::custom(format!(
                    "unknown message_type {other:?}"
                ))),
            },
            _ => Err(serde::de::Error::custom(format!(
                "message_type: expected a name or 0-3, got {v}"
            ))),
        }
    }
}

/// A message's author (`webhook_data` of a user, agent bot or contact).
#[derive(Debug, Default, Deserialize)]
pub struct Sender {
    /// Display name.
    #[serde(default)]
    pub name: Option<String>,
    /// `user` (an agent), `agent_bot`, `captain_assistant`, `contact`.
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
}

/// The conversation a message belongs to.
#[derive(Debug, Deserialize)]
pub struct ConversationRef {
    /// Its id as the APIs take it (the display id).
    pub id: Id,
}

/// An attachment of a message (`push_event_data` of an attachment).
#[derive(Debug, Deserialize)]
pub struct AttachmentData {
    /// Where the desk serves it.
    #[serde(default)]
    pub data_url: Option<String>,
    /// `image`, `audio`, `video`, `file`, …
    #[serde(default)]
    pub file_type: Option<String>,
}

/// `conversation_status_changed`: the conversation's `webhook_data`.
#[derive(Debug, Deserialize)]
pub struct StatusEvent {
    /// The conversation's id.
    pub id: Id,
    /// `open`, `resolved`, `pending`, `snoozed`.
    pub status: String,
}

/// The client API's contact (`POST …/contacts`).
#[derive(Debug, Deserialize)]
pub struct ContactAnswer {
    /// The contact's id in this inbox, which the client API's paths take.
    pub source_id: String,
}

/// A conversation as the client API answers it.
#[derive(Debug, Deserialize)]
pub struct ConversationAnswer {
    /// Its id.
    pub id: Id,
}

/// A message as the APIs answer it.
#[derive(Debug, Deserialize)]
pub struct MessageAnswer {
    /// Its id.
    pub id: Id,
    /// Text.
    #[serde(default)]
    pub content: Option<String>,
    /// Incoming (the contact's, posted by us), outgoing, …; absent in some answers.
    #[serde(default)]
    pub message_type: Option<MessageType>,
    /// Attributes; our outgoing mirrors carry the marker.
    #[serde(default)]
    pub content_attributes: Option<Value>,
}

/// A list answer: a bare array, or the application API's `{"payload": [...]}`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum List<T> {
    /// `[...]`.
    Bare(Vec<T>),
    /// `{"payload": [...]}`.
    Wrapped {
        /// The items.
        payload: Vec<T>,
    },
}

impl<T> List<T> {
    /// The items.
    pub fn into_vec(self) -> Vec<T> {
        match self {
            List::Bare(v) | List::Wrapped { payload: v } => v,
        }
    }
}
