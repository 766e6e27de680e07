//! Request bodies: read within `server.max_body`, parsed with the contract's statuses
//! (413 too large, 400 not JSON, 422 JSON of the wrong shape).

use axum::body::Body;
use axum::http::{HeaderMap, StatusCode};
use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use serde::de::DeserializeOwned;

use super::error::ApiError;

/// Reads a whole body, refusing anything over `limit` bytes.
pub async fn read(headers: &HeaderMap, body: Body, limit: usize) -> Result<Bytes, ApiError> {
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("the body exceeds {limit} bytes"),
        )
    };
    if let Some(len) = headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        && len > limit as u64
    {
        return Err(too_large());
    }
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(too_large()),
        Err(_) => Err(ApiError::malformed("the body could not be read")),
    }
}

/// Parses JSON: a body that is not JSON is 400, JSON of the wrong shape 422, both
/// naming where (the same rules as provider hooks: [`switchboard_core::parse_json`]).
pub fn json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    switchboard_core::parse_json(bytes, "the expected request").map_err(ApiError::from)
}

/// Parses a query string; unknown or mistyped parameters are 400.
pub fn query<T: DeserializeOwned>(raw: Option<&str>) -> Result<T, ApiError> {
    serde_urlencoded::from_str(raw.unwrap_or(""))
        .map_err(|e| ApiError::malformed(format!("query: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct T {
        a: u32,
    }

    #[test]
    fn classifies() {
        assert_eq!(
            json::<T>(b"{\"a\":").unwrap_err().status,
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            json::<T>(b"\xff\xfe").unwrap_err().status,
            StatusCode::BAD_REQUEST
        );
        let e = json::<T>(b"{\"a\":\"x\"}").unwrap_err();
        assert_eq!(e.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(
            e.message.starts_with("not the expected request: a: "),
            "names the path: {}",
            e.message
        );
        assert_eq!(
            json::<T>(b"{\"b\":1}").unwrap_err().status,
            StatusCode::UNPROCESSABLE_ENTITY
        );
        assert!(json::<T>(b"{\"a\":1}").is_ok());
    }

    #[test]
    fn deep_nesting_is_a_clean_400() {
        let deep = "[".repeat(100_000);
        assert_eq!(
            json::<serde_json::Value>(deep.as_bytes())
                .unwrap_err()
                .status,
            StatusCode::BAD_REQUEST
        );
    }
}
