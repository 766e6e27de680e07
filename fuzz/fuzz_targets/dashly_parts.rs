//! Dashly Web API answers, as the poller reads them: the `meta`/`data` envelope as a
//! page of conversations and as a page of parts, then the visitor's messages drawn from
//! the parts (`payload::visitor_messages`, the step between the request and `ingest`).
//! Dashly sends no webhooks: these bodies are the connector's whole inbound surface.

#![no_main]

use libfuzzer_sys::fuzz_target;
use switchboard::registry::crates::switchboard_dashly::payload::{
    Conversation, Page, Part, parse_page, visitor_messages,
};

const ADMIN: &str = "77";

fuzz_target!(|data: &[u8]| {
    let convs = parse_page::<Conversation>(data).ok();
    if let Some(p) = &convs {
        for c in &p.items {
            // The cursor the poller would store is text it can send back as is.
            if let Some(t) = c.updated_text() {
                assert!(!t.is_empty() && t.trim() == t, "{t:?}");
            }
        }
    }
    let Ok(parts) = parse_page::<Part>(data) else {
        return;
    };
    let fallback: Conversation =
        serde_json::from_value(serde_json::json!({"id": "c1", "user": {"id": "u1"}})).unwrap();
    let conv = convs
        .as_ref()
        .and_then(|p: &Page<Conversation>| p.items.first().cloned())
        .unwrap_or(fallback);
    let all = visitor_messages(&conv, &parts.items, ADMIN, f64::MIN);
    for m in &all.messages {
        switchboard_fuzz::assert_storable(m);
        assert!(m.text.is_some() || !m.attachments.is_empty(), "{m:?}");
        if let Some(t) = &m.text {
            assert_eq!(t.trim(), t, "text is trimmed: {t:?}");
        }
    }
    // Our own admin's parts are never the contact's.
    let ours = parts
        .items
        .iter()
        .filter(|p| {
            let f = p.from.as_ref();
            f.and_then(|f| f.kind.as_deref()) == Some("admin")
                && f.and_then(|f| f.id.as_ref()).is_some_and(|i| i.0 == ADMIN)
        })
        .count();
    assert_eq!(all.echoes, ours);
    assert!(all.messages.len() + ours <= parts.items.len());
    // A floor only ever leaves messages out.
    let later = visitor_messages(&conv, &parts.items, ADMIN, 1_700_000_000.0);
    assert!(later.messages.iter().all(|m| all.messages.contains(m)));
});
