//! End-to-end: the operator surface against the real binary. The OpenAPI document as
//! served, the status page in a real headless Chromium (login, a failing webhook's
//! growing outbox and its recovery, a screenshot, no console errors), and the page's
//! cookie and origin rules over plain HTTP.

mod common;
mod operator_kit;

use std::sync::atomic::Ordering;

use common::*;
use operator_kit::browser::{self, Browser};
use serde_json::json;

/// A client that follows no redirects (the page's answers are checked as given).
fn http() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(std::time::Duration::from_secs(10))
        .build()
        .unwrap()
}

fn config(dir: &std::path::Path, hook_url: &str) -> String {
    format!(
        "{}{}{}",
        base_config(dir),
        api_service(""),
        // Retried for long enough that the outbox grows instead of dead-lettering.
        webhook_service(hook_url, "max_attempts = 1000\nmax_age = \"1h\"")
    )
}

async fn inbound(api: &Api, n: usize, thread: &str) {
    let (s, b) = api
        .post(
            "/v1/services/api/messages",
            &json!({"external_id": format!("m-{thread}-{n}"), "contact": {"external_id": format!("c-{thread}")},
                    "conversation_external_id": thread, "text": format!("hello {n}")}),
        )
        .await;
    assert_eq!(s, 201, "{b}");
}

/// The hook row's outbox depth as the page shows it.
const DEPTH: &str =
    "Number(document.querySelector('tr[data-service=hook] td.depth').dataset.depth)";

