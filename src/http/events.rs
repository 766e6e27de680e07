//! `GET /v1/events`: the event log as a websocket, one event per text frame, resumable
//! from any `after=<seq>`. Ephemeral signals (`conversation.typing`) are interleaved live;
//! they carry no `seq` and are not replayed. A client resuming from before what event
//! retention pruned first gets an `events.pruned` frame (no `seq` either), then what
//! remains.
//!
//! Memory per client is bounded in bytes, not events: events are read from storage in
//! pages of at most [`PAGE_BYTES`] (plus the event that crosses it), and a client that
//! does not take a frame within [`BEHIND`] has the rest of its page dropped (read again
//! once it catches up), so a stalled client holds one frame. One that takes nothing for
//! `server.events_stall_timeout` is closed with code 1008 and a reason naming the
//! `after=` to resume from.

use std::collections::VecDeque;
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

/// Events read per page, at most.
const PAGE: u32 = 500;
/// Bytes of event data read per page, at most (plus the event that crosses it).
const PAGE_BYTES: usize = 256 * 1024;
/// A frame not taken within this means the client is behind: the rest of its page is
/// dropped, to be read again later.
const BEHIND: Duration = Duration::from_millis(100);
/// Ping an idle client this often, so proxies keep the connection.
const KEEPALIVE: Duration = Duration::from_secs(30);
/// The largest message a client may send us: it only ever sends pings and close frames.
const MAX_INCOMING: usize = 64 * 1024;
/// How long the close frame telling a stalled client why may take.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// The query of `GET /v1/events`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct EventsQuery {
    /// Resume after this sequence number (the `seq` of the last event seen); without it,
    /// the stream starts at the current head.
    #[param(value_type = Option<i64>, minimum = 0)]
    after: Option<String>,
    /// The bearer token, for websocket clients that cannot set headers.
    access_token: Option<String>,
}

