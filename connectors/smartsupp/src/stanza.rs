//! Chat stanzas to and from switchboard's messages: which incoming `<message/>` is an
//! inbound message (and with which dedupe id), a typing signal, a receipt or a bounce;
//! and the `<message/>` an agent's reply becomes.

use sha2::{Digest, Sha256};
use switchboard_core::{Attachment, ContactInfo, InboundMessage, OutboundMessage};
use tokio_xmpp::jid::{BareJid, Jid};
use tokio_xmpp::minidom::Element;
use tokio_xmpp::parsers::chatstates::ChatState;
use tokio_xmpp::parsers::message::{Id, Lang, Message, MessageType};
use tokio_xmpp::parsers::oob::Oob;
use tokio_xmpp::parsers::receipts;
use tokio_xmpp::parsers::stanza_error::StanzaError;
use tokio_xmpp::parsers::stanza_id::OriginId;
use tokio_xmpp::parsers::{ns, stanza::Stanza};

/// What an incoming `<message/>` means to switchboard.
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    /// A visitor's chat message (with the typing state it carried, usually `false`).
    Chat {
        /// The message to ingest.
        message: InboundMessage,
        /// XEP-0085 state sent along with it.
        typing: Option<bool>,
    },
    /// A chat state without a body: the visitor started or stopped typing.
    Typing {
        /// The visitor's bare JID.
        contact: String,
        /// Composing or not.
        typing: bool,
    },
    /// A XEP-0184 receipt: the visitor's client got our message with this id.
    Receipt {
        /// Our message id.
        id: String,
    },
    /// The server bounced our message with this id.
    Bounced {
        /// Our message id.
        id: String,
        /// The error condition.
        reason: String,
    },
    /// Not for switchboard (groupchat, headline, our own, the server's).
    Ignored,
}

/// Classifies a message received on the account `own`.
pub fn classify(msg: &Message, own: &BareJid) -> Incoming {
    let Some(from) = &msg.from else {
        return Incoming::Ignored;
    };
    let sender = from.to_bare();
    // Our own other resources (carbons, another client on the account) and the server.
    if &sender == own || sender.node().is_none() {
        return Incoming::Ignored;
    }
    if msg.type_ == MessageType::Error {
        return match &msg.id {
            Some(Id(id)) => Incoming::Bounced {
                id: id.clone(),
                reason: bounce_reason(msg),
            },
            None => Incoming::Ignored,
        };
    }
    if let Some(received) = msg
        .payloads
        .iter()
        .find(|p| p.is("received", ns::RECEIPTS))
        .and_then(|p| receipts::Received::try_from(p.clone()).ok())
    {
        return Incoming::Receipt { id: received.id };
    }
    if msg.type_ != MessageType::Chat {
        return Incoming::Ignored;
    }
    let typing = chat_state(msg);
    let contact = sender.to_string();
    let text = msg
        .get_best_body_cloned(vec![])
        .map(|(_, b)| b)
        .filter(|b| !b.trim().is_empty());
    // Attachments are links switchboard passes on, so only http(s) ones; clients repeat
    // the URL in the body anyway (XEP-0066), so nothing is lost by skipping others.
    let attachments: Vec<Attachment> = msg
        .payloads
        .iter()
        .filter(|p| p.is("x", ns::OOB))
        .filter_map(|p| Oob::try_from(p.clone()).ok())
        .filter(|o| o.url.starts_with("https://") || o.url.starts_with("http://"))
        .map(|o| Attachment {
            url: o.url,
            content_type: None,
            name: o.desc,
        })
        .collect();
    if text.is_none() && attachments.is_empty() {
        return match typing {
            Some(typing) => Incoming::Typing { contact, typing },
            None => Incoming::Ignored,
        };
    }
    let name = msg
        .payloads
        .iter()
        .find(|p| p.is("nick", ns::NICK))
        .map(|p| p.text())
        .filter(|n| !n.trim().is_empty());
    let external_id = external_id(msg, own, &sender, text.as_deref(), &attachments);
    Incoming::Chat {
        message: InboundMessage {
            external_id,
            contact: ContactInfo {
                external_id: contact,
                name,
                ..ContactInfo::default()
            },
            conversation_external_id: None,
            text,
            attachments,
        },
        typing,
    }
}

