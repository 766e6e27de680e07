//! Haptik's wire types: the webhook events ("Which information is sent as Webhook
//! Payload?"), the v2.0 chat history and the `{"error_message": …}` error body, and
//! Haptik's own timestamp format (`06/22/20 07:24:25 AM UTC`).

use jiff::Timestamp;
use serde::Deserialize;
use serde_json::Value;

/// One webhook event. Fields Haptik documents that we do not use are ignored.
#[derive(Debug, Deserialize)]
pub struct Event {
    /// `message`, `chat_pinned` or `chat_complete`.
    pub event_name: String,
    /// The user the event is about; `auth_id` is the id we gave (our contact id).
    #[serde(default)]
    pub user: Option<User>,
    /// Who sent a `message`: the bot (`is_automated`) or a Haptik agent.
    #[serde(default)]
    pub agent: Option<Agent>,
    /// The message of a `message` event.
    #[serde(default)]
    pub message: Option<EventMessage>,
    /// The chat's conversation number, where Haptik includes it (not in the documented
    /// example; the history import needs it).
    #[serde(default)]
    pub conversation_no: Option<NumberOrString>,
}

/// `user` of an event.
#[derive(Debug, Deserialize)]
pub struct User {
    /// Our id for the user: our contact id.
    pub auth_id: String,
    /// Haptik's own user name, which its history and send-to-agent APIs take.
    #[serde(default)]
    pub user_name: Option<String>,
}

/// `agent` of an event.
#[derive(Debug, Deserialize)]
pub struct Agent {
    /// The agent's or bot's name (`gogo` is Haptik's AI engine).
    #[serde(default)]
    pub name: Option<String>,
    /// True for the bot's answers, false for a human agent's.
    #[serde(default)]
    pub is_automated: Option<bool>,
}

/// `message` of an event.
#[derive(Debug, Deserialize)]
pub struct EventMessage {
    /// Haptik's numeric message id.
    pub id: NumberOrString,
    /// The message: an HSL object with `text`, or plain text.
    #[serde(default)]
    pub body: Value,
}

impl EventMessage {
    /// The text the contact should see, if the message has any.
    pub fn text(&self) -> Option<String> {
        body_text(&self.body)
    }
}

/// The text of an HSL body (`{"text": …, "type": …}`) or of a plain string; a body
/// serialized to a string (as some Haptik APIs send HSL) is read as JSON first.
pub fn body_text(body: &Value) -> Option<String> {
    let text = match body {
        Value::String(s) => match serde_json::from_str::<Value>(s) {
            Ok(v @ Value::Object(_)) => return body_text(&v),
            _ => Some(s.clone()),
        },
        Value::Object(o) => o.get("text").and_then(Value::as_str).map(str::to_owned),
        _ => None,
    };
    text.filter(|t| !t.trim().is_empty())
}

/// An id Haptik sends as a number or a string.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum NumberOrString {
    /// `1742`.
    Number(i64),
    /// `"1742"`.
    String(String),
}

impl NumberOrString {
    /// The id as text, unless it is blank: an id keys what it names (`msg-<id>`), and a
    /// blank one would make every such message one.
    pub fn non_blank(&self) -> Option<String> {
        Some(self.to_string()).filter(|s| !s.trim().is_empty())
    }
}

impl std::fmt::Display for NumberOrString {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NumberOrString::Number(n) => write!(f, "{n}"),
            NumberOrString::String(s) => f.write_str(s),
        }
    }
}

/// `GET …/v2.0/get_chat_history/` with `response_type=json`.
#[derive(Debug, Deserialize)]
pub struct History {
    /// The chat's messages.
    #[serde(default)]
    pub chat_json: Vec<HistoryMessage>,
}

/// One message of a chat's history.
#[derive(Debug, Clone, Deserialize)]
pub struct HistoryMessage {
    /// The text.
    #[serde(default)]
    pub text: Option<String>,
    /// `user`, `bot`, or an agent's name (`agent(<name>)` in v1.0).
    pub sender: String,
    /// Haptik's message id, the same the `message` webhook carries.
    pub message_id: NumberOrString,
    /// `06/22/20 07:24:25 AM UTC`.
    pub timestamp: String,
}

/// Who sent a history message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sender {
    /// The user (our contact): we sent it there.
    User,
    /// The bot.
    Bot,
    /// A Haptik agent, by name.
    Agent(String),
}

impl HistoryMessage {
    /// Its sender.
    pub fn sender(&self) -> Sender {
        match self.sender.as_str() {
            "user" => Sender::User,
            "bot" => Sender::Bot,
            other => {
                let name = other
                    .strip_prefix("agent(")
                    .and_then(|s| s.strip_suffix(')'))
                    .unwrap_or(other);
                Sender::Agent(name.to_owned())
            }
        }
    }

    /// When it was sent, from Haptik's format.
    pub fn time(&self) -> Option<Timestamp> {
        parse_time(&self.timestamp)
    }
}

/// Parses Haptik's `MM/DD/YY hh:mm:ss AM UTC`.
pub fn parse_time(s: &str) -> Option<Timestamp> {
    let local = s.trim().strip_suffix("UTC")?.trim_end();
    let dt = jiff::civil::DateTime::strptime("%m/%d/%y %I:%M:%S %p", local).ok()?;
    dt.to_zoned(jiff::tz::TimeZone::UTC)
        .ok()
        .map(|z| z.timestamp())
}

/// Haptik's error body.
#[derive(Debug, Deserialize)]
pub struct ErrorAnswer {
    /// What went wrong, in Haptik's words.
    pub error_message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn haptik_timestamps_are_read_in_utc_with_their_twelve_hour_clock() {
        let t = parse_time("06/22/20 07:24:25 AM UTC").unwrap();
        assert_eq!(t.to_string(), "2020-06-22T07:24:25Z");
        let t = parse_time("12/31/26 12:00:01 PM UTC").unwrap();
        assert_eq!(t.to_string(), "2026-12-31T12:00:01Z");
        let t = parse_time("01/01/27 12:30:00 AM UTC").unwrap();
        assert_eq!(t.to_string(), "2027-01-01T00:30:00Z");
        assert_eq!(parse_time("2020-06-22T07:24:25Z"), None);
        assert_eq!(parse_time("06/22/20 07:24:25 AM"), None);
    }

    #[test]
    fn hsl_bodies_and_plain_text_give_their_text() {
        let hsl = serde_json::json!({"text": "Hi!", "type": "TEXT", "data": {}});
        assert_eq!(body_text(&hsl).as_deref(), Some("Hi!"));
        let serialized = Value::String(hsl.to_string());
        assert_eq!(body_text(&serialized).as_deref(), Some("Hi!"));
        assert_eq!(
            body_text(&Value::String("plain".into())).as_deref(),
            Some("plain")
        );
        assert_eq!(body_text(&serde_json::json!({"type": "CAROUSEL"})), None);
    }

    #[test]
    fn history_senders() {
        let m = |s: &str| HistoryMessage {
            text: None,
            sender: s.into(),
            message_id: NumberOrString::Number(1),
            timestamp: String::new(),
        };
        assert_eq!(m("user").sender(), Sender::User);
        assert_eq!(m("bot").sender(), Sender::Bot);
        assert_eq!(m("agent(Anna)").sender(), Sender::Agent("Anna".into()));
        assert_eq!(m("Anna").sender(), Sender::Agent("Anna".into()));
    }
}
