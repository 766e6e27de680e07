//! A recording webhook or callback target, and the Standard Webhooks signature checked
//! here, independently of switchboard's code.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::FakeServer;

/// One request a [`Receiver`] got.
#[derive(Debug, Clone)]
pub struct Received {
    /// The path it was posted to (the query left out).
    pub path: String,
    /// Headers as sent: signatures and ids are checked here.
    pub headers: HeaderMap,
    /// The body, byte for byte (signatures cover these bytes).
    pub body: Bytes,
}

impl Received {
    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap()
    }

    /// A header as text.
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap())
            .unwrap_or("")
    }
}

/// A fake HTTP endpoint on 127.0.0.1:0 that records every request and answers 200,
/// or 503 while `failing` is set; while `holding` is set, requests wait (up to 10 s)
/// before they are answered, and `held` counts those waiting.
pub struct Receiver {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Recorded requests, oldest first (failed ones included).
    pub got: Arc<Mutex<Vec<(Received, u16)>>>,
    /// Answer 503 while true.
    pub failing: Arc<std::sync::atomic::AtomicBool>,
    /// Keep requests waiting while true.
    pub holding: Arc<std::sync::atomic::AtomicBool>,
    /// Requests waiting now.
    pub held: Arc<std::sync::atomic::AtomicUsize>,
    server: FakeServer,
}

impl Receiver {
    /// Starts a receiver.
    pub async fn start() -> Receiver {
        Self::start_on("127.0.0.1:0").await
    }

    /// Starts a receiver on a given address (to come back on the same port).
    pub async fn start_on(addr: &str) -> Receiver {
        let got: Arc<Mutex<Vec<(Received, u16)>>> = Default::default();
        let failing: Arc<std::sync::atomic::AtomicBool> = Default::default();
        let holding: Arc<std::sync::atomic::AtomicBool> = Default::default();
        let held: Arc<std::sync::atomic::AtomicUsize> = Default::default();
        let (g, f, h, n) = (got.clone(), failing.clone(), holding.clone(), held.clone());
        let app = axum::Router::new().fallback(
            move |uri: axum::http::Uri, headers: HeaderMap, body: Bytes| {
                let (g, f, h, n) = (g.clone(), f.clone(), h.clone(), n.clone());
                async move {
                    use std::sync::atomic::Ordering::SeqCst;
                    if h.load(SeqCst) {
                        n.fetch_add(1, SeqCst);
                        let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
                        while h.load(SeqCst) && std::time::Instant::now() < until {
                            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                        }
                        n.fetch_sub(1, SeqCst);
                    }
                    let status = if f.load(std::sync::atomic::Ordering::SeqCst) {
                        StatusCode::SERVICE_UNAVAILABLE
                    } else {
                        StatusCode::OK
                    };
                    g.lock().unwrap().push((
                        Received {
                            path: uri.path().to_owned(),
                            headers,
                            body,
                        },
                        status.as_u16(),
                    ));
                    status
                }
            },
        );
        let server = FakeServer::spawn_on(addr, app).await;
        Receiver {
            addr: server.addr,
            got,
            failing,
            holding,
            held,
            server,
        }
    }

    /// `http://addr{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Requests answered 2xx.
    pub fn accepted(&self) -> Vec<Received> {
        self.got
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, s)| *s < 300)
            .map(|(r, _)| r.clone())
            .collect()
    }

    /// The accepted deliveries' bodies by `webhook-id`. Panics if a redelivery's body
    /// differs from the first delivery's: the same id is the same event.
    pub fn by_webhook_id(&self) -> std::collections::BTreeMap<String, serde_json::Value> {
        let mut by_id = std::collections::BTreeMap::new();
        for r in self.accepted() {
            let body = r.json();
            if let Some(first) = by_id.get(r.header("webhook-id")) {
                assert_eq!(first, &body, "a redelivery carries the same event");
            }
            by_id.insert(r.header("webhook-id").to_owned(), body);
        }
        by_id
    }

    /// All requests, with the status they got.
    pub fn all(&self) -> Vec<(Received, u16)> {
        self.got.lock().unwrap().clone()
    }

    /// Stops listening (the port closes).
    pub async fn stop(self) {
        self.server.stop().await
    }
}

/// Checks a Standard Webhooks signature, computed here independently of switchboard.
pub fn verify_standard_webhook(secret: &str, r: &Received) -> bool {
    let key = B64.decode(secret.strip_prefix("whsec_").unwrap()).unwrap();
    let id = r.header("webhook-id");
    let ts = r.header("webhook-timestamp");
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{id}.{ts}.").as_bytes());
    mac.update(&r.body);
    let expected = format!("v1,{}", B64.encode(mac.finalize().into_bytes()));
    let fresh = ts
        .parse::<i64>()
        .is_ok_and(|t| (t - jiff::Timestamp::now().as_second()).abs() < 300);
    fresh
        && r.header("webhook-signature")
            .split(' ')
            .any(|s| s == expected)
}
