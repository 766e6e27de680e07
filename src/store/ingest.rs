//! Writes of conversations and messages: inbound messages from providers, agents'
//! replies, and provider receipts moving an outbound message's status. Each runs on the
//! writer thread inside its job's savepoint, so an error leaves nothing behind.

use switchboard_core::{
    Attachment, Author, Conversation, InboundMessage, Ingested, Message, MessageStatus,
    StatusChange,
};

use super::error::StoreError;
use super::outbox::OutboxKind;
use super::rows::{CONVERSATION_COLS, ConversationRow, MESSAGE_COLS, MessageRow, attachments_json};
use super::service::ServiceRef;
use super::sql::Param;
use super::writer::WriteCx;
use switchboard_core::EventData;

/// An agent's or bot's message to store and deliver.
#[derive(Debug, Clone)]
pub struct NewOutbound {
    /// Text.
    pub text: Option<String>,
    /// Files by URL.
    pub attachments: Vec<Attachment>,
    /// Agent, bot or system.
    pub author: Author,
    /// Repeats with the same key return the first message.
    pub idempotency_key: Option<String>,
    /// The desk that posts it (`post_reply`), if a desk does: a desk the conversation
    /// was handed away from has its answer refused ([`StoreError::HandedOff`]), and the
    /// current desk's answer stops the `handoff_after` timer.
    pub from_desk: Option<String>,
}

impl WriteCx<'_> {
    /// The conversation (with its contact and desk) matching `where_sql` over `c`/`k`.
    pub(super) fn conversation(
        &self,
        where_sql: &str,
        args: &[&dyn Param],
    ) -> Result<Option<ConversationRow>, StoreError> {
        let sql = format!(
            "SELECT {CONVERSATION_COLS} FROM conversations c JOIN contacts k ON k.id = c.contact_id WHERE {where_sql}"
        );
        self.db
            .query_opt(&sql, args, |r| ConversationRow::from_row(r, 0))
    }

    fn message(
        &self,
        where_sql: &str,
        args: &[&dyn Param],
    ) -> Result<Option<MessageRow>, StoreError> {
        let sql = format!("SELECT {MESSAGE_COLS} FROM messages m WHERE {where_sql}");
        self.db
            .query_opt(&sql, args, |r| MessageRow::from_row(r, 0))
    }

    /// Moves an outbound message's status forward (never back) and records the event.
    pub(super) fn advance_status(
        &mut self,
        message_id: i64,
        to: MessageStatus,
        error: Option<&str>,
    ) -> Result<bool, StoreError> {
        let Some(row) = self.message("m.id = ?", &[&message_id])? else {
            return Ok(false);
        };
        let from = MessageStatus::parse(&row.status).unwrap_or(MessageStatus::Pending);
        if !from.can_advance_to(to) {
            return Ok(false);
        }
        let error = if to == MessageStatus::Failed {
            error
        } else {
            None
        };
        self.db.execute(
            "UPDATE messages SET status = ?, error = ?, updated_at = ? WHERE id = ?",
            &[&to.as_str(), &error, &self.now, &message_id],
        )?;
        let organization: String = self.db.query_one(
            "SELECT organization FROM conversations WHERE id = ?",
            &[&row.conversation_id],
            |r| r.get(0),
        )?;
        let conversation_id = row.conversation_id;
        let service_id = row.service_id.clone();
        let mut message = row.into_message();
        message.status = to;
        message.error = error.map(str::to_owned);
        let seq = self.append_event(
            &organization,
            Some(&service_id),
            Some(conversation_id),
            &EventData::message_status(&message),
        )?;
        // The desk learns that a reply did not reach the contact (as it learns the
        // conversation's messages: in its order, durably).
        if to == MessageStatus::Failed
            && let Some(desk) = self
                .conversation("c.id = ?", &[&conversation_id])?
                .and_then(|c| self.current_desk(&c))
            && !self
                .routes
                .subscribers(&organization, "message.status")
                .any(|s| s == desk)
        {
            self.enqueue(
                &desk,
                OutboxKind::Event,
                seq,
                &format!("c{conversation_id}"),
            )?;
        }
        Ok(true)
    }
}

