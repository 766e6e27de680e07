//! The Intercom REST API as this connector uses it: bearer auth, the version pinned with
//! `Intercom-Version` (so a workspace's default version cannot change the shapes under
//! us), per-request timeouts, `error.list` bodies turned into reasons, and rate limits
//! respected for every caller at once (Intercom counts per workspace in 10 s windows).

use std::sync::Mutex;
use std::time::Duration;

use http::{HeaderMap, Method, StatusCode};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use switchboard_core::backoff::retry_after;
use switchboard_core::{
    ConnectorError, CredentialWatch, DeliveryError, Secret, ServiceContext, refuses_credentials,
};
use tokio::time::Instant;

use crate::payload::Conversation;

/// The API version every request asks for.
pub const API_VERSION: &str = "2.14";
/// Per-request timeout.
const TIMEOUT: Duration = Duration::from_secs(30);
/// Intercom's rate-limit window: the wait after a 429 that names no reset time.
const WINDOW: Duration = Duration::from_secs(10);
/// The longest pause taken on a rate-limit hint; a far-off reset time is a hint gone
/// wrong (clock skew), not a reason to stall the service.
const MAX_PAUSE: Duration = Duration::from_secs(60);
/// Results per search page (the spec's maximum).
pub const PER_PAGE: u32 = 150;

/// Why an API call did not succeed.
#[derive(Debug)]
pub enum ApiError {
    /// No answer: connection refused, reset, timed out. The text never holds the URL.
    Transport {
        /// The classified failure.
        error: DeliveryError,
        /// Whether the request may have reached Intercom (anything but a failed connect).
        maybe_arrived: bool,
    },
    /// An HTTP error answer.
    Status {
        /// The status.
        status: StatusCode,
        /// When to try again, from `Retry-After` or `X-RateLimit-Reset`.
        retry_after: Option<Duration>,
        /// `HTTP 404 not_found: Resource Not Found`, from the `error.list` body.
        reason: String,
    },
    /// A 2xx answer whose body was not what the spec documents.
    Decode(String),
    /// The service is stopping.
    Shutdown,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ApiError::Transport { error, .. } => write!(f, "Intercom API: {error}"),
            ApiError::Status { reason, .. } => write!(f, "Intercom API: {reason}"),
            ApiError::Decode(e) => write!(f, "Intercom API: unexpected answer: {e}"),
            ApiError::Shutdown => f.write_str("shutting down"),
        }
    }
}

impl ApiError {
    /// How the dispatcher should treat a failed send. A refused token or a plan without
    /// API access (401, 403) breaks the service, not the message: `credentials` is told,
    /// and the reply waits (transient) until it is fixed.
    pub fn into_delivery(self, credentials: &CredentialWatch) -> DeliveryError {
        match self {
            ApiError::Transport { error, .. } => error,
            ApiError::Status {
                status,
                retry_after,
                reason,
            } if refuses_credentials(status) => {
                credentials.refused(format!("Intercom API: {reason}"), retry_after)
            }
            ApiError::Status {
                status,
                retry_after,
                reason,
            } => DeliveryError::from_status(status, retry_after, reason),
            e @ (ApiError::Decode(_) | ApiError::Shutdown) => {
                DeliveryError::transient(e.to_string())
            }
        }
    }

    /// How the supervisor should treat a failed poll: 401 is bad credentials, other 4xx
    /// (403 plan or permission, 400 query) need an operator, the rest passes.
    pub fn into_connector(self) -> ConnectorError {
        match &self {
            ApiError::Status { status, .. } if *status == StatusCode::UNAUTHORIZED => {
                ConnectorError::Auth(self.to_string())
            }
            ApiError::Status { status, .. }
                if status.is_client_error()
                    && !switchboard_core::error::is_retryable_status(*status) =>
            {
                ConnectorError::Fatal(self.to_string())
            }
            _ => ConnectorError::Transient(self.to_string()),
        }
    }

    /// Whether Intercom may have acted on the request although we saw no success: the
    /// answer was lost, or a 5xx came from something in front of Intercom.
    pub fn outcome_unknown(&self) -> bool {
        match self {
            ApiError::Transport { maybe_arrived, .. } => *maybe_arrived,
            ApiError::Status { status, .. } => status.is_server_error(),
            _ => false,
        }
    }

