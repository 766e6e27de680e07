//! Dashly's answers, parsed, no I/O: the `meta`/`data` envelope every answer comes in,
//! conversations and their parts, and which parts are the visitor's messages.
//!
//! The seed documents the envelope, the cursor (`meta.next_after`, an integer or a
//! float: kept as its text) and `id_as_string`; the objects' fields read here are the
//! ones the Web API's conversation and part objects carry (`id`, `user`, `last_update`;
//! `id`, `created`, `from`, `body`, `attachments`). Unknown fields are ignored, and a
//! part this module cannot read as a message is skipped, not an error: one odd part must
//! not stop a conversation's others from being stored.

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use switchboard_core::{Attachment, ContactInfo, IdString, InboundMessage};

/// The envelope: `{"meta": {"status", "error", "error_message", "next_after"}, "data"}`.
#[derive(Debug, Deserialize)]
pub struct Envelope {
    /// Status and paging.
    #[serde(default)]
    pub meta: Meta,
    /// The answer itself.
    #[serde(default)]
    pub data: Value,
}

/// `meta`.
#[derive(Debug, Default, Deserialize)]
pub struct Meta {
    /// Duplicates the HTTP status.
    #[serde(default)]
    pub status: Option<u16>,
    /// The error's name (`NotAuthenticated`, `TooManyRequests`, `ValidationError`, …).
    #[serde(default)]
    pub error: Option<String>,
    /// What went wrong, in Dashly's words.
    #[serde(default)]
    pub error_message: Option<String>,
    /// The next page's cursor; null on the last page.
    #[serde(default)]
    pub next_after: Value,
}

impl Meta {
    /// `next_after` as text, whether Dashly sent an integer, a float or a string.
    pub fn next_after(&self) -> Option<String> {
        cursor_text(&self.next_after)
    }
}

/// A cursor value as the text to send back: numbers as written, strings as they are,
/// anything else (null, empty) as no cursor.
pub fn cursor_text(v: &Value) -> Option<String> {
    let s = match v {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.trim().to_owned(),
        _ => return None,
    };
    (!s.is_empty()).then_some(s)
}

/// A page of a list method.
#[derive(Debug)]
pub struct Page<T> {
    /// The objects.
    pub items: Vec<T>,
    /// `meta.next_after`.
    pub next_after: Option<String>,
}

/// Reads a list answer's `data` as `T`s.
pub fn page<T: DeserializeOwned>(env: Envelope) -> Result<Page<T>, String> {
    let next_after = env.meta.next_after();
    let items = match env.data {
        Value::Null => Vec::new(),
        data => serde_json::from_value(data).map_err(|e| format!("data: {e}"))?,
    };
    Ok(Page { items, next_after })
}

/// Parses a whole list answer (for the fuzz target and tests).
pub fn parse_page<T: DeserializeOwned>(body: &[u8]) -> Result<Page<T>, String> {
    let env: Envelope = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    page(env)
}

/// A visitor (a "user" in Dashly's API).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct User {
    /// `carrotquest_uid`, as a string with `id_as_string=true`.
    #[serde(default)]
    pub id: Option<IdString>,
    /// Display name.
    #[serde(default)]
    pub name: Option<String>,
    /// E-mail address.
    #[serde(default)]
    pub email: Option<String>,
    /// Phone number.
    #[serde(default)]
    pub phone: Option<String>,
}

/// A conversation of `GET /apps/{id}/conversations`.
#[derive(Debug, Clone, Deserialize)]
pub struct Conversation {
    /// Its id.
    pub id: IdString,
    /// The visitor it is with.
    #[serde(default)]
    pub user: Option<User>,
    /// When it last changed (unix seconds, integer or float): a new part moves it.
    #[serde(default)]
    pub last_update: Value,
}

impl Conversation {
    /// `last_update` as a number, for comparing.
    pub fn updated(&self) -> Option<f64> {
        self.last_update.as_f64()
    }

