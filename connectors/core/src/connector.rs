//! The connector trait: the small required core every service type implements, with
//! defaults for what a type does not do (the mautrix bridgev2 model).

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode};

use crate::context::ServiceContext;
use crate::error::{ConnectorError, DeliveryError, HookError};
use crate::model::{Conversation, Event, Message, MessageStatus};

/// A running service type. One value per configured service; the supervisor owns it and
/// calls it from several tasks at once, so it is `Sync`.
#[async_trait]
pub trait Connector: Send + Sync + 'static {
    /// Keeps the service's connection up until `ctx.shutdown` fires, reporting state
    /// through [`ServiceContext::set_state`]. Return `Ok(())` on shutdown; an error makes
    /// the supervisor restart it with backoff (slowly for authentication failures).
    ///
    /// Services without a connection of their own keep this default: ready at once.
    async fn run(&self, ctx: &ServiceContext) -> Result<(), ConnectorError> {
        ctx.set_state(crate::ConnState::Connected);
        ctx.shutdown.cancelled().await;
        Ok(())
    }

    /// Whether outbound deliveries need the connection `run` keeps (XMPP). While it is
    /// down the dispatcher holds the service's outbox instead of spending attempts.
    fn needs_connection(&self) -> bool {
        false
    }

    /// How many deliveries of this service may be in flight at once (each for a different
    /// conversation; one conversation's messages always go one at a time, in order).
    fn delivery_concurrency(&self) -> usize {
        16
    }

    /// Answers a provider's request to `/hooks/{service_id}[/…]`. Verify first; ingest
    /// through `ctx`, which returns only after the commit; then answer.
    async fn handle_webhook(
        &self,
        ctx: &ServiceContext,
        req: HookRequest,
    ) -> Result<HookResponse, HookError> {
        let _ = (ctx, req);
        Err(HookError::NotFound)
    }

    /// Sends an agent's or bot's message to the contact.
    async fn deliver_message(
        &self,
        ctx: &ServiceContext,
        out: &OutboundMessage,
    ) -> Result<Delivered, DeliveryError> {
        let _ = (ctx, out);
        Err(DeliveryError::permanent(
            "this service type cannot send messages",
        ))
    }

    /// Pushes an event to wherever this service sends events (the `webhook` type).
    async fn deliver_event(
        &self,
        ctx: &ServiceContext,
        delivery: &EventDelivery,
    ) -> Result<(), DeliveryError> {
        let _ = (ctx, delivery);
        Err(DeliveryError::permanent(
            "this service type does not take events",
        ))
    }

    /// Overrides the daemon-wide retry limits for this service's deliveries.
    fn retry_limits(&self) -> Option<RetryLimits> {
        None
    }
}

/// When the dispatcher gives up on a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryLimits {
    /// Attempts before the delivery is dead.
    pub max_attempts: u32,
    /// Age after which no further attempt is made.
    pub max_age: Duration,
}

/// A provider's HTTP request, as the connector needs it to verify and parse.
#[derive(Debug, Clone)]
pub struct HookRequest {
    /// HTTP method.
    pub method: Method,
    /// The path below `/hooks/{service_id}`, without the leading slash (`""`, `"status"`).
    pub subpath: String,
    /// The request path and query exactly as received (for URL-bound signatures).
    pub path_and_query: String,
    /// The raw query string, if any.
    pub query: Option<String>,
    /// Request headers.
    pub headers: HeaderMap,
    /// The raw body, within `server.max_body`.
    pub body: Bytes,
}

impl HookRequest {
    /// The body as JSON of type `T`; see [`parse_json`].
    pub fn json<T: serde::de::DeserializeOwned>(&self, what: &str) -> Result<T, HookError> {
        parse_json(&self.body, what)
    }

