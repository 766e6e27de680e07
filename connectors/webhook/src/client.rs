//! The receiver, all of this type's HTTP: one event POSTed to `url`, signed per the
//! Standard Webhooks spec, and the answer classified.

use switchboard_core::backoff::retry_after;
use switchboard_core::signing::WebhookKey;
use switchboard_core::{DeliveryError, EventDelivery, ServiceContext};

use crate::config::WebhookParams;

/// POSTs the stored body of `d`, signed.
pub async fn post(
    ctx: &ServiceContext,
    params: &WebhookParams,
    key: &WebhookKey,
    d: &EventDelivery,
) -> Result<(), DeliveryError> {
    let ts = ctx.clock.now().as_second();
    let mut req = ctx
        .http
        .post(&params.url)
        .timeout(params.timeout.0)
        .header("content-type", "application/json");
    for (name, value) in key.headers(&d.delivery_id, ts, &d.body) {
        req = req.header(name, value);
    }
    let resp = req
        .body(d.body.clone())
        .send()
        .await
        .map_err(|e| DeliveryError::from_reqwest_within(&e, params.timeout.0))?;
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
