//! Intercom's wire shapes (notification envelope, conversation, parts) and the rule for
//! which parts are the contact's messages. Both intake paths — notifications and the
//! catch-up poller — go through [`Conversation::contact_messages`], so a part ingested
//! by one is identical to the same part seen by the other and dedupes against it.

use serde::{Deserialize, Deserializer};
use switchboard_core::{Attachment, ContactInfo, IdString, InboundMessage};

use crate::html::html_to_text;

/// The topics that carry a contact's message.
pub const MESSAGE_TOPICS: &[&str] = &["conversation.user.created", "conversation.user.replied"];

/// Author types that are the contact (never an admin, a bot or a team: those include
/// our own replies, which must not come back as inbound messages).
const CONTACT_AUTHORS: &[&str] = &["user", "lead", "contact"];

/// Part types that carry a contact's words. A contact's reply to a closed conversation
/// is recorded as `open` (it reopens it) with the reply as its body; the 2.14 spec's
/// "User reply" example shows exactly that.
const MESSAGE_PARTS: &[&str] = &["comment", "open"];

/// `{type:"notification_event", id, topic, app_id, created_at, data:{item}}`.
#[derive(Debug, Deserialize)]
pub struct Notification {
    /// Notification id (`notif_…`).
    #[serde(default)]
    pub id: Option<String>,
    /// What happened, e.g. `conversation.user.replied`.
    pub topic: String,
    /// The workspace it concerns.
    #[serde(default)]
    pub app_id: Option<String>,
    /// The object the notification is about.
    #[serde(default)]
    pub data: Option<NotificationData>,
}

/// `data` of a notification.
#[derive(Debug, Deserialize)]
pub struct NotificationData {
    /// The object the topic is about; a conversation for `conversation.*` topics.
    pub item: serde_json::Value,
}

/// A conversation as notifications, search results and `GET /conversations/{id}` carry it.
#[derive(Debug, Clone, Deserialize)]
pub struct Conversation {
    /// Intercom's id (a string in 2.14; numbers accepted).
    pub id: IdString,
    /// Creation, unix seconds (the first message's time: `source` has none of its own).
    #[serde(default)]
    pub created_at: Option<i64>,
    /// Last change, unix seconds.
    #[serde(default)]
    pub updated_at: Option<i64>,
    /// The first message.
    #[serde(default)]
    pub source: Option<Part>,
    /// The contacts in it (for a part whose author carries no id).
    #[serde(default)]
    pub contacts: Option<ContactList>,
    /// Replies and events, oldest first (only in notifications and single fetches).
    #[serde(default)]
    pub conversation_parts: Option<PartList>,
}

/// `contacts` of a conversation.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ContactList {
    /// References to contacts.
    #[serde(default, deserialize_with = "null_as_default")]
    pub contacts: Vec<ContactRef>,
}

/// `{type:"contact", id, external_id}`.
#[derive(Debug, Clone, Deserialize)]
pub struct ContactRef {
    /// Intercom's contact id.
    pub id: IdString,
}

/// `conversation_parts` of a conversation.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct PartList {
    /// The parts, oldest first.
    #[serde(default, deserialize_with = "null_as_default")]
    pub conversation_parts: Vec<Part>,
}

/// A conversation part, or the conversation's `source` (which has the same fields that
/// matter here; it has no `part_type`).
#[derive(Debug, Clone, Deserialize)]
pub struct Part {
    /// The part's id (the source's id for the first message): the dedupe key.
    pub id: IdString,
    /// `comment`, `open`, `note`, `assignment`, … (absent on `source`).
    #[serde(default)]
    pub part_type: Option<String>,
    /// Intercom's HTML; [`crate::html`] turns it into text and image URLs.
    #[serde(default)]
    pub body: Option<String>,
    /// Creation, unix seconds (absent on `source`).
    #[serde(default)]
    pub created_at: Option<i64>,
    /// Who wrote it.
    #[serde(default)]
    pub author: Option<PartAuthor>,
    /// Files attached, by URL.
    #[serde(default, deserialize_with = "null_as_default")]
    pub attachments: Vec<PartAttachment>,
    /// Redacted parts show "This message was deleted", not the contact's words.
    #[serde(default, deserialize_with = "null_as_default")]
    pub redacted: bool,
}

