//! End-to-end: the real binary, a real SQLite file, real HTTP over loopback.
#![cfg(all(feature = "api", feature = "webhook"))]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use common::*;
use serde_json::json;

const T: Duration = Duration::from_secs(15);

fn seq(r: &Received) -> i64 {
    r.json()["seq"].as_i64().unwrap()
}

#[tokio::test]
async fn inbound_reaches_the_webhook_signed_and_in_order() {
    let rx = Receiver::start().await;
    let h = Harness::start(|dir| {
        base_config(dir) + &api_service("") + &webhook_service(&rx.url("/events"), "")
    });
    let (_d, api) = (&h.daemon, &h.api);

    let (status, msg) = api
        .post(
            "/v1/services/api/messages",
            &json!({"external_id": "m-1", "contact": {"external_id": "c-42", "name": "Mary", "email": "mary@example.com"},
                    "conversation_external_id": "t-7", "text": "Hello",
                    "attachments": [{"url": "https://files.example.com/a.png", "content_type": "image/png", "name": "a.png"}]}),
        )
        .await;
    assert_eq!(status, 201, "{msg}");
    assert_eq!(msg["text"], "Hello");
    assert_eq!(msg["direction"], "inbound");
    assert_eq!(msg["status"], "received");
    assert_eq!(msg["attachments"][0]["content_type"], "image/png");

    let got = eventually(T, "message.created at the webhook", || async {
        let got = rx.accepted();
        got.iter()
            .any(|r| r.json()["type"] == "message.created")
            .then_some(got)
    })
    .await;
    for r in &got {
        assert!(
            verify_standard_webhook(WEBHOOK_SECRET, r),
            "bad signature on {:?}",
            r.json()
        );
        assert_eq!(r.header("webhook-id"), format!("evt_{}", seq(r)));
        assert_eq!(r.header("content-type"), "application/json");
    }
    let conv_events: Vec<String> = got
        .iter()
        .map(|r| r.json())
        .filter(|e| e["type"] != "service.state")
        .map(|e| e["type"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        conv_events,
        ["contact.created", "conversation.created", "message.created"]
    );
    let created = got
        .iter()
        .map(|r| r.json())
        .find(|e| e["type"] == "message.created")
        .unwrap();
    assert_eq!(created["data"]["message"]["id"], msg["id"]);
    assert_eq!(created["data"]["conversation"]["external_id"], "t-7");
    assert_eq!(created["data"]["conversation"]["contact"]["name"], "Mary");
    assert_eq!(
        created["data"]["conversation"]["contact"]["email"],
        "mary@example.com"
    );

    // The conversation is listed with its contact, and the message in it.
    let (_, list) = api.get("/v1/conversations").await;
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
    assert_eq!(list["next"], serde_json::Value::Null);
    let conv_id = list["data"][0]["id"].as_str().unwrap().to_owned();
    let (_, msgs) = api
        .get(&format!("/v1/conversations/{conv_id}/messages"))
        .await;
    assert_eq!(msgs["data"][0]["id"], msg["id"]);
    let (status, one) = api
        .get(&format!("/v1/messages/{}", msg["id"].as_str().unwrap()))
        .await;
    assert_eq!((status, &one["text"]), (200, &json!("Hello")));

    h.finish();
    rx.stop().await;
}

#[tokio::test]
async fn inbound_is_idempotent_on_external_id() {
    let h = Harness::start(|dir| base_config(dir) + &api_service(""));
    let d = &h.daemon;
    let api = &h.api;

    let (s1, first) = api.inbound("m-1", "c-1", "Hello").await;
    let before = read_events(d, TOKEN, 0, 100, Duration::from_millis(500)).await;
    let (s2, again) = api.inbound("m-1", "c-1", "Hello, edited by a retry").await;
    assert_eq!((s1, s2), (201, 200));
    assert_eq!(first, again, "a retry returns the original message");
    let after = read_events(d, TOKEN, 0, 100, Duration::from_millis(500)).await;
    assert_eq!(before.len(), after.len(), "a duplicate writes no events");
    let created = after
        .iter()
        .filter(|e| e["type"] == "message.created")
        .count();
    assert_eq!(created, 1);

    // A second message from the same contact lands in the same open conversation.
    let (s3, second) = api.inbound("m-2", "c-1", "Still there?").await;
    assert_eq!(s3, 201);
    assert_eq!(second["conversation_id"], first["conversation_id"]);
    let (_, list) = api.get("/v1/conversations").await;
    assert_eq!(list["data"].as_array().unwrap().len(), 1);

    h.finish();
}

#[tokio::test]
async fn a_reply_reaches_the_callback_signed_and_becomes_sent() {
    let rx = Receiver::start().await;
    let params = format!(
        "callback_url = \"{}\"\ncallback_secret = \"{WEBHOOK_SECRET}\"",
        rx.url("/replies")
    );
    let h = Harness::start(|dir| base_config(dir) + &api_service(&params));
    let d = &h.daemon;
    let api = &h.api;

    let (_, inbound) = api.inbound("m-1", "c-1", "Hello").await;
    let conv = inbound["conversation_id"].as_str().unwrap();
    let body = json!({"text": "Hi Mary", "author": {"type": "agent", "name": "Anna"}, "idempotency_key": "k-1"});
    let (status, reply) = api
        .post(&format!("/v1/conversations/{conv}/messages"), &body)
        .await;
    assert_eq!(status, 202, "{reply}");
    assert_eq!(reply["status"], "pending");
    assert_eq!(reply["direction"], "outbound");
    assert_eq!(reply["author"], json!({"type": "agent", "name": "Anna"}));

    let (status, repeat) = api
        .post(&format!("/v1/conversations/{conv}/messages"), &body)
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        repeat["id"], reply["id"],
        "the idempotency key returns the original"
    );

    let id = reply["id"].as_str().unwrap().to_owned();
    let sent = eventually(T, "the reply to be sent", || async {
        let (_, m) = api.get(&format!("/v1/messages/{id}")).await;
        (m["status"] == "sent").then_some(m)
    })
    .await;
    assert_eq!(sent["text"], "Hi Mary");
    let calls = rx.accepted();
    assert_eq!(calls.len(), 1, "one reply, one callback");
    let call = &calls[0];
    assert_eq!(call.path, "/replies");
    assert!(verify_standard_webhook(WEBHOOK_SECRET, call));
    let body = call.json();
    assert_eq!(body["type"], "message.outbound");
    assert_eq!(body["data"]["message"]["text"], "Hi Mary");
    assert_eq!(
        body["data"]["conversation"]["contact"]["external_id"],
        "c-1"
    );

    // The status change is an event.
    let events = read_events(d, TOKEN, 0, 100, Duration::from_millis(500)).await;
    assert!(events.iter().any(|e| e["type"] == "message.status"
        && e["data"]["message"]["id"] == id
        && e["data"]["message"]["status"] == "sent"));

    h.finish();
    rx.stop().await;
}