    fn transport(e: &reqwest::Error) -> ApiError {
        ApiError::Transport {
            error: DeliveryError::from_reqwest(e),
            maybe_arrived: !e.is_connect(),
        }
    }

    /// Whether this is a 429, and the pause it asks for.
    pub fn throttled(&self) -> Option<Duration> {
        match self {
            ApiError::Status {
                status,
                retry_after,
                ..
            } if *status == StatusCode::TOO_MANY_REQUESTS => Some(retry_after.unwrap_or(WINDOW)),
            _ => None,
        }
    }
}

/// One page of `POST /conversations/search`.
#[derive(Debug, Deserialize)]
pub struct SearchPage {
    /// The conversations (without parts).
    #[serde(default)]
    pub conversations: Vec<Conversation>,
    /// Paging; `next.starting_after` when there is more.
    #[serde(default)]
    pub pages: Option<Pages>,
}

/// `pages` of a list answer.
#[derive(Debug, Deserialize)]
pub struct Pages {
    /// The next page's cursor.
    #[serde(default)]
    pub next: Option<NextPage>,
}

/// `pages.next`.
#[derive(Debug, Deserialize)]
pub struct NextPage {
    /// Pass as `pagination.starting_after`.
    #[serde(default)]
    pub starting_after: Option<String>,
}

impl SearchPage {
    /// The cursor of the next page, if there is one.
    pub fn next_cursor(&self) -> Option<&str> {
        self.pages
            .as_ref()?
            .next
            .as_ref()?
            .starting_after
            .as_deref()
            .filter(|s| !s.is_empty())
    }
}

/// A client for one workspace.
#[derive(Debug)]
pub struct Client {
    base: url::Url,
    token: Secret,
    /// No request leaves before this instant (a rate-limit pause shared by the poller
    /// and every delivery).
    not_before: Mutex<Option<Instant>>,
}

impl Client {
    /// A client for `base` (validated as an http(s) URL by the params).
    pub fn new(base: &str, token: Secret) -> Result<Self, String> {
        let base = url::Url::parse(base).map_err(|e| format!("api_base: {e}"))?;
        if base.cannot_be_a_base() {
            return Err("api_base: not a base URL".into());
        }
        Ok(Client {
            base,
            token,
            not_before: Mutex::new(None),
        })
    }

    /// `{base}/seg/seg…`, each segment percent-encoded (ids come from payloads).
    fn url(&self, segments: &[&str]) -> url::Url {
        let mut u = self.base.clone();
        if let Ok(mut path) = u.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        u
    }

    /// `POST /conversations/{id}/reply`; the answer is the whole conversation.
    pub async fn reply(
        &self,
        ctx: &ServiceContext,
        conversation_id: &str,
        body: &serde_json::Value,
    ) -> Result<serde_json::Value, ApiError> {
        let url = self.url(&["conversations", conversation_id, "reply"]);
        self.send(ctx, Method::POST, url, Some(body)).await
    }

    /// `GET /conversations/{id}`: the conversation with (up to 500 of) its parts.
    pub async fn conversation(
        &self,
        ctx: &ServiceContext,
        id: &str,
    ) -> Result<Conversation, ApiError> {
        let url = self.url(&["conversations", id]);
        self.send(ctx, Method::GET, url, None).await
    }

    /// `POST /conversations/search` for conversations with `updated_at > since`.
    pub async fn search_updated_since(
        &self,
        ctx: &ServiceContext,
        since: i64,
        starting_after: Option<&str>,
    ) -> Result<SearchPage, ApiError> {
        let mut pagination = serde_json::json!({ "per_page": PER_PAGE });
        if let Some(cursor) = starting_after {
            pagination["starting_after"] = cursor.into();
        }
        let body = serde_json::json!({
            "query": {"field": "updated_at", "operator": ">", "value": since},
            "pagination": pagination,
        });
        let url = self.url(&["conversations", "search"]);
        self.send(ctx, Method::POST, url, Some(&body)).await
    }

