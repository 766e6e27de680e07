//! Messenger's webhook, pure: the `hub.challenge` verification query, and the `page`
//! body (`entry[].messaging[]`) turned into contacts' messages, receipts for the
//! messages a `delivery` names, and the `delivery`/`read` watermarks that cover every
//! earlier one. No I/O; the signature is checked before this runs.

use serde::Deserialize;
use switchboard_core::model::Attachment;
use switchboard_core::{
    ContactInfo, HookError, IdString, InboundMessage, MessageStatus, Receipt, Watermark, parse_json,
};

/// The thread id of the conversation between page `page_id` and the person `psid`:
/// Messenger has one thread per pair, so this is the conversation's `external_id`.
pub fn conversation_key(page_id: &str, psid: &str) -> String {
    format!("{page_id}:{psid}")
}

/// The webhook setup request: `GET ?hub.mode=subscribe&hub.verify_token=…&hub.challenge=…`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Verification {
    /// `hub.mode`; Facebook sends `subscribe`.
    pub mode: String,
    /// `hub.verify_token`: what the app's setup was told to send.
    pub verify_token: String,
    /// `hub.challenge`: what the answer must be.
    pub challenge: String,
}

/// The verification parameters of a GET's query; `None` when it has no `hub.mode`
/// (then it is not a verification request at all).
pub fn verification(query: Option<&str>) -> Option<Verification> {
    let mut v = Verification::default();
    let mut has_mode = false;
    for (k, value) in url::form_urlencoded::parse(query?.as_bytes()) {
        match k.as_ref() {
            "hub.mode" => {
                has_mode = true;
                v.mode = value.into_owned();
            }
            "hub.verify_token" => v.verify_token = value.into_owned(),
            "hub.challenge" => v.challenge = value.into_owned(),
            _ => {}
        }
    }
    has_mode.then_some(v)
}

/// What one webhook body asks to store.
#[derive(Debug, Default, PartialEq)]
pub struct Parsed {
    /// Contacts' messages and postbacks, in body order.
    pub messages: Vec<InboundMessage>,
    /// `delivered` for each message a `delivery` names by `mid`.
    pub receipts: Vec<Receipt>,
    /// One per `delivery` and `read`: everything before its watermark.
    pub watermarks: Vec<Watermark>,
    /// Events not stored: our own echoes, reactions, opt-ins and other types.
    pub skipped: usize,
    /// Entries of another page than this service's (the app's webhook is shared).
    pub other_pages: usize,
}

#[derive(Deserialize)]
struct Body {
    object: String,
    #[serde(default)]
    entry: Vec<Entry>,
}

#[derive(Deserialize)]
struct Entry {
    id: IdString,
    #[serde(default)]
    messaging: Vec<Event>,
}

#[derive(Deserialize)]
struct Party {
    id: IdString,
}

#[derive(Deserialize)]
struct Event {
    sender: Party,
    #[serde(default)]
    timestamp: Option<i64>,
    #[serde(default)]
    message: Option<Msg>,
    #[serde(default)]
    postback: Option<Postback>,
    #[serde(default)]
    delivery: Option<Delivery>,
    #[serde(default)]
    read: Option<Read>,
}

#[derive(Deserialize)]
struct Msg {
    mid: String,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    is_echo: bool,
    #[serde(default)]
    attachments: Vec<Att>,
}

#[derive(Deserialize)]
struct Att {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    payload: Option<AttPayload>,
}

#[derive(Deserialize)]
struct AttPayload {
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    title: Option<String>,
}

#[derive(Deserialize)]
struct Postback {
    #[serde(default)]
    mid: Option<String>,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    payload: Option<String>,
}

#[derive(Deserialize)]
struct Delivery {
    #[serde(default)]
    mids: Vec<String>,
    watermark: i64,
}

#[derive(Deserialize)]
struct Read {
    watermark: i64,
}

/// Parses a webhook body for page `page_id`. Not JSON is 400; JSON without what every
/// event needs (a sender, a message's `mid`, a watermark) is 422, naming where.
pub fn parse(body: &[u8], page_id: &str) -> Result<Parsed, HookError> {
    let body: Body = parse_json(body, "a Messenger webhook")?;
    let mut out = Parsed::default();
    if body.object != "page" {
        // Signed by our app, so Facebook's; another product (Instagram) on the same app.
        out.skipped = body.entry.iter().map(|e| e.messaging.len()).sum();
        return Ok(out);
    }
    for (i, entry) in body.entry.into_iter().enumerate() {
        if entry.id.0 != page_id {
            out.other_pages += 1;
            continue;
        }
        for (j, ev) in entry.messaging.into_iter().enumerate() {
            let at = format!("entry[{i}].messaging[{j}]");
            event(&mut out, page_id, ev, &at)?;
        }
    }
    Ok(out)
}

