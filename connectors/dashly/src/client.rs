//! Every request to Dashly's Web API: `auth_token` and `id_as_string=true` on each (as a
//! query parameter on GET, a form field on POST, as the seed has arguments sent), one
//! budget token taken first, per-request timeouts, and errors read from the `meta`
//! envelope. No error text ever holds a URL: GET URLs carry the key.

use std::sync::Arc;
use std::time::Duration;

use http::{Method, StatusCode};
use switchboard_core::backoff::retry_after;
use switchboard_core::{
    ConnectorError, CredentialWatch, DeliveryError, Gauge, Secret, ServiceContext,
};

use crate::budget::{Budget, Class, PER_MINUTE};
use crate::payload::{self, Conversation, Envelope, Page, Part};

/// Per-request timeout.
const TIMEOUT: Duration = Duration::from_secs(30);
/// Objects per page (the seed's maximum).
pub const COUNT: u32 = 50;
/// Longest reason kept from an error answer.
const MAX_REASON: usize = 300;
/// The longest a reply waits for a token inside one delivery attempt (the dispatcher
/// gives an attempt 120 s); past it the reply is handed back to wait in the outbox.
pub const MAX_REPLY_WAIT: Duration = Duration::from_secs(75);

/// Why a request did not succeed.
#[derive(Debug)]
pub enum ApiError {
    /// No answer: connection refused, reset, timed out.
    Transport {
        /// The classified failure, without the URL.
        error: DeliveryError,
        /// Whether the request may have reached Dashly (anything but a failed connect).
        maybe_arrived: bool,
    },
    /// An error answer.
    Api {
        /// `meta.status`, or the HTTP status when `meta` has none.
        status: StatusCode,
        /// `meta.error`.
        code: Option<String>,
        /// For a 429, the pause the budget took; for a 5xx, `Retry-After`.
        retry_after: Option<Duration>,
        /// `HTTP 400 ValidationError: <meta.error_message>`.
        reason: String,
    },
    /// A success whose body was not the envelope.
    Decode(String),
    /// The key's budget had no token for a reply within [`MAX_REPLY_WAIT`] (or is
    /// paused longer): wait this long and try again.
    Busy(Duration),
    /// The service is stopping.
    Shutdown,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ApiError::Transport { error, .. } => write!(f, "Dashly API: {error}"),
            ApiError::Api { reason, .. } => write!(f, "Dashly API: {reason}"),
            ApiError::Decode(e) => write!(f, "Dashly API: unexpected answer: {e}"),
            ApiError::Busy(_) => write!(
                f,
                "the key's budget of {PER_MINUTE} requests a minute is spent; waiting"
            ),
            ApiError::Shutdown => f.write_str("shutting down"),
        }
    }
}

impl ApiError {
    /// Dashly refuses the key (`NotAuthenticated`, 401).
    pub fn refuses_key(&self) -> bool {
        matches!(self, ApiError::Api { status, code, .. }
            if *status == StatusCode::UNAUTHORIZED || code.as_deref() == Some("NotAuthenticated"))
    }

    /// The rate limit (`TooManyRequests`, 429); the budget has paused already.
    pub fn throttled(&self) -> bool {
        matches!(self, ApiError::Api { status, code, .. }
            if *status == StatusCode::TOO_MANY_REQUESTS || code.as_deref() == Some("TooManyRequests"))
    }

    /// How the dispatcher treats a failed reply: a refused key breaks the service, not
    /// the message (`credentials` is told, the reply waits); a 429 waits without
    /// spending an attempt; 5xx and transport failures are retried; `ValidationError`,
    /// `LookupError` and the other 4xx fail the message with Dashly's text.
    pub fn into_delivery(self, credentials: &CredentialWatch) -> DeliveryError {
        if self.refuses_key() {
            return credentials.refused(self.to_string(), None);
        }
        if self.throttled() {
            let wait = match &self {
                ApiError::Api { retry_after, .. } => *retry_after,
                _ => None,
            };
            return DeliveryError::throttled(self.to_string(), wait);
        }
        if let ApiError::Busy(wait) = self {
            return DeliveryError::throttled(self.to_string(), Some(wait));
        }
        match self {
            ApiError::Transport { error, .. } => error,
            ApiError::Api {
                status,
                retry_after,
                ref reason,
                ..
            } => DeliveryError::from_status(status, retry_after, format!("Dashly API: {reason}")),
            e @ (ApiError::Decode(_) | ApiError::Busy(_) | ApiError::Shutdown) => {
                DeliveryError::transient(e.to_string())
            }
        }
    }

    /// How the supervisor treats a failed poll: a refused key is `failed`; other 4xx
    /// (a wrong `app_id`, no access) need an operator; the rest passes.
    pub fn into_connector(self) -> ConnectorError {
        match &self {
            e if e.refuses_key() => ConnectorError::Auth(self.to_string()),
            ApiError::Api { status, .. }
                if status.is_client_error()
                    && !switchboard_core::error::is_retryable_status(*status) =>
            {
                ConnectorError::Fatal(self.to_string())
            }
            _ => ConnectorError::Transient(self.to_string()),
        }
    }

