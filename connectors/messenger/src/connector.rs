//! The running `messenger` service: the webhook's GET verification, its signed POSTs
//! through the webhook-channel helper, and replies through the Send API.

use async_trait::async_trait;
use http::{Method, StatusCode};
use switchboard_core::progress::send_parts;
use switchboard_core::webhook_channel::serve;
use switchboard_core::{
    Channel, Connector, ConnectorError, CredentialWatch, Delivered, DeliveryError, HookAdmission,
    HookError, HookHead, HookRequest, HookResponse, Hooks, Intake, OutboundMessage, ServiceContext,
    SignatureShape, WebhookChannel,
};

use crate::client::{self, Client};
use crate::config::MessengerParams;
use crate::webhook;

/// The signature header, and what it looks like.
const SIGNATURE: &str = "x-hub-signature-256";
const SIGNATURE_SHAPE: SignatureShape = SignatureShape::PrefixedHex {
    prefix: "sha256=",
    bytes: 32,
};

/// A running `messenger` service.
#[derive(Debug)]
pub struct MessengerConnector {
    page: PageHook,
    client: Client,
    /// Told when Graph rejects the page token on a send: `run` reports the service
    /// `failed` and replies wait.
    credentials: CredentialWatch,
}

/// The POST side of the hook, as a webhook channel.
#[derive(Debug)]
struct PageHook {
    params: MessengerParams,
}

impl MessengerConnector {
    /// Builds from validated params.
    pub fn new(params: MessengerParams) -> Result<Self, String> {
        Ok(MessengerConnector {
            client: Client::new(&params)?,
            page: PageHook { params },
            credentials: CredentialWatch::default(),
        })
    }

    /// Answers the setup request: the challenge when `hub.verify_token` matches (compared
    /// in constant time), 403 otherwise.
    fn verify_subscription(&self, req: &HookRequest) -> Result<HookResponse, HookError> {
        let Some(v) = webhook::verification(req.query.as_deref()) else {
            return Err(HookError::MethodNotAllowed);
        };
        let token_ok = self
            .page
            .params
            .verify_token
            .matches(v.verify_token.as_bytes());
        if v.mode != "subscribe" || !token_ok {
            tracing::warn!(mode = %v.mode, "webhook verification refused: hub.verify_token does not match");
            return Ok(HookResponse::text(
                StatusCode::FORBIDDEN,
                "hub.verify_token does not match",
            ));
        }
        tracing::info!("webhook verification answered");
        Ok(HookResponse::text(StatusCode::OK, v.challenge))
    }
}

#[async_trait]
impl Connector for MessengerConnector {
    async fn run(&self, ctx: &ServiceContext) -> Result<(), ConnectorError> {
        self.credentials
            .connected_until_rejected(
                ctx,
                "Graph rejected the page access token when sending a message",
            )
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
impl Hooks for MessengerConnector {
    fn authorize_hook(
        &self,
        ctx: &ServiceContext,
        head: &HookHead,
    ) -> Result<HookAdmission, HookError> {
        if head.method == Method::GET && head.subpath.is_empty() {
            // Authenticated by the token in its query, checked with the request; a GET
            // has no body to read.
            return Ok(HookAdmission::BodyAuthenticated { max_body: 0 });
        }
        Hooks::authorize_hook(&self.page, ctx, head)
    }

    async fn handle_webhook(
        &self,
        ctx: &ServiceContext,
        req: HookRequest,
    ) -> Result<HookResponse, HookError> {
        if req.method == Method::GET && req.subpath.is_empty() {
            return self.verify_subscription(&req);
        }
        serve(&self.page, ctx, req).await
    }
}

impl WebhookChannel for PageHook {
    /// The signature header's shape, before the body is read.
    fn verify_head(&self, _: &ServiceContext, head: &HookHead) -> Result<HookAdmission, HookError> {
        head.require_signature(SIGNATURE, "X-Hub-Signature-256", SIGNATURE_SHAPE)?;
        Ok(HookAdmission::Signed)
    }

    /// `sha256=` + hex HMAC-SHA256(app secret, raw body), in constant time.
    fn verify(&self, _: &ServiceContext, req: &HookRequest) -> Result<(), HookError> {
        let presented = req.header(SIGNATURE).unwrap_or_default().trim();
        let hex = presented.strip_prefix("sha256=").unwrap_or_default();
        let key = self.params.app_secret.expose().as_bytes();
        if switchboard_core::mac::hmac_sha256_hex_matches(key, &[&req.body], hex) {
            Ok(())
        } else {
            tracing::warn!(
                "webhook rejected: X-Hub-Signature-256 does not sign the body with app_secret"
            );
            Err(HookError::Unauthorized(
                "X-Hub-Signature-256 does not match the body".into(),
            ))
        }
    }

    fn parse(&self, _: &ServiceContext, req: &HookRequest) -> Result<Intake, HookError> {
        let parsed = webhook::parse(&req.body, &self.params.page_id)?;
        if parsed.other_pages > 0 {
            tracing::warn!(
                entries = parsed.other_pages,
                "webhook entries for another page than page_id were not stored"
            );
        }
        if parsed.skipped > 0 {
            tracing::debug!(
                skipped = parsed.skipped,
                "events not stored (echoes, other types)"
            );
        }
        Ok(Intake {
            messages: parsed.messages,
            receipts: parsed.receipts,
            watermarks: parsed.watermarks,
            ..Intake::default()
        })
    }
}

#[async_trait]
impl Channel for MessengerConnector {
    async fn deliver_message(
        &self,
        ctx: &ServiceContext,
        out: &OutboundMessage,
    ) -> Result<Delivered, DeliveryError> {
        let psid = out.conversation.contact.external_id.as_str();
        let bodies = client::message_bodies(psid, &out.message);
        if bodies.is_empty() {
            return Err(DeliveryError::permanent(
                "the message has no text and no attachments",
            ));
        }
        let ids = send_parts(ctx, out, bodies.len(), |i| {
            self.client.send(&ctx.http, &self.credentials, &bodies[i])
        })
        .await?;
        // Receipts naming a mid match the first part; watermarks cover the rest.
        Ok(Delivered::sent(ids.into_iter().next().flatten()))
    }
}
