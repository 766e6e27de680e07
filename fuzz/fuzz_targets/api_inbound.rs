//! `POST /v1/services/{id}/messages` bodies: `parse_json::<InboundMessage>` (the 400 /
//! 422 classifier every JSON body goes through) and `app::validate_inbound`.

#![no_main]

use libfuzzer_sys::fuzz_target;
use switchboard_core::{HookError, InboundMessage, parse_json};

fuzz_target!(|data: &[u8]| {
    let m = match parse_json::<InboundMessage>(data, "an inbound message") {
        Ok(m) => m,
        Err(HookError::BadRequest(_)) => {
            // 400 means not JSON at all: bad syntax, a string that is not UTF-8 (which
            // skipping values does not check, so the oracle builds a full value), or
            // nesting past the parser's limit.
            let bad = serde_json::from_slice::<serde_json::Value>(data).is_err();
            assert!(
                bad,
                "valid JSON answered 400: {:?}",
                String::from_utf8_lossy(data)
            );
            return;
        }
        Err(HookError::Unprocessable(_)) => {
            // 422 means JSON of the wrong shape: UTF-8 text in JSON's grammar. A lone
            // surrogate escape (`"\uDDDD"`) is in the grammar but no string holds it, so
            // a body with one may be either, depending on where the shape error falls.
            let json = std::str::from_utf8(data)
                .is_ok_and(|s| serde_json::from_str::<serde::de::IgnoredAny>(s).is_ok());
            assert!(
                json,
                "not JSON answered 422: {:?}",
                String::from_utf8_lossy(data)
            );
            return;
        }
        Err(e) => panic!("unexpected classification: {e:?}"),
    };
    // What was parsed serializes and parses back to the same message.
    let text = serde_json::to_vec(&m).unwrap();
    let again: InboundMessage = parse_json(&text, "an inbound message").unwrap();
    assert_eq!(again, m);
    if switchboard::app::validate_inbound(&m).is_ok() {
        switchboard_fuzz::assert_storable(&m);
    }
});
