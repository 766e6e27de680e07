//! What Twilio posts to us, turned into switchboard's terms: an inbound SMS / WhatsApp
//! message, or a status callback for a message we sent. Pure parsing, no I/O.

use bytes::Bytes;
use http::StatusCode;
use switchboard_core::{
    Attachment, ContactInfo, HookError, HookResponse, InboundMessage, MessageStatus,
};

/// The empty TwiML answer: store the message, send nothing back.
pub fn twiml() -> HookResponse {
    HookResponse {
        status: StatusCode::OK,
        content_type: "text/xml",
        body: Bytes::from_static(b"<Response/>"),
    }
}

/// The decoded value of query parameter `name`.
pub fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query?).ok()?;
    pairs.into_iter().find(|(k, _)| k == name).map(|(_, v)| v)
}

/// A form-encoded body, in the order received (the signature sorts it itself).
#[derive(Debug, Clone, Default)]
pub struct Form(pub Vec<(String, String)>);

impl Form {
    /// Parses `application/x-www-form-urlencoded`. Twilio sends UTF-8; anything that is
    /// not UTF-8 once percent-decoded is refused rather than decoded lossily, which would
    /// silently change the customer's words.
    pub fn parse(body: &[u8]) -> Result<Self, HookError> {
        let decode = |part: &[u8]| {
            let spaced: Vec<u8> = part
                .iter()
                .map(|&b| if b == b'+' { b' ' } else { b })
                .collect();
            percent_encoding::percent_decode(&spaced)
                .decode_utf8()
                .map(|s| s.into_owned())
                .map_err(|_| HookError::BadRequest("the form is not UTF-8".into()))
        };
        let mut pairs = Vec::new();
        for pair in body.split(|&b| b == b'&').filter(|p| !p.is_empty()) {
            let mut kv = pair.splitn(2, |&b| b == b'=');
            let key = decode(kv.next().unwrap_or_default())?;
            let value = decode(kv.next().unwrap_or_default())?;
            pairs.push((key, value));
        }
        Ok(Form(pairs))
    }

    /// The first value of `name`, if present and not empty.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }

    /// The first value of `name` when it is not blank: ids and addresses, where only
    /// spaces would be stored as a key the host refuses.
    fn id(&self, name: &str) -> Option<&str> {
        self.get(name).filter(|v| !v.trim().is_empty())
    }

    fn require(&self, name: &str) -> Result<&str, HookError> {
        self.id(name)
            .ok_or_else(|| HookError::Unprocessable(format!("{name} is missing")))
    }
}

/// The conversation key of a (contact address, our address) pair: Twilio has no thread
/// id, and one service may receive on several numbers or channels.
pub fn conversation_key(contact: &str, ours: &str) -> String {
    format!("{contact}|{ours}")
}

/// Our address in a conversation key: where the contact wrote to. Split at the last
/// `|`, since our addresses (numbers, `whatsapp:+…`, sender ids) never hold one while a
/// contact's address is whatever Twilio names the sender.
pub fn our_address(conversation_key: &str) -> Option<&str> {
    conversation_key
        .rsplit_once('|')
        .map(|(_, ours)| ours)
        .filter(|s| !s.is_empty())
}

/// The E.164 number behind an address (`+316…`, `whatsapp:+316…`), for the contact's
/// `phone`; none for other channels.
fn phone_number(address: &str) -> Option<String> {
    let number = address.strip_prefix("whatsapp:").unwrap_or(address);
    let digits = number.strip_prefix('+')?;
    (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())).then(|| number.to_owned())
}

