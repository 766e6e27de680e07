//! Retrying dead deliveries on a real store: a queue's order, the fresh start, the
//! organization boundary, and a failed message going back to pending.

use std::path::Path;
use std::sync::Arc;

use rusqlite::{Connection, params};

use super::DeliveryState;
use crate::config::Synchronous;
use crate::metrics::Metrics;
use crate::store::{Outcome, Store, StoreError, migrate};

/// Outbox rows `(id, service, kind, ref_id, queue, state)` over services of two
/// organizations, a conversation with a failed outbound message (id 7).
async fn store(dir: &Path, rows: &[(i64, &str, &str, i64, &str, i64)]) -> Store {
    let path = dir.join("s.db");
    migrate(&path, Synchronous::Full).await.unwrap();
    let conn = Connection::open(&path).unwrap();
    conn.execute_batch(
        "INSERT INTO services (id, type, status, organization, state, state_since, updated_at) VALUES
           ('hook', 'webhook', 'active', 'o1', '{\"kind\":\"connected\"}', 0, 0),
           ('sms', 'twilio', 'active', 'o1', '{\"kind\":\"connected\"}', 0, 0),
           ('theirs', 'webhook', 'active', 'o2', '{\"kind\":\"connected\"}', 0, 0);
         INSERT INTO contacts (id, service_id, external_id, created_at, updated_at) VALUES (1, 'sms', 'c', 0, 0);
         INSERT INTO conversations (id, service_id, organization, contact_id, created_at, updated_at) VALUES (1, 'sms', 'o1', 1, 0, 0);
         INSERT INTO messages (id, conversation_id, service_id, direction, author_type, status, error, created_at, updated_at)
           VALUES (7, 1, 'sms', 'outbound', 'agent', 'failed', 'gave up after 12 attempts: HTTP 503', 0, 0);",
    )
    .unwrap();
    for (id, service, kind, ref_id, queue, state) in rows {
        conn.execute(
            "INSERT INTO outbox (id, service_id, kind, ref_id, queue_key, state, attempts, next_attempt_at, created_at, last_error) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, 12, 5, 5, CASE WHEN ?6 = 3 THEN 'HTTP 500' END)",
            params![id, service, kind, ref_id, queue, state],
        )
        .unwrap();
    }
    drop(conn);
    Store::open(&path, Synchronous::Full, Arc::new(Metrics::new()))
        .await
        .unwrap()
}

async fn states(s: &Store) -> Vec<(i64, i64)> {
    let mut all = Vec::new();
    for state in [DeliveryState::Live, DeliveryState::Dead] {
        for org in ["o1", "o2"] {
            for r in s.read.deliveries(org, state, None, 0, 100).await.unwrap() {
                all.push((r.id, r.state));
            }
        }
    }
    all.sort();
    all
}

#[tokio::test]
async fn a_retried_delivery_goes_before_what_is_still_queued_in_its_conversation() {
    let dir = tempfile::tempdir().unwrap();
    // Queue c1: 1 dead, 3 ready (the head, maybe in flight), 4 queued behind it. The
    // retried row, the oldest live one, becomes the head; 3 waits (a lane already
    // delivering it may still report it).
    let s = store(
        dir.path(),
        &[
            (1, "hook", "event", 101, "c1", 3),
            (3, "hook", "event", 103, "c1", 1),
            (4, "hook", "event", 104, "c1", 0),
        ],
    )
    .await;
    s.retry_delivery("o1", 1).await.unwrap();
    assert_eq!(states(&s).await, [(1, 1), (3, 0), (4, 0)]);
    let row = s.read.delivery("o1", 1).await.unwrap().unwrap();
    assert_eq!((row.attempts, row.last_error.as_deref()), (0, None));
    assert!(row.created_at > 5, "its age starts over");
    assert_eq!(row.ref_id, 101, "the same event: the same webhook-id");

    // The old head's result still counts; the retried row stays next, before 4.
    s.delivery_results(vec![(3, Outcome::EventDelivered)])
        .await
        .unwrap();
    assert_eq!(states(&s).await, [(1, 1), (4, 0)]);
    s.delivery_results(vec![(1, Outcome::EventDelivered)])
        .await
        .unwrap();
    assert_eq!(states(&s).await, [(4, 1)]);
    s.close().await;
}

