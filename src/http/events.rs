//! `GET /v1/events`: the event log as a websocket, one event per text frame, resumable
//! from any `after=<seq>`. Ephemeral signals (`conversation.typing`) are interleaved live;
//! they carry no `seq` and are not replayed. A client resuming from before what event
//! retention pruned first gets an `events.pruned` frame (no `seq` either), then what
//! remains. Events are read from storage in pages, so a slow client only
//! slows its own reads and nothing is buffered on its behalf.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde::Deserialize;
use switchboard_core::Scope;

use super::auth::Caller;
use super::body;
use super::error::ApiError;
use crate::app::App;

/// Events read per page.
const PAGE: u32 = 500;
/// Ping an idle client this often, so proxies keep the connection.
const KEEPALIVE: Duration = Duration::from_secs(30);

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EventsQuery {
    after: Option<i64>,
    access_token: Option<String>,
}

/// Upgrades to the stream. Without `after`, the stream starts at the current head.
pub async fn events(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
    ws: WebSocketUpgrade,
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
    let organization = caller.organization().to_owned();
    Ok(ws.on_upgrade(move |socket| stream(socket, app, organization, after)))
}

async fn stream(mut socket: WebSocket, app: Arc<App>, organization: String, mut after: i64) {
    let mut head = app.store.subscribe_events();
    let mut live = app.ephemeral.subscribe();
    if let Some(frame) = pruned_frame(&app, &organization, after).await
        && socket.send(Message::Text(frame.into())).await.is_err()
    {
        return;
    }
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

/// The frame telling a client that resumes after `after` that retention pruned some of
/// its organization's events after that (up to `pruned_through`): what it gets next is
/// what remains. The data it missed (messages, conversations) is still in `/v1`.
async fn pruned_frame(app: &App, organization: &str, after: i64) -> Option<String> {
    let pruned_through = match app.store.read.pruned_through(organization).await {
        Ok(p) => p,
        Err(e) => {
            tracing::debug!(error = %e, "reading the retention horizon failed");
            return None;
        }
    };
    (after < pruned_through).then(|| {
        serde_json::json!({
            "type": "events.pruned",
            "timestamp": jiff::Timestamp::now(),
            "data": {"after": after, "pruned_through": pruned_through},
        })
        .to_string()
    })
}
