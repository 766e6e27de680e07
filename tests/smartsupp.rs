//! End-to-end for the `smartsupp` service type: the real binary against a real Prosody
//! on loopback, with a visitor client written for the tests.
#![cfg(all(feature = "smartsupp", feature = "api"))]

mod common;
#[path = "fakes/smartsupp/prosody.rs"]
mod prosody;
#[path = "fakes/smartsupp/visitor.rs"]
mod visitor;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use common::*;
use prosody::{Prosody, Security};
use serde_json::{Value, json};
use tokio_xmpp::parsers::message::Message;
use tokio_xmpp::parsers::receipts::Received;
use visitor::Visitor;

const T: Duration = Duration::from_secs(20);
const AGENT: (&str, &str) = ("agent", "agent-secret-1");
const VISITOR: (&str, &str) = ("visitor", "visitor-secret-1");
const AGENT_JID: &str = "agent@localhost";

fn smartsupp_service(id: &str, port: u16, extra: &str) -> String {
    format!(
        r#"
[services.{id}]
type = "smartsupp"
[services.{id}.params]
jid = "{AGENT_JID}"
host = "127.0.0.1"
port = {port}
{extra}
"#
    )
}

/// A daemon with an api service and `services`.
fn start(services: &str) -> Harness {
    Harness::start(|dir| base_config(dir) + &api_service("") + services)
}

/// A daemon whose service `chat` logs in to Prosody on `port` in clear text, once it
/// is connected.
async fn connected(port: u16) -> Harness {
    let h = start(&plain(port));
    h.api.wait_state_within("chat", "connected", T).await;
    h
}

fn plain(port: u16) -> String {
    smartsupp_service(
        "chat",
        port,
        &format!("password = \"{}\"\ntls = \"none\"", AGENT.1),
    )
}

