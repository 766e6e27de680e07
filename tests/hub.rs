//! Services from a Web1on1 hub: a fake hub on 127.0.0.1:0 that issues expiring tokens
//! the way Web1on1 documents (docs/web1on1.md) (`POST /auth/token`, `GET /auth/token?refreshToken=`) and
//! refuses expired ones, serving `GET /services`.
#![cfg(all(feature = "api", feature = "webhook", feature = "smartsupp"))]

mod common;
#[path = "fakes/smartsupp/prosody.rs"]
mod prosody;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use common::*;
use serde_json::{Value, json};

const T: Duration = Duration::from_secs(20);
const EMAIL: &str = "bot@example.com";
const PASSWORD: &str = "hub-password-s3cret";

#[derive(Default)]
struct HubState {
    services: Vec<Value>,
    down: bool,
    /// Valid tokens with their expiry.
    tokens: Vec<(String, jiff::Timestamp)>,
    refresh_tokens: Vec<String>,
    logins: usize,
    refreshes: usize,
    lists: usize,
    token_life: i64,
    counter: usize,
}

type Shared = Arc<Mutex<HubState>>;

fn issue(h: &mut HubState) -> Value {
    h.counter += 1;
    let token = format!("tok-{}", h.counter);
    let refresh = format!("ref-{}", h.counter);
    let expires = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(h.token_life);
    h.tokens.push((token.clone(), expires));
    h.refresh_tokens.push(refresh.clone());
    json!({"tokenType": "Bearer", "token": token, "refreshToken": refresh, "user": "u1",
           "organization": "org1", "expiresAt": expires.to_string(), "scope": "admin"})
}

fn bearer_ok(h: &HubState, headers: &HeaderMap) -> bool {
    let Some(auth) = headers.get("authorization").and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let Some(token) = auth.strip_prefix("Bearer ") else {
        return false;
    };
    h.tokens
        .iter()
        .any(|(t, exp)| t == token && *exp > jiff::Timestamp::now())
}

