//! Standard Webhooks signatures (<https://www.standardwebhooks.com/>), used for `webhook`
//! deliveries and `api` callbacks.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::secret::Secret;

/// A `whsec_…` signing key, decoded.
#[derive(Clone)]
pub struct WebhookKey(Vec<u8>);

impl std::fmt::Debug for WebhookKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookKey(***)")
    }
}

impl WebhookKey {
    /// Parses `whsec_` + base64. The error never contains the secret.
    pub fn parse(secret: &Secret) -> Result<Self, String> {
        let Some(b64) = secret.expose().strip_prefix("whsec_") else {
            return Err("expected \"whsec_\" followed by base64".into());
        };
        let key = B64
            .decode(b64)
            .map_err(|_| "the part after \"whsec_\" is not valid base64".to_string())?;
        if key.len() < 16 {
            return Err("the key must be at least 16 bytes (24 base64 characters)".into());
        }
        Ok(WebhookKey(key))
    }

    /// The `webhook-signature` value for one delivery: `v1,<base64 HMAC-SHA256 of
    /// "{id}.{timestamp}.{body}">`.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key size");
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        format!("v1,{}", B64.encode(mac.finalize().into_bytes()))
    }

    /// The three Standard Webhooks headers for one delivery.
    pub fn headers(&self, id: &str, timestamp: i64, body: &[u8]) -> [(&'static str, String); 3] {
        [
            ("webhook-id", id.to_owned()),
            ("webhook-timestamp", timestamp.to_string()),
            ("webhook-signature", self.sign(id, timestamp, body)),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example from the Standard Webhooks reference libraries.
    #[test]
    fn matches_the_reference_vector() {
        let key =
            WebhookKey::parse(&Secret::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")).unwrap();
        let sig = key.sign(
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn rejects_bad_keys_without_echoing_them() {
        let err = WebhookKey::parse(&Secret::new("sekrit-value")).unwrap_err();
        assert!(!err.contains("sekrit"));
        assert!(WebhookKey::parse(&Secret::new("whsec_!!!")).is_err());
    }
}
