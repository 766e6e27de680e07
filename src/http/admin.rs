//! `/v1/admin/deliveries` and `/v1/admin/services/{id}/retry-dead` (`admin`): the
//! deliveries an organization's services gave up on, and putting them back in their
//! queue (see [`crate::store::dead`] for the order they go in).

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use serde::{Deserialize, Serialize};
use switchboard_core::Scope;
use utoipa::{IntoParams, ToSchema};

use super::auth::Caller;
use super::body;
use super::error::ApiError;
use super::schema::answers::{Forbidden, Malformed, NotFound, Unauthorized, Unavailable};
use super::schema::{ErrorBody, Page};
use crate::app::App;
use crate::store::dead::{DeliveryRow, DeliveryState};
use crate::store::rows::{parse_id, ts};

/// What a delivery carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryKind {
    /// An outbound message to its service's provider.
    Message,
    /// An event to a webhook (or an api service's callback).
    Event,
}

/// Where a delivery is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryStatus {
    /// Waiting behind an older delivery of its conversation.
    Queued,
    /// The head of its queue: being tried, next at `next_attempt_at`.
    Ready,
    /// Given up on after `max_attempts` or `max_age`, or refused for good.
    Dead,
}

/// One delivery from the outbox.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Delivery {
    /// The delivery's id (opaque).
    pub id: String,
    /// The service it goes to.
    pub service_id: String,
    /// Message or event.
    pub kind: DeliveryKind,
    /// Queued, ready or dead.
    pub state: DeliveryStatus,
    /// Attempts since it was queued (or last retried).
    pub attempts: i64,
    /// The last attempt's error.
    pub last_error: Option<String>,
    /// When it was queued, or last retried.
    #[schema(value_type = String, format = DateTime)]
    pub created_at: jiff::Timestamp,
    /// When it is tried next; null when dead.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub next_attempt_at: Option<jiff::Timestamp>,
    /// The conversation it belongs to, if any.
    pub conversation_id: Option<String>,
    /// For a message: its id.
    pub message_id: Option<String>,
    /// For an event: its sequence number.
    pub event_seq: Option<i64>,
    /// For an event: its type.
    pub event_type: Option<String>,
    /// For an event: the `webhook-id` every attempt (and a retry) sends.
    pub webhook_id: Option<String>,
}

impl From<DeliveryRow> for Delivery {
    fn from(r: DeliveryRow) -> Self {
        let event = r.kind == "event";
        let state = match r.state {
            0 => DeliveryStatus::Queued,
            1 => DeliveryStatus::Ready,
            _ => DeliveryStatus::Dead,
        };
        Delivery {
            id: r.id.to_string(),
            service_id: r.service_id,
            kind: if event {
                DeliveryKind::Event
            } else {
                DeliveryKind::Message
            },
            state,
            attempts: r.attempts,
            last_error: r.last_error,
            created_at: ts(r.created_at),
            next_attempt_at: (state != DeliveryStatus::Dead).then(|| ts(r.next_attempt_at)),
            conversation_id: r.conversation_id.map(|c| c.to_string()),
            message_id: (!event).then(|| r.ref_id.to_string()),
            event_seq: event.then_some(r.ref_id),
            event_type: r.event_type,
            webhook_id: event.then(|| format!("evt_{}", r.ref_id)),
        }
    }
}

/// Which deliveries `GET /v1/admin/deliveries` lists.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum StateFilter {
    /// Given up on (the default).
    Dead,
    /// Queued or ready.
    Live,
}

/// The filters and paging of `GET /v1/admin/deliveries`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeliveriesQuery {
    /// `dead` (the default) or `live`.
    #[param(value_type = Option<StateFilter>)]
    state: Option<StateFilter>,
    /// Only this service's.
    service_id: Option<String>,
    /// The cursor: the `next` of the previous page.
    #[param(pattern = "^(0|[1-9][0-9]{0,17})?$")]
    after: Option<String>,
    /// Page size, 1-100 (default 50).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<u32>,
}

