//! The [`Connector`] of a `haptik` service: its hook (the bot's and agents' answers,
//! handoffs, completions) and its desk side (contacts' messages to the bot).

use async_trait::async_trait;
use http::Method;
use serde_json::json;
use switchboard_core::{
    Author, AuthorType, Connector, DeliveryError, Desk, DeskLink, DeskReply, Direction,
    EventDelivery, EventSink, HookAdmission, HookError, HookHead, HookRequest, HookResponse, Hooks,
    HostError, Mirror, Secret, ServiceContext,
};

use crate::client::Client;
use crate::config::HaptikParams;
use crate::payload::Sender;
use crate::webhook::{self, Action};

/// A running `haptik` bot desk.
#[derive(Debug)]
pub struct HaptikConnector {
    client: Client,
    hook_token: Secret,
    team_name: Option<String>,
}

impl HaptikConnector {
    /// A connector for validated `params`.
    pub fn new(params: &HaptikParams) -> Self {
        HaptikConnector {
            client: Client::new(params),
            hook_token: params.hook_token.clone(),
            team_name: params.team_name.clone(),
        }
    }

    /// Posts an answer as the conversation's outbound message; one that comes after a
    /// handoff is dropped (and acknowledged: Haptik must not retry it).
    async fn answer(
        &self,
        ctx: &ServiceContext,
        reply: DeskReply,
    ) -> Result<&'static str, HookError> {
        match ctx.post_reply(reply).await {
            Ok(posted) if posted.created => Ok("an answer, queued for the contact"),
            Ok(_) => Ok("an answer already stored"),
            Err(HostError::HandedOff(why)) => {
                tracing::debug!(%why, "the bot answered after the handoff; dropped");
                Ok("an answer after the handoff, dropped")
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The answers of a pinned chat's history that never reached us (a webhook Haptik
    /// gave up on), in Haptik's order; Haptik's message ids deduplicate them against
    /// the webhooks' (the same key).
    async fn import_history(
        &self,
        ctx: &ServiceContext,
        conversation_id: &str,
        user_name: &str,
        conversation_no: &str,
    ) -> Result<usize, HookError> {
        let history = match self
            .client
            .chat_history(&ctx.http, user_name, conversation_no)
            .await
        {
            Ok(h) => h,
            Err(e) => {
                // The handoff matters more than the missing answers: go on without.
                tracing::warn!(error = %e, "chat history unavailable; handing off without it");
                return Ok(0);
            }
        };
        let mut messages = history.chat_json;
        messages.sort_by_key(|m| (m.time(), m.message_id.to_string().parse::<i64>().ok()));
        let mut imported = 0;
        for m in messages {
            let (kind, name) = match m.sender() {
                Sender::User => continue, // the contact's: we sent it there
                Sender::Bot => (AuthorType::Bot, None),
                Sender::Agent(name) => (
                    AuthorType::Agent,
                    Some(name).filter(|n| !n.trim().is_empty()),
                ),
            };
            let Some(text) = m.text.clone().filter(|t| !t.trim().is_empty()) else {
                continue;
            };
            let Some(id) = m.message_id.non_blank() else {
                continue;
            };
            let reply = DeskReply {
                conversation_id: conversation_id.to_owned(),
                text: Some(text),
                attachments: vec![],
                author: Author { kind, name },
                idempotency_key: format!("msg-{id}"),
            };
            if ctx.post_reply(reply).await.is_ok_and(|p| p.created) {
                imported += 1;
            }
        }
        Ok(imported)
    }

    async fn act(&self, ctx: &ServiceContext, action: Action) -> Result<&'static str, HookError> {
        let conversation = |auth_id: String| async move {
            Ok::<_, HookError>(ctx.link_lookup(&auth_id).await?.map(|l| l.conversation_id))
        };
        match action {
            Action::Reply {
                auth_id,
                message_id,
                text,
                kind,
                name,
            } => {
                let Some(conversation_id) = conversation(auth_id).await? else {
                    return Ok("an answer to a user switchboard did not send");
                };
                let reply = DeskReply {
                    conversation_id,
                    text: Some(text),
                    attachments: vec![],
                    author: Author { kind, name },
                    idempotency_key: format!("msg-{message_id}"),
                };
                self.answer(ctx, reply).await
            }
            Action::Pinned { auth_id, history } => {
                let Some(conversation_id) = conversation(auth_id).await? else {
                    return Ok("a pinned chat of a user switchboard did not send");
                };
                if self.team_name.is_some() {
                    // Haptik's own team has it: its agents answer through `message`.
                    return Ok("a chat pinned to Haptik's own team; it stays here");
                }
                if let Some((user_name, number)) = &history {
                    let n = self
                        .import_history(ctx, &conversation_id, user_name, number)
                        .await?;
                    if n > 0 {
                        tracing::info!(answers = n, "imported answers from the chat history");
                    }
                }
                Ok(match ctx.hand_off(&conversation_id, "chat_pinned").await? {
                    Some(_) => "a pinned chat, handed off",
                    None => "a pinned chat already handed off",
                })
            }
            Action::Complete { auth_id } => Ok(match ctx.close_conversation(&auth_id).await? {
                Some(_) => "a completed chat, closed",
                None => "a completion of no open chat of ours",
            }),
            Action::Ignore(why) => Ok(why),
        }
    }
}

#[async_trait]
impl Connector for HaptikConnector {
    fn hooks(&self) -> Option<&dyn Hooks> {
        Some(self)
    }