#[tokio::test]
async fn the_status_page_shows_a_failing_webhook_and_its_recovery_in_a_real_browser() {
    if !browser::available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::start().await;
    receiver.failing.store(true, Ordering::SeqCst);
    let d = Daemon::start(dir.path(), &config(dir.path(), &receiver.url("/hook")));
    let api = Api::new(&d);
    let b = Browser::start().await;

    // Not signed in: the login form. A wrong token is refused and says so.
    b.goto(&d.url("/status")).await;
    b.wait_for(
        "the login form",
        "document.querySelector('form[action=\"/status/login\"]')",
    )
    .await;
    b.type_into("#token", "not-a-token").await;
    b.click_and_load("button[type=submit]").await;
    b.wait_for("the refusal", "document.querySelector('.problem')")
        .await;
    let refusal = b
        .eval("document.querySelector('.problem').textContent")
        .await;
    assert!(
        refusal
            .as_str()
            .unwrap()
            .contains("unknown or lacks the admin scope"),
        "{refusal}"
    );
    // A read-only token is refused too.
    b.type_into("#token", READ_TOKEN).await;
    b.click_and_load("button[type=submit]").await;
    b.wait_for("the refusal", "document.querySelector('.problem')")
        .await;

    // The admin token signs in; the token is nowhere in the URL.
    b.type_into("#token", TOKEN).await;
    b.click_and_load("button[type=submit]").await;
    b.wait_for(
        "the services table",
        "document.querySelector('tr[data-service=hook]')",
    )
    .await;
    let href = b.eval("location.href").await;
    assert_eq!(href, json!(d.url("/status")));
    let cookies = b.cookies(&d.url("/status")).await;
    let session = cookies
        .iter()
        .find(|c| c["name"] == "sb_session")
        .expect("the session cookie");
    assert_eq!(session["httpOnly"], json!(true), "{session}");
    assert_eq!(session["sameSite"], json!("Strict"), "{session}");
    assert_eq!(session["path"], json!("/"), "{session}");
    assert_eq!(
        session["secure"],
        json!(false),
        "plain http here: {session}"
    );
    assert!(!session["value"].as_str().unwrap().contains(TOKEN));
    assert_eq!(
        b.eval("document.cookie").await,
        json!(""),
        "HttpOnly: scripts cannot read it"
    );

    // Traffic while the webhook fails: its outbox grows, and the page follows.
    for n in 0..2 {
        inbound(&api, n, "t1").await;
    }
    b.wait_for("a growing depth", &format!("{DEPTH} >= 4"))
        .await;
    let first = b.eval(DEPTH).await.as_i64().unwrap();
    for n in 0..3 {
        inbound(&api, n, "t2").await;
    }
    b.wait_for("a deeper outbox", &format!("{DEPTH} > {first}"))
        .await;
    b.wait_for(
        "the failing delivery",
        "[...document.querySelectorAll('table.failures tr')].some(r => r.textContent.includes('hook') && r.textContent.includes('503'))",
    )
    .await;
    b.wait_for(
        "the inbound count",
        "Number(document.querySelector('tr[data-service=api] .totals').dataset.in) === 5",
    )
    .await;
    let shot = b
        .screenshot(&operator_kit::artifacts().join("status-failing.png"))
        .await;
    eprintln!("screenshot: {}", shot.display());

    // The receiver recovers: every delivery goes out, the page drains to 0.
    receiver.failing.store(false, Ordering::SeqCst);
    b.wait_for("a drained outbox", &format!("{DEPTH} === 0"))
        .await;
    b.wait_for("no failures", "document.querySelector('p.none')")
        .await;
    let shot = b
        .screenshot(&operator_kit::artifacts().join("status-recovered.png"))
        .await;
    eprintln!("screenshot: {}", shot.display());
    assert!(receiver.accepted().len() >= first as usize);

    // Signing out ends the session on the server: the old cookie no longer works.
    let old = b.cookies(&d.url("/status")).await;
    let old = old.iter().find(|c| c["name"] == "sb_session").unwrap()["value"]
        .as_str()
        .unwrap()
        .to_owned();
    b.click_and_load("header button[type=submit]").await;
    b.wait_for(
        "the login form again",
        "document.querySelector('form[action=\"/status/login\"]')",
    )
    .await;
    let r = http()
        .get(d.url("/status/live"))
        .header("cookie", format!("sb_session={old}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    let errors: Vec<String> = b
        .errors()
        .into_iter()
        // The browser reports each deliberate refusal above (the first visit and the
        // two wrong tokens answer 401) as a failed load; nothing else may appear.
        .filter(|e| !e.contains("status of 401"))
        .collect();
    assert!(errors.is_empty(), "console errors: {errors:#?}");
    drop(b);
    receiver.stop().await;
    d.terminate();
}

#[tokio::test]
async fn the_document_is_served_and_every_operation_reaches_its_handler() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(
        dir.path(),
        &format!("{}{}", base_config(dir.path()), api_service("")),
    );
    let http = http();
    let r = http.get(d.url("/v1/openapi.json")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/json");
    let doc: serde_json::Value = r.json().await.unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    let mut operations = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        let url = path
            .replace("{service_id}", "api")
            .replace("{id}", "1")
            .replace("{rest}", "status");
        for method in item.as_object().unwrap().keys() {
            operations += 1;
            let r = http
                .request(method.to_uppercase().parse().unwrap(), d.url(&url))
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            let body = r.text().await.unwrap();
            // The router's fallback and its method check are the only answers that
            // no handler gives.
            assert!(
                !body.contains("route not found") && status != 405,
                "{method} {path} did not reach a handler: {status} {body}"
            );
            assert!(
                item[method]["responses"].get(status.to_string()).is_some(),
                "{method} {path} answered {status}, which the document does not give"
            );
        }
    }
    assert!(operations >= 20, "{operations}");
    // And the fallback is what the check above would catch.
    let r = http.get(d.url("/v1/nothing")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert!(r.text().await.unwrap().contains("route not found"));
    d.terminate();
}

/// schemathesis: a plain GET of the event stream got axum's text/plain 400 before its
/// credentials were looked at.
#[tokio::test]
async fn the_event_stream_checks_credentials_before_the_upgrade() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(
        dir.path(),
        &format!("{}{}", base_config(dir.path()), api_service("")),
    );
    let http = http();
    let get = |q: String, token: Option<&'static str>| {
        let mut r = http.get(d.url(&format!("/v1/events{q}")));
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        async move {
            let r = r.send().await.unwrap();
            let status = r.status().as_u16();
            let body: serde_json::Value = r.json().await.unwrap();
            (status, body["error"]["code"].as_str().unwrap().to_owned())
        }
    };
    let q = |s: &str| s.to_owned();
    assert_eq!(get(q(""), None).await, (401, "unauthorized".into()));
    assert_eq!(
        get(q("?access_token=nope"), None).await,
        (401, "unauthorized".into())
    );
    assert_eq!(
        get(q("?after=-1"), Some(TOKEN)).await,
        (400, "malformed".into())
    );
    assert_eq!(
        get(q(""), Some(TOKEN)).await,
        (426, "upgrade_required".into())
    );
    assert_eq!(
        get(format!("?access_token={READ_TOKEN}"), None).await,
        (426, "upgrade_required".into())
    );
    d.terminate();
}

