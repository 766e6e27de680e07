//! A recording [`Host`] and a fixed clock for connectors' unit tests (feature `testkit`,
//! enabled only from connectors' `[dev-dependencies]`).
//!
//! The host stores nothing durable: it records every call so a test can assert what a
//! handler asked the daemon to do (and, as important, that a refused request asked for
//! nothing). It answers like the real host where handlers read the answer: an ingest of
//! an external id seen before comes back `created: false`, the first message of a
//! conversation `conversation_created: true`. End-to-end behaviour against real storage
//! is tested in the binary's integration tests.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use jiff::Timestamp;
use tokio_util::sync::CancellationToken;

use crate::{
    Author, AuthorType, Clock, ConnState, Contact, Conversation, ConversationStatus, Direction,
    Host, HostError, InboundMessage, Ingested, Message, MessageStatus, ServiceContext,
    StatusChange, SystemClock, SystemMessage,
};

/// What a [`RecordingHost`] was asked, in order.
#[derive(Debug, Default)]
pub struct Recorded {
    /// Every `ingest` call's messages, one entry per call (one call is one transaction).
    pub ingests: Vec<Vec<InboundMessage>>,
    /// `update_status` calls: external id, status, error.
    pub statuses: Vec<(String, MessageStatus, Option<String>)>,
    /// `send_system` calls.
    pub system: Vec<SystemMessage>,
    /// `typing` signals: contact external id, typing.
    pub typing: Vec<(String, bool)>,
    /// `set_state` reports.
    pub states: Vec<ConnState>,
    /// Sync state, by key.
    pub kv: BTreeMap<String, String>,
}

impl Recorded {
    /// The distinct messages stored, first occurrence of each external id, in order.
    pub fn stored(&self) -> Vec<&InboundMessage> {
        let mut out: Vec<&InboundMessage> = Vec::new();
        for m in self.ingests.iter().flatten() {
            if !out.iter().any(|o| o.external_id == m.external_id) {
                out.push(m);
            }
        }
        out
    }

    /// Whether the handler asked for no write at all.
    pub fn wrote_nothing(&self) -> bool {
        self.ingests.is_empty()
            && self.statuses.is_empty()
            && self.system.is_empty()
            && self.kv.is_empty()
    }
}

/// A [`Host`] that records instead of storing.
#[derive(Debug, Default)]
pub struct RecordingHost(Mutex<Recorded>);

impl RecordingHost {
    /// A service context for `service_id` of `service_type` backed by a new recording
    /// host, with the given clock (the system clock when `None`).
    pub fn context(
        service_id: &str,
        service_type: &'static str,
        clock: Option<Arc<dyn Clock>>,
    ) -> (ServiceContext, Arc<RecordingHost>) {
        let host = Arc::new(RecordingHost::default());
        let ctx = ServiceContext::new(
            service_id,
            service_type,
            "default",
            "http://127.0.0.1:1",
            crate::outbound::client_builder().build().expect("a client"),
            CancellationToken::new(),
            clock.unwrap_or_else(|| Arc::new(SystemClock::default())),
            host.clone(),
        );
        (ctx, host)
    }

    /// What was recorded so far.
    pub fn recorded(&self) -> MutexGuard<'_, Recorded> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn conversation(service_id: &str, m: &InboundMessage) -> Conversation {
    Conversation {
        id: "1".into(),
        service_id: service_id.into(),
        organization: "default".into(),
        external_id: m.conversation_external_id.clone(),
        status: ConversationStatus::Open,
        contact: Contact {
            id: "1".into(),
            service_id: service_id.into(),
            external_id: m.contact.external_id.clone(),
            name: m.contact.name.clone(),
            email: m.contact.email.clone(),
            phone: m.contact.phone.clone(),
        },
        created_at: Timestamp::UNIX_EPOCH,
        updated_at: Timestamp::UNIX_EPOCH,
        last_message_at: None,
    }
}

fn message(service_id: &str, m: &InboundMessage) -> Message {
    Message {
        id: "1".into(),
        conversation_id: "1".into(),
        service_id: service_id.into(),
        direction: Direction::Inbound,
        external_id: Some(m.external_id.clone()),
        text: m.text.clone(),
        attachments: m.attachments.clone(),
        author: Author {
            kind: AuthorType::Contact,
            name: m.contact.name.clone(),
        },
        status: MessageStatus::Received,
        error: None,
        created_at: Timestamp::UNIX_EPOCH,
    }
}

#[async_trait]
impl Host for RecordingHost {
    async fn ingest(
        &self,
        service_id: &str,
        messages: Vec<InboundMessage>,
    ) -> Result<Vec<Ingested>, HostError> {
        let mut rec = self.recorded();
        let mut out = Vec::with_capacity(messages.len());
        for (i, m) in messages.iter().enumerate() {
            let earlier = rec.ingests.iter().flatten().chain(&messages[..i]);
            let (mut seen, mut thread_seen) = (false, false);
            for e in earlier {
                seen |= e.external_id == m.external_id;
                thread_seen |= e.conversation_external_id == m.conversation_external_id
                    && e.contact.external_id == m.contact.external_id;
            }
            out.push(Ingested {
                message: message(service_id, m),
                conversation: conversation(service_id, m),
                created: !seen,
                conversation_created: !thread_seen,
            });
        }
        rec.ingests.push(messages);
        Ok(out)
    }

    async fn update_status(
        &self,
        _: &str,
        external_id: &str,
        status: MessageStatus,
        error: Option<String>,
    ) -> Result<StatusChange, HostError> {
        self.recorded()
            .statuses
            .push((external_id.into(), status, error));
        Ok(StatusChange::Updated)
    }

    async fn send_system(&self, msg: SystemMessage) -> Result<Message, HostError> {
        let answer = Message {
            id: "2".into(),
            conversation_id: msg.conversation_id.clone(),
            service_id: String::new(),
            direction: Direction::Outbound,
            external_id: None,
            text: Some(msg.text.clone()),
            attachments: Vec::new(),
            author: msg.author.clone(),
            status: MessageStatus::Pending,
            error: None,
            created_at: Timestamp::UNIX_EPOCH,
        };
        self.recorded().system.push(msg);
        Ok(answer)
    }

    async fn kv_get(&self, _: &str, key: &str) -> Result<Option<String>, HostError> {
        Ok(self.recorded().kv.get(key).cloned())
    }

    async fn kv_put(&self, _: &str, key: &str, value: &str) -> Result<(), HostError> {
        self.recorded().kv.insert(key.into(), value.into());
        Ok(())
    }

    fn set_state(&self, _: &str, state: ConnState) {
        self.recorded().states.push(state);
    }

    fn typing(&self, _: &str, contact_external_id: &str, typing: bool) {
        self.recorded()
            .typing
            .push((contact_external_id.into(), typing));
    }
}

/// A clock that always says the same time.
#[derive(Debug)]
pub struct FixedClock(pub Timestamp);

impl Clock for FixedClock {
    fn now(&self) -> Timestamp {
        self.0
    }
}
