//! Events: the stored `{"type","timestamp","seq","data"}` with its `data` typed by
//! `type`. [`EventData`] is the one form of an event's objects: the store serializes it
//! from borrowed objects when it appends an event (no JSON tree in between), and a desk
//! reads it back owned and matches on it instead of digging in JSON. A webhook still
//! sends the stored bytes ([`EventDelivery::body`]) verbatim.
//!
//! [`EventDelivery::body`]: crate::EventDelivery::body

use std::borrow::Cow;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::model::{Contact, Conversation, Message};

/// One event of the log, as a connector reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// When it happened.
    pub timestamp: Timestamp,
    /// Position in the event log; strictly increasing.
    pub seq: i64,
    /// The objects it is about, which also say its type ([`Event::kind`]).
    pub data: EventData<'static>,
}

impl Event {
    /// `contact.created`, `conversation.created`, `conversation.routed`,
    /// `conversation.handoff`, `message.created`, `message.status`, `service.state`, or a
    /// type added later.
    pub fn kind(&self) -> &str {
        self.data.kind()
    }
}

/// An event's objects, by event type: borrowed when the store appends one, owned when a
/// connector reads one. Serialized, it is the event's `data` object.
#[derive(Debug, Clone, PartialEq)]
#[allow(
    clippy::large_enum_variant,
    reason = "one value per delivery, never kept in bulk: boxing would only add noise"
)]
pub enum EventData<'a> {
    /// `contact.created`: a contact reached us for the first time.
    ContactCreated {
        /// The new contact.
        contact: Cow<'a, Contact>,
    },
    /// `conversation.created`: a conversation was opened.
    ConversationCreated {
        /// The new conversation, with its contact.
        conversation: Cow<'a, Conversation>,
    },
    /// `conversation.routed`: a conversation was first mirrored into its desk, which
    /// now knows it (its `desk` and `desk_external_id` are set).
    ConversationRouted {
        /// The conversation, with its desk.
        conversation: Cow<'a, Conversation>,
    },
    /// `conversation.handoff`: the conversation moved from one desk to another (a bot
    /// handed it to human agents); the new desk gets its transcript.
    ConversationHandoff {
        /// The conversation, showing its new desk.
        conversation: Cow<'a, Conversation>,
        /// Who had it: a desk's service id, or null for switchboard's own agents.
        from: Option<String>,
        /// Who has it now: a desk's service id, or null for switchboard's own agents
        /// (`handoff = "api"`).
        to: Option<String>,
        /// What triggered it: `api`, `keyword`, `timeout`, or the bot platform's event
        /// (e.g. `chat_pinned`).
        reason: String,
    },
    /// `message.created`: a message was stored, inbound or outbound.
    MessageCreated {
        /// The message.
        message: Cow<'a, Message>,
        /// Its conversation, with the contact.
        conversation: Cow<'a, Conversation>,
    },
    /// `message.status`: an outbound message's delivery status changed.
    MessageStatus {
        /// The message with its new status.
        message: Cow<'a, Message>,
    },
    /// `service.state`: a service's status or connection state changed.
    ServiceState {
        /// The service object of `GET /v1/services`.
        service: Cow<'a, serde_json::Value>,
    },
    /// A type this version does not read: its type and its `data` as stored.
    Other {
        /// The event type.
        kind: String,
        /// `data` as stored.
        data: serde_json::Value,
    },
}

impl<'a> EventData<'a> {
    /// `contact.created` of `contact`.
    pub fn contact_created(contact: &'a Contact) -> Self {
        EventData::ContactCreated {
            contact: Cow::Borrowed(contact),
        }
    }

    /// `conversation.created` of `conversation`.
    pub fn conversation_created(conversation: &'a Conversation) -> Self {
        EventData::ConversationCreated {
            conversation: Cow::Borrowed(conversation),
        }
    }

    /// `conversation.routed` of `conversation`.
    pub fn conversation_routed(conversation: &'a Conversation) -> Self {
        EventData::ConversationRouted {
            conversation: Cow::Borrowed(conversation),
        }
    }

    /// `conversation.handoff` of `conversation` (already showing desk `to`).
    pub fn conversation_handoff(
        conversation: &'a Conversation,
        from: Option<String>,
        to: Option<String>,
        reason: &str,
    ) -> Self {
        EventData::ConversationHandoff {
            conversation: Cow::Borrowed(conversation),
            from,
            to,
            reason: reason.to_owned(),
        }
    }