    /// A header's value as text, if present and valid.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// Parses a JSON body: one that is not JSON at all (truncated, another charset, nested
/// past the parser's limit) is `BadRequest` (400); valid JSON of the wrong shape is
/// `Unprocessable` (422), naming where. serde stops at the first value of the wrong type,
/// which may come before a syntax error further on, so a shape error is only reported
/// once the whole body is known to be JSON. `what` names the expected document.
pub fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8], what: &str) -> Result<T, HookError> {
    let de = &mut serde_json::Deserializer::from_slice(body);
    let err = match serde_path_to_error::deserialize(de) {
        Ok(v) => return Ok(v),
        Err(e) => e,
    };
    // JSON text is UTF-8 throughout; skipping a value does not look inside its strings,
    // so without this a body in another charset would pass as JSON of the wrong shape.
    let syntax = match std::str::from_utf8(body) {
        Err(e) => Some(format!("not UTF-8 at byte {}", e.valid_up_to())),
        Ok(text) => serde_json::from_str::<serde::de::IgnoredAny>(text)
            .err()
            .map(|e| e.to_string()),
    };
    if let Some(syntax) = syntax {
        return Err(HookError::BadRequest(format!(
            "the body is not JSON: {syntax}"
        )));
    }
    let path = err.path().to_string();
    let inner = err.into_inner();
    if !inner.is_data() {
        return Err(HookError::BadRequest(format!(
            "the body is not JSON: {inner}"
        )));
    }
    Err(HookError::Unprocessable(if path == "." {
        format!("not {what}: {inner}")
    } else {
        format!("not {what}: {path}: {inner}")
    }))
}

/// The answer to a provider.
#[derive(Debug, Clone)]
pub struct HookResponse {
    /// Status code; 2xx tells the provider not to retry.
    pub status: StatusCode,
    /// `Content-Type` of `body`.
    pub content_type: &'static str,
    /// The body.
    pub body: Bytes,
}

impl HookResponse {
    /// 200 with a JSON body.
    pub fn json(value: &serde_json::Value) -> Self {
        HookResponse {
            status: StatusCode::OK,
            content_type: "application/json",
            body: Bytes::from(value.to_string()),
        }
    }

    /// 200 with a plain-text body.
    pub fn text(status: StatusCode, body: impl Into<Bytes>) -> Self {
        HookResponse {
            status,
            content_type: "text/plain; charset=utf-8",
            body: body.into(),
        }
    }

    /// 200 `{"status":"ok"}`.
    pub fn ok() -> Self {
        Self::json(&serde_json::json!({"status": "ok"}))
    }
}

/// An outbound message handed to a connector, with the conversation it goes to.
#[derive(Debug, Clone)]
pub struct OutboundMessage {
    /// The message (status `pending`).
    pub message: Message,
    /// Its conversation, with the contact.
    pub conversation: Conversation,
    /// 1 for the first attempt.
    pub attempt: u32,
    /// Stable across attempts and restarts: use it wherever a provider offers
    /// idempotency for sends.
    pub idempotency_key: String,
}

/// What a provider said when it accepted a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivered {
    /// The provider's id for the sent message, used to match later receipts.
    pub external_id: Option<String>,
    /// Usually `sent`; `delivered` when the provider confirms delivery synchronously.
    pub status: MessageStatus,
}

impl Delivered {
    /// Accepted by the provider, which gave it this id.
    pub fn sent(external_id: impl Into<Option<String>>) -> Self {
        Delivered {
            external_id: external_id.into(),
            status: MessageStatus::Sent,
        }
    }
}

/// One event on its way to one `webhook` service.
#[derive(Debug, Clone)]
pub struct EventDelivery {
    /// Stable per event and the same on every retry (`webhook-id`).
    pub delivery_id: String,
    /// The event.
    pub event: Event,
    /// The serialized body, byte-exact what is signed and sent.
    pub body: Bytes,
    /// 1 for the first attempt.
    pub attempt: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Shape {
        a: String,
    }

    /// Found by the `api_inbound` fuzz target: a shape error before a byte that is not
    /// UTF-8 was answered 422, as if the body were JSON.
    #[test]
    fn another_charset_is_400_even_after_a_shape_error() {
        let body = b"{\"b\":1,\"a\":\"caf\xe9\"}";
        match parse_json::<Shape>(body, "a shape") {
            Err(HookError::BadRequest(m)) => {
                assert_eq!(m, "the body is not JSON: not UTF-8 at byte 15")
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            parse_json::<Shape>(b"{\"b\":1}", "a shape"),
            Err(HookError::Unprocessable(_))
        ));
        assert!(matches!(
            parse_json::<Shape>(b"{\"a\":", "a shape"),
            Err(HookError::BadRequest(_))
        ));
        assert_eq!(
            parse_json::<Shape>(b"{\"a\":\"x\"}", "a shape").unwrap().a,
            "x"
        );
    }
}
