//! End-to-end: the operator surface against the real binary. The OpenAPI document as
//! served, the status page in a real headless Chromium (login, a failing webhook's
//! growing outbox and its recovery, a screenshot, no console errors), and the page's
//! cookie and origin rules over plain HTTP.

#![cfg(all(feature = "api", feature = "webhook"))]

mod common;
mod operator_kit;

use std::sync::atomic::Ordering;
use std::time::Duration;

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
    let receiver = Receiver::start().await;
    receiver.failing.store(true, Ordering::SeqCst);
    let h = Harness::start(|dir| config(dir, &receiver.url("/hook")));
    let d = &h.daemon;
    let api = &h.api;
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
        inbound(api, n, "t1").await;
    }
    b.wait_for("a growing depth", &format!("{DEPTH} >= 4"))
        .await;
    let first = b.eval(DEPTH).await.as_i64().unwrap();
    for n in 0..3 {
        inbound(api, n, "t2").await;
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
    h.finish();
}

#[tokio::test]
async fn the_document_is_served_and_every_operation_reaches_its_handler() {
    let h = Harness::start(|dir| format!("{}{}", base_config(dir), api_service("")));
    let d = &h.daemon;
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
    h.finish();
}

/// schemathesis: a plain GET of the event stream got axum's text/plain 400 before its
/// credentials were looked at.
#[tokio::test]
async fn the_event_stream_checks_credentials_before_the_upgrade() {
    let h = Harness::start(|dir| format!("{}{}", base_config(dir), api_service("")));
    let d = &h.daemon;
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
    h.finish();
}

/// The page's rules over plain HTTP: who may see it, what the cookie says, where a
/// form may come from, and that a session ends with its token.
#[tokio::test]
async fn the_status_page_admits_admins_only_and_its_forms_only_from_its_own_origin() {
    let public = "https://sb.example.com";
    let h = Harness::start(|dir| {
        format!(
            "{}{}",
            base_config(dir).replace(
                "listen = \"127.0.0.1:0\"",
                &format!("listen = \"127.0.0.1:0\"\npublic_url = \"{public}/\"")
            ),
            api_service("")
        )
    });
    let config = h.config();
    let d = &h.daemon;
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
    h.finish();
}

/// The events among `seqs` that a receiver accepted, in arrival order:
/// `(seq, webhook-id)`.
fn accepted_of(receiver: &Receiver, seqs: &[i64]) -> Vec<(i64, String)> {
    receiver
        .accepted()
        .iter()
        .map(|r| {
            (
                r.json()["seq"].as_i64().unwrap(),
                r.header("webhook-id").to_owned(),
            )
        })
        .filter(|(seq, _)| seqs.contains(seq))
        .collect()
}

async fn deliveries(api: &Api, query: &str) -> Vec<serde_json::Value> {
    let (s, b) = api.get(&format!("/v1/admin/deliveries?{query}")).await;
    assert_eq!(s, 200, "{b}");
    b["data"].as_array().unwrap().clone()
}

