//! Bearer-token authentication for `/v1`: the `Authorization: Bearer` header (or an
//! `access_token` query parameter, for websocket clients that cannot set headers).
//!
//! A token lives as long as its api service (README, "API tokens"): `active` and
//! `pendingArchive` services' tokens work with their scopes; an `archived` service's
//! tokens may only read (anything else is 409 `service_archived`); `queued` and `disabled` services' tokens, and those of a
//! service outside its `start_date`/`end_date` window, are refused.

use axum::http::HeaderMap;
use switchboard_core::Scope;

use super::error::ApiError;
use crate::app::{App, TokenInfo};

/// The caller's token.
#[derive(Debug, Clone)]
pub struct Caller(pub TokenInfo, Access);

/// What the token's service lifecycle leaves of its scopes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Every granted scope.
    Full,
    /// `read` only: the service is archived.
    ReadOnly,
}

impl Caller {
    /// Authenticates from headers, or from `query_token` when given.
    pub fn authenticate(
        app: &App,
        headers: &HeaderMap,
        query_token: Option<&str>,
    ) -> Result<Caller, ApiError> {
        let presented = match headers.get(axum::http::header::AUTHORIZATION) {
            Some(v) => {
                let v = v
                    .to_str()
                    .map_err(|_| ApiError::unauthorized("malformed Authorization header"))?;
                let (scheme, token) = v.split_once(' ').ok_or_else(|| {
                    ApiError::unauthorized("expected \"Authorization: Bearer <token>\"")
                })?;
                if !scheme.eq_ignore_ascii_case("bearer") {
                    return Err(ApiError::unauthorized(
                        "expected \"Authorization: Bearer <token>\"",
                    ));
                }
                token.trim().to_owned()
            }
            None => match query_token {
                Some(t) => t.to_owned(),
                None => return Err(ApiError::unauthorized("missing bearer token")),
            },
        };
        let tokens = app.tokens();
        let info = tokens
            .lookup(&presented)
            .ok_or_else(|| ApiError::unauthorized("unknown token"))?;
        let access = lifecycle(app, &info.service_id)?;
        Ok(Caller(info.clone(), access))
    }

    /// Authenticates from the headers and requires `scope`.
    pub fn with_scope(app: &App, headers: &HeaderMap, scope: Scope) -> Result<Caller, ApiError> {
        let caller = Self::authenticate(app, headers, None)?;
        caller.require(scope)?;
        Ok(caller)
    }

    /// Requires a scope.
    pub fn require(&self, scope: Scope) -> Result<(), ApiError> {
        if self.1 == Access::ReadOnly && scope != Scope::Read {
            // The same answer as a reply into an archived service's conversation.
            return Err(ApiError::new(
                axum::http::StatusCode::CONFLICT,
                "service_archived",
                format!(
                    "service {} is archived: its tokens may only read",
                    self.0.service_id
                ),
            ));
        }
        if self.0.scopes.contains(&scope) {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "this token lacks the {:?} scope",
                scope.as_str()
            )))
        }
    }

    /// The caller's organization.
    pub fn organization(&self) -> &str {
        &self.0.organization
    }
}

/// What the lifecycle of the token's service `id` allows, by its status in force (the
/// supervisor's, which turns an active service outside its window into `disabled`) and,
/// to the instant, its date window.
fn lifecycle(app: &App, id: &str) -> Result<Access, ApiError> {
    let refused = |why: String| {
        Err(ApiError::unauthorized(format!(
            "this token's service {why}"
        )))
    };
    let config = app.config();
    let Some(svc) = config.services.get(id) else {
        return refused(format!("{id} is not configured"));
    };
    let now = app.clock.now();
    if svc.start_date.is_some_and(|s| now < s) {
        return refused(format!("{id} has not started (start_date)"));
    }
    if svc.end_date.is_some_and(|e| now >= e) {
        return refused(format!("{id} has ended (end_date)"));
    }
    match app.status_of(id).as_deref() {
        Some("active" | "pendingArchive") => Ok(Access::Full),
        Some("archived") => Ok(Access::ReadOnly),
        Some(other) => refused(format!("{id} is {other}")),
        None => refused(format!("{id} is not configured")),
    }
}