    async fn send<T: DeserializeOwned>(
        &self,
        ctx: &ServiceContext,
        method: Method,
        url: url::Url,
        body: Option<&serde_json::Value>,
    ) -> Result<T, ApiError> {
        self.pause(ctx).await?;
        let mut req = ctx
            .http
            .request(method, url)
            .timeout(TIMEOUT)
            .bearer_auth(self.token.expose())
            .header("Intercom-Version", API_VERSION)
            .header("accept", "application/json");
        if let Some(b) = body {
            req = req
                .header("content-type", "application/json")
                .body(b.to_string());
        }
        let resp = req.send().await.map_err(|e| ApiError::transport(&e))?;
        let status = resp.status();
        let wait = rate_limit_wait(resp.headers(), status, ctx.clock.now().as_second());
        if let Some(w) = wait {
            let until = Instant::now() + w.min(MAX_PAUSE);
            let mut nb = self.not_before.lock().expect("rate gate");
            if nb.is_none_or(|t| t < until) {
                *nb = Some(until);
            }
            tracing::debug!(pause = ?w, status = status.as_u16(), "Intercom rate limit reached; pausing requests");
        }
        let bytes = resp.bytes().await.map_err(|e| ApiError::transport(&e))?;
        if !status.is_success() {
            return Err(ApiError::Status {
                status,
                retry_after: wait.filter(|_| {
                    status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error()
                }),
                reason: error_reason(status, &bytes),
            });
        }
        serde_json::from_slice(&bytes).map_err(|e| ApiError::Decode(e.to_string()))
    }

    /// Waits out a rate-limit pause, unless the service stops first.
    async fn pause(&self, ctx: &ServiceContext) -> Result<(), ApiError> {
        let until = *self.not_before.lock().expect("rate gate");
        if let Some(t) = until.filter(|t| *t > Instant::now()) {
            tokio::select! {
                _ = tokio::time::sleep_until(t) => {}
                _ = ctx.shutdown.cancelled() => return Err(ApiError::Shutdown),
            }
        }
        Ok(())
    }
}

/// How long to hold requests after this answer: `Retry-After` if given; else, on a 429
/// or with `X-RateLimit-Remaining: 0`, until `X-RateLimit-Reset` (unix seconds), or
/// one window when that is missing.
pub fn rate_limit_wait(headers: &HeaderMap, status: StatusCode, now_unix: i64) -> Option<Duration> {
    if let Some(d) = retry_after(headers) {
        return Some(d);
    }
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<i64>().ok())
    };
    let exhausted = header("x-ratelimit-remaining").is_some_and(|r| r <= 0);
    if status != StatusCode::TOO_MANY_REQUESTS && !exhausted {
        return None;
    }
    Some(match header("x-ratelimit-reset") {
        // The reset second itself may still be in the old window: wait past it.
        Some(reset) => Duration::from_secs((reset - now_unix).clamp(0, i64::MAX) as u64 + 1),
        None => WINDOW,
    })
}

