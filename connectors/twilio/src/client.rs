//! Twilio's REST API: create a Message, check the credentials, and turn Twilio's error
//! answers (`{code, message, more_info, status}`) into delivery errors.

use std::time::Duration;

use serde::Deserialize;
use switchboard_core::backoff::retry_after;
use switchboard_core::{ConnectorError, DeliveryError, Secret};

use crate::config::TwilioParams;

/// The account's endpoints and credentials.
#[derive(Debug, Clone)]
pub struct Client {
    account_sid: String,
    auth_token: Secret,
    messages_url: String,
    account_url: String,
    timeout: Duration,
}

/// How a send failed, with what the connector must know beyond the retry decision.
#[derive(Debug)]
pub struct SendFailure {
    /// The classified error for the dispatcher.
    pub error: DeliveryError,
    /// Twilio refused our credentials (HTTP 401): the service itself is broken.
    pub auth_rejected: bool,
}

/// The part of a Message resource we use.
#[derive(Debug, Deserialize)]
struct MessageResource {
    sid: Option<String>,
}

/// Twilio's error body.
#[derive(Debug, Deserialize)]
struct TwilioError {
    code: Option<i64>,
    message: Option<String>,
}

impl Client {
    /// A client for the account in `params`.
    pub fn new(params: &TwilioParams) -> Self {
        let account = format!(
            "{}/2010-04-01/Accounts/{}",
            params.api_base(),
            params.account_sid
        );
        Client {
            account_sid: params.account_sid.clone(),
            auth_token: params.auth_token.clone(),
            messages_url: format!("{account}/Messages.json"),
            account_url: format!("{account}.json"),
            timeout: params.timeout.0,
        }
    }

    /// `POST /2010-04-01/Accounts/{AccountSid}/Messages.json`; Twilio's sid on 201.
    pub async fn create_message(
        &self,
        http: &reqwest::Client,
        form: &[(&str, &str)],
    ) -> Result<Option<String>, SendFailure> {
        let resp = http
            .post(&self.messages_url)
            .basic_auth(&self.account_sid, Some(self.auth_token.expose()))
            .timeout(self.timeout)
            .form(form)
            .send()
            .await
            .map_err(|e| SendFailure {
                error: DeliveryError::from_reqwest(&e),
                auth_rejected: false,
            })?;
        let status = resp.status();
        if status.is_success() {
            let body = resp.bytes().await.unwrap_or_default();
            let sid = serde_json::from_slice::<MessageResource>(&body)
                .ok()
                .and_then(|m| m.sid);
            if sid.is_none() {
                tracing::warn!(
                    status = status.as_u16(),
                    "Twilio accepted a message without naming its sid; its status callbacks cannot be matched"
                );
            }
            return Ok(sid);
        }
        let hint = retry_after(resp.headers());
        let body = resp.bytes().await.unwrap_or_default();
        let reason = error_reason(status, &body);
        if status == http::StatusCode::UNAUTHORIZED {
            // Our credentials, not the message, are wrong: keep the message queued (it goes
            // out once they are fixed) instead of failing every reply until then.
            return Err(SendFailure {
                error: DeliveryError::Transient {
                    reason: format!("Twilio rejected the credentials: {reason}"),
                    retry_after: hint,
                },
                auth_rejected: true,
            });
        }
        Err(SendFailure {
            error: DeliveryError::from_status(status, hint, reason),
            auth_rejected: false,
        })
    }

    /// `GET /2010-04-01/Accounts/{AccountSid}.json`: whether the credentials work.
    pub async fn check_account(&self, http: &reqwest::Client) -> Result<(), ConnectorError> {
        let resp = http
            .get(&self.account_url)
            .basic_auth(&self.account_sid, Some(self.auth_token.expose()))
            .timeout(self.timeout)
            .send()
            .await
            .map_err(|e| {
                ConnectorError::Transient(format!(
                    "Twilio API: {}",
                    DeliveryError::from_reqwest(&e)
                ))
            })?;
        let status = resp.status();
        if status.is_success() {
            return Ok(());
        }
        let body = resp.bytes().await.unwrap_or_default();
        let reason = error_reason(status, &body);
        Err(match status.as_u16() {
            401 | 403 => {
                ConnectorError::Auth(format!("Twilio rejected account_sid/auth_token: {reason}"))
            }
            404 => ConnectorError::Fatal(format!(
                "Twilio does not know account {}: {reason}",
                self.account_sid
            )),
            _ => ConnectorError::Transient(format!("Twilio API: {reason}")),
        })
    }
}

/// `HTTP 400, Twilio error 21211: Invalid 'To' Phone Number` from Twilio's error body, or
/// the status alone when the body is not Twilio's JSON (a proxy's page, say).
pub fn error_reason(status: http::StatusCode, body: &[u8]) -> String {
    let parsed = serde_json::from_slice::<TwilioError>(body).ok();
    match parsed {
        Some(TwilioError {
            code: Some(code),
            message,
        }) => match message {
            Some(m) => format!("HTTP {}, Twilio error {code}: {m}", status.as_u16()),
            None => format!("HTTP {}, Twilio error {code}", status.as_u16()),
        },
        Some(TwilioError {
            code: None,
            message: Some(m),
        }) => format!("HTTP {}: {m}", status.as_u16()),
        _ => format!("HTTP {}", status.as_u16()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_reasons_carry_twilios_code_and_message() {
        let body = br#"{"code": 21211, "message": "Invalid 'To' Phone Number: +3161234", "more_info": "https://www.twilio.com/docs/errors/21211", "status": 400}"#;
        assert_eq!(
            error_reason(http::StatusCode::BAD_REQUEST, body),
            "HTTP 400, Twilio error 21211: Invalid 'To' Phone Number: +3161234"
        );
        assert_eq!(
            error_reason(http::StatusCode::BAD_GATEWAY, b"<html>bad gateway</html>"),
            "HTTP 502"
        );
        assert_eq!(
            error_reason(http::StatusCode::TOO_MANY_REQUESTS, br#"{"code": 20429}"#),
            "HTTP 429, Twilio error 20429"
        );
    }
}
