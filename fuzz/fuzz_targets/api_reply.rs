//! `POST /v1/conversations/{id}/messages` bodies: the JSON classifier and
//! `ReplyBody::into_outbound`, the checks a reply passes before it is stored.

#![no_main]

use libfuzzer_sys::fuzz_target;
use switchboard::http::body;
use switchboard::http::v1::ReplyBody;
use switchboard_core::AuthorType;

fuzz_target!(|data: &[u8]| {
    let Ok(req) = body::json::<ReplyBody>(data) else {
        return;
    };
    let Ok(out) = req.into_outbound() else {
        return;
    };
    assert!(matches!(
        out.author.kind,
        AuthorType::Agent | AuthorType::Bot
    ));
    assert!(
        out.text.as_deref().is_some_and(|t| !t.trim().is_empty()) || !out.attachments.is_empty()
    );
    if let Some(k) = &out.idempotency_key {
        assert!(!k.is_empty() && k.len() <= 255);
    }
});