/// `HTTP 404 not_found: Resource Not Found; …` from an `error.list`, or the bare
/// status when the body is something else (never echoed: it may be an HTML page).
pub fn error_reason(status: StatusCode, body: &[u8]) -> String {
    #[derive(Deserialize)]
    struct ErrorList {
        #[serde(default)]
        errors: Vec<ErrorItem>,
    }
    #[derive(Deserialize)]
    struct ErrorItem {
        #[serde(default)]
        code: Option<String>,
        #[serde(default)]
        message: Option<String>,
    }
    let mut reason = format!("HTTP {}", status.as_u16());
    if let Ok(list) = serde_json::from_slice::<ErrorList>(body) {
        let parts: Vec<String> = list
            .errors
            .iter()
            .map(|e| match (&e.code, &e.message) {
                (Some(c), Some(m)) => format!("{c}: {m}"),
                (Some(c), None) => c.clone(),
                (None, Some(m)) => m.clone(),
                (None, None) => String::new(),
            })
            .filter(|s| !s.is_empty())
            .collect();
        if !parts.is_empty() {
            reason.push(' ');
            reason.push_str(&parts.join("; "));
        }
    }
    if reason.len() > 300 {
        let mut cut = 300;
        while !reason.is_char_boundary(cut) {
            cut -= 1;
        }
        reason.truncate(cut);
        reason.push('…');
    }
    reason
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn rate_limit_hints() {
        let now = 1_700_000_000;
        let ok = StatusCode::OK;
        let tmr = StatusCode::TOO_MANY_REQUESTS;
        assert_eq!(rate_limit_wait(&headers(&[]), ok, now), None);
        let plenty = headers(&[
            ("x-ratelimit-remaining", "99"),
            ("x-ratelimit-reset", "1700000005"),
        ]);
        assert_eq!(rate_limit_wait(&plenty, ok, now), None);
        let spent = headers(&[
            ("x-ratelimit-remaining", "0"),
            ("x-ratelimit-reset", "1700000005"),
        ]);
        assert_eq!(
            rate_limit_wait(&spent, ok, now),
            Some(Duration::from_secs(6))
        );
        let reset = headers(&[("x-ratelimit-reset", "1700000002")]);
        assert_eq!(
            rate_limit_wait(&reset, tmr, now),
            Some(Duration::from_secs(3))
        );
        assert_eq!(rate_limit_wait(&headers(&[]), tmr, now), Some(WINDOW));
        let both = headers(&[("retry-after", "7"), ("x-ratelimit-reset", "1700000002")]);
        assert_eq!(
            rate_limit_wait(&both, tmr, now),
            Some(Duration::from_secs(7))
        );
        let past = headers(&[("x-ratelimit-reset", "1600000000")]);
        assert_eq!(
            rate_limit_wait(&past, tmr, now),
            Some(Duration::from_secs(1))
        );
    }

    #[test]
    fn error_list_becomes_the_reason() {
        let body = br#"{"type":"error.list","request_id":"x","errors":[{"code":"not_found","message":"Resource Not Found"},{"code":"parameter_invalid"}]}"#;
        assert_eq!(
            error_reason(StatusCode::NOT_FOUND, body),
            "HTTP 404 not_found: Resource Not Found; parameter_invalid"
        );
        assert_eq!(
            error_reason(StatusCode::BAD_GATEWAY, b"<html>secret page</html>"),
            "HTTP 502"
        );
        let long = format!(
            r#"{{"errors":[{{"code":"x","message":"{}"}}]}}"#,
            "é".repeat(400)
        );
        assert!(
            error_reason(StatusCode::BAD_REQUEST, long.as_bytes())
                .chars()
                .count()
                < 310
        );
    }

    #[test]
    fn classification() {
        let status = |s: u16| ApiError::Status {
            status: StatusCode::from_u16(s).unwrap(),
            retry_after: None,
            reason: format!("HTTP {s}"),
        };
        assert!(matches!(
            status(401).into_connector(),
            ConnectorError::Auth(_)
        ));
        assert!(matches!(
            status(403).into_connector(),
            ConnectorError::Fatal(_)
        ));
        assert!(matches!(
            status(429).into_connector(),
            ConnectorError::Transient(_)
        ));
        assert!(matches!(
            status(503).into_connector(),
            ConnectorError::Transient(_)
        ));
        assert!(matches!(
            status(404).into_delivery(&CredentialWatch::default()),
            DeliveryError::Permanent { .. }
        ));
        assert!(matches!(
            status(429).into_delivery(&CredentialWatch::default()),
            DeliveryError::Transient { .. }
        ));
    }

    #[test]
    fn urls_escape_ids_and_keep_a_base_path() {
        let c = Client::new("http://127.0.0.1:9/proxy/", Secret::new("t")).unwrap();
        assert_eq!(
            c.url(&["conversations", "1/2?x", "reply"]).as_str(),
            "http://127.0.0.1:9/proxy/conversations/1%2F2%3Fx/reply"
        );
        let c = Client::new("https://api.intercom.io", Secret::new("t")).unwrap();
        assert_eq!(
            c.url(&["conversations", "search"]).as_str(),
            "https://api.intercom.io/conversations/search"
        );
    }
}
