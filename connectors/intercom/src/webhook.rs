//! `POST /hooks/{id}`: Intercom's signed notifications, as pure functions — the
//! signature check and the notification turned into what to store. The connector runs
//! them through the webhook-channel helper, which checks the signature before anything
//! is parsed. Intercom throttles a subscription we answer with 429 and pauses one that
//! keeps failing, so every outcome that retrying cannot change — duplicates, topics we
//! do not use, conversations with nothing of the contact's — is a 200.

use hmac::{Hmac, Mac};
use sha1::Sha1;
use switchboard_core::{HookError, HookResponse, Intake, Secret, Stored, parse_json};

use crate::payload::{Conversation, MESSAGE_TOPICS, Notification};

/// Checks `X-Hub-Signature: sha1=<hex HMAC-SHA1(client secret, raw body)>` in constant
/// time.
pub fn verify(secret: &Secret, header: Option<&str>, body: &[u8]) -> Result<(), HookError> {
    let presented = header
        .ok_or_else(|| HookError::Unauthorized("missing X-Hub-Signature".into()))?
        .trim();
    let hex = presented
        .strip_prefix("sha1=")
        .ok_or_else(|| HookError::Unauthorized("X-Hub-Signature is not sha1=<hex>".into()))?;
    let bytes = decode_hex(hex)
        .ok_or_else(|| HookError::Unauthorized("X-Hub-Signature is not sha1=<hex>".into()))?;
    let mut mac = Hmac::<Sha1>::new_from_slice(secret.expose().as_bytes())
        .expect("HMAC takes keys of any length");
    mac.update(body);
    mac.verify_slice(&bytes)
        .map_err(|_| HookError::Unauthorized("signature mismatch".into()))
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 || !s.is_ascii() {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok())
        .collect()
}

/// The contact's messages in one verified notification for workspace `app_id`, or an
/// answer for one that has none to store.
pub fn parse(app_id: &str, body: &[u8]) -> Result<Intake, HookError> {
    let note: Notification = parse_json(body, "an Intercom notification")?;
    if !MESSAGE_TOPICS.contains(&note.topic.as_str()) {
        tracing::debug!(topic = %note.topic, notification = ?note.id, "notification topic not used; acknowledged");
        return Ok(Intake::answered(ignored("topic")));
    }
    if let Some(app) = note.app_id.as_deref().filter(|a| *a != app_id) {
        // Signed with our client secret, so it is from our developer app, installed in
        // another workspace: not this service's to store.
        tracing::warn!(app_id = %app, notification = ?note.id, "notification for another Intercom workspace; acknowledged and ignored (check app_id)");
        return Ok(Intake::answered(ignored("app_id")));
    }
    let item = note
        .data
        .ok_or_else(|| HookError::Unprocessable("notification without data.item".into()))?
        .item;
    let conversation: Conversation = serde_json::from_value(item)
        .map_err(|e| HookError::Unprocessable(format!("data.item is not a conversation: {e}")))?;
    let messages = conversation.contact_messages();
    if messages.is_empty() {
        tracing::debug!(topic = %note.topic, conversation = %conversation.id, "notification carries no message of the contact");
    }
    Ok(Intake {
        messages,
        ..Intake::default()
    })
}

/// The answer once the contact's messages are committed: how many were new.
pub fn answer(stored: &Stored) -> HookResponse {
    HookResponse::json(&serde_json::json!({
        "status": "ok", "stored": stored.created(), "duplicates": stored.duplicates()
    }))
}

fn ignored(why: &str) -> HookResponse {
    HookResponse::json(&serde_json::json!({"status": "ignored", "reason": why}))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sign(secret: &str, body: &[u8]) -> String {
        let mut mac = Hmac::<Sha1>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(body);
        let hex: String = mac
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        format!("sha1={hex}")
    }

    #[test]
    fn signatures() {
        let secret = Secret::new("client-secret");
        let body = br#"{"topic":"ping"}"#;
        let good = sign("client-secret", body);
        assert!(verify(&secret, Some(&good), body).is_ok());
        assert!(
            verify(
                &secret,
                Some(&good.to_uppercase().replace("SHA1=", "sha1=")),
                body
            )
            .is_ok()
        );
        assert!(verify(&secret, Some(&good), br#"{"topic":"ping "}"#).is_err());
        assert!(verify(&secret, Some(&sign("other", body)), body).is_err());
        assert!(verify(&secret, None, body).is_err());
        assert!(verify(&secret, Some(good.trim_start_matches("sha1=")), body).is_err());
        assert!(verify(&secret, Some("sha1=zz"), body).is_err());
        assert!(verify(&secret, Some("sha1=abc"), body).is_err());
        assert!(verify(&secret, Some("sha1=é1"), body).is_err());
    }

    /// The signed-notifications page's example (secret not published): our check
    /// recomputes the documented algorithm, so any other secret fails it.
    #[test]
    fn the_documented_header_shape_is_accepted() {
        let body = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fixtures/docs_signed_notification_user_created.json"
        ))
        .unwrap();
        let secret = Secret::new("s3cr3t");
        assert!(verify(&secret, Some(&sign("s3cr3t", &body)), &body).is_ok());
        assert!(
            verify(
                &secret,
                Some("sha1=21ff2e149e0fdcac6f947740f6177f6434bda921"),
                &body
            )
            .is_err()
        );
    }
}
