//! `/healthz`, `/readyz` and `/metrics`.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use switchboard_core::ConnState;

use super::schema::answers::Unavailable;
use super::schema::{Health, HealthStatus, NotReady, Readiness, ReadyStatus, StorageStatus};
use crate::app::App;

/// 200 while the process runs.
#[utoipa::path(get, path = "/healthz", tag = "health",
    responses((status = 200, description = "The process runs", body = Health)))]
pub async fn healthz() -> Json<Health> {
    Json(Health {
        status: HealthStatus::Ok,
    })
}

/// 200 when storage answers and every running service is connected (or in its first
/// backoff after a drop); else 503 naming the services that are not. In a cluster: every
/// service this instance holds the lease of.
#[utoipa::path(get, path = "/readyz", tag = "health",
    responses(
        (status = 200, description = "Ready", body = Readiness),
        (status = 503, description = "Not ready: storage, shutdown, or the services named", body = Readiness),
    ))]
pub async fn readyz(State(app): State<Arc<App>>) -> Response {
    let storage = app.store.read.ping().await;
    let mut not_ready = Vec::new();
    // In a cluster, a service whose lease another instance holds is that one's to run.
    for svc in app
        .running()
        .into_iter()
        .filter(|s| app.cluster.holds(&s.config.id))
    {
        let (state, _) = svc.host.state();
        let ok = match &state {
            ConnState::Connected => true,
            ConnState::Backoff { attempt, .. } => *attempt <= 1,
            _ => false,
        };
        if !ok {
            not_ready.push(NotReady {
                id: svc.config.id.clone(),
                state: state.kind().to_owned(),
            });
        }
    }
    let ready = storage && not_ready.is_empty() && !app.shutdown.is_cancelled();
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = Readiness {
        status: if ready {
            ReadyStatus::Ready
        } else {
            ReadyStatus::NotReady
        },
        storage: if storage {
            StorageStatus::Ok
        } else {
            StorageStatus::Unavailable
        },
        services: not_ready,
    };
    (status, Json(body)).into_response()
}

/// Prometheus exposition.
#[utoipa::path(get, path = "/metrics", tag = "health",
    responses(
        (status = 200, description = "Prometheus text exposition (version 0.0.4)", content_type = "text/plain"),
        (status = 503, response = Unavailable),
    ))]
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
