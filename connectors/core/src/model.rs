//! The objects switchboard shows its clients (`/v1`, the event stream, webhooks), shared
//! with the connectors that read them.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// A file attached to a message, always by URL: switchboard never stores media itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Attachment {
    /// Where the provider (or the remote system) serves the file: an http(s) URL.
    #[cfg_attr(feature = "openapi", schema(pattern = "^[Hh][Tt][Tt][Pp][Ss]?://"))]
    pub url: String,
    /// MIME type when the provider told us.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    /// File name when the provider told us.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

impl Attachment {
    /// Whether `url` is an http(s) URL as written: it starts with `http://` or `https://`
    /// (any case) and parses. A URL parser alone would also take `" http://x"` or
    /// `"ht\ttp://x"` (it strips spaces and removes tabs), which are not what is stored.
    pub fn has_http_url(&self) -> bool {
        let u = self.url.as_str();
        let starts = |p: &str| u.get(..p.len()).is_some_and(|h| h.eq_ignore_ascii_case(p));
        (starts("http://") || starts("https://"))
            && url::Url::parse(u).is_ok_and(|p| matches!(p.scheme(), "http" | "https"))
    }
}

/// Who wrote a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum AuthorType {
    /// The contact on the provider's side.
    Contact,
    /// A human agent answering through switchboard.
    Agent,
    /// A bot answering through switchboard.
    Bot,
    /// switchboard itself (welcome and out-of-hours messages).
    System,
}

impl AuthorType {
    /// The contract's spelling, as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthorType::Contact => "contact",
            AuthorType::Agent => "agent",
            AuthorType::Bot => "bot",
            AuthorType::System => "system",
        }
    }

    /// Parses the stored spelling.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "contact" => AuthorType::Contact,
            "agent" => AuthorType::Agent,
            "bot" => AuthorType::Bot,
            "system" => AuthorType::System,
            _ => return None,
        })
    }
}

/// The author of a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Author {
    /// Contact, agent, bot or system.
    #[serde(rename = "type")]
    pub kind: AuthorType,
    /// Display name, when known.
    #[serde(default)]
    pub name: Option<String>,
}

/// Which way a message travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Direction {
    /// From the contact to the business.
    Inbound,
    /// From an agent or bot to the contact.
    Outbound,
}

impl Direction {
    /// The contract's spelling, as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Inbound => "inbound",
            Direction::Outbound => "outbound",
        }
    }
}

/// Delivery status of a message. Outbound messages move forward only:
/// `pending` → `sent` → `delivered` → `read`, or to `failed` before they were delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum MessageStatus {
    /// An inbound message, stored.
    Received,
    /// An outbound message waiting in the outbox.
    Pending,
    /// Handed to the provider, which accepted it.
    Sent,
    /// The provider reports it reached the contact's device.
    Delivered,
    /// The provider reports the contact read it.
    Read,
    /// Will not be delivered; `error` says why.
    Failed,
}

impl MessageStatus {
    /// The contract's spelling, as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            MessageStatus::Received => "received",
            MessageStatus::Pending => "pending",
            MessageStatus::Sent => "sent",
            MessageStatus::Delivered => "delivered",
            MessageStatus::Read => "read",
            MessageStatus::Failed => "failed",
        }
    }

    /// Parses the stored spelling.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "received" => MessageStatus::Received,
            "pending" => MessageStatus::Pending,
            "sent" => MessageStatus::Sent,
            "delivered" => MessageStatus::Delivered,
            "read" => MessageStatus::Read,
            "failed" => MessageStatus::Failed,
            _ => return None,
        })
    }

    /// Whether an outbound message in status `self` may move to `next`. Receipts arrive out
    /// of order and twice; this keeps a status from ever moving backwards.
    pub fn can_advance_to(self, next: MessageStatus) -> bool {
        use MessageStatus::*;
        match (self, next) {
            (Received, _) | (_, Received) | (_, Pending) => false,
            (Failed, _) => false,
            // A provider may fail a message it had accepted, never one it delivered.
            (Pending | Sent, Failed) => true,
            (_, Failed) => false,
            (a, b) => a.rank() < b.rank(),
        }
    }

    fn rank(self) -> u8 {
        match self {
            MessageStatus::Received | MessageStatus::Pending => 0,
            MessageStatus::Sent => 1,
            MessageStatus::Delivered => 2,
            MessageStatus::Read => 3,
            MessageStatus::Failed => 4,
        }
    }
}

