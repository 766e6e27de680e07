//! Events as connectors read them: the stored `{"type","timestamp","seq","data"}` with
//! its `data` typed by `type`, so that a desk matches on [`EventData`] instead of digging
//! in JSON. A webhook still sends the stored bytes ([`EventDelivery::body`]) verbatim.
//!
//! [`EventDelivery::body`]: crate::EventDelivery::body

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::model::{Contact, Conversation, Message};

/// One event of the log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawEvent", into = "RawEvent")]
pub struct Event {
    /// `contact.created`, `conversation.created`, `message.created`, `message.status`,
    /// `service.state`, or a type added later.
    pub kind: String,
    /// When it happened.
    pub timestamp: Timestamp,
    /// Position in the event log; strictly increasing.
    pub seq: i64,
    /// The objects it is about.
    pub data: EventData,
}

/// An event's objects, by event type.
#[derive(Debug, Clone, PartialEq)]
#[allow(
    clippy::large_enum_variant,
    reason = "one value per delivery, never kept in bulk: boxing would only add noise"
)]
pub enum EventData {
    /// `contact.created`: a contact reached us for the first time.
    ContactCreated {
        /// The new contact.
        contact: Contact,
    },
    /// `conversation.created`: a conversation was opened.
    ConversationCreated {
        /// The new conversation, with its contact.
        conversation: Conversation,
    },
    /// `message.created`: a message was stored, inbound or outbound.
    MessageCreated {
        /// The message.
        message: Message,
        /// Its conversation, with the contact.
        conversation: Conversation,
    },
    /// `message.status`: an outbound message's delivery status changed.
    MessageStatus {
        /// The message with its new status.
        message: Message,
    },
    /// `service.state`: a service's status or connection state changed.
    ServiceState {
        /// The service object of `GET /v1/services`.
        service: serde_json::Value,
    },
    /// A type this version does not read: its `data` as stored.
    Other(serde_json::Value),
}

#[derive(Deserialize)]
struct Contacted {
    contact: Contact,
}

#[derive(Deserialize)]
struct Opened {
    conversation: Conversation,
}

#[derive(Deserialize)]
struct Created {
    message: Message,
    conversation: Conversation,
}

#[derive(Deserialize)]
struct Changed {
    message: Message,
}

#[derive(Deserialize)]
struct ServiceChanged {
    service: serde_json::Value,
}

impl EventData {
    /// Types `data` by the event type `kind`.
    pub fn parse(kind: &str, data: serde_json::Value) -> Result<Self, serde_json::Error> {
        use serde_json::from_value;
        Ok(match kind {
            "contact.created" => {
                let Contacted { contact } = from_value(data)?;
                EventData::ContactCreated { contact }
            }
            "conversation.created" => {
                let Opened { conversation } = from_value(data)?;
                EventData::ConversationCreated { conversation }
            }
            "message.created" => {
                let Created {
                    message,
                    conversation,
                } = from_value(data)?;
                EventData::MessageCreated {
                    message,
                    conversation,
                }
            }
            "message.status" => {
                let Changed { message } = from_value(data)?;
                EventData::MessageStatus { message }
            }
            "service.state" => {
                let ServiceChanged { service } = from_value(data)?;
                EventData::ServiceState { service }
            }
            _ => EventData::Other(data),
        })
    }

    /// The `data` object as stored.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::json;
        match self {
            EventData::ContactCreated { contact } => json!({ "contact": contact }),
            EventData::ConversationCreated { conversation } => {
                json!({ "conversation": conversation })
            }
            EventData::MessageCreated {
                message,
                conversation,
            } => json!({ "message": message, "conversation": conversation }),
            EventData::MessageStatus { message } => json!({ "message": message }),
            EventData::ServiceState { service } => json!({ "service": service }),
            EventData::Other(data) => data.clone(),
        }
    }
}

/// The wire form.
#[derive(Serialize, Deserialize)]
struct RawEvent {
    #[serde(rename = "type")]
    kind: String,
    timestamp: Timestamp,
    seq: i64,
    data: serde_json::Value,
}

impl TryFrom<RawEvent> for Event {
    type Error = serde_json::Error;

    fn try_from(raw: RawEvent) -> Result<Self, Self::Error> {
        Ok(Event {
            data: EventData::parse(&raw.kind, raw.data)?,
            kind: raw.kind,
            timestamp: raw.timestamp,
            seq: raw.seq,
        })
    }
}

impl From<Event> for RawEvent {
    fn from(e: Event) -> Self {
        RawEvent {
            data: e.data.to_json(),
            kind: e.kind,
            timestamp: e.timestamp,
            seq: e.seq,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_created_is_typed_and_unknown_types_pass_through() {
        let body = r#"{"type":"message.created","timestamp":"2026-01-01T00:00:00Z","seq":7,"data":{
            "message":{"id":"5","conversation_id":"2","service_id":"sun","direction":"inbound",
              "external_id":"m1","text":"hi","attachments":[],"author":{"type":"contact","name":null},
              "status":"received","error":null,"created_at":"2026-01-01T00:00:00Z"},
            "conversation":{"id":"2","service_id":"sun","organization":"default","external_id":null,
              "status":"open","contact":{"id":"1","service_id":"sun","external_id":"c1","name":null,
              "email":null,"phone":null},"created_at":"2026-01-01T00:00:00Z",
              "updated_at":"2026-01-01T00:00:00Z","last_message_at":null}}}"#;
        let e: Event = serde_json::from_str(body).unwrap();
        match &e.data {
            EventData::MessageCreated {
                message,
                conversation,
            } => {
                assert_eq!(message.text.as_deref(), Some("hi"));
                assert_eq!(conversation.contact.external_id, "c1");
            }
            other => panic!("{other:?}"),
        }
        let again: Event = serde_json::from_value(serde_json::to_value(&e).unwrap()).unwrap();
        assert_eq!(again, e);

        let later = r#"{"type":"conversation.routed","timestamp":"2026-01-01T00:00:00Z","seq":8,"data":{"desk":"nim"}}"#;
        let e: Event = serde_json::from_str(later).unwrap();
        assert_eq!(e.data, EventData::Other(serde_json::json!({"desk": "nim"})));
        assert!(
            serde_json::from_str::<Event>(&later.replace("conversation.routed", "message.status"))
                .is_err()
        );
    }
}