    fn desk(&self) -> Option<&dyn Desk> {
        Some(self)
    }

    fn events(&self) -> Option<&dyn EventSink> {
        Some(self)
    }
}

#[async_trait]
impl Hooks for HaptikConnector {
    fn authorize_hook(
        &self,
        _ctx: &ServiceContext,
        head: &HookHead,
    ) -> Result<HookAdmission, HookError> {
        if head.method != Method::POST {
            return Err(HookError::MethodNotAllowed);
        }
        webhook::authorize(&self.hook_token, head)?;
        Ok(HookAdmission::Signed)
    }

    async fn handle_webhook(
        &self,
        ctx: &ServiceContext,
        req: HookRequest,
    ) -> Result<HookResponse, HookError> {
        if req.head.method != Method::POST {
            return Err(HookError::MethodNotAllowed);
        }
        webhook::authorize(&self.hook_token, &req.head)?;
        let action = webhook::parse(&req.body)?;
        let outcome = self.act(ctx, action).await?;
        tracing::debug!(outcome, "haptik webhook");
        Ok(HookResponse::json(&json!({ "ok": true })))
    }
}

#[async_trait]
impl Desk for HaptikConnector {
    /// A contact's message goes to the bot as the user `auth_id` = our contact id (the
    /// link, desk conversation = that id, is stored first). Replies of others (`/v1`
    /// agents) have no place at Haptik and are skipped. The Log Message API has no
    /// idempotency key: a retry after an unanswered attempt may log the message twice.
    async fn mirror(&self, ctx: &ServiceContext, m: &Mirror) -> Result<(), DeliveryError> {
        if m.message.direction != Direction::Inbound {
            return Ok(());
        }
        let Some(text) = m.message.text_with_links() else {
            return Ok(());
        };
        let auth_id = m.conversation.contact.id.clone();
        if ctx.link_get(&m.conversation.id).await?.is_none() {
            ctx.link_put(DeskLink {
                conversation_id: m.conversation.id.clone(),
                desk_conversation_id: auth_id.clone(),
                desk_contact_id: Some(auth_id.clone()),
            })
            .await?;
        }
        self.client.log_message(&ctx.http, &auth_id, &text).await
    }
}

#[async_trait]
impl EventSink for HaptikConnector {
    /// A failed answer's status: the bot has no place for it.
    async fn deliver_event(
        &self,
        _ctx: &ServiceContext,
        _delivery: &EventDelivery,
    ) -> Result<(), DeliveryError> {
        Ok(())
    }
}
