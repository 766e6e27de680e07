//! Mailgun's webhooks, pure: the `timestamp`/`token`/`signature` triple both kinds carry,
//! a route's forwarded mail, and an event webhook's receipt. No I/O: threading (which
//! earlier message a mail answers) is looked up by the connector.

use std::fmt::Write as _;

use serde_json::Value;
use sha2::{Digest, Sha256};
use switchboard_core::model::Attachment;
use switchboard_core::{
    ContactInfo, HookError, InboundMessage, MessageStatus, Nonce, Receipt, mac,
};

use crate::form::Form;

/// How far a request's `timestamp` may be from our clock.
pub const WINDOW: jiff::SignedDuration = jiff::SignedDuration::from_secs(300);
/// Longest Message-Id kept (RFC 5322's line limit).
const ID_MAX: usize = 998;

/// Checks the triple: `signature` = hex HMAC-SHA256(signing key, `timestamp` + `token`),
/// compared in constant time, and `timestamp` within [`WINDOW`] of `now`. The token is
/// returned as the nonce the request must be the first to use; it may be forgotten once
/// a request with its timestamp would be stale anyway.
pub fn check_signature(
    key: &[u8],
    timestamp: Option<&str>,
    token: Option<&str>,
    signature: Option<&str>,
    now: jiff::Timestamp,
) -> Result<Nonce, HookError> {
    let (Some(timestamp), Some(token), Some(signature)) = (timestamp, token, signature) else {
        return Err(HookError::Unauthorized(
            "timestamp, token and signature are required".into(),
        ));
    };
    let (timestamp, token) = (timestamp.trim(), token.trim());
    if token.is_empty() || token.len() > 256 {
        return Err(HookError::Unauthorized("token: 1-256 characters".into()));
    }
    if !mac::hmac_sha256_hex_matches(key, &[timestamp.as_bytes(), token.as_bytes()], signature) {
        return Err(HookError::Unauthorized(
            "signature does not sign timestamp and token with signing_key".into(),
        ));
    }
    let at = timestamp
        .parse::<i64>()
        .ok()
        .and_then(|s| jiff::Timestamp::from_second(s).ok())
        .ok_or_else(|| HookError::Unauthorized("timestamp: not unix seconds".into()))?;
    if now.duration_since(at).abs() > WINDOW {
        return Err(HookError::Unauthorized(format!(
            "timestamp is more than {} s from our clock: stale or replayed",
            WINDOW.as_secs()
        )));
    }
    // A request with this timestamp is stale once `WINDOW` has passed; a minute more
    // covers the time between the check and the commit.
    let keep = WINDOW + jiff::SignedDuration::from_secs(60);
    Ok(Nonce {
        value: token.to_owned(),
        expires_at: at.checked_add(keep).unwrap_or(jiff::Timestamp::MAX),
    })
}

/// An address of a `From`/`To` value: `Name <a@b>`, `"Last, First" <a@b>` or `a@b`; the
/// name (if any) and the address, lower-cased.
pub fn address(value: &str) -> Option<(Option<String>, String)> {
    let value = value.trim();
    let (name, addr) = match (value.rfind('<'), value.rfind('>')) {
        (Some(l), Some(r)) if l < r => (Some(value[..l].trim()), &value[l + 1..r]),
        _ => (None, value),
    };
    let addr = addr.trim();
    let (local, domain) = addr.split_once('@')?;
    let ok = |s: &str| !s.is_empty() && !s.contains(['@', '<', '>', ' ', ',', '\t', '\r', '\n']);
    if !ok(local) || !ok(domain) || addr.len() > 320 {
        return None;
    }
    let name = name
        .map(|n| n.trim_matches('"').trim().to_owned())
        .filter(|n| !n.is_empty());
    Some((name, addr.to_ascii_lowercase()))
}

/// The Message-Ids in a header value (`<a@b> <c@d>`), without their angle brackets; a
/// value without brackets is one id.
pub fn message_ids(value: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = value;
    while let Some(l) = rest.find('<') {
        let Some(r) = rest[l..].find('>') else { break };
        let id = rest[l + 1..l + r].trim();
        if !id.is_empty() && id.len() <= ID_MAX && !out.iter().any(|o| o == id) {
            out.push(id.to_owned());
        }
        rest = &rest[l + r + 1..];
    }
    if out.is_empty() {
        let id = value.trim();
        if !id.is_empty() && id.len() <= ID_MAX && !id.contains(char::is_whitespace) {
            out.push(id.to_owned());
        }
    }
    out
}

