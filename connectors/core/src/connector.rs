//! The connector traits, in the mautrix bridgev2 spirit: a small required core
//! ([`Connector`]: the connection and how deliveries are paced) and opt-in capabilities a
//! type offers through it, each with a default that does nothing:
//!
//! - [`Hooks`] — requests providers (or desks) post to `/hooks/{service_id}[/…]`;
//! - [`Channel`] — sends agents' and bots' messages to contacts (receipts come back
//!   through its hooks or its connection, as [`ServiceContext::update_status`] calls);
//! - [`EventSink`] — takes the organization's events the type subscribes to
//!   ([`ServiceType::subscription`](crate::ServiceType::subscription)), typed; a desk
//!   also gets the `message.status` events of failed messages of its conversations here;
//! - [`Desk`] — takes the messages of the channels routed to it (`desk = "<id>"`), each
//!   one durable outbox delivery in its conversation's order, and answers through the
//!   [`ServiceContext`]'s desk operations (`post_reply`, `link_*`, `close_conversation`).

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

use crate::context::ServiceContext;
use crate::error::{ConnectorError, DeliveryError, HookError};
use crate::event::Event;
use crate::hook::{HookAdmission, HookHead, HookRequest, HookResponse};
use crate::model::{Conversation, Message, MessageStatus};

/// A running service type. One value per configured service; the supervisor owns it and
/// calls it from several tasks at once, so it is `Sync`.
#[async_trait]
pub trait Connector: Send + Sync + 'static {
    /// Keeps the service's connection up until `ctx.shutdown` fires, reporting state
    /// through [`ServiceContext::set_state`]. Return `Ok(())` on shutdown; an error makes
    /// the supervisor restart it with backoff (slowly for authentication failures).
    ///
    /// Services without a connection of their own keep this default: ready at once.
    async fn run(&self, ctx: &ServiceContext) -> Result<(), ConnectorError> {
        ctx.set_state(crate::ConnState::Connected);
        ctx.shutdown.cancelled().await;
        Ok(())
    }

    /// Whether outbound deliveries need the connection `run` keeps (XMPP). While it is
    /// down the dispatcher holds the service's outbox instead of spending attempts.
    fn needs_connection(&self) -> bool {
        false
    }

    /// How many deliveries of this service may be in flight at once (each for a different
    /// conversation; one conversation's messages always go one at a time, in order).
    fn delivery_concurrency(&self) -> usize {
        16
    }

    /// Overrides the daemon-wide retry limits for this service's deliveries.
    fn retry_limits(&self) -> Option<RetryLimits> {
        None
    }

    /// Its hooks, if providers post to it.
    fn hooks(&self) -> Option<&dyn Hooks> {
        None
    }

    /// Its channel side, if it sends messages to contacts.
    fn channel(&self) -> Option<&dyn Channel> {
        None
    }

    /// Its event side, if it takes events.
    fn events(&self) -> Option<&dyn EventSink> {
        None
    }

    /// Its desk side, if it can answer channels' conversations (its type's
    /// [`ServiceType::DESK`](crate::ServiceType::DESK) is true).
    fn desk(&self) -> Option<&dyn Desk> {
        None
    }
}

/// Requests to `/hooks/{service_id}[/…]`. Channels whose provider posts one webhook per
/// request implement [`WebhookChannel`](crate::WebhookChannel) instead, which provides
/// this.
#[async_trait]
pub trait Hooks: Send + Sync {
    /// Checks what a request carries in its head alone — method, path, credentials and
    /// the presence and shape of a signature header — before the daemon reads its body,
    /// so that an unauthenticated request is answered at once and costs no memory.
    /// Compare secrets in constant time; the full check of a body signature belongs in
    /// `handle_webhook`. What it returns says how much of the body may be read.
    ///
    /// The default admits every head; the daemon still bounds bodies in size, time and
    /// total.
    fn authorize_hook(
        &self,
        ctx: &ServiceContext,
        head: &HookHead,
    ) -> Result<HookAdmission, HookError> {
        let _ = (ctx, head);
        Ok(HookAdmission::Signed)
    }

    /// Answers one request. Verify first; ingest through `ctx`, which returns only after
    /// the commit; then answer.
    async fn handle_webhook(
        &self,
        ctx: &ServiceContext,
        req: HookRequest,
    ) -> Result<HookResponse, HookError>;
}

/// Sends agents' and bots' messages to contacts.
#[async_trait]
pub trait Channel: Send + Sync {
    /// Sends one message (every attempt of it carries the same idempotency key).
    async fn deliver_message(
        &self,
        ctx: &ServiceContext,
        out: &OutboundMessage,
    ) -> Result<Delivered, DeliveryError>;
}

/// Takes the events a service subscribes to.
#[async_trait]
pub trait EventSink: Send + Sync {
    /// Delivers one event; every attempt of it carries the same delivery id.
    async fn deliver_event(
        &self,
        ctx: &ServiceContext,
        delivery: &EventDelivery,
    ) -> Result<(), DeliveryError>;
}