    /// `last_update` as text, which the list's `after` takes back.
    pub fn updated_text(&self) -> Option<String> {
        cursor_text(&self.last_update)
    }
}

/// Who wrote a part.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct PartFrom {
    /// `user` (the visitor), `admin`, `bot`, …
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    /// The user's or admin's id.
    #[serde(default)]
    pub id: Option<IdString>,
    /// Display name.
    #[serde(default)]
    pub name: Option<String>,
}

/// A file attached to a part.
#[derive(Debug, Clone, Deserialize)]
pub struct PartAttachment {
    /// Where Dashly keeps it.
    #[serde(default)]
    pub url: Option<String>,
    /// Its file name.
    #[serde(default)]
    pub filename: Option<String>,
    /// Its MIME type.
    #[serde(default)]
    pub mime_type: Option<String>,
}

/// A conversation part of `GET /conversations/{id}/parts`.
#[derive(Debug, Clone, Deserialize)]
pub struct Part {
    /// Its id: the dedupe key.
    pub id: IdString,
    /// When it was written (unix seconds).
    #[serde(default)]
    pub created: Option<f64>,
    /// Its author.
    #[serde(default)]
    pub from: Option<PartFrom>,
    /// Its text.
    #[serde(default)]
    pub body: Option<String>,
    /// Its files.
    #[serde(default)]
    pub attachments: Vec<PartAttachment>,
}

/// What the poller makes of a conversation's parts.
#[derive(Debug, Default, PartialEq)]
pub struct Sorted {
    /// The visitor's parts as messages, in order.
    pub messages: Vec<InboundMessage>,
    /// Parts by our own admin: our replies read back.
    pub echoes: usize,
}

/// The visitor's parts of `conv` written at or after `floor` (unix seconds), as
/// messages; parts by `admin_id` are counted as echoes; other admins', bots' and
/// system parts are not the contact's and are left out.
pub fn visitor_messages(conv: &Conversation, parts: &[Part], admin_id: &str, floor: f64) -> Sorted {
    let mut out = Sorted::default();
    let contact_of = |p: &Part| {
        let user = conv.user.clone().unwrap_or_default();
        let from = p.from.clone().unwrap_or_default();
        let id = user
            .id
            .or(from.id)
            .map(|i| i.0.trim().to_owned())
            .filter(|i| !i.is_empty())?;
        Some(ContactInfo {
            external_id: id,
            name: non_blank(user.name.or(from.name)),
            email: non_blank(user.email),
            phone: non_blank(user.phone),
        })
    };
    for p in parts {
        let from = p.from.as_ref();
        let kind = from.and_then(|f| f.kind.as_deref());
        let author = from.and_then(|f| f.id.as_ref()).map(|i| i.0.as_str());
        if kind == Some("admin") && author == Some(admin_id) {
            out.echoes += 1;
            continue;
        }
        if kind != Some("user") || p.created.is_some_and(|t| t < floor) {
            continue;
        }
        let external_id = p.id.0.trim();
        if external_id.is_empty() || conv.id.0.trim().is_empty() {
            continue;
        }
        let Some(contact) = contact_of(p) else {
            continue;
        };
        let text = non_blank(p.body.clone()).map(|t| t.trim().to_owned());
        let attachments: Vec<Attachment> = p
            .attachments
            .iter()
            .filter_map(|a| {
                let att = Attachment {
                    url: a.url.as_deref()?.trim().to_owned(),
                    content_type: non_blank(a.mime_type.clone()),
                    name: non_blank(a.filename.clone()),
                };
                // The host's own check: a URL it would refuse must not make it refuse
                // the whole conversation's batch (the pass would stall on it).
                att.has_http_url().then_some(att)
            })
            .collect();
        if text.is_none() && attachments.is_empty() {
            continue;
        }
        out.messages.push(InboundMessage {
            external_id: external_id.to_owned(),
            contact,
            conversation_external_id: Some(conv.id.0.trim().to_owned()),
            text,
            attachments,
        });
    }
    out
}

