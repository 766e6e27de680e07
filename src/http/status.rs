//! `/status`: the operator's status page, server-rendered HTML with no build step and
//! nothing from elsewhere (its stylesheet and script are embedded in the binary).
//!
//! An `admin` token opens it, as a bearer header or through the login form, which
//! keeps the token on the server and sets a session cookie (see [`session`]). The page
//! refreshes its live part from `/status/live` every few seconds.
//!
//! - [`session`] — sessions, cookies, the same-origin check.
//! - [`snapshot`] — what the page shows, read from the app and the store.
//! - [`render`] — the HTML.
//! - [`dead`] — the dead deliveries of a service, with their retry buttons.

pub mod dead;
pub mod render;
pub mod session;
pub mod snapshot;

use std::sync::Arc;

use axum::Extension;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use switchboard_core::Scope;

pub use session::Sessions;

use super::auth::Caller;
use super::body;
use crate::app::{App, TokenInfo};
use snapshot::Snapshot;

/// The longest login form read.
const MAX_LOGIN_BODY: usize = 4096;

/// What a page may load: its own stylesheet and script, nothing inline, nothing from
/// elsewhere, and it may not be framed.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// An HTML answer with the page's security headers; never cached (it shows live state).
pub(crate) fn html(status: StatusCode, body: String) -> Response {
    let mut resp = (status, body).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // Not `no-referrer`: under it browsers send `Origin: null` with the page's own
    // POSTs, and the same-origin check could not tell them from a sandboxed attacker.
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    resp
}

/// A small page naming what went wrong.
pub(crate) fn problem(status: StatusCode, message: &str) -> Response {
    html(
        status,
        format!(
            "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title>\
             <link rel=\"stylesheet\" href=\"/status/assets/status.css\"></head><body><main class=\"login\">\
             <h1>switchboard</h1><p class=\"problem\" role=\"alert\">{}</p>\
             <p><a href=\"/status\">Back to the status page</a></p></main></body></html>\n",
            status.as_u16(),
            render::esc(message)
        ),
    )
}

/// 303 to a path of ours (built from ids and percent-encoded queries only).
pub(crate) fn redirect(to: &str) -> Response {
    let mut resp = html(StatusCode::SEE_OTHER, String::new());
    let to = HeaderValue::from_str(to).unwrap_or_else(|_| HeaderValue::from_static("/status"));
    resp.headers_mut().insert(header::LOCATION, to);
    resp
}

/// Whether the daemon is reached over https (the cookie then gets `Secure`).
fn secure(app: &App) -> bool {
    app.config()
        .server
        .public_url
        .as_deref()
        .is_some_and(|u| u.starts_with("https://"))
}

/// Why a request may not see the page.
pub(crate) enum Refusal {
    /// No credentials, or a session that ended: the login form (401).
    Login,
    /// A bearer token that is unknown or not an admin's.
    Bearer(super::error::ApiError),
    /// A form posted from another origin.
    CrossOrigin,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Refusal::Login => html(StatusCode::UNAUTHORIZED, render::login(None)),
            Refusal::Bearer(e) => problem(e.status, &e.message),
            Refusal::CrossOrigin => problem(
                StatusCode::FORBIDDEN,
                "post this form from the daemon's own page",
            ),
        }
    }
}

/// The viewer: a bearer admin token, or a live session whose token is still an admin
/// token; and whether it came by cookie.
pub(crate) fn viewer(app: &App, headers: &HeaderMap) -> Result<(TokenInfo, bool), Refusal> {
    if headers.contains_key(header::AUTHORIZATION) {
        return Caller::with_scope(app, headers, Scope::Admin)
            .map(|c| (c.0, false))
            .map_err(Refusal::Bearer);
    }
    let token = session::cookie(headers).and_then(|id| app.sessions.token(id));
    let info = token.and_then(|t| app.tokens().lookup(t.expose()).cloned());
    match info {
        Some(info) if info.scopes.contains(&Scope::Admin) => Ok((info, true)),
        // No session, or its token was removed or lost the scope since.
        _ => Err(Refusal::Login),
    }
}

/// `GET /status`.
#[utoipa::path(get, path = "/status", tag = "status", operation_id = "status_page",
    security(("bearer" = ["admin"]), ("session" = [])),
    responses(
        (status = 200, description = "The status page", body = String, content_type = "text/html"),
        (status = 401, description = "No (valid) credentials: the login form", body = String, content_type = "text/html"),
        (status = 403, description = "The token lacks the admin scope", body = String, content_type = "text/html"),
        (status = 503, response = super::schema::answers::Unavailable),
    ))]
pub async fn page(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    let (viewer, via_cookie) = match viewer(&app, &headers) {
        Ok(v) => v,
        Err(refusal) => return refusal.into_response(),
    };
    match Snapshot::gather(&app, &viewer.organization).await {
        Ok(s) => html(StatusCode::OK, render::page(&s, via_cookie)),
        Err(e) => problem(e.status, &e.message),
    }
}

