//! Multi-part sends: a message a provider takes as several requests (one per attachment)
//! records which parts went through, so that a retry after a partial failure sends only
//! the rest. One sync-state key per conversation suffices, since a conversation's
//! messages are delivered one at a time: only the latest can be part-way.

use std::future::Future;

use serde::{Deserialize, Serialize};

use crate::connector::OutboundMessage;
use crate::context::ServiceContext;
use crate::error::DeliveryError;

/// The sync-state key of a conversation's send in progress.
pub fn progress_key(conversation_id: &str) -> String {
    format!("outbound_progress:{conversation_id}")
}

/// What is stored under [`progress_key`].
#[derive(Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Progress {
    /// The message's idempotency key.
    message: String,
    /// The provider's ids of the parts sent so far, in order.
    sent: Vec<Option<String>>,
}

impl Progress {
    /// Reads a stored value, also in the `"{key} {count}"` text that GBM stored before
    /// this was shared (its parts' ids are not kept: GBM's are derived from the key).
    fn parse(value: &str) -> Option<Progress> {
        if let Ok(p) = serde_json::from_str::<Progress>(value) {
            return Some(p);
        }
        let (message, n) = value.rsplit_once(' ')?;
        let n: usize = n.parse().ok()?;
        Some(Progress {
            message: message.to_owned(),
            sent: vec![None; n],
        })
    }
}

/// Sends the `parts` parts of `out` in order, `send(i)` sending part `i`, skipping those
/// an earlier attempt already sent, and returns each part's provider id. Progress is
/// stored (and committed) after every part but the last; a message of one part stores
/// nothing.
pub async fn send_parts<F, Fut>(
    ctx: &ServiceContext,
    out: &OutboundMessage,
    parts: usize,
    mut send: F,
) -> Result<Vec<Option<String>>, DeliveryError>
where
    F: FnMut(usize) -> Fut,
    Fut: Future<Output = Result<Option<String>, DeliveryError>>,
{
    let multi = parts > 1;
    let key = progress_key(&out.conversation.id);
    let mut progress = Progress {
        message: out.idempotency_key.clone(),
        sent: Vec::new(),
    };
    if multi
        && let Some(saved) = ctx.kv_get(&key).await?
        && let Some(saved) = Progress::parse(&saved)
        && saved.message == out.idempotency_key
        && saved.sent.len() <= parts
    {
        progress = saved;
    }
    for part in progress.sent.len()..parts {
        let id = send(part).await?;
        progress.sent.push(id);
        if multi && progress.sent.len() < parts {
            let value = serde_json::to_string(&progress).unwrap_or_default();
            ctx.kv_put(&key, &value).await?;
        }
    }
    Ok(progress.sent)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_both_stored_forms() {
        let json = r#"{"message":"sun-12","sent":["m1",null]}"#;
        assert_eq!(
            Progress::parse(json),
            Some(Progress {
                message: "sun-12".into(),
                sent: vec![Some("m1".into()), None]
            })
        );
        assert_eq!(
            Progress::parse("g-7 2"),
            Some(Progress {
                message: "g-7".into(),
                sent: vec![None, None]
            })
        );
        assert_eq!(Progress::parse("garbage"), None);
    }
}