/// `author` of a part.
#[derive(Debug, Clone, Deserialize)]
pub struct PartAuthor {
    /// `user`, `lead`, `contact`, `admin`, `bot`, `team`.
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    /// The author's id (a contact id for contacts).
    #[serde(default)]
    pub id: Option<IdString>,
    /// Display name.
    #[serde(default)]
    pub name: Option<String>,
    /// E-mail address.
    #[serde(default)]
    pub email: Option<String>,
}

/// An attachment of a part.
#[derive(Debug, Clone, Deserialize)]
pub struct PartAttachment {
    /// Where Intercom serves it.
    #[serde(default)]
    pub url: Option<String>,
    /// MIME type.
    #[serde(default)]
    pub content_type: Option<String>,
    /// File name.
    #[serde(default)]
    pub name: Option<String>,
}

/// Treats `null` like an absent field: Intercom sends `"attachments": null` at times.
fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

impl Part {
    /// Whether a contact wrote it (as opposed to an admin, a bot — our own replies among
    /// them — or a team).
    pub fn by_contact(&self) -> bool {
        self.author
            .as_ref()
            .and_then(|a| a.kind.as_deref())
            .is_some_and(|k| CONTACT_AUTHORS.contains(&k))
    }
}

impl Conversation {
    /// The contact's messages in this conversation, oldest first: the first message if
    /// the contact wrote it, then the contact's comment parts. Parts without text or
    /// usable attachments are left out (nothing to show).
    pub fn contact_messages(&self) -> Vec<InboundMessage> {
        self.contact_messages_since(i64::MIN)
    }

    /// [`Self::contact_messages`] written at or after `floor` (unix seconds): catch-up
    /// reads whole conversations, and a conversation that started before the service did
    /// must not replay its history as new messages.
    pub fn contact_messages_since(&self, floor: i64) -> Vec<InboundMessage> {
        let mut out = Vec::new();
        let recent = |t: Option<i64>| t.is_none_or(|t| t >= floor);
        if let Some(source) = self.source.as_ref().filter(|_| recent(self.created_at)) {
            out.extend(self.message(source));
        }
        if let Some(parts) = &self.conversation_parts {
            for p in &parts.conversation_parts {
                let is_message = p
                    .part_type
                    .as_deref()
                    .is_some_and(|t| MESSAGE_PARTS.contains(&t));
                if is_message && recent(p.created_at) {
                    out.extend(self.message(p));
                }
            }
        }
        out
    }

    fn message(&self, part: &Part) -> Option<InboundMessage> {
        if !part.by_contact() || part.redacted || part.id.0.is_empty() {
            return None;
        }
        let author = part.author.as_ref()?;
        let contact_id = author
            .id
            .as_ref()
            .map(|i| i.0.clone())
            .filter(|i| !i.is_empty())
            .or_else(|| {
                let contacts = self.contacts.as_ref()?;
                Some(contacts.contacts.first()?.id.0.clone())
            })?;
        let converted = html_to_text(part.body.as_deref().unwrap_or(""));
        let mut attachments: Vec<Attachment> = Vec::new();
        for a in &part.attachments {
            if let Some(url) = a.url.as_deref().filter(|u| is_http(u)) {
                attachments.push(Attachment {
                    url: url.to_owned(),
                    content_type: a.content_type.clone(),
                    name: a.name.clone(),
                });
            }
        }
        for src in converted.images {
            if is_http(&src) && !attachments.iter().any(|a| a.url == src) {
                attachments.push(Attachment {
                    url: src,
                    content_type: None,
                    name: None,
                });
            }
        }
        let text = Some(converted.text).filter(|t| !t.is_empty());
        if text.is_none() && attachments.is_empty() {
            return None;
        }
        Some(InboundMessage {
            external_id: part.id.0.clone(),
            contact: ContactInfo {
                external_id: contact_id,
                name: author.name.clone().filter(|n| !n.is_empty()),
                email: author.email.clone().filter(|e| !e.is_empty()),
                phone: None,
            },
            conversation_external_id: Some(self.id.0.clone()).filter(|i| !i.is_empty()),
            text,
            attachments,
        })
    }
}

