//! Google Business Messages bodies: the webhook-setup handshake (`webhook::handshake`,
//! which is read before any signature since Google does not sign it) and the signed
//! `UserMessage` payloads (`webhook::parse`).

#![no_main]

use libfuzzer_sys::fuzz_target;
// Through the registration, which names every connector crate once.
use switchboard::registry::crates::switchboard_gbm;
use switchboard_gbm::webhook::{Parsed, handshake, parse};

fuzz_target!(|data: &[u8]| {
    let parsed = parse(data);
    if let Some(h) = handshake(data) {
        // Re-encoded, it is still a handshake with the same fields.
        let again = serde_json::json!({"clientToken": h.client_token, "secret": h.secret});
        let h2 = handshake(again.to_string().as_bytes()).expect("a handshake re-encodes");
        assert_eq!((h2.client_token, h2.secret), (h.client_token, h.secret));
        // A setup request is never also a message to store.
        assert!(
            !matches!(parsed, Ok(Parsed::Message(_))),
            "a handshake that is a message: {parsed:?}"
        );
    }
    match parsed {
        Ok(Parsed::Message(m)) => {
            switchboard_fuzz::assert_storable(&m);
            // A conversation is one user: its id is the contact's too.
            assert_eq!(
                m.conversation_external_id.as_deref(),
                Some(m.contact.external_id.as_str())
            );
        }
        Ok(Parsed::Typing { contact, .. }) => assert!(!contact.trim().is_empty()),
        Ok(Parsed::Receipts(rs)) => {
            for r in rs {
                assert!(!r.external_id.is_empty() && !r.external_id.contains("/messages/"));
            }
        }
        Ok(Parsed::Ignored(_)) | Err(_) => {}
    }
});
