//! Bad input gets a clear error and stores nothing: bad config exits 2 before anything
//! starts, naming each key; bad requests get the contract's JSON errors.
#![cfg(all(feature = "api", feature = "webhook"))]

mod common;

use std::time::Duration;

use common::*;
use serde_json::json;

fn check(config: &str, env: &[(&str, &str)]) -> (i32, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    std::fs::write(&path, config).unwrap();
    let (status, out, err) = run_cli(&["check-config", "--config", path.to_str().unwrap()], env);
    (status.code().unwrap_or(-1), out, err)
}

#[test]
fn every_config_problem_is_named_by_its_key_path() {
    let config = r#"
[server]
listen = "not an address"
colour = "blue"

[storage]
synchronous = "sometimes"

[services.hook]
type = "webhook"
[services.hook.params]
secret = "not-a-whsec-secret-value"
max_attempts = "many"
retries = 3

[services.api]
type = "api"
[services.api.params.tokens.t]
token = "short"
scopes = ["read", "write"]

[services.chat]
type = "carrier_pigeon"

[services.Bad-Id]
type = "api"
"#;
    let (code, _, err) = check(config, &[]);
    assert_eq!(code, 2, "{err}");
    let lines: Vec<&str> = err.lines().collect();
    let expect = [
        "server.colour: unknown key",
        "server.listen: ",
        "storage.synchronous: unknown value \"sometimes\"; expected one of full, normal",
        "services.hook.params.retries: unknown key",
        "services.hook.params.max_attempts: ",
        "services.api.params.tokens.t.scopes[1]: unknown value \"write\"",
        "services.chat.type: unknown service type \"carrier_pigeon\"",
        "services.Bad-Id: a service id is",
    ];
    for e in expect {
        assert!(
            lines.iter().any(|l| l.starts_with(e)),
            "missing {e:?} in:\n{err}"
        );
    }
    assert!(
        !err.contains("not-a-whsec-secret-value"),
        "a secret leaked into an error:\n{err}"
    );
}

#[test]
fn missing_required_params_and_semantic_errors_are_named() {
    let config = r#"
[services.hook]
type = "webhook"
[services.hook.params]
secret = "not-a-whsec-secret-value"
events = ["message.created", "message.deleted"]

[services.api]
type = "api"
[services.api.params]
callback_url = "ftp://example.com/x"
[services.api.params.tokens.t]
token = "short"
scopes = ["read"]
"#;
    let (code, _, err) = check(config, &[]);
    assert_eq!(code, 2, "{err}");
    for e in [
        "services.hook.params.url: required",
        "services.api.params.tokens.t.token: must be at least 16 characters",
        "services.api.params.callback_secret: required when callback_url is set",
    ] {
        assert!(
            err.lines().any(|l| l.starts_with(e)),
            "missing {e:?} in:\n{err}"
        );
    }
    // With the url present, the secret and event filter are checked too.
    let fixed = config.replace("events =", "url = \"http://127.0.0.1:9/x\"\nevents =");
    let (_, _, err) = check(&fixed, &[]);
    for e in [
        "services.hook.params.secret: expected \"whsec_\"",
        "services.hook.params.events[1]: unknown event type \"message.deleted\"",
    ] {
        assert!(
            err.lines().any(|l| l.starts_with(e)),
            "missing {e:?} in:\n{err}"
        );
    }
    assert!(
        !err.contains("not-a-whsec-secret-value") && !err.contains("short"),
        "{err}"
    );
}

#[test]
fn environment_overrides_and_secret_files_apply() {
    let dir = tempfile::tempdir().unwrap();
    let secret_file = dir.path().join("hook-secret");
    std::fs::write(&secret_file, format!("{WEBHOOK_SECRET}\n")).unwrap();
    let config = format!(
        "[services.hook]\ntype = \"webhook\"\n[services.hook.params]\nurl = \"http://127.0.0.1:9/x\"\nsecret_file = \"{}\"\n",
        secret_file.display()
    );
    assert_eq!(check(&config, &[]).0, 0);
    let (code, _, err) = check(
        &config,
        &[("SWITCHBOARD_SERVICES__HOOK__PARAMS__MAX_ATTEMPTS", "zero")],
    );
    assert_eq!(code, 2);
    assert!(
        err.starts_with("services.hook.params.max_attempts: "),
        "{err}"
    );
    assert_eq!(
        check(
            &config,
            &[("SWITCHBOARD_SERVICES__HOOK__PARAMS__MAX_ATTEMPTS", "3")]
        )
        .0,
        0
    );
    let (code, _, err) = check(&config, &[("SWITCHBOARD_SERVER__LISTEN", "nowhere")]);
    assert_eq!(code, 2);
    assert!(err.starts_with("server.listen: "), "{err}");

    let missing = config.replace(&secret_file.display().to_string(), "/nonexistent/secret");
    let (code, _, err) = check(&missing, &[]);
    assert_eq!(code, 2);
    assert!(
        err.starts_with("services.hook.params.secret_file: cannot read /nonexistent/secret"),
        "{err}"
    );
}

#[test]
fn the_example_config_is_valid() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/config.example.toml");
    let (status, out, err) = run_cli(&["check-config", "--config", path], &[]);
    assert!(status.success(), "{out}{err}");
}

