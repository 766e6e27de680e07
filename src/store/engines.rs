//! The store's behaviour, the same on both engines: one scenario that goes through
//! every kind of write and read the store has, run on a SQLite file and on a real
//! PostgreSQL database (started by the test kit; skipped without one unless
//! `SWITCHBOARD_REQUIRE_POSTGRES=1`). Every statement of the store runs on both here,
//! so a spelling one engine does not take fails this test by name.

use std::sync::Arc;
use std::time::Duration;

use switchboard_core::testkit::postgres::PgServer;
use switchboard_core::{
    Attachment, Author, AuthorType, ConnState, ContactInfo, DeskLink, InboundMessage,
    MessageStatus, StatusChange,
};

use super::dead::DeliveryState;
use super::handoff::Request;
use super::{
    ConversationFilter, NewOutbound, OutboxKind, Outcome, Routes, ServiceInfo, ServiceRef, Store,
    WebhookRoute,
};
use crate::config::{Handoff, StorageLocation, Synchronous};
use crate::metrics::Metrics;

fn inbound(id: &str, contact: &str, name: Option<&str>, text: &str) -> InboundMessage {
    InboundMessage {
        external_id: id.into(),
        contact: ContactInfo {
            external_id: contact.into(),
            name: name.map(Into::into),
            ..Default::default()
        },
        conversation_external_id: None,
        text: Some(text.into()),
        attachments: vec![Attachment {
            url: "https://files.example/a.png".into(),
            content_type: Some("image/png".into()),
            name: None,
        }],
    }
}

fn sms() -> ServiceRef {
    ServiceRef {
        id: "sms".into(),
        organization: "o1".into(),
        opens_conversations: true,
    }
}

fn agent(text: &str, key: Option<&str>) -> NewOutbound {
    NewOutbound {
        text: Some(text.into()),
        attachments: vec![],
        author: Author {
            kind: AuthorType::Agent,
            name: Some("Anna".into()),
        },
        idempotency_key: key.map(Into::into),
        from_desk: None,
    }
}

fn info(id: &str) -> ServiceInfo {
    ServiceInfo {
        id: id.into(),
        kind: "webhook".into(),
        name: None,
        status: "active".into(),
        organization: "o1".into(),
    }
}

