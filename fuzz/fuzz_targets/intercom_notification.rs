//! Intercom notification bodies, after `X-Hub-Signature` matched: the envelope, the
//! conversation in `data.item`, and the contact's messages drawn from it (the steps of
//! `webhook::handle` between the signature check and `ingest`). The same bytes are also
//! read as a bare conversation, which is what the catch-up poller hands to
//! `contact_messages_since`.

#![no_main]

use libfuzzer_sys::fuzz_target;
// Through the registration, which names every connector crate once.
use switchboard::registry::crates::switchboard_intercom;
use switchboard_intercom::payload::{Conversation, MESSAGE_TOPICS, Notification};

fn check(c: &Conversation) {
    let all = c.contact_messages();
    for m in &all {
        switchboard_fuzz::assert_storable(m);
        assert!(m.text.is_some() || !m.attachments.is_empty(), "{m:?}");
        if let Some(t) = &m.text {
            assert_eq!(t.trim(), t, "text is trimmed: {t:?}");
        }
    }
    // Catch-up with no floor sees exactly what a notification sees, so both intake paths
    // dedupe against each other.
    assert_eq!(c.contact_messages_since(i64::MIN), all);
    // A floor only ever leaves messages out.
    let later = c.contact_messages_since(c.created_at.unwrap_or(0));
    assert!(later.iter().all(|m| all.contains(m)));
}

fuzz_target!(|data: &[u8]| {
    if let Ok(note) = switchboard_core::parse_json::<Notification>(data, "an Intercom notification")
        && MESSAGE_TOPICS.contains(&note.topic.as_str())
        && let Some(d) = note.data
        && let Ok(c) = serde_json::from_value::<Conversation>(d.item)
    {
        check(&c);
    }
    if let Ok(c) = serde_json::from_slice::<Conversation>(data) {
        check(&c);
    }
});
