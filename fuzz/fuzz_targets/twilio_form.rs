//! Twilio's form bodies: `Form::parse` (which runs before the signature check, since
//! the signature covers the decoded fields), then the inbound-message and status
//! parsers that run after it.

#![no_main]

use libfuzzer_sys::fuzz_target;
// Through the registration, which names every connector crate once.
use switchboard::registry::crates::switchboard_twilio;
use switchboard_core::MessageStatus;
use switchboard_twilio::webhook::{
    Form, conversation_key, inbound_message, is_status_callback, our_address, status_report,
};

fuzz_target!(|data: &[u8]| {
    let Ok(form) = Form::parse(data) else {
        return;
    };
    // Encoding the decoded pairs and decoding them again gives the same pairs.
    let encoded = serde_urlencoded::to_string(&form.0).expect("pairs of strings encode");
    let again = Form::parse(encoded.as_bytes()).expect("an encoded form parses");
    assert_eq!(again.0, form.0, "form round trip via {encoded:?}");

    // The main hook takes a form as a status callback when it carries a status word
    // (as the connector does); `/status` always does.
    if is_status_callback(&form) {
        return check_status(&form);
    }
    check_status(&form);
    if let Ok(m) = inbound_message(&form) {
        switchboard_fuzz::assert_storable(&m);
        let from = form.get("From").unwrap();
        let to = form.get("To").unwrap();
        assert_eq!(m.contact.external_id, from);
        let key = m.conversation_external_id.as_deref().unwrap();
        assert_eq!(key, conversation_key(from, to));
        // Replies go out from the address the contact wrote to. Our own addresses (a
        // number, `whatsapp:+…`, a channel id) never hold a `|`.
        if !to.contains('|') {
            assert_eq!(our_address(key), Some(to), "our address from {key:?}");
        }
        assert!(m.attachments.len() <= 64);
    }
});

fn check_status(form: &Form) {
    if let Ok(r) = status_report(form) {
        assert!(!r.sid.trim().is_empty() && !r.twilio_status.is_empty());
        assert_eq!(r.error.is_some(), r.status == Some(MessageStatus::Failed));
    }
}
