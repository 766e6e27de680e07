//! Service lifecycle: statuses with meaning, date windows on a controlled clock,
//! pendingArchive draining into archived, and reload (SIGHUP and the admin endpoint).
#![cfg(all(feature = "api", feature = "webhook"))]

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};

const T: Duration = Duration::from_secs(15);

async fn service(api: &Api, id: &str) -> Value {
    let (_, list) = api.get("/v1/services").await;
    list["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == id)
        .cloned()
        .unwrap_or(Value::Null)
}

fn state_events<'a>(events: &'a [Value], id: &str) -> Vec<&'a Value> {
    events
        .iter()
        .filter(|e| e["type"] == "service.state" && e["data"]["service"]["id"] == id)
        .collect()
}

#[tokio::test]
async fn a_date_window_opens_and_closes_on_time() {
    warm_storage();
    let launched = Instant::now();
    let h = Harness::start_with_env(
        |dir| {
            base_config(dir)
                + &api_service("")
                + r#"
[services.windowed]
type = "api"
start_date = "2030-01-01T00:00:02Z"
end_date = "2030-01-01T00:00:04Z"
[services.windowed.params.tokens.w]
token = "windowed-token-0123456789"
scopes = ["ingest"]
"#
        },
        &[("SWITCHBOARD_CLOCK_START", "2030-01-01T00:00:00Z")],
    );
    let d = &h.daemon;
    let api = &h.api;
    let windowed = Api {
        token: "windowed-token-0123456789".into(),
        ..Api::new(d)
    };
    let msg = json!({"external_id": "m", "contact": {"external_id": "c"}, "text": "hi"});

    let before = service(api, "windowed").await;
    assert_eq!(before["status"], "disabled", "{before}");
    assert_eq!(before["state"]["kind"], "stopped");
    // Outside its window a service's tokens are refused (issue 14, item 5).
    assert_eq!(
        windowed
            .post("/v1/services/windowed/messages", &msg)
            .await
            .0,
        401
    );

    let opened = eventually(T, "the window to open", || async {
        let s = service(api, "windowed").await;
        (s["status"] == "active" && s["state"]["kind"] == "connected").then(|| launched.elapsed())
    })
    .await;
    assert!(
        opened >= Duration::from_millis(1900) && opened < Duration::from_millis(3000),
        "opened {opened:?} after launch; the window starts 2 s after the clock start"
    );
    assert_eq!(
        windowed
            .post("/v1/services/windowed/messages", &msg)
            .await
            .0,
        201
    );

    let closed = eventually(T, "the window to close", || async {
        let s = service(api, "windowed").await;
        (s["status"] == "disabled" && s["state"]["kind"] == "stopped").then(|| launched.elapsed())
    })
    .await;
    assert!(
        closed >= Duration::from_millis(3900) && closed < Duration::from_millis(5000),
        "closed {closed:?} after launch; the window ends 4 s after the clock start"
    );
    assert_eq!(
        windowed
            .post("/v1/services/windowed/messages", &msg)
            .await
            .0,
        401
    );

    let events = read_events(d, TOKEN, 0, 1000, Duration::from_millis(500)).await;
    let statuses: Vec<&str> = state_events(&events, "windowed")
        .iter()
        .map(|e| e["data"]["service"]["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses.first(), Some(&"active"), "{statuses:?}");
    assert_eq!(statuses.last(), Some(&"disabled"), "{statuses:?}");
    assert!(
        d.log_text().contains("SWITCHBOARD_CLOCK_START"),
        "a shifted clock is logged"
    );
    h.finish();
}

#[tokio::test]
async fn pending_archive_drains_its_outbox_then_becomes_archived() {
    let rx = Receiver::start().await;
    rx.failing.store(true, std::sync::atomic::Ordering::SeqCst);
    let params = format!(
        "callback_url = \"{}\"\ncallback_secret = \"{WEBHOOK_SECRET}\"",
        rx.url("/replies")
    );
    let h = Harness::start(|dir| base_config(dir) + &api_service(&params));
    let config = h.config();
    let d = &h.daemon;
    let api = &h.api;
    let (_, first) = api.inbound("m-1", "c-1", "Hello").await;
    let conv = first["conversation_id"].as_str().unwrap().to_owned();
    let (s, reply) = api
        .post(
            &format!("/v1/conversations/{conv}/messages"),
            &json!({"text": "Hi"}),
        )
        .await;
    assert_eq!(s, 202);

    // The service is set to pendingArchive while a reply is still undelivered.
    let archiving = config.replace(
        "[services.api]\ntype = \"api\"",
        "[services.api]\ntype = \"api\"\nstatus = \"pendingArchive\"",
    );
    assert_ne!(archiving, config);
    h.write_config(&archiving);
    d.signal("HUP");
    eventually(T, "status pendingArchive", || async {
        let s = service(api, "api").await;
        (s["status"] == "pendingArchive" && s["state"]["kind"] == "connected").then_some(())
    })
    .await;

    // No new conversation is opened; the existing one still takes messages.
    let (s, body) = api.inbound("m-2", "c-new", "Anyone?").await;
    assert_eq!(s, 409, "{body}");
    let (s, _) = api.inbound("m-3", "c-1", "Still here").await;
    assert_eq!(s, 201);
    let (_, list) = api.get("/v1/conversations").await;
    assert_eq!(
        list["data"].as_array().unwrap().len(),
        1,
        "nothing stored for the new contact"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        service(api, "api").await["status"],
        "pendingArchive",
        "not archived while a delivery waits"
    );

    // The callback target recovers: the outbox drains, then the service is archived.
    rx.failing.store(false, std::sync::atomic::Ordering::SeqCst);
    let id = reply["id"].as_str().unwrap().to_owned();
    eventually(T, "status archived", || async {
        let s = service(api, "api").await;
        (s["status"] == "archived" && s["state"]["kind"] == "stopped").then_some(())
    })
    .await;
    let (_, m) = api.get(&format!("/v1/messages/{id}")).await;
    assert_eq!(
        m["status"], "sent",
        "the reply was delivered before archiving"
    );
    let (s, body) = api
        .post(
            &format!("/v1/conversations/{conv}/messages"),
            &json!({"text": "late"}),
        )
        .await;
    assert_eq!(
        (s, body["error"]["code"].as_str()),
        (409, Some("service_archived"))
    );
    // The archived service's own token may only read now (issue 14, item 5).
    let (s, body) = api.inbound("m-4", "c-1", "hello?").await;
    assert_eq!(
        (s, body["error"]["code"].as_str()),
        (409, Some("service_archived"))
    );
    // Its data is kept.
    let (_, msgs) = api.get(&format!("/v1/conversations/{conv}/messages")).await;
    assert_eq!(msgs["data"].as_array().unwrap().len(), 3);

    let events = read_events(d, TOKEN, 0, 1000, Duration::from_millis(500)).await;
    let statuses: Vec<&str> = state_events(&events, "api")
        .iter()
        .map(|e| e["data"]["service"]["status"].as_str().unwrap())
        .collect();
    assert!(
        statuses.contains(&"pendingArchive") && statuses.last() == Some(&"archived"),
        "{statuses:?}"
    );
    h.finish();
    rx.stop().await;
}

#[tokio::test]
async fn sighup_applies_a_valid_config_and_refuses_an_invalid_one() {
    let rx = Receiver::start().await;
    let h = Harness::start(|dir| {
        base_config(dir) + &api_service("") + &webhook_service(&rx.url("/one"), "")
    });
    let config = h.config();
    let d = &h.daemon;
    let api = &h.api;
    let hook_since = eventually(T, "hook connected", || async {
        let s = service(api, "hook").await;
        (s["state"]["kind"] == "connected").then(|| s["state"]["since"].clone())
    })
    .await;
    let head = read_events(d, TOKEN, 0, 1000, Duration::from_millis(300))
        .await
        .last()
        .unwrap()["seq"]
        .as_i64()
        .unwrap();

    // Added: a second webhook starts; the first keeps running untouched.
    let added = config.clone()
        + &webhook_service(&rx.url("/two"), "").replace("services.hook", "services.hook2");
    h.write_config(&added);
    d.signal("HUP");
    eventually(T, "hook2 connected", || async {
        (service(api, "hook2").await["state"]["kind"] == "connected").then_some(())
    })
    .await;
    // Changed: only hook2 restarts.
    let changed = added.replace(&rx.url("/two"), &rx.url("/two-b"));
    h.write_config(&changed);
    d.signal("HUP");
    eventually(T, "hook2 restarted", || async {
        let events = read_events(d, TOKEN, head, 1000, Duration::from_millis(300)).await;
        let n = state_events(&events, "hook2")
            .iter()
            .filter(|e| e["data"]["service"]["state"]["kind"] == "connected")
            .count();
        (n >= 2).then_some(())
    })
    .await;
    let events = read_events(d, TOKEN, head, 1000, Duration::from_millis(300)).await;
    assert!(
        state_events(&events, "hook").is_empty(),
        "the unchanged service was not touched: {events:?}"
    );
    assert!(state_events(&events, "api").is_empty());
    assert_eq!(service(api, "hook").await["state"]["since"], hook_since);

    // Invalid: refused with the check-config lines; the running set stays.
    h.write_config(&(changed.clone() + "\n[services.hook2.params.extra]\nnope = 1\n"));
    d.signal("HUP");
    eventually(T, "the rejection in the log", || async {
        d.log_text()
            .contains("services.hook2.params.extra: unknown key")
            .then_some(())
    })
    .await;
    assert!(d.log_text().contains("reload rejected"));
    assert_eq!(service(api, "hook2").await["state"]["kind"], "connected");

    // The admin endpoint does the same, and says why.
    let reader = Api {
        token: READ_TOKEN.into(),
        ..Api::new(d)
    };
    assert_eq!(reader.post("/v1/admin/reload", &json!({})).await.0, 403);
    let (s, body) = api.post("/v1/admin/reload", &json!({})).await;
    assert_eq!(s, 422, "{body}");
    assert_eq!(body["error"]["code"], "invalid_config");
    assert_eq!(
        body["problems"],
        json!(["services.hook2.params.extra: unknown key"])
    );
    // Removed: hook2 stops; the reload answers once it is applied.
    h.write_config(&config);
    let (s, body) = api.post("/v1/admin/reload", &json!({})).await;
    assert_eq!((s, &body["status"]), (200, &json!("reloaded")));
    assert!(service(api, "hook2").await.is_null());
    assert_eq!(service(api, "hook").await["state"]["since"], hook_since);
    h.finish();
    rx.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_services_command_reads_the_live_daemon_then_storage() {
    let mut h = Harness::start(|dir| {
        base_config(dir)
            + &api_service("")
            + "\n[services.later]\ntype = \"api\"\nstatus = \"queued\"\n"
    });
    let d = &h.daemon;
    let path = h.config_path();
    let path = path.to_str().unwrap();
    // `services` asks the daemon at server.listen; this one listens on a port chosen at
    // start, so point the command at it.
    let listen = d.addr.to_string();
    let env = [("SWITCHBOARD_SERVER__LISTEN", listen.as_str())];
    let (status, out, err) = run_cli(&["services", "--config", path], &env);
    assert!(status.success(), "{err}");
    let api_line = out
        .lines()
        .find(|l| l.starts_with("api "))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(
        api_line.contains(" active ") && api_line.contains(" connected "),
        "{out}"
    );
    let later = out.lines().find(|l| l.starts_with("later ")).unwrap();
    assert!(
        later.contains(" queued ") && later.contains(" stopped "),
        "{out}"
    );

    h.stop();
    let (status, out, err) = run_cli(&["services", "--config", path], &env);
    assert!(status.success(), "{err}");
    let api_line = out.lines().find(|l| l.starts_with("api ")).unwrap();
    assert!(
        api_line.contains("stopped (not running)"),
        "from storage once the daemon is gone: {out}"
    );
}