/// A forwarded mail, as switchboard keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mail {
    /// Its Message-Id without brackets: the dedupe key. Synthesized from the sender,
    /// date, subject and body when the mail has none, so that a retry finds it.
    pub message_id: String,
    /// `In-Reply-To`: the message it answers.
    pub in_reply_to: Option<String>,
    /// `References`: the thread so far, root first.
    pub references: Vec<String>,
    /// The sender's display name.
    pub name: Option<String>,
    /// The sender's address, lower-cased: the contact.
    pub address: String,
    /// `subject`.
    pub subject: Option<String>,
    /// What the contact wrote: `stripped-text` (quoted history and signature removed),
    /// else `body-plain`; files not kept are named at its end.
    pub text: String,
    /// The whole `body-plain`, when it differs from `text`.
    pub full_text: Option<String>,
    /// Files the route stored, by URL (`attachments` of a stored message).
    pub attachments: Vec<Attachment>,
}

impl Mail {
    /// The thread key when none of its references is a stored message: the root of
    /// `References`, else `In-Reply-To`, else the mail itself. Every mail of a thread
    /// that keeps its References names the same root.
    pub fn root(&self) -> &str {
        self.references
            .first()
            .or(self.in_reply_to.as_ref())
            .unwrap_or(&self.message_id)
    }

    /// The message to store, in the conversation with thread key `conversation`.
    pub fn inbound(&self, conversation: String) -> InboundMessage {
        InboundMessage {
            external_id: self.message_id.clone(),
            contact: ContactInfo {
                external_id: self.address.clone(),
                name: self.name.clone(),
                email: Some(self.address.clone()),
                phone: None,
            },
            conversation_external_id: Some(conversation),
            text: Some(self.text.clone()).filter(|t| !t.is_empty()),
            attachments: self.attachments.clone(),
        }
    }

    /// The ids it refers to, nearest first: `In-Reply-To`, then `References` from the
    /// newest back to the root.
    pub fn referenced(&self) -> Vec<&str> {
        let mut out: Vec<&str> = self.in_reply_to.iter().map(String::as_str).collect();
        for r in self.references.iter().rev() {
            if !out.contains(&r.as_str()) {
                out.push(r);
            }
        }
        out
    }
}

/// A MIME header of the forward: its own field, else its entry in `message-headers`
/// (a JSON list of `[name, value]` pairs).
fn header(form: &Form, name: &str) -> Option<String> {
    if let Some(v) = form.get_ci(name) {
        return Some(v.to_owned());
    }
    let list: Vec<(String, String)> = serde_json::from_str(form.get("message-headers")?).ok()?;
    list.into_iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
}

/// Reads a route's forward. The sender (`from`, else `sender`) is required (422).
pub fn mail(form: &Form) -> Result<Mail, HookError> {
    let from = form
        .get("from")
        .and_then(address)
        .or_else(|| form.get("sender").and_then(address))
        .ok_or_else(|| HookError::Unprocessable("from: expected the sender's address".into()))?;
    let (name, addr) = from;
    let subject = form
        .get("subject")
        .or_else(|| form.get_ci("Subject"))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned);
    let plain = form
        .get("body-plain")
        .map(str::trim_end)
        .filter(|t| !t.trim().is_empty());
    let stripped = form
        .get("stripped-text")
        .map(str::trim_end)
        .filter(|t| !t.trim().is_empty());
    let mut text = stripped.or(plain).unwrap_or("").to_owned();
    let full_text = plain.filter(|p| *p != text).map(str::to_owned);

    let attachments = stored_attachments(form)?;
    let mut notes = String::new();
    for f in &form.files {
        let shown = f.name.as_deref().unwrap_or(&f.field);
        let shown: String = shown
            .chars()
            .filter(|c| !c.is_control())
            .take(200)
            .collect();
        let _ = write!(notes, "\n[file not kept: {shown}]");
    }
    text.push_str(&notes);
    let mut text = text.trim().to_owned();
    if text.is_empty() && attachments.is_empty() {
        // A mail with only HTML, or nothing at all: still a message the agent sees.
        text = match &subject {
            Some(s) => format!("[no text] {s}"),
            None => "[an empty e-mail]".to_owned(),
        };
    }

    let message_id = header(form, "Message-Id")
        .and_then(|v| message_ids(&v).into_iter().next())
        .unwrap_or_else(|| synthesized_id(form, &addr));
    let in_reply_to = header(form, "In-Reply-To").and_then(|v| message_ids(&v).into_iter().next());
    let references: Vec<String> = header(form, "References")
        .map(|v| message_ids(&v))
        .unwrap_or_default()
        .into_iter()
        .filter(|r| *r != message_id)
        .collect();
    Ok(Mail {
        in_reply_to: in_reply_to.filter(|r| *r != message_id),
        message_id,
        references,
        name,
        address: addr,
        subject,
        text,
        full_text,
        attachments,
    })
}

