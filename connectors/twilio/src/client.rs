//! Twilio's REST API, all of this connector's HTTP: create a Message (the form for one
//! of our messages, and who it goes from), check the credentials, and turn Twilio's
//! error answers (`{code, message, more_info, status}`) into delivery errors.

use std::time::Duration;

use serde::Deserialize;
use switchboard_core::backoff::retry_after;
use switchboard_core::{
    ConnectorError, CredentialWatch, DeliveryError, OutboundMessage, Secret, refuses_credentials,
};

use crate::config::TwilioParams;
use crate::webhook;

/// The account's endpoints, credentials and sender.
#[derive(Debug, Clone)]
pub struct Client {
    account_sid: String,
    auth_token: Secret,
    messages_url: String,
    account_url: String,
    timeout: Duration,
    from: Option<String>,
    messaging_service_sid: Option<String>,
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
            from: params.from.clone(),
            messaging_service_sid: params.messaging_service_sid.clone(),
        }
    }

    /// The Create Message form for `out`, with Twilio's status callbacks going to
    /// `status_callback`.
    pub fn message_form(
        &self,
        out: &OutboundMessage,
        status_callback: &str,
    ) -> Result<Vec<(&'static str, String)>, DeliveryError> {
        let to = out.conversation.contact.external_id.as_str();
        let text = out.message.text.as_deref().filter(|t| !t.is_empty());
        if text.is_none() && out.message.attachments.is_empty() {
            return Err(DeliveryError::permanent(
                "nothing to send: the message has neither text nor attachments",
            ));
        }
        let mut form = vec![("To", to.to_owned())];
        match &self.messaging_service_sid {
            Some(mg) => form.push(("MessagingServiceSid", mg.clone())),
            None => {
                let pair = out.conversation.external_id.as_deref();
                let from = sender(pair, self.from.as_deref(), to).ok_or_else(|| {
                    DeliveryError::permanent(
                        "no sender: the conversation names none and from is not set",
                    )
                })?;
                form.push(("From", from));
            }
        }
        if let Some(text) = text {
            form.push(("Body", text.to_owned()));
        }
        for a in &out.message.attachments {
            form.push(("MediaUrl", a.url.clone()));
        }
        form.push(("StatusCallback", status_callback.to_owned()));
        Ok(form)
    }

    /// `POST /2010-04-01/Accounts/{AccountSid}/Messages.json`; Twilio's sid on 201.
    /// Refused credentials (401, 403) are told to `credentials` and answered as a
    /// transient error, so the message waits for them to be fixed.
    pub async fn create_message(
        &self,
        http: &reqwest::Client,
        credentials: &CredentialWatch,
        form: &[(&'static str, String)],
    ) -> Result<Option<String>, DeliveryError> {
        let resp = http
            .post(&self.messages_url)
            .basic_auth(&self.account_sid, Some(self.auth_token.expose()))
            .timeout(self.timeout)
            .form(form)
            .send()
            .await
            .map_err(|e| DeliveryError::from_reqwest(&e))?;
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
        if refuses_credentials(status) {
            // Our credentials (or the account's access), not the message, are wrong.
            return Err(
                credentials.refused(format!("Twilio rejected the credentials: {reason}"), hint)
            );
        }
        Err(DeliveryError::from_status(status, hint, reason))
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

/// The address a reply to `to` goes from: where the contact wrote to (our half of the
/// conversation key), else `from`, in the contact's channel (`whatsapp:`) when `from` was
/// given as a bare number.
pub fn sender(conversation_key: Option<&str>, from: Option<&str>, to: &str) -> Option<String> {
    if let Some(ours) = conversation_key.and_then(webhook::our_address) {
        return Some(ours.to_owned());
    }
    let from = from?;
    Some(match to.split_once(':') {
        Some((channel, _)) if !from.contains(':') => format!("{channel}:{from}"),
        _ => from.to_owned(),
    })
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