#[tokio::test]
async fn a_retried_delivery_in_an_idle_queue_is_ready_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(
        dir.path(),
        &[
            (1, "hook", "event", 101, "c1", 3),
            (2, "hook", "event", 102, "c2", 1),
        ],
    )
    .await;
    s.retry_delivery("o1", 1).await.unwrap();
    assert_eq!(states(&s).await, [(1, 1), (2, 1)]);
    let heads = s.read.heads("hook", 10).await.unwrap();
    assert!(heads.iter().any(|h| h.id == 1));
    s.close().await;
}

#[tokio::test]
async fn only_dead_rows_of_the_callers_organization_are_retried() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(
        dir.path(),
        &[
            (1, "hook", "event", 101, "c1", 1),
            (2, "theirs", "event", 102, "c9", 3),
        ],
    )
    .await;
    assert!(matches!(
        s.retry_delivery("o1", 1).await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        s.retry_delivery("o1", 2).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        s.retry_delivery("o1", 99).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        s.retry_dead("o1", "theirs").await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(states(&s).await, [(1, 1), (2, 3)], "nothing changed");
    assert!(
        s.read
            .deliveries("o1", DeliveryState::Dead, None, 0, 10)
            .await
            .unwrap()
            .is_empty()
    );
    s.close().await;
}

#[tokio::test]
async fn retry_dead_requeues_a_services_dead_rows_in_their_order() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(
        dir.path(),
        &[
            (1, "hook", "event", 101, "c1", 3),
            (2, "hook", "event", 102, "c1", 3),
            (3, "hook", "event", 103, "c2", 3),
            (4, "sms", "message", 7, "c1", 3),
        ],
    )
    .await;
    assert_eq!(s.retry_dead("o1", "hook").await.unwrap(), 3);
    // c1: 1 is ready, 2 waits behind it; c2: 3 is ready; sms untouched.
    assert_eq!(states(&s).await, [(1, 1), (2, 0), (3, 1), (4, 3)]);
    assert_eq!(s.retry_dead("o1", "hook").await.unwrap(), 0);
    let page = s
        .read
        .deliveries("o1", DeliveryState::Live, Some("hook"), 1, 1)
        .await
        .unwrap();
    assert_eq!(
        page.iter().map(|r| r.id).collect::<Vec<_>>(),
        [2],
        "paged by id"
    );
    s.close().await;
}

#[tokio::test]
async fn a_retried_message_goes_back_to_pending_with_an_event() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path(), &[(4, "sms", "message", 7, "c1", 3)]).await;
    let before = s.read.last_seq().await.unwrap();
    s.retry_delivery("o1", 4).await.unwrap();
    let m = s.read.message(None, 7).await.unwrap().unwrap();
    assert_eq!(m.status.as_str(), "pending");
    assert_eq!(m.error, None);
    let events = s.read.events_after(None, before, 10).await.unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].kind, "message.status");
    assert!(events[0].data.contains("\"pending\""));
    let row = s.read.delivery("o1", 4).await.unwrap().unwrap();
    assert_eq!((row.state, row.conversation_id), (1, Some(1)));
    // Delivered this time: it moves forward from pending as usual.
    s.delivery_results(vec![(
        4,
        Outcome::Sent {
            external_id: Some("SM1".into()),
            status: switchboard_core::MessageStatus::Sent,
        },
    )])
    .await
    .unwrap();
    assert_eq!(
        s.read
            .message(None, 7)
            .await
            .unwrap()
            .unwrap()
            .status
            .as_str(),
        "sent"
    );
    s.close().await;
}
