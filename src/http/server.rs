//! The listener: accepts connections within `server.max_connections` and
//! `server.max_connections_per_peer`, and serves each with HTTP/1.1 only, under the
//! header-read and write timeouts. Refusals are answered 503, counted, and logged at
//! most every few seconds.
//!
//! Cleartext HTTP/2 (h2c) is not served: every provider calls with HTTP/1.1, and
//! `axum::serve`, which this replaces, spoke h2c to anyone who asked (hyper-util's
//! automatic protocol detection, switched on by reqwest's `http2` feature), where one
//! connection carries hundreds of streams past any per-connection limit.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::pin::pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

use super::stall::WriteDeadline;
use crate::app::App;

/// Descriptors a configured `server.max_connections` must leave for storage, outgoing
/// requests and XMPP streams.
pub const FD_RESERVE: u64 = 128;

/// How often a refusal is logged at most; the line counts those in between.
const REFUSAL_LOG_EVERY: Duration = Duration::from_secs(10);

/// What a 503 refusal sends before closing.
const REFUSAL: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nconnection: close\r\n\
content-type: application/json\r\nretry-after: 1\r\ncontent-length: 78\r\n\r\n\
{\"error\":{\"code\":\"unavailable\",\"message\":\"too many connections; retry later\"}}";

/// The listen backlog: a burst of connections waits in the kernel for the accept loop
/// instead of being dropped (Linux caps it at `net.core.somaxconn`, 4096 by default).
const BACKLOG: u32 = 4096;

/// Binds the listener, with [`BACKLOG`].
pub fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(BACKLOG)
}

/// Raises the soft open-file limit to the hard one, as the unit's `LimitNOFILE=` allows,
/// and returns the limit in force.
pub fn raise_fd_limit() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 1024;
        }
        if lim.rlim_cur < lim.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                lim.rlim_cur = lim.rlim_max;
            }
        }
    }
    lim.rlim_cur
}

/// The connection cap for an open-file limit of `nofile`: `configured` if it leaves
/// [`FD_RESERVE`] descriptors, else an error naming the key; three quarters of the
/// limit when not configured.
pub fn connection_cap(configured: Option<usize>, nofile: u64) -> Result<usize, String> {
    let room = nofile.saturating_sub(FD_RESERVE);
    match configured {
        Some(n) if n as u64 > room => Err(format!(
            "server.max_connections: {n} leaves too few of the {nofile} open files this process may have \
             (at most {room}); raise LimitNOFILE or lower it"
        )),
        Some(n) => Ok(n),
        None => Ok(usize::try_from(nofile / 4 * 3).unwrap_or(usize::MAX).max(1)),
    }
}

/// Open connections, in total and per peer address.
#[derive(Debug, Default)]
struct Tally {
    open: AtomicUsize,
    peers: Mutex<HashMap<IpAddr, usize>>,
}

/// One accepted connection's place in the [`Tally`]; given back when the socket closes.
struct Slot {
    tally: Arc<Tally>,
    peer: IpAddr,
    app: Arc<App>,
}

/// Why a connection was refused (the metric's `reason` label).
#[derive(Debug, Clone, Copy)]
enum Refused {
    Total,
    Peer,
}