    /// Whether Dashly may have carried the request out although we saw no success.
    pub fn outcome_unknown(&self) -> bool {
        match self {
            ApiError::Transport { maybe_arrived, .. } => *maybe_arrived,
            ApiError::Api { status, .. } => status.is_server_error(),
            _ => false,
        }
    }
}

/// A client for one app, sharing its key's budget.
#[derive(Debug)]
pub struct Client {
    base: url::Url,
    app_id: String,
    token: Secret,
    budget: Arc<Budget>,
}

impl Client {
    /// A client for `base` (validated as an http(s) URL by the params).
    pub fn new(base: &str, app_id: &str, token: Secret) -> Result<Self, String> {
        let url = url::Url::parse(base).map_err(|e| format!("api_base: {e}"))?;
        if url.cannot_be_a_base() {
            return Err("api_base: not a base URL".into());
        }
        let budget = Budget::for_key(base, token.expose());
        Ok(Client {
            base: url,
            app_id: app_id.to_owned(),
            token,
            budget,
        })
    }

    /// The key's budget.
    pub fn budget(&self) -> &Budget {
        &self.budget
    }

    /// Shows the budget in `/metrics`.
    pub fn report_budget(&self, ctx: &ServiceContext) {
        ctx.set_gauge(
            Gauge::ProviderBudgetRemaining,
            self.budget.remaining() as i64,
        );
    }

    fn url(&self, segments: &[&str]) -> url::Url {
        let mut u = self.base.clone();
        if let Ok(mut path) = u.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        u
    }

    /// `GET /apps/{id}/conversations`, oldest change first, after the cursor.
    pub async fn conversations(
        &self,
        ctx: &ServiceContext,
        after: Option<&str>,
    ) -> Result<Page<Conversation>, ApiError> {
        let url = self.url(&["apps", &self.app_id, "conversations"]);
        let env = self
            .send(ctx, Class::Poll, Method::GET, url, page_args(after))
            .await?;
        payload::page(env).map_err(ApiError::Decode)
    }

    /// `GET /conversations/{id}/parts`, after the cursor.
    pub async fn parts(
        &self,
        ctx: &ServiceContext,
        conversation: &str,
        after: Option<&str>,
    ) -> Result<Page<Part>, ApiError> {
        let url = self.url(&["conversations", conversation, "parts"]);
        let env = self
            .send(ctx, Class::Poll, Method::GET, url, page_args(after))
            .await?;
        payload::page(env).map_err(ApiError::Decode)
    }

    /// `POST /conversations/{id}/reply` as `admin`; the new part's id if the answer
    /// names it.
    pub async fn reply(
        &self,
        ctx: &ServiceContext,
        conversation: &str,
        admin: &str,
        body: &str,
    ) -> Result<Option<String>, ApiError> {
        let url = self.url(&["conversations", conversation, "reply"]);
        let args = vec![("body", body.to_owned()), ("from_admin", admin.to_owned())];
        let env = self
            .send(ctx, Class::Reply, Method::POST, url, args)
            .await?;
        Ok(payload::cursor_text(&env.data["id"]))
    }

    /// `POST /conversations/{id}/markread`.
    pub async fn markread(&self, ctx: &ServiceContext, conversation: &str) -> Result<(), ApiError> {
        let url = self.url(&["conversations", conversation, "markread"]);
        self.send(ctx, Class::Poll, Method::POST, url, Vec::new())
            .await
            .map(drop)
    }

