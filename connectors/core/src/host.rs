//! What a connector asks of the daemon: the [`Host`] operations (storage and state,
//! scoped to the calling service, each write returning after its commit) and the values
//! they take and give.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::context::ConnState;
use crate::error::HostError;
use crate::model::{Attachment, Author, AuthorType, Conversation, Message, MessageStatus};

/// A message from a contact, normalized by its connector.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InboundMessage {
    /// The provider's id for the message: the dedupe key, unique per service.
    #[cfg_attr(feature = "openapi", schema(pattern = r"\S"))]
    pub external_id: String,
    /// The sender.
    pub contact: ContactInfo,
    /// The provider's thread id; without one the contact's open conversation is used.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(pattern = r"\S"))]
    pub conversation_external_id: Option<String>,
    /// Plain text.
    #[serde(default)]
    pub text: Option<String>,
    /// Files by URL.
    #[serde(default)]
    pub attachments: Vec<Attachment>,
}

/// What a provider tells us about a contact.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ContactInfo {
    /// The provider's id for the person: unique per service.
    #[cfg_attr(feature = "openapi", schema(pattern = r"\S"))]
    pub external_id: String,
    /// Display name.
    #[serde(default)]
    pub name: Option<String>,
    /// E-mail address.
    #[serde(default)]
    pub email: Option<String>,
    /// Phone number.
    #[serde(default)]
    pub phone: Option<String>,
}

/// The result of ingesting one inbound message.
#[derive(Debug, Clone)]
pub struct Ingested {
    /// The stored message: the new one, or the original for a duplicate.
    pub message: Message,
    /// Its conversation.
    pub conversation: Conversation,
    /// False when the external id was already stored (nothing new was written).
    pub created: bool,
    /// True when this message opened the conversation.
    pub conversation_created: bool,
}

/// A message switchboard itself sends into a conversation (welcome, out-of-hours).
#[derive(Debug, Clone)]
pub struct SystemMessage {
    /// The conversation to answer in.
    pub conversation_id: String,
    /// The text.
    pub text: String,
    /// Usually `system` or `bot`.
    pub author: Author,
    /// Makes the send idempotent (e.g. `welcome`, `offline`): a repeat returns the first.
    pub idempotency_key: String,
}

/// A provider receipt for an outbound message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatusChange {
    /// The status moved forward; a `message.status` event was written.
    Updated,
    /// Already at or past that status (duplicate or late receipt): nothing written.
    Unchanged,
    /// No outbound message with that external id on this service.
    UnknownMessage,
}

/// A provider's receipt for every message it took before a moment, rather than for one
/// message (Messenger's `delivery` and `read` watermarks: "all messages sent before
/// `watermark` were delivered / read").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Watermark {
    /// The provider's thread id of the conversation it is about.
    pub conversation_external_id: String,
    /// Delivered or read.
    pub status: MessageStatus,
    /// The provider's watermark: every outbound message stored at or before it, and
    /// already handed to the provider, has reached `status`.
    pub before: jiff::Timestamp,
}

/// A provider's one-time value that authenticates one request (Mailgun's `token`): a
/// second request with the same value is a replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nonce {
    /// The value, unique per service.
    pub value: String,
    /// When it may be forgotten: after this the request's timestamp is refused as stale
    /// anyway.
    pub expires_at: jiff::Timestamp,
}

/// An agent's or bot's reply a desk posts on one of its organization's conversations
/// (desk → channel). It is stored and delivered exactly like a reply through
/// `POST /v1/conversations/{id}/messages`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeskReply {
    /// Our conversation it answers in.
    pub conversation_id: String,
    /// Plain text.
    pub text: Option<String>,
    /// Files by URL.
    pub attachments: Vec<Attachment>,
    /// An agent or a bot, with the name the contact sees.
    pub author: Author,
    /// The desk's id for the message: a desk that posts it again (its webhook retried)
    /// gets the first one back.
    pub idempotency_key: String,
}

/// Longest idempotency key a reply may carry.
pub const MAX_IDEMPOTENCY_KEY: usize = 255;

impl DeskReply {
    /// What every reply needs, whoever posts it: text or attachments, http(s) URLs, an
    /// agent or bot author, a key of 1-255 characters. The message names the field.
    pub fn check(&self) -> Result<(), String> {
        check_reply(
            self.text.as_deref(),
            &self.attachments,
            &self.author,
            Some(&self.idempotency_key),
        )
    }
}

/// The checks of [`DeskReply::check`], for any reply (the API's too).
pub fn check_reply(
    text: Option<&str>,
    attachments: &[Attachment],
    author: &Author,
    idempotency_key: Option<&str>,
) -> Result<(), String> {
    let has_text = text.is_some_and(|t| !t.trim().is_empty());
    if !has_text && attachments.is_empty() {
        return Err("a reply needs text or attachments".into());
    }
    for (i, a) in attachments.iter().enumerate() {
        if !url::Url::parse(&a.url).is_ok_and(|u| matches!(u.scheme(), "http" | "https")) {
            return Err(format!("attachments[{i}].url must be an http(s) URL"));
        }
    }
    if !matches!(author.kind, AuthorType::Agent | AuthorType::Bot) {
        return Err("author.type: expected agent or bot".into());
    }
    if let Some(k) = idempotency_key
        && (k.is_empty() || k.len() > MAX_IDEMPOTENCY_KEY)
    {
        return Err(format!(
            "idempotency_key: 1-{MAX_IDEMPOTENCY_KEY} characters"
        ));
    }
    Ok(())
}

/// A reply as stored.
#[derive(Debug, Clone)]
pub struct Posted {
    /// The stored message (status `pending` until the channel delivers it).
    pub message: Message,
    /// False when the key was already used: `message` is the first one.
    pub created: bool,
}