impl Tally {
    fn take(
        self: &Arc<Self>,
        app: &Arc<App>,
        peer: IpAddr,
        cap: usize,
        per_peer: usize,
    ) -> Result<Slot, Refused> {
        let mut peers = self.peers.lock().expect("peers lock");
        if self.open.load(Ordering::Relaxed) >= cap {
            return Err(Refused::Total);
        }
        let mine = peers.entry(peer).or_default();
        if *mine >= per_peer {
            return Err(Refused::Peer);
        }
        *mine += 1;
        let open = self.open.fetch_add(1, Ordering::Relaxed) + 1;
        app.metrics.set_http_connections(open);
        Ok(Slot {
            tally: self.clone(),
            peer,
            app: app.clone(),
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut peers = self.tally.peers.lock().expect("peers lock");
        if let Some(n) = peers.get_mut(&self.peer) {
            *n -= 1;
            if *n == 0 {
                peers.remove(&self.peer);
            }
        }
        let open = self.tally.open.fetch_sub(1, Ordering::Relaxed) - 1;
        self.app.metrics.set_http_connections(open);
    }
}

/// Logs refusals at most every [`REFUSAL_LOG_EVERY`], with how many there were.
#[derive(Debug, Default)]
struct RefusalLog {
    last: Option<Instant>,
    since: u64,
}

impl RefusalLog {
    fn note(&mut self, what: impl FnOnce(u64)) {
        self.since += 1;
        if self.last.is_none_or(|t| t.elapsed() >= REFUSAL_LOG_EVERY) {
            what(self.since);
            self.last = Some(Instant::now());
            self.since = 0;
        }
    }
}

/// Serves `router` on `listener` until `app.shutdown` fires, then lets every
/// connection finish its request in flight and returns once all are closed. The limits
/// are those of the config in force when a connection arrives; `fd_limit` is the
/// open-file limit `server.max_connections` was checked against.
pub async fn serve(listener: TcpListener, router: Router, app: Arc<App>, fd_limit: u64) {
    let tally = Arc::new(Tally::default());
    let connections = TaskTracker::new();
    // One per limit, so a flood against one does not hide the other.
    let mut refusals = [RefusalLog::default(), RefusalLog::default()];
    let mut accept_errors = RefusalLog::default();
    loop {
        let (stream, peer) = tokio::select! {
            _ = app.shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of descriptors (EMFILE) or a connection reset before it was
                    // taken: wait a moment instead of spinning on the same error.
                    accept_errors.note(|n| tracing::warn!(error = %e, errors = n, "accepting a connection failed"));
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let server = app.config().server.clone();
        // Checked at start and on reload: a value that does not fit was refused.
        let cap = connection_cap(server.max_connections, fd_limit)
            .or_else(|_| connection_cap(None, fd_limit))
            .unwrap_or(1);
        let slot = match tally.take(
            &app,
            peer.ip().to_canonical(),
            cap,
            server.max_connections_per_peer,
        ) {
            Ok(slot) => slot,
            Err(why) => {
                refuse(
                    &app,
                    stream,
                    peer,
                    why,
                    cap,
                    &server,
                    &mut refusals[why as usize],
                );
                continue;
            }
        };
        let router = router.clone();
        let app = app.clone();
        connections.spawn(async move { connection(stream, slot, router, &app, &server).await });
    }
    // No new connections from here on; the kernel refuses them once the socket closes.
    drop(listener);
    connections.close();
    connections.wait().await;
}

fn refuse(
    app: &App,
    stream: TcpStream,
    peer: SocketAddr,
    why: Refused,
    cap: usize,
    server: &crate::config::ServerConfig,
    log: &mut RefusalLog,
) {
    let reason = match why {
        Refused::Total => "max_connections",
        Refused::Peer => "max_connections_per_peer",
    };
    app.metrics.http_connection_refused(reason);
    log.note(|n| match why {
        Refused::Total => tracing::warn!(
            refused = n,
            limit = cap,
            "refusing connections: server.max_connections are open"
        ),
        Refused::Peer => tracing::warn!(
            refused = n, peer = %peer.ip(), limit = server.max_connections_per_peer,
            "refusing connections: server.max_connections_per_peer are open from this address"
        ),
    });
    // Best effort and never waiting: a peer that does not read gets a closed socket.
    let _ = stream.try_write(REFUSAL);
}

/// Serves one connection until it closes, its peer stalls a response past
/// `write_timeout`, or shutdown lets its last request finish.
async fn connection(
    stream: TcpStream,
    slot: Slot,
    router: Router,
    app: &App,
    server: &crate::config::ServerConfig,
) {
    let _ = stream.set_nodelay(true);
    // The slot goes with the socket: a websocket keeps it after hyper lets go.
    let io = TokioIo::new(WriteDeadline::new(stream, server.write_timeout.0).holding(slot));
    let service = TowerToHyperService::new(
        router.map_request(|req: http::Request<Incoming>| req.map(Body::new)),
    );
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(server.header_read_timeout.0)
        .keep_alive(true);
    let mut conn = pin!(builder.serve_connection(io, service).with_upgrades());
    let mut draining = false;
    loop {
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(error = %e, "connection closed with an error");
                }
                return;
            }
            _ = app.shutdown.cancelled(), if !draining => {
                draining = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_caps_leave_descriptors() {
        assert_eq!(connection_cap(None, 1024), Ok(768));
        assert_eq!(connection_cap(Some(896), 1024), Ok(896));
        let err = connection_cap(Some(900), 1024).unwrap_err();
        assert!(
            err.starts_with("server.max_connections: 900 leaves too few"),
            "{err}"
        );
    }

    #[test]
    fn the_refusal_is_well_formed_http() {
        let text = std::str::from_utf8(REFUSAL).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length: "))
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(body.len(), len);
        serde_json::from_str::<serde_json::Value>(body).unwrap();
    }
}
