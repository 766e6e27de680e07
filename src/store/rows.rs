//! Rows as stored, and their conversion into the contract's objects. The same structs are
//! filled by the reader and the writer, on either engine, so an object looks the same
//! whichever side produced it.

use jiff::Timestamp;

use super::error::StoreError;
use super::sql::Row;
use switchboard_core::{
    Attachment, Author, AuthorType, Contact, Conversation, ConversationStatus, Direction, Message,
    MessageStatus,
};

/// Columns of a message row, in [`MessageRow`] order.
pub const MESSAGE_COLS: &str = "m.id, m.conversation_id, m.service_id, m.direction, \
    m.external_id, m.text, m.attachments, m.author_type, m.author_name, m.status, m.error, \
    m.created_at";

/// Columns of a conversation joined with its contact, in [`ConversationRow`] order.
pub const CONVERSATION_COLS: &str = "c.id, c.service_id, c.organization, c.external_id, \
    c.status, c.created_at, c.updated_at, c.last_message_at, k.id AS contact_id, \
    k.external_id AS contact_external_id, k.name AS contact_name, k.email AS contact_email, \
    k.phone AS contact_phone, c.desk_id AS desk, \
    (SELECT l.desk_conversation_id FROM desk_links l WHERE l.desk_id = c.desk_id \
     AND l.conversation_id = c.id ORDER BY l.id DESC LIMIT 1) AS desk_external_id, \
    c.handed_off";

/// A stored message.
#[derive(Debug, Clone)]
pub struct MessageRow {
    pub id: i64,
    pub conversation_id: i64,
    pub service_id: String,
    pub direction: String,
    pub external_id: Option<String>,
    pub text: Option<String>,
    pub attachments: Option<String>,
    pub author_type: String,
    pub author_name: Option<String>,
    pub status: String,
    pub error: Option<String>,
    pub created_at: i64,
}

impl MessageRow {
    /// Reads a row selected with [`MESSAGE_COLS`] starting at column `at`.
    pub fn from_row(r: &Row<'_, '_>, at: usize) -> Result<Self, StoreError> {
        Ok(MessageRow {
            id: r.get(at)?,
            conversation_id: r.get(at + 1)?,
            service_id: r.get(at + 2)?,
            direction: r.get(at + 3)?,
            external_id: r.get(at + 4)?,
            text: r.get(at + 5)?,
            attachments: r.get(at + 6)?,
            author_type: r.get(at + 7)?,
            author_name: r.get(at + 8)?,
            status: r.get(at + 9)?,
            error: r.get(at + 10)?,
            created_at: r.get(at + 11)?,
        })
    }

    /// The contract's object.
    pub fn into_message(self) -> Message {
        Message {
            id: self.id.to_string(),
            conversation_id: self.conversation_id.to_string(),
            service_id: self.service_id,
            direction: if self.direction == "outbound" {
                Direction::Outbound
            } else {
                Direction::Inbound
            },
            external_id: self.external_id,
            text: self.text,
            attachments: self
                .attachments
                .and_then(|a| serde_json::from_str(&a).ok())
                .unwrap_or_default(),
            author: Author {
                kind: AuthorType::parse(&self.author_type).unwrap_or(AuthorType::System),
                name: self.author_name,
            },
            status: MessageStatus::parse(&self.status).unwrap_or(MessageStatus::Pending),
            error: self.error,
            created_at: ts(self.created_at),
        }
    }
}

/// A stored conversation with its contact.
#[derive(Debug, Clone)]
pub struct ConversationRow {
    pub id: i64,
    pub service_id: String,
    pub organization: String,
    pub external_id: Option<String>,
    pub status: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub last_message_at: Option<i64>,
    pub contact_id: i64,
    pub contact_external_id: String,
    pub contact_name: Option<String>,
    pub contact_email: Option<String>,
    pub contact_phone: Option<String>,
    pub desk: Option<String>,
    pub desk_external_id: Option<String>,
    /// 1 once a handoff gave the conversation its desk (the channel's `desk` no longer
    /// applies to it).
    pub handed_off: i64,
}

