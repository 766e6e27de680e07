//! Sunshine Conversations webhook bodies, v2 (`events[]`) and v1.1 (`trigger`):
//! `switchboard_smooch::webhook::parse`, which runs once `X-API-Key` has matched.

#![no_main]

use libfuzzer_sys::fuzz_target;
// Through the registration, which names every connector crate once.
use switchboard::registry::crates::switchboard_smooch;
use switchboard_core::MessageStatus;

fuzz_target!(|data: &[u8]| {
    let Ok(parsed) = switchboard_smooch::webhook::parse(data) else {
        return;
    };
    for m in &parsed.messages {
        switchboard_fuzz::assert_storable(m);
        // Every message shows something: text, or a file, or a note saying what it was.
        assert!(m.text.is_some() || !m.attachments.is_empty());
    }
    for r in &parsed.receipts {
        assert!(!r.external_id.trim().is_empty(), "{r:?}");
        assert_eq!(
            r.error.is_some(),
            r.status == MessageStatus::Failed,
            "{r:?}"
        );
    }
    // The same body parses to the same result (nothing depends on map order or state).
    assert_eq!(switchboard_smooch::webhook::parse(data).unwrap(), parsed);
});
