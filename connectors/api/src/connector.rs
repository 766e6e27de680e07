//! The running `api` service: delivers replies on its conversations to its callback.

use async_trait::async_trait;
use switchboard_core::signing::WebhookKey;
use switchboard_core::{
    Channel, Connector, Delivered, DeliveryError, OutboundMessage, ServiceContext,
};

use crate::client;
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
    fn channel(&self) -> Option<&dyn Channel> {
        Some(self)
    }
}

#[async_trait]
impl Channel for ApiConnector {
    async fn deliver_message(
        &self,
        ctx: &ServiceContext,
        out: &OutboundMessage,
    ) -> Result<Delivered, DeliveryError> {
        let (Some(url), Some(key)) = (&self.params.callback_url, &self.key) else {
            // No callback: the remote system reads replies from the stream or a webhook.
            return Ok(Delivered::sent(None));
        };
        let id = client::post(ctx, &self.params, url, key, out).await?;
        Ok(Delivered::sent(id))
    }
}
