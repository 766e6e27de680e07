//! Hex-encoded HMAC-SHA256 signatures as providers send them (Messenger's
//! `X-Hub-Signature-256: sha256=<hex>`, Mailgun's `signature` field), checked in
//! constant time.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Decodes lower- or upper-case hex; `None` for an odd length or a non-hex character.
pub fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 {
        return None;
    }
    s.as_bytes()
        .chunks(2)
        .map(|pair| {
            let hi = (pair[0] as char).to_digit(16)?;
            let lo = (pair[1] as char).to_digit(16)?;
            Some((hi * 16 + lo) as u8)
        })
        .collect()
}

/// Whether `presented` is the hex of HMAC-SHA256(`key`, the concatenation of `parts`).
/// The comparison takes the same time wherever the first wrong byte is.
pub fn hmac_sha256_hex_matches(key: &[u8], parts: &[&[u8]], presented: &str) -> bool {
    let Some(bytes) = decode_hex(presented.trim()) else {
        return false;
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key size");
    for p in parts {
        mac.update(p);
    }
    mac.verify_slice(&bytes).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 4231 test case 2.
    #[test]
    fn matches_the_rfc_4231_vector() {
        let want = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";
        assert!(hmac_sha256_hex_matches(
            b"Jefe",
            &[b"what do ya want ", b"for nothing?"],
            want
        ));
        assert!(hmac_sha256_hex_matches(
            b"Jefe",
            &[b"what do ya want for nothing?"],
            &want.to_uppercase()
        ));
        assert!(!hmac_sha256_hex_matches(
            b"Jefe",
            &[b"what do ya want"],
            want
        ));
        assert!(!hmac_sha256_hex_matches(b"Jefe", &[b"x"], &want[..62]));
        assert!(!hmac_sha256_hex_matches(b"Jefe", &[b"x"], "zz"));
        assert_eq!(decode_hex("0aF1"), Some(vec![0x0a, 0xf1]));
        assert_eq!(decode_hex("abc"), None);
    }
}
