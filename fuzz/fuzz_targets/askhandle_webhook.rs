//! AskHandle webhook deliveries (`{data, webhook}`: `message.added`, `chat.added`):
//! `switchboard_askhandle::webhook::parse`, which runs once the hook's path token
//! matched (AskHandle signs nothing).

#![no_main]

use libfuzzer_sys::fuzz_target;
// Through the registration, which names every connector crate once.
use switchboard::registry::crates::switchboard_askhandle;
use switchboard_askhandle::webhook::{Action, parse};

fuzz_target!(|data: &[u8]| {
    let Ok(action) = parse(data) else {
        return;
    };
    match &action {
        Action::Answer(m) => {
            // The answer's idempotency key is `msg-<uuid>`: a blank uuid would make every
            // such answer one, and drop all but the first.
            assert!(!m.uuid.trim().is_empty(), "{m:?}");
            assert!(m.is_support_sender, "{m:?}");
            assert!(m.body.as_deref().is_some_and(|b| !b.trim().is_empty()));
            // (A blank room uuid names no room of ours: the answer is acknowledged and
            // dropped as any other room's.)
            let _ = m.room_uuid();
        }
        Action::Room(_) | Action::Ignore(_) => {}
    }
});