/// A conversation handed from one desk to another ([`Host::hand_off`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandedOff {
    /// The desk that had it (this one).
    pub from: Option<String>,
    /// The desk that has it now; `None` for switchboard's own agents (`/v1` only).
    pub to: Option<String>,
}

/// Which desk conversation answers one of our conversations. A desk stores it (and waits
/// for the commit) before it posts anything that depends on it, so that a retry or a
/// restart finds it instead of opening a second desk conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeskLink {
    /// Our conversation.
    pub conversation_id: String,
    /// The desk's id for it; unique per desk.
    pub desk_conversation_id: String,
    /// The desk's id for the conversation's contact, when the desk has one.
    pub desk_contact_id: Option<String>,
}

/// A number a connector reports about its provider, which `/metrics` shows labelled with
/// the service's id. Named here rather than free-form so that the daemon's metric names
/// stay a fixed, documented set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Gauge {
    /// Requests the provider's rate limit still allows now
    /// (`switchboard_provider_budget_remaining`).
    ProviderBudgetRemaining,
}

/// The storage and state operations the daemon offers its connectors. The binary gives
/// each service its own host, so every operation is that service's; every write returns
/// only after it has been committed.
#[async_trait]
pub trait Host: Send + Sync {
    /// Stores inbound messages in one transaction: upsert contacts, find or open
    /// conversations, insert messages (deduped on external id), append events, enqueue
    /// webhook deliveries. A duplicate yields the original with `created: false`.
    async fn ingest(&self, messages: Vec<InboundMessage>) -> Result<Vec<Ingested>, HostError>;

    /// [`ingest`](Self::ingest), in the same transaction as recording `nonce` as used:
    /// `None`, with nothing written, when it was used before. Two concurrent requests
    /// with one nonce cannot both pass, and a failed ingest leaves the nonce unused so
    /// that the provider's retry is taken. Nonces past their expiry are pruned here.
    async fn ingest_once(
        &self,
        nonce: &Nonce,
        messages: Vec<InboundMessage>,
    ) -> Result<Option<Vec<Ingested>>, HostError>;

    /// Applies a provider receipt to the outbound message with that external id, forward
    /// only.
    async fn update_status(
        &self,
        external_id: &str,
        status: MessageStatus,
        error: Option<String>,
    ) -> Result<StatusChange, HostError>;

    /// Moves every outbound message of the watermark's conversation that was handed to
    /// the provider (`sent` or `delivered`) and stored at or before the watermark
    /// forward to its status, each with its `message.status` event; how many moved. An
    /// unknown conversation moves nothing.
    async fn apply_watermark(&self, watermark: &Watermark) -> Result<usize, HostError>;

    /// The conversation holding this service's message (inbound or outbound) with that
    /// provider id, if one is stored: how a channel that threads by reference (e-mail's
    /// `In-Reply-To`) finds the thread a message answers.
    async fn conversation_of(&self, external_id: &str) -> Result<Option<Conversation>, HostError>;

    /// Queues a message from switchboard itself; idempotent on its key.
    async fn send_system(&self, msg: SystemMessage) -> Result<Message, HostError>;

    /// Stores a desk's reply on a conversation of the service's organization and queues
    /// it for that conversation's channel; idempotent on its key.
    async fn post_reply(&self, reply: DeskReply) -> Result<Posted, HostError>;

    /// Stores (or updates) a link of this desk; a desk conversation already linked to
    /// another of our conversations is a conflict.
    async fn link_put(&self, link: DeskLink) -> Result<(), HostError>;

    /// This desk's latest link for our conversation that has not ended
    /// ([`Host::close_conversation`]).
    async fn link_get(&self, conversation_id: &str) -> Result<Option<DeskLink>, HostError>;

    /// This desk's link for its own conversation id.
    async fn link_lookup(&self, desk_conversation_id: &str) -> Result<Option<DeskLink>, HostError>;

    /// The desk resolved its conversation `desk_conversation_id`: closes our conversation
    /// linked to it and ends the link, so that the contact's next message opens a new
    /// conversation here and at the desk. Returns our conversation's id; `None` when
    /// nothing of ours is linked to it (or the link had already ended).
    async fn close_conversation(
        &self,
        desk_conversation_id: &str,
    ) -> Result<Option<String>, HostError>;

    /// This desk hands our conversation `conversation_id` on to the desk its `handoff`
    /// key names (switchboard's own agents when it names none): in one transaction the
    /// conversation's desk changes, `conversation.handoff` is appended with `reason`
    /// (the platform's word for it, e.g. `chat_pinned`), and the transcript so far is
    /// queued for the new desk. `None` when the conversation is not (or no longer) at
    /// this desk; this desk's later answers in it are refused with
    /// [`HostError::HandedOff`].
    async fn hand_off(
        &self,
        conversation_id: &str,
        reason: &str,
    ) -> Result<Option<HandedOff>, HostError>;

    /// Reads a sync-state value (cursor, token).
    async fn kv_get(&self, key: &str) -> Result<Option<String>, HostError>;

    /// Writes a sync-state value.
    async fn kv_put(&self, key: &str, value: &str) -> Result<(), HostError>;

    /// Reports the connection state.
    fn set_state(&self, state: ConnState);

    /// Sets one of the service's provider gauges (see [`Gauge`]); not stored.
    fn set_gauge(&self, gauge: Gauge, value: i64) {
        let _ = (gauge, value);
    }

    /// An ephemeral signal (typing) for the event stream; not stored.
    fn typing(&self, contact_external_id: &str, typing: bool) {
        let _ = (contact_external_id, typing);
    }
}