/// The dedupe key, always scoped by the sender so that ids chosen by different clients
/// (or forged by one) cannot collide with another visitor's:
/// - `{sender}/sid:{id}`: the XEP-0359 stanza-id our own server stamped (`by` = our
///   account), unique per archive;
/// - `{sender}/id:{id}`: else the message's own `id` attribute;
/// - `{sender}/sha256:{hex}`: else a digest of the delay stamp, thread, body and
///   attachment URLs, so a re-delivery of the same stanza maps to the same id. Two
///   identical id-less texts from one sender without a delay stamp count once.
pub fn external_id(
    msg: &Message,
    own: &BareJid,
    sender: &BareJid,
    text: Option<&str>,
    attachments: &[Attachment],
) -> String {
    let own_text = own.to_string();
    if let Some(sid) = msg
        .payloads
        .iter()
        .find(|p| p.is("stanza-id", ns::SID) && p.attr("by") == Some(own_text.as_str()))
        .and_then(|p| p.attr("id"))
    {
        return format!("{sender}/sid:{sid}");
    }
    if let Some(Id(id)) = msg.id.as_ref().filter(|Id(id)| !id.is_empty()) {
        return format!("{sender}/id:{id}");
    }
    let mut h = Sha256::new();
    let stamp = msg
        .payloads
        .iter()
        .find(|p| p.is("delay", ns::DELAY))
        .and_then(|p| p.attr("stamp"))
        .unwrap_or_default();
    for part in [
        stamp,
        msg.thread.as_ref().map(|t| t.id.as_str()).unwrap_or(""),
        text.unwrap_or(""),
    ] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    for a in attachments {
        h.update(a.url.as_bytes());
        h.update([0]);
    }
    let digest = h.finalize();
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("{sender}/sha256:{hex}")
}

/// XEP-0085: composing is typing; paused, active, inactive and gone are not.
fn chat_state(msg: &Message) -> Option<bool> {
    msg.payloads
        .iter()
        .filter(|p| p.ns() == ns::CHATSTATES)
        .find_map(|p| ChatState::try_from(p.clone()).ok())
        .map(|s| s == ChatState::Composing)
}

fn bounce_reason(msg: &Message) -> String {
    let condition = msg
        .payloads
        .iter()
        .find(|p| p.name() == "error")
        .and_then(|p| StanzaError::try_from(p.clone()).ok())
        .map(|e| kebab(&format!("{:?}", e.defined_condition)))
        .unwrap_or_else(|| "undefined-condition".into());
    format!("the XMPP server returned the message as undeliverable ({condition})")
}

/// `RecipientUnavailable` → `recipient-unavailable`, the spelling of the XMPP specs.
pub fn kebab(debug: &str) -> String {
    let word = debug.split(['(', ' ', '{']).next().unwrap_or(debug);
    let mut out = String::new();
    for (i, ch) in word.chars().enumerate() {
        if ch.is_ascii_uppercase() && i > 0 {
            out.push('-');
        }
        out.push(ch.to_ascii_lowercase());
    }
    out
}

/// The chat message for an agent's reply, with `id` (stable across retries, so the
/// visitor's client can drop a repeat) as both the stanza id and the XEP-0359 origin-id,
/// and a XEP-0184 receipt request.
pub fn outbound(out: &OutboundMessage, id: &str) -> Result<Stanza, String> {
    let to: Jid = out
        .conversation
        .contact
        .external_id
        .parse()
        .map_err(|e| format!("the contact's id is not a JID: {e}"))?;
    let mut body = out.message.text.clone().unwrap_or_default();
    for a in &out.message.attachments {
        if !body.is_empty() {
            body.push('\n');
        }
        body.push_str(&a.url);
    }
    if body.is_empty() {
        return Err("the message has neither text nor attachments".into());
    }
    let mut msg = Message::chat(Some(to.to_bare().into()))
        .with_body(Lang::new(), body)
        .with_payload(OriginId { id: id.to_owned() })
        .with_payload(receipts::Request)
        .with_payload(ChatState::Active);
    for a in &out.message.attachments {
        msg = msg.with_payload(Oob {
            url: a.url.clone(),
            desc: a.name.clone(),
        });
    }
    msg.id = Some(Id(id.to_owned()));
    Ok(Stanza::Message(msg))
}

