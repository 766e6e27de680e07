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
    let r = reqwest::Client::new()
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
