//! Mailgun's Messages API, all of this connector's HTTP: `POST {api_base}/v3/{domain}/messages`
//! with Basic `api:<key>`, the form for one reply, and how Mailgun's answers are read.

use std::time::Duration;

use sha2::{Digest, Sha256};
use switchboard_core::backoff::retry_after;
use switchboard_core::{CredentialWatch, DeliveryError, OutboundMessage, Secret};

use crate::config::MailgunParams;
use crate::thread::Thread;

/// One send may take this long.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The domain's Messages API and the key that sends through it.
#[derive(Debug)]
pub struct Client {
    url: url::Url,
    key: Secret,
}

impl Client {
    /// A client for the domain in `params`; fails at load when `api_base` cannot take
    /// the path.
    pub fn new(params: &MailgunParams) -> Result<Self, String> {
        let mut url = url::Url::parse(&params.api_base).map_err(|e| format!("api_base: {e}"))?;
        url.path_segments_mut()
            .map_err(|_| "api_base cannot take a path".to_owned())?
            .pop_if_empty()
            .extend(["v3", params.domain.trim(), "messages"]);
        Ok(Client {
            url,
            key: params.api_key.clone(),
        })
    }

    /// Sends one mail. A refused key (401) is told to `credentials` and answered as a
    /// transient error, so the reply waits for the key to be fixed.
    pub async fn send(
        &self,
        http: &reqwest::Client,
        credentials: &CredentialWatch,
        form: &[(&'static str, String)],
    ) -> Result<(), DeliveryError> {
        let body = serde_urlencoded::to_string(form)
            .map_err(|e| DeliveryError::permanent(format!("the mail cannot be encoded: {e}")))?;
        let resp = http
            .post(self.url.clone())
            .basic_auth("api", Some(self.key.expose()))
            .header(
                http::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .timeout(REQUEST_TIMEOUT)
            .body(body)
            .send()
            .await
            .map_err(|e| DeliveryError::from_reqwest(&e))?;
        let status = resp.status();
        let hint = retry_after(resp.headers());
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| DeliveryError::from_reqwest(&e))?;
        if status.is_success() {
            return Ok(());
        }
        let reason = reason(status, &bytes);
        if status == http::StatusCode::UNAUTHORIZED {
            return Err(credentials.refused(format!("Mailgun refused api_key: {reason}"), hint));
        }
        Err(DeliveryError::from_status(status, hint, reason))
    }
}

/// `Mailgun answered HTTP 400: <its message>`.
fn reason(status: http::StatusCode, body: &[u8]) -> String {
    let said = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("message")?.as_str().map(str::to_owned))
        .or_else(|| {
            // Mailgun answers some errors (401) as plain text.
            std::str::from_utf8(body).ok().map(str::to_owned)
        })
        .map(|m| m.trim().chars().take(300).collect::<String>())
        .filter(|m| !m.is_empty());
    match said {
        Some(m) => format!("Mailgun answered HTTP {}: {m}", status.as_u16()),
        None => format!("Mailgun answered HTTP {}", status.as_u16()),
    }
}

/// The Message-Id (without brackets) of the mail for the message with this
/// idempotency key: the same on every attempt, so a retried send is the same mail and
/// its receipts find the message.
pub fn message_id(idempotency_key: &str, domain: &str) -> String {
    let digest = Sha256::digest(idempotency_key.as_bytes());
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("sb.{hex}@{}", domain.trim())
}

/// The send form for `out` in `thread`: to the contact's address, `Re:` the thread's
/// subject, answering its latest mail. Files go as links at the end of the text: the
/// Messages API takes attachments only as uploads, and switchboard keeps media by URL.
pub fn form(
    params: &MailgunParams,
    out: &OutboundMessage,
    thread: Option<&Thread>,
) -> Result<Vec<(&'static str, String)>, DeliveryError> {
    let contact = &out.conversation.contact;
    let to = contact
        .email
        .as_deref()
        .and_then(crate::webhook::address)
        .or_else(|| crate::webhook::address(&contact.external_id))
        .map(|(_, a)| a)
        .ok_or_else(|| DeliveryError::permanent("the contact has no e-mail address"))?;
    let mut text = out.message.text.clone().unwrap_or_default();
    if !out.message.attachments.is_empty() {
        if !text.is_empty() {
            text.push_str("\n\n");
        }
        for a in &out.message.attachments {
            match &a.name {
                Some(n) => text.push_str(&format!("{n}: {}\n", a.url)),
                None => text.push_str(&format!("{}\n", a.url)),
            }
        }
    }
    if text.trim().is_empty() {
        return Err(DeliveryError::permanent(
            "the message has no text and no attachments",
        ));
    }
    let subject = thread
        .and_then(|t| t.subject.as_deref())
        .unwrap_or("your message");
    let subject = if subject
        .get(..3)
        .is_some_and(|p| p.eq_ignore_ascii_case("re:"))
    {
        subject.to_owned()
    } else {
        format!("Re: {subject}")
    };
    // Without a stored thread (its mail came before this was recorded), the
    // conversation's key is the thread's root.
    let refs: Vec<String> = match thread {
        Some(t) if !t.references.is_empty() => t.references.clone(),
        _ => out.conversation.external_id.iter().cloned().collect(),
    };
    let mut form = vec![
        ("from", params.from.clone()),
        ("to", to),
        ("subject", subject),
        ("text", text),
        (
            "h:Message-Id",
            format!("<{}>", message_id(&out.idempotency_key, &params.domain)),
        ),
    ];
    if let Some(last) = refs.last() {
        form.push(("h:In-Reply-To", format!("<{last}>")));
        let all: Vec<String> = refs.iter().map(|r| format!("<{r}>")).collect();
        form.push(("h:References", all.join(" ")));
    }
    Ok(form)
}
