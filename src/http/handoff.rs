//! `POST /v1/conversations/{id}/handoff`: an agent or a tool moves a conversation to
//! another desk (or to switchboard's own agents), which gets the transcript so far.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use switchboard_core::{Conversation, Scope};
use utoipa::ToSchema;

use super::auth::Caller;
use super::body;
use super::error::ApiError;
use super::schema::ErrorBody;
use super::schema::answers::{Forbidden, Invalid, Malformed, NotFound, Unauthorized, Unavailable};
use crate::app::App;
use crate::store::handoff::{Request, reason};

/// Largest body taken.
const MAX_BODY: usize = 4096;

/// Where the conversation goes.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HandoffBody {
    /// A desk service of the caller's organization, or `"api"` for switchboard's own
    /// agents (the conversation then shows no desk and is answered through `/v1`).
    #[schema(example = "nimchat_support")]
    to: String,
}

/// `POST /v1/conversations/{id}/handoff`.
#[utoipa::path(post, path = "/v1/conversations/{id}/handoff", tag = "conversations",
    params(("id" = String, Path, description = "The conversation's id", example = "1")),
    request_body = HandoffBody,
    security(("bearer" = ["reply"])),
    responses(
        (status = 200, description = "Handed off: the conversation shows its new desk; `conversation.handoff` was appended and the new desk has the transcript queued", body = Conversation),
        (status = 400, response = Malformed),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, description = "The conversation is already at that desk (`conflict`)", body = ErrorBody),
        (status = 422, response = Invalid),
        (status = 503, response = Unavailable),
    ))]
pub async fn handoff(
    State(app): State<Arc<App>>,
    Extension(budget): Extension<body::Budget>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Body,
) -> Result<Response, ApiError> {
    let caller = Caller::with_scope(&app, &headers, Scope::Reply)?;
    let (id, _) = super::v1::own_conversation(&app, &caller, &id).await?;
    let server = app.config().server.clone();
    // A desk id is short: no reason to hold more than a few KiB for it.
    let held = body::read(&budget, &server, &headers, body, MAX_BODY).await?;
    let req: HandoffBody = body::json(&held.bytes)?;
    let to = if req.to == "api" {
        None
    } else {
        let config = app.config();
        let desk = config
            .services
            .get(&req.to)
            .filter(|s| s.organization == caller.organization());
        match desk {
            Some(s) if s.params.can_be_desk() => Some(req.to),
            Some(_) => return Err(ApiError::invalid(format!("to: {:?} is not a desk", req.to))),
            None => {
                return Err(ApiError::invalid(format!(
                    "to: no desk {:?} is configured",
                    req.to
                )));
            }
        }
    };
    let moved = app
        .store
        .hand_off(Request {
            conversation_id: id,
            organization: Some(caller.organization().to_owned()),
            to,
            only_from: None,
            reason: reason::API.into(),
        })
        .await?;
    let (conversation, _) = moved.ok_or_else(|| ApiError::not_found("conversation"))?;
    Ok(Json(conversation).into_response())
}
