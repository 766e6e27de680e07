//! Request bodies: read within `server.max_body`, `server.body_read_timeout` and the
//! shared `server.max_body_in_flight` budget, then parsed with the contract's statuses
//! (413 too large, 408 too slow, 503 budget exhausted, 400 not JSON, 422 JSON of the
//! wrong shape).

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, StatusCode};
use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use serde::de::DeserializeOwned;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use super::error::ApiError;
use crate::config::ServerConfig;

/// The bytes of request bodies all requests together may hold in memory
/// (`server.max_body_in_flight`). A body takes its share before it is read — its
/// `Content-Length`, or each chunk as it arrives when it has none — and keeps it until
/// its request is answered. Without it, a thousand connections each sending a body
/// slowly hold a thousand bodies.
#[derive(Debug, Clone)]
pub struct Budget(Arc<Semaphore>);

impl Budget {
    /// A budget of `bytes`.
    pub fn new(bytes: usize) -> Self {
        Budget(Arc::new(Semaphore::new(bytes.min(Semaphore::MAX_PERMITS))))
    }

    /// Bytes not taken right now.
    pub fn available(&self) -> usize {
        self.0.available_permits()
    }

    /// Takes `n` bytes, waiting until `deadline` at most.
    async fn take(&self, n: usize, deadline: Instant) -> Result<OwnedSemaphorePermit, ApiError> {
        let n = u32::try_from(n).map_err(|_| too_large(n))?;
        match tokio::time::timeout_at(deadline, self.0.clone().acquire_many_owned(n)).await {
            Ok(Ok(permit)) => Ok(permit),
            Ok(Err(_closed)) => Err(ApiError::unavailable("shutting down")),
            Err(_) => Err(ApiError::unavailable(
                "too many request bodies are being received at once; retry",
            )),
        }
    }
}

/// A body read into memory, holding its share of the [`Budget`] until dropped: keep it
/// alive until the request is answered.
#[derive(Debug)]
pub struct Held {
    /// The body.
    pub bytes: Bytes,
    _share: Option<OwnedSemaphorePermit>,
}

fn too_large(limit: usize) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "too_large",
        format!("the body exceeds {limit} bytes"),
    )
}

/// Reads a whole body of at most `limit` bytes within `server.body_read_timeout`,
/// taking its share of `budget` first.
pub async fn read(
    budget: &Budget,
    server: &ServerConfig,
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<Held, ApiError> {
    let timeout = server.body_read_timeout.0;
    let deadline = Instant::now() + timeout;
    let declared = headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return Err(too_large(limit));
    }
    let mut share = match declared {
        Some(0) => None,
        Some(len) => Some(budget.take(len as usize, deadline).await?),
        None => None,
    };
    let mut held = share.as_ref().map_or(0, |p| p.num_permits());
    let mut buf = BytesMut::with_capacity(declared.unwrap_or(0) as usize);
    let mut body = body;
    loop {
        let frame = match tokio::time::timeout_at(deadline, body.frame()).await {
            Err(_) => return Err(slow(timeout)),
            Ok(None) => break,
            Ok(Some(Err(_))) => return Err(ApiError::malformed("the body could not be read")),
            Ok(Some(Ok(frame))) => frame,
        };
        let Ok(data) = frame.into_data() else {
            continue; // trailers
        };
        if buf.len() + data.len() > limit {
            return Err(too_large(limit));
        }
        // A chunked body (or one longer than it said, which hyper refuses anyway) takes
        // its share as it arrives.
        let needed = buf.len() + data.len();
        if needed > held {
            let more = budget.take(needed - held, deadline).await?;
            held = needed;
            match &mut share {
                Some(p) => p.merge(more),
                None => share = Some(more),
            }
        }
        buf.extend_from_slice(&data);
    }
    Ok(Held {
        bytes: buf.freeze(),
        _share: share,
    })
}

fn slow(timeout: Duration) -> ApiError {
    ApiError::new(
        StatusCode::REQUEST_TIMEOUT,
        "timeout",
        format!(
            "the body did not arrive within {}",
            humantime::format_duration(timeout)
        ),
    )
}

/// Parses JSON: a body that is not JSON is 400, JSON of the wrong shape 422, both
/// naming where (the same rules as provider hooks: [`switchboard_core::parse_json`]).
pub fn json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    switchboard_core::parse_json(bytes, "the expected request").map_err(ApiError::from)
}

/// Parses a paging cursor (`after`) of the REST lists and the event stream alike: a
/// sequence number or id of at most 19 digits, `0` for "from the start"; absent or empty
/// is `None`. Anything else (signs, spaces, letters) is 400 naming `key`.
pub fn cursor(key: &str, raw: Option<&str>) -> Result<Option<i64>, ApiError> {
    let Some(raw) = raw.filter(|r| !r.is_empty()) else {
        return Ok(None);
    };
    if raw.len() <= 19
        && raw.bytes().all(|b| b.is_ascii_digit())
        && let Ok(n) = raw.parse::<i64>()
    {
        return Ok(Some(n));
    }
    Err(ApiError::malformed(format!(
        "{key}: expected a cursor this API issued (a number ≥ 0)"
    )))
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

    /// `after=0` was 400 on the REST lists but accepted by `/v1/events` (issue 14,
    /// item 11): both now read cursors here.
    #[test]
    fn cursors() {
        assert_eq!(cursor("after", None).unwrap(), None);
        assert_eq!(cursor("after", Some("")).unwrap(), None);
        assert_eq!(cursor("after", Some("0")).unwrap(), Some(0));
        assert_eq!(cursor("after", Some("42")).unwrap(), Some(42));
        for bad in [
            "-1",
            "+1",
            " 1",
            "1a",
            "99999999999999999999",
            "9223372036854775808",
        ] {
            let e = cursor("after", Some(bad)).unwrap_err();
            assert_eq!(e.status, StatusCode::BAD_REQUEST, "{bad}");
            assert!(e.message.starts_with("after: "), "{}", e.message);
        }
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
