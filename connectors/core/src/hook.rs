//! A provider's request to `/hooks/{service_id}[/…]` and the answer to it: the head
//! checked before the body is read (and what it earns), the one JSON body parser every
//! hook uses.

use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode};

use crate::error::HookError;

/// What a provider's request carries before its body: enough to check credentials that
/// ride in headers or in the path, so that a request without them is refused before its
/// body is read.
#[derive(Debug, Clone)]
pub struct HookHead {
    /// Providers POST; anything else is 405 for a [`WebhookChannel`](crate::WebhookChannel).
    pub method: Method,
    /// The path below `/hooks/{service_id}`, without the leading slash (`""`, `"status"`).
    pub subpath: String,
    /// The request path and query exactly as received (for URL-bound signatures).
    pub path_and_query: String,
    /// The raw query string, if any.
    pub query: Option<String>,
    /// Headers as received: signatures, shared secrets, content type.
    pub headers: HeaderMap,
}

impl HookHead {
    /// For a desk its provider cannot sign for: checks the path
    /// `/hooks/{id}/{token}[/…]` against `token` in constant time. A wrong or missing
    /// token is 401 (an unknown path below the hook looks the same until the token
    /// matches); anything below a right token is 404.
    pub fn require_path_token(&self, token: &crate::Secret) -> Result<(), HookError> {
        let (presented, rest) = self
            .subpath
            .split_once('/')
            .unwrap_or((self.subpath.as_str(), ""));
        if !token.matches(presented.as_bytes()) {
            return Err(HookError::Unauthorized(
                "the hook URL's token is missing or wrong".into(),
            ));
        }
        if !rest.is_empty() {
            return Err(HookError::NotFound);
        }
        Ok(())
    }

    /// A header's value as text, if present and valid.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Requires header `name` (spelled `shown` in messages) to hold a signature of the
    /// given shape. Only the shape is checked here; whether it signs the body is known
    /// once the body is read.
    pub fn require_signature(
        &self,
        name: &str,
        shown: &str,
        shape: SignatureShape,
    ) -> Result<(), HookError> {
        let Some(value) = self.header(name) else {
            return Err(HookError::Unauthorized(format!("{shown} is missing")));
        };
        if shape.fits(value.trim()) {
            Ok(())
        } else {
            Err(HookError::Unauthorized(format!(
                "{shown} is not {}",
                shape.describe()
            )))
        }
    }
}

/// What the head of a provider's request earned: how much of its body may be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookAdmission {
    /// Credentials are present and well-formed: the body may be read up to
    /// `server.max_body`, then verified in full.
    Signed,
    /// No credentials in the head, but the provider sends this kind of request
    /// unsigned and authenticated by its body (Google's webhook-setup request): at most
    /// `max_body` bytes are read, and a longer body is refused as unauthenticated.
    BodyAuthenticated {
        /// The most bytes such a body has.
        max_body: usize,
    },
}

/// How a provider encodes a MAC in its signature header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureShape {
    /// Padded standard base64 of a MAC of this many bytes (Twilio: 20, Google: 64).
    Base64 {
        /// The MAC's length in bytes.
        bytes: usize,
    },
    /// `prefix` followed by lower- or upper-case hex of a MAC of this many bytes
    /// (Intercom: `sha1=` and 20).
    PrefixedHex {
        /// What comes before the hex, e.g. `sha1=`.
        prefix: &'static str,
        /// The MAC's length in bytes.
        bytes: usize,
    },
}

impl SignatureShape {
    /// Whether `value` has this shape.
    pub fn fits(self, value: &str) -> bool {
        use base64::Engine;
        match self {
            SignatureShape::Base64 { bytes } => {
                // Length first: the decoder never sees more than a MAC's worth.
                value.len() == bytes.div_ceil(3) * 4
                    && base64::engine::general_purpose::STANDARD
                        .decode(value)
                        .is_ok_and(|b| b.len() == bytes)
            }
            SignatureShape::PrefixedHex { prefix, bytes } => {
                value.strip_prefix(prefix).is_some_and(|hex| {
                    hex.len() == bytes * 2 && hex.bytes().all(|b| b.is_ascii_hexdigit())
                })
            }
        }
    }

    fn describe(self) -> String {
        match self {
            SignatureShape::Base64 { bytes } => format!("the base64 of a {bytes}-byte signature"),
            SignatureShape::PrefixedHex { prefix, bytes } => {
                format!("{prefix}<hex> of a {bytes}-byte signature")
            }
        }
    }
}

/// A provider's whole HTTP request, as the connector needs it to verify and parse. It
/// derefs to its [`HookHead`].
#[derive(Debug, Clone)]
pub struct HookRequest {
    /// Method, path, query and headers.
    pub head: HookHead,
    /// The raw body, within `server.max_body`.
    pub body: Bytes,
}

impl std::ops::Deref for HookRequest {
    type Target = HookHead;

