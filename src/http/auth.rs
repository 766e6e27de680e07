//! Bearer-token authentication for `/v1`: the `Authorization: Bearer` header (or an
//! `access_token` query parameter, for websocket clients that cannot set headers).

use axum::http::HeaderMap;
use switchboard_core::Scope;

use super::error::ApiError;
use crate::app::{App, TokenInfo};

/// The caller's token.
#[derive(Debug, Clone)]
pub struct Caller(pub TokenInfo);

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
        Ok(Caller(info.clone()))
    }

    /// Authenticates from the headers and requires `scope`.
    pub fn with_scope(app: &App, headers: &HeaderMap, scope: Scope) -> Result<Caller, ApiError> {
        let caller = Self::authenticate(app, headers, None)?;
        caller.require(scope)?;
        Ok(caller)
    }

    /// Requires a scope.
    pub fn require(&self, scope: Scope) -> Result<(), ApiError> {
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
