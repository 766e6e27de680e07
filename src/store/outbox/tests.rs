//! Outbox unit tests on a real, migrated SQLite file: query plans (no statement of the
//! delivery path may scan a service's whole outbox) and pipelined result batches.

use super::super::read::{HEADS, QUEUE_AFTER};
use super::super::testdb::{db, plan, write};
use super::*;
use rusqlite::OptionalExtension;

#[tokio::test]
async fn delivery_statements_use_their_indexes() {
    let (_dir, conn) = db().await;
    for (name, sql, index) in [
        ("enqueue", ENQUEUE.as_str(), "outbox_live"),
        ("promote", PROMOTE.as_str(), "outbox_live"),
        ("heads", HEADS.as_str(), "outbox_ready"),
        ("queue_after", QUEUE_AFTER.as_str(), "outbox_live"),
    ] {
        let p = plan(&conn, sql);
        assert!(p.contains(index), "{name} does not use {index}: {p}");
        assert!(
            !p.contains("SCAN o") && !p.contains("SCAN outbox") && !p.contains("TEMP B-TREE"),
            "{name} scans or sorts: {p}"
        );
    }
}

struct Row {
    state: i64,
    attempts: i64,
    next_attempt_at: i64,
}

fn row(conn: &rusqlite::Connection, id: i64) -> Option<Row> {
    conn.query_row(
        "SELECT state, attempts, next_attempt_at FROM outbox WHERE id = ?",
        [id],
        |r| {
            Ok(Row {
                state: r.get(0)?,
                attempts: r.get(1)?,
                next_attempt_at: r.get(2)?,
            })
        },
    )
    .optional()
    .unwrap()
}

fn queue_of_four(conn: &rusqlite::Connection) -> Vec<i64> {
    write(conn, 1_000, |cx| {
        (1..=4)
            .map(|seq| {
                cx.enqueue("hook", OutboxKind::Event, seq, "c1").unwrap();
                cx.db
                    .value("SELECT max(id) FROM outbox", &[])
                    .unwrap()
                    .unwrap()
            })
            .collect()
    })
}

const READY: i64 = OutboxState::Ready.code();
const QUEUED: i64 = OutboxState::Queued.code();

#[tokio::test]
async fn only_the_oldest_row_of_a_queue_is_ready() {
    let (_dir, conn) = db().await;
    let ids = queue_of_four(&conn);
    let states: Vec<i64> = ids.iter().map(|&i| row(&conn, i).unwrap().state).collect();
    assert_eq!(states, [READY, QUEUED, QUEUED, QUEUED]);
}

#[tokio::test]
async fn a_pipelined_batch_leaves_one_ready_head_with_its_retry_time() {
    let (_dir, conn) = db().await;
    let ids = queue_of_four(&conn);
    write(&conn, 2_000, |cx| {
        delivery_results(
            cx,
            vec![
                (ids[0], Outcome::EventDelivered),
                (ids[1], Outcome::EventDelivered),
                (
                    ids[2],
                    Outcome::Retry {
                        at: 9_000,
                        attempts: 1,
                        error: "HTTP 503".into(),
                    },
                ),
            ],
        )
        .unwrap();
        // Results never wake their own dispatcher: it knows.
        assert!(cx.fx.outbox.is_empty());
    });
    assert!(row(&conn, ids[0]).is_none() && row(&conn, ids[1]).is_none());
    let head = row(&conn, ids[2]).unwrap();
    assert_eq!(
        (head.state, head.attempts, head.next_attempt_at),
        (READY, 1, 9_000)
    );
    assert_eq!(row(&conn, ids[3]).unwrap().state, QUEUED);
}

#[tokio::test]
async fn a_dead_row_lets_the_queue_move_on() {
    let (_dir, conn) = db().await;
    let ids = queue_of_four(&conn);
    write(&conn, 2_000, |cx| {
        let dead = Outcome::Dead {
            attempts: 3,
            error: "gave up".into(),
        };
        delivery_results(cx, vec![(ids[0], dead)]).unwrap();
    });
    assert_eq!(row(&conn, ids[0]).unwrap().state, OutboxState::Dead.code());
    let next = row(&conn, ids[1]).unwrap();
    assert_eq!((next.state, next.next_attempt_at), (READY, 2_000));
    assert_eq!(row(&conn, ids[2]).unwrap().state, QUEUED);
}

#[tokio::test]
async fn a_repeated_report_changes_nothing() {
    let (_dir, conn) = db().await;
    let ids = queue_of_four(&conn);
    for _ in 0..2 {
        write(&conn, 2_000, |cx| {
            delivery_results(cx, vec![(ids[0], Outcome::EventDelivered)]).unwrap()
        });
    }
    let states: Vec<Option<i64>> = ids
        .iter()
        .map(|&i| row(&conn, i).map(|r| r.state))
        .collect();
    assert_eq!(states, [None, Some(READY), Some(QUEUED), Some(QUEUED)]);
}
