//! Haptik webhook bodies (`message`, `chat_pinned`, `chat_complete`):
//! `switchboard_haptik::webhook::parse`, which runs once the hook's path token matched
//! (Haptik signs nothing); and the same bytes as a `get_chat_history` answer, which the
//! history import reads at a handoff.

#![no_main]

use libfuzzer_sys::fuzz_target;
// Through the registration, which names every connector crate once.
use switchboard::registry::crates::switchboard_haptik;
use switchboard_haptik::payload::History;
use switchboard_haptik::webhook::{Action, parse};

fuzz_target!(|data: &[u8]| {
    if let Ok(history) = serde_json::from_slice::<History>(data) {
        // The import's order key and its sender read anything without panicking.
        for m in &history.chat_json {
            let _ = (m.time(), m.sender());
        }
    }
    let Ok(action) = parse(data) else {
        return;
    };
    match &action {
        Action::Reply {
            auth_id,
            message_id,
            text,
            name,
            ..
        } => {
            // The answer's idempotency key is `msg-<message_id>`: a blank id would make
            // every such answer one, and drop all but the first.
            assert!(!message_id.trim().is_empty(), "{action:?}");
            assert!(!auth_id.trim().is_empty(), "{action:?}");
            // What becomes a reply has text the host's reply check accepts.
            assert!(!text.trim().is_empty(), "{action:?}");
            assert!(name.as_deref().is_none_or(|n| !n.trim().is_empty()));
        }
        Action::Pinned { auth_id, .. } | Action::Complete { auth_id } => {
            assert!(!auth_id.trim().is_empty(), "{action:?}");
        }
        Action::Ignore(_) => {}
    }
    // The same body parses to the same action.
    assert_eq!(parse(data).unwrap(), action);
});