/// An inbound message webhook (`MessageSid`, `From`, `To`, `Body`, `NumMedia`, …).
pub fn inbound_message(form: &Form) -> Result<InboundMessage, HookError> {
    let sid = form
        .id("MessageSid")
        .or_else(|| form.id("SmsMessageSid"))
        .ok_or_else(|| HookError::Unprocessable("MessageSid is missing".into()))?;
    let from = form.require("From")?;
    let to = form.require("To")?;

    let count: usize = match form.get("NumMedia") {
        None => 0,
        Some(n) => n
            .parse()
            .map_err(|_| HookError::Unprocessable(format!("NumMedia is not a number: {n:?}")))?,
    };
    // Twilio sends at most 10 media items; the bound keeps a bad count from spinning.
    let mut attachments = Vec::new();
    for i in 0..count.min(64) {
        let Some(url) = form.get(&format!("MediaUrl{i}")) else {
            continue;
        };
        // The host stores only http(s) URLs; saying which field is wrong beats its
        // generic refusal.
        if !url::Url::parse(url).is_ok_and(|u| matches!(u.scheme(), "http" | "https")) {
            return Err(HookError::Unprocessable(format!(
                "MediaUrl{i} is not an http(s) URL"
            )));
        }
        attachments.push(Attachment {
            url: url.to_owned(),
            content_type: form.get(&format!("MediaContentType{i}")).map(str::to_owned),
            name: None,
        });
    }
    let text = text(form);
    if text.is_none() && attachments.is_empty() {
        return Err(HookError::Unprocessable(
            "the message has no Body, media, button text or location".into(),
        ));
    }

    Ok(InboundMessage {
        external_id: sid.to_owned(),
        contact: ContactInfo {
            external_id: from.to_owned(),
            name: form.get("ProfileName").map(str::to_owned),
            email: None,
            phone: phone_number(from),
        },
        conversation_external_id: Some(conversation_key(from, to)),
        text,
        attachments,
    })
}

/// The message text: `Body`, else what a WhatsApp button or location message carries
/// instead, so that such a message is not refused for having no text.
fn text(form: &Form) -> Option<String> {
    if let Some(body) = form.get("Body") {
        return Some(body.to_owned());
    }
    if let Some(button) = form.get("ButtonText") {
        return Some(button.to_owned());
    }
    let (lat, lon) = (form.get("Latitude")?, form.get("Longitude")?);
    let place: Vec<&str> = [form.get("Label"), form.get("Address")]
        .into_iter()
        .flatten()
        .collect();
    Some(if place.is_empty() {
        format!("Location: {lat}, {lon}")
    } else {
        format!("Location: {} ({lat}, {lon})", place.join(", "))
    })
}

/// What a status callback means for our copy of the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusReport {
    /// Twilio's message sid (our external id).
    pub sid: String,
    /// Twilio's status word, as received.
    pub twilio_status: String,
    /// The status it maps to; `None` for words that are not about an outbound message.
    pub status: Option<MessageStatus>,
    /// For `failed`: Twilio's error code, and the message when it gives one.
    pub error: Option<String>,
}

/// Whether a request to the inbound hook is a status callback instead (a Messaging
/// Service or number whose status callback URL points at the main hook).
pub fn is_status_callback(form: &Form) -> bool {
    let status = form.get("MessageStatus").or_else(|| form.get("SmsStatus"));
    status.is_some_and(|s| s != "received" && s != "receiving")
}

