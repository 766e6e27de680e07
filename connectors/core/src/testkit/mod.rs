//! What connectors' tests share (feature `testkit`, enabled only from
//! `[dev-dependencies]`):
//!
//! - this file: a recording [`Host`] and a fixed clock;
//! - [`fake`] — fake HTTP servers: any router, or a recording provider with scripted
//!   failures;
//! - [`compliance`] — the suite every connector runs with a small fixture;
//! - [`postgres`] — a real PostgreSQL server started for the tests, and stopped.
//!
//! The host stores nothing durable: it records every call so a test can assert what a
//! handler asked the daemon to do (and, as important, that a refused request asked for
//! nothing). It answers like the real host where handlers read the answer: an ingest of
//! an external id seen before comes back `created: false`, the first message of a
//! conversation `conversation_created: true`. End-to-end behaviour against real storage
//! is tested in the binary's integration tests.

pub mod compliance;
pub mod fake;
pub mod postgres;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use jiff::Timestamp;
use tokio_util::sync::CancellationToken;

use crate::{
    Author, AuthorType, Clock, ConnState, Contact, Conversation, ConversationStatus, DeskLink,
    DeskReply, Direction, HandedOff, Host, HostError, InboundMessage, Ingested, Message,
    MessageStatus, Nonce, Posted, ServiceContext, StatusChange, SystemClock, SystemMessage,
    Watermark,
};

/// What a [`RecordingHost`] was asked, in order.
#[derive(Debug, Default)]
pub struct Recorded {
    /// Every `ingest` call's messages, one entry per call (one call is one transaction).
    pub ingests: Vec<Vec<InboundMessage>>,
    /// `update_status` calls: external id, status, error.
    pub statuses: Vec<(String, MessageStatus, Option<String>)>,
    /// `apply_watermark` calls.
    pub watermarks: Vec<Watermark>,
    /// Nonces `ingest_once` took, in order.
    pub nonces: Vec<String>,
    /// `send_system` calls.
    pub system: Vec<SystemMessage>,
    /// `post_reply` calls.
    pub replies: Vec<DeskReply>,
    /// Desk links, in the order they were first put.
    pub links: Vec<DeskLink>,
    /// Our conversations closed by `close_conversation` (their links end, so they are
    /// removed from `links`).
    pub closed: Vec<String>,
    /// `hand_off` calls: our conversation, reason.
    pub handoffs: Vec<(String, String)>,
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
            && self.watermarks.is_empty()
            && self.nonces.is_empty()
            && self.system.is_empty()
            && self.replies.is_empty()
            && self.links.is_empty()
            && self.closed.is_empty()
            && self.handoffs.is_empty()
            && self.kv.is_empty()
    }
}

/// A [`Host`] that records instead of storing.
#[derive(Debug, Default)]
pub struct RecordingHost {
    service_id: String,
    recorded: Mutex<Recorded>,
}

impl RecordingHost {
    /// A service context for `service_id` of `service_type` backed by a new recording
    /// host, with the given clock (the system clock when `None`).
    pub fn context(
        service_id: &str,
        service_type: &'static str,
        clock: Option<Arc<dyn Clock>>,
    ) -> (ServiceContext, Arc<RecordingHost>) {
        let host = Arc::new(RecordingHost {
            service_id: service_id.to_owned(),
            recorded: Mutex::default(),
        });
        let ctx = ServiceContext::new(
            service_id,
            service_type,
            "default",
            "http://127.0.0.1:1",
            test_http(),
            CancellationToken::new(),
            clock.unwrap_or_else(|| Arc::new(SystemClock::default())),
            host.clone(),
        );
        (ctx, host)
    }

    /// What was recorded so far.
    pub fn recorded(&self) -> MutexGuard<'_, Recorded> {
        self.recorded.lock().unwrap_or_else(|e| e.into_inner())
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
        desk: None,
        desk_external_id: None,
    }
}