/// Takes the messages of the channels routed to this desk.
#[async_trait]
pub trait Desk: Send + Sync {
    /// Mirrors one message of a routed conversation into the desk: a contact's message
    /// as the contact's, an agent's or bot's reply sent through `/v1` as an outgoing
    /// one (or not at all, where the desk has no place for it). The first message of a
    /// conversation creates the desk's contact and conversation; store the link
    /// ([`ServiceContext::link_put`]) before posting anything that depends on it.
    ///
    /// An error is retried with the same [`Mirror::delivery_id`] and holds the
    /// conversation's later messages; `Ok` lets them go.
    async fn mirror(&self, ctx: &ServiceContext, mirror: &Mirror) -> Result<(), DeliveryError>;
}

/// One message of a routed conversation on its way to the conversation's desk.
#[derive(Debug, Clone)]
pub struct Mirror {
    /// The message: `inbound` from the contact, or `outbound` from an agent or bot.
    pub message: Message,
    /// Its conversation on the channel, with the contact.
    pub conversation: Conversation,
    /// 1 for the first attempt.
    pub attempt: u32,
    /// Stable across attempts and restarts (`mir_<message id>`): a marker the desk can
    /// find the message by after an uncertain attempt.
    pub delivery_id: String,
}

/// The daemon's way in: each call goes to the capability, or answers as a type without
/// it must.
impl dyn Connector {
    /// Hands a hook request to [`Hooks`]; 404 for a type without hooks.
    pub async fn handle_webhook(
        &self,
        ctx: &ServiceContext,
        req: HookRequest,
    ) -> Result<HookResponse, HookError> {
        match self.hooks() {
            Some(h) => h.handle_webhook(ctx, req).await,
            None => Err(HookError::NotFound),
        }
    }

    /// [`Hooks::authorize_hook`]; 404 for a type without hooks.
    pub fn authorize_hook(
        &self,
        ctx: &ServiceContext,
        head: &HookHead,
    ) -> Result<HookAdmission, HookError> {
        match self.hooks() {
            Some(h) => h.authorize_hook(ctx, head),
            None => Err(HookError::NotFound),
        }
    }

    /// Hands a message to [`Channel`]; permanent failure for a type that sends none.
    pub async fn deliver_message(
        &self,
        ctx: &ServiceContext,
        out: &OutboundMessage,
    ) -> Result<Delivered, DeliveryError> {
        match self.channel() {
            Some(c) => c.deliver_message(ctx, out).await,
            None => Err(DeliveryError::permanent(
                "this service type cannot send messages",
            )),
        }
    }

    /// Hands a routed message to [`Desk`]; permanent failure for a type that is no desk.
    pub async fn mirror(&self, ctx: &ServiceContext, mirror: &Mirror) -> Result<(), DeliveryError> {
        match self.desk() {
            Some(d) => d.mirror(ctx, mirror).await,
            None => Err(DeliveryError::permanent("this service type is not a desk")),
        }
    }

    /// Hands an event to [`EventSink`]; permanent failure for a type that takes none.
    pub async fn deliver_event(
        &self,
        ctx: &ServiceContext,
        delivery: &EventDelivery,
    ) -> Result<(), DeliveryError> {
        match self.events() {
            Some(e) => e.deliver_event(ctx, delivery).await,
            None => Err(DeliveryError::permanent(
                "this service type does not take events",
            )),
        }
    }
}

/// When the dispatcher gives up on a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryLimits {
    /// Attempts before the delivery is dead.
    pub max_attempts: u32,
    /// Age after which no further attempt is made.
    pub max_age: Duration,
}

/// An outbound message handed to a connector, with the conversation it goes to.
#[derive(Debug, Clone)]
pub struct OutboundMessage {
    /// The message (status `pending`).
    pub message: Message,
    /// Its conversation, with the contact.
    pub conversation: Conversation,
    /// 1 for the first attempt.
    pub attempt: u32,
    /// Stable across attempts and restarts: use it wherever a provider offers
    /// idempotency for sends.
    pub idempotency_key: String,
}

/// What a provider said when it accepted a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivered {
    /// The provider's id for the sent message, used to match later receipts.
    pub external_id: Option<String>,
    /// Usually `sent`; `delivered` when the provider confirms delivery synchronously.
    pub status: MessageStatus,
}

impl Delivered {
    /// Accepted by the provider, which gave it this id.
    pub fn sent(external_id: impl Into<Option<String>>) -> Self {
        Delivered {
            external_id: external_id.into(),
            status: MessageStatus::Sent,
        }
    }
}

/// One event on its way to one subscribed service.
#[derive(Debug, Clone)]
pub struct EventDelivery {
    /// Stable per event and the same on every retry (`webhook-id`).
    pub delivery_id: String,
    /// The event, typed, for a connector that reads it.
    pub event: Event,
    /// The stored body, byte-exact: what a webhook signs and sends.
    pub body: Bytes,
    /// 1 for the first attempt.
    pub attempt: u32,
}