#[tokio::test]
async fn a_failing_webhook_gets_everything_in_order_once_it_recovers() {
    let rx = Receiver::start().await;
    rx.failing.store(true, std::sync::atomic::Ordering::SeqCst);
    let h = Harness::start(|dir| {
        base_config(dir)
            + &api_service("")
            + &webhook_service(
                &rx.url("/events"),
                "events = [\"message.created\", \"conversation.created\"]",
            )
    });
    let api = &h.api;

    for i in 0..4 {
        for contact in ["a", "b", "c"] {
            let (s, _) = api
                .inbound(
                    &format!("{contact}-{i}"),
                    contact,
                    &format!("{contact} says {i}"),
                )
                .await;
            assert_eq!(s, 201);
        }
    }
    // Let the receiver fail a few attempts of each queue's head.
    eventually(T, "several failed attempts", || async {
        let failed = rx.all().iter().filter(|(_, s)| *s == 503).count();
        (failed >= 6).then_some(())
    })
    .await;
    rx.failing.store(false, std::sync::atomic::Ordering::SeqCst);

    let accepted = eventually(T, "all 15 events delivered", || async {
        let got = rx.accepted();
        let ids: BTreeSet<String> = got
            .iter()
            .map(|r| r.header("webhook-id").to_owned())
            .collect();
        (ids.len() >= 15).then_some(got)
    })
    .await;
    // Exactly the subscribed events, each accepted once, each signed.
    let mut per_conversation: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for r in &accepted {
        assert!(verify_standard_webhook(WEBHOOK_SECRET, r));
        let e = r.json();
        assert!(
            e["type"] == "message.created" || e["type"] == "conversation.created",
            "filtered: {e}"
        );
        let conv = e["data"]["conversation"]["id"].as_str().unwrap().to_owned();
        per_conversation
            .entry(conv)
            .or_default()
            .push(e["seq"].as_i64().unwrap());
    }
    let ids: Vec<&str> = accepted.iter().map(|r| r.header("webhook-id")).collect();
    let unique: BTreeSet<&str> = ids.iter().copied().collect();
    assert_eq!(ids.len(), unique.len(), "no event accepted twice");
    assert_eq!(per_conversation.len(), 3);
    for (conv, seqs) in &per_conversation {
        assert_eq!(
            seqs.len(),
            5,
            "conversation {conv}: 1 conversation.created + 4 messages"
        );
        assert!(
            seqs.windows(2).all(|w| w[0] < w[1]),
            "conversation {conv} out of order: {seqs:?}"
        );
    }
    // Every retried delivery kept its webhook-id: failed ids are a subset of accepted ones.
    for (r, status) in rx.all() {
        if status == 503 {
            assert!(unique.contains(r.header("webhook-id")));
        }
    }

    h.finish();
    rx.stop().await;
}