/// `GET /v1/admin/deliveries`: the organization's dead (or live) deliveries, in id order.
#[utoipa::path(get, path = "/v1/admin/deliveries", tag = "admin",
    params(DeliveriesQuery),
    security(("bearer" = ["admin"])),
    responses(
        (status = 200, description = "A page of deliveries, oldest first", body = Page<Delivery>, links(
            ("retry_first" = (operation_id = "retry_delivery", parameters(("id" = "$response.body#/data/0/id")))),
        )),
        (status = 400, response = Malformed),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 503, response = Unavailable),
    ))]
pub async fn deliveries(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Result<Json<Page<Delivery>>, ApiError> {
    let caller = Caller::with_scope(&app, &headers, Scope::Admin)?;
    let q: DeliveriesQuery = body::query(q.as_deref())?;
    let (after, limit) = super::v1::page(q.after.as_deref(), q.limit)?;
    let state = match q.state.unwrap_or(StateFilter::Dead) {
        StateFilter::Dead => DeliveryState::Dead,
        StateFilter::Live => DeliveryState::Live,
    };
    let rows = app
        .store
        .read
        .deliveries(
            caller.organization(),
            state,
            q.service_id.as_deref(),
            after,
            limit,
        )
        .await?;
    let items: Vec<Delivery> = rows.into_iter().map(Delivery::from).collect();
    Ok(Json(Page::new(items, limit, |d| &d.id)))
}

/// Retries one dead delivery of the caller's organization; the delivery as it is now.
pub(crate) async fn retry_one(
    app: &App,
    organization: &str,
    id: &str,
) -> Result<Delivery, ApiError> {
    let id = parse_id(id).ok_or_else(|| ApiError::not_found("delivery"))?;
    app.store.retry_delivery(organization, id).await?;
    let row = app
        .store
        .read
        .delivery(organization, id)
        .await?
        .ok_or_else(|| ApiError::not_found("delivery"))?;
    tracing::info!(delivery = id, service_id = %row.service_id, "dead delivery retried");
    Ok(row.into())
}

/// `POST /v1/admin/deliveries/{id}/retry`: puts one dead delivery back in its queue.
#[utoipa::path(post, path = "/v1/admin/deliveries/{id}/retry", tag = "admin",
    operation_id = "retry_delivery",
    params(("id" = String, Path, description = "The delivery's id", example = "1")),
    security(("bearer" = ["admin"])),
    responses(
        (status = 200, description = "Requeued: ready, or queued right behind its conversation's head", body = Delivery),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, description = "The delivery is not dead (`conflict`)", body = ErrorBody),
        (status = 503, response = Unavailable),
    ))]
pub async fn retry(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<Delivery>, ApiError> {
    let caller = Caller::with_scope(&app, &headers, Scope::Admin)?;
    Ok(Json(retry_one(&app, caller.organization(), &id).await?))
}

/// `POST /v1/admin/services/{id}/retry-dead`'s answer.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Retried {
    /// How many dead deliveries were requeued.
    pub retried: usize,
}

/// `POST /v1/admin/services/{id}/retry-dead`: requeues every dead delivery of a service.
#[utoipa::path(post, path = "/v1/admin/services/{id}/retry-dead", tag = "admin",
    params(("id" = String, Path, description = "The service's id", example = "hook")),
    security(("bearer" = ["admin"])),
    responses(
        (status = 200, description = "Every dead delivery of the service is back in its queue, oldest first", body = Retried),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 503, response = Unavailable),
    ))]
pub async fn retry_dead(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<Retried>, ApiError> {
    let caller = Caller::with_scope(&app, &headers, Scope::Admin)?;
    let retried = app.store.retry_dead(caller.organization(), &id).await?;
    tracing::info!(service_id = %id, retried, "dead deliveries retried");
    Ok(Json(Retried { retried }))
}
