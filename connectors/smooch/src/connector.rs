//! The running `smooch` service: Sunshine's webhooks through the webhook-channel helper
//! (authenticated by the shared secret in `X-API-Key`), replies through the v2 Messages
//! API.

use async_trait::async_trait;
use switchboard_core::progress::send_parts;
use switchboard_core::{
    Channel, Connector, ConnectorError, CredentialWatch, Delivered, DeliveryError, HookAdmission,
    HookError, HookHead, HookRequest, Hooks, Intake, OutboundMessage, ServiceContext,
    WebhookChannel,
};

use crate::client::{self, Client};
use crate::config::SmoochParams;
use crate::webhook;

/// A running `smooch` service.
#[derive(Debug)]
pub struct SmoochConnector {
    params: SmoochParams,
    client: Client,
    /// Told when Sunshine refuses our key on a send: the service, not the message, is
    /// broken, and `run` reports it `failed`.
    credentials: CredentialWatch,
}

impl SmoochConnector {
    /// Builds from validated params.
    pub fn new(params: SmoochParams) -> Result<Self, String> {
        Ok(SmoochConnector {
            client: Client::new(&params)?,
            params,
            credentials: CredentialWatch::default(),
        })
    }
}

#[async_trait]
impl Connector for SmoochConnector {
    async fn run(&self, ctx: &ServiceContext) -> Result<(), ConnectorError> {
        self.credentials
            .connected_until_rejected(ctx, "Sunshine rejected keyId/secret when sending a message")
            .await
    }

    fn hooks(&self) -> Option<&dyn Hooks> {
        Some(self)
    }

    fn channel(&self) -> Option<&dyn Channel> {
        Some(self)
    }
}

impl WebhookChannel for SmoochConnector {
    /// The whole check: Sunshine's credential is the shared secret in `X-API-Key`.
    fn verify_head(&self, _: &ServiceContext, head: &HookHead) -> Result<HookAdmission, HookError> {
        let Some(key) = head.headers.get("x-api-key") else {
            return Err(HookError::Unauthorized("missing X-API-Key header".into()));
        };
        if !self.params.webhook_secret.matches(key.as_bytes()) {
            tracing::warn!("webhook rejected: X-API-Key does not match webhook_secret");
            return Err(HookError::Unauthorized("X-API-Key does not match".into()));
        }
        Ok(HookAdmission::Signed)
    }

    /// Sunshine signs nothing in the body: the shared secret in the head is all.
    fn verify(&self, _: &ServiceContext, _: &HookRequest) -> Result<(), HookError> {
        Ok(())
    }

    fn parse(&self, _: &ServiceContext, req: &HookRequest) -> Result<Intake, HookError> {
        let parsed = webhook::parse(&req.body)?;
        if parsed.skipped > 0 {
            tracing::debug!(
                skipped = parsed.skipped,
                "events not stored (business messages, other types)"
            );
        }
        Ok(Intake {
            messages: parsed.messages,
            receipts: parsed.receipts,
            ..Intake::default()
        })
    }
}

#[async_trait]
impl Channel for SmoochConnector {
    async fn deliver_message(
        &self,
        ctx: &ServiceContext,
        out: &OutboundMessage,
    ) -> Result<Delivered, DeliveryError> {
        let Some(conversation) = out.conversation.external_id.as_deref() else {
            return Err(DeliveryError::permanent(
                "the conversation has no Sunshine conversation id (its webhook did not name one), \
                 and the Sunshine API addresses replies by conversation",
            ));
        };
        let bodies = client::message_bodies(&out.message);
        if bodies.is_empty() {
            return Err(DeliveryError::permanent(
                "the message has no text and no attachments",
            ));
        }
        let ids = send_parts(ctx, out, bodies.len(), |i| {
            self.client
                .post(&ctx.http, &self.credentials, conversation, &bodies[i])
        })
        .await?;
        // Receipts are matched on the first part, the one that carries the text.
        Ok(Delivered::sent(ids.into_iter().next().flatten()))
    }
}
