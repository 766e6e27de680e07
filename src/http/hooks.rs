//! `/hooks/{service_id}[/…]`: provider webhooks, handed to the service's connector. The
//! shared part (lookup, the head check before any body is read, body limits, errors)
//! lives here; connectors only verify and parse.

use std::sync::Arc;

use axum::Extension;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use switchboard_core::{HookAdmission, HookError, HookHead, HookRequest};

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
    Extension(budget): Extension<body::Budget>,
    Path(service_id): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let req = Incoming {
        service_id,
        subpath: String::new(),
        method,
        uri,
        headers,
    };
    handle(app, budget, req, body).await
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
    Extension(budget): Extension<body::Budget>,
    Path((service_id, rest)): Path<(String, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let req = Incoming {
        service_id,
        subpath: rest,
        method,
        uri,
        headers,
    };
    handle(app, budget, req, body).await
}

/// A hook request's head.
struct Incoming {
    service_id: String,
    subpath: String,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
}

async fn handle(
    app: Arc<App>,
    budget: body::Budget,
    head: Incoming,
    body: Body,
) -> Result<Response, ApiError> {
    let svc = app
        .service(&head.service_id)
        .filter(|s| s.accepts_hooks())
        .ok_or_else(|| ApiError::not_found("service"))?;
    let head = HookHead {
        subpath: head.subpath.trim_matches('/').to_owned(),
        path_and_query: head
            .uri
            .path_and_query()
            .map(|p| p.as_str().to_owned())
            .unwrap_or_default(),
        query: head.uri.query().map(str::to_owned),
        method: head.method,
        headers: head.headers,
    };
    // Credentials in the head are checked before a byte of the body is read: a request
    // without them is answered at once and costs no memory.
    let admission = match svc.connector.authorize_hook(&svc.ctx, &head) {
        Ok(admission) => admission,
        Err(e) => return Ok(refuse(e)),
    };
    let server = app.config().server.clone();
    let held = match admission {
        HookAdmission::Signed => {
            body::read(&budget, &server, &head.headers, body, server.max_body).await?
        }
        HookAdmission::BodyAuthenticated { max_body } => {
            let limit = max_body.min(server.max_body);
            match body::read(&budget, &server, &head.headers, body, limit).await {
                Err(e) if e.status == StatusCode::PAYLOAD_TOO_LARGE => {
                    return Err(HookError::Unauthorized(format!(
                        "an unsigned request must be at most {limit} bytes"
                    ))
                    .into());
                }
                other => other?,
            }
        }
    };
    let req = HookRequest {
        head,
        body: held.bytes.clone(),
    };
    let resp = match svc.connector.handle_webhook(&svc.ctx, req).await {
        Ok(resp) => resp,
        Err(e) => return Ok(refuse(e)),
    };
    drop(held);
    Ok((
        resp.status,
        [(axum::http::header::CONTENT_TYPE, resp.content_type)],
        resp.body,
    )
        .into_response())
}

/// A connector's refusal as the provider gets it. Every provider calls its hook with
/// POST, and RFC 9110 wants a 405 to say so.
fn refuse(e: HookError) -> Response {
    let allow = e == HookError::MethodNotAllowed;
    let mut refused = ApiError::from(e).into_response();
    if allow {
        refused.headers_mut().insert(
            axum::http::header::ALLOW,
            axum::http::HeaderValue::from_static("POST"),
        );
    }
    refused
}
