//! Pushes one event to the receiver, signed, and classifies the answer.

use async_trait::async_trait;
use switchboard_core::backoff::retry_after;
use switchboard_core::signing::WebhookKey;
use switchboard_core::{Connector, DeliveryError, EventDelivery, RetryLimits, ServiceContext};

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
    async fn deliver_event(
        &self,
        ctx: &ServiceContext,
        d: &EventDelivery,
    ) -> Result<(), DeliveryError> {
        let ts = ctx.clock.now().as_second();
        let mut req = ctx
            .http
            .post(&self.params.url)
            .timeout(self.params.timeout.0)
            .header("content-type", "application/json");
        for (name, value) in self.key.headers(&d.delivery_id, ts, &d.body) {
            req = req.header(name, value);
        }
        let resp = req
            .body(d.body.clone())
            .send()
            .await
            .map_err(|e| DeliveryError::from_reqwest_within(&e, self.params.timeout.0))?;
        let status = resp.status();
        if status.is_success() {
            return Ok(());
        }
        // Standard Webhooks: every non-2xx answer is retried until the limits run out.
        Err(DeliveryError::Transient {
            reason: format!("webhook target answered HTTP {}", status.as_u16()),
            retry_after: retry_after(resp.headers()),
        })
    }

    fn retry_limits(&self) -> Option<RetryLimits> {
        Some(RetryLimits {
            max_attempts: self.params.max_attempts,
            max_age: self.params.max_age.0,
        })
    }
}
