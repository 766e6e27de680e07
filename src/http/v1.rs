//! The `/v1` REST API (docs/contract.md, "HTTP"): services, conversations, messages, inbound
//! messages through an api service, and replies.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use switchboard_core::{
    Attachment, Author, AuthorType, Conversation, ConversationStatus, InboundMessage, Message,
    Scope,
};
use utoipa::{IntoParams, ToSchema};

use super::auth::Caller;
use super::body;
use super::error::ApiError;
use super::schema::answers::{
    Forbidden, Invalid, Malformed, NotFound, TooLarge, Unauthorized, Unavailable,
};
use super::schema::{
    ConfigProblems, ErrorBody, ErrorDetail, Page, Reloaded, ReloadedStatus, ServiceList,
    ServiceView,
};
use crate::app::{App, Control, validate_inbound};
use crate::store::rows::parse_id;
use crate::store::{ConversationFilter, NewOutbound};

/// Largest page.
const MAX_LIMIT: u32 = 100;
/// Page size when `limit` is absent.
const DEFAULT_LIMIT: u32 = 50;

/// `GET /v1/services`: the organization's services with their live state.
#[utoipa::path(get, path = "/v1/services", tag = "services",
    security(("bearer" = ["read"])),
    responses(
        (status = 200, description = "The caller's organization's services", body = ServiceList),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 503, response = Unavailable),
    ))]
pub async fn services(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
) -> Result<Json<ServiceList>, ApiError> {
    let caller = Caller::with_scope(&app, &headers, Scope::Read)?;
    let data = service_views(&app, caller.organization()).await?;
    Ok(Json(ServiceList { data }))
}

/// The organization's configured services in id order, each with its live state (a
/// service that is not running shows `stopped` since its last recorded change) and the
/// instance that holds its lease. A service another instance holds shows the state that
/// instance recorded.
pub(crate) async fn service_views(
    app: &App,
    organization: &str,
) -> Result<Vec<ServiceView>, ApiError> {
    let config = app.config();
    let stored = app.store.read.services().await?;
    let holders = app.cluster.holders().await;
    let mut data = Vec::new();
    for svc in config
        .services
        .values()
        .filter(|s| s.organization == organization)
    {
        let recorded = stored.iter().find(|s| s.info.id == svc.id);
        let mut entry = match app.service(&svc.id) {
            Some(running) if app.cluster.holds(&svc.id) => {
                let (state, since) = running.host.state();
                ServiceView::new(running.host.info(), &state, since)
            }
            Some(running) => match recorded {
                Some(r) => ServiceView::new(running.host.info(), &r.state, r.since),
                None => {
                    let (state, since) = running.host.state();
                    ServiceView::new(running.host.info(), &state, since)
                }
            },
            None => {
                let status = app
                    .status_of(&svc.id)
                    .unwrap_or_else(|| svc.status.as_str().to_owned());
                let info = crate::app::service_info(svc, &status);
                let since = recorded
                    .map(|s| s.since)
                    .unwrap_or_else(crate::store::rows::now_ms);
                ServiceView::new(&info, &switchboard_core::ConnState::Stopped, since)
            }
        };
        entry.instance = holders.get(&svc.id).cloned();
        data.push(entry);
    }
    Ok(data)
}

/// The filters and paging of `GET /v1/conversations`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// The cursor: the `next` of the previous page.
    #[param(pattern = "^(0|[1-9][0-9]{0,17})?$")]
    after: Option<String>,
    /// Page size, 1-100 (default 50).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<u32>,
    /// Only this service's conversations.
    service_id: Option<String>,
    /// Only open or closed ones.
    #[param(value_type = Option<ConversationStatus>)]
    status: Option<String>,
    /// Only those updated after this instant (RFC 3339).
    #[param(value_type = Option<String>, format = DateTime)]
    updated_after: Option<String>,
}

/// The paging of `GET /v1/conversations/{id}/messages`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// The cursor: the `next` of the previous page.
    #[param(pattern = "^(0|[1-9][0-9]{0,17})?$")]
    after: Option<String>,
    /// Page size, 1-100 (default 50).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<u32>,
}