/// Only http(s) URLs are kept: the host refuses anything else, and one bad URL must not
/// sink the whole notification.
fn is_http(url: &str) -> bool {
    url::Url::parse(url).is_ok_and(|u| matches!(u.scheme(), "http" | "https"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The 2.14 spec's "User reply" conversation, as the vendor fixtures publish it.
    const SPEC_USER_REPLY: &str =
        include_str!("../fixtures/spec_2.14_conversation_object_user_reply_example.json");

    #[test]
    fn the_spec_user_reply_yields_only_the_users_part() {
        let c: Conversation = serde_json::from_str(SPEC_USER_REPLY).unwrap();
        let msgs = c.contact_messages();
        assert_eq!(
            msgs.len(),
            1,
            "the admin-authored source is not the contact's"
        );
        let m = &msgs[0];
        assert_eq!(m.external_id, "132");
        assert_eq!(m.text.as_deref(), Some("Thanks again :)"));
        assert_eq!(m.conversation_external_id.as_deref(), Some("524"));
        assert_eq!(m.contact.external_id, "6762f1571bb69f9f2193bbbb");
        assert_eq!(m.contact.name.as_deref(), Some("Joe Bloggs"));
        assert_eq!(m.contact.email.as_deref(), Some("joe@bloggs.com"));
    }

    #[test]
    fn user_source_admin_bot_notes_and_redactions() {
        let c: Conversation = serde_json::from_value(serde_json::json!({
            "id": 77,
            "contacts": {"contacts": [{"type": "contact", "id": "c-1"}]},
            "source": {"id": "900", "body": "<p>Hello &amp; welcome</p>",
                       "author": {"type": "lead", "id": "c-1", "name": null},
                       "attachments": [{"type": "upload", "name": "a.png", "url": "https://f.example/a.png", "content_type": "image/png"},
                                       {"url": "javascript:alert(1)"}]},
            "conversation_parts": {"conversation_parts": [
                {"id": "1", "part_type": "comment", "body": "<p>admin</p>", "author": {"type": "admin", "id": "5"}},
                {"id": "2", "part_type": "comment", "body": "<p>fin</p>", "author": {"type": "bot", "id": "6"}},
                {"id": "3", "part_type": "note", "body": "<p>note</p>", "author": {"type": "user", "id": "c-1"}},
                {"id": "4", "part_type": "comment", "body": "<p>gone</p>", "redacted": true, "author": {"type": "user", "id": "c-1"}},
                {"id": "5", "part_type": "assignment", "body": null, "author": {"type": "user", "id": "c-1"}},
                {"id": "6", "part_type": "comment", "body": null, "attachments": null, "author": {"type": "user", "id": "c-1"}},
                {"id": "7", "part_type": "comment", "body": "<div><img src=\"https://f.example/i.jpg\"></div>", "author": {"type": "contact"}}
            ]}
        }))
        .unwrap();
        let msgs = c.contact_messages();
        let ids: Vec<&str> = msgs.iter().map(|m| m.external_id.as_str()).collect();
        assert_eq!(ids, ["900", "7"]);
        assert_eq!(msgs[0].text.as_deref(), Some("Hello & welcome"));
        assert_eq!(
            msgs[0].attachments.len(),
            1,
            "the javascript: URL is dropped"
        );
        assert_eq!(
            msgs[0].attachments[0].content_type.as_deref(),
            Some("image/png")
        );
        assert_eq!(msgs[0].conversation_external_id.as_deref(), Some("77"));
        assert_eq!(msgs[1].text, None);
        assert_eq!(msgs[1].attachments[0].url, "https://f.example/i.jpg");
        assert_eq!(
            msgs[1].contact.external_id, "c-1",
            "from the conversation's contacts"
        );
    }

    #[test]
    fn history_before_the_floor_is_left_out() {
        let c: Conversation = serde_json::from_value(serde_json::json!({
            "id": "9", "created_at": 1000,
            "source": {"id": "s", "body": "old", "author": {"type": "user", "id": "u"}},
            "conversation_parts": {"conversation_parts": [
                {"id": "p1", "part_type": "comment", "created_at": 1500, "body": "older", "author": {"type": "user", "id": "u"}},
                {"id": "p2", "part_type": "comment", "created_at": 2000, "body": "new", "author": {"type": "user", "id": "u"}}
            ]}
        }))
        .unwrap();
        let ids = |m: Vec<InboundMessage>| m.into_iter().map(|m| m.external_id).collect::<Vec<_>>();
        assert_eq!(ids(c.contact_messages_since(2000)), ["p2"]);
        assert_eq!(ids(c.contact_messages_since(1000)), ["s", "p1", "p2"]);
        assert_eq!(ids(c.contact_messages()), ["s", "p1", "p2"]);
    }
}
