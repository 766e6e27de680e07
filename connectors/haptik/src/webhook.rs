//! The hook without I/O: who may post (the secret path token, compared in constant
//! time: Haptik signs nothing), and what a body asks for.

use switchboard_core::{AuthorType, HookError, HookHead, Secret, parse_json};

use crate::payload::Event;

/// Checks the path: `/hooks/{id}/{hook_token}`. A wrong or missing token is 401 (an
/// unknown path below the hook looks the same until the token matches); anything below
/// a right token is 404.
pub fn authorize(token: &Secret, head: &HookHead) -> Result<(), HookError> {
    head.require_path_token(token)
}

/// What a verified event asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// The bot or a Haptik agent answered user `auth_id`.
    Reply {
        /// Our contact id.
        auth_id: String,
        /// Haptik's message id.
        message_id: String,
        /// The text.
        text: String,
        /// `bot` for automated answers, `agent` for a person's.
        kind: AuthorType,
        /// The bot's or agent's name.
        name: Option<String>,
    },
    /// The chat was pinned to an agent: the bot hands off.
    Pinned {
        /// Our contact id.
        auth_id: String,
        /// Haptik's user name and conversation number, for the history import, when
        /// the event has them.
        history: Option<(String, String)>,
    },
    /// The chat is over.
    Complete {
        /// Our contact id.
        auth_id: String,
    },
    /// Acknowledged and dropped (Haptik disables a webhook that does not answer 200).
    Ignore(&'static str),
}

/// Reads an event. Not JSON is 400; JSON that is not a Haptik event (no `event_name`,
/// no `user.auth_id`, a `message` without its id or with a blank one) is 422.
pub fn parse(body: &[u8]) -> Result<Action, HookError> {
    let event: Event = parse_json(body, "a Haptik webhook event")?;
    let auth_id = || {
        event
            .user
            .as_ref()
            .map(|u| u.auth_id.clone())
            .filter(|a| !a.trim().is_empty())
            .ok_or_else(|| HookError::Unprocessable("user.auth_id is missing".into()))
    };
    Ok(match event.event_name.as_str() {
        "message" => {
            let auth_id = auth_id()?;
            let message = event
                .message
                .as_ref()
                .ok_or_else(|| HookError::Unprocessable("message is missing".into()))?;
            let message_id = message
                .id
                .non_blank()
                .ok_or_else(|| HookError::Unprocessable("message.id is blank".into()))?;
            let Some(text) = message.text() else {
                return Ok(Action::Ignore("a message with no text"));
            };
            let agent = event.agent.as_ref();
            let automated = agent.and_then(|a| a.is_automated).unwrap_or(true);
            Action::Reply {
                auth_id,
                message_id,
                text,
                kind: if automated {
                    AuthorType::Bot
                } else {
                    AuthorType::Agent
                },
                name: agent
                    .and_then(|a| a.name.clone())
                    .filter(|n| !n.trim().is_empty()),
            }
        }
        "chat_pinned" => Action::Pinned {
            auth_id: auth_id()?,
            history: event
                .user
                .as_ref()
                .and_then(|u| u.user_name.clone())
                .zip(event.conversation_no.as_ref().map(ToString::to_string)),
        },
        "chat_complete" => Action::Complete {
            auth_id: auth_id()?,
        },
        "" => return Err(HookError::Unprocessable("event_name is empty".into())),
        _ => Action::Ignore("an event this version does not use"),
    })
}
