//! End-to-end tests of the `dashly` service type: the real binary and SQLite against a
//! fake Dashly Web API on loopback that checks every request's key, `id_as_string` and
//! form, and answers in the `meta` envelope. The budget under load (3 minutes) is in
//! `tests/dashly_budget.rs`.
#![cfg(all(feature = "dashly", feature = "api"))]

mod common;
#[path = "fakes/dashly.rs"]
mod dashly_fake;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use axum::http::Method;
use common::*;
use dashly_fake::*;
use serde_json::{Value, json};

const T: Duration = Duration::from_secs(20);

/// A `dashly` service `dl` against the fake (with `extra` params), and the api service.
fn config(dir: &std::path::Path, fake: &FakeDashly, extra: &str) -> String {
    base_config(dir)
        + &api_service("")
        + &format!(
            r#"
[services.dl]
type = "dashly"
[services.dl.params]
app_id = {APP_ID}
auth_token = "{AUTH_TOKEN}"
admin_id = "{ADMIN}"
api_base = "{}"
poll_interval = "1s"
{extra}
"#,
            fake.base()
        )
}

async fn started(fake: &FakeDashly, extra: &str) -> Harness {
    let h = Harness::start(|dir| config(dir, fake, extra));
    h.api.wait_state("dl", "connected").await;
    h
}

/// Inbound messages of service `dl`: (conversation external id, message).
async fn inbound(api: &Api) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for c in api.conversations("dl").await {
        for m in api.messages(c["id"].as_str().unwrap()).await {
            if m["direction"] == "inbound" {
                out.push((c["external_id"].as_str().unwrap().to_owned(), m));
            }
        }
    }
    out
}

