//! Retention unit tests on a real, migrated SQLite file: what a batch deletes and keeps,
//! the per-organization horizon, the walk's batches, and the plans of its statements.

use super::super::outbox::{Outcome, delivery_results};
use super::super::routes::{Routes, WebhookRoute};
use super::super::testdb::{db, plan, write, write_routed};
use super::*;
use switchboard_core::EventData;

/// A webhook `hook` taking every event of organization `a`.
fn routes() -> Routes {
    Routes {
        webhooks: vec![WebhookRoute {
            service_id: "hook".into(),
            organization: "a".into(),
            events: None,
        }],
        ..Routes::default()
    }
}

/// Appends one event at `now`; returns its seq.
fn event(conn: &rusqlite::Connection, now: i64, organization: &str, conversation: i64) -> i64 {
    write_routed(conn, now, &routes(), |cx| {
        cx.append_event(
            organization,
            Some("api"),
            Some(conversation),
            &EventData::Other {
                kind: "message.created".into(),
                data: serde_json::json!({}),
            },
        )
        .unwrap()
    })
}

fn outbox_id(conn: &rusqlite::Connection, seq: i64) -> i64 {
    conn.query_row(
        "SELECT id FROM outbox WHERE kind = 'event' AND ref_id = ?",
        [seq],
        |r| r.get(0),
    )
    .unwrap()
}

fn report(conn: &rusqlite::Connection, now: i64, results: Vec<(i64, Outcome)>) {
    write(conn, now, |cx| delivery_results(cx, results).unwrap());
}

fn remaining(conn: &rusqlite::Connection) -> Vec<i64> {
    let mut stmt = conn.prepare("SELECT seq FROM events ORDER BY seq").unwrap();
    stmt.query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

fn horizon(conn: &rusqlite::Connection, organization: &str) -> Option<i64> {
    conn.query_row(
        "SELECT pruned_through FROM event_horizon WHERE organization = ?",
        [organization],
        |r| r.get(0),
    )
    .ok()
}

fn prune(conn: &rusqlite::Connection, after: i64, cutoff: i64, limit: i64) -> Batch {
    write(conn, 9_000, |cx| {
        prune_batch(cx, after, cutoff, limit).unwrap()
    })
}

#[tokio::test]
async fn old_delivered_events_go_and_held_or_young_ones_stay() {
    let (_dir, conn) = db().await;
    let delivered = event(&conn, 1_000, "a", 1);
    let dead = event(&conn, 1_000, "a", 2);
    let unrouted = event(&conn, 1_000, "b", 3);
    let retrying = event(&conn, 1_000, "a", 4);
    let delivered2 = event(&conn, 1_000, "a", 5);
    let young = event(&conn, 5_000, "a", 6);
    // The clock stepped back: old by its time, but behind a young event in the log.
    let stepped_back = event(&conn, 1_000, "b", 7);
    report(
        &conn,
        1_500,
        vec![
            (outbox_id(&conn, delivered), Outcome::EventDelivered),
            (
                outbox_id(&conn, dead),
                Outcome::Dead {
                    attempts: 12,
                    error: "HTTP 500".into(),
                },
            ),
            (
                outbox_id(&conn, retrying),
                Outcome::Retry {
                    at: 60_000,
                    attempts: 3,
                    error: "HTTP 503".into(),
                },
            ),
            (outbox_id(&conn, delivered2), Outcome::EventDelivered),
            (outbox_id(&conn, young), Outcome::EventDelivered),
        ],
    );

    let b = prune(&conn, 0, 3_000, BATCH);
    assert_eq!(
        b,
        Batch {
            through: delivered2,
            pruned: 3,
            done: true
        }
    );
    assert_eq!(remaining(&conn), [dead, retrying, young, stepped_back]);
    assert_eq!(horizon(&conn, "a"), Some(delivered2));
    assert_eq!(horizon(&conn, "b"), Some(unrouted));

    // The retry succeeds later: a pass from where the last one stopped does not see it,
    // a pass from the start does.
    report(
        &conn,
        2_000,
        vec![(outbox_id(&conn, retrying), Outcome::EventDelivered)],
    );
    assert_eq!(prune(&conn, b.through, 3_000, BATCH).pruned, 0);
    assert_eq!(prune(&conn, 0, 3_000, BATCH).pruned, 1);
    assert_eq!(remaining(&conn), [dead, young, stepped_back]);
    assert_eq!(
        horizon(&conn, "a"),
        Some(delivered2),
        "a horizon never moves back"
    );

    // Once the young event is old too, the one behind it goes; the dead one stays for
    // an admin to retry.
    prune(&conn, 0, 10_000, BATCH);
    assert_eq!(remaining(&conn), [dead]);
    assert_eq!(horizon(&conn, "a"), Some(young));
    assert_eq!(horizon(&conn, "b"), Some(stepped_back));
}

#[tokio::test]
async fn a_walk_goes_in_batches_and_says_when_it_is_done() {
    let (_dir, conn) = db().await;
    let seqs: Vec<i64> = (0..7).map(|i| event(&conn, 1_000, "b", i)).collect();
    let mut after = 0;
    let mut batches = Vec::new();
    loop {
        let b = prune(&conn, after, 2_000, 3);
        batches.push((b.through, b.pruned, b.done));
        after = b.through;
        if b.done {
            break;
        }
    }
    assert_eq!(
        batches,
        [(seqs[2], 3, false), (seqs[5], 3, false), (seqs[6], 1, true)]
    );
    assert!(remaining(&conn).is_empty());
    // Nothing left: an empty batch is done and stays where it was.
    let b = prune(&conn, after, 2_000, 3);
    assert_eq!((b.through, b.pruned, b.done), (after, 0, true));
}

#[tokio::test]
async fn retention_statements_use_their_indexes() {
    let (_dir, conn) = db().await;
    for (name, sql) in [("walk", WALK), ("delete", DELETE)] {
        let p = plan(&conn, sql);
        assert!(
            p.contains("SEARCH events USING INTEGER PRIMARY KEY"),
            "{name} does not walk by seq: {p}"
        );
        assert!(
            !p.contains("SCAN") && !p.contains("TEMP B-TREE"),
            "{name} scans or sorts: {p}"
        );
    }
    let p = plan(&conn, DELETE);
    assert!(p.contains("outbox_once (kind=? AND ref_id=?)"), "{p}");
}
