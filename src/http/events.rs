//! `GET /v1/events`: the event log as a websocket, one event per text frame, resumable
//! from any `after=<seq>`. Ephemeral signals (`conversation.typing`) are interleaved live;
//! they carry no `seq` and are not replayed. Events are read from storage in pages, so a slow client only
//! slows its own reads and nothing is buffered on its behalf.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde::Deserialize;
use switchboard_core::Scope;

use super::auth::Caller;
use super::body;
use super::error::ApiError;
use super::schema::ErrorBody;
use super::schema::answers::{Forbidden, Malformed, Unauthorized, Unavailable};
use crate::app::App;

/// Events read per page.
const PAGE: u32 = 500;
/// Ping an idle client this often, so proxies keep the connection.
const KEEPALIVE: Duration = Duration::from_secs(30);

/// The query of `GET /v1/events`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct EventsQuery {
    /// Resume after this sequence number (the `seq` of the last event seen); without it,
    /// the stream starts at the current head.
    #[param(minimum = 0)]
    after: Option<i64>,
    /// The bearer token, for websocket clients that cannot set headers.
    access_token: Option<String>,
}

/// Upgrades to the stream. Without `after`, the stream starts at the current head.
#[utoipa::path(get, path = "/v1/events", tag = "events",
    params(EventsQuery),
    security(("bearer" = ["read"]), ("access_token" = ["read"])),
    responses(
        (status = 101, description = "Switching to the websocket: each text frame is one event `{type, timestamp, seq, data}` (or a live `conversation.typing` without seq)"),
        (status = 400, response = Malformed),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 426, description = "Authenticated, but not a websocket upgrade request (`upgrade_required`)", body = ErrorBody),
        (status = 503, response = Unavailable),
    ))]
pub async fn events(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let q: EventsQuery = body::query(q.as_deref())?;
    let caller = Caller::authenticate(&app, &headers, q.access_token.as_deref())?;
    caller.require(Scope::Read)?;
    let after = match q.after {
        Some(a) if a < 0 => {
            return Err(ApiError::malformed("after: expected a sequence number ≥ 0"));
        }
        Some(a) => a,
        None => *app.store.subscribe_events().borrow(),
    };
    // Credentials and the query first: a plain GET learns nothing before they pass.
    let ws = ws.map_err(|e| {
        ApiError::new(
            axum::http::StatusCode::UPGRADE_REQUIRED,
            "upgrade_required",
            format!("a websocket upgrade is required: {e}"),
        )
    })?;
    let organization = caller.organization().to_owned();
    Ok(ws.on_upgrade(move |socket| stream(socket, app, organization, after)))
}

async fn stream(mut socket: WebSocket, app: Arc<App>, organization: String, mut after: i64) {
    let mut head = app.store.subscribe_events();
    let mut live = app.ephemeral.subscribe();
    loop {
        let rows = match app
            .store
            .read
            .events_after(Some(&organization), after, PAGE)
            .await
        {
            Ok(rows) => rows,
            Err(e) => {
                tracing::warn!(error = %e, "event stream read failed");
                let _ = socket
                    .send(Message::Close(Some(CloseFrame {
                        code: 1011,
                        reason: "storage unavailable".into(),
                    })))
                    .await;
                return;
            }
        };
        let full = rows.len() as u32 == PAGE;
        for row in rows {
            if socket.send(Message::Text(row.body().into())).await.is_err() {
                return;
            }
            after = row.seq;
        }
        if full {
            continue;
        }
        head.mark_unchanged();
        if *head.borrow() > after {
            continue;
        }
        tokio::select! {
            changed = head.changed() => if changed.is_err() { return },
            ephemeral = live.recv() => match ephemeral {
                Ok(e) if e.organization == organization => {
                    if socket.send(Message::Text(e.body.into())).await.is_err() {
                        return;
                    }
                }
                // Missed ephemeral frames are not worth a disconnect: they are only signals.
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            },
            msg = socket.recv() => match msg {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                Some(Ok(_)) => {}
            },
            _ = app.shutdown.cancelled() => {
                let _ = socket
                    .send(Message::Close(Some(CloseFrame { code: 1001, reason: "shutting down".into() })))
                    .await;
                return;
            }
            _ = tokio::time::sleep(KEEPALIVE) => {
                if socket.send(Message::Ping(Default::default())).await.is_err() {
                    return;
                }
            }
        }
    }
}
