//! The [`Connector`] of an `askhandle` service: its run loop (webhook subscriptions at
//! start-up and whenever one disappears, catch-up after downtime), its hook (answers,
//! rooms leaving bot use) and its desk side (contacts' messages into rooms).

use std::time::Duration;

use async_trait::async_trait;
use http::Method;
use serde_json::json;
use switchboard_core::{
    ConnState, Connector, ConnectorError, DeliveryError, Desk, EventDelivery, EventSink,
    HookAdmission, HookError, HookHead, HookRequest, HookResponse, Hooks, Mirror, Secret,
    ServiceContext,
};

use crate::client::Client;
use crate::config::AskHandleParams;
use crate::rooms;
use crate::webhook::{self, Action};

/// How often the subscriptions are checked (AskHandle drops a target it found failing).
pub const CHECK_EVERY: Duration = Duration::from_secs(5);

/// A running `askhandle` bot desk.
#[derive(Debug)]
pub struct AskHandleConnector {
    client: Client,
    hook_token: Secret,
}

impl AskHandleConnector {
    /// A connector for validated `params`.
    pub fn new(params: &AskHandleParams) -> Self {
        AskHandleConnector {
            client: Client::new(params),
            hook_token: params.hook_token.clone(),
        }
    }

    /// Where AskHandle posts: `{public_url}/hooks/{id}/{hook_token}`.
    fn target(&self, ctx: &ServiceContext) -> String {
        format!(
            "{}/hooks/{}/{}",
            ctx.public_url.trim_end_matches('/'),
            ctx.service_id,
            self.hook_token.expose()
        )
    }

    async fn act(&self, ctx: &ServiceContext, action: Action) -> Result<&'static str, HookError> {
        match action {
            Action::Answer(m) => {
                let Some(room) = m.room_uuid() else {
                    return Ok("an answer naming no room");
                };
                Ok(if rooms::answer(ctx, &room, &m).await? {
                    "an answer, stored"
                } else {
                    "an answer in a room switchboard did not open"
                })
            }
            Action::Room(room) if room.is_bot_use == Some(false) => {
                let Some(link) = ctx.link_lookup(&room.uuid).await? else {
                    return Ok("a room switchboard did not open");
                };
                Ok(
                    match ctx.hand_off(&link.conversation_id, "bot_use_off").await? {
                        Some(_) => "a room out of bot use, handed off",
                        None => "a room out of bot use, already handed off",
                    },
                )
            }
            Action::Room(_) => Ok("a room in bot use"),
            Action::Ignore(why) => Ok(why),
        }
    }
}

#[async_trait]
impl Connector for AskHandleConnector {
    /// Registers the subscriptions and catches up, then checks the subscriptions every
    /// [`CHECK_EVERY`]; `connected` while AskHandle answers.
    async fn run(&self, ctx: &ServiceContext) -> Result<(), ConnectorError> {
        let target = self.target(ctx);
        let fail = |e: DeliveryError| match e {
            DeliveryError::Transient { reason, .. }
                if reason.contains(" 401") || reason.contains(" 403") =>
            {
                ConnectorError::Auth(reason)
            }
            other => ConnectorError::Transient(other.to_string()),
        };
        let created = rooms::subscribe(&self.client, ctx, &target)
            .await
            .map_err(fail)?;
        if created > 0 {
            tracing::info!(created, "AskHandle webhooks registered");
        }
        let caught = rooms::catch_up(&self.client, ctx).await.map_err(fail)?;
        if caught > 0 {
            tracing::info!(answers = caught, "caught up with AskHandle rooms");
        }
        ctx.set_state(ConnState::Connected);
        loop {
            tokio::select! {
                _ = tokio::time::sleep(CHECK_EVERY) => {}
                _ = ctx.shutdown.cancelled() => return Ok(()),
            }
            match rooms::subscribe(&self.client, ctx, &target).await {
                Ok(0) => {}
                Ok(n) => tracing::warn!(
                    recreated = n,
                    "an AskHandle webhook had disappeared; registered it again"
                ),
                Err(_) if ctx.shutdown.is_cancelled() => return Ok(()),
                Err(e) => return Err(fail(e)),
            }
        }
    }

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
impl Hooks for AskHandleConnector {
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
        tracing::debug!(outcome, "askhandle webhook");
        Ok(HookResponse::json(&json!({ "ok": true })))
    }
}

#[async_trait]
impl Desk for AskHandleConnector {
    async fn mirror(&self, ctx: &ServiceContext, m: &Mirror) -> Result<(), DeliveryError> {
        rooms::mirror(&self.client, ctx, m).await
    }
}

#[async_trait]
impl EventSink for AskHandleConnector {
    /// A failed answer's status: the room has no place for it.
    async fn deliver_event(
        &self,
        _ctx: &ServiceContext,
        _delivery: &EventDelivery,
    ) -> Result<(), DeliveryError> {
        Ok(())
    }
}
