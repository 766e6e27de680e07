//! The HTTP server: the router, request metrics, and refusal of new work during shutdown.
//!
//! - [`health`] — `/healthz`, `/readyz`, `/metrics`.
//! - [`hooks`] — `/hooks/{service_id}[/…]` for providers.
//! - [`v1`] — the REST API.
//! - [`admin`] — dead deliveries: listing and retrying them.
//! - [`events`] — the `/v1/events` websocket.
//! - [`status`] — `/status`, the operator's status page (login, live refresh).
//! - [`openapi`] — `/v1/openapi.json`, derived from the handlers and [`schema`]'s types.
//! - [`auth`], [`body`], [`error`]: bearer tokens (and their service's lifecycle),
//!   bodies (size, time and the shared in-flight budget), the error type.
//! - [`server`], [`stall`]: the listener (HTTP/1.1 only, connection caps, header-read
//!   timeout) and the per-connection write deadline.

pub mod admin;
pub mod auth;
pub mod body;
pub mod error;
pub mod events;
pub mod handoff;
pub mod health;
pub mod hooks;
pub mod openapi;
pub mod schema;
pub mod server;
pub mod stall;
pub mod status;
pub mod v1;

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};

use crate::app::App;
use error::ApiError;

/// The whole router. The body budget is sized from the config in force now
/// (`server.max_body_in_flight` takes effect at restart).
pub fn router(app: Arc<App>) -> Router {
    let budget = body::Budget::new(app.config().server.max_body_in_flight);
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .route("/hooks/{service_id}", any(hooks::root))
        .route("/hooks/{service_id}/{*rest}", any(hooks::sub))
        .route("/v1/services", get(v1::services))
        .route("/v1/services/{service_id}/messages", post(v1::ingest))
        .route("/v1/conversations", get(v1::conversations))
        .route("/v1/conversations/{id}", get(v1::conversation))
        .route(
            "/v1/conversations/{id}/messages",
            get(v1::conversation_messages).post(v1::reply),
        )
        .route("/v1/conversations/{id}/handoff", post(handoff::handoff))
        .route("/v1/messages/{id}", get(v1::message))
        .route("/v1/events", get(events::events))
        .route("/v1/admin/reload", post(v1::reload))
        .route("/v1/admin/deliveries", get(admin::deliveries))
        .route("/v1/admin/deliveries/{id}/retry", post(admin::retry))
        .route(
            "/v1/admin/services/{id}/retry-dead",
            post(admin::retry_dead),
        )
        .route("/v1/openapi.json", get(openapi::openapi_json))
        .route("/status", get(status::page))
        .route("/status/live", get(status::live))
        .route("/status/login", get(status::login_form).post(status::login))
        .route("/status/logout", post(status::logout))
        .route("/status/dead", get(status::dead::page))
        .route("/status/deliveries/{id}/retry", post(status::dead::retry))
        .route(
            "/status/services/{id}/retry-dead",
            post(status::dead::retry_dead),
        )
        .route("/status/assets/status.css", get(status::stylesheet))
        .route("/status/assets/status.js", get(status::script))
        .fallback(|| async { ApiError::not_found("route") })
        .layer(axum::middleware::from_fn_with_state(app.clone(), track))
        .layer(axum::Extension(budget))
        .with_state(app)
}

/// Counts every request by route and status, and refuses new work once shutdown began.
async fn track(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".into());
    let method = req.method().as_str().to_owned();
    let started = Instant::now();
    // `/readyz` answers its own 503 (not_ready) while shutting down.
    let resp = if app.shutdown.is_cancelled() && route != "/healthz" && route != "/readyz" {
        ApiError::unavailable("shutting down").into_response()
    } else {
        next.run(req).await
    };
    app.metrics.http(
        &route,
        &method,
        resp.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    resp
}

/// Refreshes the gauges read from storage (outbox depth) before a scrape. Every
/// configured service gets a series, 0 when its outbox is empty (delivered rows are
/// deleted, so a drained outbox has no rows to count); a service no longer configured
/// keeps one only while it still has rows (dead deliveries an operator may look for).
pub async fn refresh_gauges(app: &App) {
    let Ok(counted) = app.store.read.outbox_depth().await else {
        return;
    };
    let config = app.config();
    let mut by_service: std::collections::BTreeMap<String, (String, i64, i64)> = config
        .services
        .iter()
        .map(|(id, s)| (id.clone(), (s.type_name().to_owned(), 0, 0)))
        .collect();
    for (service, live, dead) in counted {
        let row = by_service
            .entry(service)
            .or_insert_with(|| ("unknown".into(), 0, 0));
        (row.1, row.2) = (live, dead);
    }
    let rows: Vec<_> = by_service
        .into_iter()
        .map(|(service, (service_type, live, dead))| (service, service_type, live, dead))
        .collect();
    app.metrics.set_outbox(&rows);
}
