//! The append-only event log: appending an event enqueues it for every webhook service
//! subscribed to its type in its organization.

use rusqlite::params;
use serde::Serialize;
use switchboard_core::{Contact, Conversation, Message};

use super::error::StoreError;
use super::outbox::OutboxKind;
use super::writer::WriteCx;

/// An event's `data`: the objects it carries, serialized straight from them (no
/// `serde_json::Value` tree in between). Absent objects are left out.
#[derive(Debug, Default, Serialize)]
pub struct EventData<'a> {
    /// The message (`message.*`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<&'a Message>,
    /// The conversation (`conversation.created`, and `message.created` beside its message).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conversation: Option<&'a Conversation>,
    /// The contact (`contact.created`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contact: Option<&'a Contact>,
    /// The service object (`service.state`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<&'a serde_json::Value>,
}

impl WriteCx<'_> {
    /// Appends an event and enqueues it for every subscribed webhook service.
    pub fn append_event(
        &mut self,
        kind: &str,
        organization: &str,
        service_id: Option<&str>,
        conversation_id: Option<i64>,
        data: &EventData<'_>,
    ) -> Result<i64, StoreError> {
        let data = serde_json::to_string(data)?;
        self.conn
            .prepare_cached(
                "INSERT INTO events (type, organization, service_id, conversation_id, created_at, data) \
                 VALUES (?, ?, ?, ?, ?, ?)",
            )?
            .execute(params![kind, organization, service_id, conversation_id, self.now, data])?;
        let seq = self.conn.last_insert_rowid();
        self.fx.last_seq = seq;
        let queue_key = match (conversation_id, service_id) {
            (Some(c), _) => format!("c{c}"),
            (None, Some(s)) => format!("s{s}"),
            (None, None) => format!("e{seq}"),
        };
        let routes = self.routes;
        for target in routes.subscribers(organization, kind) {
            self.enqueue(target, OutboxKind::Event, seq, &queue_key)?;
        }
        Ok(seq)
    }
}
