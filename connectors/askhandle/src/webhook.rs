//! The hook without I/O: who may post (the secret path token, compared in constant
//! time: AskHandle signs nothing), and what a body asks for. AskHandle unsubscribes a
//! target that does not answer 200, so every well-formed event is acknowledged, even one
//! we ignore; only a body that is not AskHandle's envelope, or a message with no uuid
//! to key it by, is refused.

use switchboard_core::{HookError, HookHead, Secret, parse_json};

use crate::payload::{Envelope, Message, Room};

/// Checks the path `/hooks/{id}/{hook_token}`: a wrong or missing token is 401,
/// anything below a right token 404.
pub fn authorize(token: &Secret, head: &HookHead) -> Result<(), HookError> {
    head.require_path_token(token)
}

/// What a verified event asks for.
#[derive(Debug, Clone)]
pub enum Action {
    /// The bot or support answered in a room.
    Answer(Message),
    /// A room changed (`chat.added`): one no longer in bot use hands off.
    Room(Room),
    /// Acknowledged and dropped.
    Ignore(&'static str),
}

/// Reads a delivery. Not JSON is 400; JSON without `data` and `webhook.event`, or a
/// `message.added` whose message has no uuid or a blank one, is 422.
pub fn parse(body: &[u8]) -> Result<Action, HookError> {
    let env: Envelope = parse_json(body, "an AskHandle webhook delivery")?;
    let typed = |what: &str| HookError::Unprocessable(format!("data is not a {what}"));
    Ok(match env.webhook.event.as_str() {
        "message.added" => {
            let m: Message = serde_json::from_value(env.data).map_err(|_| typed("message"))?;
            if m.uuid.trim().is_empty() {
                // The answer's idempotency key: a blank one would make every such answer
                // the first one stored.
                return Err(HookError::Unprocessable("data.uuid is blank".into()));
            }
            if !m.is_support_sender {
                Action::Ignore("our own message, echoed")
            } else if m.body.as_deref().is_none_or(|b| b.trim().is_empty()) {
                Action::Ignore("an answer with no text")
            } else {
                Action::Answer(m)
            }
        }
        "chat.added" => Action::Room(serde_json::from_value(env.data).map_err(|_| typed("room"))?),
        "" => return Err(HookError::Unprocessable("webhook.event is empty".into())),
        _ => Action::Ignore("an event this version does not use"),
    })
}
