//! Errors a connector reports, each saying what the supervisor or dispatcher should do.

use std::time::Duration;

use http::StatusCode;

/// Why a connector's `run` stopped. The supervisor restarts it according to the variant.
#[derive(Debug, thiserror::Error)]
pub enum ConnectorError {
    /// A network hiccup, a server restart, a dropped stream: restart with capped backoff.
    #[error("{0}")]
    Transient(String),
    /// The provider rejected our credentials: reported as `failed`, retried slowly.
    #[error("authentication failed: {0}")]
    Auth(String),
    /// Misconfiguration the connector cannot work around: reported as `failed`, retried
    /// slowly in case the far side changes.
    #[error("{0}")]
    Fatal(String),
}

/// Why a delivery did not succeed, classified so the dispatcher knows whether to retry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryError {
    /// Worth retrying: timeouts, 429, 5xx. `retry_after` is the provider's own hint.
    #[error("{reason}")]
    Transient {
        /// What happened, for logs and the message's `error` once attempts run out.
        reason: String,
        /// The provider's `Retry-After`, honoured instead of our backoff when longer.
        retry_after: Option<Duration>,
    },
    /// Retrying cannot help (4xx other than 408/425/429): the message fails now.
    #[error("{reason}")]
    Permanent {
        /// The provider's error code and text.
        reason: String,
    },
    /// The connection the delivery needs is down; wait for it without spending an attempt.
    #[error("{reason}")]
    Unavailable {
        /// Why it is unavailable.
        reason: String,
    },
    /// The provider's rate limit (a 429, a rate-limit code in its error body such as
    /// Graph's 4, 32 and 613, or a request budget the connector keeps) says
    /// not now: wait `retry_after` (or a short default) without spending an attempt,
    /// since the message itself is fine and retrying sooner only meets the limit again.
    #[error("{reason}")]
    Throttled {
        /// What the provider said.
        reason: String,
        /// How long to wait, from `Retry-After` or the connector's own budget.
        retry_after: Option<Duration>,
    },
}

impl DeliveryError {
    /// A transient failure without a retry hint.
    pub fn transient(reason: impl Into<String>) -> Self {
        DeliveryError::Transient {
            reason: reason.into(),
            retry_after: None,
        }
    }

    /// A permanent failure.
    pub fn permanent(reason: impl Into<String>) -> Self {
        DeliveryError::Permanent {
            reason: reason.into(),
        }
    }

    /// The connection is down.
    pub fn unavailable(reason: impl Into<String>) -> Self {
        DeliveryError::Unavailable {
            reason: reason.into(),
        }
    }

    /// A rate-limit wait that spends no attempt.
    pub fn throttled(reason: impl Into<String>, retry_after: Option<Duration>) -> Self {
        DeliveryError::Throttled {
            reason: reason.into(),
            retry_after,
        }
    }

    /// Classifies an HTTP answer the way every provider spec here does: 408, 425, 429 and
    /// 5xx are worth retrying, other 4xx are not. A 3xx that reaches here (one without a
    /// usable `Location`; the others stop in [`crate::outbound::redirect_policy`]) is a
    /// failed attempt worth retrying: the target's setup is wrong, not the message.
    pub fn from_status(
        status: StatusCode,
        retry_after: Option<Duration>,
        reason: impl Into<String>,
    ) -> Self {
        let reason = reason.into();
        if is_retryable_status(status) || status.is_redirection() {
            DeliveryError::Transient {
                reason,
                retry_after,
            }
        } else {
            DeliveryError::Permanent { reason }
        }
    }

    /// A transport error from reqwest: connection refused, reset, timeout, a refused
    /// redirect. All transient; the text never carries the request's URL (which may hold
    /// credentials), only a redirect's target.
    pub fn from_reqwest(err: &reqwest::Error) -> Self {
        if let Some(r) = crate::outbound::redirected(err) {
            return DeliveryError::transient(r.to_string());
        }
        let what = if err.is_timeout() {
            "timed out"
        } else if err.is_connect() {
            "connection failed"
        } else if err.is_body() || err.is_decode() {
            "reading the response failed"
        } else {
            "request failed"
        };
        DeliveryError::transient(what)
    }

    /// [`DeliveryError::from_reqwest`] for a request sent with `timeout`: a timeout names
    /// it, so a target that always answers too late shows why every attempt failed.
    pub fn from_reqwest_within(err: &reqwest::Error, timeout: Duration) -> Self {
        if err.is_timeout() && crate::outbound::redirected(err).is_none() {
            return DeliveryError::transient(format!(
                "timed out after {}",
                humantime::format_duration(timeout)
            ));
        }
        Self::from_reqwest(err)
    }
}

/// Whether an HTTP status is worth retrying.
pub fn is_retryable_status(status: StatusCode) -> bool {
    status.is_server_error()
        || status == StatusCode::TOO_MANY_REQUESTS
        || status == StatusCode::REQUEST_TIMEOUT
        || status.as_u16() == 425
}

/// Why a provider's webhook request was refused. Nothing is stored for any of these.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HookError {
    /// Bad or missing signature / shared secret (401).
    #[error("{0}")]
    Unauthorized(String),
    /// Not parseable (400).
    #[error("{0}")]
    BadRequest(String),
    /// Parseable but not what the provider documents (422).
    #[error("{0}")]
    Unprocessable(String),
    /// No such hook (404).
    #[error("not found")]
    NotFound,
    /// Method not allowed on this hook (405).
    #[error("method not allowed")]
    MethodNotAllowed,
    /// Storage could not commit; the provider should retry (503).
    #[error("{0}")]
    Unavailable(String),
}

impl HookError {
    /// The HTTP status the provider gets.
    pub fn status(&self) -> StatusCode {
        match self {
            HookError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            HookError::BadRequest(_) => StatusCode::BAD_REQUEST,
            HookError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            HookError::NotFound => StatusCode::NOT_FOUND,
            HookError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            HookError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The snake_case code of the JSON error body.
    pub fn code(&self) -> &'static str {
        match self {
            HookError::Unauthorized(_) => "unauthorized",
            HookError::BadRequest(_) => "malformed",
            HookError::Unprocessable(_) => "invalid",
            HookError::NotFound => "not_found",
            HookError::MethodNotAllowed => "method_not_allowed",
            HookError::Unavailable(_) => "unavailable",
        }
    }
}

/// The host (storage) could not do what a connector asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostError {
    /// Storage is failing (disk full, read-only, shutting down): nothing was committed.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// The request names something that does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// The request is not valid (e.g. a message with neither text nor attachments).
    #[error("{0}")]
    Invalid(String),
    /// The request conflicts with the service's state (e.g. a new conversation on a
    /// service that is being archived).
    #[error("{0}")]
    Conflict(String),
    /// The conversation was handed off to another desk: this desk's late answer is
    /// dropped, never sent to the contact. A desk answers its platform 2xx for it.
    #[error("handed off: {0}")]
    HandedOff(String),
}

impl From<HostError> for HookError {
    fn from(e: HostError) -> Self {
        match e {
            HostError::Unavailable(m) => HookError::Unavailable(m),
            HostError::NotFound(_) => HookError::NotFound,
            HostError::Invalid(m) | HostError::Conflict(m) | HostError::HandedOff(m) => {
                HookError::Unprocessable(m)
            }
        }
    }
}

impl From<HostError> for DeliveryError {
    fn from(e: HostError) -> Self {
        DeliveryError::transient(e.to_string())
    }
}
