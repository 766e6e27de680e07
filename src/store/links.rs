//! Desk links (`migrations/0003_desk_links.sql`, `0005_desks.sql`): which desk
//! conversation answers which of our conversations. Writes run on the writer thread like every write; reads on the
//! read pool.

use switchboard_core::{DeskLink, EventData};

use super::error::StoreError;
use super::read::Reader;
use super::rows::parse_id;
use super::sql::Row;
use super::writer::WriteCx;

/// Stores `link` for desk `desk_id`: a new desk conversation id is inserted, a known one
/// updated. A desk conversation already linked to another of our conversations (by a
/// link that has not ended), or a conversation of ours that does not exist, is refused. The first link of a
/// conversation to this desk makes it the conversation's desk and appends
/// `conversation.routed`, in the same transaction.
pub fn put(cx: &mut WriteCx<'_>, desk_id: &str, link: &DeskLink) -> Result<(), StoreError> {
    let conversation_id = parse_id(&link.conversation_id)
        .ok_or_else(|| StoreError::NotFound("conversation".into()))?;
    let exists: Option<i64> = cx.db.query_opt(
        "SELECT id FROM conversations WHERE id = ?",
        &[&conversation_id],
        |r| r.get(0),
    )?;
    if exists.is_none() {
        return Err(StoreError::NotFound("conversation".into()));
    }
    let linked: Option<(i64, bool)> = cx.db.query_opt(
        "SELECT conversation_id, ended_at IS NOT NULL FROM desk_links \
             WHERE desk_id = ? AND desk_conversation_id = ?",
        &[&desk_id, &link.desk_conversation_id],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let linked = match linked {
        // A desk whose conversation is per contact (a bot's chat with one user) names
        // it again for the contact's next conversation of ours, once the last ended.
        Some((other, true)) if other != conversation_id => {
            cx.db.execute(
                "DELETE FROM desk_links WHERE desk_id = ? AND desk_conversation_id = ?",
                &[&desk_id, &link.desk_conversation_id],
            )?;
            None
        }
        other => other.map(|(c, _)| c),
    };
    match linked {
        Some(other) if other != conversation_id => Err(StoreError::Conflict(format!(
            "desk conversation {:?} is already linked to conversation {other}",
            link.desk_conversation_id
        ))),
        Some(_) => {
            cx.db.execute(
                "UPDATE desk_links SET desk_contact_id = ?, updated_at = ? \
                     WHERE desk_id = ? AND desk_conversation_id = ?",
                &[
                    &link.desk_contact_id,
                    &cx.now,
                    &desk_id,
                    &link.desk_conversation_id,
                ],
            )?;
            Ok(())
        }
        None => {
            let routed_before: Option<i64> = cx.db.query_opt(
                "SELECT 1 FROM desk_links WHERE desk_id = ? AND conversation_id = ? LIMIT 1",
                &[&desk_id, &conversation_id],
                |r| r.get(0),
            )?;
            cx.db.execute(
                "INSERT INTO desk_links (desk_id, conversation_id, desk_conversation_id, \
                     desk_contact_id, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)",
                &[
                    &desk_id,
                    &conversation_id,
                    &link.desk_conversation_id,
                    &link.desk_contact_id,
                    &cx.now,
                    &cx.now,
                ],
            )?;
            cx.db.execute(
                "UPDATE conversations SET desk_id = ? WHERE id = ?",
                &[&desk_id, &conversation_id],
            )?;
            if routed_before.is_none() {
                let conversation = cx
                    .conversation("c.id = ?", &[&conversation_id])?
                    .ok_or_else(|| StoreError::NotFound("conversation".into()))?;
                let (service_id, organization) = (
                    conversation.service_id.clone(),
                    conversation.organization.clone(),
                );
                let conversation = conversation.into_conversation();
                cx.append_event(
                    &organization,
                    Some(&service_id),
                    Some(conversation_id),
                    &EventData::conversation_routed(&conversation),
                )?;
            }
            Ok(())
        }
    }
}

/// Desk `desk_id` resolved its conversation `desk_conversation_id`: ends the link and
/// closes our conversation (unless it was handed off to another desk, which then
/// decides). Returns the id of our conversation it closed, `None` when no live link has
/// that desk id or the conversation is another desk's now.
pub fn close(
    cx: &mut WriteCx<'_>,
    desk_id: &str,
    desk_conversation_id: &str,
) -> Result<Option<String>, StoreError> {
    let linked: Option<i64> = cx.db.query_opt(
        "SELECT conversation_id FROM desk_links WHERE desk_id = ? AND desk_conversation_id = ? \
             AND ended_at IS NULL",
        &[&desk_id, &desk_conversation_id],
        |r| r.get(0),
    )?;
    let Some(conversation_id) = linked else {
        return Ok(None);
    };
    cx.db.execute("UPDATE desk_links SET ended_at = ?1, updated_at = ?1 WHERE desk_id = ?2 AND desk_conversation_id = ?3", &[&cx.now, &desk_id, &desk_conversation_id])?;
    // A desk the conversation was handed away from (a bot finishing its chat) ends its
    // own part only: the desk that has it now decides when it is over.
    let handed_away = cx
        .conversation("c.id = ?", &[&conversation_id])?
        .is_some_and(|c| c.handed_off != 0 && cx.current_desk(&c).as_deref() != Some(desk_id));
    if handed_away {
        return Ok(None);
    }
    // The contact's next message opens a new conversation (or, for a provider thread,
    // reopens this one); either way the ended link makes the desk open a new one.
    cx.db.execute("UPDATE conversations SET status = 'closed', updated_at = ?1 WHERE id = ?2 AND status = 'open'", &[&cx.now, &conversation_id])?;
    Ok(Some(conversation_id.to_string()))
}

/// Reads `conversation_id, desk_conversation_id, desk_contact_id`.
fn link_of(r: &Row<'_, '_>) -> Result<DeskLink, StoreError> {
    Ok(DeskLink {
        conversation_id: r.get::<i64>(0)?.to_string(),
        desk_conversation_id: r.get(1)?,
        desk_contact_id: r.get(2)?,
    })
}

/// Desk `desk_id`'s latest link for our conversation `conversation_id` that has not ended.
pub async fn get(
    reader: &Reader,
    desk_id: &str,
    conversation_id: &str,
) -> Result<Option<DeskLink>, StoreError> {
    let Some(id) = parse_id(conversation_id) else {
        return Ok(None);
    };
    let desk_id = desk_id.to_owned();
    reader
        .run(move |db| {
            db.query_opt(
                "SELECT conversation_id, desk_conversation_id, desk_contact_id FROM desk_links \
                 WHERE desk_id = ? AND conversation_id = ? AND ended_at IS NULL ORDER BY id DESC LIMIT 1",
                &[&desk_id, &id],
                link_of,
            )
        })
        .await
}

/// Desk `desk_id`'s link for its conversation `desk_conversation_id`.
pub async fn lookup(
    reader: &Reader,
    desk_id: &str,
    desk_conversation_id: &str,
) -> Result<Option<DeskLink>, StoreError> {
    let (desk_id, theirs) = (desk_id.to_owned(), desk_conversation_id.to_owned());
    reader
        .run(move |db| {
            db.query_opt(
                "SELECT conversation_id, desk_conversation_id, desk_contact_id FROM desk_links \
                 WHERE desk_id = ? AND desk_conversation_id = ?",
                &[&desk_id, &theirs],
                link_of,
            )
        })
        .await
}