/// Everything, in one conversation's life.
async fn scenario(s: Store) {
    let routes = Routes {
        webhooks: vec![WebhookRoute {
            service_id: "hook".into(),
            organization: "o1".into(),
            events: None,
        }],
        desks: [("sms".to_string(), "desk".to_string())].into(),
        handoffs: [(
            "desk".to_string(),
            Handoff {
                to: Some("humans".into()),
                after: Some(Duration::from_millis(1)),
                keywords: vec!["agent".into()],
            },
        )]
        .into(),
    };
    s.set_routes(routes);
    for id in ["hook", "sms", "desk", "humans"] {
        s.record_service_now(info(id), ConnState::Connected, 1, id == "hook")
            .await
            .unwrap();
    }

    // Inbound, and its retry: stored once, with its contact, conversation and events.
    let first = s
        .ingest(sms(), vec![inbound("m1", "c1", Some("Mary"), "Hello")])
        .await
        .unwrap();
    assert!(first[0].created && first[0].conversation_created);
    let again = s
        .ingest(sms(), vec![inbound("m1", "c1", None, "Hello again")])
        .await
        .unwrap();
    assert!(!again[0].created);
    assert_eq!(again[0].message.id, first[0].message.id);
    let conv: i64 = first[0].conversation.id.parse().unwrap();
    // A new name for the contact is kept; the same conversation goes on.
    let second = s
        .ingest(
            sms(),
            vec![inbound("m2", "c1", Some("Mary Jones"), "Still there?")],
        )
        .await
        .unwrap();
    assert_eq!(second[0].conversation.id, first[0].conversation.id);
    assert_eq!(
        second[0].conversation.contact.name.as_deref(),
        Some("Mary Jones")
    );
    let c = s
        .read
        .conversation(Some("o1"), conv)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        c.contact.name.as_deref(),
        Some("Mary Jones"),
        "the new name is stored, not only answered"
    );
    assert_eq!(
        c.desk.as_deref(),
        Some("desk"),
        "routed to the channel's desk"
    );
    assert!(
        s.read
            .conversation(Some("o2"), conv)
            .await
            .unwrap()
            .is_none()
    );
    let listed = s
        .read
        .conversations("o1", &ConversationFilter::default(), 0, 10)
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);
    let filtered = ConversationFilter {
        service_id: Some("sms".into()),
        status: Some("open".into()),
        updated_after: Some(0),
    };
    assert_eq!(
        s.read
            .conversations("o1", &filtered, 0, 10)
            .await
            .unwrap()
            .len(),
        1
    );
    let other = ConversationFilter {
        service_id: Some("nope".into()),
        ..Default::default()
    };
    assert!(
        s.read
            .conversations("o1", &other, 0, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        s.read.open_conversation_of("sms", "c1").await.unwrap(),
        Some(conv)
    );
    let by_message = s.read.conversation_of_message("sms", "m2").await.unwrap();
    assert_eq!(by_message.map(|c| c.id), Some(conv.to_string()));

    // A nonce is taken once.
    let once = s
        .ingest_once(sms(), "n1", i64::MAX, vec![inbound("m3", "c1", None, "x")])
        .await
        .unwrap();
    assert!(once.is_some());
    let replay = s
        .ingest_once(sms(), "n1", i64::MAX, vec![inbound("m4", "c1", None, "y")])
        .await
        .unwrap();
    assert!(replay.is_none());

    // Events, in order, whole and paged by size.
    let events = s.read.events_after(Some("o1"), 0, 100).await.unwrap();
    let kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "service.state",
            "contact.created",
            "conversation.created",
            "message.created",
            "message.created",
            "message.created"
        ]
    );
    assert!(events.windows(2).all(|w| w[0].seq < w[1].seq));
    assert_eq!(s.read.last_seq().await.unwrap(), events.last().unwrap().seq);
    let small = s
        .read
        .events_after_within(Some("o1"), 0, 100, 1)
        .await
        .unwrap();
    assert_eq!(
        small.len(),
        1,
        "the first row past the budget ends the page"
    );
    assert!(
        s.read
            .events_after(Some("o2"), 0, 100)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(s.read.event(events[0].seq).await.unwrap().is_some());

    // A reply and its retry with the same key.
    let (reply, _, new) = s
        .reply(Some("o1".into()), conv, agent("Hi Mary", Some("k1")))
        .await
        .unwrap();
    assert!(new);
    let (same, _, new) = s
        .reply(Some("o1".into()), conv, agent("Hi Mary", Some("k1")))
        .await
        .unwrap();
    assert!(!new);
    assert_eq!(same.id, reply.id);
    let msgs = s.read.messages(conv, 0, 100).await.unwrap();
    assert_eq!(msgs.len(), 4);
    assert_eq!(msgs[0].attachments.len(), 1);

    // The outbox: the reply to its service, the mirror copies to the desk, events to
    // the webhook; one queue per conversation.
    let heads = s.read.heads("sms", 10).await.unwrap();
    assert_eq!(heads.len(), 1);
    let items = s
        .read
        .queue_after("sms", &heads[0].queue_key, 0, 10)
        .await
        .unwrap();
    assert_eq!(items[0].kind, Some(OutboxKind::Message));
    assert_eq!(s.read.live_deliveries("sms").await.unwrap(), 1);
    let hook_heads = s.read.heads("hook", 10).await.unwrap();
    assert_eq!(
        hook_heads.len(),
        2,
        "the service's state, and the conversation"
    );
    let conversation_queue = format!("c{conv}");
    assert!(hook_heads.iter().any(|h| h.queue_key == conversation_queue));
    let hook_items: Vec<_> = s
        .read
        .queue_after("hook", &conversation_queue, 0, 100)
        .await
        .unwrap();
    assert_eq!(hook_items.len(), 6, "the conversation's events, in order");
    assert!(hook_items.iter().all(|i| i.event.is_some()));
    let depth = s.read.outbox_depth().await.unwrap();
    assert!(
        depth
            .iter()
            .any(|(svc, live, dead)| svc == "hook" && *live > 0 && *dead == 0)
    );

    // A receipt before the send it confirms is kept and applied once the id is stored.
    let early = s
        .update_status("sms", "SM1", MessageStatus::Delivered, None)
        .await
        .unwrap();
    assert_eq!(early, StatusChange::UnknownMessage);
    s.delivery_results(vec![(
        items[0].id,
        Outcome::Sent {
            external_id: Some("SM1".into()),
            status: MessageStatus::Sent,
        },
    )])
    .await
    .unwrap();
    let sent = s
        .read
        .message(Some("o1"), reply.id.parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(sent.status, MessageStatus::Delivered);
    assert_eq!(sent.external_id.as_deref(), Some("SM1"));
    let (m, c) = s
        .read
        .outbound(reply.id.parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!((m.id, c.id), (reply.id.clone(), conv.to_string()));
    let read = s
        .apply_watermark("sms", "nope", MessageStatus::Read, i64::MAX)
        .await
        .unwrap();
    assert_eq!(read, 0);

    // Event deliveries: one retried, one given up, one delivered; the dead one retried.
    let (a, b, c3) = (hook_items[0].id, hook_items[1].id, hook_items[2].id);
    s.delivery_results(vec![(
        a,
        Outcome::Retry {
            at: 5,
            attempts: 1,
            error: "HTTP 503".into(),
        },
    )])
    .await
    .unwrap();
    s.delivery_results(vec![
        (
            a,
            Outcome::Dead {
                attempts: 2,
                error: "HTTP 410".into(),
            },
        ),
        (b, Outcome::EventDelivered),
    ])
    .await
    .unwrap();
    s.delivery_results(vec![(c3, Outcome::Defer { at: 7 })])
        .await
        .unwrap();
    let dead = s
        .read
        .deliveries("o1", DeliveryState::Dead, Some("hook"), 0, 10)
        .await
        .unwrap();
    assert_eq!(dead.iter().map(|d| d.id).collect::<Vec<_>>(), [a]);
    assert_eq!(dead[0].event_type.as_deref(), Some("contact.created"));
    let failing = s
        .read
        .failing_deliveries(&["hook".to_string()], 10)
        .await
        .unwrap();
    assert!(failing.iter().any(|f| f.id == a && f.dead));
    assert!(
        s.read
            .failing_deliveries(&["other".to_string()], 10)
            .await
            .unwrap()
            .is_empty()
    );
    s.retry_delivery("o1", a).await.unwrap();
    assert!(s.read.delivery("o1", a).await.unwrap().unwrap().state < 2);
    assert_eq!(s.retry_dead("o1", "hook").await.unwrap(), 0);

    // Sync state and recorded services.
    s.kv_put("sms", "cursor", "1").await.unwrap();
    s.kv_put("sms", "cursor", "2").await.unwrap();
    assert_eq!(
        s.read.kv_get("sms", "cursor").await.unwrap().as_deref(),
        Some("2")
    );
    let services = s.read.services().await.unwrap();
    assert_eq!(services.len(), 4);

    // A desk links the conversation, hands it off, and the handoff's desk resolves it.
    let link = DeskLink {
        conversation_id: conv.to_string(),
        desk_conversation_id: "d-1".into(),
        desk_contact_id: Some("dc-1".into()),
    };
    s.link_put("desk", link.clone()).await.unwrap();
    s.link_put("desk", link.clone()).await.unwrap();
    assert_eq!(
        s.link_get("desk", &conv.to_string()).await.unwrap(),
        Some(link.clone())
    );
    assert_eq!(s.link_lookup("desk", "d-1").await.unwrap(), Some(link));
    let moved = s
        .hand_off(Request {
            conversation_id: conv,
            organization: Some("o1".into()),
            to: Some("humans".into()),
            only_from: None,
            reason: "api".into(),
        })
        .await
        .unwrap();
    assert!(moved.is_some());
    assert_eq!(s.fire_due_handoffs().await.unwrap(), 0);
    assert!(
        s.read.heads("humans", 10).await.unwrap().len() == 1,
        "the transcript"
    );
    assert_eq!(
        s.link_close("desk", "d-1").await.unwrap(),
        None,
        "handed away"
    );

    // Statistics and retention.
    let now = super::rows::now_ms();
    let traffic = s.read.traffic(now + 1, 60_000, 5).await.unwrap();
    assert!(
        traffic
            .iter()
            .any(|t| t.service_id == "sms" && t.counts.iter().sum::<u32>() >= 3)
    );
    s.prune().await.unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    let (through, pruned) = s
        .prune_events(Duration::from_millis(1), 0, Duration::ZERO)
        .await
        .unwrap();
    assert!(pruned > 0 && through > 0);
    assert!(s.read.pruned_through("o1").await.unwrap() > 0);
    // A job that fails takes nothing else down: submitted together, the jobs around it
    // (most likely in its batch) commit, and it leaves nothing behind.
    let seq = s.read.last_seq().await.unwrap();
    let (one, nowhere, two) = tokio::join!(
        s.ingest(sms(), vec![inbound("b1", "c9", None, "one")]),
        s.reply(Some("o1".into()), 987_654, agent("to nobody", Some("k9"))),
        s.ingest(sms(), vec![inbound("b2", "c9", None, "two")]),
    );
    assert!(nowhere.is_err());
    let (one, two) = (one.unwrap(), two.unwrap());
    assert!(one[0].created && two[0].created);
    let c9: i64 = one[0].conversation.id.parse().unwrap();
    let texts: Vec<String> = s
        .read
        .messages(c9, 0, 10)
        .await
        .unwrap()
        .into_iter()
        .filter_map(|m| m.text)
        .collect();
    assert_eq!(texts, ["one", "two"]);
    assert!(s.read.last_seq().await.unwrap() > seq);

    assert!(s.read.ping().await);
    s.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_keeps_the_stores_promises() {
    let dir = tempfile::tempdir().unwrap();
    let location = StorageLocation::Sqlite {
        path: dir.path().join("s.db"),
        synchronous: Synchronous::Normal,
    };
    let s = Store::open_at(&location, None, Arc::new(Metrics::new()))
        .await
        .unwrap();
    scenario(s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_keeps_the_stores_promises() {
    let Some(server) = PgServer::shared_or_skip() else {
        return;
    };
    let location = StorageLocation::Postgres {
        url: server.database().unwrap(),
    };
    let s = Store::open_at(&location, None, Arc::new(Metrics::new()))
        .await
        .unwrap();
    scenario(s).await;
    // Opening again finds every migration applied.
    let again = Store::open_at(&location, None, Arc::new(Metrics::new()))
        .await
        .unwrap();
    assert!(again.read.last_seq().await.unwrap() > 0);
    // A job that fails halfway (PostgreSQL refuses NUL in text, after the job wrote the
    // contact and the conversation) leaves nothing: its savepoint is rolled back, and
    // the jobs submitted with it commit.
    let (one, nul, two) = tokio::join!(
        again.ingest(sms(), vec![inbound("n1", "c10", None, "before")]),
        again.ingest(sms(), vec![inbound("n2", "c11", None, "a \0 here")]),
        again.ingest(sms(), vec![inbound("n3", "c10", None, "after")]),
    );
    assert!(nul.is_err());
    assert!(one.unwrap()[0].created && two.unwrap()[0].created);
    assert_eq!(
        again.read.open_conversation_of("sms", "c11").await.unwrap(),
        None
    );
    assert!(
        again
            .read
            .open_conversation_of("sms", "c10")
            .await
            .unwrap()
            .is_some()
    );
    again.close().await;
}

/// A connection still open to a server that stopped taking writes, while a new one
/// would be given a server that takes them (a primary turned replica behind the same
/// address). The write fails with 25006 (503: nothing stored), and the writer
/// connects again before its next batch instead of failing every batch on the old
/// connection. Staged on one server of the test's own: `ALTER SYSTEM` makes existing
/// sessions read-only at the reload, while the database's own setting keeps new
/// sessions writable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_writer_connects_again_after_a_write_refused_as_read_only() {
    if PgServer::shared_or_skip().is_none() {
        return;
    }
    let server = PgServer::start(Default::default()).expect("PostgreSQL starts");
    let url = server.database().unwrap();
    let db = url.rsplit('/').next().unwrap().to_owned();
    let location = StorageLocation::Postgres { url };
    let s = Store::open_at(&location, None, Arc::new(Metrics::new()))
        .await
        .unwrap();
    assert!(
        s.ingest(sms(), vec![inbound("r1", "c1", None, "writable")])
            .await
            .unwrap()[0]
            .created
    );
    server
        .sql(&format!(
            "ALTER DATABASE {db} SET default_transaction_read_only = off"
        ))
        .and_then(|_| server.sql("ALTER SYSTEM SET default_transaction_read_only = on"))
        .and_then(|_| server.sql("SELECT pg_reload_conf()"))
        .unwrap();
    // The reload reaches each session at its next command: the first batch may still
    // commit, then one fails read-only, and the next goes through a new connection.
    let mut failures = Vec::new();
    let mut stored = false;
    for n in 0..20 {
        match s
            .ingest(sms(), vec![inbound(&format!("r{n}x"), "c1", None, "x")])
            .await
        {
            Ok(_) if !failures.is_empty() => {
                stored = true;
                break;
            }
            Ok(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            Err(e) => failures.push(e.to_string()),
        }
    }
    assert!(
        !failures.is_empty() && failures.iter().all(|e| e.contains("25006")),
        "the old connection refused the write as read-only: {failures:?}"
    );
    assert_eq!(
        failures.len(),
        1,
        "one refused write, then a new connection"
    );
    assert!(stored, "the write after the failure was stored");
    s.close().await;
}