/// A `<message/>` parsed from raw XML (tests and tools).
pub fn parse_message(xml: &str) -> Option<Message> {
    let el: Element = xml.parse().ok()?;
    Message::try_from(el).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn own() -> BareJid {
        BareJid::new("agent@localhost").unwrap()
    }

    fn chat(xml: &str) -> Incoming {
        classify(&parse_message(xml).expect("a message"), &own())
    }

    #[test]
    fn chat_message_with_server_stanza_id() {
        let got = chat(
            "<message xmlns='jabber:client' from='visitor@localhost/web' to='agent@localhost' type='chat' id='m1'>\
               <body>Hello</body><active xmlns='http://jabber.org/protocol/chatstates'/>\
               <nick xmlns='http://jabber.org/protocol/nick'>Mary</nick>\
               <stanza-id xmlns='urn:xmpp:sid:0' by='evil@localhost' id='forged'/>\
               <stanza-id xmlns='urn:xmpp:sid:0' by='agent@localhost' id='S1'/></message>",
        );
        let Incoming::Chat { message, typing } = got else {
            panic!("{got:?}")
        };
        assert_eq!(message.external_id, "visitor@localhost/sid:S1");
        assert_eq!(message.contact.external_id, "visitor@localhost");
        assert_eq!(message.contact.name.as_deref(), Some("Mary"));
        assert_eq!(message.text.as_deref(), Some("Hello"));
        assert_eq!(message.conversation_external_id, None);
        assert_eq!(typing, Some(false));
    }

    #[test]
    fn ids_are_scoped_by_sender() {
        let a = chat(
            "<message xmlns='jabber:client' from='a@localhost/x' type='chat' id='1'><body>hi</body></message>",
        );
        let b = chat(
            "<message xmlns='jabber:client' from='b@localhost/y' type='chat' id='1'><body>hi</body></message>",
        );
        let id = |i: &Incoming| match i {
            Incoming::Chat { message, .. } => message.external_id.clone(),
            other => panic!("{other:?}"),
        };
        assert_eq!(id(&a), "a@localhost/id:1");
        assert_ne!(id(&a), id(&b));
    }

    #[test]
    fn id_less_messages_get_a_stable_digest() {
        let xml = "<message xmlns='jabber:client' from='v@localhost/r' type='chat'><body>no id</body></message>";
        let first = chat(xml);
        assert_eq!(first, chat(xml));
        let Incoming::Chat { message, .. } = first else {
            panic!()
        };
        assert!(
            message.external_id.starts_with("v@localhost/sha256:"),
            "{}",
            message.external_id
        );
        let later = chat(
            "<message xmlns='jabber:client' from='v@localhost/r' type='chat'><body>no id</body>\
            <delay xmlns='urn:xmpp:delay' stamp='2026-01-01T00:00:00Z'/></message>",
        );
        assert_ne!(first_id(&later), message.external_id);
    }

    fn first_id(i: &Incoming) -> String {
        match i {
            Incoming::Chat { message, .. } => message.external_id.clone(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn typing_receipts_bounces_and_noise() {
        assert_eq!(
            chat(
                "<message xmlns='jabber:client' from='v@localhost/r' type='chat'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>"
            ),
            Incoming::Typing {
                contact: "v@localhost".into(),
                typing: true
            }
        );
        assert_eq!(
            chat(
                "<message xmlns='jabber:client' from='v@localhost/r' type='chat'><paused xmlns='http://jabber.org/protocol/chatstates'/></message>"
            ),
            Incoming::Typing {
                contact: "v@localhost".into(),
                typing: false
            }
        );
        assert_eq!(
            chat(
                "<message xmlns='jabber:client' from='v@localhost/r' id='r1'><received xmlns='urn:xmpp:receipts' id='out-7'/></message>"
            ),
            Incoming::Receipt { id: "out-7".into() }
        );
        let bounced = chat(
            "<message xmlns='jabber:client' from='v@localhost' type='error' id='out-8'>\
            <error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>",
        );
        let Incoming::Bounced { id, reason } = bounced else {
            panic!("{bounced:?}")
        };
        assert_eq!(id, "out-8");
        assert!(reason.contains("service-unavailable"), "{reason}");
        for noise in [
            "<message xmlns='jabber:client' from='room@muc.localhost/nick' type='groupchat'><body>x</body></message>",
            "<message xmlns='jabber:client' from='agent@localhost/other' type='chat'><body>carbon</body></message>",
            "<message xmlns='jabber:client' from='localhost' type='chat'><body>motd</body></message>",
            "<message xmlns='jabber:client' from='v@localhost/r' type='chat'><body>   </body></message>",
        ] {
            assert_eq!(chat(noise), Incoming::Ignored, "{noise}");
        }
    }

    #[test]
    fn oob_attachments() {
        let got = chat(
            "<message xmlns='jabber:client' from='v@localhost/r' type='chat' id='f'>\
            <x xmlns='jabber:x:oob'><url>https://files.example.com/a.png</url></x></message>",
        );
        let Incoming::Chat { message, .. } = got else {
            panic!("{got:?}")
        };
        assert_eq!(message.text, None);
        assert_eq!(
            message.attachments[0].url,
            "https://files.example.com/a.png"
        );
    }

    fn outbound_fixture(contact: &str, text: Option<&str>, urls: &[&str]) -> OutboundMessage {
        use switchboard_core::{Author, AuthorType, Contact, Conversation, ConversationStatus};
        use switchboard_core::{Direction, Message as Msg, MessageStatus};
        let now = jiff::Timestamp::UNIX_EPOCH;
        OutboundMessage {
            message: Msg {
                id: "7".into(),
                conversation_id: "3".into(),
                service_id: "chat".into(),
                direction: Direction::Outbound,
                external_id: None,
                text: text.map(str::to_owned),
                attachments: urls
                    .iter()
                    .map(|u| Attachment {
                        url: (*u).into(),
                        content_type: None,
                        name: None,
                    })
                    .collect(),
                author: Author {
                    kind: AuthorType::Agent,
                    name: Some("Anna".into()),
                },
                status: MessageStatus::Pending,
                error: None,
                created_at: now,
            },
            conversation: Conversation {
                id: "3".into(),
                service_id: "chat".into(),
                organization: "default".into(),
                external_id: None,
                status: ConversationStatus::Open,
                contact: Contact {
                    id: "1".into(),
                    service_id: "chat".into(),
                    external_id: contact.into(),
                    name: None,
                    email: None,
                    phone: None,
                },
                created_at: now,
                updated_at: now,
                last_message_at: None,
                desk: None,
                desk_external_id: None,
            },
            attempt: 1,
            idempotency_key: "chat-7".into(),
        }
    }

    #[test]
    fn replies_become_chat_messages_to_the_bare_jid() {
        let out = outbound_fixture(
            "visitor@localhost",
            Some("Hi"),
            &["https://x.example/a.pdf"],
        );
        let Stanza::Message(m) = outbound(&out, "chat-7").unwrap() else {
            panic!()
        };
        assert_eq!(m.type_, MessageType::Chat);
        assert_eq!(m.to.as_ref().unwrap().to_string(), "visitor@localhost");
        assert_eq!(m.id, Some(Id("chat-7".into())));
        assert_eq!(
            m.get_best_body_cloned(vec![]).unwrap().1,
            "Hi\nhttps://x.example/a.pdf"
        );
        let has = |name: &str, ns: &str| m.payloads.iter().any(|p| p.is(name, ns));
        assert!(has("origin-id", ns::SID));
        assert!(has("request", ns::RECEIPTS));
        assert!(has("active", ns::CHATSTATES));
        assert!(has("x", ns::OOB));

        let bad = outbound_fixture("not a jid@@", Some("Hi"), &[]);
        assert!(outbound(&bad, "x").is_err());
        let empty = outbound_fixture("visitor@localhost", None, &[]);
        assert!(outbound(&empty, "x").is_err());
    }

    #[test]
    fn kebab_case_conditions() {
        assert_eq!(kebab("RecipientUnavailable"), "recipient-unavailable");
        assert_eq!(kebab("NotAuthorized"), "not-authorized");
        assert_eq!(kebab("Gone(Some(\"x\"))"), "gone");
    }
}