/// Stores inbound messages; see [`switchboard_core::Host::ingest`].
pub fn ingest(
    cx: &mut WriteCx<'_>,
    service: &ServiceRef,
    messages: Vec<InboundMessage>,
) -> Result<Vec<Ingested>, StoreError> {
    let mut out = Vec::with_capacity(messages.len());
    for msg in messages {
        out.push(ingest_one(cx, service, msg)?);
    }
    Ok(out)
}

fn ingest_one(
    cx: &mut WriteCx<'_>,
    service: &ServiceRef,
    msg: InboundMessage,
) -> Result<Ingested, StoreError> {
    let now = cx.now;
    if let Some(existing) = cx.message(
        "m.service_id = ? AND m.direction = 'inbound' AND m.external_id = ?",
        &[&service.id, &msg.external_id],
    )? {
        let conversation = cx
            .conversation("c.id = ?", &[&existing.conversation_id])?
            .ok_or_else(|| StoreError::Internal("message without conversation".into()))?;
        return Ok(Ingested {
            message: existing.into_message(),
            conversation: conversation.into_conversation(),
            created: false,
            conversation_created: false,
        });
    }

    // The contact: created, or updated with whatever the provider now tells us.
    let c = &msg.contact;
    type Stored = (i64, Option<String>, Option<String>, Option<String>);
    let found: Option<Stored> = cx.db.query_opt(
        "SELECT id, name, email, phone FROM contacts WHERE service_id = ? AND external_id = ?",
        &[&service.id, &c.external_id],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
    )?;
    let (contact_id, name, email, phone, contact_created) = match found {
        None => {
            let id = cx.db.insert("INSERT INTO contacts (service_id, external_id, name, email, phone, created_at, updated_at) \
                     VALUES (?, ?, ?, ?, ?, ?, ?)", &[&service.id, &c.external_id, &c.name, &c.email, &c.phone, &now, &now], "id")?;
            (id, c.name.clone(), c.email.clone(), c.phone.clone(), true)
        }
        Some((id, old_name, old_email, old_phone)) => {
            let name = c.name.clone().or_else(|| old_name.clone());
            let email = c.email.clone().or_else(|| old_email.clone());
            let phone = c.phone.clone().or_else(|| old_phone.clone());
            // Written only when the provider told us something new: most messages
            // repeat what is stored, and the row just read says so without a statement.
            if (&name, &email, &phone) != (&old_name, &old_email, &old_phone) {
                cx.db.execute(
                    "UPDATE contacts SET name = ?, email = ?, phone = ?, updated_at = ? WHERE id = ?",
                    &[&name, &email, &phone, &now, &id],
                )?;
            }
            (id, name, email, phone, false)
        }
    };

    // The conversation: the provider's thread, or the contact's open one.
    let existing = match &msg.conversation_external_id {
        Some(ext) => cx.conversation(
            "c.service_id = ? AND c.external_id = ?",
            &[&service.id, ext],
        )?,
        None => cx.conversation(
            "c.contact_id = ? AND c.external_id IS NULL AND c.status = 'open'",
            &[&contact_id],
        )?,
    };
    let (mut conv, conversation_created) = match existing {
        Some(mut row) => {
            if row.status == "closed" {
                // Reopened: it starts over at its channel's desk (a bot, again).
                cx.db.execute(
                    "UPDATE conversations SET status = 'open', handed_off = 0, \
                         handoff_due_at = NULL WHERE id = ?",
                    &[&row.id],
                )?;
                row.status = "open".into();
                row.handed_off = 0;
            }
            (row, false)
        }
        None => {
            if !service.opens_conversations {
                return Err(StoreError::Conflict(format!(
                    "service {} is being archived and opens no new conversations",
                    service.id
                )));
            }
            let id = cx.db.insert("INSERT INTO conversations (service_id, organization, contact_id, external_id, status, created_at, updated_at) \
                     VALUES (?, ?, ?, ?, 'open', ?, ?)", &[&service.id, &service.organization, &contact_id, &msg.conversation_external_id, &now, &now], "id")?;
            let row = ConversationRow {
                id,
                service_id: service.id.clone(),
                organization: service.organization.clone(),
                external_id: msg.conversation_external_id.clone(),
                status: "open".into(),
                created_at: now,
                updated_at: now,
                last_message_at: None,
                contact_id,
                contact_external_id: c.external_id.clone(),
                contact_name: name.clone(),
                contact_email: email.clone(),
                contact_phone: phone.clone(),
                desk: None,
                desk_external_id: None,
                handed_off: 0,
            };
            (row, true)
        }
    };
    conv.contact_name = name;
    conv.contact_email = email;
    conv.contact_phone = phone;
    let desk = cx.current_desk(&conv);
    if conv.handed_off == 0
        && let Some(desk) = &desk
        && conv.desk.as_ref() != Some(desk)
    {
        // Routed (again, after a reload changed the channel's desk): the new desk's
        // link, once it makes one, answers the conversation.
        cx.db.execute(
            "UPDATE conversations SET desk_id = ? WHERE id = ?",
            &[&desk, &conv.id],
        )?;
        conv.desk = Some(desk.clone());
        conv.desk_external_id = None;
    }

    let message_id = cx.db.insert("INSERT INTO messages (conversation_id, service_id, direction, external_id, text, attachments, \
             author_type, author_name, status, created_at, updated_at) \
             VALUES (?, ?, 'inbound', ?, ?, ?, 'contact', ?, 'received', ?, ?)", &[&conv.id, &service.id, &msg.external_id, &msg.text, &(attachments_json(&msg.attachments)), &conv.contact_name, &now, &now], "id")?;
    cx.db.execute(
        "UPDATE conversations SET updated_at = ?1, last_message_at = ?1 WHERE id = ?2",
        &[&now, &conv.id],
    )?;
    // A message with one of the desk's handoff keywords goes to the next desk, with the
    // transcript it ends (below, once its own events are appended).
    let rule = desk
        .as_deref()
        .and_then(|d| cx.routes.handoff_of(d))
        .cloned();
    let keyword = rule.as_ref().filter(|r| {
        msg.text
            .as_deref()
            .is_some_and(|t| super::handoff::has_keyword(t, &r.keywords))
    });
    if let Some(desk) = &desk
        && keyword.is_none()
    {
        // The desk's copy is due in the same transaction as the message itself, in the
        // conversation's order.
        cx.enqueue(
            desk,
            OutboxKind::Mirror,
            message_id,
            &format!("c{}", conv.id),
        )?;
        if let Some(after) = rule.as_ref().and_then(|r| r.after) {
            // The desk has until then to answer; its first answer clears it.
            cx.db.execute("UPDATE conversations SET handoff_due_at = ? WHERE id = ? AND handoff_due_at IS NULL", &[&(now + after.as_millis() as i64), &conv.id])?;
        }
    }
    let keyword_to = keyword.map(|r| r.to.clone());
    conv.updated_at = now;
    conv.last_message_at = Some(now);

    let conversation = conv.into_conversation();
    let message = MessageRow {
        id: message_id,
        conversation_id: conversation.id.parse().unwrap_or_default(),
        service_id: service.id.clone(),
        direction: "inbound".into(),
        external_id: Some(msg.external_id),
        text: msg.text,
        attachments: attachments_json(&msg.attachments),
        author_type: "contact".into(),
        author_name: conversation.contact.name.clone(),
        status: "received".into(),
        error: None,
        created_at: now,
    }
    .into_message();

    let conv_id = Some(message.conversation_id.parse::<i64>().unwrap_or_default());
    let org = service.organization.as_str();
    if contact_created {
        cx.append_event(
            org,
            Some(&service.id),
            conv_id,
            &EventData::contact_created(&conversation.contact),
        )?;
    }
    if conversation_created {
        cx.append_event(
            org,
            Some(&service.id),
            conv_id,
            &EventData::conversation_created(&conversation),
        )?;
    }
    cx.append_event(
        org,
        Some(&service.id),
        conv_id,
        &EventData::message_created(&message, &conversation),
    )?;
    let mut conversation = conversation;
    if let Some(to) = keyword_to {
        let req = super::handoff::Request {
            conversation_id: message.conversation_id.parse().unwrap_or_default(),
            organization: None,
            to,
            only_from: desk,
            reason: super::handoff::reason::KEYWORD.into(),
        };
        match super::handoff::hand_off(cx, &req) {
            Ok(Some((moved, _))) => conversation = moved,
            // The desk hands off to itself (a misconfiguration check-config refuses).
            Ok(None) | Err(StoreError::Conflict(_)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(Ingested {
        message,
        conversation,
        created: true,
        conversation_created,
    })
}

/// How [`switchboard_core::Host::post_reply`] prefixes the idempotency keys of desk
/// `desk_id`'s replies (keys of different desks and of API clients never meet).
pub fn desk_key_prefix(desk_id: &str) -> String {
    format!("desk:{desk_id}:")
}

/// Stores an outbound message and queues it for its conversation's service. Returns the
/// message and whether it is new (false: the idempotency key was seen before).
pub fn reply(
    cx: &mut WriteCx<'_>,
    organization: Option<&str>,
    conversation_id: i64,
    new: NewOutbound,
) -> Result<(Message, Conversation, bool), StoreError> {
    let now = cx.now;
    let conv = cx
        .conversation("c.id = ?", &[&conversation_id])?
        .filter(|c| organization.is_none_or(|o| o == c.organization))
        .ok_or_else(|| StoreError::NotFound("conversation".into()))?;
    if let Some(key) = &new.idempotency_key
        && let Some(existing) = cx.message(
            "m.conversation_id = ? AND m.idempotency_key = ?",
            &[&conversation_id, key],
        )?
    {
        return Ok((existing.into_message(), conv.into_conversation(), false));
    }
    let current = cx.current_desk(&conv);
    if let Some(poster) = &new.from_desk {
        if conv.handed_off != 0 && current.as_ref() != Some(poster) {
            return Err(StoreError::HandedOff(format!(
                "conversation {conversation_id} was handed off to {}",
                current.as_deref().unwrap_or("switchboard's own agents")
            )));
        }
        if current.as_ref() == Some(poster) {
            cx.db.execute(
                "UPDATE conversations SET handoff_due_at = NULL WHERE id = ?",
                &[&conversation_id],
            )?;
        }
    }
    let attachments = attachments_json(&new.attachments);
    let message_id = cx.db.insert("INSERT INTO messages (conversation_id, service_id, direction, idempotency_key, text, attachments, \
             author_type, author_name, status, created_at, updated_at) \
             VALUES (?, ?, 'outbound', ?, ?, ?, ?, ?, 'pending', ?, ?)", &[&conversation_id, &conv.service_id, &new.idempotency_key, &new.text, &attachments, &new.author.kind.as_str(), &new.author.name, &now, &now], "id")?;

    cx.db.execute(
        "UPDATE conversations SET updated_at = ?1, last_message_at = ?1 WHERE id = ?2",
        &[&now, &conversation_id],
    )?;
    let queue_key = format!("c{conversation_id}");
    cx.enqueue(
        &conv.service_id,
        OutboxKind::Message,
        message_id,
        &queue_key,
    )?;
    // A reply that did not come from the conversation's desk (an API agent, a bot, a
    // system message) is mirrored there too, so that the desk shows the whole thread.
    if let Some(desk) = current {
        let own = desk_key_prefix(&desk);
        if !new
            .idempotency_key
            .as_deref()
            .is_some_and(|k| k.starts_with(&own))
        {
            cx.enqueue(&desk, OutboxKind::Mirror, message_id, &queue_key)?;
        }
    }

    let mut conv = conv;
    conv.updated_at = now;
    conv.last_message_at = Some(now);
    let service_id = conv.service_id.clone();
    let organization = conv.organization.clone();
    let conversation = conv.into_conversation();
    let message = MessageRow {
        id: message_id,
        conversation_id,
        service_id: service_id.clone(),
        direction: "outbound".into(),
        external_id: None,
        text: new.text,
        attachments,
        author_type: new.author.kind.as_str().into(),
        author_name: new.author.name,
        status: "pending".into(),
        error: None,
        created_at: now,
    }
    .into_message();
    cx.append_event(
        &organization,
        Some(&service_id),
        Some(conversation_id),
        &EventData::message_created(&message, &conversation),
    )?;
    Ok((message, conversation, true))
}

pub(super) fn apply_early_receipts(
    cx: &mut WriteCx<'_>,
    service_id: &str,
    external_id: &str,
    message_id: i64,
) -> Result<(), StoreError> {
    let mut receipts: Vec<(String, Option<String>)> = cx.db.query(
        "SELECT status, error FROM early_receipts WHERE service_id = ? AND external_id = ?",
        &[&service_id, &external_id],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    if receipts.is_empty() {
        return Ok(());
    }
    // Apply in lifecycle order so that every step that still moves forward is recorded.
    receipts.sort_by_key(|(s, _)| {
        ["sent", "delivered", "read", "failed"]
            .iter()
            .position(|x| x == s)
    });
    for (status, error) in receipts {
        if let Some(status) = MessageStatus::parse(&status) {
            cx.advance_status(message_id, status, error.as_deref())?;
        }
    }
    cx.db.execute(
        "DELETE FROM early_receipts WHERE service_id = ? AND external_id = ?",
        &[&service_id, &external_id],
    )?;
    Ok(())
}

/// Applies a provider receipt; see [`switchboard_core::Host::update_status`].
pub fn update_status(
    cx: &mut WriteCx<'_>,
    service_id: &str,
    external_id: &str,
    status: MessageStatus,
    error: Option<String>,
) -> Result<StatusChange, StoreError> {
    let found: Option<i64> = cx.db.query_opt("SELECT id FROM messages WHERE service_id = ? AND direction = 'outbound' AND external_id = ?", &[&service_id, &external_id], |r| r.get(0))?;
    match found {
        Some(id) => Ok(if cx.advance_status(id, status, error.as_deref())? {
            StatusChange::Updated
        } else {
            StatusChange::Unchanged
        }),
        None => {
            cx.db.execute(
                "INSERT INTO early_receipts (service_id, external_id, status, error, received_at) \
                     VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                &[&service_id, &external_id, &status.as_str(), &error, &cx.now],
            )?;
            Ok(StatusChange::UnknownMessage)
        }
    }
}

/// Ingests `messages` unless `nonce` was used before; see
/// [`switchboard_core::Host::ingest_once`]. `None` when it was (nothing written).
pub fn ingest_once(
    cx: &mut WriteCx<'_>,
    service: &ServiceRef,
    nonce: &str,
    expires_at: i64,
    messages: Vec<InboundMessage>,
) -> Result<Option<Vec<Ingested>>, StoreError> {
    cx.db.execute(
        "DELETE FROM hook_nonces WHERE service_id = ? AND expires_at < ?",
        &[&service.id, &cx.now],
    )?;
    let taken = cx.db.execute("INSERT INTO hook_nonces (service_id, nonce, expires_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING", &[&service.id, &nonce, &expires_at])?;
    if taken == 0 {
        return Ok(None);
    }
    ingest(cx, service, messages).map(Some)
}

/// Applies a watermark receipt; see [`switchboard_core::Host::apply_watermark`].
/// Messages still `pending` were not handed to the provider, so a watermark cannot be
/// about them, whenever they were stored.
pub fn apply_watermark(
    cx: &mut WriteCx<'_>,
    service_id: &str,
    conversation_external_id: &str,
    status: MessageStatus,
    before_ms: i64,
) -> Result<usize, StoreError> {
    let ids: Vec<i64> = cx.db.query(
        "SELECT m.id FROM messages m JOIN conversations c ON c.id = m.conversation_id \
             WHERE c.service_id = ? AND c.external_id = ? AND m.direction = 'outbound' \
             AND m.status IN ('sent', 'delivered') AND m.created_at <= ? ORDER BY m.id",
        &[&service_id, &conversation_external_id, &before_ms],
        |r| r.get(0),
    )?;
    let mut moved = 0;
    for id in ids {
        if cx.advance_status(id, status, None)? {
            moved += 1;
        }
    }
    Ok(moved)
}

/// Deletes receipts that never matched a message, after a day.
pub fn prune_receipts(cx: &mut WriteCx<'_>) -> Result<(), StoreError> {
    cx.db.execute(
        "DELETE FROM early_receipts WHERE received_at < ?",
        &[&(cx.now - 24 * 3600 * 1000)],
    )?;
    Ok(())
}
