//! The running `intercom` service: notifications in, catch-up polling, replies out as
//! admin comments.

use async_trait::async_trait;
use serde_json::json;
use switchboard_core::{
    ConnState, Connector, ConnectorError, Delivered, DeliveryError, HookError, HookRequest,
    HookResponse, OutboundMessage, ServiceContext,
};

use crate::catchup::{self, Seen};
use crate::client::{ApiError, Client};
use crate::config::IntercomParams;
use crate::html::text_to_html;
use crate::payload::Conversation;

/// The spec's limit on `attachment_urls` per reply.
const MAX_ATTACHMENTS: usize = 10;

/// A running `intercom` service.
#[derive(Debug)]
pub struct IntercomConnector {
    params: IntercomParams,
    client: Client,
    /// Kept across restarts of `run` so a reconnect does not refetch what was read.
    seen: tokio::sync::Mutex<Seen>,
}

impl IntercomConnector {
    /// Builds from validated params.
    pub fn new(params: IntercomParams) -> Result<Self, String> {
        let client = Client::new(params.base(), params.access_token.clone())?;
        Ok(IntercomConnector {
            params,
            client,
            seen: Default::default(),
        })
    }

    /// The reply body the spec documents for an admin comment.
    fn reply_body(&self, out: &OutboundMessage) -> Result<serde_json::Value, DeliveryError> {
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
            "admin_id": self.params.assignee_id.0,
            "body": text_to_html(text),
        });
        if !urls.is_empty() {
            body["attachment_urls"] = json!(urls);
        }
        Ok(body)
    }

    /// The new part's id in a reply answer (the whole conversation): the last part by
    /// our admin, else the last part.
    fn new_part_id(&self, answer: serde_json::Value) -> Option<String> {
        if answer.get("type").and_then(|t| t.as_str()) == Some("conversation_part") {
            return answer.get("id").and_then(id_text);
        }
        let conv: Conversation = serde_json::from_value(answer).ok()?;
        let parts = conv.conversation_parts?.conversation_parts;
        let ours = parts.iter().rev().find(|p| {
            p.author.as_ref().is_some_and(|a| {
                a.kind.as_deref() == Some("admin")
                    && a.id
                        .as_ref()
                        .is_some_and(|i| i.0 == self.params.assignee_id.0)
            })
        });
        ours.or(parts.last())
            .map(|p| p.id.0.clone())
            .filter(|id| !id.is_empty())
    }
}

fn id_text(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

#[async_trait]
impl Connector for IntercomConnector {
    /// Polls for missed messages; `connected` once a pass has succeeded, so the state
    /// says whether the API answers with our credentials.
    async fn run(&self, ctx: &ServiceContext) -> Result<(), ConnectorError> {
        let mut seen = self.seen.lock().await;
        loop {
            match catchup::pass(&self.client, ctx, &mut seen).await {
                Ok(_) => ctx.set_state(ConnState::Connected),
                Err(_) if ctx.shutdown.is_cancelled() => return Ok(()),
                Err(e) => return Err(e),
            }
            tokio::select! {
                _ = tokio::time::sleep(self.params.poll_interval.0) => {}
                _ = ctx.shutdown.cancelled() => return Ok(()),
            }
        }
    }

    async fn handle_webhook(
        &self,
        ctx: &ServiceContext,
        req: HookRequest,
    ) -> Result<HookResponse, HookError> {
        crate::webhook::handle(&self.params, ctx, req).await
    }

    async fn deliver_message(
        &self,
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
        let body = self.reply_body(out)?;
        match self.client.reply(ctx, conversation_id, &body).await {
            Ok(answer) => Ok(Delivered::sent(self.new_part_id(answer))),
            Err(ApiError::Decode(e)) => {
                // Accepted (2xx) with a body we cannot read: sent, without its id. Retrying
                // would post the reply twice.
                tracing::warn!(error = %e, "Intercom accepted a reply with an unreadable answer");
                Ok(Delivered::sent(None))
            }
            Err(e) => Err(e.into_delivery()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connector() -> IntercomConnector {
        let params: IntercomParams = serde_json::from_value(json!({
            "app_id": "a86dr8yl", "access_token": "tok", "assignee_id": 991267696,
            "client_secret": "s"
        }))
        .unwrap();
        IntercomConnector::new(params).unwrap()
    }

    #[test]
    fn the_new_part_is_ours_and_last() {
        let c = connector();
        let answer = json!({
            "type": "conversation", "id": "525",
            "conversation_parts": {"conversation_parts": [
                {"id": "130", "part_type": "comment", "author": {"type": "admin", "id": "991267696"}},
                {"id": "131", "part_type": "comment", "author": {"type": "user", "id": "u"}},
                {"id": "133", "part_type": "comment", "author": {"type": "admin", "id": "991267696"}},
                {"id": "134", "part_type": "assignment", "author": {"type": "bot", "id": "1"}}
            ]}
        });
        assert_eq!(c.new_part_id(answer).as_deref(), Some("133"));
        let no_parts = json!({"type": "conversation", "id": "525"});
        assert_eq!(c.new_part_id(no_parts), None);
        let part = json!({"type": "conversation_part", "id": 158});
        assert_eq!(c.new_part_id(part).as_deref(), Some("158"));
    }
}
