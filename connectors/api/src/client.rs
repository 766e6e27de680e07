//! The callback, all of this type's HTTP: an outbound message POSTed to `callback_url`,
//! signed like a webhook, and the answer classified.

use serde_json::json;
use switchboard_core::backoff::retry_after;
use switchboard_core::signing::WebhookKey;
use switchboard_core::{DeliveryError, OutboundMessage, ServiceContext};

use crate::config::ApiParams;

/// The longest part of the receiver's answer kept in an error.
const REASON_MAX: usize = 200;

/// POSTs `out` to the callback; the id the remote system names for it, if any.
pub async fn post(
    ctx: &ServiceContext,
    params: &ApiParams,
    url: &str,
    key: &WebhookKey,
    out: &OutboundMessage,
) -> Result<Option<String>, DeliveryError> {
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
        .timeout(params.callback_timeout.0)
        .header("content-type", "application/json");
    for (name, value) in key.headers(&out.idempotency_key, now.as_second(), body.as_bytes()) {
        req = req.header(name, value);
    }
    let resp = req
        .body(body)
        .send()
        .await
        .map_err(|e| DeliveryError::from_reqwest_within(&e, params.callback_timeout.0))?;
    let status = resp.status();
    if !status.is_success() {
        let hint = retry_after(resp.headers());
        let text = resp.text().await.unwrap_or_default();
        return Err(DeliveryError::from_status(
            status,
            hint,
            reason(status.as_u16(), &text),
        ));
    }
    // A remote system may name its own id for the message: `{"external_id": "…"}`.
    Ok(resp
        .json::<serde_json::Value>()
        .await
        .ok()
        .and_then(|v| v.get("external_id")?.as_str().map(str::to_owned)))
}

/// `callback answered HTTP 400: <what the receiver said>`, the answer on one line and
/// cut at [`REASON_MAX`] characters.
fn reason(status: u16, text: &str) -> String {
    let said: String = text
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .take(REASON_MAX)
        .collect();
    if said.is_empty() {
        format!("callback answered HTTP {status}")
    } else {
        format!("callback answered HTTP {status}: {said}")
    }
}
