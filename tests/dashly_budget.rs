//! The `dashly` budget under load, measured at the fake: 200 active conversations, new
//! visitor parts arriving in many of them and 30 replies queued at once — more than 60
//! requests' worth in the first minute — and over the whole run (`DASHLY_BUDGET_SECS`,
//! default 180) the fake never sees more than 60 requests in any 60 s window (it answers
//! `TooManyRequests` past that, like Dashly, and none may be needed), every reply is
//! sent and every new part is ingested, once. The budget is the real one: 60 a minute.
//!
//! Run alone: `cargo test --test dashly_budget -- --nocapture` prints the figures.
#![cfg(all(feature = "dashly", feature = "api"))]

mod common;
#[path = "fakes/dashly.rs"]
mod dashly_fake;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use axum::http::Method;
use common::*;
use dashly_fake::*;
use serde_json::json;

/// Active conversations.
const CONVERSATIONS: usize = 200;

fn seconds() -> u64 {
    std::env::var("DASHLY_BUDGET_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(180)
}

fn config(dir: &std::path::Path, fake: &FakeDashly) -> String {
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
"#,
            fake.base()
        )
}

/// External ids of every inbound message of `dl`, and the conversations by external id.
async fn stored(api: &Api) -> (BTreeSet<String>, Vec<(String, String)>) {
    let mut ids = BTreeSet::new();
    let mut convs = Vec::new();
    let mut all = Vec::new();
    let mut after = "0".to_owned();
    loop {
        let (_, list) = api
            .get(&format!(
                "/v1/conversations?service_id=dl&limit=100&after={after}"
            ))
            .await;
        all.extend(list["data"].as_array().unwrap().iter().cloned());
        match &list["next"] {
            serde_json::Value::Null => break,
            n => after = n.as_str().map_or_else(|| n.to_string(), str::to_owned),
        }
    }
    for c in &all {
        let id = c["id"].as_str().unwrap().to_owned();
        convs.push((c["external_id"].as_str().unwrap().to_owned(), id.clone()));
        let (_, msgs) = api
            .get(&format!("/v1/conversations/{id}/messages?limit=100"))
            .await;
        for m in msgs["data"].as_array().unwrap() {
            if m["direction"] == "inbound" {
                assert!(
                    ids.insert(m["external_id"].as_str().unwrap().to_owned()),
                    "stored twice: {m}"
                );
            }
        }
    }
    (ids, convs)
}

#[tokio::test]
async fn sixty_a_minute_with_200_conversations_and_30_replies_queued() {
    let secs = seconds();
    let scale = |n: usize| (n * secs as usize / 180).max(5);
    let (first_wave, second_wave, replies) = (scale(40), scale(20), scale(30));

    let fake = FakeDashly::start().await;
    for i in 0..CONVERSATIONS {
        fake.visitor_part_aged(
            &format!("c-{i}"),
            &format!("u-{i}"),
            "an old question",
            Duration::from_secs(3600),
        );
    }
    let h = Harness::start(|dir| config(dir, &fake));
    let api = &h.api;
    api.wait_state("dl", "connected").await;
    let start = Instant::now();
    let deadline = start + Duration::from_secs(secs);

    // First wave: a new part in `first_wave` conversations.
    let mut expected = BTreeSet::new();
    for i in 0..first_wave {
        expected.insert(fake.visitor_part(
            &format!("c-{i}"),
            &format!("u-{i}"),
            &format!("first {i}"),
        ));
    }
    // Replies to the first `replies` of them as soon as they are stored, all at once.
    let targets: Vec<String> = (0..replies).map(|i| format!("c-{i}")).collect();
    let convs = eventually(
        Duration::from_secs(secs),
        "the reply targets stored",
        || async {
            let (_, convs) = stored(api).await;
            let found: Vec<String> = targets
                .iter()
                .filter_map(|t| convs.iter().find(|(e, _)| e == t).map(|(_, id)| id.clone()))
                .collect();
            (found.len() == targets.len()).then_some(found)
        },
    )
    .await;
    let queued_at = start.elapsed();
    let mut reply_ids = Vec::new();
    for c in &convs {
        let body =
            json!({"text": format!("answer to {c}"), "author": {"type": "agent", "name": "Anna"}});
        reply_ids.push(api.reply(c, body).await);
    }
    // Second wave, while the replies go out: new conversations' parts and second parts.
    for i in first_wave..first_wave + second_wave {
        let i = i % CONVERSATIONS;
        expected.insert(fake.visitor_part(
            &format!("c-{i}"),
            &format!("u-{i}"),
            &format!("second {i}"),
        ));
    }

    // Everything done, then watched until the deadline.
    let mut all_sent_at = None;
    let mut all_stored_at = None;
    while Instant::now() < deadline {
        if all_sent_at.is_none() {
            let mut sent = 0;
            for id in &reply_ids {
                sent += usize::from(api.message(id).await["status"] == "sent");
            }
            if sent == reply_ids.len() {
                all_sent_at = Some(start.elapsed());
            }
        }
        if all_stored_at.is_none() && stored(api).await.0 == expected {
            all_stored_at = Some(start.elapsed());
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }

    let reqs = fake.requests();
    let (busiest, throttled) = fake.busiest_minute();
    let reply_reqs: Vec<usize> = reqs
        .iter()
        .enumerate()
        .filter(|(_, r)| r.method == Method::POST && r.path.ends_with("/reply"))
        .map(|(i, _)| i)
        .collect();
    let polls_among_replies = match (reply_reqs.first(), reply_reqs.last()) {
        (Some(&a), Some(&b)) => (a..=b).filter(|i| !reply_reqs.contains(i)).count(),
        _ => 0,
    };
    let parts_reqs = reqs.iter().filter(|r| r.path.ends_with("/parts")).count();
    eprintln!(
        "dashly budget over {secs}s: {} requests ({} lists, {parts_reqs} parts, {} replies); \
         busiest 60 s window {busiest}; 429s {throttled}; replies queued at {queued_at:?}, \
         all sent at {all_sent_at:?} ({polls_among_replies} poll requests between the first \
         and last reply); {} new parts all stored at {all_stored_at:?}",
        reqs.len(),
        fake.lists().len(),
        reply_reqs.len(),
        expected.len(),
    );
    assert!(busiest <= LIMIT, "{busiest} requests within one minute");
    assert_eq!(throttled, 0, "Dashly had to refuse requests");
    assert!(all_sent_at.is_some(), "not every reply was sent");
    assert_eq!(reply_reqs.len(), reply_ids.len(), "a reply sent twice");
    assert!(all_stored_at.is_some(), "not every new part was stored");
    assert_eq!(stored(api).await.0, expected, "exactly the new parts, once");
    assert!(fake.problems().is_empty(), "{:?}", fake.problems());
    h.daemon.assert_never_logged(&[AUTH_TOKEN]);
    h.finish();
    fake.stop().await;
}