impl ConversationRow {
    /// Reads a row selected with [`CONVERSATION_COLS`] starting at column `at`.
    pub fn from_row(r: &Row<'_, '_>, at: usize) -> Result<Self, StoreError> {
        Ok(ConversationRow {
            id: r.get(at)?,
            service_id: r.get(at + 1)?,
            organization: r.get(at + 2)?,
            external_id: r.get(at + 3)?,
            status: r.get(at + 4)?,
            created_at: r.get(at + 5)?,
            updated_at: r.get(at + 6)?,
            last_message_at: r.get(at + 7)?,
            contact_id: r.get(at + 8)?,
            contact_external_id: r.get(at + 9)?,
            contact_name: r.get(at + 10)?,
            contact_email: r.get(at + 11)?,
            contact_phone: r.get(at + 12)?,
            desk: r.get(at + 13)?,
            desk_external_id: r.get(at + 14)?,
            handed_off: r.get(at + 15)?,
        })
    }

    /// The contract's object.
    pub fn into_conversation(self) -> Conversation {
        Conversation {
            id: self.id.to_string(),
            contact: Contact {
                id: self.contact_id.to_string(),
                service_id: self.service_id.clone(),
                external_id: self.contact_external_id,
                name: self.contact_name,
                email: self.contact_email,
                phone: self.contact_phone,
            },
            service_id: self.service_id,
            organization: self.organization,
            external_id: self.external_id,
            status: if self.status == "closed" {
                ConversationStatus::Closed
            } else {
                ConversationStatus::Open
            },
            created_at: ts(self.created_at),
            updated_at: ts(self.updated_at),
            last_message_at: self.last_message_at.map(ts),
            desk: self.desk,
            desk_external_id: self.desk_external_id,
        }
    }
}

/// Unix milliseconds to a timestamp.
pub fn ts(ms: i64) -> Timestamp {
    Timestamp::from_millisecond(ms).unwrap_or(Timestamp::UNIX_EPOCH)
}

/// The current time in unix milliseconds.
pub fn now_ms() -> i64 {
    Timestamp::now().as_millisecond()
}

/// Parses an opaque id from a URL; `None` for anything we never issued.
pub fn parse_id(s: &str) -> Option<i64> {
    if s.is_empty() || s.len() > 19 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok().filter(|&n| n > 0)
}

/// Attachments as stored: `NULL` when there are none.
pub fn attachments_json(a: &[Attachment]) -> Option<String> {
    if a.is_empty() {
        None
    } else {
        serde_json::to_string(a).ok()
    }
}

/// The stream/webhook body of an event: `{"type","timestamp","seq","data"}`. Built from
/// trusted parts (a fixed type name, an RFC 3339 time, an integer and stored JSON), so the
/// bytes are the same every time the event is read.
pub fn event_body(kind: &str, created_at: i64, seq: i64, data: &str) -> String {
    format!(
        "{{\"type\":\"{kind}\",\"timestamp\":\"{}\",\"seq\":{seq},\"data\":{data}}}",
        ts(created_at)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_body_is_valid_json() {
        let body = event_body("message.created", 1_700_000_000_123, 42, r#"{"a":"\"x\""}"#);
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["type"], "message.created");
        assert_eq!(v["seq"], 42);
        assert_eq!(v["timestamp"], "2023-11-14T22:13:20.123Z");
        assert_eq!(v["data"]["a"], "\"x\"");
    }

    #[test]
    fn ids_are_strict() {
        assert_eq!(parse_id("12"), Some(12));
        assert_eq!(parse_id("0"), None);
        assert_eq!(parse_id("-1"), None);
        assert_eq!(parse_id("1e3"), None);
        assert_eq!(parse_id("99999999999999999999"), None);
    }
}
