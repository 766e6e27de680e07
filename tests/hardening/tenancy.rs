//! Items 5 and 6 of issue 14: tokens follow their api service's lifecycle, and a
//! service id keeps its organization — on reload, SIGHUP, restart and hub merge.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use serde_json::{Value, json};

use crate::common::*;

/// An api service `id` with one full-scope token `token`; `extra` lines go at the
/// service level (status, dates, organization).
fn api_with(id: &str, token: &str, extra: &str) -> String {
    format!(
        "\n[services.{id}]\ntype = \"api\"\n{extra}\n[services.{id}.params.tokens.t]\n\
         token = \"{token}\"\nscopes = [\"read\", \"reply\", \"ingest\", \"admin\"]\n"
    )
}

fn as_token(d: &Daemon, token: &str) -> Api {
    Api {
        token: token.into(),
        ..Api::new(d)
    }
}

/// Disabled, archived, not-yet-started and ended services' tokens got list 200, read
/// 200 and reply 202. Now: disabled and out-of-window ones are refused (401), archived
/// ones may only read (409 `service_archived` for the rest), as the README says.
#[tokio::test]
async fn tokens_follow_their_services_lifecycle() {
    let h = Harness::start(|dir| {
        base_config(dir)
            + &api_service("")
            + &api_with("off", "off-token-0123456789", "status = \"disabled\"")
            + &api_with("queued", "queued-token-0123456789", "status = \"queued\"")
            + &api_with("old", "old-token-0123456789", "status = \"archived\"")
            + &api_with(
                "ended",
                "ended-token-0123456789",
                "end_date = \"2020-01-01T00:00:00Z\"",
            )
            + &api_with(
                "future",
                "future-token-0123456789",
                "start_date = \"2099-01-01T00:00:00Z\"",
            )
    });
    let d = &h.daemon;
    let api = &h.api;
    let (s, m) = api.inbound("m-1", "c-1", "hello").await;
    assert_eq!(s, 201, "{m}");
    let conv = m["conversation_id"].as_str().unwrap().to_owned();
    let (id, body) = (
        m["id"].as_str().unwrap().to_owned(),
        json!({"text": "from a token that should not reply"}),
    );
    let ingest = |svc: &str| {
        (
            format!("/v1/services/{svc}/messages"),
            json!({"external_id": "x", "contact": {"external_id": "c"}, "text": "x"}),
        )
    };

    for (svc, token, why) in [
        ("off", "off-token-0123456789", "off is disabled"),
        ("queued", "queued-token-0123456789", "queued is queued"),
        (
            "ended",
            "ended-token-0123456789",
            "ended has ended (end_date)",
        ),
        (
            "future",
            "future-token-0123456789",
            "future has not started (start_date)",
        ),
    ] {
        let t = as_token(d, token);
        for path in [
            "/v1/services",
            "/v1/conversations",
            &format!("/v1/messages/{id}"),
        ] {
            let (s, e) = t.get(path).await;
            assert_eq!(s, 401, "{svc} GET {path}: {e}");
            assert_eq!(
                e["error"]["message"],
                format!("this token's service {why}"),
                "{e}"
            );
        }
        let (s, _) = t
            .post(&format!("/v1/conversations/{conv}/messages"), &body)
            .await;
        assert_eq!(s, 401, "{svc} reply");
        let (path, msg) = ingest(svc);
        assert_eq!(t.post(&path, &msg).await.0, 401, "{svc} ingest");
        let ws = format!("ws://{}/v1/events?after=0&access_token={token}", d.addr);
        let refused = tokio_tungstenite::connect_async(ws).await.unwrap_err();
        assert!(
            refused.to_string().contains("401"),
            "{svc} stream: {refused}"
        );
    }

    // An archived service's token reads, and nothing else.
    let old = as_token(d, "old-token-0123456789");
    assert_eq!(old.get("/v1/conversations").await.0, 200);
    assert_eq!(old.get(&format!("/v1/messages/{id}")).await.0, 200);
    assert_eq!(
        read_events(d, "old-token-0123456789", 0, 1, Duration::from_secs(5))
            .await
            .len(),
        1
    );
    let (s, e) = old
        .post(&format!("/v1/conversations/{conv}/messages"), &body)
        .await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (409, Some("service_archived")),
        "{e}"
    );
    let (path, msg) = ingest("old");
    let (s, e) = old.post(&path, &msg).await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (409, Some("service_archived")),
        "{e}"
    );
    let (s, _) = old.post("/v1/admin/reload", &json!({})).await;
    assert_eq!(s, 409, "no admin either");

    // Nothing any refused token sent was stored.
    let (_, msgs) = api.get(&format!("/v1/conversations/{conv}/messages")).await;
    assert_eq!(msgs["data"].as_array().unwrap().len(), 1, "{msgs}");
    h.finish();
}