/// The cursor and size of a page, checked. `after=0` is the start, as for
/// `/v1/events?after=0`: a client may begin from it.
pub(crate) fn page(after: Option<&str>, limit: Option<u32>) -> Result<(i64, u32), ApiError> {
    let after = match after {
        None | Some("") | Some("0") => 0,
        Some(s) => parse_id(s).ok_or_else(|| {
            ApiError::malformed("after: expected a cursor this API issued (a number ≥ 0)")
        })?,
    };
    let limit = limit.unwrap_or(DEFAULT_LIMIT);
    if limit == 0 || limit > MAX_LIMIT {
        return Err(ApiError::malformed(format!(
            "limit: expected 1-{MAX_LIMIT}"
        )));
    }
    Ok((after, limit))
}

/// `GET /v1/conversations`.
#[utoipa::path(get, path = "/v1/conversations", tag = "conversations",
    params(ListQuery),
    security(("bearer" = ["read"])),
    responses(
        (status = 200, description = "A page of the organization's conversations, in id order", body = Page<Conversation>, links(
            ("first" = (operation_id = "conversation", parameters(("id" = "$response.body#/data/0/id")))),
            ("first_messages" = (operation_id = "conversation_messages", parameters(("id" = "$response.body#/data/0/id")))),
            ("reply_to_first" = (operation_id = "reply", parameters(("id" = "$response.body#/data/0/id")))),
        )),
        (status = 400, response = Malformed),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 503, response = Unavailable),
    ))]
pub async fn conversations(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Result<Json<Page<Conversation>>, ApiError> {
    let caller = Caller::with_scope(&app, &headers, Scope::Read)?;
    let q: ListQuery = body::query(q.as_deref())?;
    let (after, limit) = page(q.after.as_deref(), q.limit)?;
    if let Some(s) = &q.status
        && s != "open"
        && s != "closed"
    {
        return Err(ApiError::malformed("status: expected open or closed"));
    }
    let updated_after = match &q.updated_after {
        None => None,
        Some(t) => Some(
            t.parse::<jiff::Timestamp>()
                .map_err(|_| ApiError::malformed("updated_after: expected an RFC 3339 time"))?
                .as_millisecond(),
        ),
    };
    let filter = ConversationFilter {
        service_id: q.service_id.clone(),
        status: q.status.clone(),
        updated_after,
    };
    let items = app
        .store
        .read
        .conversations(caller.organization(), &filter, after, limit)
        .await?;
    Ok(Json(Page::new(items, limit, |c| &c.id)))
}

/// The caller's organization's conversation with this id, or 404.
pub(super) async fn own_conversation(
    app: &App,
    caller: &Caller,
    id: &str,
) -> Result<(i64, Conversation), ApiError> {
    let not_found = || ApiError::not_found("conversation");
    let id = parse_id(id).ok_or_else(not_found)?;
    let conv = app
        .store
        .read
        .conversation(Some(caller.organization()), id)
        .await?
        .ok_or_else(not_found)?;
    Ok((id, conv))
}

/// `GET /v1/conversations/{id}`.
#[utoipa::path(get, path = "/v1/conversations/{id}", tag = "conversations",
    params(("id" = String, Path, description = "The conversation's id", example = "1")),
    security(("bearer" = ["read"])),
    responses(
        (status = 200, description = "The conversation with its contact", body = Conversation, links(
            ("messages" = (operation_id = "conversation_messages", parameters(("id" = "$response.body#/id")))),
            ("reply" = (operation_id = "reply", parameters(("id" = "$response.body#/id")))),
        )),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 503, response = Unavailable),
    ))]
