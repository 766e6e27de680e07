//! `GET /v1/openapi.json`: the OpenAPI 3.1 document, derived by utoipa from the handlers'
//! annotations and the types they answer with ([`super::schema`], the core's objects).
//! A test below holds it to the router: every route is documented, and nothing else.

use std::sync::OnceLock;

use axum::http::header;
use axum::response::{IntoResponse, Response};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::schema;

/// The document, from every handler that the router serves.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "switchboard",
        description = "Chat providers bridged into one REST API, event stream and signed webhooks. \
            Errors are `{\"error\": {\"code\", \"message\"}}`; ids are opaque strings; times are RFC 3339 UTC.",
    ),
    paths(
        super::health::healthz,
        super::health::readyz,
        super::health::metrics,
        super::hooks::root,
        super::hooks::sub,
        super::v1::services,
        super::v1::ingest,
        super::v1::conversations,
        super::v1::conversation,
        super::v1::conversation_messages,
        super::v1::reply,
        super::handoff::handoff,
        super::v1::message,
        super::events::events,
        super::v1::reload,
        super::admin::deliveries,
        super::admin::retry,
        super::admin::retry_dead,
        openapi_json,
        super::status::page,
        super::status::live,
        super::status::login_form,
        super::status::login,
        super::status::logout,
        super::status::dead::page,
        super::status::dead::retry,
        super::status::dead::retry_dead,
        super::status::stylesheet,
        super::status::script,
    ),
    components(
        schemas(schema::ErrorBody, super::admin::StateFilter),
        responses(
            schema::answers::Malformed,
            schema::answers::Unauthorized,
            schema::answers::Forbidden,
            schema::answers::NotFound,
            schema::answers::TooLarge,
            schema::answers::Invalid,
            schema::answers::Unavailable,
        )
    ),
    modifiers(&Security, &TextOrAttachments),
    tags(
        (name = "health", description = "Liveness, readiness and metrics; no credentials"),
        (name = "hooks", description = "Provider webhooks, authenticated by the provider's own signature or secret; only their error answers are switchboard's"),
        (name = "services", description = "The configured services and their live state"),
        (name = "conversations", description = "Conversations, their messages, and replies"),
        (name = "messages", description = "Single messages, and inbound messages through an api service"),
        (name = "events", description = "The event log as a websocket"),
        (name = "admin", description = "Operator actions (`admin` scope)"),
        (name = "meta", description = "This document"),
        (name = "status", description = "The operator's status page (HTML): an admin token as bearer, or the login form's session cookie"),
    )
)]
pub struct ApiDoc;

/// The security schemes the operations refer to.
struct Security;

impl Modify for Security {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "A token of an api service (`params.tokens.<name>`); its scopes are \
                         read, reply, ingest, admin",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                "sb_session",
                "The status page's session, set by POST /status/login (HttpOnly, SameSite=Strict)",
            ))),
        );
        components.add_security_scheme(
            "access_token",
            SecurityScheme::ApiKey(ApiKey::Query(ApiKeyValue::with_description(
                "access_token",
                "The same token as a query parameter, for websocket clients that cannot set headers",
            ))),
        );
    }
}

/// The one rule of message bodies that the derived schemas cannot carry: text or
/// attachments. For inbound messages (`validate_inbound`) a non-empty text; for replies
/// (`ReplyBody::into_outbound`) one that is not blank.
struct TextOrAttachments;

impl Modify for TextOrAttachments {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::schema::{AnyOfBuilder, ArrayBuilder, ObjectBuilder, Schema};
        use utoipa::openapi::{RefOr, Type};
        let Some(schemas) = doc.components.as_mut().map(|c| &mut c.schemas) else {
            return;
        };
        for (name, text) in [
            (
                "InboundMessage",
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .min_length(Some(1)),
            ),
            (
                "ReplyBody",
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .pattern(Some(r"\S")),
            ),
        ] {
            let Some(RefOr::T(Schema::Object(object))) = schemas.get(name).cloned() else {
                continue;
            };
            let with_text = ObjectBuilder::new().property("text", text).required("text");
            let with_attachments = ObjectBuilder::new()
                .property("attachments", ArrayBuilder::new().min_items(Some(1)))
                .required("attachments");
            let rule = AnyOfBuilder::new().item(with_text).item(with_attachments);
            let both = utoipa::openapi::schema::AllOfBuilder::new()
                .item(Schema::Object(object))
                .item(rule)
                .build();
            schemas.insert(name.to_owned(), RefOr::T(Schema::AllOf(both)));
        }
    }
}

/// The document as served.
pub fn document() -> serde_json::Value {
    let mut doc = serde_json::to_value(ApiDoc::openapi()).expect("the document serializes");
    camel_case_links(&mut doc);
    doc
}

/// utoipa 5 spells the Link Object's fields in snake_case (`operation_id`), which no
/// client reads; OpenAPI's are camelCase. (Fixed in utoipa 6, which needs Rust 1.88.)
fn camel_case_links(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(m) => {
            if let Some(serde_json::Value::Object(links)) = m.get_mut("links") {
                for link in links.values_mut() {
                    if let serde_json::Value::Object(link) = link {
                        for (from, to) in [
                            ("operation_id", "operationId"),
                            ("operation_ref", "operationRef"),
                            ("request_body", "requestBody"),
                        ] {
                            if let Some(x) = link.remove(from) {
                                link.insert(to.to_owned(), x);
                            }
                        }
                    }
                }
            }
            m.values_mut().for_each(camel_case_links);
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(camel_case_links),
        _ => {}
    }
}

/// `GET /v1/openapi.json`.
#[utoipa::path(get, path = "/v1/openapi.json", tag = "meta",
    responses(
        (status = 200, description = "This OpenAPI 3.1 document", body = Object),
        (status = 503, response = schema::answers::Unavailable),
    ))]
pub async fn openapi_json() -> Response {
    static JSON: OnceLock<String> = OnceLock::new();
    let body = JSON.get_or_init(|| {
        serde_json::to_string_pretty(&document()).expect("the OpenAPI document serializes")
    });
    ([(header::CONTENT_TYPE, "application/json")], body.as_str()).into_response()
}

#[cfg(test)]
mod tests;
