//! Handoffs (`migrations/0007_handoff.sql`): a conversation moves from one desk (a bot)
//! to another (human agents), or to switchboard's own agents, in one transaction that
//! records the move, appends `conversation.handoff` and queues the transcript so far for
//! the new desk, ahead of anything later in the conversation's queue. The triggers —
//! `POST /v1/conversations/{id}/handoff`, a bot platform's event, `handoff_keywords` and
//! the `handoff_after` timer — all end here.

use switchboard_core::{Conversation, EventData, HandedOff};

use super::error::StoreError;
use super::outbox::OutboxKind;
use super::rows::ConversationRow;
use super::writer::WriteCx;

/// Most due `handoff_after` timers one housekeeping pass fires (the rest wait a pass).
const DUE_BATCH: i64 = 100;

/// What triggered a handoff, as `conversation.handoff` names it in `reason`.
pub mod reason {
    /// `POST /v1/conversations/{id}/handoff`.
    pub const API: &str = "api";
    /// A contact message contained one of the desk's `handoff_keywords`.
    pub const KEYWORD: &str = "keyword";
    /// The desk was silent for `handoff_after` after a contact message.
    pub const TIMEOUT: &str = "timeout";
}

impl WriteCx<'_> {
    /// The desk that answers `conv` now: the one a handoff gave it, else its channel's.
    pub(super) fn current_desk(&self, conv: &ConversationRow) -> Option<String> {
        if conv.handed_off != 0 {
            conv.desk.clone()
        } else {
            self.routes.desk_of(&conv.service_id).map(str::to_owned)
        }
    }
}

/// A handoff asked for.
#[derive(Debug, Clone)]
pub struct Request {
    /// Our conversation.
    pub conversation_id: i64,
    /// Only a conversation of this organization (an API caller's).
    pub organization: Option<String>,
    /// The new desk; `None` for switchboard's own agents.
    pub to: Option<String>,
    /// Only when the conversation is at this desk now (a desk handing off its own
    /// conversation); otherwise nothing happens and `None` is returned.
    pub only_from: Option<String>,
    /// `conversation.handoff`'s `reason`.
    pub reason: String,
}

/// Moves a conversation to another desk; see the module docs. `Ok(None)` when
/// [`Request::only_from`] is not the conversation's desk; a conversation already at
/// `to` is a conflict.
pub fn hand_off(
    cx: &mut WriteCx<'_>,
    req: &Request,
) -> Result<Option<(Conversation, HandedOff)>, StoreError> {
    let conv = cx
        .conversation("c.id = ?", &[&req.conversation_id])?
        .filter(|c| {
            req.organization
                .as_deref()
                .is_none_or(|o| o == c.organization)
        })
        .ok_or_else(|| StoreError::NotFound("conversation".into()))?;
    let from = cx.current_desk(&conv);
    if req.only_from.is_some() && req.only_from != from {
        return Ok(None);
    }
    if from == req.to {
        return Err(StoreError::Conflict(format!(
            "the conversation is already at {}",
            req.to
                .as_deref()
                .unwrap_or("switchboard's own agents (api)")
        )));
    }
    let id = conv.id;
    cx.db.execute(
        "UPDATE conversations SET desk_id = ?1, handed_off = 1, handoff_due_at = NULL, \
             updated_at = ?2 WHERE id = ?3",
        &[&req.to, &cx.now, &id],
    )?;
    cx.db.execute(
        "INSERT INTO handoffs (conversation_id, from_desk, to_desk, reason, created_at) \
             VALUES (?, ?, ?, ?, ?)",
        &[&id, &from, &req.to, &req.reason, &cx.now],
    )?;
    let row = cx
        .conversation("c.id = ?", &[&id])?
        .ok_or_else(|| StoreError::NotFound("conversation".into()))?;
    let (service_id, organization) = (row.service_id.clone(), row.organization.clone());
    let conversation = row.into_conversation();
    cx.append_event(
        &organization,
        Some(&service_id),
        Some(id),
        &EventData::conversation_handoff(&conversation, from.clone(), req.to.clone(), &req.reason),
    )?;
    if let Some(to) = &req.to {
        // The transcript: the contact's messages and the answers (bots', agents'), in
        // the order they were stored. Queued now, so ahead of anything later.
        let ids: Vec<i64> = cx.db.query(
            "SELECT id FROM messages WHERE conversation_id = ? \
                 AND (direction = 'inbound' OR author_type IN ('bot', 'agent')) ORDER BY id",
            &[&id],
            |r| r.get(0),
        )?;
        let queue_key = format!("c{id}");
        for message_id in ids {
            cx.enqueue(to, OutboxKind::Mirror, message_id, &queue_key)?;
        }
    }
    Ok(Some((
        conversation,
        HandedOff {
            from,
            to: req.to.clone(),
        },
    )))
}

/// Whether `text` contains one of `keywords` (lowercased) as whole words.
pub fn has_keyword(text: &str, keywords: &[String]) -> bool {
    if keywords.is_empty() {
        return false;
    }
    let words = |s: &str| -> Vec<String> {
        s.split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .map(str::to_lowercase)
            .collect()
    };
    let text = words(text);
    keywords.iter().any(|k| {
        let k = words(k);
        !k.is_empty() && text.windows(k.len()).any(|w| w == k.as_slice())
    })
}

/// Fires the `handoff_after` timers that are due: each conversation whose desk has not
/// answered in time moves to that desk's `handoff`. Returns how many moved.
pub fn fire_due(cx: &mut WriteCx<'_>) -> Result<usize, StoreError> {
    let due: Vec<i64> = cx.db.query(
        "SELECT id FROM conversations WHERE handoff_due_at IS NOT NULL AND handoff_due_at <= ? \
             ORDER BY handoff_due_at LIMIT ?",
        &[&cx.now, &DUE_BATCH],
        |r| r.get(0),
    )?;
    let mut moved = 0;
    for id in due {
        cx.db.execute(
            "UPDATE conversations SET handoff_due_at = NULL WHERE id = ?",
            &[&id],
        )?;
        let Some(conv) = cx.conversation("c.id = ?", &[&id])? else {
            continue;
        };
        let Some(desk) = cx.current_desk(&conv) else {
            continue;
        };
        let Some(rule) = cx.routes.handoff_of(&desk).filter(|r| r.after.is_some()) else {
            continue; // the desk's handoff_after was removed since
        };
        if conv.status != "open" {
            continue;
        }
        let req = Request {
            conversation_id: id,
            organization: None,
            to: rule.to.clone(),
            only_from: Some(desk),
            reason: reason::TIMEOUT.into(),
        };
        match hand_off(cx, &req) {
            Ok(Some(_)) => moved += 1,
            Ok(None) | Err(StoreError::Conflict(_)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(moved)
}

#[cfg(test)]
mod tests {
    use super::has_keyword;

    #[test]
    fn keywords_match_whole_words_whatever_the_case() {
        let k = vec!["agent".to_owned(), "real person".to_owned()];
        assert!(has_keyword("I want an AGENT, please", &k));
        assert!(has_keyword("a real  Person?", &k));
        assert!(!has_keyword("my agents are fine", &k));
        assert!(!has_keyword("real persons", &k));
        assert!(!has_keyword("anything", &[]));
    }
}