    /// `message.created` of `message` in `conversation`.
    pub fn message_created(message: &'a Message, conversation: &'a Conversation) -> Self {
        EventData::MessageCreated {
            message: Cow::Borrowed(message),
            conversation: Cow::Borrowed(conversation),
        }
    }

    /// `message.status` of `message`, which carries its new status.
    pub fn message_status(message: &'a Message) -> Self {
        EventData::MessageStatus {
            message: Cow::Borrowed(message),
        }
    }

    /// `service.state` of the service object `service`.
    pub fn service_state(service: &'a serde_json::Value) -> Self {
        EventData::ServiceState {
            service: Cow::Borrowed(service),
        }
    }

    /// The event type these objects belong to.
    pub fn kind(&self) -> &str {
        match self {
            EventData::ContactCreated { .. } => "contact.created",
            EventData::ConversationCreated { .. } => "conversation.created",
            EventData::ConversationRouted { .. } => "conversation.routed",
            EventData::ConversationHandoff { .. } => "conversation.handoff",
            EventData::MessageCreated { .. } => "message.created",
            EventData::MessageStatus { .. } => "message.status",
            EventData::ServiceState { .. } => "service.state",
            EventData::Other { kind, .. } => kind,
        }
    }
}

impl EventData<'static> {
    /// Types `data` by the event type `kind`.
    pub fn parse(kind: &str, data: serde_json::Value) -> Result<Self, serde_json::Error> {
        use serde_json::from_value;
        Ok(match kind {
            "contact.created" => {
                let Objects { contact, .. } = from_value::<Owned>(data)?;
                EventData::ContactCreated {
                    contact: Cow::Owned(required(contact, "contact")?),
                }
            }
            "conversation.created" => {
                let Objects { conversation, .. } = from_value::<Owned>(data)?;
                EventData::ConversationCreated {
                    conversation: Cow::Owned(required(conversation, "conversation")?),
                }
            }
            "conversation.routed" => {
                let Objects { conversation, .. } = from_value::<Owned>(data)?;
                EventData::ConversationRouted {
                    conversation: Cow::Owned(required(conversation, "conversation")?),
                }
            }
            "conversation.handoff" => {
                let h = from_value::<Handoff<Conversation>>(data)?;
                EventData::ConversationHandoff {
                    conversation: Cow::Owned(h.conversation),
                    from: h.from,
                    to: h.to,
                    reason: h.reason,
                }
            }
            "message.created" => {
                let Objects {
                    message,
                    conversation,
                    ..
                } = from_value::<Owned>(data)?;
                EventData::MessageCreated {
                    message: Cow::Owned(required(message, "message")?),
                    conversation: Cow::Owned(required(conversation, "conversation")?),
                }
            }
            "message.status" => {
                let Objects { message, .. } = from_value::<Owned>(data)?;
                EventData::MessageStatus {
                    message: Cow::Owned(required(message, "message")?),
                }
            }
            "service.state" => {
                let Objects { service, .. } = from_value::<Owned>(data)?;
                EventData::ServiceState {
                    service: Cow::Owned(required(service, "service")?),
                }
            }
            _ => EventData::Other {
                kind: kind.to_owned(),
                data,
            },
        })
    }
}

fn required<T>(v: Option<T>, field: &'static str) -> Result<T, serde_json::Error> {
    v.ok_or_else(|| serde::de::Error::missing_field(field))
}

/// The `data` object of every known type: the objects it carries, absent ones left out.
/// Field order is the stored order.
#[derive(Serialize, Deserialize)]
struct Objects<M, C, P, S> {
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<M>,
    #[serde(skip_serializing_if = "Option::is_none")]
    conversation: Option<C>,
    #[serde(skip_serializing_if = "Option::is_none")]
    contact: Option<P>,
    #[serde(skip_serializing_if = "Option::is_none")]
    service: Option<S>,
}

/// The `data` of `conversation.handoff`: the conversation and the move.
#[derive(Serialize, Deserialize)]
struct Handoff<C> {
    conversation: C,
    from: Option<String>,
    to: Option<String>,
    reason: String,
}

type Owned = Objects<Message, Conversation, Contact, serde_json::Value>;
type Borrowed<'b> = Objects<&'b Message, &'b Conversation, &'b Contact, &'b serde_json::Value>;

