//! The running `mailgun` service: routes' forwards on `/hooks/{id}`, event webhooks on
//! `/hooks/{id}/events`, both signed in their bodies; replies through the Messages API.

use async_trait::async_trait;
use http::Method;
use serde_json::Value;
use switchboard_core::{
    Channel, Connector, ConnectorError, CredentialWatch, Delivered, DeliveryError, HookAdmission,
    HookError, HookHead, HookRequest, HookResponse, Hooks, OutboundMessage, ServiceContext,
    parse_json,
};

use crate::client::{self, Client};
use crate::config::MailgunParams;
use crate::form::Form;
use crate::thread;
use crate::webhook;

/// The sub-path of event webhooks.
pub const EVENTS: &str = "events";
/// Mailgun takes messages of up to 25 MB, and a route forwards them whole (files as
/// multipart parts): no forward is longer.
pub const MAX_BODY: usize = 25 * 1024 * 1024;

/// A running `mailgun` service.
#[derive(Debug)]
pub struct MailgunConnector {
    params: MailgunParams,
    client: Client,
    /// Told when Mailgun refuses the API key on a send: `run` reports the service
    /// `failed` and replies wait.
    credentials: CredentialWatch,
}

impl MailgunConnector {
    /// Builds from validated params.
    pub fn new(params: MailgunParams) -> Result<Self, String> {
        Ok(MailgunConnector {
            client: Client::new(&params)?,
            params,
            credentials: CredentialWatch::default(),
        })
    }

    fn check(
        &self,
        ctx: &ServiceContext,
        (timestamp, token, signature): (Option<&str>, Option<&str>, Option<&str>),
    ) -> Result<switchboard_core::Nonce, HookError> {
        let key = self.params.signing_key.expose().as_bytes();
        webhook::check_signature(key, timestamp, token, signature, ctx.clock.now())
            .inspect_err(|e| tracing::warn!(error = %e, "webhook rejected"))
    }

    /// A route's forward: verified, threaded, stored with its token in one transaction.
    async fn forward(
        &self,
        ctx: &ServiceContext,
        req: &HookRequest,
    ) -> Result<HookResponse, HookError> {
        let form = Form::parse(req.header("content-type"), &req.body)?;
        let nonce = self.check(
            ctx,
            (
                form.get("timestamp"),
                form.get("token"),
                form.get("signature"),
            ),
        )?;
        let mail = webhook::mail(&form)?;
        let conversation = thread::resolve(ctx, &mail).await?;
        let message = mail.inbound(conversation);
        let Some(stored) = ctx.ingest_once(&nonce, vec![message]).await? else {
            tracing::warn!("webhook rejected: its token was used before (a replay)");
            return Err(HookError::Unauthorized("token already used".into()));
        };
        if let Some(s) = stored.first()
            && let Err(e) = thread::remember(ctx, s, &mail).await
        {
            // The mail is stored; a reply then threads by the conversation's root.
            tracing::warn!(error = %e, "the mail's thread was not recorded");
        }
        Ok(HookResponse::ok())
    }

    /// An event webhook: its receipt, once its token is taken.
    async fn event(
        &self,
        ctx: &ServiceContext,
        req: &HookRequest,
    ) -> Result<HookResponse, HookError> {
        let v: Value = parse_json(&req.body, "a Mailgun event webhook")?;
        let nonce = self.check(ctx, webhook::event_signature(&v))?;
        let receipt = webhook::event(&v)?;
        if ctx.ingest_once(&nonce, Vec::new()).await?.is_none() {
            tracing::warn!("event webhook rejected: its token was used before (a replay)");
            return Err(HookError::Unauthorized("token already used".into()));
        }
        if let Some(r) = receipt {
            let change = ctx.update_status(&r.external_id, r.status, r.error).await?;
            tracing::debug!(external_id = %r.external_id, status = r.status.as_str(), ?change, "receipt applied");
        }
        Ok(HookResponse::ok())
    }
}

#[async_trait]
impl Connector for MailgunConnector {
    async fn run(&self, ctx: &ServiceContext) -> Result<(), ConnectorError> {
        self.credentials
            .connected_until_rejected(ctx, "Mailgun refused api_key when sending a message")
            .await
    }

    fn hooks(&self) -> Option<&dyn Hooks> {
        Some(self)
    }

    fn channel(&self) -> Option<&dyn Channel> {
        Some(self)
    }
}

#[async_trait]
impl Hooks for MailgunConnector {
    /// Mailgun signs in the body, so the head has nothing to check but where it goes;
    /// the body is read up to Mailgun's own message limit (and `server.max_body`), and
    /// one that is longer is refused as unauthenticated.
    fn authorize_hook(
        &self,
        _: &ServiceContext,
        head: &HookHead,
    ) -> Result<HookAdmission, HookError> {
        if !matches!(head.subpath.as_str(), "" | EVENTS) {
            return Err(HookError::NotFound);
        }
        if head.method != Method::POST {
            return Err(HookError::MethodNotAllowed);
        }
        Ok(HookAdmission::BodyAuthenticated { max_body: MAX_BODY })
    }

    async fn handle_webhook(
        &self,
        ctx: &ServiceContext,
        req: HookRequest,
    ) -> Result<HookResponse, HookError> {
        self.authorize_hook(ctx, &req.head)?;
        if req.subpath == EVENTS {
            self.event(ctx, &req).await
        } else {
            self.forward(ctx, &req).await
        }
    }
}

#[async_trait]
impl Channel for MailgunConnector {
    async fn deliver_message(
        &self,
        ctx: &ServiceContext,
        out: &OutboundMessage,
    ) -> Result<Delivered, DeliveryError> {
        let thread = thread::load(ctx, &out.conversation.id).await?;
        let form = client::form(&self.params, out, thread.as_ref())?;
        self.client
            .send(&ctx.http, &self.credentials, &form)
            .await?;
        // Our Message-Id, which event webhooks name: Mailgun keeps the one we set.
        Ok(Delivered::sent(client::message_id(
            &out.idempotency_key,
            &self.params.domain,
        )))
    }
}