/// A message as the API, the stream and webhooks show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Message {
    /// switchboard's id (opaque).
    pub id: String,
    /// The conversation it belongs to.
    pub conversation_id: String,
    /// The service of that conversation.
    pub service_id: String,
    /// Inbound or outbound.
    pub direction: Direction,
    /// The provider's id for the message (for outbound: once the provider gave one).
    pub external_id: Option<String>,
    /// Plain text; providers that send HTML are converted by their connector.
    pub text: Option<String>,
    /// Files by URL.
    pub attachments: Vec<Attachment>,
    /// Who wrote it.
    pub author: Author,
    /// Delivery status.
    pub status: MessageStatus,
    /// Why it failed, for `failed`.
    pub error: Option<String>,
    /// When switchboard stored it.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: Timestamp,
}

impl Message {
    /// Its text, then its files' URLs, one per line: what a desk that cannot take files
    /// shows. `None` when there is nothing to show.
    pub fn text_with_links(&self) -> Option<String> {
        let mut parts: Vec<&str> = Vec::new();
        if let Some(t) = self.text.as_deref().filter(|t| !t.trim().is_empty()) {
            parts.push(t);
        }
        parts.extend(self.attachments.iter().map(|a| a.url.as_str()));
        (!parts.is_empty()).then(|| parts.join("\n"))
    }
}

/// One person on one service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Contact {
    /// switchboard's id (opaque).
    pub id: String,
    /// The service the contact reached us through.
    pub service_id: String,
    /// The provider's id for the person (JID, phone number, user id, …).
    pub external_id: String,
    /// Display name, when known.
    pub name: Option<String>,
    /// E-mail address, when known.
    pub email: Option<String>,
    /// Phone number, when known.
    pub phone: Option<String>,
}

/// Whether a conversation takes new messages into the same thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum ConversationStatus {
    /// New messages from the contact land here.
    Open,
    /// Finished; a new message from the contact opens a new conversation unless the
    /// provider names the thread.
    Closed,
}

/// A thread between a contact and the business.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Conversation {
    /// switchboard's id (opaque).
    pub id: String,
    /// The service it runs on.
    pub service_id: String,
    /// The tenant owning that service.
    pub organization: String,
    /// The provider's thread id, where the provider has one.
    pub external_id: Option<String>,
    /// Open or closed.
    pub status: ConversationStatus,
    /// The contact on the other side.
    pub contact: Contact,
    /// When switchboard opened it.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: Timestamp,
    /// When it last changed.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub updated_at: Timestamp,
    /// When its last message was stored.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub last_message_at: Option<Timestamp>,
    /// The desk service that answers it (the channel's `desk`), once a message of it was
    /// routed there; null for a conversation agents answer through `/v1` alone.
    #[serde(default)]
    pub desk: Option<String>,
    /// The desk's id for the conversation, once the desk has created it.
    #[serde(default)]
    pub desk_external_id: Option<String>,
}

/// What an API token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(try_from = "String")]
pub enum Scope {
    /// Read services, conversations, messages and the event stream of the organization.
    Read,
    /// Post agent/bot replies into the organization's conversations.
    Reply,
    /// Post inbound messages to the token's own api service.
    Ingest,
    /// Administer the daemon (reload).
    Admin,
}

crate::string_enum!(Scope {
    Read = "read",
    Reply = "reply",
    Ingest = "ingest",
    Admin = "admin",
});

/// The event types of the contract, for validating `events` filters.
pub const EVENT_TYPES: &[&str] = &[
    "contact.created",
    "conversation.created",
    "message.created",
    "message.status",
    "service.state",
];

#[cfg(test)]
mod tests {
    use super::MessageStatus::*;

    #[test]
    fn attachment_urls_are_http_as_written() {
        let ok = |u: &str| {
            super::Attachment {
                url: u.into(),
                content_type: None,
                name: None,
            }
            .has_http_url()
        };
        assert!(ok("https://example.com/a.png"));
        assert!(ok("HTTP://example.com"));
        // schemathesis: the document's pattern refuses these, the URL parser took them.
        assert!(!ok(" http://example.com"));
        assert!(!ok("ht\ttp://example.com"));
        assert!(!ok("ftp://example.com"));
        assert!(!ok("http://"));
        assert!(!ok("é"));
    }

    #[test]
    fn statuses_only_move_forward() {
        assert!(Pending.can_advance_to(Sent));
        assert!(Sent.can_advance_to(Delivered));
        assert!(Pending.can_advance_to(Read));
        assert!(Sent.can_advance_to(Failed));
        assert!(!Delivered.can_advance_to(Sent));
        assert!(!Read.can_advance_to(Delivered));
        assert!(!Delivered.can_advance_to(Failed));
        assert!(!Failed.can_advance_to(Sent));
        assert!(!Sent.can_advance_to(Sent));
        assert!(!Received.can_advance_to(Sent));
    }
}
