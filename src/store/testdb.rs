//! Unit-test helpers for the store's modules: a real, migrated SQLite file, query plans,
//! and writes run the way the writer runs them.

use super::routes::Routes;
use super::sql::Db;
use super::writer::{Effects, WriteCx};
use crate::config::Synchronous;

/// A migrated database in a temporary directory (kept alive by the returned guard).
pub async fn db() -> (tempfile::TempDir, rusqlite::Connection) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    super::migrate(&path, Synchronous::Normal).await.unwrap();
    let conn = rusqlite::Connection::open(&path).unwrap();
    (dir, conn)
}

/// `EXPLAIN QUERY PLAN` of `sql` with every parameter NULL, its details joined by `; `.
pub fn plan(conn: &rusqlite::Connection, sql: &str) -> String {
    let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
    let unbound = vec![rusqlite::types::Null; stmt.parameter_count()];
    let rows: Vec<String> = stmt
        .query_map(rusqlite::params_from_iter(unbound), |r| {
            r.get::<_, String>(3)
        })
        .unwrap()
        .map(Result::unwrap)
        .collect();
    rows.join("; ")
}

/// Runs `f` in a transaction the way the writer does, with no event routes, and commits.
pub fn write<T>(conn: &rusqlite::Connection, now: i64, f: impl FnOnce(&mut WriteCx<'_>) -> T) -> T {
    write_routed(conn, now, &Routes::default(), f)
}

/// [`write`] with event routes.
pub fn write_routed<T>(
    conn: &rusqlite::Connection,
    now: i64,
    routes: &Routes,
    f: impl FnOnce(&mut WriteCx<'_>) -> T,
) -> T {
    conn.execute_batch("BEGIN").unwrap();
    let mut cx = WriteCx {
        db: Db::Lite(conn),
        now,
        routes,
        fx: Effects::default(),
        instance: None,
    };
    let out = f(&mut cx);
    conn.execute_batch("COMMIT").unwrap();
    out
}
