//! Rooms: mirroring contacts' messages into them, answers out of them (live and caught
//! up after downtime), and the webhook subscriptions that bring the answers.
//!
//! - **Room per conversation.** Labelled `switchboard-<our conversation id>`: before
//!   creating one, the label is looked up, so a crash between "room created" and "link
//!   stored" adopts the room instead of opening a second.
//! - **Messages.** The messages API has no idempotency key. Each post's uuid is kept
//!   (`last:{room}`); a retry first reads the room and takes a visitor message with the
//!   same text after the last kept one as this one.
//! - **Answers** are keyed by their uuid (`msg-<uuid>`), so a webhook and the catch-up
//!   that both see one store it once; `seen:{room}` keeps the newest `sent_at`.

use switchboard_core::{
    Author, AuthorType, DeliveryError, DeskLink, DeskReply, Direction, HookError, HostError,
    Mirror, ServiceContext,
};

use crate::client::Client;
use crate::payload::Message;

/// The events we subscribe to.
pub const EVENTS: [&str; 2] = ["message.added", "chat.added"];

/// The label of our conversation's room.
pub fn label(conversation_id: &str) -> String {
    format!("switchboard-{conversation_id}")
}

/// Mirrors a contact's message into its conversation's room; see the module docs.
/// Replies of others (`/v1` agents) have no place in the room and are skipped.
pub async fn mirror(
    client: &Client,
    ctx: &ServiceContext,
    m: &Mirror,
) -> Result<(), DeliveryError> {
    if m.message.direction != Direction::Inbound {
        return Ok(());
    }
    let Some(text) = m.message.text_with_links() else {
        return Ok(());
    };
    let contact = &m.conversation.contact;
    let room = match ctx.link_get(&m.conversation.id).await? {
        Some(link) => link.desk_conversation_id,
        None => {
            let label = label(&m.conversation.id);
            let room = match client.room(&ctx.http, &label).await? {
                Some(r) => r,
                None => {
                    let name = contact
                        .name
                        .clone()
                        .unwrap_or_else(|| format!("Contact {}", contact.id));
                    client.create_room(&ctx.http, &label, &name).await?
                }
            };
            ctx.link_put(DeskLink {
                conversation_id: m.conversation.id.clone(),
                desk_conversation_id: room.uuid.clone(),
                desk_contact_id: None,
            })
            .await?;
            room.uuid
        }
    };
    let last_key = format!("last:{room}");
    if m.attempt > 1 {
        let last = ctx.kv_get(&last_key).await?;
        if let Some(found) = client.room(&ctx.http, &label(&m.conversation.id)).await? {
            let after = match &last {
                Some(l) => found
                    .messages
                    .iter()
                    .position(|x| &x.uuid == l)
                    .map_or(0, |i| i + 1),
                None => 0,
            };
            if let Some(x) = found.messages[after.min(found.messages.len())..]
                .iter()
                .find(|x| !x.is_support_sender && x.body.as_deref() == Some(text.as_str()))
            {
                tracing::info!(
                    delivery = m.delivery_id,
                    "the message had reached the room; not posting it again"
                );
                ctx.kv_put(&last_key, &x.uuid).await?;
                return Ok(());
            }
        }
    }
    let nickname = contact
        .name
        .clone()
        .unwrap_or_else(|| format!("Contact {}", contact.id));
    let posted = client
        .post_message(&ctx.http, &room, &text, &nickname, contact.email.as_deref())
        .await?;
    ctx.kv_put(&last_key, &posted.uuid).await?;
    Ok(())
}

/// Stores an answer of room `room` as the conversation's outbound message (once per
/// uuid); one after a handoff is dropped. `Ok(false)` when the room is not ours.
pub async fn answer(ctx: &ServiceContext, room: &str, m: &Message) -> Result<bool, HookError> {
    let Some(link) = ctx.link_lookup(room).await? else {
        return Ok(false);
    };
    let reply = DeskReply {
        conversation_id: link.conversation_id,
        text: m.body.clone(),
        attachments: vec![],
        author: Author {
            kind: AuthorType::Bot,
            name: m.nickname.clone().filter(|n| !n.trim().is_empty()),
        },
        idempotency_key: format!("msg-{}", m.uuid),
    };
    match ctx.post_reply(reply).await {
        Ok(_) => {}
        Err(HostError::HandedOff(why)) => {
            tracing::debug!(%why, "the bot answered after the handoff; dropped");
        }
        Err(e) => return Err(e.into()),
    }
    if let Some(at) = m.sent_at {
        let key = format!("seen:{room}");
        let newer = ctx
            .kv_get(&key)
            .await?
            .and_then(|s| s.parse::<jiff::Timestamp>().ok())
            .is_none_or(|seen| at > seen);
        if newer {
            ctx.kv_put(&key, &at.to_string()).await?;
        }
    }
    Ok(true)
}

/// Creates the subscriptions to [`EVENTS`] at `target` that are missing (none twice).
/// Returns how many it created.
pub async fn subscribe(
    client: &Client,
    ctx: &ServiceContext,
    target: &str,
) -> Result<usize, DeliveryError> {
    let have = client.webhooks(&ctx.http).await?;
    let mut created = 0;
    for event in EVENTS {
        if !have.iter().any(|w| w.event == event && w.target == target) {
            client.create_webhook(&ctx.http, event, target).await?;
            created += 1;
        }
    }
    Ok(created)
}

/// The answers of our open rooms newer than each room's `seen:` cursor, in `sent_at`
/// order. Returns how many it stored.
pub async fn catch_up(client: &Client, ctx: &ServiceContext) -> Result<usize, DeliveryError> {
    let mut stored = 0;
    for room in client.rooms(&ctx.http).await? {
        let Some(link) = ctx.link_lookup(&room.uuid).await? else {
            continue;
        };
        // Only rooms whose link is live (their conversation is open here).
        if ctx
            .link_get(&link.conversation_id)
            .await?
            .is_none_or(|l| l.desk_conversation_id != room.uuid)
        {
            continue;
        }
        let messages = if room.messages.is_empty() {
            let label = room
                .label
                .clone()
                .unwrap_or_else(|| label(&link.conversation_id));
            client
                .room(&ctx.http, &label)
                .await?
                .map(|r| r.messages)
                .unwrap_or_default()
        } else {
            room.messages
        };
        let seen = ctx
            .kv_get(&format!("seen:{}", room.uuid))
            .await?
            .and_then(|s| s.parse::<jiff::Timestamp>().ok());
        let mut missed: Vec<Message> = messages
            .into_iter()
            .filter(|m| {
                m.is_support_sender && m.body.as_deref().is_some_and(|b| !b.trim().is_empty())
            })
            .filter(|m| match (seen, m.sent_at) {
                (Some(s), Some(at)) => at > s,
                _ => true, // the uuid deduplicates what has no time
            })
            .collect();
        missed.sort_by_key(|m| m.sent_at);
        for m in missed {
            answer(ctx, &room.uuid, &m)
                .await
                .map_err(|e| DeliveryError::transient(e.to_string()))?;
            stored += 1;
        }
    }
    Ok(stored)
}
