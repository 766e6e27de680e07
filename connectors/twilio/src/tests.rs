//! Unit tests of the connector's own helpers; parsing and signatures are tested beside
//! their code, the whole connector by the compliance suite.

use crate::client::sender;
use crate::connector::KEY_PARAM;
use crate::webhook::query_param;

#[test]
fn replies_go_from_the_address_the_contact_wrote_to() {
    let wa = Some("whatsapp:+316|whatsapp:+14155238886");
    assert_eq!(
        sender(wa, Some("+14155550100"), "whatsapp:+316").as_deref(),
        Some("whatsapp:+14155238886")
    );
    assert_eq!(
        sender(None, Some("+14155550100"), "whatsapp:+316").as_deref(),
        Some("whatsapp:+14155550100")
    );
    assert_eq!(
        sender(None, Some("+14155550100"), "+316").as_deref(),
        Some("+14155550100")
    );
    assert_eq!(
        sender(Some("not a pair"), Some("whatsapp:+1"), "whatsapp:+316").as_deref(),
        Some("whatsapp:+1")
    );
    assert_eq!(sender(None, None, "+316"), None);
}

#[test]
fn query_params_are_decoded() {
    assert_eq!(
        query_param(Some("a=1&idempotency_key=sms-12"), KEY_PARAM).as_deref(),
        Some("sms-12")
    );
    assert_eq!(query_param(Some("a=1"), KEY_PARAM), None);
    assert_eq!(query_param(None, KEY_PARAM), None);
}
