//! Item 2 of issue 14 (and the "always answers too late" aside): deliveries never follow
//! redirects — a 3xx is a failed attempt naming the `Location` — and a timeout names
//! its limit.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::IntoResponse;
use serde_json::json;

use super::kit::*;
use crate::common::*;

/// A target that redirects, with a place the redirects point to that counts its visits.
struct Target {
    server: FakeServer,
    /// (method, path and query) of every request to `/elsewhere`.
    elsewhere: Arc<Mutex<Vec<String>>>,
}

impl Target {
    async fn start() -> Target {
        // Where the redirects point: this server itself, known once it listens.
        let at: Arc<OnceLock<SocketAddr>> = Default::default();
        let elsewhere: Arc<Mutex<Vec<String>>> = Default::default();
        let (seen, here) = (elsewhere.clone(), at.clone());
        let app = axum::Router::new().fallback(move |method: Method, uri: Uri, _h: HeaderMap| {
            let (seen, here) = (seen.clone(), here.clone());
            async move {
                let addr = here.get().expect("listening");
                let to = |status: StatusCode, location: String| {
                    (status, [("location", location)], "moved").into_response()
                };
                match uri.path() {
                    "/r302" => to(
                        StatusCode::FOUND,
                        format!("http://{addr}/elsewhere?from=302"),
                    ),
                    "/r307" => to(
                        StatusCode::TEMPORARY_REDIRECT,
                        format!("http://user:pw@{addr}/elsewhere?from=307"),
                    ),
                    "/callback" => to(
                        StatusCode::MOVED_PERMANENTLY,
                        format!("http://{addr}/elsewhere?from=callback"),
                    ),
                    "/bare" => (StatusCode::MULTIPLE_CHOICES, "pick one").into_response(),
                    "/slow" => {
                        tokio::time::sleep(Duration::from_secs(20)).await;
                        StatusCode::OK.into_response()
                    }
                    _ => {
                        seen.lock().unwrap().push(format!("{method} {uri}"));
                        StatusCode::OK.into_response()
                    }
                }
            }
        });
        let server = FakeServer::spawn(app).await;
        at.set(server.addr).unwrap();
        Target { server, elsewhere }
    }

    fn url(&self, path: &str) -> String {
        self.server.url(path)
    }
}

/// A webhook service `id` pointing at `url`, giving up after two attempts.
fn webhook(id: &str, url: &str, extra: &str) -> String {
    format!(
        "\n[services.{id}]\ntype = \"webhook\"\n[services.{id}.params]\nurl = \"{url}\"\n\
         secret = \"{WEBHOOK_SECRET}\"\nmax_attempts = 2\n{extra}\n"
    )
}

/// A 302 became a GET without a body and counted as delivered; a 307 re-sent the signed
/// body wherever it pointed. Now neither is followed: each attempt fails, naming the
/// `Location` (without credentials), and the target's "elsewhere" sees nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_never_follow_redirects_and_timeouts_name_their_limit() {
    let target = Target::start().await;
    let h = Harness::start(|dir| {
        base_config(dir).replace(
            "retry_max = \"400ms\"",
            "retry_max = \"400ms\"\nmax_attempts = 2",
        ) + &api_service(&format!(
            "callback_url = \"{}\"\ncallback_secret = \"{WEBHOOK_SECRET}\"",
            target.url("/callback")
        )) + &webhook("w302", &target.url("/r302"), "")
            + &webhook("w307", &target.url("/r307"), "")
            + &webhook("bare", &target.url("/bare"), "")
            + &webhook("slow", &target.url("/slow"), "timeout = \"300ms\"")
    });
    let d = &h.daemon;
    let api = &h.api;
    let (s, m) = api.inbound("m-1", "c-1", "hello").await;
    assert_eq!(s, 201, "{m}");
    let conv = m["conversation_id"].as_str().unwrap().to_owned();
    let reply = api.reply(&conv, json!({"text": "hi back"})).await;

    let failed = api.wait_status(&reply, "failed").await;
    let error = failed["error"].as_str().unwrap_or_default();
    assert!(
        error.contains(&format!(
            "answered HTTP 301 redirecting to http://{}/elsewhere?from=callback; redirects are not followed",
            target.server.addr
        )),
        "the callback's failure names the Location: {failed}"
    );

    let logs = eventually(
        Duration::from_secs(20),
        "every webhook to give up",
        || async {
            let logs = d.log_text();
            let gave_up = |id: &str| {
                logs.lines().any(|l| {
                    l.contains("delivery is dead") && l.contains(&format!("service_id={id} "))
                })
            };
            ["w302", "w307", "bare", "slow"]
                .iter()
                .all(|id| gave_up(id))
                .then_some(logs)
        },
    )
    .await;
    let dead: Vec<&str> = logs
        .lines()
        .filter(|l| l.contains("delivery is dead"))
        .collect();
    let has = |needle: &str| dead.iter().any(|l| l.contains(needle));
    assert!(
        has(&format!(
            "answered HTTP 302 redirecting to http://{}/elsewhere?from=302",
            target.server.addr
        )),
        "{dead:#?}"
    );
    assert!(
        has(&format!(
            "answered HTTP 307 redirecting to http://{}/elsewhere?from=307",
            target.server.addr
        )),
        "{dead:#?}"
    );
    assert!(
        !logs.contains("user:pw"),
        "a Location's credentials are not logged"
    );
    assert!(
        has("webhook target answered HTTP 300"),
        "a 3xx without Location fails too: {dead:#?}"
    );
    assert!(
        has("timed out after 300ms"),
        "the timeout is named: {dead:#?}"
    );
    assert_eq!(
        *target.elsewhere.lock().unwrap(),
        Vec::<String>::new(),
        "no redirect was followed"
    );
    let metrics = get_text(d.url("/metrics")).await;
    let attempts = |id: &str, result: &str| {
        metrics
            .lines()
            .filter(|l| l.starts_with("switchboard_deliveries_total{"))
            .filter(|l| l.contains(&format!("service=\"{id}\"")))
            .filter(|l| l.contains(&format!("result=\"{result}\"")))
            .count()
    };
    for id in ["w302", "w307", "bare", "slow"] {
        assert_eq!(attempts(id, "dead"), 1, "{id} gave up:\n{metrics}");
        assert_eq!(
            attempts(id, "success"),
            0,
            "{id}: nothing counted as delivered"
        );
    }
    h.finish();
}
