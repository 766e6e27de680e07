//! Mirroring into the desk, with no second desk contact or conversation and no message
//! posted twice.
//!
//! - **Contact and conversation.** The first message of one of our conversations
//!   creates the desk's contact (`identifier` = our contact id; its `source_id` is kept
//!   in sync state before anything uses it) and conversation, and stores the link before
//!   any message is posted. A crash between "conversation created" and "link stored"
//!   leaves a desk conversation no link names: the next attempt lists the contact's
//!   conversations and adopts it instead of creating another.
//! - **Messages.** The client API's create-message has no idempotency key. After each
//!   post the desk's message id is stored (`last:{desk conversation}`); before a post
//!   whose predecessor may have landed unseen (a retry, the first post of a conversation
//!   since start, or any after a failed attempt), the conversation's messages are listed
//!   and a contact message newer than the last stored one with the same content is taken
//!   as this one. This is exact because only we post the contact's messages there, one
//!   at a time and in order. It stops being exact if the listing does not reach back to
//!   the last stored message (a desk that pages it away).
//! - **Outgoing messages and notes** (application API) carry [`MARKER`] in their
//!   `content_attributes`, which both the echo check of the webhook and the listing
//!   before a retry find.

use std::collections::HashSet;
use std::sync::Mutex;

use serde_json::json;
use switchboard_core::{
    Conversation, DeliveryError, DeskLink, Direction, EventData, EventDelivery, Message,
    MessageStatus, Mirror, ServiceContext,
};

use crate::client::Client;
use crate::payload::{MessageAnswer, MessageType};

/// The `content_attributes` key of what we post through the application API.
pub const MARKER: &str = "switchboard_id";

/// Most desk conversations [`Known`] remembers at once.
const MAX_KNOWN: usize = 65_536;

/// What the desk mirror keeps in memory: the desk conversations whose last post this
/// process saw answered, which need no listing before the next one.
#[derive(Debug, Default)]
pub struct Known(Mutex<HashSet<String>>);

impl Known {
    fn has(&self, conversation: &str) -> bool {
        self.lock().contains(conversation)
    }