/// Moving an api service to another organization by reload left org A reading and
/// replying on its conversations while org B's stream got the new messages. A change
/// of organization is now refused, named like `check-config` names keys.
#[tokio::test]
async fn moving_a_service_to_another_organization_is_refused() {
    let mut h = Harness::start(|dir| base_config(dir) + &api_service(""));
    let config = h.config();
    let d = &h.daemon;
    let api = &h.api;
    assert_eq!(api.inbound("m-1", "c-1", "hello").await.0, 201);
    let moved = config.replace(
        "[services.api]\ntype = \"api\"",
        "[services.api]\ntype = \"api\"\norganization = \"b\"",
    );
    assert_ne!(moved, config);
    h.write_config(&moved);
    let line = "services.api.organization: service \"api\" belongs to organization \"default\"; \
                moving it to \"b\" requires a new service id";

    let (s, body) = api.post("/v1/admin/reload", &json!({})).await;
    assert_eq!(s, 422, "{body}");
    assert_eq!(body["problems"], json!([line]), "{body}");
    d.signal("HUP");
    eventually(
        Duration::from_secs(10),
        "the SIGHUP refusal in the log",
        || async { (d.log_text().matches(line).count() >= 2).then_some(()) },
    )
    .await;
    let (_, list) = api.get("/v1/services").await;
    let svc = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "api")
        .unwrap()
        .clone();
    assert_eq!(svc["organization"], "default", "unchanged: {svc}");

    // A restart on the moved config refuses to start, naming the key.
    h.stop();
    let (status, _, stderr) = run_cli(&["run", "--config", h.config_path().to_str().unwrap()], &[]);
    assert!(!status.success());
    assert!(stderr.contains(line), "{stderr}");

    // Back in its own organization it starts again, its data intact.
    h.write_config(&config);
    h.start_again(&[]);
    let d = &h.daemon;
    let (_, convs) = Api::new(d).get("/v1/conversations").await;
    assert_eq!(convs["data"].as_array().unwrap().len(), 1);
    h.finish();
}

/// A hub that starts naming another organization for a service it listed is not
/// followed: the running version stays, and the merge reports why.
#[tokio::test]
async fn a_hub_cannot_move_a_service_to_another_organization() {
    let list: Arc<Mutex<Value>> = Arc::new(Mutex::new(json!([])));
    let served = list.clone();
    let app = axum::Router::new().route(
        "/services",
        axum::routing::get(move |h: HeaderMap| {
            let served = served.clone();
            async move {
                if h.get("authorization").and_then(|v| v.to_str().ok())
                    != Some("Bearer hub-token-0123")
                {
                    return StatusCode::UNAUTHORIZED.into_response();
                }
                axum::Json(served.lock().unwrap().clone()).into_response()
            }
        }),
    );
    let server = FakeServer::spawn(app).await;
    let hub = server.url("");
    let rx = Receiver::start().await;
    let service = |org: &str| {
        json!([{"id": "hooked", "organization": org, "type": "webhook", "status": "active",
                "params": {"url": rx.url("/in"), "secret": WEBHOOK_SECRET}}])
    };
    *list.lock().unwrap() = service("default");

    let h = Harness::start(|dir| {
        base_config(dir)
            + &api_service("")
            + &format!(
                "\n[hub]\nurl = \"{hub}\"\ntoken = \"hub-token-0123\"\nsync_interval = \"1s\"\n"
            )
    });

    let d = &h.daemon;
    let api = &h.api;
    api.wait_state("hooked", "connected").await;

    *list.lock().unwrap() = service("other");
    let line = "hub service skipped: services.hooked.organization: service \"hooked\" belongs to \
                organization \"default\"; moving it to \"other\" requires a new service id";
    eventually(
        Duration::from_secs(10),
        "the merge to refuse the move",
        || async { d.log_text().contains(line).then_some(()) },
    )
    .await;
    let (_, all) = api.get("/v1/services").await;
    let svc = all["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "hooked")
        .cloned();
    assert_eq!(
        svc.as_ref().map(|s| s["organization"].clone()),
        Some(json!("default")),
        "{all}"
    );
    // It still gets the default organization's events.
    assert_eq!(api.inbound("m-1", "c-1", "hello").await.0, 201);
    eventually(
        Duration::from_secs(10),
        "an event at the kept webhook",
        || async { (!rx.accepted().is_empty()).then_some(()) },
    )
    .await;
    h.finish();
    server.stop().await;
    rx.stop().await;
}