    fn deref(&self) -> &HookHead {
        &self.head
    }
}

impl std::ops::DerefMut for HookRequest {
    fn deref_mut(&mut self) -> &mut HookHead {
        &mut self.head
    }
}

impl HookRequest {
    /// The body as JSON of type `T`; see [`parse_json`].
    pub fn json<T: serde::de::DeserializeOwned>(&self, what: &str) -> Result<T, HookError> {
        parse_json(&self.body, what)
    }
}

/// Parses a JSON body: one that is not JSON at all (truncated, another charset, nested
/// past the parser's limit) is `BadRequest` (400); valid JSON of the wrong shape is
/// `Unprocessable` (422), naming where. serde stops at the first value of the wrong type,
/// which may come before a syntax error further on, so a shape error is only reported
/// once the whole body is known to be JSON. `what` names the expected document.
pub fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8], what: &str) -> Result<T, HookError> {
    let de = &mut serde_json::Deserializer::from_slice(body);
    let err = match serde_path_to_error::deserialize(de) {
        Ok(v) => return Ok(v),
        Err(e) => e,
    };
    // JSON text is UTF-8 throughout; skipping a value does not look inside its strings,
    // so without this a body in another charset would pass as JSON of the wrong shape.
    let syntax = match std::str::from_utf8(body) {
        Err(e) => Some(format!("not UTF-8 at byte {}", e.valid_up_to())),
        Ok(text) => serde_json::from_str::<serde::de::IgnoredAny>(text)
            .err()
            .map(|e| e.to_string()),
    };
    if let Some(syntax) = syntax {
        return Err(HookError::BadRequest(format!(
            "the body is not JSON: {syntax}"
        )));
    }
    let path = err.path().to_string();
    let inner = err.into_inner();
    if !inner.is_data() {
        return Err(HookError::BadRequest(format!(
            "the body is not JSON: {inner}"
        )));
    }
    Err(HookError::Unprocessable(if path == "." {
        format!("not {what}: {inner}")
    } else {
        format!("not {what}: {path}: {inner}")
    }))
}

/// The answer to a provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookResponse {
    /// Status code; 2xx tells the provider not to retry.
    pub status: StatusCode,
    /// `Content-Type` of `body`.
    pub content_type: &'static str,
    /// What the provider reads; `content_type` says how.
    pub body: Bytes,
}

impl HookResponse {
    /// 200 with a JSON body.
    pub fn json(value: &serde_json::Value) -> Self {
        HookResponse {
            status: StatusCode::OK,
            content_type: "application/json",
            body: Bytes::from(value.to_string()),
        }
    }

    /// 200 with a plain-text body.
    pub fn text(status: StatusCode, body: impl Into<Bytes>) -> Self {
        HookResponse {
            status,
            content_type: "text/plain; charset=utf-8",
            body: body.into(),
        }
    }

    /// 200 `{"status":"ok"}`.
    pub fn ok() -> Self {
        Self::json(&serde_json::json!({"status": "ok"}))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_shapes() {
        let b64 = SignatureShape::Base64 { bytes: 20 };
        assert!(b64.fits("AAAAAAAAAAAAAAAAAAAAAAAAAAA="));
        assert!(!b64.fits("AAAAAAAAAAAAAAAAAAAAAAAAAAAA"), "unpadded");
        assert!(!b64.fits("AAAAAAAAAAAAAAAAAAAAAAAAAA=="), "19 bytes");
        assert!(!b64.fits("AAAAAAAAAAAAAAAAAAAAAAAAAA*="), "not base64");
        let hex = SignatureShape::PrefixedHex {
            prefix: "sha1=",
            bytes: 20,
        };
        assert!(hex.fits(&format!("sha1={}", "aB".repeat(20))));
        assert!(!hex.fits(&"ab".repeat(20)), "no prefix");
        assert!(!hex.fits(&format!("sha1={}", "ab".repeat(19))), "short");
        assert!(!hex.fits(&format!("sha1={}g", "ab".repeat(19))), "not hex");
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Shape {
        a: String,
    }

    /// Found by the `api_inbound` fuzz target: a shape error before a byte that is not
    /// UTF-8 was answered 422, as if the body were JSON.
    #[test]
    fn another_charset_is_400_even_after_a_shape_error() {
        let body = b"{\"b\":1,\"a\":\"caf\xe9\"}";
        match parse_json::<Shape>(body, "a shape") {
            Err(HookError::BadRequest(m)) => {
                assert_eq!(m, "the body is not JSON: not UTF-8 at byte 15")
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            parse_json::<Shape>(b"{\"b\":1}", "a shape"),
            Err(HookError::Unprocessable(_))
        ));
        assert!(matches!(
            parse_json::<Shape>(b"{\"a\":", "a shape"),
            Err(HookError::BadRequest(_))
        ));
        assert_eq!(
            parse_json::<Shape>(b"{\"a\":\"x\"}", "a shape").unwrap().a,
            "x"
        );
    }
}
