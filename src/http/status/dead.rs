//! `/status/dead`: the organization's dead deliveries (of one service, when named),
//! each with a Retry button, and Retry all for a service. The buttons are POST forms
//! under the same session and same-origin rules as the login form; they do what
//! `POST /v1/admin/deliveries/{id}/retry` and `…/services/{id}/retry-dead` do.

use std::fmt::Write;
use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::render::{ago, document, esc};
use super::{Refusal, html, problem, redirect, session, viewer};
use crate::app::App;
use crate::http::admin::Delivery;
use crate::store::dead::DeliveryState;

/// Dead deliveries shown on one page.
const SHOWN: u32 = 100;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct DeadQuery {
    /// Only this service's.
    service_id: Option<String>,
}

fn back_to(service_id: Option<&str>) -> String {
    match service_id {
        Some(s) => format!(
            "/status/dead?{}",
            url::form_urlencoded::Serializer::new(String::new())
                .append_pair("service_id", s)
                .finish()
        ),
        None => "/status/dead".to_owned(),
    }
}

/// `GET /status/dead`.
#[utoipa::path(get, path = "/status/dead", tag = "status", operation_id = "status_dead",
    params(DeadQuery),
    security(("bearer" = ["admin"]), ("session" = [])),
    responses(
        (status = 200, description = "The dead deliveries, oldest first, with retry buttons", body = String, content_type = "text/html"),
        (status = 400, description = "A bad query parameter", body = String, content_type = "text/html"),
        (status = 401, description = "No (valid) credentials: the login form", body = String, content_type = "text/html"),
        (status = 403, description = "The token lacks the admin scope", body = String, content_type = "text/html"),
        (status = 503, response = crate::http::schema::answers::Unavailable),
    ))]
pub async fn page(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    let (viewer, via_cookie) = match viewer(&app, &headers) {
        Ok(v) => v,
        Err(refusal) => return refusal.into_response(),
    };
    let q: DeadQuery = match crate::http::body::query(q.as_deref()) {
        Ok(q) => q,
        Err(e) => return problem(e.status, &e.message),
    };
    let rows = match app
        .store
        .read
        .deliveries(
            &viewer.organization,
            DeliveryState::Dead,
            q.service_id.as_deref(),
            0,
            SHOWN,
        )
        .await
    {
        Ok(rows) => rows,
        Err(e) => {
            let e = crate::http::error::ApiError::from(e);
            return problem(e.status, &e.message);
        }
    };
    let deliveries: Vec<Delivery> = rows.into_iter().map(Delivery::from).collect();
    html(
        StatusCode::OK,
        render(q.service_id.as_deref(), &deliveries, via_cookie),
    )
}

fn render(service_id: Option<&str>, deliveries: &[Delivery], buttons: bool) -> String {
    let now = jiff::Timestamp::now();
    let back = esc(&back_to(service_id));
    let mut h = String::new();
    let title = match service_id {
        Some(s) => format!("Dead deliveries of <code>{}</code>", esc(s)),
        None => "Dead deliveries".to_owned(),
    };
    let _ = write!(
        h,
        "<header><h1>switchboard</h1><span class=\"org\"><a href=\"/status\">status</a></span></header><main><h2>{title}</h2>"
    );
    if deliveries.is_empty() {
        h.push_str("<p class=\"none\">None.</p></main>");
        return document("switchboard · dead deliveries", &h);
    }
    if let (Some(s), true) = (service_id, buttons) {
        let _ = write!(
            h,
            "<form method=\"post\" action=\"/status/services/{}/retry-dead\"><button type=\"submit\" class=\"retry-all\">Retry all {} of this service</button></form>",
            esc(s),
            deliveries.len()
        );
    }
    h.push_str(
        "<table class=\"dead\"><thead><tr><th>Id</th><th>Service</th><th>Kind</th><th>Event / message</th>\
         <th>webhook-id</th><th>Attempts</th><th>Queued</th><th>Last error</th><th></th></tr></thead><tbody>",
    );
    for d in deliveries {
        let what = match (&d.event_type, &d.message_id) {
            (Some(t), _) => format!("{} #{}", esc(t), d.event_seq.unwrap_or_default()),
            (None, Some(m)) => format!("message {}", esc(m)),
            _ => String::new(),
        };
        let button = if buttons {
            format!(
                "<form method=\"post\" action=\"/status/deliveries/{}/retry?back={}\"><button type=\"submit\">Retry</button></form>",
                esc(&d.id),
                esc(
                    &url::form_urlencoded::byte_serialize(back_to(service_id).as_bytes())
                        .collect::<String>()
                )
            )
        } else {
            String::new()
        };
        let _ = write!(
            h,
            "<tr data-delivery=\"{id}\"><td>{id}</td><td><code>{svc}</code></td><td>{kind:?}</td><td>{what}</td>\
             <td><code>{wid}</code></td><td>{att}</td><td><time datetime=\"{at}\">{ago}</time></td>\
             <td class=\"error\">{err}</td><td>{button}</td></tr>",
            id = esc(&d.id),
            svc = esc(&d.service_id),
            kind = d.kind,
            wid = esc(d.webhook_id.as_deref().unwrap_or("")),
            att = d.attempts,
            at = d.created_at,
            ago = ago(d.created_at, now),
            err = esc(d.last_error.as_deref().unwrap_or("")),
        );
    }
    let _ = write!(
        h,
        "</tbody></table><p><a href=\"{back}\">Refresh</a></p></main>"
    );
    document("switchboard · dead deliveries", &h)
}

