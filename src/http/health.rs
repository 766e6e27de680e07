//! `/healthz`, `/readyz` and `/metrics`.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use switchboard_core::ConnState;

use crate::app::App;

/// 200 while the process runs.
pub async fn healthz() -> Response {
    Json(json!({"status": "ok"})).into_response()
}

/// 200 when storage answers and every running service is connected (or in its first
/// backoff after a drop); else 503 naming the services that are not.
pub async fn readyz(State(app): State<Arc<App>>) -> Response {
    let storage = app.store.read.ping().await;
    let mut not_ready = Vec::new();
    for svc in app.running() {
        let (state, _) = svc.host.state();
        let ok = match &state {
            ConnState::Connected => true,
            ConnState::Backoff { attempt, .. } => *attempt <= 1,
            _ => false,
        };
        if !ok {
            not_ready.push(json!({"id": svc.config.id, "state": state.kind()}));
        }
    }
    let ready = storage && not_ready.is_empty() && !app.shutdown.is_cancelled();
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({
        "status": if ready { "ready" } else { "not_ready" },
        "storage": if storage { "ok" } else { "unavailable" },
        "services": not_ready,
    });
    (status, Json(body)).into_response()
}

/// Prometheus exposition.
pub async fn metrics(State(app): State<Arc<App>>) -> Response {
    crate::http::refresh_gauges(&app).await;
    (
        [(
            axum::http::header::CONTENT_TYPE,
            crate::metrics::CONTENT_TYPE,
        )],
        app.metrics.encode(),
    )
        .into_response()
}