/// `GET /status/live`: the live part of the page, for its script.
#[utoipa::path(get, path = "/status/live", tag = "status", operation_id = "status_live",
    security(("bearer" = ["admin"]), ("session" = [])),
    responses(
        (status = 200, description = "The page's live part (services, failures, hub)", body = String, content_type = "text/html"),
        (status = 401, description = "No (valid) credentials", body = String, content_type = "text/html"),
        (status = 403, description = "The token lacks the admin scope", body = String, content_type = "text/html"),
        (status = 503, response = super::schema::answers::Unavailable),
    ))]
pub async fn live(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    let (viewer, _) = match viewer(&app, &headers) {
        Ok(v) => v,
        Err(refusal) => return refusal.into_response(),
    };
    match Snapshot::gather(&app, &viewer.organization).await {
        Ok(s) => html(StatusCode::OK, render::live(&s)),
        Err(e) => problem(e.status, &e.message),
    }
}

/// `GET /status/login`.
#[utoipa::path(get, path = "/status/login", tag = "status",
    responses((status = 200, description = "The login form", body = String, content_type = "text/html")))]
pub async fn login_form() -> Response {
    html(StatusCode::OK, render::login(None))
}

/// The login form's fields.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginForm {
    /// A token with the `admin` scope.
    token: String,
}

impl std::fmt::Debug for LoginForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LoginForm { token: \"***\" }")
    }
}

/// `POST /status/login`: an admin token in, a session cookie out.
#[utoipa::path(post, path = "/status/login", tag = "status",
    request_body(content = LoginForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 303, description = "Signed in: the session cookie is set; on to /status",
            headers(("location" = String, description = "`/status`"),
                    ("set-cookie" = String, description = "`sb_session=…; HttpOnly; SameSite=Strict; Path=/` (and `Secure` over https)"))),
        (status = 400, description = "Not the login form", body = String, content_type = "text/html"),
        (status = 401, description = "The token is unknown or lacks the admin scope: the form again", body = String, content_type = "text/html"),
        (status = 403, description = "Posted from another origin", body = String, content_type = "text/html"),
        (status = 413, description = "The form exceeds 4 KiB", body = String, content_type = "text/html"),
        (status = 503, response = super::schema::answers::Unavailable),
    ))]
pub async fn login(
    State(app): State<Arc<App>>,
    Extension(budget): Extension<body::Budget>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let config = app.config();
    if !session::same_origin(&headers, config.server.public_url.as_deref()) {
        return problem(StatusCode::FORBIDDEN, "sign in from the daemon's own page");
    }
    let held = match body::read(&budget, &config.server, &headers, body, MAX_LOGIN_BODY).await {
        Ok(b) => b,
        Err(e) => return problem(e.status, &e.message),
    };
    let form: LoginForm = match serde_urlencoded::from_bytes(&held.bytes) {
        Ok(f) => f,
        Err(_) => {
            return problem(
                StatusCode::BAD_REQUEST,
                "expected the login form's token field",
            );
        }
    };
    let tokens = app.tokens();
    let Some(info) = tokens
        .lookup(form.token.trim())
        .filter(|i| i.scopes.contains(&Scope::Admin))
    else {
        tracing::info!("status page: a sign-in with an unknown or non-admin token was refused");
        return html(
            StatusCode::UNAUTHORIZED,
            render::login(Some("That token is unknown or lacks the admin scope.")),
        );
    };
    let Some(id) = app.sessions.start(form.token.trim()) else {
        return problem(
            StatusCode::SERVICE_UNAVAILABLE,
            "no randomness for a session id; retry",
        );
    };
    tracing::info!(service_id = %info.service_id, token = %info.name, "status page: signed in");
    let mut resp = redirect("/status");
    resp.headers_mut()
        .insert(header::SET_COOKIE, session::set_cookie(&id, secure(&app)));
    resp
}

/// `POST /status/logout`.
#[utoipa::path(post, path = "/status/logout", tag = "status",
    responses(
        (status = 303, description = "Signed out: the cookie is cleared; on to /status/login",
            headers(("location" = String, description = "`/status/login`"), ("set-cookie" = String, description = "The cleared cookie"))),
        (status = 403, description = "Posted from another origin", body = String, content_type = "text/html"),
        (status = 503, response = super::schema::answers::Unavailable),
    ))]
pub async fn logout(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    if !session::same_origin(&headers, app.config().server.public_url.as_deref()) {
        return problem(StatusCode::FORBIDDEN, "sign out from the daemon's own page");
    }
    if let Some(id) = session::cookie(&headers) {
        app.sessions.end(id);
    }
    let mut resp = redirect("/status/login");
    resp.headers_mut()
        .insert(header::SET_COOKIE, session::clear_cookie(secure(&app)));
    resp
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
        .into_response()
}

/// `GET /status/assets/status.css`.
#[utoipa::path(get, path = "/status/assets/status.css", tag = "status",
    responses((status = 200, description = "The page's stylesheet", body = String, content_type = "text/css")))]
pub async fn stylesheet() -> Response {
    asset(
        "text/css; charset=utf-8",
        include_str!("status/assets/status.css"),
    )
}

/// `GET /status/assets/status.js`.
#[utoipa::path(get, path = "/status/assets/status.js", tag = "status",
    responses((status = 200, description = "The page's script: refreshes its live part", body = String, content_type = "text/javascript")))]
pub async fn script() -> Response {
    asset(
        "text/javascript; charset=utf-8",
        include_str!("status/assets/status.js"),
    )
}
