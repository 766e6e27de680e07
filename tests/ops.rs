//! Operations: systemd notifications on a socket the test provides, JSON logs with span
//! fields, and no secret in any log line of a full run.
#![cfg(all(feature = "api", feature = "webhook"))]

mod common;

use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

use common::*;
use serde_json::json;

fn read_until(
    sock: &UnixDatagram,
    got: &mut Vec<String>,
    limit: Duration,
    done: impl Fn(&[String]) -> bool,
) {
    let deadline = Instant::now() + limit;
    let mut buf = [0u8; 4096];
    while !done(got) {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "timed out; got {got:?}");
        sock.set_read_timeout(Some(left)).unwrap();
        if let Ok(n) = sock.recv(&mut buf) {
            got.extend(
                String::from_utf8_lossy(&buf[..n])
                    .lines()
                    .map(str::to_owned),
            );
        }
    }
}

#[test]
fn systemd_hears_ready_watchdog_reload_and_stopping() {
    let dir = tempfile::tempdir().unwrap();
    let socket_path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&socket_path).unwrap();
    std::fs::write(
        dir.path().join("switchboard.toml"),
        base_config(dir.path()) + &api_service(""),
    )
    .unwrap();
    let d = Daemon::start_at(
        &dir.path().join("switchboard.toml"),
        &[
            ("NOTIFY_SOCKET", socket_path.to_str().unwrap()),
            ("WATCHDOG_USEC", "400000"),
        ],
    );
    let mut got = Vec::new();
    read_until(&sock, &mut got, Duration::from_secs(10), |g| {
        g.iter().filter(|l| *l == "WATCHDOG=1").count() >= 3
    });
    let ready = got.iter().position(|l| l == "READY=1").expect("READY=1");
    let first_ping = got.iter().position(|l| l == "WATCHDOG=1").unwrap();
    assert!(ready < first_ping, "READY=1 comes first: {got:?}");
    assert!(
        got.iter().any(|l| l == "STATUS=1 service, 1 connected"),
        "{got:?}"
    );

    got.clear();
    d.signal("HUP");
    read_until(&sock, &mut got, Duration::from_secs(10), |g| {
        g.iter().any(|l| l == "READY=1")
    });
    let reloading = got
        .iter()
        .position(|l| l == "RELOADING=1")
        .expect("RELOADING=1");
    assert!(got.iter().any(|l| l.starts_with("MONOTONIC_USEC=")));
    assert!(reloading < got.iter().position(|l| l == "READY=1").unwrap());

    got.clear();
    d.signal("TERM");
    read_until(&sock, &mut got, Duration::from_secs(10), |g| {
        g.iter().any(|l| l == "STOPPING=1")
    });
}

#[tokio::test]
async fn json_logs_carry_span_fields_and_no_secret_appears_anywhere() {
    let rx = Receiver::start().await;
    rx.failing.store(true, std::sync::atomic::Ordering::SeqCst);
    let callback_secret = "whsec_Y2FsbGJhY2stc2VjcmV0LWZvci1ncmVwLXRlc3Q=";
    let h = Harness::start(|dir| {
        base_config(dir).replace(
            "level = \"info,switchboard=debug\"",
            "level = \"info\"\nformat = \"json\"",
        ) + &api_service(&format!(
            "callback_url = \"{}\"\ncallback_secret = \"{callback_secret}\"",
            rx.url("/cb")
        )) + &webhook_service(&rx.url("/events"), "")
    });
    let d = &h.daemon;
    let api = &h.api;
    let (_, m) = api.inbound("m-1", "c-1", "a private message body").await;
    let conv = m["conversation_id"].as_str().unwrap();
    api.post(
        &format!("/v1/conversations/{conv}/messages"),
        &json!({"text": "a private reply body"}),
    )
    .await;
    // Failures produce warn lines with the service span.
    eventually(Duration::from_secs(10), "retries logged", || async {
        d.log_text().contains("will retry").then_some(())
    })
    .await;
    let bad = Api {
        token: "not-the-token-000000000".into(),
        ..Api::new(d)
    };
    bad.get("/v1/conversations").await;
    d.signal("HUP");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let logs = d.logs.clone();
    h.finish();
    rx.stop().await;

    let lines = logs.lock().unwrap().clone();
    assert!(lines.len() > 5);
    let mut with_span = 0;
    for line in &lines {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(
            v["timestamp"].is_string() && v["level"].is_string() && v["message"].is_string(),
            "{line}"
        );
        if v["span"]["service_id"].is_string() {
            assert!(v["span"]["service_type"].is_string(), "{line}");
            with_span += 1;
        }
    }
    assert!(
        with_span > 0,
        "service lines carry service_id and service_type"
    );
    let all = lines.join("\n");
    let webhook_key = WEBHOOK_SECRET.strip_prefix("whsec_").unwrap();
    for secret in [
        TOKEN,
        READ_TOKEN,
        WEBHOOK_SECRET,
        webhook_key,
        callback_secret,
        "not-the-token-000000000",
    ] {
        assert!(!all.contains(secret), "a secret reached the logs: {secret}");
    }
    for body in ["a private message body", "a private reply body"] {
        assert!(
            !all.contains(body),
            "a message body reached the logs above debug: {body}"
        );
    }
}

