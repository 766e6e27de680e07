//! Routing to a desk on a real SQLite file: what one committed write queues for the desk
//! (a mirror of each contact message and each non-desk reply, a failed reply's status),
//! what a link and a resolve change, and what the desk's own replies do not queue.

use std::collections::HashMap;

use switchboard_core::{Host, MessageStatus};

use super::*;
use crate::store::{NewOutbound, Outcome, Routes};

/// The desk's (and the channel's) live outbox rows: (service, kind, ref id, queue).
fn outbox(dir: &std::path::Path) -> Vec<(String, String, i64, String)> {
    let conn = rusqlite::Connection::open(dir.join("db.sqlite")).unwrap();
    let mut stmt = conn
        .prepare(
            "SELECT service_id, kind, ref_id, queue_key FROM outbox WHERE state < 2 ORDER BY id",
        )
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

fn events_of(dir: &std::path::Path, kind: &str) -> usize {
    let conn = rusqlite::Connection::open(dir.join("db.sqlite")).unwrap();
    conn.query_row("SELECT count(*) FROM events WHERE type = ?", [kind], |r| {
        r.get::<_, i64>(0)
    })
    .unwrap() as usize
}

fn routed(store: &Store) {
    store.set_routes(Routes {
        desks: HashMap::from([("chan".to_owned(), "desk".to_owned())]),
        ..Routes::default()
    });
}

#[tokio::test]
async fn a_routed_channel_queues_each_contact_message_for_its_desk_in_the_same_write() {
    let dir = tempfile::tempdir().unwrap();
    let (store, chan, desk, _) = hosts(dir.path()).await;
    routed(&store);
    let got = chan.ingest(vec![inbound("m1")]).await.unwrap();
    let (conv, msg) = (&got[0].conversation, &got[0].message);
    assert_eq!(conv.desk.as_deref(), Some("desk"));
    assert_eq!(
        conv.desk_external_id, None,
        "the desk has not created it yet"
    );
    let queue = format!("c{}", conv.id);
    let mid: i64 = msg.id.parse().unwrap();
    assert_eq!(
        outbox(dir.path()),
        vec![("desk".into(), "mirror".into(), mid, queue.clone())]
    );
    // A provider's retry of the same message queues nothing more.
    chan.ingest(vec![inbound("m1")]).await.unwrap();
    assert_eq!(outbox(dir.path()).len(), 1);

    // The first link makes the conversation routed, once.
    let link = |theirs: &str| DeskLink {
        conversation_id: conv.id.clone(),
        desk_conversation_id: theirs.into(),
        desk_contact_id: Some("k1".into()),
    };
    desk.link_put(link("t-1")).await.unwrap();
    desk.link_put(link("t-1")).await.unwrap();
    assert_eq!(events_of(dir.path(), "conversation.routed"), 1);
    let shown = store
        .read
        .conversation(None, conv.id.parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(shown.desk.as_deref(), Some("desk"));
    assert_eq!(shown.desk_external_id.as_deref(), Some("t-1"));

    // An API agent's reply goes to the channel and is mirrored; the desk's own is not.
    let (api, _, _) = store
        .reply(
            None,
            conv.id.parse().unwrap(),
            NewOutbound {
                text: Some("from the API".into()),
                attachments: vec![],
                author: switchboard_core::Author {
                    kind: switchboard_core::AuthorType::Agent,
                    name: Some("Bo".into()),
                },
                idempotency_key: None,
                from_desk: None,
            },
        )
        .await
        .unwrap();
    let from_desk = desk.post_reply(reply(&conv.id, "d-1")).await.unwrap();
    let rows = outbox(dir.path());
    let api_id: i64 = api.id.parse().unwrap();
    let desk_id: i64 = from_desk.message.id.parse().unwrap();
    assert_eq!(
        rows.iter()
            .filter(|r| r.0 == "desk")
            .map(|r| (r.1.as_str(), r.2))
            .collect::<Vec<_>>(),
        vec![("mirror", mid), ("mirror", api_id)],
        "{rows:?}"
    );
    assert!(rows.contains(&("chan".into(), "message".into(), desk_id, queue.clone())));

    // The channel gives up on the desk's reply: the desk gets its `message.status`.
    let conn = rusqlite::Connection::open(dir.path().join("db.sqlite")).unwrap();
    let outbox_id: i64 = conn
        .query_row(
            "SELECT id FROM outbox WHERE service_id = 'chan' AND ref_id = ?",
            [desk_id],
            |r| r.get(0),
        )
        .unwrap();
    store
        .delivery_results(vec![(
            outbox_id,
            Outcome::Dead {
                attempts: 1,
                error: "number unreachable".into(),
            },
        )])
        .await
        .unwrap();
    let status_seq: i64 = conn
        .query_row(
            "SELECT max(seq) FROM events WHERE type = 'message.status'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(
        outbox(dir.path()).contains(&("desk".into(), "event".into(), status_seq, queue.clone())),
        "{:?}",
        outbox(dir.path())
    );
    assert_eq!(
        store
            .read
            .message(None, desk_id)
            .await
            .unwrap()
            .unwrap()
            .status,
        MessageStatus::Failed
    );

    // Resolved at the desk: ours closes, the link ends, the next message starts anew.
    assert_eq!(
        desk.close_conversation("t-1").await.unwrap(),
        Some(conv.id.clone())
    );
    assert_eq!(desk.close_conversation("t-1").await.unwrap(), None);
    assert_eq!(desk.link_get(&conv.id).await.unwrap(), None);
    assert!(
        desk.link_lookup("t-1").await.unwrap().is_some(),
        "old ids still find it"
    );
    let next = chan.ingest(vec![inbound("m2")]).await.unwrap();
    assert_ne!(next[0].conversation.id, conv.id);
    assert_eq!(next[0].conversation.desk.as_deref(), Some("desk"));
}

#[tokio::test]
async fn an_unrouted_channel_queues_nothing_for_any_desk() {
    let dir = tempfile::tempdir().unwrap();
    let (_store, chan, _desk, _) = hosts(dir.path()).await;
    let got = chan.ingest(vec![inbound("m1")]).await.unwrap();
    assert_eq!(got[0].conversation.desk, None);
    assert!(outbox(dir.path()).is_empty());
}