fn event(out: &mut Parsed, page_id: &str, ev: Event, at: &str) -> Result<(), HookError> {
    let psid = ev.sender.id.0;
    if psid.trim().is_empty() {
        return Err(HookError::Unprocessable(format!(
            "{at}.sender.id: must not be empty"
        )));
    }
    let thread = conversation_key(page_id, &psid);
    let contact = ContactInfo {
        external_id: psid.clone(),
        ..ContactInfo::default()
    };
    if let Some(m) = ev.message {
        if m.is_echo {
            out.skipped += 1;
            return Ok(());
        }
        if m.mid.trim().is_empty() {
            return Err(HookError::Unprocessable(format!(
                "{at}.message.mid: must not be empty"
            )));
        }
        let (text, attachments) = content(m.text, m.attachments);
        if text.is_none() && attachments.is_empty() {
            out.skipped += 1;
            return Ok(());
        }
        out.messages.push(InboundMessage {
            external_id: m.mid,
            contact,
            conversation_external_id: Some(thread),
            text,
            attachments,
        });
    } else if let Some(p) = ev.postback {
        // A tapped button: what the contact saw (the title) is what they "said".
        let text = p
            .title
            .filter(|t| !t.trim().is_empty())
            .or(p.payload.filter(|t| !t.trim().is_empty()));
        let Some(text) = text else {
            out.skipped += 1;
            return Ok(());
        };
        // Older postbacks carry no mid: the sender and the time identify the tap.
        let external_id = match p.mid.filter(|m| !m.trim().is_empty()) {
            Some(mid) => mid,
            None => match ev.timestamp {
                Some(t) => format!("postback:{psid}:{t}"),
                None => {
                    return Err(HookError::Unprocessable(format!(
                        "{at}.postback: neither mid nor timestamp"
                    )));
                }
            },
        };
        out.messages.push(InboundMessage {
            external_id,
            contact,
            conversation_external_id: Some(thread),
            text: Some(text),
            attachments: Vec::new(),
        });
    } else if let Some(d) = ev.delivery {
        for mid in d.mids.into_iter().filter(|m| !m.trim().is_empty()) {
            out.receipts.push(Receipt {
                external_id: mid,
                status: MessageStatus::Delivered,
                error: None,
            });
        }
        let before = watermark(d.watermark, &format!("{at}.delivery.watermark"))?;
        out.watermarks.push(Watermark {
            conversation_external_id: thread,
            status: MessageStatus::Delivered,
            before,
        });
    } else if let Some(r) = ev.read {
        let before = watermark(r.watermark, &format!("{at}.read.watermark"))?;
        out.watermarks.push(Watermark {
            conversation_external_id: thread,
            status: MessageStatus::Read,
            before,
        });
    } else {
        out.skipped += 1;
    }
    Ok(())
}

fn watermark(ms: i64, at: &str) -> Result<jiff::Timestamp, HookError> {
    jiff::Timestamp::from_millisecond(ms)
        .map_err(|_| HookError::Unprocessable(format!("{at}: not a time in milliseconds")))
}

/// The text and files of a message. An attachment without an http(s) URL (a location,
/// a fallback link preview without one) is named in the text instead, so that the
/// message still shows that something was sent.
fn content(text: Option<String>, atts: Vec<Att>) -> (Option<String>, Vec<Attachment>) {
    let mut text = text.filter(|t| !t.is_empty());
    let mut files = Vec::new();
    let mut notes = Vec::new();
    for a in atts {
        let payload = a.payload.unwrap_or(AttPayload {
            url: None,
            title: None,
        });
        let file = payload.url.map(|url| Attachment {
            url,
            content_type: None,
            name: payload.title.clone().filter(|t| !t.trim().is_empty()),
        });
        match file {
            Some(f) if f.has_http_url() => files.push(f),
            _ => {
                let kind: String = a
                    .kind
                    .chars()
                    .filter(|c| !c.is_control())
                    .take(40)
                    .collect();
                notes.push(match payload.title.filter(|t| !t.trim().is_empty()) {
                    Some(title) => format!("[{kind}: {title}]"),
                    None => format!("[{kind}]"),
                });
            }
        }
    }
    if !notes.is_empty() {
        let notes = notes.join(" ");
        text = Some(match text {
            Some(t) => format!("{t}\n{notes}"),
            None => notes,
        });
    }
    (text, files)
}
