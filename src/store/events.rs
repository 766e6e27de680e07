//! The append-only event log: appending an event enqueues it for every service
//! subscribed to its type in its organization.

use switchboard_core::EventData;

use super::error::StoreError;
use super::outbox::OutboxKind;
use super::writer::WriteCx;

impl WriteCx<'_> {
    /// Appends an event (its type is its data's) and enqueues it for every service
    /// subscribed to that type. `data` is serialized straight from the objects it
    /// borrows.
    pub fn append_event(
        &mut self,
        organization: &str,
        service_id: Option<&str>,
        conversation_id: Option<i64>,
        data: &EventData<'_>,
    ) -> Result<i64, StoreError> {
        let kind = data.kind();
        let data = serde_json::to_string(data)?;
        let seq = self.db.insert(
            "INSERT INTO events (type, organization, service_id, conversation_id, created_at, data) \
             VALUES (?, ?, ?, ?, ?, ?)",
            &[&kind, &organization, &service_id, &conversation_id, &self.now, &data],
            "seq",
        )?;
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