impl Serialize for EventData<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut o: Borrowed<'_> = Objects {
            message: None,
            conversation: None,
            contact: None,
            service: None,
        };
        match self {
            EventData::ContactCreated { contact } => o.contact = Some(contact),
            EventData::ConversationCreated { conversation }
            | EventData::ConversationRouted { conversation } => o.conversation = Some(conversation),
            EventData::MessageCreated {
                message,
                conversation,
            } => {
                o.message = Some(message);
                o.conversation = Some(conversation);
            }
            EventData::ConversationHandoff {
                conversation,
                from,
                to,
                reason,
            } => {
                return Handoff {
                    conversation: &**conversation,
                    from: from.clone(),
                    to: to.clone(),
                    reason: reason.clone(),
                }
                .serialize(s);
            }
            EventData::MessageStatus { message } => o.message = Some(message),
            EventData::ServiceState { service } => o.service = Some(service),
            EventData::Other { data, .. } => return data.serialize(s),
        }
        o.serialize(s)
    }
}

/// The wire form.
#[derive(Serialize, Deserialize)]
struct RawEvent<K, D> {
    #[serde(rename = "type")]
    kind: K,
    timestamp: Timestamp,
    seq: i64,
    data: D,
}

impl Serialize for Event {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        RawEvent {
            kind: self.kind(),
            timestamp: self.timestamp,
            seq: self.seq,
            data: &self.data,
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for Event {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = RawEvent::<String, serde_json::Value>::deserialize(d)?;
        Ok(Event {
            data: EventData::parse(&raw.kind, raw.data).map_err(serde::de::Error::custom)?,
            timestamp: raw.timestamp,
            seq: raw.seq,
        })
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
        let EventData::MessageCreated { conversation, .. } = &e.data else {
            unreachable!()
        };
        let routed = EventData::conversation_routed(conversation);
        assert_eq!(routed.kind(), "conversation.routed");
        let data = serde_json::to_value(&routed).unwrap();
        assert_eq!(data["conversation"]["id"], "2");
        assert_eq!(
            EventData::parse("conversation.routed", data).unwrap(),
            routed,
            "conversation.routed is typed"
        );

        let later = r#"{"type":"conversation.archived","timestamp":"2026-01-01T00:00:00Z","seq":8,"data":{"desk":"nim"}}"#;
        let e: Event = serde_json::from_str(later).unwrap();
        assert_eq!(
            e.data,
            EventData::Other {
                kind: "conversation.archived".into(),
                data: serde_json::json!({"desk": "nim"})
            }
        );
        assert_eq!(e.kind(), "conversation.archived");
        assert_eq!(
            serde_json::to_string(&e).unwrap(),
            later,
            "an unknown type is sent on as it came"
        );
        assert!(
            serde_json::from_str::<Event>(
                &later.replace("conversation.archived", "message.status")
            )
            .is_err()
        );
    }

    /// The store appends events from borrowed objects; what it writes is the `data` object
    /// with the message before its conversation, as every stored event has it.
    #[test]
    fn borrowed_data_serializes_as_stored() {
        let e: Event = serde_json::from_str(&format!(
            r#"{{"type":"message.created","timestamp":"2026-01-01T00:00:00Z","seq":7,"data":{}}}"#,
            r#"{"message":{"id":"5","conversation_id":"2","service_id":"sun","direction":"inbound","external_id":"m1","text":"hi","attachments":[],"author":{"type":"contact","name":null},"status":"received","error":null,"created_at":"2026-01-01T00:00:00Z"},"conversation":{"id":"2","service_id":"sun","organization":"default","external_id":null,"status":"open","contact":{"id":"1","service_id":"sun","external_id":"c1","name":null,"email":null,"phone":null},"created_at":"2026-01-01T00:00:00Z","updated_at":"2026-01-01T00:00:00Z","last_message_at":null}}"#
        ))
        .unwrap();
        let EventData::MessageCreated {
            message,
            conversation,
        } = &e.data
        else {
            panic!("{e:?}")
        };
        let text =
            serde_json::to_string(&EventData::message_created(message, conversation)).unwrap();
        assert!(text.starts_with(r#"{"message":{"id":"5","#), "{text}");
        assert!(text.contains(r#"},"conversation":{"id":"2","#), "{text}");
        assert_eq!(
            serde_json::to_string(&EventData::message_status(message)).unwrap(),
            format!(
                r#"{{"message":{}}}"#,
                serde_json::to_string(&**message).unwrap()
            )
        );
        assert_eq!(
            EventData::contact_created(&conversation.contact).kind(),
            "contact.created"
        );
    }
}