    async fn send(
        &self,
        ctx: &ServiceContext,
        class: Class,
        method: Method,
        url: url::Url,
        mut args: Vec<(&'static str, String)>,
    ) -> Result<Envelope, ApiError> {
        let take = self.budget.acquire(class, &ctx.shutdown);
        if class == Class::Reply {
            if let Some(p) = self.budget.paused_for().filter(|p| *p > MAX_REPLY_WAIT) {
                return Err(ApiError::Busy(p));
            }
            match tokio::time::timeout(MAX_REPLY_WAIT, take).await {
                Ok(r) => r.map_err(|_| ApiError::Shutdown)?,
                Err(_) => return Err(ApiError::Busy(Duration::from_secs(1))),
            }
        } else {
            take.await.map_err(|_| ApiError::Shutdown)?;
        }
        self.report_budget(ctx);
        args.push(("auth_token", self.token.expose().to_owned()));
        args.push(("id_as_string", "true".to_owned()));
        let req = ctx
            .http
            .request(method.clone(), url)
            .timeout(TIMEOUT)
            .header("accept", "application/json");
        let req = if method == Method::GET {
            req.query(&args)
        } else {
            req.form(&args)
        };
        let resp = req.send().await.map_err(|e| ApiError::Transport {
            error: DeliveryError::from_reqwest(&e),
            maybe_arrived: !e.is_connect(),
        })?;
        let http_status = resp.status();
        let hint = retry_after(resp.headers());
        let bytes = resp.bytes().await.map_err(|e| ApiError::Transport {
            error: DeliveryError::from_reqwest(&e),
            maybe_arrived: true,
        })?;
        let env = serde_json::from_slice::<Envelope>(&bytes);
        let status = effective_status(http_status, env.as_ref().ok().and_then(|e| e.meta.status));
        if status.is_success() {
            return env.map_err(|e| ApiError::Decode(e.to_string()));
        }
        let meta = env.map(|e| e.meta).unwrap_or_default();
        let code = meta.error.filter(|c| !c.trim().is_empty());
        let mut err = ApiError::Api {
            status,
            reason: reason(status, code.as_deref(), meta.error_message.as_deref()),
            code,
            retry_after: hint.filter(|_| status.is_server_error()),
        };
        if err.throttled() {
            let pause = self.budget.pause(hint);
            tracing::warn!(pause = ?pause, "Dashly answered TooManyRequests; every request of this key waits");
            if let ApiError::Api { retry_after, .. } = &mut err {
                *retry_after = Some(pause);
            }
            self.report_budget(ctx);
        }
        Err(err)
    }
}

fn page_args(after: Option<&str>) -> Vec<(&'static str, String)> {
    let mut args = vec![("count", COUNT.to_string())];
    if let Some(a) = after {
        args.push(("after", a.to_owned()));
    }
    args
}

/// `meta.status` says what happened when the HTTP status is a success it contradicts
/// (the seed: it duplicates the HTTP code; trust the error when either reports one).
pub fn effective_status(http: StatusCode, meta: Option<u16>) -> StatusCode {
    match meta.and_then(|m| StatusCode::from_u16(m).ok()) {
        Some(m) if http.is_success() && !m.is_success() => m,
        _ => http,
    }
}

/// `HTTP 400 ValidationError: <message>`, cut to [`MAX_REASON`] bytes.
pub fn reason(status: StatusCode, code: Option<&str>, message: Option<&str>) -> String {
    let mut r = format!("HTTP {}", status.as_u16());
    if let Some(c) = code {
        r.push(' ');
        r.push_str(c.trim());
    }
    if let Some(m) = message.map(str::trim).filter(|m| !m.is_empty()) {
        r.push_str(": ");
        r.push_str(m);
    }
    if r.len() > MAX_REASON {
        let mut cut = MAX_REASON;
        while !r.is_char_boundary(cut) {
            cut -= 1;
        }
        r.truncate(cut);
        r.push('…');
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(status: u16, code: &str) -> ApiError {
        let status = StatusCode::from_u16(status).unwrap();
        ApiError::Api {
            status,
            code: Some(code.into()),
            retry_after: Some(Duration::from_secs(3)),
            reason: reason(status, Some(code), Some("the words")),
        }
    }

    #[test]
    fn meta_errors_map_to_what_the_dispatcher_does() {
        let watch = CredentialWatch::default();
        assert!(matches!(
            api(401, "NotAuthenticated").into_delivery(&watch),
            DeliveryError::Transient { .. }
        ));
        assert!(matches!(
            api(429, "TooManyRequests").into_delivery(&watch),
            DeliveryError::Throttled { retry_after: Some(d), .. } if d == Duration::from_secs(3)
        ));
        for (s, c) in [
            (400, "ValidationError"),
            (400, "LookupError"),
            (403, "PermissionDeniedError"),
        ] {
            match api(s, c).into_delivery(&watch) {
                DeliveryError::Permanent { reason } => {
                    assert_eq!(reason, format!("Dashly API: HTTP {s} {c}: the words"))
                }
                other => panic!("{c}: {other:?}"),
            }
        }
        assert!(matches!(
            api(500, "Error500").into_delivery(&watch),
            DeliveryError::Transient { .. }
        ));
        assert!(matches!(
            api(401, "NotAuthenticated").into_connector(),
            ConnectorError::Auth(_)
        ));
        assert!(matches!(
            api(404, "Error404").into_connector(),
            ConnectorError::Fatal(_)
        ));
        assert!(matches!(
            api(502, "x").into_connector(),
            ConnectorError::Transient(_)
        ));
    }

    #[test]
    fn an_error_in_meta_wins_over_a_200() {
        assert_eq!(
            effective_status(StatusCode::OK, Some(429)),
            StatusCode::TOO_MANY_REQUESTS
        );
        assert_eq!(effective_status(StatusCode::OK, Some(200)), StatusCode::OK);
        assert_eq!(
            effective_status(StatusCode::BAD_GATEWAY, None),
            StatusCode::BAD_GATEWAY
        );
        assert_eq!(
            effective_status(StatusCode::BAD_REQUEST, Some(200)),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(effective_status(StatusCode::OK, Some(1000)), StatusCode::OK);
        let long = "é".repeat(400);
        assert!(reason(StatusCode::BAD_REQUEST, Some("X"), Some(&long)).len() < MAX_REASON + 4);
    }
}