/// Who posts a retry form: from the daemon's own page, with admin credentials.
fn form_viewer(app: &App, headers: &HeaderMap) -> Result<crate::app::TokenInfo, Refusal> {
    if !session::same_origin(headers, app.config().server.public_url.as_deref()) {
        return Err(Refusal::CrossOrigin);
    }
    viewer(app, headers).map(|(v, _)| v)
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct RetryQuery {
    /// Where to go afterwards: a `/status/dead` page.
    back: Option<String>,
}

/// `POST /status/deliveries/{id}/retry`.
#[utoipa::path(post, path = "/status/deliveries/{id}/retry", tag = "status", operation_id = "status_retry_delivery",
    params(("id" = String, Path, description = "The delivery's id", example = "1"), RetryQuery),
    security(("bearer" = ["admin"]), ("session" = [])),
    responses(
        (status = 303, description = "Requeued; back to the dead deliveries", headers(("location" = String))),
        (status = 400, description = "A bad query parameter", body = String, content_type = "text/html"),
        (status = 401, description = "No (valid) credentials: the login form", body = String, content_type = "text/html"),
        (status = 403, description = "Not an admin, or posted from another origin", body = String, content_type = "text/html"),
        (status = 404, description = "No such delivery in the organization", body = String, content_type = "text/html"),
        (status = 409, description = "The delivery is not dead", body = String, content_type = "text/html"),
        (status = 503, response = crate::http::schema::answers::Unavailable),
    ))]
pub async fn retry(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    let viewer = match form_viewer(&app, &headers) {
        Ok(v) => v,
        Err(refused) => return refused.into_response(),
    };
    let q: RetryQuery = match crate::http::body::query(q.as_deref()) {
        Ok(q) => q,
        Err(e) => return problem(e.status, &e.message),
    };
    match crate::http::admin::retry_one(&app, &viewer.organization, &id).await {
        // Only back to our own dead-deliveries page: never an open redirect.
        Ok(_) => redirect(
            q.back
                .as_deref()
                .filter(|b| b.starts_with("/status/dead") && !b.contains("//"))
                .unwrap_or("/status/dead"),
        ),
        Err(e) => problem(e.status, &e.message),
    }
}

/// `POST /status/services/{id}/retry-dead`.
#[utoipa::path(post, path = "/status/services/{id}/retry-dead", tag = "status", operation_id = "status_retry_dead",
    params(("id" = String, Path, description = "The service's id", example = "hook")),
    security(("bearer" = ["admin"]), ("session" = [])),
    responses(
        (status = 303, description = "Requeued; back to the service's dead deliveries", headers(("location" = String))),
        (status = 401, description = "No (valid) credentials: the login form", body = String, content_type = "text/html"),
        (status = 403, description = "Not an admin, or posted from another origin", body = String, content_type = "text/html"),
        (status = 404, description = "No such service in the organization", body = String, content_type = "text/html"),
        (status = 503, response = crate::http::schema::answers::Unavailable),
    ))]
pub async fn retry_dead(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let viewer = match form_viewer(&app, &headers) {
        Ok(v) => v,
        Err(refused) => return refused.into_response(),
    };
    match app.store.retry_dead(&viewer.organization, &id).await {
        Ok(n) => {
            tracing::info!(service_id = %id, retried = n, "dead deliveries retried from the status page");
            redirect(&back_to(Some(&id)))
        }
        Err(e) => {
            let e = crate::http::error::ApiError::from(e);
            problem(e.status, &e.message)
        }
    }
}
