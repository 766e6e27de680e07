//! Messenger webhook bodies (`entry[].messaging[]`): `switchboard_messenger::webhook::parse`,
//! which runs once `X-Hub-Signature-256` has matched; and the same bytes as the query of
//! the verification GET (`webhook::verification`), which is read before any check.

#![no_main]

use libfuzzer_sys::fuzz_target;
// Through the registration, which names every connector crate once.
use switchboard::registry::crates::switchboard_messenger;
use switchboard_core::MessageStatus;
use switchboard_messenger::webhook::{conversation_key, parse, verification};

const PAGE: &str = "682498302938465";

fuzz_target!(|data: &[u8]| {
    if let Ok(q) = std::str::from_utf8(data) {
        let _ = verification(Some(q));
    }
    let Ok(parsed) = parse(data, PAGE) else {
        return;
    };
    for m in &parsed.messages {
        switchboard_fuzz::assert_storable(m);
        // The thread is always this page and the sender.
        assert_eq!(
            m.conversation_external_id.as_deref(),
            Some(conversation_key(PAGE, &m.contact.external_id).as_str()),
            "{m:?}"
        );
    }
    for r in &parsed.receipts {
        assert!(!r.external_id.trim().is_empty(), "{r:?}");
        assert_eq!(r.status, MessageStatus::Delivered, "{r:?}");
    }
    for w in &parsed.watermarks {
        assert!(
            matches!(w.status, MessageStatus::Delivered | MessageStatus::Read),
            "{w:?}"
        );
        assert!(w.conversation_external_id.starts_with(&format!("{PAGE}:")), "{w:?}");
    }
    // The same body parses to the same result.
    assert_eq!(parse(data, PAGE).unwrap(), parsed);
});