/// The page's rules over plain HTTP: who may see it, what the cookie says, where a
/// form may come from, and that a session ends with its token.
#[tokio::test]
async fn the_status_page_admits_admins_only_and_its_forms_only_from_its_own_origin() {
    let dir = tempfile::tempdir().unwrap();
    let public = "https://sb.example.com";
    let config = format!(
        "{}{}",
        base_config(dir.path()).replace(
            "listen = \"127.0.0.1:0\"",
            &format!("listen = \"127.0.0.1:0\"\npublic_url = \"{public}/\"")
        ),
        api_service("")
    );
    let d = Daemon::start(dir.path(), &config);
    let http = http();
    let page = |token: Option<&'static str>, cookie: Option<String>| {
        let mut r = http.get(d.url("/status"));
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        if let Some(c) = cookie {
            r = r.header("cookie", c);
        }
        async move {
            let r = r.send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    assert_eq!(page(Some(TOKEN), None).await.0, 200);
    let (s, body) = page(Some(READ_TOKEN), None).await;
    assert_eq!(s, 403, "{body}");
    let (s, body) = page(None, None).await;
    assert_eq!(s, 401);
    assert!(body.contains("action=\"/status/login\""));

    let login = |origin: Option<&'static str>, site: Option<&'static str>, token: &'static str| {
        let mut r = http
            .post(d.url("/status/login"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("token={token}"));
        if let Some(o) = origin {
            r = r.header("origin", o);
        }
        if let Some(s) = site {
            r = r.header("sec-fetch-site", s);
        }
        async move { r.send().await.unwrap() }
    };
    for (origin, site) in [
        (Some("https://evil.example"), None),
        (Some("null"), None),
        (None, Some("cross-site")),
        (Some(public), Some("same-site")),
    ] {
        let r = login(origin, site, TOKEN).await;
        assert_eq!(r.status(), 403, "{origin:?} {site:?}");
        assert!(r.headers().get("set-cookie").is_none());
    }
    assert_eq!(login(None, None, READ_TOKEN).await.status(), 401);
    // The public origin (a proxy in front) is the daemon's own.
    let r = login(Some(public), Some("same-origin"), TOKEN).await;
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/status");
    let set = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    for part in [
        "sb_session=",
        "HttpOnly",
        "SameSite=Strict",
        "Path=/",
        "Secure",
    ] {
        assert!(set.contains(part), "{set}");
    }
    assert!(!set.contains(TOKEN));
    let cookie = set.split(';').next().unwrap().to_owned();
    let (s, body) = page(None, Some(cookie.clone())).await;
    assert_eq!(s, 200);
    assert!(body.contains("Sign out"));
    assert!(!body.contains(TOKEN), "the page never shows the token");

    // The token leaves the config: its session ends with it.
    let without = config.replace(
        &format!("[services.api.params.tokens.full]\ntoken = \"{TOKEN}\"\nscopes = [\"read\", \"reply\", \"ingest\", \"admin\"]\n"),
        "",
    );
    assert_ne!(without, config);
    std::fs::write(&d.config_path, &without).unwrap();
    d.signal("HUP");
    eventually(
        std::time::Duration::from_secs(10),
        "the session to end",
        || {
            let p = page(None, Some(cookie.clone()));
            async move { (p.await.0 == 401).then_some(()) }
        },
    )
    .await;
    assert!(!d.log_text().contains(TOKEN), "no token in the logs");
    d.terminate();
}