pub async fn conversation(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<Conversation>, ApiError> {
    let caller = Caller::with_scope(&app, &headers, Scope::Read)?;
    let (_, conv) = own_conversation(&app, &caller, &id).await?;
    Ok(Json(conv))
}

/// `GET /v1/conversations/{id}/messages`: oldest first.
#[utoipa::path(get, path = "/v1/conversations/{id}/messages", tag = "conversations",
    params(("id" = String, Path, description = "The conversation's id", example = "1"), PageQuery),
    security(("bearer" = ["read"])),
    responses(
        (status = 200, description = "A page of the conversation's messages, oldest first", body = Page<Message>, links(
            ("first" = (operation_id = "message", parameters(("id" = "$response.body#/data/0/id")))),
        )),
        (status = 400, response = Malformed),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 503, response = Unavailable),
    ))]
pub async fn conversation_messages(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Json<Page<Message>>, ApiError> {
    let caller = Caller::with_scope(&app, &headers, Scope::Read)?;
    // An unknown conversation is 404 whatever the paging says.
    let (id, _) = own_conversation(&app, &caller, &id).await?;
    let q: PageQuery = body::query(q.as_deref())?;
    let (after, limit) = page(q.after.as_deref(), q.limit)?;
    let items = app.store.read.messages(id, after, limit).await?;
    Ok(Json(Page::new(items, limit, |m| &m.id)))
}

/// `GET /v1/messages/{id}`.
#[utoipa::path(get, path = "/v1/messages/{id}", tag = "messages",
    params(("id" = String, Path, description = "The message's id", example = "1")),
    security(("bearer" = ["read"])),
    responses(
        (status = 200, description = "The message with its delivery status", body = Message),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 503, response = Unavailable),
    ))]
pub async fn message(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<Message>, ApiError> {
    let caller = Caller::with_scope(&app, &headers, Scope::Read)?;
    let id = parse_id(&id).ok_or_else(|| ApiError::not_found("message"))?;
    let msg = app
        .store
        .read
        .message(Some(caller.organization()), id)
        .await?
        .ok_or_else(|| ApiError::not_found("message"))?;
    Ok(Json(msg))
}

/// `POST /v1/services/{id}/messages`: an inbound message from a remote system, through
/// the api service that owns the caller's token.
#[utoipa::path(post, path = "/v1/services/{service_id}/messages", tag = "messages",
    params(("service_id" = String, Path, description = "The api service that owns the token")),
    request_body = InboundMessage,
    security(("bearer" = ["ingest"])),
    responses(
        (status = 201, description = "Stored; the new message", body = Message, links(
            ("conversation" = (operation_id = "conversation", parameters(("id" = "$response.body#/conversation_id")))),
            ("messages" = (operation_id = "conversation_messages", parameters(("id" = "$response.body#/conversation_id")))),
            ("reply" = (operation_id = "reply", parameters(("id" = "$response.body#/conversation_id")))),
            ("message" = (operation_id = "message", parameters(("id" = "$response.body#/id")))),
        )),
        (status = 200, description = "This external_id was stored before; the original message, nothing new stored", body = Message, links(
            ("conversation" = (operation_id = "conversation", parameters(("id" = "$response.body#/conversation_id")))),
            ("message" = (operation_id = "message", parameters(("id" = "$response.body#/id")))),
        )),
        (status = 400, response = Malformed),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, description = "The service takes no new conversations (pendingArchive)", body = ErrorBody),
        (status = 413, response = TooLarge),
        (status = 422, response = Invalid),
        (status = 503, response = Unavailable),
    ))]
pub async fn ingest(
    State(app): State<Arc<App>>,
    Extension(budget): Extension<body::Budget>,
    headers: HeaderMap,
    Path(service_id): Path<String>,
    body: Body,
) -> Result<Response, ApiError> {
    let caller = Caller::with_scope(&app, &headers, Scope::Ingest)?;
    if caller.0.service_id != service_id {
        return Err(ApiError::forbidden(
            "this token may ingest only through its own api service",
        ));
    }
    let svc = app
        .service(&service_id)
        .filter(|s| s.accepts_hooks())
        .ok_or_else(|| ApiError::not_found("service"))?;
    let server = app.config().server.clone();
    let held = body::read(&budget, &server, &headers, body, server.max_body).await?;
    let bytes = &held.bytes;
    let msg: InboundMessage = body::json(bytes)?;
    validate_inbound(&msg)?;
    let done = svc.host.ingest_checked(vec![msg]).await?;
    let first = done
        .into_iter()
        .next()
        .ok_or_else(|| ApiError::unavailable("nothing stored"))?;
    let status = if first.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(first.message)).into_response())
}