/// `attachments`: the JSON list a stored message's notification carries.
fn stored_attachments(form: &Form) -> Result<Vec<Attachment>, HookError> {
    let Some(raw) = form.get("attachments").filter(|a| !a.trim().is_empty()) else {
        return Ok(Vec::new());
    };
    let list: Vec<Value> = serde_json::from_str(raw)
        .map_err(|e| HookError::Unprocessable(format!("attachments: not a JSON list: {e}")))?;
    let text = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
    Ok(list
        .iter()
        .filter_map(|a| {
            let att = Attachment {
                url: text(a, "url")?,
                content_type: text(a, "content-type").or_else(|| text(a, "content_type")),
                name: text(a, "name").filter(|n| !n.trim().is_empty()),
            };
            att.has_http_url().then_some(att)
        })
        .collect())
}

/// A stable id for a mail without a Message-Id: the same mail retried gets the same.
fn synthesized_id(form: &Form, addr: &str) -> String {
    let mut h = Sha256::new();
    for part in [
        Some(addr),
        header(form, "Date").as_deref(),
        form.get("subject"),
        form.get("body-plain"),
    ] {
        h.update(part.unwrap_or("").as_bytes());
        h.update([0]);
    }
    let hex: String = h.finalize()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("nomsgid-{hex}@switchboard.invalid")
}

/// The signature triple of an event webhook, which rides in its JSON `signature` object.
pub fn event_signature(v: &Value) -> (Option<&str>, Option<&str>, Option<&str>) {
    let s = &v["signature"];
    (
        s["timestamp"].as_str(),
        s["token"].as_str(),
        s["signature"].as_str(),
    )
}

/// The receipt an event webhook carries: `delivered`, `opened` (read), and `failed` with
/// `severity: permanent`. A temporary failure (Mailgun tries again) and other events
/// (`accepted`, `clicked`, `unsubscribed`, …) move nothing: `None`.
pub fn event(v: &Value) -> Result<Option<Receipt>, HookError> {
    let data = v
        .get("event-data")
        .filter(|d| d.is_object())
        .ok_or_else(|| HookError::Unprocessable("event-data: expected an object".into()))?;
    let kind = data["event"]
        .as_str()
        .ok_or_else(|| HookError::Unprocessable("event-data.event: expected a string".into()))?;
    let status = match kind {
        "delivered" => MessageStatus::Delivered,
        "opened" => MessageStatus::Read,
        "failed" if data["severity"] == "permanent" => MessageStatus::Failed,
        _ => return Ok(None),
    };
    let id = data["message"]["headers"]["message-id"]
        .as_str()
        .and_then(|m| message_ids(m).into_iter().next())
        .ok_or_else(|| {
            HookError::Unprocessable("event-data.message.headers.message-id: expected an id".into())
        })?;
    let error = (status == MessageStatus::Failed).then(|| failure(data));
    Ok(Some(Receipt {
        external_id: id,
        status,
        error,
    }))
}

/// Why Mailgun gave up: the receiving server's answer and Mailgun's reason.
fn failure(data: &Value) -> String {
    let ds = &data["delivery-status"];
    let words = [&ds["description"], &ds["message"]]
        .into_iter()
        .filter_map(Value::as_str)
        .map(str::trim)
        .find(|s| !s.is_empty());
    let mut out = String::from("Mailgun could not deliver the mail");
    if let Some(code) = ds["code"].as_i64() {
        let _ = write!(out, " (SMTP {code})");
    }
    if let Some(w) = words {
        out.push_str(": ");
        out.extend(w.chars().take(300));
    }
    if let Some(r) = data["reason"].as_str().filter(|r| !r.trim().is_empty()) {
        let _ = write!(out, " [reason: {}]", r.chars().take(60).collect::<String>());
    }
    out
}
