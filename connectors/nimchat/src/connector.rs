//! The [`Connector`] of a `nimchat` service: its hook (desk replies and resolutions), its
//! desk side (mirrors, [`crate::mirror`]) and its event side (failed replies as private
//! notes).

use async_trait::async_trait;
use http::Method;
use serde_json::json;
use switchboard_core::{
    Author, Connector, DeliveryError, Desk, DeskReply, EventDelivery, EventSink, HookAdmission,
    HookError, HookHead, HookRequest, HookResponse, Hooks, HostError, Mirror, ServiceContext,
};

use crate::client::Client;
use crate::config::NimchatParams;
use crate::mirror::{self, Known, MARKER};
use crate::webhook::{self, Action, Auth, DELIVERY};

/// A running `nimchat` desk.
#[derive(Debug)]
pub struct NimchatConnector {
    client: Client,
    auth: Auth,
    known: Known,
}

impl NimchatConnector {
    /// A connector for validated `params`.
    pub fn new(params: &NimchatParams) -> Result<Self, String> {
        let auth = match (&params.webhook_secret, &params.hook_token) {
            (Some(s), _) => Auth::Signed(s.clone()),
            (None, Some(t)) => Auth::PathToken(t.clone()),
            (None, None) => return Err("neither webhook_secret nor hook_token is set".into()),
        };
        Ok(NimchatConnector {
            client: Client::new(params),
            auth,
            known: Known::default(),
        })
    }

    async fn act(&self, ctx: &ServiceContext, action: Action) -> Result<&'static str, HookError> {
        match action {
            Action::Reply {
                conversation,
                message_id,
                text,
                attachments,
                kind,
                name,
            } => {
                if text.is_none() && attachments.is_empty() {
                    return Ok("a reply with nothing to send");
                }
                let Some(link) = ctx.link_lookup(&conversation).await? else {
                    return Ok("a conversation switchboard did not open");
                };
                let posted = match ctx
                    .post_reply(DeskReply {
                        conversation_id: link.conversation_id,
                        text,
                        attachments,
                        author: Author {
                            kind,
                            name: name.filter(|n| !n.trim().is_empty()),
                        },
                        idempotency_key: format!("msg-{message_id}"),
                    })
                    .await
                {
                    Ok(p) => p,
                    // The conversation moved on to another desk: acknowledged (a 4xx
                    // would make the desk retry), never sent.
                    Err(HostError::HandedOff(why)) => {
                        tracing::debug!(%why, "a reply after the handoff; dropped");
                        return Ok("a reply after the conversation was handed off, dropped");
                    }
                    Err(e) => return Err(e.into()),
                };
                Ok(if posted.created {
                    "a reply, queued for the contact"
                } else {
                    "a reply already stored"
                })
            }
            Action::Resolved { conversation } => {
                Ok(match ctx.close_conversation(&conversation).await? {
                    Some(_) => "a resolved conversation, closed",
                    None => "a resolution of no open linked conversation",
                })
            }
            Action::Ignore(why) => Ok(why),
        }
    }
}

#[async_trait]
impl Connector for NimchatConnector {
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
impl Hooks for NimchatConnector {
    fn authorize_hook(
        &self,
        _ctx: &ServiceContext,
        head: &HookHead,
    ) -> Result<HookAdmission, HookError> {
        if head.method != Method::POST {
            return Err(HookError::MethodNotAllowed);
        }
        self.auth.authorize(head)?;
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
        let now = ctx.clock.now().as_second();
        self.auth.verify(&req.head, &req.body, now)?;
        let action = webhook::parse(&req.body, MARKER)?;
        let outcome = self.act(ctx, action).await?;
        tracing::debug!(
            delivery = req.head.header(DELIVERY).unwrap_or("-"),
            outcome,
            "desk webhook"
        );
        Ok(HookResponse::json(&json!({ "ok": true })))
    }
}

#[async_trait]
impl Desk for NimchatConnector {
    async fn mirror(&self, ctx: &ServiceContext, m: &Mirror) -> Result<(), DeliveryError> {
        mirror::mirror(&self.client, &self.known, ctx, m).await
    }
}

#[async_trait]
impl EventSink for NimchatConnector {
    async fn deliver_event(
        &self,
        ctx: &ServiceContext,
        delivery: &EventDelivery,
    ) -> Result<(), DeliveryError> {
        mirror::status(&self.client, &self.known, ctx, delivery).await
    }
}