#[tokio::test]
async fn a_live_scrape_passes_promtool_and_counts_what_happened() {
    let rx = Receiver::start().await;
    let h = Harness::start(|dir| {
        base_config(dir) + &api_service("") + &webhook_service(&rx.url("/e"), "")
    });
    let d = &h.daemon;
    let api = &h.api;
    api.inbound("m-1", "c-1", "hello").await;
    api.inbound("m-1", "c-1", "hello").await;
    eventually(Duration::from_secs(10), "webhook deliveries", || async {
        (rx.accepted().len() >= 3).then_some(())
    })
    .await;
    let resp = reqwest::get(d.url("/metrics")).await.unwrap();
    assert_eq!(
        resp.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let text = resp.text().await.unwrap();
    let file = h.dir.path().join("scrape.txt");
    std::fs::write(&file, &text).unwrap();
    let out = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::fs::File::open(&file).unwrap())
        .output()
        .expect("promtool (Debian package prometheus; scripts/test.sh installs it)");
    assert!(
        out.status.success(),
        "promtool: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    for expected in [
        r#"switchboard_messages_total{direction="inbound",outcome="stored",service="api",service_type="api"} 1"#,
        r#"switchboard_messages_total{direction="inbound",outcome="duplicate",service="api",service_type="api"} 1"#,
        r#"switchboard_connector_state{service="hook",state="connected"} 1"#,
        r#"switchboard_deliveries_total{kind="event",result="success",service="hook"}"#,
        r#"switchboard_http_requests_total{method="POST",route="/v1/services/{service_id}/messages",status="201"} 1"#,
        "switchboard_ingest_latency_seconds_count",
        "switchboard_delivery_latency_seconds_bucket",
        r#"switchboard_outbox_depth{service="api",service_type="api"} 0"#,
        "process_resident_memory_bytes",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
    // Delivered rows are deleted: once the webhook has everything, its outbox gauge reads
    // 0 rather than the last depth a scrape saw.
    eventually(
        Duration::from_secs(10),
        "a drained outbox reading 0",
        || async {
            let text = reqwest::get(d.url("/metrics"))
                .await
                .ok()?
                .text()
                .await
                .ok()?;
            text.contains(r#"switchboard_outbox_depth{service="hook",service_type="webhook"} 0"#)
                .then_some(())
        },
    )
    .await;
    h.finish();
    rx.stop().await;
}

#[test]
fn a_new_database_is_readable_by_its_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    if sqlite_only("the mode of SQLite's file") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("switchboard.toml"),
        base_config(dir.path()) + &api_service(""),
    )
    .unwrap();
    let path = dir.path().join("switchboard.toml");
    let (status, _, err) = run_cli(&["migrate", "--config", path.to_str().unwrap()], &[]);
    assert!(status.success(), "{err}");
    let d = Daemon::start_at(&path, &[]);
    let mode = std::fs::metadata(dir.path().join("switchboard.db"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600, "{mode:o}");
    assert!(d.terminate().success());
}

#[test]
fn sigterm_right_after_start_is_still_a_graceful_stop() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("switchboard.toml"),
        base_config(dir.path()) + &api_service(""),
    )
    .unwrap();
    for _ in 0..5 {
        let d = Daemon::start_at(&dir.path().join("switchboard.toml"), &[]);
        let status = d.terminate();
        assert!(
            status.success(),
            "a SIGTERM during start-up must not kill the daemon: {status:?}"
        );
    }
}
