//! E-mail threads: which conversation a mail belongs to, and what a reply in a
//! conversation must say to stay in its thread (subject, `In-Reply-To`, `References`).
//!
//! A mail joins the conversation of the nearest message it refers to that is stored
//! (ours, by the Message-Id we generated, or theirs); otherwise it opens the
//! conversation keyed by its thread's root Message-Id. What a reply needs is kept in
//! the service's sync state under [`key`], updated after each mail is committed.

use serde::{Deserialize, Serialize};
use switchboard_core::{HostError, Ingested, ServiceContext};

use crate::webhook::Mail;

/// References kept per thread: the root and the newest, as mail clients keep them.
const KEEP: usize = 20;

/// What replies in one conversation need to stay in its thread.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Thread {
    /// The subject of the thread's first mail we saw.
    pub subject: Option<String>,
    /// Message-Ids of the thread, root first, the contact's latest mail last.
    pub references: Vec<String>,
}

/// The sync-state key of a conversation's thread.
pub fn key(conversation_id: &str) -> String {
    format!("mail_thread:{conversation_id}")
}

/// The sync-state key under which a mail's whole `body-plain` is kept, when it says
/// more than the text stored (quoted history, signature).
pub fn body_key(message_id: &str) -> String {
    format!("mail_body:{message_id}")
}

/// The thread key (`conversation_external_id`) for `mail`.
pub async fn resolve(ctx: &ServiceContext, mail: &Mail) -> Result<String, HostError> {
    for id in mail.referenced() {
        if let Some(conv) = ctx.conversation_of(id).await?
            && let Some(ext) = conv.external_id
        {
            return Ok(ext);
        }
    }
    Ok(mail.root().to_owned())
}

/// Records, after the commit, what a reply to `mail` needs, and its whole body.
pub async fn remember(
    ctx: &ServiceContext,
    stored: &Ingested,
    mail: &Mail,
) -> Result<(), HostError> {
    let k = key(&stored.conversation.id);
    let mut t = load(ctx, &stored.conversation.id)
        .await?
        .unwrap_or_default();
    if t.subject.is_none() {
        t.subject = mail.subject.clone();
    }
    for r in mail
        .references
        .iter()
        .chain(&mail.in_reply_to)
        .chain([&mail.message_id])
    {
        t.references.retain(|x| x != r);
        t.references.push(r.clone());
    }
    if t.references.len() > KEEP {
        // Keep the root: clients thread by it.
        let cut = t.references.len() - (KEEP - 1);
        t.references.drain(1..cut);
    }
    ctx.kv_put(&k, &serde_json::to_string(&t).unwrap_or_default())
        .await?;
    if stored.created
        && let Some(full) = &mail.full_text
    {
        ctx.kv_put(&body_key(&mail.message_id), full).await?;
    }
    Ok(())
}

/// A conversation's thread, if a mail of it was stored.
pub async fn load(
    ctx: &ServiceContext,
    conversation_id: &str,
) -> Result<Option<Thread>, HostError> {
    Ok(ctx
        .kv_get(&key(conversation_id))
        .await?
        .and_then(|v| serde_json::from_str(&v).ok()))
}