async fn state(api: &Api, id: &str) -> Value {
    let (_, services) = api.get("/v1/services").await;
    services["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == id)
        .map(|s| s["state"].clone())
        .unwrap_or(Value::Null)
}

async fn conversation_of(api: &Api, contact: &str) -> Option<Value> {
    let (_, list) = api.get("/v1/conversations?service_id=chat").await;
    list["data"]
        .as_array()?
        .iter()
        .find(|c| c["contact"]["external_id"] == contact)
        .cloned()
}

async fn reply(api: &Api, conv: &str, text: &str, key: &str) -> Value {
    let (status, msg) = api
        .post(
            &format!("/v1/conversations/{conv}/messages"),
            &json!({"text": text, "author": {"type": "agent", "name": "Anna"}, "idempotency_key": key}),
        )
        .await;
    assert_eq!(status, 202, "{msg}");
    msg
}

async fn wait_status(api: &Api, msg_id: &str, status: &str, limit: Duration) -> Value {
    eventually(limit, &format!("message {msg_id} {status}"), || async {
        let (_, m) = api.get(&format!("/v1/messages/{msg_id}")).await;
        (m["status"] == status).then_some(m)
    })
    .await
}

/// The counter value of `switchboard_messages_total` for inbound messages `outcome`.
async fn inbound_count(api: &Api, outcome: &str) -> u64 {
    let text = api
        .http
        .get(format!("{}/metrics", api.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter(|l| l.starts_with("switchboard_messages_total{"))
        .filter(|l| l.contains("service=\"chat\"") && l.contains("direction=\"inbound\""))
        .filter(|l| l.contains(&format!("outcome=\"{outcome}\"")))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .map(|v| v as u64)
        .sum()
}

#[tokio::test]
async fn a_visitor_message_opens_a_conversation_and_the_reply_reaches_the_visitor() {
    let xmpp = Prosody::start(Security::Plain, &[AGENT, VISITOR], "info");
    let h = connected(xmpp.port).await;
    let api = &h.api;

    let visitor = Visitor::connect(xmpp.port, VISITOR.0, VISITOR.1).await;
    visitor
        .say(AGENT_JID, "v-1", "Hello, is anyone there?")
        .await;
    let conv = eventually(T, "the visitor's conversation", || async {
        conversation_of(api, "visitor@localhost").await
    })
    .await;
    assert_eq!(conv["status"], "open");
    assert_eq!(
        conv["external_id"],
        Value::Null,
        "XMPP chats have no thread id"
    );
    let conv_id = conv["id"].as_str().unwrap().to_owned();
    let msgs = api.all_messages(&conv_id).await;
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0]["text"], "Hello, is anyone there?");
    assert_eq!(msgs[0]["direction"], "inbound");
    assert_eq!(msgs[0]["external_id"], "visitor@localhost/id:v-1");

    // The same stanza id again (a client's resend) is not a second message; a second
    // message from the visitor lands in the same conversation.
    visitor
        .say(AGENT_JID, "v-1", "Hello, is anyone there?")
        .await;
    visitor.say(AGENT_JID, "v-2", "I need help").await;
    eventually(T, "the second message", || async {
        let m = api.all_messages(&conv_id).await;
        (m.len() >= 2).then_some(())
    })
    .await;
    assert_eq!(inbound_count(api, "duplicate").await, 1);
    let texts: Vec<Value> = api
        .all_messages(&conv_id)
        .await
        .iter()
        .map(|m| m["text"].clone())
        .collect();
    assert_eq!(
        texts,
        [json!("Hello, is anyone there?"), json!("I need help")]
    );

    // The agent answers through the API; the visitor gets it and the message is `sent`
    // with the stanza id as its external id.
    let out = reply(api, &conv_id, "Hi! How can I help?", "k-1").await;
    assert_eq!(out["status"], "pending");
    let got = eventually(T, "the reply at the visitor", || async {
        visitor
            .inbox
            .lock()
            .unwrap()
            .iter()
            .find(|g| g.body == "Hi! How can I help?")
            .cloned()
    })
    .await;
    assert_eq!(got.from, AGENT_JID);
    assert!(got.wants_receipt, "replies ask for XEP-0184 receipts");
    let sent = wait_status(api, out["id"].as_str().unwrap(), "sent", T).await;
    assert_eq!(sent["external_id"].as_str(), got.id.as_deref());

    // The visitor's client confirms receipt (XEP-0184): the reply becomes `delivered`.
    let receipt = Message::chat(Some(AGENT_JID.parse().unwrap())).with_payload(Received {
        id: got.id.clone().unwrap(),
    });
    visitor.send_message(receipt).await;
    wait_status(api, out["id"].as_str().unwrap(), "delivered", T).await;

    visitor.close().await;
    h.finish();
}

/// Without XEP-0198 on the server, a reply counts as sent once written.
#[tokio::test]
async fn without_stream_management_replies_are_sent_once_written() {
    let xmpp = Prosody::start_with(Security::Plain, &[AGENT, VISITOR], "debug", false);
    let h = connected(xmpp.port).await;
    let (d, api) = (&h.daemon, &h.api);
    eventually(T, "the session log line", || async {
        d.log_text()
            .contains("stream_management=false")
            .then_some(())
    })
    .await;
    let visitor = Visitor::connect(xmpp.port, VISITOR.0, VISITOR.1).await;
    visitor.say(AGENT_JID, "n-1", "Anyone?").await;
    let conv = eventually(T, "the conversation", || async {
        conversation_of(api, "visitor@localhost").await
    })
    .await;
    let out = reply(api, conv["id"].as_str().unwrap(), "Yes!", "k-n").await;
    wait_status(api, out["id"].as_str().unwrap(), "sent", T).await;
    eventually(T, "the reply at the visitor", || async {
        visitor.bodies().contains(&"Yes!".to_owned()).then_some(())
    })
    .await;
    assert!(
        !xmpp.log().contains("urn:xmpp:sm:3"),
        "no stream management here"
    );
    visitor.close().await;
    h.finish();
}

#[tokio::test]
async fn a_reply_posted_while_prosody_is_down_is_delivered_after_it_returns() {
    let mut xmpp = Prosody::start(Security::Plain, &[AGENT, VISITOR], "info");
    let h = connected(xmpp.port).await;
    let api = &h.api;
    let visitor = Visitor::connect(xmpp.port, VISITOR.0, VISITOR.1).await;
    visitor.say(AGENT_JID, "r-1", "Are you there?").await;
    let conv = eventually(T, "the conversation", || async {
        conversation_of(api, "visitor@localhost").await
    })
    .await;
    let conv_id = conv["id"].as_str().unwrap().to_owned();

    xmpp.stop();
    visitor.close().await;
    let down = eventually(T, "the service to notice", || async {
        let s = state(api, "chat").await;
        (s["kind"] != "connected").then_some(s)
    })
    .await;
    assert!(
        matches!(down["kind"].as_str(), Some("backoff" | "connecting")),
        "{down}"
    );
    let out = reply(api, &conv_id, "Yes, sorry for the wait", "k-down").await;
    let out_id = out["id"].as_str().unwrap().to_owned();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (_, m) = api.get(&format!("/v1/messages/{out_id}")).await;
    assert_eq!(m["status"], "pending", "nothing is sent while down: {m}");
    let (_, m) = api.get(&format!("/v1/messages/{out_id}")).await;
    assert_eq!(m["error"], Value::Null, "waiting is not an error: {m}");

    xmpp.restart_after_stop();
    api.wait_state_within("chat", "connected", T).await;
    wait_status(api, &out_id, "sent", T).await;
    // The visitor was offline too: the server kept the reply and hands it over now.
    let visitor = Visitor::connect(xmpp.port, VISITOR.0, VISITOR.1).await;
    eventually(T, "the reply at the visitor", || async {
        visitor
            .bodies()
            .contains(&"Yes, sorry for the wait".to_owned())
            .then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let copies = visitor
        .bodies()
        .iter()
        .filter(|b| *b == "Yes, sorry for the wait")
        .count();
    assert_eq!(copies, 1, "the reply arrives once");
    // And the conversation goes on over the new session.
    visitor.say(AGENT_JID, "r-2", "Thanks!").await;
    eventually(T, "the visitor's next message", || async {
        let m = api.all_messages(&conv_id).await;
        m.iter().any(|m| m["text"] == "Thanks!").then_some(())
    })
    .await;
    visitor.close().await;
    h.finish();
}

#[tokio::test]
async fn a_wrong_password_is_reported_as_failed_and_retried_slowly() {
    let xmpp = Prosody::start(Security::Plain, &[AGENT], "info");
    let svc = smartsupp_service(
        "chat",
        xmpp.port,
        "password = \"not-the-password\"\ntls = \"none\"",
    );
    let h = start(&svc);
    let (d, api) = (&h.daemon, &h.api);
    let failed = api.wait_state_within("chat", "failed", T).await;
    let reason = failed["reason"].as_str().unwrap();
    assert!(reason.contains("authentication failed"), "{reason}");
    assert!(reason.contains("not-authorized"), "{reason}");
    assert!(!reason.contains("not-the-password"), "{reason}");
    assert!(!d.log_text().contains("not-the-password"));

    // Observe a few seconds: the daemon stays up and retries at the slow pace
    // (`failed_retry = "2s"` in the test config), not in a loop.
    let before = xmpp.log().matches("Client connected").count();
    let window = Duration::from_secs(5);
    tokio::time::sleep(window).await;
    let attempts = xmpp.log().matches("Client connected").count() - before;
    assert!(
        (1..=4).contains(&attempts),
        "{attempts} connection attempts in {window:?}"
    );
    let (status, _) = api.get("/healthz").await;
    assert_eq!(status, 200);
    let r = api.http.get(d.url("/readyz")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 503, "a failed service is not ready");
    assert_eq!(state(api, "chat").await["kind"], "failed");
    h.finish();
}

#[tokio::test]
async fn sigterm_closes_the_xmpp_stream_cleanly() {
    let xmpp = Prosody::start(Security::Plain, &[AGENT], "debug");
    let h = connected(xmpp.port).await;
    let log = xmpp.log();
    // Prosody prefixes each session's lines with its session id.
    let session = log
        .lines()
        .find(|l| l.contains("Authenticated as agent@localhost"))
        .and_then(|l| l.split_whitespace().nth(3))
        .expect("the agent's session in Prosody's log")
        .to_owned();
    h.finish();
    let closed = format!("{session}\tdebug\tReceived </stream:stream>");
    let log = eventually(
        Duration::from_secs(5),
        "Prosody to log the close",
        || async {
            let log = xmpp.log();
            log.contains(&closed).then_some(log)
        },
    )
    .await;
    let mine: Vec<&str> = log.lines().filter(|l| l.contains(&session)).collect();
    assert!(
        !mine
            .iter()
            .any(|l| l.contains("Failed to receive a stream close response")),
        "{mine:#?}"
    );
}

#[tokio::test]
async fn tls_with_a_ca_file_starttls_and_direct() {
    let xmpp = Prosody::start(Security::Tls, &[AGENT], "info");
    let ca = xmpp.ca_file.clone().unwrap();
    let pw = format!("password = \"{}\"", AGENT.1);
    let services =
        smartsupp_service(
            "chat",
            xmpp.port,
            &format!("{pw}\ntls = \"starttls\"\nca_file = \"{}\"", ca.display()),
        ) + &smartsupp_service(
            "direct",
            xmpp.tls_port,
            &format!("{pw}\ntls = \"direct\"\nca_file = \"{}\"", ca.display()),
        ) + &smartsupp_service("untrusted", xmpp.port, &format!("{pw}\ntls = \"starttls\""))
            + &smartsupp_service("cleartext", xmpp.port, &format!("{pw}\ntls = \"none\""));
    let h = start(&services);
    let api = &h.api;
    api.wait_state_within("chat", "connected", T).await;
    api.wait_state_within("direct", "connected", T).await;
    let failed = api.wait_state_within("untrusted", "failed", T).await;
    let reason = failed["reason"].as_str().unwrap();
    assert!(reason.contains("certificate"), "{reason}");
    // A server that requires TLS offers no login in clear text; nothing is sent.
    let failed = api.wait_state_within("cleartext", "failed", T).await;
    let reason = failed["reason"].as_str().unwrap();
    assert!(reason.contains("without TLS"), "{reason}");
    let log = xmpp.log();
    assert!(
        log.matches("Stream encrypted").count() >= 2,
        "both sessions are encrypted:\n{log}"
    );
    h.finish();

    // Cleartext to a host that is not loopback is refused before anything starts.
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("bad.toml");
    std::fs::write(
        &cfg,
        base_config(dir.path())
            + &smartsupp_service("chat", 5222, "password = \"x\"\ntls = \"none\"")
                .replace("127.0.0.1", "xmpp.example.com"),
    )
    .unwrap();
    let (status, _, stderr) = run_cli(&["check-config", "--config", cfg.to_str().unwrap()], &[]);
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("services.chat.params.tls: "), "{stderr}");
}

/// The flood: a visitor sends 2,000 messages while the agent replies concurrently; every
/// message is ingested exactly once and every reply arrives, run after run, with no
/// stall. `SMARTSUPP_FLOOD_RUNS` sets the number of runs (default 20, about 1 s each).
#[tokio::test]
async fn flood_of_visitor_messages_with_concurrent_replies() {
    const MESSAGES: usize = 2_000;
    const REPLIES: usize = 100;
    let runs: usize = std::env::var("SMARTSUPP_FLOOD_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let run_limit = Duration::from_secs(90);
    let xmpp = Prosody::start(Security::Plain, &[AGENT, VISITOR], "info");
    let h = Harness::start(|dir| {
        base_config(dir).replace("switchboard=debug", "switchboard=info")
            + &api_service("")
            + &plain(xmpp.port)
    });
    let api = &h.api;
    api.wait_state_within("chat", "connected", T).await;
    let visitor = Visitor::connect(xmpp.port, VISITOR.0, VISITOR.1).await;
    visitor.say(AGENT_JID, "open", "hello").await;
    let conv = eventually(T, "the conversation", || async {
        conversation_of(api, "visitor@localhost").await
    })
    .await;
    let conv_id = conv["id"].as_str().unwrap().to_owned();

    let mut timings = Vec::new();
    for run in 0..runs {
        let started = Instant::now();
        let batch: Vec<(String, String)> = (0..MESSAGES)
            .map(|i| (format!("f{run}-{i}"), format!("flood {run} message {i}")))
            .collect();
        let replies = async {
            let mut ids = Vec::new();
            for i in 0..REPLIES {
                let m = reply(
                    api,
                    &conv_id,
                    &format!("reply {run}-{i}"),
                    &format!("k{run}-{i}"),
                )
                .await;
                ids.push(m["id"].as_str().unwrap().to_owned());
            }
            ids
        };
        let sending = async {
            for chunk in batch.chunks(100) {
                visitor.send_many(AGENT_JID, chunk).await;
            }
        };
        let (reply_ids, ()) = tokio::join!(replies, sending);
        let expected = (run + 1) * MESSAGES + 1;
        let stored = eventually(
            run_limit,
            &format!("run {run}: every message stored"),
            || async {
                let n = inbound_count(api, "stored").await as usize;
                (n >= expected).then_some(n)
            },
        )
        .await;
        assert_eq!(stored, expected, "run {run}: nothing is stored twice");
        eventually(
            run_limit,
            &format!("run {run}: every reply at the visitor"),
            || async {
                let got = visitor.bodies();
                let prefix = format!("reply {run}-");
                (got.iter().filter(|b| b.starts_with(&prefix)).count() >= REPLIES).then_some(())
            },
        )
        .await;
        for id in &reply_ids {
            wait_status(api, id, "sent", run_limit).await;
        }
        timings.push(started.elapsed());
        eprintln!("flood run {run}: {:?}", started.elapsed());
    }

    // Exactly once, by content: every flood message is there once, in the order sent.
    let msgs = api.all_messages(&conv_id).await;
    let inbound: Vec<&str> = msgs
        .iter()
        .filter(|m| m["direction"] == "inbound")
        .map(|m| m["text"].as_str().unwrap())
        .collect();
    assert_eq!(inbound.len(), runs * MESSAGES + 1);
    let unique: BTreeSet<&str> = inbound.iter().copied().collect();
    assert_eq!(unique.len(), inbound.len(), "no message stored twice");
    for run in 0..runs {
        let of_run: Vec<&str> = inbound
            .iter()
            .copied()
            .filter(|t| t.starts_with(&format!("flood {run} ")))
            .collect();
        let expected: Vec<String> = (0..MESSAGES)
            .map(|i| format!("flood {run} message {i}"))
            .collect();
        assert_eq!(of_run, expected, "run {run}: all there, in order");
    }
    let mut per_reply: BTreeMap<String, usize> = BTreeMap::new();
    for b in visitor.bodies() {
        *per_reply.entry(b).or_default() += 1;
    }
    assert!(
        per_reply.values().all(|&n| n == 1),
        "each reply arrives once"
    );
    assert_eq!(inbound_count(api, "duplicate").await, 0);
    eprintln!("flood: {runs} runs of {MESSAGES} messages + {REPLIES} replies: {timings:?}");
    visitor.close().await;
    h.finish();
}

/// Acknowledgements follow commits: the daemon is killed (SIGKILL) in the middle of a
/// flood, and after it restarts the server re-delivers everything it had not seen
/// acknowledged, so every message is stored, and none twice.
#[tokio::test]
async fn a_crash_mid_flood_loses_nothing() {
    const MESSAGES: usize = 2_000;
    let xmpp = Prosody::start(Security::Plain, &[AGENT, VISITOR], "info");
    let mut h = Harness::start(|dir| {
        base_config(dir).replace("switchboard=debug", "switchboard=info")
            + &api_service("")
            + &plain(xmpp.port)
    });
    let api = &h.api;
    api.wait_state_within("chat", "connected", T).await;
    let visitor = Visitor::connect(xmpp.port, VISITOR.0, VISITOR.1).await;
    let batch: Vec<(String, String)> = (0..MESSAGES)
        .map(|i| (format!("c-{i}"), format!("crash test {i}")))
        .collect();
    for chunk in batch.chunks(100) {
        visitor.send_many(AGENT_JID, chunk).await;
    }
    let at_kill = eventually(T, "part of the flood stored", || async {
        let n = inbound_count(api, "stored").await;
        (n >= 100).then_some(n)
    })
    .await;
    h.crash();
    eprintln!("killed after {at_kill} messages were stored");

    h.start_again(&[]);
    let api = &h.api;
    api.wait_state_within("chat", "connected", T).await;
    let conv = eventually(T, "the conversation", || async {
        conversation_of(api, "visitor@localhost").await
    })
    .await;
    let conv_id = conv["id"].as_str().unwrap().to_owned();
    let deadline = Instant::now() + Duration::from_secs(30);
    let texts = loop {
        let msgs = api.all_messages(&conv_id).await;
        if msgs.len() >= MESSAGES {
            break msgs;
        }
        assert!(
            Instant::now() < deadline,
            "only {} of {MESSAGES} messages stored after the restart",
            msgs.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // Give late re-deliveries a moment to show up as duplicates if they were stored twice.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let msgs = api.all_messages(&conv_id).await;
    assert_eq!(msgs.len(), texts.len());
    let stored: BTreeSet<String> = msgs
        .iter()
        .map(|m| m["text"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(stored.len(), MESSAGES, "each message exactly once");
    for (_, body) in &batch {
        assert!(stored.contains(body), "{body} is missing");
    }
    visitor.close().await;
    h.finish();
}

/// Issue 10's outage: the XMPP server restarts repeatedly while visitors write and agents
/// reply. Every visitor message the server accepted is stored exactly once, and every
/// reply is sent and reaches the visitor.
#[tokio::test]
async fn prosody_restarting_repeatedly_during_traffic_loses_nothing() {
    const ROUNDS: usize = 4;
    const BURST: usize = 40;
    const REPLIES: usize = 5;
    let mut xmpp = Prosody::start(Security::Plain, &[AGENT, VISITOR], "info");
    let h = connected(xmpp.port).await;
    let api = &h.api;
    let mut replies: Vec<(String, String)> = Vec::new();
    let mut received: Vec<String> = Vec::new();
    let mut conv_id = None;
    for round in 0..ROUNDS {
        let visitor = Visitor::connect(xmpp.port, VISITOR.0, VISITOR.1).await;
        let burst: Vec<(String, String)> = (0..BURST)
            .map(|i| {
                (
                    format!("r{round}-m{i}"),
                    format!("round {round} message {i}"),
                )
            })
            .collect();
        visitor.send_many(AGENT_JID, &burst).await;
        let conv = match &conv_id {
            Some(c) => c,
            None => {
                let c = eventually(T, "the conversation", || async {
                    conversation_of(api, "visitor@localhost").await
                })
                .await;
                conv_id.insert(c["id"].as_str().unwrap().to_owned())
            }
        };
        // Replies go out while the burst is still arriving, and while the server is down.
        for r in 0..REPLIES {
            let text = format!("round {round} reply {r}");
            let m = reply(api, conv, &text, &format!("k-{round}-{r}")).await;
            replies.push((m["id"].as_str().unwrap().to_owned(), text));
        }
        // Let the server read the visitor's burst off its socket, then pull the plug
        // with messages still on their way to switchboard.
        tokio::time::sleep(Duration::from_millis(200)).await;
        received.extend(visitor.bodies());
        visitor.close().await;
        xmpp.stop();
        let text = format!("round {round} reply while down");
        let m = reply(api, conv, &text, &format!("k-{round}-down")).await;
        replies.push((m["id"].as_str().unwrap().to_owned(), text));
        tokio::time::sleep(Duration::from_millis(300)).await;
        xmpp.restart_after_stop();
        api.wait_state_within("chat", "connected", T).await;
    }
    let conv = conv_id.unwrap();

    // Every visitor message: stored exactly once.
    let stored = eventually(
        Duration::from_secs(30),
        "every visitor message stored",
        || async {
            let msgs = api.all_messages(&conv).await;
            let inbound: Vec<String> = msgs
                .iter()
                .filter(|m| m["direction"] == "inbound")
                .map(|m| m["text"].as_str().unwrap().to_owned())
                .collect();
            (inbound.len() >= ROUNDS * BURST).then_some(inbound)
        },
    )
    .await;
    let unique: BTreeSet<&String> = stored.iter().collect();
    assert_eq!(stored.len(), ROUNDS * BURST, "no duplicates");
    assert_eq!(unique.len(), ROUNDS * BURST);

    // Every reply: sent, and at the visitor (who collects what waited offline).
    for (id, _) in &replies {
        wait_status(api, id, "sent", Duration::from_secs(30)).await;
    }
    // Replies that found the visitor offline wait in the server's offline storage.
    let visitor = Visitor::connect(xmpp.port, VISITOR.0, VISITOR.1).await;
    eventually(
        Duration::from_secs(30),
        "every reply at the visitor",
        || async {
            let mut got = received.clone();
            got.extend(visitor.bodies());
            let missing: Vec<&String> = replies
                .iter()
                .map(|(_, t)| t)
                .filter(|t| !got.contains(t))
                .collect();
            missing.is_empty().then_some(())
        },
    )
    .await;
    visitor.close().await;
    h.finish();
}
