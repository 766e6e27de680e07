//! Haptik's HTTP APIs, all of this connector's requests: the Log Message API (the
//! user's messages to the bot), `get_chat_history` v2.0 and `send_chat_to_agent` v2.0.
//! Each carries `Authorization: Bearer <token>` and `client-id`.
//!
//! Errors come as `{"error_message": …}`. Refused credentials and Haptik's "unknown
//! error" are transient (the message is held until they are fixed or Haptik recovers);
//! what names the request itself (a missing or invalid field, an inactive business or
//! team, a user with no chat) is permanent. Either way the text is kept.

use std::time::Duration;

use http::StatusCode;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use switchboard_core::backoff::retry_after;
use switchboard_core::{DeliveryError, Secret};

use crate::config::HaptikParams;
use crate::payload::{ErrorAnswer, History};

/// How long one request may take (Haptik answers its own webhooks within 5 s).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

/// Haptik's endpoints and credentials.
#[derive(Debug, Clone)]
pub struct Client {
    base: String,
    token: Secret,
    client_id: String,
    business_id: String,
}

impl Client {
    /// A client for the integration in `params`.
    pub fn new(params: &HaptikParams) -> Self {
        Client {
            base: params.base().to_owned(),
            token: params.token.clone(),
            client_id: params.client_id.clone(),
            business_id: params.business_id.0.clone(),
        }
    }

    fn authed(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        req.bearer_auth(self.token.expose())
            .header("client-id", &self.client_id)
            .timeout(REQUEST_TIMEOUT)
    }

    fn business(&self) -> Value {
        // Haptik documents business_id as a number; the params hold digits only.
        self.business_id
            .parse::<u64>()
            .map_or_else(|_| json!(self.business_id), |n| json!(n))
    }

    /// `POST {base}/v1.0/log_message_from_user/`: the user `auth_id` (our contact id)
    /// says `text` to the bot.
    pub async fn log_message(
        &self,
        http: &reqwest::Client,
        auth_id: &str,
        text: &str,
    ) -> Result<(), DeliveryError> {
        let body = json!({
            "user": {"auth_id": auth_id},
            "message_body": text,
            "message_type": 0,
            "business_id": self.business(),
        });
        let url = format!("{}/v1.0/log_message_from_user/", self.base);
        let _: Value = send(
            self.authed(http.post(url)).json(&body),
            "logging the message",
        )
        .await?;
        Ok(())
    }

    /// `GET {base}/integration/external/v2.0/get_chat_history/`: chat `conversation_no`
    /// of Haptik user `user_name`.
    pub async fn chat_history(
        &self,
        http: &reqwest::Client,
        user_name: &str,
        conversation_no: &str,
    ) -> Result<History, DeliveryError> {
        let url = format!("{}/integration/external/v2.0/get_chat_history/", self.base);
        let query = [
            ("business_id", self.business_id.as_str()),
            ("user_name", user_name),
            ("conversation_no", conversation_no),
            ("response_type", "json"),
        ];
        send(
            self.authed(http.get(url)).query(&query),
            "fetching the chat history",
        )
        .await
    }

    /// `POST {base}/integration/external/v2.0/send_chat_to_agent/`: queues the chat of
    /// Haptik user `user_name` for Haptik's team `team_name`.
    pub async fn send_chat_to_agent(
        &self,
        http: &reqwest::Client,
        user_name: &str,
        team_name: &str,
    ) -> Result<(), DeliveryError> {
        let url = format!(
            "{}/integration/external/v2.0/send_chat_to_agent/",
            self.base
        );
        let body = json!({
            "team_name": team_name,
            "user_name": user_name,
            "business_id": self.business(),
        });
        let _: Value = send(
            self.authed(http.post(url)).json(&body),
            "sending the chat to the team",
        )
        .await?;
        Ok(())
    }
}

/// Sends `req` and reads a 2xx answer as `T`; an error answer (or a 2xx carrying
/// `error_message`) is classified by [`classify`]. Never shows the URL or the token.
async fn send<T: DeserializeOwned>(
    req: reqwest::RequestBuilder,
    what: &str,
) -> Result<T, DeliveryError> {
    let resp = req
        .send()
        .await
        .map_err(|e| DeliveryError::from_reqwest_within(&e, REQUEST_TIMEOUT))?;
    let status = resp.status();
    let hint = retry_after(resp.headers());
    let body = resp
        .bytes()
        .await
        .map_err(|e| DeliveryError::from_reqwest_within(&e, REQUEST_TIMEOUT))?;
    let error = serde_json::from_slice::<ErrorAnswer>(&body).ok();
    if status.is_success() && error.is_none() {
        return serde_json::from_slice(&body).map_err(|e| {
            DeliveryError::transient(format!("{what}: Haptik's answer is not understood: {e}"))
        });
    }
    let text = error.map_or_else(
        || String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned(),
        |e| e.error_message,
    );
    Err(classify(status, hint, what, &text))
}

/// Permanent or transient, by Haptik's status and words; see the module docs.
pub fn classify(
    status: StatusCode,
    hint: Option<Duration>,
    what: &str,
    text: &str,
) -> DeliveryError {
    let reason = format!("{what}: Haptik answered {}: {text}", status.as_u16());
    let lower = text.to_lowercase();
    let credentials = ["token", "client_id", "authorization"]
        .iter()
        .any(|w| lower.contains(w));
    if credentials || matches!(status.as_u16(), 401 | 403) || lower.contains("unknown error") {
        return DeliveryError::Transient {
            reason,
            retry_after: hint,
        };
    }
    if status.is_success() {
        // An error body with 200: the request itself was refused.
        return DeliveryError::permanent(reason);
    }
    DeliveryError::from_status(status, hint, reason)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn permanent(e: &DeliveryError) -> bool {
        matches!(e, DeliveryError::Permanent { .. })
    }

    #[test]
    fn the_seeds_error_messages_map_to_permanent_or_transient_with_their_text() {
        let bad = StatusCode::BAD_REQUEST;
        for (text, is_permanent) in [
            ("client_id missing in headers", false),
            ("invalid client_id in headers", false),
            ("invalid authorization in headers", false),
            ("token missing in headers", false),
            ("Invalid token", false),
            ("An unknown error occurred", false),
            ("user_name missing in the request", true),
            ("business_id missing in the request", true),
            ("invalid team_name provided", true),
            ("business \"343\" is inactive", true),
            ("team \"support\" is inactive", true),
            ("user has not sent a message", true),
            ("Argument group validation: no valid group.", true),
        ] {
            let e = classify(bad, None, "x", text);
            assert_eq!(permanent(&e), is_permanent, "{text}");
            assert!(e.to_string().contains(text), "{e}");
        }
        assert!(!permanent(&classify(
            StatusCode::SERVICE_UNAVAILABLE,
            None,
            "x",
            "down"
        )));
        assert!(permanent(&classify(
            StatusCode::OK,
            None,
            "x",
            "invalid user_name"
        )));
    }
}