#[test]
fn run_with_a_bad_config_exits_2_before_starting_anything() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    let db = dir.path().join("never.db");
    std::fs::write(
        &path,
        format!(
            "[storage]\nurl = \"sqlite://{}\"\n[services.x]\ntype = \"api\"\nnope = 1\n",
            db.display()
        ),
    )
    .unwrap();
    let (status, _, err) = run_cli(&["run", "--config", path.to_str().unwrap()], &[]);
    assert_eq!(status.code(), Some(2), "{err}");
    assert_eq!(err.trim(), "services.x.nope: unknown key");
    assert!(!db.exists(), "nothing may be created for an invalid config");
}

#[test]
fn an_unopenable_database_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    std::fs::write(&path, "[server]\nlisten = \"127.0.0.1:0\"\n[storage]\nurl = \"sqlite:///nonexistent-dir/sub/x.db\"\n").unwrap();
    let (status, _, err) = run_cli(&["run", "--config", path.to_str().unwrap()], &[]);
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(
        err.contains("cannot open database /nonexistent-dir/sub/x.db"),
        "{err}"
    );
}

async fn error_of(r: (u16, serde_json::Value)) -> (u16, String) {
    let code = r.1["error"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("no JSON error body: {}", r.1))
        .to_owned();
    assert!(r.1["error"]["message"].is_string());
    (r.0, code)
}

#[tokio::test]
async fn bad_requests_get_json_errors_and_store_nothing() {
    let h = Harness::start(|dir| {
        base_config(dir).replace(
            "shutdown_timeout = \"5s\"",
            "shutdown_timeout = \"5s\"\nmax_body = 4096",
        ) + &api_service("")
    });
    let d = &h.daemon;
    let api = &h.api;
    let path = "/v1/services/api/messages";

    assert_eq!(
        error_of(api.post_raw(path, "{\"external_id\": ").await).await,
        (400, "malformed".into())
    );
    assert_eq!(
        error_of(api.post_raw(path, vec![0xffu8, 0xfe, 0x00]).await).await,
        (400, "malformed".into())
    );
    assert_eq!(
        error_of(api.post_raw(path, "[".repeat(3000)).await).await,
        (400, "malformed".into())
    );
    assert_eq!(
        error_of(
            api.post(
                path,
                &json!({"external_id": 5, "contact": {"external_id": "c"}, "text": "x"})
            )
            .await
        )
        .await,
        (422, "invalid".into())
    );
    assert_eq!(
        error_of(
            api.post(
                path,
                &json!({"external_id": "m", "contact": {"external_id": "c"}})
            )
            .await
        )
        .await,
        (422, "invalid".into()),
        "neither text nor attachments"
    );
    assert_eq!(
        error_of(api.post(path, &json!({"external_id": "m", "contact": {"external_id": "c"}, "text": "x", "colour": 1})).await).await,
        (422, "invalid".into())
    );
    let big =
        json!({"external_id": "m", "contact": {"external_id": "c"}, "text": "x".repeat(5000)});
    assert_eq!(
        error_of(api.post(path, &big).await).await,
        (413, "too_large".into())
    );

    let anon = Api {
        token: "wrong-token-0000000000".into(),
        ..Api::new(d)
    };
    let ok = json!({"external_id": "m", "contact": {"external_id": "c"}, "text": "x"});
    assert_eq!(
        error_of(anon.post(path, &ok).await).await,
        (401, "unauthorized".into())
    );
    let r = reqwest::Client::new()
        .post(d.url(path))
        .json(&ok)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let reader = Api {
        token: READ_TOKEN.into(),
        ..Api::new(d)
    };
    assert_eq!(
        error_of(reader.post(path, &ok).await).await,
        (403, "forbidden".into())
    );
    assert_eq!(
        error_of(api.post("/v1/services/nope/messages", &ok).await).await,
        (403, "forbidden".into())
    );
    assert_eq!(
        error_of(api.get("/v1/conversations/999").await).await,
        (404, "not_found".into())
    );
    assert_eq!(
        error_of(api.get("/v1/conversations?limit=1000").await).await,
        (400, "malformed".into())
    );
    assert_eq!(
        error_of(api.get("/v1/nothing-here").await).await,
        (404, "not_found".into())
    );
    let r = reqwest::Client::new()
        .post(d.url("/hooks/nope"))
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);

    // Nothing of the above was stored.
    let (_, list) = api.get("/v1/conversations").await;
    assert_eq!(list["data"], json!([]));
    let events = read_events(d, TOKEN, 0, 1000, Duration::from_millis(400)).await;
    assert!(
        events.iter().all(|e| e["type"] == "service.state"),
        "{events:?}"
    );

    // A reply with bad content is refused the same way.
    let (_, m) = api.post(path, &ok).await;
    let conv = m["conversation_id"].as_str().unwrap();
    let reply_path = format!("/v1/conversations/{conv}/messages");
    assert_eq!(
        error_of(api.post(&reply_path, &json!({"text": ""})).await).await,
        (422, "invalid".into())
    );
    assert_eq!(
        error_of(
            api.post(
                &reply_path,
                &json!({"text": "x", "author": {"type": "contact"}})
            )
            .await
        )
        .await,
        (422, "invalid".into())
    );
    assert_eq!(
        error_of(reader.post(&reply_path, &json!({"text": "x"})).await).await,
        (403, "forbidden".into())
    );
    let (_, msgs) = api.get(&reply_path).await;
    assert_eq!(
        msgs["data"].as_array().unwrap().len(),
        1,
        "only the inbound message"
    );

    h.finish();
}
