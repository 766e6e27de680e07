//! Outbound: an agent's or bot's message as an admin comment
//! (`POST /conversations/{id}/reply`).
//!
//! Intercom's reply endpoint takes no idempotency key, so an attempt whose answer was
//! lost (timeout, reset, a 5xx from a proxy) may have posted the reply anyway. Such
//! attempts are remembered by the message's idempotency key; the retry first reads the
//! conversation and, if our admin's part with the same text appeared since, takes it as
//! the delivery instead of posting twice. Parts already credited to other deliveries are
//! never claimed again, so an agent who says "ok" twice still sends it twice. The memory
//! is per process: after a restart a retry posts again (at least once, never lost).

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use serde_json::json;
use switchboard_core::{
    CredentialWatch, Delivered, DeliveryError, IdString, OutboundMessage, ServiceContext,
};

use crate::client::{ApiError, Client};
use crate::html::{html_to_text, text_to_html};
use crate::payload::Conversation;

/// The spec's limit on `attachment_urls` per reply.
const MAX_ATTACHMENTS: usize = 10;
/// Part ids remembered as credited to a delivery.
const CLAIMED_KEEP: usize = 4096;
/// How long an unknown outcome is worth checking for; the dispatcher gives up by then.
const UNCERTAIN_KEEP_SECS: i64 = 48 * 3600;
/// Allowance for the difference between Intercom's clock and ours.
const CLOCK_SLACK_SECS: i64 = 300;

/// Sends replies as one admin and remembers what it needs to avoid double posts.
#[derive(Debug)]
pub struct Replier {
    admin_id: IdString,
    /// Idempotency key → when (unix seconds, our clock) an attempt with an unknown
    /// outcome started.
    uncertain: Mutex<HashMap<String, i64>>,
    /// Part ids recent deliveries were credited with, newest last.
    claimed: Mutex<VecDeque<String>>,
}

impl Replier {
    /// A replier posting as `admin_id`.
    pub fn new(admin_id: IdString) -> Self {
        Replier {
            admin_id,
            uncertain: Mutex::default(),
            claimed: Mutex::default(),
        }
    }

    /// Delivers one message.
    pub async fn deliver(
        &self,
        client: &Client,
        credentials: &CredentialWatch,
        ctx: &ServiceContext,
        out: &OutboundMessage,
    ) -> Result<Delivered, DeliveryError> {
        let conversation_id = out
            .conversation
            .external_id
            .as_deref()
            .filter(|id| !id.is_empty())
            .ok_or_else(|| {
                DeliveryError::permanent("the conversation has no Intercom conversation id")
            })?;
        let body = self.body(out)?;
        let key = &out.idempotency_key;
        let earlier = self.uncertain.lock().expect("uncertain").get(key).copied();
        if let Some(started) = earlier {
            match self
                .find_posted(client, ctx, conversation_id, &body, started)
                .await
            {
                Ok(Some(part)) => {
                    tracing::info!(part = %part, "an earlier attempt had posted the reply; not posting again");
                    self.settle(key, Some(&part));
                    return Ok(Delivered::sent(Some(part)));
                }
                Ok(None) => {}
                Err(e) => return Err(e.into_delivery(credentials)),
            }
        }
        let started = ctx.clock.now().as_second();
        match client.reply(ctx, conversation_id, &body).await {
            Ok(answer) => {
                let part = self.new_part_id(answer);
                self.settle(key, part.as_deref());
                Ok(Delivered::sent(part))
            }
            Err(ApiError::Decode(e)) => {
                // Accepted (2xx) with an unreadable answer: sent, without its id.
                tracing::warn!(error = %e, "Intercom accepted a reply with an unreadable answer");
                self.settle(key, None);
                Ok(Delivered::sent(None))
            }
            Err(e) => {
                if e.outcome_unknown() {
                    let mut map = self.uncertain.lock().expect("uncertain");
                    map.retain(|_, t| *t > started - UNCERTAIN_KEEP_SECS);
                    map.entry(key.clone()).or_insert(started);
                }
                Err(e.into_delivery(credentials))
            }
        }
    }

    /// The reply body the spec documents for an admin comment.
    fn body(&self, out: &OutboundMessage) -> Result<serde_json::Value, DeliveryError> {
        let text = out.message.text.as_deref().unwrap_or("");
        let urls: Vec<&str> = out
            .message
            .attachments
            .iter()
            .map(|a| a.url.as_str())
            .collect();
        if text.trim().is_empty() && urls.is_empty() {
            return Err(DeliveryError::permanent(
                "nothing to send: no text and no attachments",
            ));
        }
        if urls.len() > MAX_ATTACHMENTS {
            return Err(DeliveryError::permanent(format!(
                "Intercom takes at most {MAX_ATTACHMENTS} attachments per reply, this message has {}",
                urls.len()
            )));
        }
        let mut body = json!({
            "message_type": "comment",
            "type": "admin",
            "admin_id": self.admin_id.0,
            "body": text_to_html(text),
        });
        if !urls.is_empty() {
            body["attachment_urls"] = json!(urls);
        }
        Ok(body)
    }