fn non_blank(s: Option<String>) -> Option<String> {
    s.filter(|s| !s.trim().is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn conv() -> Conversation {
        serde_json::from_value(json!({"id": "c1", "last_update": 1700000000.25,
            "user": {"id": "u1", "name": "Mary", "email": "mary@example.com"}}))
        .unwrap()
    }

    #[test]
    fn cursors_keep_their_text() {
        let p: Page<Conversation> =
            parse_page(br#"{"meta": {"status": 200, "next_after": 1700000000.125}, "data": []}"#)
                .unwrap();
        assert_eq!(p.next_after.as_deref(), Some("1700000000.125"));
        let p: Page<Conversation> =
            parse_page(br#"{"meta": {"status": 200, "next_after": 42}, "data": []}"#).unwrap();
        assert_eq!(p.next_after.as_deref(), Some("42"));
        let p: Page<Conversation> =
            parse_page(br#"{"meta": {"status": 200, "next_after": null}, "data": null}"#).unwrap();
        assert_eq!(p.next_after, None);
        assert_eq!(conv().updated_text().as_deref(), Some("1700000000.25"));
    }

    /// Found by the `dashly_parts` fuzz target: `https:+x.app/a.png` parses as an https
    /// URL, yet the host refuses it (no `https://`), and with it the whole batch.
    #[test]
    fn an_attachment_url_the_host_would_refuse_is_left_out() {
        let parts: Vec<Part> = serde_json::from_value(json!([
            {"id": "p1", "from": {"type": "user", "id": "u1"}, "body": "Hello",
             "attachments": [{"url": "https:+tEa.app/a.png"}, {"url": "https://files.dashly.app/b.png"}]}
        ]))
        .unwrap();
        let s = visitor_messages(&conv(), &parts, "77", f64::MIN);
        let urls: Vec<&str> = s.messages[0]
            .attachments
            .iter()
            .map(|a| a.url.as_str())
            .collect();
        assert_eq!(urls, ["https://files.dashly.app/b.png"]);
    }

    #[test]
    fn visitor_parts_in_our_admins_are_echoes_others_are_not_the_contacts() {
        let parts: Vec<Part> = serde_json::from_value(json!([
            {"id": "p1", "created": 1700000000, "from": {"type": "user", "id": "u1"}, "body": " Hi ",
             "attachments": [{"url": "https://files.dashly.app/a.png", "filename": "a.png", "mime_type": "image/png"},
                             {"url": "javascript:alert(1)"}]},
            {"id": "p2", "created": 1700000001, "from": {"type": "admin", "id": 77}, "body": "Hello"},
            {"id": "p3", "created": 1700000002, "from": {"type": "admin", "id": "78"}, "body": "Colleague"},
            {"id": "p4", "created": 1700000003, "from": {"type": "bot"}, "body": "Bot"},
            {"id": "p5", "created": 1600000000, "from": {"type": "user", "id": "u1"}, "body": "history"},
            {"id": "p6", "created": 1700000004, "from": {"type": "user", "id": "u1"}, "body": "  "},
            {"id": 7, "created": 1700000005, "from": {"type": "user"}, "body": "numeric id"}
        ]))
        .unwrap();
        let s = visitor_messages(&conv(), &parts, "77", 1_699_999_000.0);
        assert_eq!(s.echoes, 1);
        let ids: Vec<&str> = s.messages.iter().map(|m| m.external_id.as_str()).collect();
        assert_eq!(ids, ["p1", "7"]);
        let m = &s.messages[0];
        assert_eq!(m.text.as_deref(), Some("Hi"));
        assert_eq!(m.attachments.len(), 1);
        assert_eq!(m.contact.external_id, "u1");
        assert_eq!(m.contact.name.as_deref(), Some("Mary"));
        assert_eq!(m.conversation_external_id.as_deref(), Some("c1"));
    }
}
