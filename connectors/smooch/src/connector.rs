//! The running `smooch` service: authenticates and stores Sunshine's webhooks, sends
//! replies through the v2 Messages API.

use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use switchboard_core::backoff::retry_after;
use switchboard_core::{
    Connector, ConnectorError, CredentialWatch, Delivered, DeliveryError, HookAdmission, HookError,
    HookHead, HookRequest, HookResponse, OutboundMessage, ServiceContext,
};

use crate::client;
use crate::config::SmoochParams;
use crate::webhook;

/// One Post Message request may take this long.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A running `smooch` service.
#[derive(Debug)]
pub struct SmoochConnector {
    params: SmoochParams,
    /// Told when Sunshine refuses our key on a send: the service, not the message, is
    /// broken, and `run` reports it `failed`.
    credentials: CredentialWatch,
}

impl SmoochConnector {
    /// Builds from validated params.
    pub fn new(params: SmoochParams) -> Result<Self, String> {
        // Fails here, at load, rather than on the first reply.
        client::messages_url(&params.api_base, &params.app_id, "x")?;
        Ok(SmoochConnector {
            params,
            credentials: CredentialWatch::default(),
        })
    }

    /// Posts one message body; the id Sunshine gave it.
    async fn post(
        &self,
        ctx: &ServiceContext,
        url: &url::Url,
        body: &serde_json::Value,
    ) -> Result<Option<String>, DeliveryError> {
        let resp = ctx
            .http
            .post(url.clone())
            .basic_auth(&self.params.key_id, Some(self.params.secret.expose()))
            .timeout(REQUEST_TIMEOUT)
            .json(body)
            .send()
            .await
            .map_err(|e| DeliveryError::from_reqwest(&e))?;
        let status = resp.status();
        let hint = retry_after(resp.headers());
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| DeliveryError::from_reqwest(&e))?;
        if status == http::StatusCode::UNAUTHORIZED || status == http::StatusCode::FORBIDDEN {
            // Our keyId/secret, not the message, are wrong (revoked or rotated key): keep
            // the reply queued, to go out once the key is fixed, and mark the service
            // failed, instead of failing every reply until then.
            self.credentials.rejected();
            return Err(DeliveryError::Transient {
                reason: client::classify(status, None, &bytes).to_string(),
                retry_after: hint,
            });
        }
        if !status.is_success() {
            return Err(client::classify(status, hint, &bytes));
        }
        let id = client::created_id(&bytes);
        if id.is_none() {
            // Accepted all the same: sending again would duplicate it.
            tracing::warn!(
                status = status.as_u16(),
                "Sunshine accepted a message without returning its id; its receipts cannot be matched"
            );
        }
        Ok(id)
    }
}

/// Which parts of a multi-part message Sunshine already took, so that a retry after a
/// partial failure sends only the rest. One key per conversation suffices: its messages
/// are delivered one at a time, so only the latest one can be part-way.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Progress {
    /// The message's idempotency key.
    message: String,
    /// The ids of the parts sent so far, in order.
    sent: Vec<Option<String>>,
}

fn progress_key(conversation_id: &str) -> String {
    format!("outbound_progress:{conversation_id}")
}

#[async_trait]
impl Connector for SmoochConnector {
    async fn run(&self, ctx: &ServiceContext) -> Result<(), ConnectorError> {
        self.credentials
            .connected_until_rejected(ctx, "Sunshine rejected keyId/secret when sending a message")
            .await
    }

    /// The whole check: Sunshine's credential is the shared secret in `X-API-Key`.
    fn authorize_hook(&self, head: &HookHead<'_>) -> Result<HookAdmission, HookError> {
        head.require_post_to_root()?;
        let Some(key) = head.headers.get("x-api-key") else {
            return Err(HookError::Unauthorized("missing X-API-Key header".into()));
        };
        if !self.params.webhook_secret.matches(key.as_bytes()) {
            tracing::warn!("webhook rejected: X-API-Key does not match webhook_secret");
            return Err(HookError::Unauthorized("X-API-Key does not match".into()));
        }
        Ok(HookAdmission::Signed)
    }

    async fn handle_webhook(
        &self,
        ctx: &ServiceContext,
        req: HookRequest,
    ) -> Result<HookResponse, HookError> {
        self.authorize_hook(&req.head())?;

        let parsed = webhook::parse(&req.body)?;
        let (new, duplicates) = if parsed.messages.is_empty() {
            (0, 0)
        } else {
            let done = ctx.ingest(parsed.messages).await?;
            let new = done.iter().filter(|i| i.created).count();
            (new, done.len() - new)
        };
        // Forward only, and kept for later when the send is not recorded yet: the host
        // sorts out late, repeated and early receipts.
        for r in &parsed.receipts {
            let change = ctx
                .update_status(&r.message_id, r.status, r.error.clone())
                .await?;
            tracing::debug!(
                external_id = %r.message_id,
                status = r.status.as_str(),
                ?change,
                "receipt applied"
            );
        }
        tracing::debug!(
            new,
            duplicates,
            receipts = parsed.receipts.len(),
            skipped = parsed.skipped,
            "webhook handled"
        );
        Ok(HookResponse::ok())
    }

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
        let url = client::messages_url(&self.params.api_base, &self.params.app_id, conversation)
            .map_err(DeliveryError::permanent)?;

        let multi = bodies.len() > 1;
        let key = progress_key(&out.conversation.id);
        let mut progress = Progress {
            message: out.idempotency_key.clone(),
            sent: vec![],
        };
        if multi
            && let Some(saved) = ctx.kv_get(&key).await?
            && let Ok(saved) = serde_json::from_str::<Progress>(&saved)
            && saved.message == out.idempotency_key
        {
            progress = saved;
        }
        for body in bodies.iter().skip(progress.sent.len()) {
            let id = self.post(ctx, &url, body).await?;
            progress.sent.push(id);
            if multi && progress.sent.len() < bodies.len() {
                let value = serde_json::to_string(&progress).unwrap_or_default();
                ctx.kv_put(&key, &value).await?;
            }
        }
        // Receipts are matched on the first part, the one that carries the text.
        Ok(Delivered::sent(progress.sent.into_iter().next().flatten()))
    }
}