async fn inbound_ids(api: &Api) -> Vec<String> {
    let mut ids: Vec<String> = inbound(api)
        .await
        .into_iter()
        .map(|(_, m)| m["external_id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    ids
}

async fn wait_inbound(api: &Api, n: usize) -> Vec<String> {
    eventually(T, &format!("{n} inbound messages"), || async {
        let ids = inbound_ids(api).await;
        (ids.len() >= n).then_some(ids)
    })
    .await
}

/// Waits for `n` more conversation list requests than `since`.
async fn passes(fake: &FakeDashly, since: usize, n: usize) {
    eventually(T, &format!("{n} more polls"), || async {
        (fake.lists().len() >= since + n).then_some(())
    })
    .await;
}

async fn message_when(api: &Api, id: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    eventually(T, what, || async {
        let m = api.message(id).await;
        done(&m).then_some(m)
    })
    .await
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[tokio::test]
async fn visitor_parts_come_in_once_and_history_echoes_and_colleagues_stay_out() {
    let fake = FakeDashly::start().await;
    // History: written before the service's first start.
    fake.visitor_part_aged(
        "c-old",
        "u-old",
        "last year's question",
        Duration::from_secs(3600),
    );
    let h = started(&fake, "").await;
    let api = &h.api;

    let p1 = fake.visitor_part("c-1", "u-1", "Hello, is my order on its way?");
    fake.attach(
        "c-1",
        "https://files.dashly.app/u-1/photo.jpg",
        "photo.jpg",
        "image/jpeg",
    );
    let p2 = fake.visitor_part("c-1", "u-1", "  It is #42  ");
    fake.other_part(
        "c-1",
        json!({"type": "admin", "id": "78", "name": "Colleague"}),
        "Looking",
    );
    fake.other_part("c-1", json!({"type": "bot", "id": "9"}), "Bot says hi");
    let p3 = fake.visitor_part("c-2", "u-2", "Second visitor");
    let ids = wait_inbound(api, 3).await;
    assert_eq!(ids, sorted(vec![p1.clone(), p2.clone(), p3.clone()]));

    let all = inbound(api).await;
    let (conv, first) = all
        .iter()
        .find(|(_, m)| m["external_id"] == p1.as_str())
        .unwrap();
    assert_eq!(conv, "c-1");
    assert_eq!(first["text"], "Hello, is my order on its way?");
    assert_eq!(
        first["attachments"],
        json!([{"url": "https://files.dashly.app/u-1/photo.jpg", "content_type": "image/jpeg", "name": "photo.jpg"}])
    );
    let second = all
        .iter()
        .find(|(_, m)| m["external_id"] == p2.as_str())
        .unwrap();
    assert_eq!(second.1["text"], "It is #42");
    let c1 = api.conversation("dl", "c-1").await;
    assert_eq!(c1["contact"]["external_id"], "u-1");
    assert_eq!(c1["contact"]["name"], "Visitor u-1");
    assert_eq!(c1["contact"]["email"], "u-1@example.com");

    // Later passes read nothing again: the conversations' last_update did not move, so
    // their parts are not fetched, and nothing is stored twice.
    let parts_before = fake
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/parts"))
        .count();
    passes(&fake, fake.lists().len(), 3).await;
    let parts_after = fake
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/parts"))
        .count();
    assert_eq!(
        parts_after, parts_before,
        "unchanged conversations were read again"
    );
    assert_eq!(inbound_ids(api).await.len(), 3);
    let history_reads = fake.requests_to(Method::GET, "/v1/conversations/c-old/parts");
    assert!(history_reads.is_empty(), "history costs no parts request");

    // A new part in c-2 is read from the last part on: one parts request, after= set.
    let p4 = fake.visitor_part("c-2", "u-2", "Anyone?");
    wait_inbound(api, 4).await;
    let reads = fake.requests_to(Method::GET, "/v1/conversations/c-2/parts");
    assert_eq!(reads.len(), 2, "{reads:?}");
    assert_eq!(reads[1].args.get("after"), Some(&p3));
    assert_eq!(reads[1].args["count"], "50");
    assert!(inbound_ids(api).await.contains(&p4));

    // No webhooks: nothing may be posted in, whatever it carries.
    let r = reqwest::Client::new()
        .post(h.daemon.url("/hooks/dl"))
        .header("content-type", "application/json")
        .body(r#"{"meta":{"status":200},"data":[]}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
    assert_eq!(inbound_ids(api).await.len(), 4);
    assert!(
        fake.requests_to(Method::POST, "/v1/conversations/c-1/markread")
            .is_empty()
    );
    assert!(fake.problems().is_empty(), "{:?}", fake.problems());
    h.daemon.assert_never_logged(&[AUTH_TOKEN]);
    h.finish();
    fake.stop().await;
}

#[tokio::test]
async fn a_reply_goes_out_as_the_admin_in_the_documented_form_and_is_not_read_back() {
    let fake = FakeDashly::start().await;
    let h = started(&fake, "").await;
    let api = &h.api;
    fake.visitor_part("c-7", "u-7", "Where is my parcel?");
    wait_inbound(api, 1).await;
    let conv = api.conversation("dl", "c-7").await["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let id = api
        .reply(
            &conv,
            json!({"text": "On its way & due Friday", "author": {"type": "agent", "name": "Anna"},
                   "attachments": [{"url": "https://files.example.com/label.png"}]}),
        )
        .await;
    let sent = message_when(api, &id, "the reply sent", |m| m["status"] == "sent").await;
    let replies = fake.requests_to(Method::POST, "/v1/conversations/c-7/reply");
    assert_eq!(replies.len(), 1);
    let r = &replies[0];
    assert!(
        r.content_type
            .starts_with("application/x-www-form-urlencoded")
    );
    let keys: HashSet<&str> = r.args.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        HashSet::from(["auth_token", "id_as_string", "body", "from_admin"])
    );
    assert_eq!(
        r.args["body"],
        "On its way & due Friday\nhttps://files.example.com/label.png"
    );
    assert_eq!(r.args["from_admin"], ADMIN);
    assert_eq!(r.args["auth_token"], AUTH_TOKEN);
    let last = fake.parts("c-7").last().unwrap().clone();
    assert_eq!(last["from"]["id"], ADMIN);
    assert_eq!(sent["external_id"], last["id"]);

    // The reply moved the conversation: the poller reads the part, our own, and skips it.
    let reads = fake
        .requests_to(Method::GET, "/v1/conversations/c-7/parts")
        .len();
    eventually(T, "the reply read back", || async {
        (fake
            .requests_to(Method::GET, "/v1/conversations/c-7/parts")
            .len()
            > reads)
            .then_some(())
    })
    .await;
    passes(&fake, fake.lists().len(), 1).await;
    let directions: Vec<Value> = api
        .messages(&conv)
        .await
        .iter()
        .map(|m| m["direction"].clone())
        .collect();
    assert_eq!(directions, [json!("inbound"), json!("outbound")]);
    assert!(fake.problems().is_empty(), "{:?}", fake.problems());
    h.finish();
    fake.stop().await;
}

#[tokio::test]
async fn the_cursor_is_kept_as_text_and_downtime_is_caught_up_without_duplicates() {
    let fake = FakeDashly::start().await;
    let mut h = started(&fake, "").await;
    let p1 = fake.visitor_part("c-1", "u-1", "before the restart");
    wait_inbound(&h.api, 1).await;
    passes(&fake, fake.lists().len(), 1).await;
    h.stop();

    // While down: a new part in c-1, a new conversation.
    let p2 = fake.visitor_part("c-1", "u-1", "while you were away");
    let p3 = fake.visitor_part("c-2", "u-2", "new while away");
    let before = fake.lists().len();
    h.start_again(&[]);
    let ids = wait_inbound(&h.api, 3).await;
    assert_eq!(ids, sorted(vec![p1, p2, p3]));
    // The first list after the restart starts from the stored cursor: the float Dashly
    // gave, as its text.
    let first = &fake.lists()[before];
    let after = first.args.get("after").expect("a stored cursor");
    assert!(
        after.parse::<f64>().is_ok() && after.contains('.'),
        "{after}"
    );
    passes(&fake, fake.lists().len(), 2).await;
    assert_eq!(inbound_ids(&h.api).await.len(), 3, "no duplicates");
    assert!(fake.problems().is_empty(), "{:?}", fake.problems());
    h.finish();
    fake.stop().await;
}

fn script(status: u16, error: &'static str, message: &str, retry_after: Option<u64>) -> Scripted {
    Scripted {
        status,
        error,
        message: message.into(),
        retry_after,
    }
}

#[tokio::test]
async fn reply_errors_follow_the_meta_envelope() {
    let fake = FakeDashly::start().await;
    // Two attempts at most: a reply that waits out three 429s spent none of them.
    let h = Harness::start(|dir| {
        config(dir, &fake, "").replace("[delivery]\n", "[delivery]\nmax_attempts = 2\n")
    });
    let api = &h.api;
    api.wait_state("dl", "connected").await;
    fake.visitor_part("c-1", "u-1", "hi");
    wait_inbound(api, 1).await;
    let conv = api.conversation("dl", "c-1").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let say = |text: &str| json!({"text": text, "author": {"type": "agent"}});

    // ValidationError / LookupError: failed now, with Dashly's words.
    fake.state.reply_script.lock().unwrap().push_back(script(
        400,
        "LookupError",
        "One of provided ids is not found",
        None,
    ));
    let id = api.reply(&conv, say("one")).await;
    let m = message_when(api, &id, "failed", |m| m["status"] == "failed").await;
    assert_eq!(
        m["error"],
        "Dashly API: HTTP 400 LookupError: One of provided ids is not found"
    );

    // A 500, then success: retried.
    fake.state.reply_script.lock().unwrap().push_back(script(
        500,
        "Error500",
        "Internal service error",
        None,
    ));
    let id = api.reply(&conv, say("two")).await;
    message_when(api, &id, "sent after a 500", |m| m["status"] == "sent").await;

    // Three 429s with Retry-After: each waited out, no attempt spent.
    for _ in 0..3 {
        fake.state.reply_script.lock().unwrap().push_back(script(
            429,
            "TooManyRequests",
            "Request limit quantity exceeded",
            Some(1),
        ));
    }
    let started = Instant::now();
    let id = api.reply(&conv, say("three")).await;
    message_when(api, &id, "sent after three 429s", |m| m["status"] == "sent").await;
    assert!(
        started.elapsed() >= Duration::from_secs(3),
        "Retry-After honoured: {:?}",
        started.elapsed()
    );
    let tries = fake.requests_to(Method::POST, "/v1/conversations/c-1/reply");
    let throttled: Vec<_> = tries.iter().filter(|r| r.status == 429).collect();
    assert_eq!(throttled.len(), 3);
    for pair in tries.windows(2).filter(|w| w[0].status == 429) {
        assert!(
            pair[1].at.duration_since(pair[0].at) >= Duration::from_millis(950),
            "a retry before Retry-After"
        );
    }

    h.daemon.assert_never_logged(&[AUTH_TOKEN]);
    h.finish();
    fake.stop().await;
}

#[tokio::test]
async fn a_refused_key_fails_the_service_and_a_poll_429_waits() {
    let fake = FakeDashly::start().await;
    *fake.state.refuse_key.lock().unwrap() = true;
    let h = Harness::start(|dir| config(dir, &fake, ""));
    let state = h.api.wait_state("dl", "failed").await;
    assert!(
        state["reason"]
            .as_str()
            .unwrap()
            .contains("NotAuthenticated"),
        "{state}"
    );
    *fake.state.refuse_key.lock().unwrap() = false;
    h.api.wait_state("dl", "connected").await;

    // A 429 on a poll pauses the key for its Retry-After, then the pass goes on.
    fake.state.poll_script.lock().unwrap().push_back(script(
        429,
        "TooManyRequests",
        "Request limit quantity exceeded",
        Some(2),
    ));
    let p = fake.visitor_part("c-1", "u-1", "after the pause");
    wait_inbound(&h.api, 1).await;
    let reqs = fake.requests();
    let i = reqs
        .iter()
        .position(|r| r.status == 429)
        .expect("the scripted 429");
    let next = &reqs[i + 1];
    assert!(
        next.at.duration_since(reqs[i].at) >= Duration::from_millis(1950),
        "the pause was not waited out"
    );
    assert_eq!(inbound_ids(&h.api).await, [p]);

    // NotAuthenticated on a reply: the service fails, the reply is held (never failed),
    // and once Dashly takes the key again it goes out, once.
    let conv = h.api.conversation("dl", "c-1").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for _ in 0..2 {
        fake.state.reply_script.lock().unwrap().push_back(script(
            401,
            "NotAuthenticated",
            "Invalid (or missing) auth token",
            None,
        ));
    }
    let id = h
        .api
        .reply(
            &conv,
            json!({"text": "still there?", "author": {"type": "agent"}}),
        )
        .await;
    let failed = h.api.wait_state("dl", "failed").await;
    assert!(
        failed["reason"]
            .as_str()
            .unwrap()
            .contains("Dashly refused the auth_token"),
        "{failed}"
    );
    message_when(&h.api, &id, "sent once the key works", |m| {
        m["status"] == "sent"
    })
    .await;
    let replies = fake.requests_to(Method::POST, "/v1/conversations/c-1/reply");
    assert_eq!(
        replies.iter().map(|r| r.status).collect::<Vec<_>>(),
        [401, 401, 200]
    );
    h.api.wait_state("dl", "connected").await;
    h.daemon.assert_never_logged(&[AUTH_TOKEN]);
    h.finish();
    fake.stop().await;
}

#[tokio::test]
async fn markread_follows_new_parts_and_the_budget_is_in_metrics() {
    let fake = FakeDashly::start().await;
    let h = started(&fake, "markread = true").await;
    fake.visitor_part("c-1", "u-1", "read me");
    wait_inbound(&h.api, 1).await;
    eventually(T, "markread", || async {
        (!fake
            .requests_to(Method::POST, "/v1/conversations/c-1/markread")
            .is_empty())
        .then_some(())
    })
    .await;
    passes(&fake, fake.lists().len(), 2).await;
    assert_eq!(
        fake.requests_to(Method::POST, "/v1/conversations/c-1/markread")
            .len(),
        1
    );

    let metrics = reqwest::get(h.daemon.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let line = metrics
        .lines()
        .find(|l| l.starts_with("switchboard_provider_budget_remaining{service=\"dl\"}"))
        .unwrap_or_else(|| panic!("no budget gauge in {metrics}"));
    let remaining: i64 = line.rsplit(' ').next().unwrap().parse().unwrap();
    let spent = fake.requests().len() as i64;
    assert!(
        remaining < 60 && remaining >= 60 - spent,
        "{line} after {spent} requests"
    );
    h.finish();
    fake.stop().await;
}
