//! Test kit for end-to-end tests: the real `switchboard` binary on 127.0.0.1:0 with a
//! temporary SQLite file, fake HTTP servers, and independent signature checks.
//!
//! - this file: the shared config pieces and [`eventually`].
//! - [`daemon`] — the binary: start, signals, logs; one-shot CLI runs.
//! - [`api`] — a client for `/v1` and the event stream.
//! - [`receiver`] — a recording webhook/callback target; Standard Webhooks checked here.
//! - [`harness`] — a daemon in its own temp dir with its API client, and the
//!   conversations it stored.
//! - [`services`] — config snippets of provider services whose API is never reached.
//! - [`FakeServer`] — any fake provider's router on 127.0.0.1:0, from core's testkit.
//!
//! Fakes of the providers are in `tests/fakes/`.
#![allow(dead_code, unused_imports)]

pub mod api;
pub mod daemon;
pub mod harness;
pub mod receiver;
pub mod services;

use std::path::Path;
use std::time::{Duration, Instant};

pub use api::*;
pub use daemon::*;
pub use harness::*;
pub use receiver::*;
pub use services::*;
pub use switchboard_core::testkit::fake::FakeServer;

/// The example token of the test configs.
pub const TOKEN: &str = "test-token-0123456789";
/// A read-only token.
pub const READ_TOKEN: &str = "read-token-0123456789";
/// The webhook secret of the test configs.
pub const WEBHOOK_SECRET: &str = "whsec_dGVzdC13ZWJob29rLXNlY3JldC0xMjM0NTY=";

/// Whether this run stores on PostgreSQL (`SWITCHBOARD_TEST_STORAGE=postgres`): the
/// whole end-to-end suite runs on either engine, and the test command runs it on both.
pub fn on_postgres() -> bool {
    std::env::var("SWITCHBOARD_TEST_STORAGE").is_ok_and(|v| v == "postgres")
}

/// The `storage.url` of the daemon kept in `dir`: its SQLite file, or (on PostgreSQL) a
/// database of its own on the test server, the same one every time the daemon of that
/// directory starts again.
pub fn storage_url(dir: &Path) -> String {
    if !on_postgres() {
        return format!("sqlite://{}/switchboard.db", dir.display());
    }
    let remembered = dir.join("postgres-url");
    if let Ok(url) = std::fs::read_to_string(&remembered) {
        return url;
    }
    let server = switchboard_core::testkit::postgres::PgServer::shared()
        .unwrap_or_else(|e| panic!("SWITCHBOARD_TEST_STORAGE=postgres: {e}"));
    let url = server.database().expect("a test database");
    std::fs::write(&remembered, &url).expect("remembering the test database");
    url
}

/// Starts the shared PostgreSQL server now (on PostgreSQL runs), for a test that times
/// its daemon from before it starts: the server's first start is not the daemon's.
pub fn warm_storage() {
    if on_postgres() {
        switchboard_core::testkit::postgres::PgServer::shared()
            .unwrap_or_else(|e| panic!("SWITCHBOARD_TEST_STORAGE=postgres: {e}"));
    }
}

/// Skips (returns true, after saying why) a test that reads SQLite's file itself.
pub fn sqlite_only(what: &str) -> bool {
    if on_postgres() {
        eprintln!("skipped on PostgreSQL: {what}");
    }
    on_postgres()
}

/// The settings every test daemon shares: loopback, a database of its own (see
/// [`storage_url`]), fast retries and reconnects.
pub fn base_config(dir: &Path) -> String {
    base_config_on(&storage_url(dir))
}

/// [`base_config`] on a storage URL of the test's own (a PostgreSQL server it started).
pub fn base_config_on(url: &str) -> String {
    format!(
        r#"
[server]
listen = "127.0.0.1:0"
shutdown_timeout = "5s"
# On PostgreSQL a restarted daemon (a new instance id) waits for its predecessor's
# leases to run out: keep that short.
lease_ttl = "3s"

[storage]
url = "{url}"

[log]
level = "info,switchboard=debug"

[delivery]
retry_initial = "50ms"
retry_max = "400ms"

[supervisor]
restart_initial = "100ms"
restart_max = "1s"
failed_retry = "2s"
"#
    )
}

/// An api service `api` with a full-scope token and a read-only one.
pub fn api_service(extra_params: &str) -> String {
    format!(
        r#"
[services.api]
type = "api"
[services.api.params]
{extra_params}
[services.api.params.tokens.full]
token = "{TOKEN}"
scopes = ["read", "reply", "ingest", "admin"]
[services.api.params.tokens.reader]
token = "{READ_TOKEN}"
scopes = ["read"]
"#
    )
}

/// A webhook service `hook` pointing at `url`.
pub fn webhook_service(url: &str, extra: &str) -> String {
    format!(
        r#"
[services.hook]
type = "webhook"
[services.hook.params]
url = "{url}"
secret = "{WEBHOOK_SECRET}"
{extra}
"#
    )
}

/// [`base_config`] with `server.public_url` set (URL-bound signatures).
pub fn public_config(dir: &Path, public_url: &str) -> String {
    base_config(dir).replace(
        "[server]\n",
        &format!("[server]\npublic_url = \"{public_url}\"\n"),
    )
}

/// Polls `f` every 20 ms until it returns `Some`, for at most `limit`.
pub async fn eventually<T, F, Fut>(limit: Duration, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        if Instant::now() > deadline {
            panic!("timed out after {limit:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