/// The body of a reply: text or attachments (or both).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplyBody {
    /// Plain text; not blank unless there are attachments.
    #[serde(default)]
    text: Option<String>,
    /// Files by http(s) URL.
    #[serde(default)]
    attachments: Vec<Attachment>,
    /// An agent (the default) or a bot.
    #[serde(default)]
    #[schema(value_type = Option<super::schema::ReplyAuthor>)]
    author: Option<Author>,
    /// 1-255 characters; repeating it returns the original message.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 255)]
    idempotency_key: Option<String>,
}

/// Longest idempotency key accepted.
const MAX_KEY: usize = 255;

impl ReplyBody {
    /// Checks what a reply needs (text or attachments, http(s) URLs, an agent or bot
    /// author, a sane idempotency key) and makes it the message to store; 422 naming the
    /// field otherwise.
    pub fn into_outbound(self) -> Result<NewOutbound, ApiError> {
        let has_text = self.text.as_deref().is_some_and(|t| !t.trim().is_empty());
        if !has_text && self.attachments.is_empty() {
            return Err(ApiError::invalid("a reply needs text or attachments"));
        }
        for (i, a) in self.attachments.iter().enumerate() {
            if !a.has_http_url() {
                return Err(ApiError::invalid(format!(
                    "attachments[{i}].url must be an http(s) URL"
                )));
            }
        }
        let author = self.author.unwrap_or(Author {
            kind: AuthorType::Agent,
            name: None,
        });
        if !matches!(author.kind, AuthorType::Agent | AuthorType::Bot) {
            return Err(ApiError::invalid("author.type: expected agent or bot"));
        }
        if let Some(k) = &self.idempotency_key
            && (k.is_empty() || k.chars().count() > MAX_KEY)
        {
            return Err(ApiError::invalid(format!(
                "idempotency_key: 1-{MAX_KEY} characters"
            )));
        }
        Ok(NewOutbound {
            text: self.text,
            attachments: self.attachments,
            author,
            idempotency_key: self.idempotency_key,
            from_desk: None,
        })
    }
}

/// `POST /v1/conversations/{id}/messages`: an agent's or bot's message to the contact.
#[utoipa::path(post, path = "/v1/conversations/{id}/messages", tag = "conversations",
    params(("id" = String, Path, description = "The conversation's id", example = "1")),
    request_body = ReplyBody,
    security(("bearer" = ["reply"])),
    responses(
        (status = 202, description = "Stored as pending; the connector delivers it", body = Message, links(
            ("message" = (operation_id = "message", parameters(("id" = "$response.body#/id")))),
            ("messages" = (operation_id = "conversation_messages", parameters(("id" = "$response.body#/conversation_id")))),
        )),
        (status = 200, description = "The idempotency_key was used before; the original message", body = Message),
        (status = 400, response = Malformed),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, description = "The conversation's service is archived or no longer configured (`service_archived`, `service_gone`)", body = ErrorBody),
        (status = 413, response = TooLarge),
        (status = 422, response = Invalid),
        (status = 503, response = Unavailable),
    ))]
pub async fn reply(
    State(app): State<Arc<App>>,
    Extension(budget): Extension<body::Budget>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Body,
) -> Result<Response, ApiError> {
    let caller = Caller::with_scope(&app, &headers, Scope::Reply)?;
    let (id, conv) = own_conversation(&app, &caller, &id).await?;
    let server = app.config().server.clone();
    let held = body::read(&budget, &server, &headers, body, server.max_body).await?;
    let bytes = &held.bytes;
    let req: ReplyBody = body::json(bytes)?;
    // A disabled service's replies wait for it; an archived or removed one never sends.
    match app.status_of(&conv.service_id).as_deref() {
        None => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "service_gone",
                format!(
                    "service {} is no longer configured; the reply could not be delivered",
                    conv.service_id
                ),
            ));
        }
        Some("archived") => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "service_archived",
                format!("service {} is archived; it sends nothing", conv.service_id),
            ));
        }
        Some(_) => {}
    }
    let new = req.into_outbound()?;
    let (message, _, created) = app
        .store
        .reply(Some(caller.organization().to_owned()), id, new)
        .await?;
    let status = if created {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(message)).into_response())
}

