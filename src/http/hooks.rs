//! `/hooks/{service_id}[/…]`: provider webhooks, handed to the service's connector. The
//! shared part (lookup, body limit, errors) lives here; connectors only verify and parse.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, Uri};
use axum::response::{IntoResponse, Response};
use switchboard_core::{HookError, HookRequest};

use super::body;
use super::error::ApiError;
use super::schema::answers::{Invalid, Malformed, NotFound, TooLarge, Unauthorized, Unavailable};
use crate::app::App;

/// `/hooks/{service_id}`. Other methods than POST get 405 with `Allow: POST`.
#[utoipa::path(post, path = "/hooks/{service_id}", tag = "hooks",
    params(("service_id" = String, Path, description = "The service the provider calls")),
    request_body(description = "The provider's own request", content((std::collections::HashMap<String, String> = "application/x-www-form-urlencoded"), (std::collections::HashMap<String, String> = "application/json"))),
    responses(
        (status = 200, description = "Accepted (after the commit); the body is what the provider expects", content(("application/json"), ("text/plain"), ("text/xml"))),
        (status = 400, response = Malformed),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 413, response = TooLarge),
        (status = 422, response = Invalid),
        (status = 503, response = Unavailable),
    ))]
pub async fn root(
    State(app): State<Arc<App>>,
    Path(service_id): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    handle(app, service_id, String::new(), method, uri, headers, body).await
}

/// `/hooks/{service_id}/{*rest}`.
#[utoipa::path(post, path = "/hooks/{service_id}/{rest}", tag = "hooks",
    params(
        ("service_id" = String, Path, description = "The service the provider calls"),
        ("rest" = String, Path, description = "A sub-path the provider needs (`status`, a path token, …)"),
    ),
    request_body(description = "The provider's own request", content((std::collections::HashMap<String, String> = "application/x-www-form-urlencoded"), (std::collections::HashMap<String, String> = "application/json"))),
    responses(
        (status = 200, description = "Accepted (after the commit); the body is what the provider expects", content(("application/json"), ("text/plain"), ("text/xml"))),
        (status = 400, response = Malformed),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 413, response = TooLarge),
        (status = 422, response = Invalid),
        (status = 503, response = Unavailable),
    ))]
pub async fn sub(
    State(app): State<Arc<App>>,
    Path((service_id, rest)): Path<(String, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    handle(app, service_id, rest, method, uri, headers, body).await
}

async fn handle(
    app: Arc<App>,
    service_id: String,
    subpath: String,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let svc = app
        .service(&service_id)
        .filter(|s| s.accepts_hooks())
        .ok_or_else(|| ApiError::not_found("service"))?;
    let bytes = body::read(&headers, body, app.config().server.max_body).await?;
    let req = HookRequest {
        method,
        subpath: subpath.trim_matches('/').to_owned(),
        path_and_query: uri
            .path_and_query()
            .map(|p| p.as_str().to_owned())
            .unwrap_or_default(),
        query: uri.query().map(str::to_owned),
        headers,
        body: bytes,
    };
    let resp = match svc.connector.handle_webhook(&svc.ctx, req).await {
        Ok(resp) => resp,
        // Every provider calls its hook with POST; RFC 9110 wants a 405 to say so.
        Err(HookError::MethodNotAllowed) => {
            let mut refused = ApiError::from(HookError::MethodNotAllowed).into_response();
            refused.headers_mut().insert(
                axum::http::header::ALLOW,
                axum::http::HeaderValue::from_static("POST"),
            );
            return Ok(refused);
        }
        Err(e) => return Err(e.into()),
    };
    Ok((
        resp.status,
        [(axum::http::header::CONTENT_TYPE, resp.content_type)],
        resp.body,
    )
        .into_response())
}
