//! Handoff on a real SQLite file: a bot desk's conversation moves to the human desk in
//! one write (record, event, transcript queued in order), the bot's late answer is
//! refused, and the keyword and `handoff_after` triggers fire.

use std::collections::HashMap;
use std::time::Duration;

use switchboard_core::{Author, AuthorType, Host};

use super::*;
use crate::config::Handoff;
use crate::store::Routes;

/// Live outbox rows of `service`: (kind, ref id, queue), in queue order.
fn queued(dir: &std::path::Path, service: &str) -> Vec<(String, i64, String)> {
    let conn = rusqlite::Connection::open(dir.join("db.sqlite")).unwrap();
    let mut stmt = conn
        .prepare(
            "SELECT kind, ref_id, queue_key FROM outbox WHERE state < 2 AND service_id = ? ORDER BY id",
        )
        .unwrap();
    stmt.query_map([service], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// The `conversation.handoff` events' data, in order.
fn handoff_events(dir: &std::path::Path) -> Vec<serde_json::Value> {
    let conn = rusqlite::Connection::open(dir.join("db.sqlite")).unwrap();
    let mut stmt = conn
        .prepare("SELECT data FROM events WHERE type = 'conversation.handoff' ORDER BY seq")
        .unwrap();
    stmt.query_map([], |r| r.get::<_, String>(0))
        .unwrap()
        .map(|d| serde_json::from_str(&d.unwrap()).unwrap())
        .collect()
}

/// `chan` answered by the bot `desk`, which hands off to `human`.
fn routed(store: &Store, rule: Handoff) {
    store.set_routes(Routes {
        desks: HashMap::from([("chan".to_owned(), "desk".to_owned())]),
        handoffs: HashMap::from([("desk".to_owned(), rule)]),
        ..Routes::default()
    });
}

fn to_human() -> Handoff {
    Handoff {
        to: Some("human".into()),
        ..Handoff::default()
    }
}

fn bot_answer(conversation: &str, key: &str) -> DeskReply {
    DeskReply {
        conversation_id: conversation.into(),
        text: Some("I am a bot".into()),
        attachments: vec![],
        author: Author {
            kind: AuthorType::Bot,
            name: Some("Haptik bot".into()),
        },
        idempotency_key: key.into(),
    }
}

fn inbound_text(id: &str, text: &str) -> InboundMessage {
    let mut m = inbound(id);
    m.text = Some(text.into());
    m
}

#[tokio::test]
async fn a_handoff_moves_the_conversation_with_its_transcript_and_refuses_the_bots_late_answer() {
    let dir = tempfile::tempdir().unwrap();
    let (store, chan, desk, _) = hosts(dir.path()).await;
    routed(&store, to_human());
    let first = chan.ingest(vec![inbound("m1")]).await.unwrap();
    let conv = first[0].conversation.clone();
    let answer = desk.post_reply(bot_answer(&conv.id, "b-1")).await.unwrap();
    let second = chan.ingest(vec![inbound("m2")]).await.unwrap();
    let ids: Vec<i64> = [&first[0].message, &answer.message, &second[0].message]
        .iter()
        .map(|m| m.id.parse().unwrap())
        .collect();
    assert!(queued(dir.path(), "human").is_empty());

    let moved = desk.hand_off(&conv.id, "chat_pinned").await.unwrap();
    assert_eq!(
        moved,
        Some(switchboard_core::HandedOff {
            from: Some("desk".into()),
            to: Some("human".into()),
        })
    );
    // The transcript, contact messages and the bot's answer, in their order.
    let queue = format!("c{}", conv.id);
    assert_eq!(
        queued(dir.path(), "human"),
        ids.iter()
            .map(|id| ("mirror".to_owned(), *id, queue.clone()))
            .collect::<Vec<_>>()
    );
    let events = handoff_events(dir.path());
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["from"], "desk");
    assert_eq!(events[0]["to"], "human");
    assert_eq!(events[0]["reason"], "chat_pinned");
    assert_eq!(events[0]["conversation"]["desk"], "human");
    let shown = store
        .read
        .conversation(None, conv.id.parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(shown.desk.as_deref(), Some("human"));

    // Not at the bot any more: its second handoff and its late answer change nothing.
    assert_eq!(desk.hand_off(&conv.id, "chat_pinned").await.unwrap(), None);
    assert!(matches!(
        desk.post_reply(bot_answer(&conv.id, "b-2")).await,
        Err(HostError::HandedOff(_))
    ));
    let channel_rows = queued(dir.path(), "chan");
    assert_eq!(
        channel_rows.len(),
        1,
        "only the first bot answer is for the contact"
    );

    // The next contact message goes to the human desk, after the transcript, and not
    // to the bot.
    let bot_before = queued(dir.path(), "desk").len();
    let third = chan.ingest(vec![inbound("m3")]).await.unwrap();
    let human = queued(dir.path(), "human");
    assert_eq!(human.len(), 4);
    assert_eq!(human[3].1, third[0].message.id.parse::<i64>().unwrap());
    assert_eq!(queued(dir.path(), "desk").len(), bot_before);
    assert_eq!(third[0].conversation.desk.as_deref(), Some("human"));
}

#[tokio::test]
async fn a_keyword_hands_off_with_the_message_that_named_it() {
    let dir = tempfile::tempdir().unwrap();
    let (store, chan, _, _) = hosts(dir.path()).await;
    routed(
        &store,
        Handoff {
            keywords: vec!["agent".into()],
            ..to_human()
        },
    );
    chan.ingest(vec![inbound_text("m1", "my agents are busy")])
        .await
        .unwrap();
    assert!(handoff_events(dir.path()).is_empty(), "not a whole word");
    let got = chan
        .ingest(vec![inbound_text("m2", "I want an Agent")])
        .await
        .unwrap();
    assert_eq!(got[0].conversation.desk.as_deref(), Some("human"));
    assert_eq!(handoff_events(dir.path())[0]["reason"], "keyword");
    // The bot got the first message only; the human desk both.
    assert_eq!(queued(dir.path(), "desk").len(), 1);
    assert_eq!(queued(dir.path(), "human").len(), 2);
}

#[tokio::test]
async fn handoff_after_fires_once_the_bot_stays_silent_and_not_when_it_answers() {
    let dir = tempfile::tempdir().unwrap();
    let (store, chan, desk, _) = hosts(dir.path()).await;
    routed(
        &store,
        Handoff {
            to: None,
            after: Some(Duration::from_millis(300)),
            keywords: vec![],
        },
    );
    let answered = chan.ingest(vec![inbound("m1")]).await.unwrap();
    desk.post_reply(bot_answer(&answered[0].conversation.id, "b-1"))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        store.fire_due_handoffs().await.unwrap(),
        0,
        "the bot answered"
    );

    let later = chan.ingest(vec![inbound("m2")]).await.unwrap();
    assert_eq!(store.fire_due_handoffs().await.unwrap(), 0, "not yet due");
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(store.fire_due_handoffs().await.unwrap(), 1);
    let events = handoff_events(dir.path());
    assert_eq!(events[0]["reason"], "timeout");
    assert_eq!(events[0]["to"], serde_json::Value::Null);
    let shown = store
        .read
        .conversation(None, later[0].conversation.id.parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(shown.desk, None, "switchboard's own agents: /v1 only");
    assert_eq!(store.fire_due_handoffs().await.unwrap(), 0, "fired once");
}