/// Upgrades to the stream. Without `after`, the stream starts at the current head.
#[utoipa::path(get, path = "/v1/events", tag = "events",
    params(EventsQuery),
    security(("bearer" = ["read"]), ("access_token" = ["read"])),
    responses(
        (status = 101, description = "Switching to the websocket: each text frame is one event `{type, timestamp, seq, data}` of type `contact.created`, `conversation.created`, `conversation.routed` (first mirrored into its desk), `conversation.handoff` (moved to another desk: `data.from`, `data.to`, `data.reason`, `data.conversation`), `message.created`, `message.status` or `service.state` (or a live `conversation.typing` without seq)"),
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
    // The document says a number: an empty `after=` is refused here, as `after=x` is.
    if q.after.as_deref() == Some("") {
        return Err(ApiError::malformed(
            "after: expected a cursor this API issued (a number ≥ 0)",
        ));
    }
    let after = match body::cursor("after", q.after.as_deref())? {
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
    let server = app.config().server.clone();
    // Our frames are flushed one at a time, so the write buffer never holds more than
    // one; the cap only guards that (a frame may be several times `max_body` once
    // escaped as JSON).
    Ok(ws
        .write_buffer_size(0)
        .max_write_buffer_size(server.max_body.saturating_mul(8).saturating_add(PAGE_BYTES))
        .max_message_size(MAX_INCOMING)
        .max_frame_size(MAX_INCOMING)
        .on_upgrade(move |socket| {
            let client = Client {
                socket,
                stall: server.events_stall_timeout.0,
                after,
            };
            client.stream(app, organization)
        }))
}

/// One streaming client.
struct Client {
    socket: WebSocket,
    /// `server.events_stall_timeout`.
    stall: Duration,
    /// The last event it was sent.
    after: i64,
}

/// How sending a frame went.
enum Sent {
    /// It went out.
    Done,
    /// The client is gone.
    Gone,
    /// The client took nothing for the stall timeout.
    Stalled,
}

impl Client {
    async fn stream(mut self, app: Arc<App>, organization: String) {
        let mut head = app.store.subscribe_events();
        let mut live = app.ephemeral.subscribe();
        if let Some(frame) = pruned_frame(&app, &organization, self.after).await {
            match self.send_alone(Message::Text(frame.into())).await {
                Sent::Done => {}
                Sent::Gone | Sent::Stalled => return,
            }
        }
        loop {
            // Marks the head seen: whatever is committed after this read, `changed`
            // below reports.
            head.borrow_and_update();
            let rows = match app
                .store
                .read
                .events_after_within(Some(&organization), self.after, PAGE, PAGE_BYTES)
                .await
            {
                Ok(rows) => rows,
                Err(e) => {
                    tracing::warn!(error = %e, "event stream read failed");
                    self.close(1011, "storage unavailable".into()).await;
                    return;
                }
            };
            let bytes: usize = rows.iter().map(|r| r.data.len()).sum();
            let more = rows.len() as u32 == PAGE || bytes >= PAGE_BYTES;
            let mut page: VecDeque<_> = rows.into();
            let (total, mut sent) = (page.len(), 0);
            while let Some(row) = page.pop_front() {
                let seq = row.seq;
                let frame = Message::Text(row.body().into());
                drop(row);
                match self.send(frame, &mut page).await {
                    Sent::Done => (self.after, sent) = (seq, sent + 1),
                    Sent::Gone => return,
                    // Should the client read the close frame, it has read this one
                    // before it.
                    Sent::Stalled => return self.stalled(seq).await,
                }
            }
            // A full page, or one cut short because the client fell behind: read on.
            // Otherwise everything committed before the read went out.
            if more || sent < total {
                continue;
            }
            tokio::select! {
                changed = head.changed() => if changed.is_err() { return },
                ephemeral = live.recv() => match ephemeral {
                    Ok(e) if e.organization == organization => {
                        match self.send_alone(Message::Text(e.body.into())).await {
                            Sent::Done => {}
                            Sent::Gone => return,
                            Sent::Stalled => {
                                let after = self.after;
                                return self.stalled(after).await;
                            }
                        }
                    }
                    // Missed ephemeral frames are not worth a disconnect: they are only signals.
                    Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                },
                msg = self.socket.recv() => match msg {
                    None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                    Some(Ok(_)) => {}
                },
                _ = app.shutdown.cancelled() => {
                    self.close(1001, "shutting down".into()).await;
                    return;
                }
                _ = tokio::time::sleep(KEEPALIVE) => {
                    match self.send_alone(Message::Ping(Default::default())).await {
                        Sent::Done => {}
                        Sent::Gone => return,
                        Sent::Stalled => {
                                let after = self.after;
                                return self.stalled(after).await;
                            }
                    }
                }
            }
        }
    }

    /// Sends `frame`; if the client does not take it within [`BEHIND`], drops the rest
    /// of `page` (only this frame stays in memory) and waits out the stall timeout.
    async fn send<T>(&mut self, frame: Message, page: &mut VecDeque<T>) -> Sent {
        let send = self.socket.send(frame);
        tokio::pin!(send);
        let first = tokio::time::timeout(BEHIND, &mut send).await;
        let result = match first {
            Ok(r) => r,
            Err(_) => {
                *page = VecDeque::new();
                match tokio::time::timeout(self.stall.saturating_sub(BEHIND), &mut send).await {
                    Ok(r) => r,
                    Err(_) => return Sent::Stalled,
                }
            }
        };
        match result {
            Ok(()) => Sent::Done,
            Err(_) => Sent::Gone,
        }
    }

    /// Sends a frame that is not part of a page.
    async fn send_alone(&mut self, frame: Message) -> Sent {
        self.send(frame, &mut VecDeque::<()>::new()).await
    }

    /// Closes a stalled client, saying why and where to resume (`after`: the last event
    /// queued before the close frame); it may never read it.
    async fn stalled(mut self, after: i64) {
        tracing::info!(
            after,
            "closing an event stream whose client stopped reading"
        );
        let reason = format!(
            "too slow: no frame taken for {}; resume with after={after}",
            humantime::format_duration(self.stall),
        );
        self.close(1008, reason).await;
    }

    async fn close(&mut self, code: u16, reason: String) {
        let frame = Message::Close(Some(CloseFrame {
            code,
            reason: reason.into(),
        }));
        let _ = tokio::time::timeout(CLOSE_GRACE, self.socket.send(frame)).await;
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
