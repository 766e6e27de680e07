//! nimchat (Chatwoot-style) desk webhook bodies: `switchboard_nimchat::webhook::parse`,
//! which runs once `X-Chatwoot-Signature` (or the path token) has matched.

#![no_main]

use libfuzzer_sys::fuzz_target;
// Through the registration, which names every connector crate once.
use switchboard::registry::crates::switchboard_nimchat;
use switchboard_nimchat::mirror::MARKER;
use switchboard_nimchat::webhook::{Action, parse};

fuzz_target!(|data: &[u8]| {
    let Ok(action) = parse(data, MARKER) else {
        return;
    };
    if let Action::Reply {
        text, attachments, ..
    } = &action
    {
        // What becomes a reply carries no blank text and only http(s) files, so the
        // host's reply check refuses it only for being empty.
        assert!(
            text.as_deref().is_none_or(|t| !t.trim().is_empty()),
            "{action:?}"
        );
        assert!(attachments.iter().all(|a| a.has_http_url()), "{action:?}");
    }
    // The same body parses to the same action.
    assert_eq!(parse(data, MARKER).unwrap(), action);
});