/// A status callback (`MessageSid`, `MessageStatus`, `ErrorCode`).
pub fn status_report(form: &Form) -> Result<StatusReport, HookError> {
    let sid = form
        .id("MessageSid")
        .or_else(|| form.id("SmsSid"))
        .ok_or_else(|| HookError::Unprocessable("MessageSid is missing".into()))?;
    let twilio_status = form
        .get("MessageStatus")
        .or_else(|| form.get("SmsStatus"))
        .ok_or_else(|| HookError::Unprocessable("MessageStatus is missing".into()))?;
    let status = match twilio_status {
        // Each says Twilio has the message, which is what our `sent` means; recording
        // them (forward only, so usually a no-op) also tells us a sid we never saw.
        "accepted" | "scheduled" | "queued" | "sending" | "sent" => Some(MessageStatus::Sent),
        // `partially_delivered`: some recipients of a group message got it.
        "delivered" | "partially_delivered" => Some(MessageStatus::Delivered),
        "read" => Some(MessageStatus::Read),
        "failed" | "undelivered" | "canceled" => Some(MessageStatus::Failed),
        _ => None,
    };
    let error = (status == Some(MessageStatus::Failed)).then(|| {
        match (form.get("ErrorCode"), form.get("ErrorMessage")) {
            (Some(code), Some(msg)) => format!("Twilio {twilio_status}: error {code}: {msg}"),
            (Some(code), None) => format!("Twilio {twilio_status}: error {code}"),
            (None, _) => format!("Twilio {twilio_status}"),
        }
    });
    Ok(StatusReport {
        sid: sid.to_owned(),
        twilio_status: twilio_status.to_owned(),
        status,
        error,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(p: &[(&str, &str)]) -> Form {
        Form(
            p.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    #[test]
    fn an_sms_with_media() {
        let f = form(&[
            ("MessageSid", "MM1"),
            ("From", "+31612345678"),
            ("To", "+14155550100"),
            ("Body", ""),
            ("NumMedia", "2"),
            ("MediaUrl0", "https://api.twilio.com/m/0"),
            ("MediaContentType0", "image/jpeg"),
            ("MediaUrl1", "https://api.twilio.com/m/1"),
            ("MediaContentType1", "application/pdf"),
        ]);
        let m = inbound_message(&f).unwrap();
        assert_eq!(m.external_id, "MM1");
        assert_eq!(m.contact.external_id, "+31612345678");
        assert_eq!(m.contact.phone.as_deref(), Some("+31612345678"));
        assert_eq!(m.contact.name, None);
        assert_eq!(
            m.conversation_external_id.as_deref(),
            Some("+31612345678|+14155550100")
        );
        assert_eq!(m.text, None);
        assert_eq!(m.attachments.len(), 2);
        assert_eq!(m.attachments[1].url, "https://api.twilio.com/m/1");
        assert_eq!(
            m.attachments[1].content_type.as_deref(),
            Some("application/pdf")
        );
    }

    #[test]
    fn a_whatsapp_message() {
        let f = form(&[
            ("SmsMessageSid", "SM2"),
            ("From", "whatsapp:+31612345678"),
            ("To", "whatsapp:+14155238886"),
            ("Body", "Hallo"),
            ("ProfileName", "Mary"),
            ("WaId", "31612345678"),
            ("NumMedia", "0"),
        ]);
        let m = inbound_message(&f).unwrap();
        assert_eq!(m.external_id, "SM2");
        assert_eq!(m.contact.external_id, "whatsapp:+31612345678");
        assert_eq!(m.contact.name.as_deref(), Some("Mary"));
        assert_eq!(m.contact.phone.as_deref(), Some("+31612345678"));
        assert_eq!(m.text.as_deref(), Some("Hallo"));
        let key = m.conversation_external_id.unwrap();
        assert_eq!(our_address(&key), Some("whatsapp:+14155238886"));
    }

    #[test]
    fn buttons_and_locations_become_text() {
        let base = [
            ("MessageSid", "SM3"),
            ("From", "whatsapp:+1"),
            ("To", "whatsapp:+2"),
        ];
        let mut f = form(&base);
        f.0.push(("ButtonText".into(), "Yes please".into()));
        assert_eq!(
            inbound_message(&f).unwrap().text.as_deref(),
            Some("Yes please")
        );
        let mut f = form(&base);
        f.0.extend([
            ("Latitude".into(), "52.37".into()),
            ("Longitude".into(), "4.89".into()),
            ("Label".into(), "Dam".into()),
        ]);
        assert_eq!(
            inbound_message(&f).unwrap().text.as_deref(),
            Some("Location: Dam (52.37, 4.89)")
        );
    }

    #[test]
    fn missing_fields_are_named() {
        let err = inbound_message(&form(&[("From", "+1"), ("To", "+2")])).unwrap_err();
        assert_eq!(
            err,
            HookError::Unprocessable("MessageSid is missing".into())
        );
        let err = inbound_message(&form(&[("MessageSid", "SM1"), ("To", "+2")])).unwrap_err();
        assert_eq!(err, HookError::Unprocessable("From is missing".into()));
        let err = inbound_message(&form(&[
            ("MessageSid", "SM1"),
            ("From", "+1"),
            ("To", "+2"),
            ("NumMedia", "two"),
        ]))
        .unwrap_err();
        assert!(matches!(err, HookError::Unprocessable(m) if m.contains("NumMedia")));
    }

    #[test]
    fn status_words_map_forward() {
        let r = |s: &str, extra: &[(&str, &str)]| {
            let mut f = form(&[("MessageSid", "SM9"), ("MessageStatus", s)]);
            f.0.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
            status_report(&f).unwrap()
        };
        assert_eq!(r("queued", &[]).status, Some(MessageStatus::Sent));
        assert_eq!(r("sending", &[]).status, Some(MessageStatus::Sent));
        assert_eq!(r("receiving", &[]).status, None);
        assert_eq!(r("sent", &[]).status, Some(MessageStatus::Sent));
        assert_eq!(r("delivered", &[]).status, Some(MessageStatus::Delivered));
        assert_eq!(r("read", &[]).status, Some(MessageStatus::Read));
        let failed = r("undelivered", &[("ErrorCode", "30003")]);
        assert_eq!(failed.status, Some(MessageStatus::Failed));
        assert_eq!(
            failed.error.as_deref(),
            Some("Twilio undelivered: error 30003")
        );
        assert_eq!(r("delivered", &[("ErrorCode", "30003")]).error, None);
        assert!(is_status_callback(&form(&[("MessageStatus", "delivered")])));
        assert!(!is_status_callback(&form(&[("SmsStatus", "received")])));
        assert!(!is_status_callback(&form(&[("Body", "hi")])));
    }
}

#[cfg(test)]
mod fuzz_regressions {
    use super::*;

    /// Found by the `twilio_form` fuzz target: each of these parsed into a message the
    /// host then refused with a generic error, or (the `|`) into a conversation whose
    /// replies would go out from the wrong address.
    #[test]
    fn what_the_host_would_refuse_is_refused_here_by_name() {
        let f = |body: &str| inbound_message(&Form::parse(body.as_bytes()).unwrap());
        let err = |body: &str| match f(body) {
            Err(HookError::Unprocessable(m)) => m,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            err("MessageSid=+&From=%2B1&To=%2B2&Body=x"),
            "MessageSid is missing"
        );
        assert_eq!(
            err("MessageSid=SM1&From=+&To=%2B2&Body=x"),
            "From is missing"
        );
        assert_eq!(
            err("MessageSid=SM1&From=%2B1&To=%2B2&NumMedia=1&MediaUrl0=javascript%3Ax"),
            "MediaUrl0 is not an http(s) URL"
        );
        assert_eq!(
            err("MessageSid=SM1&From=%2B1&To=%2B2&Body=&NumMedia=0"),
            "the message has no Body, media, button text or location"
        );
        let m = f("MessageSid=SM1&From=a%7Cb&To=%2B2&Body=x").unwrap();
        let key = m.conversation_external_id.unwrap();
        assert_eq!(our_address(&key), Some("+2"));
        let r = status_report(&Form::parse(b"MessageSid=+&SmsSid=SM9&MessageStatus=sent").unwrap());
        assert_eq!(r.unwrap().sid, "SM9");
    }
}

#[cfg(test)]
mod form_tests {
    use super::Form;

    #[test]
    fn decodes_like_a_form_and_refuses_what_is_not_utf8() {
        let f = Form::parse(b"Body=caf%C3%A9+au+lait&From=%2B316&Empty=&Flag").unwrap();
        assert_eq!(f.get("Body"), Some("café au lait"));
        assert_eq!(f.get("From"), Some("+316"));
        assert_eq!(f.get("Empty"), None);
        assert!(f.0.iter().any(|(k, v)| k == "Flag" && v.is_empty()));
        assert!(Form::parse(b"Body=caf%E9").is_err(), "Latin-1 é");
        assert!(
            Form::parse(b"Body=caf\xe9").is_err(),
            "a raw non-UTF-8 byte"
        );
    }
}
