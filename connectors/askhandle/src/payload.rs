//! AskHandle's objects as the API reference shows them, and the webhook envelope
//! `{data, webhook}`.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A message.
#[derive(Debug, Clone, Deserialize)]
pub struct Message {
    /// Its id.
    pub uuid: String,
    /// The text.
    #[serde(default)]
    pub body: Option<String>,
    /// The sender's name.
    #[serde(default)]
    pub nickname: Option<String>,
    /// True for the bot's and support's answers, false for the visitor's (ours).
    #[serde(default)]
    pub is_support_sender: bool,
    /// When it was sent (RFC 3339).
    #[serde(default)]
    pub sent_at: Option<Timestamp>,
    /// Its room, where AskHandle includes it (an object with `uuid`, or the uuid).
    #[serde(default)]
    pub room: Option<Value>,
}

impl Message {
    /// The uuid of its room, when the payload names it.
    pub fn room_uuid(&self) -> Option<String> {
        match self.room.as_ref()? {
            Value::String(s) => Some(s.clone()),
            Value::Object(o) => o.get("uuid")?.as_str().map(str::to_owned),
            _ => None,
        }
    }
}

/// A room.
#[derive(Debug, Clone, Deserialize)]
pub struct Room {
    /// Its id.
    pub uuid: String,
    /// Our label for it (`switchboard-<conversation id>`).
    #[serde(default)]
    pub label: Option<String>,
    /// Whether the bot answers in it.
    #[serde(default)]
    pub is_bot_use: Option<bool>,
    /// Its messages, where the answer includes them.
    #[serde(default)]
    pub messages: Vec<Message>,
}

/// A webhook subscription.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Webhook {
    /// Its id.
    #[serde(default, skip_serializing)]
    pub uuid: Option<String>,
    /// `message.added`, `chat.added`, …
    pub event: String,
    /// Where it posts.
    pub target: String,
}

/// A webhook delivery.
#[derive(Debug, Deserialize)]
pub struct Envelope {
    /// The subscribed object.
    pub data: Value,
    /// The subscription that fired.
    pub webhook: Webhook,
}

/// A list answer: a plain array or a page `{results: […]}`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum List<T> {
    /// `[…]`.
    Plain(Vec<T>),
    /// `{"results": […]}`.
    Page {
        /// The items.
        results: Vec<T>,
    },
}

impl<T> List<T> {
    /// The items.
    pub fn into_vec(self) -> Vec<T> {
        match self {
            List::Plain(v) | List::Page { results: v } => v,
        }
    }
}
