//! The bodies the HTTP API answers with, as types: the handlers serialize them and
//! `/v1/openapi.json` derives its schemas from them, so the two cannot drift apart.

use jiff::Timestamp;
use serde::Serialize;
use switchboard_core::ConnState;
use utoipa::{ToResponse, ToSchema};

use crate::store::ServiceInfo;

/// The contract's error body: `{"error": {"code", "message"}}`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: ErrorDetail,
}

/// The inside of an [`ErrorBody`].
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// A stable snake_case code: `malformed` (400), `unauthorized` (401), `forbidden`
    /// (403), `not_found` (404), `method_not_allowed` (405), `conflict`, `service_gone`,
    /// `service_archived` (409), `too_large` (413), `invalid`, `invalid_config` (422),
    /// `internal` (500), `unavailable` (503).
    #[schema(example = "not_found")]
    pub code: String,
    /// For humans; names the offending field or parameter where there is one.
    #[schema(example = "conversation not found")]
    pub message: String,
}

/// `422` from `POST /v1/admin/reload`: the config file is invalid and nothing changed.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ConfigProblems {
    /// `invalid_config`, with every problem in the message, one per line.
    pub error: ErrorDetail,
    /// One line per problem, each naming its key (as `switchboard check-config` prints).
    pub problems: Vec<String>,
}

/// A page of a list: the items and the cursor of the next page.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Page<T> {
    /// At most `limit` items, in id order.
    pub data: Vec<T>,
    /// Pass as `after` for the next page; null on the last page.
    pub next: Option<String>,
}

impl<T> Page<T> {
    /// A page of `items` asked for with `limit`: a full page has a next cursor (the last
    /// item's id), a short one is the last.
    pub fn new(items: Vec<T>, limit: u32, id: impl Fn(&T) -> &str) -> Self {
        let next = if items.len() as u32 == limit {
            items.last().map(|i| id(i).to_owned())
        } else {
            None
        };
        Page { data: items, next }
    }
}

/// `GET /v1/services`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ServiceList {
    /// The caller's organization's configured services, in id order.
    pub data: Vec<ServiceView>,
}

/// A service's lifecycle status as the API shows it: the configured one, except that an
/// active service outside its date window shows `disabled` and a drained
/// `pendingArchive` one `archived`.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[allow(dead_code)]
pub enum ServiceStatusName {
    /// Known, not started.
    #[serde(rename = "queued")]
    Queued,
    /// Running.
    #[serde(rename = "active")]
    Active,
    /// Stopped; its webhooks answer 404.
    #[serde(rename = "disabled")]
    Disabled,
    /// No new conversations; its outbox drains, then it is archived.
    #[serde(rename = "pendingArchive")]
    PendingArchive,
    /// Stopped; its data is kept.
    #[serde(rename = "archived")]
    Archived,
}

/// One service with its live connection state.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ServiceView {
    /// The service id of the config (`[a-z0-9_]+`).
    #[schema(example = "website_chat")]
    pub id: String,
    /// The connector type (`api`, `webhook`, `smartsupp`, `twilio`, …).
    #[serde(rename = "type")]
    #[schema(example = "smartsupp")]
    pub kind: String,
    /// For humans.
    pub name: Option<String>,
    /// Lifecycle status.
    #[schema(value_type = ServiceStatusName)]
    pub status: String,
    /// The tenant owning it.
    pub organization: String,
    /// The connection's state and since when.
    pub state: LiveState,
    /// The id of the instance holding the service's lease (running its connection and
    /// dispatcher: `server.instance_id`), or null when none does (it does not run, or
    /// it is between two holders).
    #[schema(example = "switchboard-1")]
    pub instance: Option<String>,
}

/// A connection state with the instant it was entered.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LiveState {
    /// `kind` and, for `backoff` and `failed`, its details.
    #[serde(flatten)]
    pub state: ConnState,
    /// When the service entered this state.
    #[schema(value_type = String, format = DateTime)]
    pub since: Timestamp,
}

impl ServiceView {
    /// The view of a service in `state` since `since` (unix ms).
    pub fn new(info: &ServiceInfo, state: &ConnState, since: i64) -> Self {
        ServiceView {
            id: info.id.clone(),
            kind: info.kind.clone(),
            name: info.name.clone(),
            status: info.status.clone(),
            organization: info.organization.clone(),
            state: LiveState {
                state: state.clone(),
                since: crate::store::rows::ts(since),
            },
            instance: None,
        }
    }
}

/// `GET /healthz`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Health {
    /// Always `ok`: the process answers.
    pub status: HealthStatus,
}

/// The one value of [`Health::status`].
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum HealthStatus {
    /// The process runs.
    Ok,
}

/// `GET /readyz`, both when ready (200) and not (503).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Readiness {
    /// Ready when storage answers, every running service is connected (or in its first
    /// backoff) and the daemon is not shutting down.
    pub status: ReadyStatus,
    /// Whether the database answers.
    pub storage: StorageStatus,
    /// The running services that are not ready (empty when ready).
    pub services: Vec<NotReady>,
}

