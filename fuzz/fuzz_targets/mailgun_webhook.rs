//! Mailgun bodies: a route's forward (`form::Form::parse` as urlencoded, or multipart
//! when the first byte is odd, then `webhook::mail`) and an event webhook
//! (`webhook::event`). The signature triple is read from the parsed form, so the form
//! parser is what an unsigned body reaches; `mail` and `event` run once it matched.

#![no_main]

use libfuzzer_sys::fuzz_target;
// Through the registration, which names every connector crate once.
use switchboard::registry::crates::switchboard_mailgun;
use switchboard_core::MessageStatus;
use switchboard_mailgun::form::Form;
use switchboard_mailgun::webhook::{event, mail};

/// The boundary of multipart inputs (the seeds use it).
const MULTIPART: &str = "multipart/form-data; boundary=b0undary";

fuzz_target!(|data: &[u8]| {
    let Some((&first, body)) = data.split_first() else {
        return;
    };
    let ct = if first % 2 == 1 { MULTIPART } else { "application/x-www-form-urlencoded" };
    if let Ok(form) = Form::parse(Some(ct), body) {
        // Deterministic, and every field is text.
        assert_eq!(Form::parse(Some(ct), body).unwrap(), form);
        if let Ok(m) = mail(&form) {
            assert!(!m.message_id.trim().is_empty(), "{m:?}");
            assert!(m.address.contains('@'), "{m:?}");
            assert!(!m.referenced().contains(&m.message_id.as_str()), "a mail refers to itself: {m:?}");
            let root = m.root().to_owned();
            switchboard_fuzz::assert_storable(&m.inbound(root));
        }
    }
    if let Ok(v) = switchboard_core::parse_json::<serde_json::Value>(body, "an event") {
        if let Ok(Some(r)) = event(&v) {
            assert!(!r.external_id.trim().is_empty(), "{r:?}");
            assert_eq!(r.error.is_some(), r.status == MessageStatus::Failed, "{r:?}");
        }
    }
});