    /// Forgets an unknown outcome and credits the part, if any.
    fn settle(&self, key: &str, part: Option<&str>) {
        self.uncertain.lock().expect("uncertain").remove(key);
        if let Some(p) = part {
            let mut claimed = self.claimed.lock().expect("claimed");
            claimed.push_back(p.to_owned());
            if claimed.len() > CLAIMED_KEEP {
                claimed.pop_front();
            }
        }
    }

    fn is_ours(&self, author: Option<&crate::payload::PartAuthor>) -> bool {
        author.is_some_and(|a| {
            a.kind.as_deref() == Some("admin")
                && a.id.as_ref().is_some_and(|i| i.0 == self.admin_id.0)
        })
    }

    /// Our admin's part with this body's text, written since `started` and not credited
    /// to another delivery. Attachment-only replies are not matched (Intercom re-hosts
    /// files, so nothing identifies them): they are posted again.
    async fn find_posted(
        &self,
        client: &Client,
        ctx: &ServiceContext,
        conversation_id: &str,
        body: &serde_json::Value,
        started: i64,
    ) -> Result<Option<String>, ApiError> {
        let wanted = html_to_text(body["body"].as_str().unwrap_or("")).text;
        if wanted.is_empty() {
            return Ok(None);
        }
        let conv = client.conversation(ctx, conversation_id).await?;
        let claimed = self.claimed.lock().expect("claimed").clone();
        let parts = conv
            .conversation_parts
            .map(|p| p.conversation_parts)
            .unwrap_or_default();
        Ok(parts
            .into_iter()
            .filter(|p| self.is_ours(p.author.as_ref()))
            .filter(|p| p.created_at.is_none_or(|t| t >= started - CLOCK_SLACK_SECS))
            .filter(|p| !claimed.contains(&p.id.0))
            .find(|p| html_to_text(p.body.as_deref().unwrap_or("")).text == wanted)
            .map(|p| p.id.0))
    }

    /// The new part's id in a reply answer (the whole conversation): the last part by
    /// our admin, else the last part.
    fn new_part_id(&self, answer: serde_json::Value) -> Option<String> {
        if answer.get("type").and_then(|t| t.as_str()) == Some("conversation_part") {
            return match answer.get("id")? {
                serde_json::Value::String(s) => Some(s.clone()),
                serde_json::Value::Number(n) => Some(n.to_string()),
                _ => None,
            };
        }
        let conv: Conversation = serde_json::from_value(answer).ok()?;
        let parts = conv.conversation_parts?.conversation_parts;
        let ours = parts.iter().rev().find(|p| self.is_ours(p.author.as_ref()));
        ours.or(parts.last())
            .map(|p| p.id.0.clone())
            .filter(|id| !id.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_new_part_is_ours_and_last() {
        let r = Replier::new(IdString("991267696".into()));
        let answer = json!({
            "type": "conversation", "id": "525",
            "conversation_parts": {"conversation_parts": [
                {"id": "130", "part_type": "comment", "author": {"type": "admin", "id": "991267696"}},
                {"id": "131", "part_type": "comment", "author": {"type": "user", "id": "u"}},
                {"id": "133", "part_type": "comment", "author": {"type": "admin", "id": "991267696"}},
                {"id": "134", "part_type": "assignment", "author": {"type": "bot", "id": "1"}}
            ]}
        });
        assert_eq!(r.new_part_id(answer).as_deref(), Some("133"));
        let no_parts = json!({"type": "conversation", "id": "525"});
        assert_eq!(r.new_part_id(no_parts), None);
        let part = json!({"type": "conversation_part", "id": 158});
        assert_eq!(r.new_part_id(part).as_deref(), Some("158"));
    }

    #[test]
    fn settled_parts_are_claimed_and_bounded() {
        let r = Replier::new(IdString("1".into()));
        r.uncertain.lock().unwrap().insert("k".into(), 5);
        r.settle("k", Some("p1"));
        assert!(r.uncertain.lock().unwrap().is_empty());
        for i in 0..CLAIMED_KEEP + 10 {
            r.settle("x", Some(&format!("q{i}")));
        }
        let claimed = r.claimed.lock().unwrap();
        assert_eq!(claimed.len(), CLAIMED_KEEP);
        assert!(
            !claimed.contains(&"p1".to_owned()),
            "oldest forgotten first"
        );
    }
}