fn outbound(
    conversation_id: &str,
    text: Option<String>,
    attachments: Vec<crate::Attachment>,
    author: &Author,
) -> Message {
    Message {
        id: "2".into(),
        conversation_id: conversation_id.into(),
        service_id: String::new(),
        direction: Direction::Outbound,
        external_id: None,
        text,
        attachments,
        author: author.clone(),
        status: MessageStatus::Pending,
        error: None,
        created_at: Timestamp::UNIX_EPOCH,
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
    async fn ingest(&self, messages: Vec<InboundMessage>) -> Result<Vec<Ingested>, HostError> {
        let service_id = self.service_id.as_str();
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

    /// Like the real host: a nonce taken before is refused with nothing recorded.
    async fn ingest_once(
        &self,
        nonce: &Nonce,
        messages: Vec<InboundMessage>,
    ) -> Result<Option<Vec<Ingested>>, HostError> {
        {
            let mut rec = self.recorded();
            if rec.nonces.contains(&nonce.value) {
                return Ok(None);
            }
            rec.nonces.push(nonce.value.clone());
        }
        if messages.is_empty() {
            return Ok(Some(Vec::new()));
        }
        self.ingest(messages).await.map(Some)
    }

    async fn apply_watermark(&self, watermark: &Watermark) -> Result<usize, HostError> {
        self.recorded().watermarks.push(watermark.clone());
        Ok(1)
    }

    /// The conversation of a message ingested earlier (its thread id as given then);
    /// outbound messages are not recorded here, so only inbound ones are found.
    async fn conversation_of(&self, external_id: &str) -> Result<Option<Conversation>, HostError> {
        let rec = self.recorded();
        let found = rec
            .ingests
            .iter()
            .flatten()
            .find(|m| m.external_id == external_id);
        Ok(found.map(|m| conversation(&self.service_id, m)))
    }

    async fn update_status(
        &self,
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
        let answer = outbound(
            &msg.conversation_id,
            Some(msg.text.clone()),
            Vec::new(),
            &msg.author,
        );
        self.recorded().system.push(msg);
        Ok(answer)
    }

    async fn post_reply(&self, reply: DeskReply) -> Result<Posted, HostError> {
        reply.check().map_err(HostError::Invalid)?;
        let mut rec = self.recorded();
        let created = !rec.replies.iter().any(|r| {
            r.conversation_id == reply.conversation_id && r.idempotency_key == reply.idempotency_key
        });
        let message = outbound(
            &reply.conversation_id,
            reply.text.clone(),
            reply.attachments.clone(),
            &reply.author,
        );
        rec.replies.push(reply);
        Ok(Posted { message, created })
    }

    async fn link_put(&self, link: DeskLink) -> Result<(), HostError> {
        let mut rec = self.recorded();
        match rec
            .links
            .iter_mut()
            .find(|l| l.desk_conversation_id == link.desk_conversation_id)
        {
            Some(l) if l.conversation_id != link.conversation_id => Err(HostError::Conflict(
                "the desk conversation is linked to another conversation".into(),
            )),
            Some(l) => {
                *l = link;
                Ok(())
            }
            None => {
                rec.links.push(link);
                Ok(())
            }
        }
    }

    async fn link_get(&self, conversation_id: &str) -> Result<Option<DeskLink>, HostError> {
        let rec = self.recorded();
        let latest = rec
            .links
            .iter()
            .rev()
            .find(|l| l.conversation_id == conversation_id);
        Ok(latest.cloned())
    }

    async fn link_lookup(&self, desk_conversation_id: &str) -> Result<Option<DeskLink>, HostError> {
        let rec = self.recorded();
        let found = rec
            .links
            .iter()
            .find(|l| l.desk_conversation_id == desk_conversation_id);
        Ok(found.cloned())
    }

    async fn close_conversation(
        &self,
        desk_conversation_id: &str,
    ) -> Result<Option<String>, HostError> {
        let mut rec = self.recorded();
        let found = rec
            .links
            .iter()
            .position(|l| l.desk_conversation_id == desk_conversation_id);
        Ok(found.map(|i| {
            let link = rec.links.remove(i);
            rec.closed.push(link.conversation_id.clone());
            link.conversation_id
        }))
    }

    async fn hand_off(
        &self,
        conversation_id: &str,
        reason: &str,
    ) -> Result<Option<HandedOff>, HostError> {
        let mut rec = self.recorded();
        if rec
            .handoffs
            .iter()
            .any(|(c, _)| c.as_str() == conversation_id)
        {
            return Ok(None);
        }
        rec.handoffs
            .push((conversation_id.to_owned(), reason.to_owned()));
        Ok(Some(HandedOff {
            from: Some(self.service_id.clone()),
            to: None,
        }))
    }

    async fn kv_get(&self, key: &str) -> Result<Option<String>, HostError> {
        Ok(self.recorded().kv.get(key).cloned())
    }

    async fn kv_put(&self, key: &str, value: &str) -> Result<(), HostError> {
        self.recorded().kv.insert(key.into(), value.into());
        Ok(())
    }

    fn set_state(&self, state: ConnState) {
        self.recorded().states.push(state);
    }

    fn typing(&self, contact_external_id: &str, typing: bool) {
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

/// An HTTP client as the daemon builds one ([`crate::outbound::client_builder`]).
pub fn test_http() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    crate::outbound::client_builder()
        .build()
        .expect("an HTTP client")
}