/// `POST /v1/admin/reload` (`admin`): re-reads the config file like SIGHUP. An invalid
/// config is refused with the lines `check-config` prints, and nothing changes.
#[utoipa::path(post, path = "/v1/admin/reload", tag = "admin",
    security(("bearer" = ["admin"])),
    responses(
        (status = 200, description = "The new config is in force", body = Reloaded),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 422, description = "The config file is invalid; nothing changed (`invalid_config`)", body = ConfigProblems),
        (status = 503, response = Unavailable),
    ))]
pub async fn reload(State(app): State<Arc<App>>, headers: HeaderMap) -> Result<Response, ApiError> {
    Caller::with_scope(&app, &headers, Scope::Admin)?;
    let (tx, rx) = tokio::sync::oneshot::channel();
    app.control
        .send(Control::Reload(Some(tx)))
        .map_err(|_| ApiError::unavailable("shutting down"))?;
    match rx.await {
        Ok(Ok(())) => Ok(Json(Reloaded {
            status: ReloadedStatus::Reloaded,
        })
        .into_response()),
        Ok(Err(problems)) => Ok((
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(ConfigProblems {
                error: ErrorDetail {
                    code: "invalid_config".into(),
                    message: problems.join("\n"),
                },
                problems,
            }),
        )
            .into_response()),
        Err(_) => Err(ApiError::unavailable("shutting down")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outbound(body: &str) -> Result<NewOutbound, ApiError> {
        body::json::<ReplyBody>(body.as_bytes())?.into_outbound()
    }

    #[test]
    fn reply_bodies_are_checked_field_by_field() {
        let ok = outbound(r#"{"text":"hi","idempotency_key":"k1"}"#).unwrap();
        assert_eq!(ok.author.kind, AuthorType::Agent);
        assert_eq!(ok.idempotency_key.as_deref(), Some("k1"));
        let err = |b: &str| outbound(b).unwrap_err().message;
        assert_eq!(err(r#"{"text":"  "}"#), "a reply needs text or attachments");
        assert_eq!(
            err(r#"{"attachments":[{"url":"ftp://x/y"}]}"#),
            "attachments[0].url must be an http(s) URL"
        );
        assert_eq!(
            err(r#"{"text":"x","author":{"type":"contact"}}"#),
            "author.type: expected agent or bot"
        );
        assert_eq!(
            err(r#"{"text":"x","idempotency_key":""}"#),
            "idempotency_key: 1-255 characters"
        );
        assert_eq!(
            outbound(r#"{"text":"x","extra":1}"#).unwrap_err().status,
            StatusCode::UNPROCESSABLE_ENTITY
        );
        // The limit is in characters, as the document says, not in UTF-8 bytes.
        let key = "é".repeat(MAX_KEY);
        let body = serde_json::json!({"text": "x", "idempotency_key": key}).to_string();
        assert!(outbound(&body).is_ok());
        let body = serde_json::json!({"text": "x", "idempotency_key": key + "é"}).to_string();
        assert!(outbound(&body).is_err());
    }

    /// schemathesis: `after=0` (which the document's pattern allows) was refused as
    /// "not a cursor"; it is the start of the list.
    #[test]
    fn after_zero_is_the_start() {
        assert_eq!(page(Some("0"), None).unwrap(), (0, DEFAULT_LIMIT));
        assert_eq!(page(Some(""), Some(7)).unwrap(), (0, 7));
        assert_eq!(page(Some("12"), None).unwrap(), (12, DEFAULT_LIMIT));
        assert!(page(Some("00"), None).is_err());
        assert!(page(Some("x"), None).is_err());
        assert!(page(None, Some(0)).is_err());
        assert!(page(None, Some(101)).is_err());
    }
}
