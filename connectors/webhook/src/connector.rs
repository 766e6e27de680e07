//! The running `webhook` service: takes its organization's events and pushes each to
//! the receiver.

use async_trait::async_trait;
use switchboard_core::signing::WebhookKey;
use switchboard_core::{
    Connector, DeliveryError, EventDelivery, EventSink, RetryLimits, ServiceContext,
};

use crate::client;
use crate::config::WebhookParams;

/// A running `webhook` service.
#[derive(Debug)]
pub struct WebhookConnector {
    params: WebhookParams,
    key: WebhookKey,
}

impl WebhookConnector {
    /// Builds from validated params.
    pub fn new(params: WebhookParams) -> Result<Self, String> {
        let key = WebhookKey::parse(&params.secret)?;
        Ok(WebhookConnector { params, key })
    }
}

#[async_trait]
impl Connector for WebhookConnector {
    fn retry_limits(&self) -> Option<RetryLimits> {
        Some(RetryLimits {
            max_attempts: self.params.max_attempts,
            max_age: self.params.max_age.0,
        })
    }

    fn events(&self) -> Option<&dyn EventSink> {
        Some(self)
    }
}

#[async_trait]
impl EventSink for WebhookConnector {
    async fn deliver_event(
        &self,
        ctx: &ServiceContext,
        d: &EventDelivery,
    ) -> Result<(), DeliveryError> {
        client::post(ctx, &self.params, &self.key, d).await
    }
}