#[tokio::test]
async fn a_restart_keeps_everything_and_sigterm_exits_zero() {
    let mut h = Harness::start(|dir| base_config(dir) + &api_service(""));
    let d = &h.daemon;
    let api = &h.api;
    let (_, first) = api.inbound("m-1", "c-1", "Hello").await;
    let conv = first["conversation_id"].as_str().unwrap().to_owned();
    let (_, reply) = api
        .post(
            &format!("/v1/conversations/{conv}/messages"),
            &json!({"text": "Hi"}),
        )
        .await;
    let events_before = read_events(d, TOKEN, 0, 1000, Duration::from_millis(500)).await;
    let status = h.daemon.stop();
    assert!(status.success(), "SIGTERM exits 0, got {status:?}");

    h.start_again(&[]);
    let (d, api) = (&h.daemon, &h.api);
    let (s, msgs) = api.get(&format!("/v1/conversations/{conv}/messages")).await;
    assert_eq!(s, 200);
    let ids: Vec<&str> = msgs["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [first["id"].as_str().unwrap(), reply["id"].as_str().unwrap()]
    );
    let events_after = read_events(d, TOKEN, 0, 1000, Duration::from_millis(500)).await;
    assert_eq!(
        &events_after[..events_before.len()],
        &events_before[..],
        "the event log survives"
    );
    // The same external id is still a duplicate, and the contact's conversation continues.
    let (s, again) = api.inbound("m-1", "c-1", "Hello").await;
    assert_eq!((s, &again["id"]), (200, &first["id"]));
    let (s, next) = api.inbound("m-2", "c-1", "Me again").await;
    assert_eq!(
        (s, &next["conversation_id"]),
        (201, &first["conversation_id"])
    );
    h.finish();
}

#[tokio::test]
async fn a_reply_queued_before_a_crash_is_delivered_after_restart() {
    let rx = Receiver::start().await;
    let addr = rx.addr.to_string();
    rx.stop().await; // the callback target is down
    let params =
        format!("callback_url = \"http://{addr}/replies\"\ncallback_secret = \"{WEBHOOK_SECRET}\"");
    let mut h = Harness::start(|dir| base_config(dir) + &api_service(&params));
    let api = &h.api;
    let (_, inbound) = api.inbound("m-1", "c-1", "Hello").await;
    let conv = inbound["conversation_id"].as_str().unwrap();
    let (s, reply) = api
        .post(
            &format!("/v1/conversations/{conv}/messages"),
            &json!({"text": "Hi"}),
        )
        .await;
    assert_eq!(s, 202);
    tokio::time::sleep(Duration::from_millis(300)).await;
    h.crash();

    let rx = Receiver::start_on(&addr).await;
    h.start_again(&[]);
    let api = &h.api;
    let id = reply["id"].as_str().unwrap().to_owned();
    eventually(
        T,
        "the queued reply to be sent after the restart",
        || async {
            let (_, m) = api.get(&format!("/v1/messages/{id}")).await;
            (m["status"] == "sent").then_some(())
        },
    )
    .await;
    let got = rx.accepted();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].json()["data"]["message"]["id"], json!(id));
    h.finish();
    rx.stop().await;
}

#[tokio::test]
async fn the_event_stream_resumes_after_a_sequence_number() {
    let h = Harness::start(|dir| base_config(dir) + &api_service(""));
    let d = &h.daemon;
    let api = &h.api;
    for i in 0..3 {
        api.inbound(&format!("m-{i}"), &format!("c-{i}"), "hi")
            .await;
    }
    let all = read_events(d, TOKEN, 0, 1000, Duration::from_millis(500)).await;
    let created: Vec<&serde_json::Value> = all
        .iter()
        .filter(|e| e["type"] == "message.created")
        .collect();
    assert_eq!(created.len(), 3);
    let seqs: Vec<i64> = all.iter().map(|e| e["seq"].as_i64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]));

    let cut = created[0]["seq"].as_i64().unwrap();
    let rest = read_events(d, TOKEN, cut, 1000, Duration::from_millis(500)).await;
    assert_eq!(
        rest.first().unwrap()["seq"].as_i64().unwrap(),
        seqs[seqs.iter().position(|&s| s == cut).unwrap() + 1]
    );
    assert_eq!(
        rest.len(),
        all.iter()
            .filter(|e| e["seq"].as_i64().unwrap() > cut)
            .count()
    );

    // A live subscriber gets new events as they are committed.
    let head = *seqs.last().unwrap();
    let live = tokio::spawn({
        let url = d.url("");
        async move {
            let addr = url.trim_start_matches("http://").to_owned();
            let (mut ws, _) = tokio_tungstenite::connect_async(format!(
                "ws://{addr}/v1/events?after={head}&access_token={TOKEN}"
            ))
            .await
            .unwrap();
            use futures_util::StreamExt;
            loop {
                if let Some(Ok(tokio_tungstenite::tungstenite::Message::Text(t))) = ws.next().await
                {
                    return serde_json::from_str::<serde_json::Value>(&t).unwrap();
                }
            }
        }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    api.inbound("m-live", "c-0", "live").await;
    let e = tokio::time::timeout(T, live).await.unwrap().unwrap();
    assert_eq!(e["data"]["message"]["external_id"], "m-live");
    h.finish();
}