/// [`Readiness::status`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReadyStatus {
    /// 200.
    Ready,
    /// 503.
    NotReady,
}

/// [`Readiness::storage`].
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StorageStatus {
    /// The database answers queries.
    Ok,
    /// It does not.
    Unavailable,
}

/// A running service that keeps the daemon from being ready.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct NotReady {
    /// Its id.
    pub id: String,
    /// Its connection state's `kind` (`connecting`, `backoff`, `failed`, …).
    pub state: String,
}

/// `POST /v1/admin/reload`'s success.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Reloaded {
    /// Always `reloaded`.
    pub status: ReloadedStatus,
}

/// The one value of [`Reloaded::status`].
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReloadedStatus {
    /// The new config is in force.
    Reloaded,
}

/// The author of a reply, as the document gives it: an agent (the default) or a bot.
/// (Replies deserialize into [`switchboard_core::Author`] and are checked in
/// `v1::ReplyBody::into_outbound`; this type only describes what that accepts.)
#[derive(Debug, Clone, Serialize, ToSchema)]
#[allow(dead_code)]
pub struct ReplyAuthor {
    /// `agent` or `bot`.
    #[serde(rename = "type")]
    pub kind: ReplyAuthorType,
    /// Display name.
    pub name: Option<String>,
}

/// [`ReplyAuthor::kind`].
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum ReplyAuthorType {
    /// A human agent.
    Agent,
    /// A bot.
    Bot,
}

/// Reusable error answers, referenced by the operations that can give them.
pub mod answers {
    use super::*;

    /// 400: the request is not what the API can read (not JSON, a bad query parameter).
    #[derive(ToResponse)]
    #[response(description = "Malformed: not JSON, or a bad query parameter (`malformed`)")]
    pub struct Malformed(#[to_schema] pub ErrorBody);

    /// 401: no credentials, or not valid ones.
    #[derive(ToResponse)]
    #[response(
        description = "Missing or unknown bearer token, or a bad signature (`unauthorized`)"
    )]
    pub struct Unauthorized(#[to_schema] pub ErrorBody);

    /// 403: the token lacks the scope.
    #[derive(ToResponse)]
    #[response(description = "The token lacks the scope the operation needs (`forbidden`)")]
    pub struct Forbidden(#[to_schema] pub ErrorBody);

    /// 404.
    #[derive(ToResponse)]
    #[response(description = "No such object in the caller's organization (`not_found`)")]
    pub struct NotFound(#[to_schema] pub ErrorBody);

    /// 413.
    #[derive(ToResponse)]
    #[response(description = "The body exceeds `server.max_body` (`too_large`)")]
    pub struct TooLarge(#[to_schema] pub ErrorBody);

    /// 422.
    #[derive(ToResponse)]
    #[response(
        description = "JSON of the wrong shape or content; the message names the field (`invalid`)"
    )]
    pub struct Invalid(#[to_schema] pub ErrorBody);

    /// 503.
    #[derive(ToResponse)]
    #[response(
        description = "Shutting down, or storage is unavailable; nothing was stored (`unavailable`)",
        headers(("retry-after" = u32, description = "Seconds to wait before retrying"))
    )]
    pub struct Unavailable(#[to_schema] pub ErrorBody);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::service_json;

    /// The service view of the API and the `service` object of `service.state` events
    /// (built by the store) must stay one shape, but for the view's `instance` (which
    /// instance holds the lease: an event is recorded by its holder).
    #[test]
    fn service_view_matches_the_event_object() {
        let info = ServiceInfo {
            id: "chat".into(),
            kind: "smartsupp".into(),
            name: Some("Chat".into()),
            status: "active".into(),
            organization: "default".into(),
        };
        let states = [
            ConnState::Stopped,
            ConnState::Connecting,
            ConnState::Connected,
            ConnState::Backoff {
                attempt: 3,
                until: Timestamp::from_second(1_800_000_000).unwrap(),
            },
            ConnState::Failed {
                reason: "refused".into(),
            },
        ];
        for state in states {
            let mut view =
                serde_json::to_value(ServiceView::new(&info, &state, 1_700_000_000_123)).unwrap();
            let instance = view.as_object_mut().unwrap().remove("instance");
            assert_eq!(instance, Some(serde_json::Value::Null), "always present");
            assert_eq!(
                view,
                service_json(&info, &state, 1_700_000_000_123),
                "{state:?}"
            );
        }
    }

    #[test]
    fn a_full_page_has_a_cursor_and_a_short_one_none() {
        let ids = |n: usize| (1..=n).map(|i| i.to_string()).collect::<Vec<_>>();
        assert_eq!(Page::new(ids(3), 3, |s| s).next.as_deref(), Some("3"));
        assert_eq!(Page::new(ids(2), 3, |s| s).next, None);
        assert_eq!(Page::new(ids(0), 3, |s| s).next, None);
    }
}
