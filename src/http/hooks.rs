//! `/hooks/{service_id}[/…]`: provider webhooks, handed to the service's connector. The
//! shared part (lookup, body limit, errors) lives here; connectors only verify and parse.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, Uri};
use axum::response::{IntoResponse, Response};
use switchboard_core::{HookHead, HookRequest};

use super::body;
use super::error::ApiError;
use crate::app::App;

/// `/hooks/{service_id}`.
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
    let head = HookHead {
        method,
        subpath: subpath.trim_matches('/').to_owned(),
        path_and_query: uri
            .path_and_query()
            .map(|p| p.as_str().to_owned())
            .unwrap_or_default(),
        query: uri.query().map(str::to_owned),
        headers,
    };
    // Credentials in the head are checked before the body is read.
    svc.connector.authorize_hook(&svc.ctx, &head)?;
    let body = body::read(&head.headers, body, app.config().server.max_body).await?;
    let req = HookRequest { head, body };
    let resp = svc.connector.handle_webhook(&svc.ctx, req).await?;
    Ok((
        resp.status,
        [(axum::http::header::CONTENT_TYPE, resp.content_type)],
        resp.body,
    )
        .into_response())
}