async fn login(State(h): State<Shared>, Json(body): Json<Value>) -> Response {
    let mut h = h.lock().unwrap();
    if h.down {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    if body != json!({"email": EMAIL, "password": PASSWORD}) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    h.logins += 1;
    (StatusCode::CREATED, Json(issue(&mut h))).into_response()
}

async fn refresh(
    State(h): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<std::collections::HashMap<String, String>>,
) -> Response {
    let mut h = h.lock().unwrap();
    if h.down {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    let known = q
        .get("refreshToken")
        .is_some_and(|r| h.refresh_tokens.contains(r));
    if !known || !bearer_ok(&h, &headers) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    h.refreshes += 1;
    Json(issue(&mut h)).into_response()
}

async fn list_services(State(h): State<Shared>, headers: HeaderMap) -> Response {
    let mut h = h.lock().unwrap();
    if h.down {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    if !bearer_ok(&h, &headers) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    h.lists += 1;
    Json(Value::Array(h.services.clone())).into_response()
}

struct FakeHub {
    url: String,
    state: Shared,
    _server: FakeServer,
}

impl FakeHub {
    async fn start(token_life: i64, services: Vec<Value>) -> FakeHub {
        let state: Shared = Arc::new(Mutex::new(HubState {
            services,
            token_life,
            ..Default::default()
        }));
        let app = axum::Router::new()
            .route("/v2/auth/token", axum::routing::post(login).get(refresh))
            .route("/v2/services", axum::routing::get(list_services))
            .with_state(state.clone());
        let server = FakeServer::spawn(app).await;
        FakeHub {
            url: server.url("/v2"),
            state,
            _server: server,
        }
    }

    fn set(&self, services: Vec<Value>) {
        self.state.lock().unwrap().services = services;
    }
}

fn hook(id: &str, url: &str, status: &str) -> Value {
    json!({"id": id, "organization": "default", "name": format!("hub {id}"), "type": "webhook", "status": status,
           "params": {"url": url, "secret": WEBHOOK_SECRET, "inviteText": "ignored by us"},
           "createdAt": "2016-01-07T14:03:43Z", "updatedAt": "2016-01-07T14:03:43Z"})
}

fn hub_config(dir: &std::path::Path, url: &str) -> String {
    base_config(dir)
        + &format!(
            "\n[hub]\nurl = \"{url}\"\nemail = \"{EMAIL}\"\npassword = \"{PASSWORD}\"\nsync_interval = \"1s\"\n"
        )
        + &api_service("")
}

async fn services(api: &Api) -> Value {
    api.get("/v1/services").await.1["data"].clone()
}

fn find<'a>(list: &'a Value, id: &str) -> Option<&'a Value> {
    list.as_array().unwrap().iter().find(|s| s["id"] == id)
}

#[tokio::test]
async fn hub_changes_are_applied_within_a_sync_interval() {
    let rx = Receiver::start().await;
    let hub = FakeHub::start(
        3600,
        vec![
            hook("h1", &rx.url("/h1"), "active"),
            hook("h2", &rx.url("/h2"), "active"),
        ],
    )
    .await;
    let h = Harness::start(|dir| hub_config(dir, &hub.url));
    let d = &h.daemon;
    let api = &h.api;

    let list = eventually(T, "hub services running", || async {
        let l = services(api).await;
        let up = |id| find(&l, id).is_some_and(|s| s["state"]["kind"] == "connected");
        (up("h1") && up("h2")).then_some(l)
    })
    .await;
    let h2_since = find(&list, "h2").unwrap()["state"]["since"].clone();
    let h1_since = find(&list, "h1").unwrap()["state"]["since"].clone();

    // Changed, added disabled, unchanged.
    hub.set(vec![
        hook("h1", &rx.url("/h1-changed"), "active"),
        hook("h2", &rx.url("/h2"), "active"),
        hook("h3", &rx.url("/h3"), "disabled"),
    ]);
    let started = std::time::Instant::now();
    let list = eventually(T, "the change applied", || async {
        let l = services(api).await;
        let h1_restarted = find(&l, "h1")
            .is_some_and(|s| s["state"]["since"] != h1_since && s["state"]["kind"] == "connected");
        let h3 = find(&l, "h3")
            .is_some_and(|s| s["status"] == "disabled" && s["state"]["kind"] == "stopped");
        (h1_restarted && h3).then_some(l)
    })
    .await;
    assert!(
        started.elapsed() < Duration::from_millis(2500),
        "applied within about one sync interval: {:?}",
        started.elapsed()
    );
    assert_eq!(
        find(&list, "h2").unwrap()["state"]["since"],
        h2_since,
        "the unchanged service kept running"
    );

    // Archived and pendingArchive (with an empty outbox: archived at once).
    hub.set(vec![
        hook("h1", &rx.url("/h1-changed"), "pendingArchive"),
        hook("h2", &rx.url("/h2"), "archived"),
    ]);
    eventually(T, "archived", || async {
        let l = services(api).await;
        let archived = |id| {
            find(&l, id)
                .is_some_and(|s| s["status"] == "archived" && s["state"]["kind"] == "stopped")
        };
        (archived("h1") && archived("h2") && find(&l, "h3").is_none()).then_some(())
    })
    .await;
    assert!(
        !d.log_text().contains(PASSWORD),
        "the hub password never reaches the log"
    );
    h.finish();
    rx.stop().await;
}

#[tokio::test]
async fn the_hub_token_is_obtained_by_login_and_refreshed_before_it_expires() {
    let rx = Receiver::start().await;
    // Tokens live 4 s: the daemon must refresh (with the refresh token and the current
    // bearer) before expiry, or the fake refuses the list.
    let hub = FakeHub::start(4, vec![hook("h1", &rx.url("/h1"), "active")]).await;
    let h = Harness::start(|dir| hub_config(dir, &hub.url));
    let d = &h.daemon;
    eventually(T, "two refreshes", || async {
        (hub.state.lock().unwrap().refreshes >= 2).then_some(())
    })
    .await;
    let (logins, lists) = {
        let h = hub.state.lock().unwrap();
        (h.logins, h.lists)
    };
    assert_eq!(logins, 1, "one login, then refreshes only");
    assert!(lists >= 4, "listed every second: {lists}");
    assert!(
        !d.log_text().contains("hub sync failed"),
        "no sync ever failed:\n{}",
        d.log_text()
    );
    h.finish();
    rx.stop().await;
}

#[tokio::test]
async fn a_hub_outage_or_restart_never_stops_running_services() {
    let rx = Receiver::start().await;
    let hub = FakeHub::start(3600, vec![hook("h1", &rx.url("/h1"), "active")]).await;
    let mut h = Harness::start(|dir| hub_config(dir, &hub.url));
    let up = |l: &Value| find(l, "h1").is_some_and(|s| s["state"]["kind"] == "connected");
    eventually(T, "h1 running", || async {
        up(&services(&h.api).await).then_some(())
    })
    .await;

    hub.state.lock().unwrap().down = true;
    eventually(T, "a failed sync", || async {
        h.daemon
            .log_text()
            .contains("hub sync failed")
            .then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        up(&services(&h.api).await),
        "h1 kept running through the outage"
    );

    // A restart while the hub is down runs the stored list.
    h.restart(&[]);
    eventually(T, "h1 running from storage", || async {
        up(&services(&h.api).await).then_some(())
    })
    .await;

    // The hub returns with a change: it applies.
    hub.set(vec![hook("h1", &rx.url("/h1"), "disabled")]);
    hub.state.lock().unwrap().down = false;
    eventually(T, "h1 disabled by the hub", || async {
        let l = services(&h.api).await;
        find(&l, "h1")
            .is_some_and(|s| s["status"] == "disabled")
            .then_some(())
    })
    .await;
    h.finish();
    rx.stop().await;
}

#[tokio::test]
async fn clashes_and_unknown_types_are_reported_and_skipped() {
    let rx = Receiver::start().await;
    let hub = FakeHub::start(
        3600,
        vec![
            hook("api", &rx.url("/clash"), "active"),
            json!({"id": "pigeon", "type": "carrier_pigeon", "status": "active", "params": {}}),
            json!({"id": "badparams", "type": "webhook", "status": "active", "params": {"url": "not a url", "secret": WEBHOOK_SECRET}}),
            hook("good", &rx.url("/good"), "active"),
        ],
    )
    .await;
    let h = Harness::start(|dir| hub_config(dir, &hub.url));
    let d = &h.daemon;
    let api = &h.api;
    let list = eventually(T, "the good hub service running", || async {
        let l = services(api).await;
        find(&l, "good")
            .is_some_and(|s| s["state"]["kind"] == "connected")
            .then_some(l)
    })
    .await;
    assert_eq!(
        find(&list, "api").unwrap()["type"],
        "api",
        "the config wins the clash"
    );
    assert!(find(&list, "pigeon").is_none() && find(&list, "badparams").is_none());
    let log = d.log_text();
    assert!(
        log.contains("hub service \"api\" has the id of a configured service"),
        "{log}"
    );
    assert!(log.contains("carrier_pigeon"), "{log}");
    assert!(log.contains("services.badparams.params.url"), "{log}");
    // Reported once, not at every sync.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(d.log_text().matches("carrier_pigeon").count(), 1);
    h.finish();
    rx.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unchanged_xmpp_session_survives_hub_changes_and_reloads() {
    let xmpp = prosody::Prosody::start(
        prosody::Security::Plain,
        &[("agent", "agent-secret-1")],
        "info",
    );
    let rx = Receiver::start().await;
    let hub = FakeHub::start(3600, vec![hook("h1", &rx.url("/h1"), "active")]).await;
    let chat = format!(
        "\n[services.chat]\ntype = \"smartsupp\"\n[services.chat.params]\njid = \"agent@localhost\"\npassword = \"agent-secret-1\"\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\n",
        xmpp.port
    );
    let h = Harness::start(|dir| hub_config(dir, &hub.url) + &chat);
    let d = &h.daemon;
    let api = &h.api;
    let since = eventually(T, "the XMPP session and h1 up", || async {
        let l = services(api).await;
        let chat = find(&l, "chat").filter(|s| s["state"]["kind"] == "connected")?;
        find(&l, "h1").filter(|s| s["state"]["kind"] == "connected")?;
        Some(chat["state"]["since"].clone())
    })
    .await;
    // Count logins, not connections: the harness probes the port before the daemon starts.
    let logins = || {
        xmpp.log()
            .matches("Authenticated as agent@localhost")
            .count()
    };
    assert_eq!(logins(), 1, "{}", xmpp.log());

    // The hub adds, changes and disables services around it.
    hub.set(vec![
        hook("h1", &rx.url("/h1-changed"), "active"),
        hook("h2", &rx.url("/h2"), "disabled"),
    ]);
    eventually(T, "the hub change applied", || async {
        find(&services(api).await, "h2").map(|_| ())
    })
    .await;
    // A reload adds a configured service.
    h.write_config(&(h.config() + &webhook_service(&rx.url("/cfg"), "")));
    d.signal("HUP");
    eventually(T, "the reload applied", || async {
        find(&services(api).await, "hook")
            .filter(|s| s["state"]["kind"] == "connected")
            .map(|_| ())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    let chat = find(&services(api).await, "chat").cloned().unwrap();
    assert_eq!(chat["state"]["kind"], "connected");
    assert_eq!(
        chat["state"]["since"], since,
        "the session was never restarted"
    );
    assert_eq!(logins(), 1, "Prosody saw no new login");
    h.finish();
    rx.stop().await;
}

/// The status page shows the hub's sync state: synced (with how many services), then
/// failing with the reason, never with the hub's credentials.
#[tokio::test]
async fn the_status_page_shows_the_hub_sync_state() {
    let rx = Receiver::start().await;
    let hub = FakeHub::start(3600, vec![hook("h1", &rx.url("/h1"), "active")]).await;
    let h = Harness::start(|dir| hub_config(dir, &hub.url));
    let d = &h.daemon;
    let api = &h.api;
    let live = || async {
        let r = api
            .http
            .get(d.url("/status/live"))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.text().await.unwrap()
    };
    let synced = eventually(T, "a synced hub on the page", || async {
        let page = live().await;
        page.contains("data-hub=\"ok\"").then_some(page)
    })
    .await;
    assert!(synced.contains("1 service"), "{synced}");
    assert!(synced.contains(&hub.url), "{synced}");

    hub.state.lock().unwrap().down = true;
    let failing = eventually(T, "a failing hub on the page", || async {
        let page = live().await;
        page.contains("data-hub=\"failing\"").then_some(page)
    })
    .await;
    assert!(failing.contains("failing since"), "{failing}");
    assert!(!failing.contains(PASSWORD));
    h.finish();
    rx.stop().await;
}
