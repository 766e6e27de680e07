//! What every fuzz target checks about the messages a parser hands to the host, beyond
//! "it did not panic".

use switchboard_core::InboundMessage;

/// A parsed inbound message must be one the host stores: a parser that returns a message
/// the host then refuses turns one odd item into a refusal of the whole request (every
/// message of a batched webhook), with an error that does not name the provider's field.
pub fn assert_storable(m: &InboundMessage) {
    assert!(!m.external_id.trim().is_empty(), "blank external_id: {m:?}");
    assert!(
        !m.contact.external_id.trim().is_empty(),
        "blank contact id: {m:?}"
    );
    if let Some(c) = &m.conversation_external_id {
        assert!(!c.trim().is_empty(), "blank conversation id: {m:?}");
    }
    if let Err(e) = switchboard::app::validate_inbound(m) {
        panic!("the host refuses a parsed message ({e}): {m:?}");
    }
}
