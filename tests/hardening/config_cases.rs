//! Items 8-11 of issue 14: the environment and config values that panicked, aborted or
//! were misreported, now each refused by name (or ignored, for foreign variables).

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::*;

/// Runs `switchboard ARGS --config PATH` with extra (possibly non-UTF-8) variables;
/// (exit code, stdout, stderr).
fn cli(args: &[&str], config: &std::path::Path, env: &[(&[u8], &[u8])]) -> (i32, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_switchboard"));
    cmd.args(args)
        .arg("--config")
        .arg(config)
        .env_remove("SWITCHBOARD_CONFIG");
    for (k, v) in env {
        cmd.env(OsStr::from_bytes(k), OsStr::from_bytes(v));
    }
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn write(dir: &std::path::Path, text: &str) -> std::path::PathBuf {
    let path = dir.join("switchboard.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Item 8: any non-UTF-8 variable made every subcommand panic (exit 101).
#[test]
fn non_utf8_environment_variables_do_not_panic() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), &(base_config(dir.path()) + &api_service("")));
    for args in [&["check-config"][..], &["migrate"]] {
        let (code, out, err) = cli(args, &path, &[(b"LC_WHATEVER", b"caf\xe9")]);
        assert_eq!(
            code, 0,
            "{args:?}: a foreign variable is ignored\n{out}{err}"
        );
    }
    let (code, _, err) = cli(
        &["check-config"],
        &path,
        &[(b"SWITCHBOARD_SERVICES__API__NAME", b"caf\xe9")],
    );
    assert_eq!(code, 2, "{err}");
    assert_eq!(
        err.trim(),
        "SWITCHBOARD_SERVICES__API__NAME: the environment variable is not valid UTF-8"
    );
    let (code, _, err) = cli(&["check-config"], &path, &[(b"SWITCHBOARD_\xff__X", b"1")]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("SWITCHBOARD_\u{fffd}__X: the environment variable is not valid UTF-8"),
        "{err}"
    );
}

/// Item 9: `SWITCHBOARD_SERVICES__X[99999999]__TYPE=api` allocated ~9.6 GB and aborted.
#[test]
fn huge_array_indexes_in_overrides_are_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), &base_config(dir.path()));
    for var in [
        "SWITCHBOARD_SERVICES__X[99999999]__TYPE",
        "SWITCHBOARD_SERVICES__X[-99999999]__TYPE",
    ] {
        let started = Instant::now();
        let (code, _, err) = cli(&["check-config"], &path, &[(var.as_bytes(), b"api")]);
        assert_eq!(code, 2, "{err}");
        assert!(err.starts_with(&format!("{var}: array index [")), "{err}");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "refused at once"
        );
    }
}

/// Item 10: `"18446744073709551615s"` passed check-config, then panicked the supervisor
/// when added to a timestamp. Every duration key is bounded, named; the bound itself
/// runs.
#[cfg(all(feature = "webhook", feature = "intercom"))]
#[tokio::test]
async fn durations_are_bounded_by_key_and_the_bound_runs() {
    let dir = tempfile::tempdir().unwrap();
    let huge = "\"18446744073709551615s\"";
    let text = base_config(dir.path())
        .replace("restart_max = \"1s\"", &format!("restart_max = {huge}"))
        .replace("retry_max = \"400ms\"", "retry_max = \"3651d\"")
        .replace(
            "shutdown_timeout = \"5s\"",
            &format!("shutdown_timeout = \"5s\"\nheader_read_timeout = {huge}"),
        )
        + &webhook_service("http://127.0.0.1:9/", &format!("timeout = {huge}"));
    let path = write(dir.path(), &text);
    let (code, _, err) = cli(&["check-config"], &path, &[]);
    assert_eq!(code, 2, "{err}");
    for key in [
        "delivery.retry_max",
        "server.header_read_timeout",
        "services.hook.params.timeout",
        "supervisor.restart_max",
    ] {
        assert!(
            err.lines()
                .any(|l| l.starts_with(&format!("{key}: must be at most 10 years, got "))),
            "{key}:\n{err}"
        );
    }
    let (code, _, err) = cli(&["run"], &path, &[]);
    assert_eq!(code, 2, "run refuses it before starting: {err}");

    // At the bound, a service that keeps failing backs off ten years without a panic.
    let h = Harness::start(|dir| {
        base_config(dir)
            .replace("restart_initial = \"100ms\"", "restart_initial = \"3650d\"")
            .replace("restart_max = \"1s\"", "restart_max = \"3650d\"")
            + &api_service("")
            + &intercom_service("ic", "intercom-client-secret")
    });
    let d = &h.daemon;
    let state = h.api.wait_state("ic", "backoff").await;
    let until: jiff::Timestamp = state["until"].as_str().unwrap().parse().unwrap();
    // Full jitter: anywhere up to ten years ahead.
    let ten_years = jiff::SignedDuration::from_hours(24 * 3651);
    let now = jiff::Timestamp::now();
    assert!(until > now && until < now + ten_years, "{state}");
    assert_eq!(h.api.get("/v1/services").await.0, 200, "still serving");
    assert!(!d.log_text().contains("panicked"), "{}", d.log_text());
    h.finish();
}

/// Item 11: a number beyond TOML's integers was reported by file position only.
#[test]
fn an_out_of_range_number_is_named_by_its_key() {
    let dir = tempfile::tempdir().unwrap();
    let text = base_config(dir.path()).replace(
        "retry_max = \"400ms\"",
        "retry_max = \"400ms\"\nmax_attempts = 18446744073709551615",
    );
    let path = write(dir.path(), &text);
    let (code, _, err) = cli(&["check-config"], &path, &[]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.starts_with("delivery.max_attempts: not valid TOML: "),
        "{err}"
    );
}

/// Item 11: `after=0` was 400 on the REST lists and accepted on `/v1/events`. Both take
/// it as "from the start" now, and both refuse what is not a cursor.
#[tokio::test]
async fn after_zero_means_the_start_everywhere() {
    let h = Harness::start(|dir| base_config(dir) + &api_service(""));
    let d = &h.daemon;
    let api = &h.api;
    let (_, m) = api.inbound("m-1", "c-1", "hello").await;
    let conv = m["conversation_id"].as_str().unwrap().to_owned();
    for path in [
        "/v1/conversations",
        &format!("/v1/conversations/{conv}/messages"),
    ] {
        let (s, all) = api.get(&format!("{path}?after=0")).await;
        assert_eq!(s, 200, "{path}: {all}");
        assert_eq!(all["data"].as_array().unwrap().len(), 1, "{path}: {all}");
        for bad in ["-1", "x", "+1"] {
            let (s, e) = api.get(&format!("{path}?after={bad}")).await;
            assert_eq!(s, 400, "{path} after={bad}: {e}");
        }
    }
    assert!(
        !read_events(d, TOKEN, 0, 1, Duration::from_secs(5))
            .await
            .is_empty()
    );
    // The empty value too (schemathesis: the document says a number).
    for bad in ["-1", "x", "+1", ""] {
        let url = format!("ws://{}/v1/events?after={bad}&access_token={TOKEN}", d.addr);
        let e = tokio_tungstenite::connect_async(url).await.unwrap_err();
        assert!(e.to_string().contains("400"), "after={bad}: {e}");
    }
    h.finish();
}