    fn set(&self, conversation: &str, known: bool) {
        let mut set = self.lock();
        if known && set.len() >= MAX_KNOWN {
            // Forgetting costs one listing per conversation; memory stays bounded.
            set.clear();
        }
        if known {
            set.insert(conversation.to_owned());
        } else {
            set.remove(conversation);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The text the desk shows for `message`: its text, then its files' URLs (the client
/// API cannot upload them). `None` when there is nothing to show.
pub fn content_of(message: &Message) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    if let Some(t) = message.text.as_deref().filter(|t| !t.trim().is_empty()) {
        parts.push(t);
    }
    parts.extend(message.attachments.iter().map(|a| a.url.as_str()));
    (!parts.is_empty()).then(|| parts.join("\n"))
}

fn numeric(id: &str) -> Option<u64> {
    id.parse().ok()
}

/// Mirrors one message; see the module docs.
pub async fn mirror(
    client: &Client,
    known: &Known,
    ctx: &ServiceContext,
    m: &Mirror,
) -> Result<(), DeliveryError> {
    match m.message.direction {
        Direction::Inbound => contact_message(client, known, ctx, m).await,
        Direction::Outbound => outgoing(client, known, ctx, m).await,
    }
}

async fn contact_message(
    client: &Client,
    known: &Known,
    ctx: &ServiceContext,
    m: &Mirror,
) -> Result<(), DeliveryError> {
    let Some(content) = content_of(&m.message) else {
        return Ok(());
    };
    let (link, fresh) = match ctx.link_get(&m.conversation.id).await? {
        Some(link) => (link, false),
        None => (open(client, ctx, &m.conversation).await?, true),
    };
    let source = link
        .desk_contact_id
        .as_deref()
        .ok_or_else(|| DeliveryError::permanent("the desk link names no contact"))?;
    let theirs = link.desk_conversation_id.as_str();
    let last_key = format!("last:{theirs}");
    if !fresh && (m.attempt > 1 || !known.has(theirs)) {
        let last = ctx.kv_get(&last_key).await?;
        let (last_delivery, last_id) = last
            .as_deref()
            .and_then(|v| v.split_once(' '))
            .unwrap_or(("", ""));
        if last_delivery == m.delivery_id {
            known.set(theirs, true);
            return Ok(());
        }
        let floor = numeric(last_id);
        let listed = client.messages(&ctx.http, source, theirs).await?;
        let landed = listed.iter().find(|x| {
            let id = x.id.to_string();
            x.message_type.is_none_or(|t| t == MessageType::Incoming)
                && x.content.as_deref() == Some(content.as_str())
                && match (floor, numeric(&id)) {
                    (Some(f), Some(n)) => n > f,
                    _ => id != last_id,
                }
        });
        if let Some(found) = landed {
            tracing::info!(
                delivery = m.delivery_id,
                "the message had reached the desk before; not posting it again"
            );
            record(ctx, &last_key, m, found).await?;
            known.set(theirs, true);
            return Ok(());
        }
    }
    known.set(theirs, false);
    let posted = client
        .create_message(&ctx.http, source, theirs, &content, &m.delivery_id)
        .await?;
    record(ctx, &last_key, m, &posted).await?;
    known.set(theirs, true);
    Ok(())
}

async fn record(
    ctx: &ServiceContext,
    key: &str,
    m: &Mirror,
    posted: &MessageAnswer,
) -> Result<(), DeliveryError> {
    ctx.kv_put(key, &format!("{} {}", m.delivery_id, posted.id))
        .await?;
    Ok(())
}

/// Creates (or, after a crash, finds) the desk's contact and conversation for ours and
/// stores the link.
async fn open(
    client: &Client,
    ctx: &ServiceContext,
    conversation: &Conversation,
) -> Result<DeskLink, DeliveryError> {
    let contact_key = format!("contact:{}", conversation.contact.id);
    let (source, known) = match ctx.kv_get(&contact_key).await? {
        Some(s) => (s, true),
        None => {
            let s = client
                .create_contact(&ctx.http, &conversation.contact)
                .await?;
            ctx.kv_put(&contact_key, &s).await?;
            (s, false)
        }
    };
    let mut adopted = None;
    if known {
        // A conversation created before a crash whose link was never stored: the only
        // desk conversations of this contact are ours, and every other one is linked.
        for c in client.conversations(&ctx.http, &source).await?.iter().rev() {
            let id = c.id.to_string();
            if ctx.link_lookup(&id).await?.is_none() {
                adopted = Some(id);
                break;
            }
        }
    }
    let theirs = match adopted {
        Some(id) => id,
        None => {
            client
                .create_conversation(&ctx.http, &source, &conversation.id)
                .await?
        }
    };
    let link = DeskLink {
        conversation_id: conversation.id.clone(),
        desk_conversation_id: theirs,
        desk_contact_id: Some(source),
    };
    ctx.link_put(link.clone()).await?;
    Ok(link)
}

/// A `/v1` agent's or a bot's reply, as an outgoing message (application API only).
async fn outgoing(
    client: &Client,
    known: &Known,
    ctx: &ServiceContext,
    m: &Mirror,
) -> Result<(), DeliveryError> {
    if !client.has_app_api() {
        return Ok(());
    }
    let (Some(link), Some(content)) = (
        ctx.link_get(&m.conversation.id).await?,
        content_of(&m.message),
    ) else {
        return Ok(());
    };
    let theirs = link.desk_conversation_id.as_str();
    post_marked(
        client,
        known,
        ctx,
        theirs,
        &content,
        false,
        &m.delivery_id,
        m.attempt,
    )
    .await
}

/// Tells the desk that one of its conversation's replies did not reach the contact, as
/// a private note (application API only).
pub async fn status(
    client: &Client,
    known: &Known,
    ctx: &ServiceContext,
    delivery: &EventDelivery,
) -> Result<(), DeliveryError> {
    let EventData::MessageStatus { message } = &delivery.event.data else {
        return Ok(());
    };
    if message.status != MessageStatus::Failed || !client.has_app_api() {
        return Ok(());
    }
    let Some(link) = ctx.link_get(&message.conversation_id).await? else {
        return Ok(());
    };
    let reason = message
        .error
        .as_deref()
        .unwrap_or("the channel gave no reason");
    let note = format!("not delivered: {reason}");
    let theirs = link.desk_conversation_id.as_str();
    post_marked(
        client,
        known,
        ctx,
        theirs,
        &note,
        true,
        &delivery.delivery_id,
        delivery.attempt,
    )
    .await
}

/// Posts through the application API with [`MARKER`] = `id`, unless a listing before an
/// uncertain attempt shows it landed already.
#[allow(
    clippy::too_many_arguments,
    reason = "one private helper, called twice"
)]
async fn post_marked(
    client: &Client,
    known: &Known,
    ctx: &ServiceContext,
    theirs: &str,
    content: &str,
    private: bool,
    id: &str,
    attempt: u32,
) -> Result<(), DeliveryError> {
    let scope = format!("app:{theirs}");
    if attempt > 1 || !known.has(&scope) {
        let listed = client.app_messages(&ctx.http, theirs).await?;
        let mine = |x: &MessageAnswer| {
            x.content_attributes
                .as_ref()
                .and_then(|a| a.get(MARKER))
                .and_then(|v| v.as_str())
                == Some(id)
        };
        if listed.iter().any(mine) {
            known.set(&scope, true);
            return Ok(());
        }
    }
    known.set(&scope, false);
    client
        .app_message(&ctx.http, theirs, content, private, json!({ MARKER: id }))
        .await?;
    known.set(&scope, true);
    Ok(())
}
