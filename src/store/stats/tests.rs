//! The traffic buckets and failing deliveries against a real migrated SQLite file,
//! filled directly (times chosen by the test) and checked against a plain count.

use std::path::Path;

use rusqlite::{Connection, params};

use crate::config::Synchronous;
use crate::store::{Store, migrate};

const MIN: i64 = 60_000;

fn fill(path: &Path, messages: &[(i64, &str, &str, i64)]) {
    let conn = Connection::open(path).unwrap();
    conn.execute_batch(
        "INSERT INTO contacts (id, service_id, external_id, created_at, updated_at) VALUES (1, 'a', 'c', 0, 0);
         INSERT INTO conversations (id, service_id, organization, contact_id, created_at, updated_at) VALUES (1, 'a', 'o', 1, 0, 0);",
    )
    .unwrap();
    for (id, service, direction, at) in messages {
        conn.execute(
            "INSERT INTO messages (id, conversation_id, service_id, direction, author_type, status, created_at, updated_at) \
             VALUES (?1, 1, ?2, ?3, 'contact', 'received', ?4, ?4)",
            params![id, service, direction, at],
        )
        .unwrap();
    }
}

#[tokio::test]
async fn traffic_counts_the_window_per_service_direction_and_bucket() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    migrate(&path, Synchronous::Full).await.unwrap();
    let now = 1_000 * 60 * MIN; // 1000 hours after the epoch
    let since = now - 60 * MIN;
    // Ids with gaps, times ascending with id; some before the window, one at `now`.
    let mut rows = Vec::new();
    let mut id = 10;
    for i in 0..400i64 {
        id += 1 + i % 3;
        let at = since - 30 * MIN + i * 13_500; // 400 rows over 90 minutes
        let service = if i % 4 == 0 { "b" } else { "a" };
        let direction = if i % 5 == 0 { "outbound" } else { "inbound" };
        rows.push((id, service, direction, at));
    }
    rows.push((id + 5, "a", "inbound", now));
    fill(&path, &rows);
    let reader = Store::open_read_only(&path).await.unwrap();
    let got = reader.traffic(now, 5 * MIN, 12).await.unwrap();

    // The oracle: every row in [since, now), bucketed by hand.
    let mut want: std::collections::BTreeMap<(String, String), Vec<u32>> = Default::default();
    for (_, s, d, at) in &rows {
        if *at >= since && *at < now {
            let b = ((at - since) / (5 * MIN)) as usize;
            want.entry((s.to_string(), d.to_string()))
                .or_insert_with(|| vec![0; 12])[b] += 1;
        }
    }
    let got: std::collections::BTreeMap<_, _> = got
        .into_iter()
        .map(|t| ((t.service_id, t.direction), t.counts))
        .collect();
    assert_eq!(got, want);
    assert!(got.values().flatten().sum::<u32>() > 200);

    // A window after every message, and an empty table.
    assert!(
        reader
            .traffic(now + 120 * MIN, 5 * MIN, 12)
            .await
            .unwrap()
            .is_empty()
    );
    reader.close().await;
    let empty = dir.path().join("e.db");
    migrate(&empty, Synchronous::Full).await.unwrap();
    let reader = Store::open_read_only(&empty).await.unwrap();
    assert!(reader.traffic(now, 5 * MIN, 12).await.unwrap().is_empty());
}

#[tokio::test]
async fn failing_deliveries_are_the_organizations_retried_and_dead_rows_newest_first() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    migrate(&path, Synchronous::Full).await.unwrap();
    let conn = Connection::open(&path).unwrap();
    for (id, service, state, error) in [
        (1, "hook", 3, Some("HTTP 500")),
        (2, "hook", 1, None),
        (3, "hook", 1, Some("timed out")),
        (4, "other_org", 3, Some("HTTP 404")),
        (5, "hook", 0, None),
    ] {
        conn.execute(
            "INSERT INTO outbox (id, service_id, kind, ref_id, queue_key, state, attempts, next_attempt_at, created_at, last_error) \
             VALUES (?1, ?2, 'event', ?1, 'c1', ?3, 2, 99, 7, ?4)",
            params![id, service, state, error],
        )
        .unwrap();
    }
    let reader = Store::open_read_only(&path).await.unwrap();
    let got = reader
        .failing_deliveries(&["hook".to_owned()], 10)
        .await
        .unwrap();
    let ids: Vec<(i64, bool)> = got.iter().map(|f| (f.id, f.dead)).collect();
    assert_eq!(ids, [(3, false), (1, true)]);
    assert_eq!(got[0].last_error, "timed out");
    assert_eq!(
        reader
            .failing_deliveries(&["hook".to_owned()], 1)
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(reader.failing_deliveries(&[], 10).await.unwrap().is_empty());
}
