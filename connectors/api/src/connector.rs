//! Delivers replies on an api service's conversations to its `callback_url`.

use async_trait::async_trait;
use serde_json::json;
use switchboard_core::backoff::retry_after;
use switchboard_core::signing::WebhookKey;
use switchboard_core::{Connector, Delivered, DeliveryError, OutboundMessage, ServiceContext};

use crate::config::ApiParams;

/// A running `api` service.
#[derive(Debug)]
pub struct ApiConnector {
    params: ApiParams,
    key: Option<WebhookKey>,
}

impl ApiConnector {
    /// Builds from validated params.
    pub fn new(params: ApiParams) -> Result<Self, String> {
        let key = params
            .callback_secret
            .as_ref()
            .map(WebhookKey::parse)
            .transpose()?;
        Ok(ApiConnector { params, key })
    }
}

#[async_trait]
impl Connector for ApiConnector {
    async fn deliver_message(
        &self,
        ctx: &ServiceContext,
        out: &OutboundMessage,
    ) -> Result<Delivered, DeliveryError> {
        let (Some(url), Some(key)) = (&self.params.callback_url, &self.key) else {
            // No callback: the remote system reads replies from the stream or a webhook.
            return Ok(Delivered::sent(None));
        };
        let now = ctx.clock.now();
        let body = json!({
            "type": "message.outbound",
            "timestamp": now,
            "data": {"message": out.message, "conversation": out.conversation},
        })
        .to_string();
        let mut req = ctx
            .http
            .post(url)
            .timeout(self.params.callback_timeout.0)
            .header("content-type", "application/json");
        for (name, value) in key.headers(&out.idempotency_key, now.as_second(), body.as_bytes()) {
            req = req.header(name, value);
        }
        let resp =
            req.body(body).send().await.map_err(|e| {
                DeliveryError::from_reqwest_within(&e, self.params.callback_timeout.0)
            })?;
        let status = resp.status();
        if !status.is_success() {
            return Err(DeliveryError::from_status(
                status,
                retry_after(resp.headers()),
                format!("callback answered HTTP {}", status.as_u16()),
            ));
        }
        // A remote system may name its own id for the message: `{"external_id": "…"}`.
        let external_id = resp
            .json::<serde_json::Value>()
            .await
            .ok()
            .and_then(|v| v.get("external_id")?.as_str().map(str::to_owned));
        Ok(Delivered::sent(external_id))
    }
}
