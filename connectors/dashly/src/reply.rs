//! Outbound: an agent's or bot's message as a reply of the configured admin
//! (`POST /conversations/{id}/reply`, form fields `body` and `from_admin`).
//!
//! The reply method takes text only, so attachments go as their URLs, one a line after
//! the text. It takes no idempotency key either: a retry after an attempt whose answer
//! was lost posts again (at least once, never lost).

use switchboard_core::{
    CredentialWatch, Delivered, DeliveryError, OutboundMessage, ServiceContext,
};

use crate::client::{ApiError, Client};

/// The form's `body`: the text, then each attachment's URL on a line of its own.
pub fn body(out: &OutboundMessage) -> Result<String, DeliveryError> {
    let mut lines: Vec<&str> = Vec::new();
    if let Some(t) = out
        .message
        .text
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty())
    {
        lines.push(t);
    }
    lines.extend(out.message.attachments.iter().map(|a| a.url.as_str()));
    if lines.is_empty() {
        return Err(DeliveryError::permanent(
            "nothing to send: no text and no attachments",
        ));
    }
    Ok(lines.join("\n"))
}

/// Delivers one message as `admin_id`.
pub async fn deliver(
    client: &Client,
    credentials: &CredentialWatch,
    ctx: &ServiceContext,
    admin_id: &str,
    out: &OutboundMessage,
) -> Result<Delivered, DeliveryError> {
    let conversation = out
        .conversation
        .external_id
        .as_deref()
        .map(str::trim)
        .filter(|id| !id.is_empty())
        .ok_or_else(|| {
            DeliveryError::permanent("the conversation has no Dashly conversation id")
        })?;
    let text = body(out)?;
    match client.reply(ctx, conversation, admin_id, &text).await {
        Ok(part) => Ok(Delivered::sent(part)),
        Err(ApiError::Decode(e)) => {
            // Accepted with an unreadable answer: sent, without the part's id.
            tracing::warn!(error = %e, "Dashly accepted a reply with an unreadable answer");
            Ok(Delivered::sent(None))
        }
        Err(e) => Err(e.into_delivery(credentials)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_core::testkit::compliance::outbound;

    #[test]
    fn attachments_follow_the_text_as_urls() {
        let out = outbound(
            Some("c1"),
            "u1",
            " Hi Mary ",
            &["https://f.example/a.png", "https://f.example/b.pdf"],
        );
        assert_eq!(
            body(&out).unwrap(),
            "Hi Mary\nhttps://f.example/a.png\nhttps://f.example/b.pdf"
        );
        let only_file = outbound(Some("c1"), "u1", "  ", &["https://f.example/a.png"]);
        assert_eq!(body(&only_file).unwrap(), "https://f.example/a.png");
        let nothing = outbound(Some("c1"), "u1", "", &[]);
        assert!(matches!(
            body(&nothing),
            Err(DeliveryError::Permanent { .. })
        ));
    }
}