#[tokio::test]
async fn dead_deliveries_are_retried_with_their_webhook_id_before_what_is_queued_behind_them() {
    let receiver = Receiver::start().await;
    receiver.failing.store(true, Ordering::SeqCst);
    // First every event dies at its first failure.
    let h = Harness::start(|dir| {
        format!(
            "{}{}{}",
            base_config(dir),
            api_service(""),
            webhook_service(&receiver.url("/hook"), "max_attempts = 1")
        )
    });
    let dying = h.config();
    let d = &h.daemon;
    let api = &h.api;
    let cli = |args: &[&str]| {
        let mut all = vec!["deliveries"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--config", d.config_path.to_str().unwrap()]);
        let listen = d.addr.to_string();
        let (status, out, err) = run_cli(&all, &[("SWITCHBOARD_SERVER__LISTEN", listen.as_str())]);
        (status.success(), out, err)
    };

    let (s, m1) = api
        .post(
            "/v1/services/api/messages",
            &json!({"external_id": "m1", "contact": {"external_id": "c1"}, "conversation_external_id": "A", "text": "first"}),
        )
        .await;
    assert_eq!(s, 201);
    let conversation = m1["conversation_id"].as_str().unwrap().to_owned();
    let dead = eventually(
        Duration::from_secs(20),
        "the conversation's events to die",
        || {
            let api = &api;
            let conversation = conversation.clone();
            async move {
                let dead: Vec<_> = deliveries(api, "state=dead&service_id=hook")
                    .await
                    .into_iter()
                    .filter(|d| d["conversation_id"] == json!(conversation))
                    .collect();
                let types: Vec<_> = dead
                    .iter()
                    .map(|d| d["event_type"].as_str().unwrap().to_owned())
                    .collect();
                types
                    .contains(&"message.created".to_owned())
                    .then_some(dead)
            }
        },
    )
    .await;
    for x in &dead {
        assert_eq!(x["state"], "dead");
        assert_eq!(x["webhook_id"], json!(format!("evt_{}", x["event_seq"])));
        assert!(x["last_error"].as_str().unwrap().contains("503"), "{x}");
        assert_eq!(x["next_attempt_at"], json!(null));
    }
    // Every failed attempt carried the webhook-id the delivery lists.
    let tried: Vec<String> = receiver
        .all()
        .iter()
        .map(|(r, _)| r.header("webhook-id").to_owned())
        .collect();
    for x in &dead {
        assert!(tried.contains(&x["webhook_id"].as_str().unwrap().to_owned()));
    }

    // Now deliveries are retried for long; the receiver still fails. Two more messages
    // in the conversation: the first's events head its queue, the rest wait behind.
    let patient = dying.replace("max_attempts = 1", "max_attempts = 1000\nmax_age = \"1h\"");
    std::fs::write(&d.config_path, &patient).unwrap();
    assert_eq!(api.post("/v1/admin/reload", &json!({})).await.0, 200);
    for (n, text) in [("m2", "second"), ("m3", "third")] {
        let (s, _) = api
            .post(
                "/v1/services/api/messages",
                &json!({"external_id": n, "contact": {"external_id": "c1"}, "conversation_external_id": "A", "text": text}),
            )
            .await;
        assert_eq!(s, 201);
    }
    let live = eventually(
        Duration::from_secs(20),
        "a retrying head and rows queued behind it",
        || {
            let api = &api;
            let conversation = conversation.clone();
            async move {
                let live: Vec<_> = deliveries(api, "state=live&service_id=hook")
                    .await
                    .into_iter()
                    .filter(|d| d["conversation_id"] == json!(conversation))
                    .collect();
                let head = live
                    .iter()
                    .any(|d| d["state"] == "ready" && d["attempts"].as_i64() > Some(0));
                (head && live.iter().filter(|d| d["state"] == "queued").count() >= 1)
                    .then_some(live)
            }
        },
    )
    .await;
    let queued: Vec<i64> = live
        .iter()
        .filter(|d| d["state"] == "queued")
        .map(|d| d["event_seq"].as_i64().unwrap())
        .collect();
    // The head's next attempt is kept in flight across the retries, by a receiver that
    // has recovered: the lane making it has read the rows behind it, and must not go on
    // to them once it is answered.
    receiver.holding.store(true, Ordering::SeqCst);
    receiver.failing.store(false, Ordering::SeqCst);
    eventually(
        Duration::from_secs(20),
        "the head's attempt in flight",
        || {
            let held = receiver.held.load(Ordering::SeqCst);
            async move { (held > 0).then_some(()) }
        },
    )
    .await;

    // The CLI lists the dead ones and retries the newest; the status page's form (with
    // the bearer admin token) retries the rest of the service's.
    let (ok, out, err) = cli(&["list", "--service", "hook"]);
    assert!(ok, "{err}");
    for x in &dead {
        assert!(out.contains(x["webhook_id"].as_str().unwrap()), "{out}");
    }
    let newest = dead
        .iter()
        .map(|x| x["id"].as_str().unwrap().parse::<i64>().unwrap())
        .max()
        .unwrap();
    let (ok, out, err) = cli(&["retry", &newest.to_string()]);
    assert!(ok, "{err}");
    assert!(
        out.contains("requeued (ready)"),
        "the oldest live row of its queue, so its head: {out}"
    );
    let (ok, _, err) = cli(&["retry", &newest.to_string()]);
    assert!(!ok && err.contains("409"), "not dead any more: {err}");
    let (ok, _, err) = cli(&["retry", "999999"]);
    assert!(!ok && err.contains("not found"), "{err}");

    let http = http();
    let login = http
        .post(d.url("/status/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={TOKEN}"))
        .send()
        .await
        .unwrap();
    let cookie = login.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let form = |cookie: Option<String>, origin: Option<&'static str>| {
        let mut r = http.post(d.url("/status/services/hook/retry-dead"));
        if let Some(c) = cookie {
            r = r.header("cookie", c);
        }
        if let Some(o) = origin {
            r = r.header("origin", o);
        }
        async move { r.send().await.unwrap() }
    };
    assert_eq!(form(None, None).await.status(), 401);
    assert_eq!(
        form(Some(cookie.clone()), Some("https://evil.example"))
            .await
            .status(),
        403
    );
    let page = http
        .get(d.url("/status/dead?service_id=hook"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    let page = page.text().await.unwrap();
    assert!(page.contains("Retry all"), "{page}");
    for x in &dead {
        if x["id"].as_str().unwrap() != newest.to_string() {
            assert!(
                page.contains(&format!("data-delivery=\"{}\"", x["id"].as_str().unwrap())),
                "{page}"
            );
        }
    }
    let r = form(Some(cookie.clone()), None).await;
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/status/dead?service_id=hook");
    assert!(
        deliveries(api, "state=dead&service_id=hook")
            .await
            .iter()
            .all(|x| x["conversation_id"] != json!(conversation))
    );

    // The receiver recovers. In the conversation, every retried event arrives before
    // every event that was queued when they were retried, in their own order, with the
    // webhook-id they had. Only the attempt in flight at the retry (the old head's) may
    // come first.
    receiver.holding.store(false, Ordering::SeqCst);
    // Its queue: the dead ones, the head and what waited behind it.
    let seqs: Vec<i64> = dead
        .iter()
        .chain(&live)
        .map(|x| x["event_seq"].as_i64().unwrap())
        .collect();
    let got = eventually(Duration::from_secs(30), "the conversation's events", || {
        let got = accepted_of(&receiver, &seqs);
        let want = seqs.len();
        async move { (got.len() >= want).then_some(got) }
    })
    .await;
    let position = |seq: i64| got.iter().position(|(s, _)| *s == seq).unwrap();
    let mut retried: Vec<i64> = dead
        .iter()
        .map(|x| x["event_seq"].as_i64().unwrap())
        .collect();
    retried.sort();
    for w in retried.windows(2) {
        assert!(
            position(w[0]) < position(w[1]),
            "retried ones keep their order: {got:?}"
        );
    }
    for r in &retried {
        for q in &queued {
            assert!(
                position(*r) < position(*q),
                "retried {r} before queued {q}: {got:?}"
            );
        }
        let wid = &got[position(*r)].1;
        assert_eq!(wid, &format!("evt_{r}"));
    }
    for r in receiver.accepted() {
        assert!(verify_standard_webhook(WEBHOOK_SECRET, &r));
    }
    let (ok, out, _) = cli(&["retry", "--service", "hook"]);
    assert!(ok);
    assert!(out.contains(": 0 dead deliveries requeued"), "{out}");
    receiver.stop().await;
    h.finish();
}
