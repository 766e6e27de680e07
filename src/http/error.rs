//! The one error type every handler returns: the contract's JSON error body with a
//! fitting status. Internal detail goes to the log, never to the client.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use switchboard_core::{HookError, HostError};

use crate::store::StoreError;

/// An error answered to an HTTP client.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// Status.
    pub status: StatusCode,
    /// snake_case code.
    pub code: &'static str,
    /// Human-readable message.
    pub message: String,
}

impl ApiError {
    /// Any status and code.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    /// 400.
    pub fn malformed(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "malformed", message)
    }

    /// 422.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", message)
    }

    /// 401.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    /// 403.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    /// 404.
    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} not found"),
        )
    }

    /// 503.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Json(json!({"error": {"code": self.code, "message": self.message}}));
        let mut resp = (self.status, body).into_response();
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            resp.headers_mut()
                .insert("retry-after", axum::http::HeaderValue::from_static("5"));
        }
        resp
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(m) => {
                tracing::warn!(error = %m, "storage unavailable");
                ApiError::unavailable("storage is unavailable; nothing was stored, retry later")
            }
            StoreError::NotFound(what) => ApiError::not_found(&what),
            StoreError::Conflict(m) | StoreError::HandedOff(m) => {
                ApiError::new(StatusCode::CONFLICT, "conflict", m)
            }
            StoreError::Internal(m) => {
                tracing::error!(error = %m, "storage error");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "internal error",
                )
            }
        }
    }
}

impl From<HostError> for ApiError {
    fn from(e: HostError) -> Self {
        match e {
            HostError::Unavailable(m) => {
                tracing::warn!(error = %m, "storage unavailable");
                ApiError::unavailable("storage is unavailable; nothing was stored, retry later")
            }
            HostError::NotFound(what) => ApiError::not_found(&what),
            HostError::Invalid(m) => ApiError::invalid(m),
            HostError::Conflict(m) | HostError::HandedOff(m) => {
                ApiError::new(StatusCode::CONFLICT, "conflict", m)
            }
        }
    }
}

impl From<HookError> for ApiError {
    fn from(e: HookError) -> Self {
        let message = match &e {
            HookError::Unavailable(m) => {
                tracing::warn!(error = %m, "storage unavailable");
                "storage is unavailable; nothing was stored, retry later".to_owned()
            }
            other => other.to_string(),
        };
        ApiError::new(e.status(), e.code(), message)
    }
}
