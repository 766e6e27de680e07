//! One way to run SQL on either engine: [`Db`] is a connection of SQLite (rusqlite) or
//! PostgreSQL (the synchronous `postgres` client), and every write and read of the store
//! is written once against it. Statements are written with `?` / `?N` placeholders;
//! PostgreSQL's `$N` spelling is made once per statement and kept with the prepared
//! statement, so neither engine pays a parse per call.
//!
//! The SQL itself is the common dialect of SQLite ≥ 3.39 and PostgreSQL ≥ 12
//! (`RETURNING`, `ON CONFLICT … DO`, `CASE` instead of scalar
//! `max`); the few statements that must differ choose with [`Db::is_pg`]. Integers are
//! 64-bit on both sides (every PostgreSQL integer column is `BIGINT`), text is text, and
//! a flag is an integer 0/1 as SQLite stores it.

use std::cell::RefCell;
use std::collections::HashMap;

use super::error::StoreError;

/// A parameter both engines bind. Implemented for the types the store binds, and only
/// those: a `u32` would bind as PostgreSQL's `oid`, so counts are passed as `i64`.
pub trait Param: Sync {
    /// The value for rusqlite.
    fn lite(&self) -> rusqlite::types::ToSqlOutput<'_>;
    /// The value for postgres.
    fn pg(&self) -> &(dyn postgres::types::ToSql + Sync);
}

macro_rules! params_of {
    ($($t:ty),*) => {$(
        impl Param for $t {
            fn lite(&self) -> rusqlite::types::ToSqlOutput<'_> {
                rusqlite::ToSql::to_sql(self).expect("these types always convert")
            }
            fn pg(&self) -> &(dyn postgres::types::ToSql + Sync) {
                self
            }
        }
    )*};
}
params_of!(i64, String, &str, Option<i64>, Option<String>, Option<&str>);

impl<T: Param> Param for &T {
    fn lite(&self) -> rusqlite::types::ToSqlOutput<'_> {
        (**self).lite()
    }
    fn pg(&self) -> &(dyn postgres::types::ToSql + Sync) {
        (**self).pg()
    }
}

/// A column both engines read.
pub trait Col: Sized {
    /// From rusqlite.
    fn lite(r: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<Self>;
    /// From postgres.
    fn pg(r: &postgres::Row, i: usize) -> Result<Self, postgres::Error>;
}

macro_rules! cols_of {
    ($($t:ty),*) => {$(
        impl Col for $t {
            fn lite(r: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<Self> {
                r.get(i)
            }
            fn pg(r: &postgres::Row, i: usize) -> Result<Self, postgres::Error> {
                r.try_get(i)
            }
        }
    )*};
}
cols_of!(String, Option<String>);

/// PostgreSQL gives `int4` for literals and some functions, `int8` for the columns.
fn pg_int(r: &postgres::Row, i: usize) -> Result<Option<i64>, postgres::Error> {
    r.try_get::<_, Option<i64>>(i)
        .or_else(|e| match r.try_get::<_, Option<i32>>(i) {
            Ok(v) => Ok(v.map(i64::from)),
            Err(_) => match r.try_get::<_, Option<bool>>(i) {
                Ok(v) => Ok(v.map(i64::from)),
                Err(_) => Err(e),
            },
        })
}

impl Col for Option<i64> {
    fn lite(r: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<Self> {
        r.get(i)
    }
    fn pg(r: &postgres::Row, i: usize) -> Result<Self, postgres::Error> {
        pg_int(r, i)
    }
}

impl Col for i64 {
    fn lite(r: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<Self> {
        r.get(i)
    }
    fn pg(r: &postgres::Row, i: usize) -> Result<Self, postgres::Error> {
        // A NULL here is a bug in the statement; the type error says which column.
        pg_int(r, i)?.map_or_else(|| r.try_get::<_, i64>(i), Ok)
    }
}

impl Col for bool {
    fn lite(r: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<Self> {
        r.get(i)
    }
    fn pg(r: &postgres::Row, i: usize) -> Result<Self, postgres::Error> {
        Ok(<i64 as Col>::pg(r, i)? != 0)
    }
}

/// One result row.
pub enum Row<'a, 'r> {
    /// SQLite's.
    Lite(&'a rusqlite::Row<'r>),
    /// PostgreSQL's.
    Pg(&'a postgres::Row),
}

impl Row<'_, '_> {
    /// Column `i`.
    pub fn get<T: Col>(&self, i: usize) -> Result<T, StoreError> {
        match self {
            Row::Lite(r) => Ok(T::lite(r, i)?),
            Row::Pg(r) => Ok(T::pg(r, i)?),
        }
    }
}

/// A PostgreSQL connection with its prepared statements, keyed by the `?` spelling.
pub struct PgConn {
    /// The client.
    pub client: postgres::Client,
    prepared: HashMap<String, postgres::Statement>,
}

impl PgConn {
    /// Wraps a connected client.
    pub fn new(client: postgres::Client) -> Self {
        PgConn {
            client,
            prepared: HashMap::new(),
        }
    }

    fn statement(&mut self, sql: &str) -> Result<postgres::Statement, StoreError> {
        if let Some(s) = self.prepared.get(sql) {
            return Ok(s.clone());
        }
        let s = self.client.prepare(&pg_sql(sql))?;
        // The store's statements are fixed in shape (those built with `format!` too), so
        // the map stays small; bound it anyway, as rusqlite's cache is.
        if self.prepared.len() >= 512 {
            self.prepared.clear();
        }
        self.prepared.insert(sql.to_owned(), s.clone());
        Ok(s)
    }
}

/// `?` and `?N` placeholders to PostgreSQL's `$N`, outside quoted text.
pub fn pg_sql(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 16);
    let mut next = 1;
    let mut quoted = false;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                quoted = !quoted;
                out.push(c);
            }
            '?' if !quoted => {
                let mut digits = String::new();
                while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                    digits.push(*d);
                    chars.next();
                }
                out.push('$');
                if digits.is_empty() {
                    out.push_str(&next.to_string());
                    next += 1;
                } else {
                    out.push_str(&digits);
                }
            }
            _ => out.push(c),
        }
    }
    out
}

/// A connection of either engine.
#[derive(Clone, Copy)]
pub enum Db<'c> {
    /// SQLite.
    Lite(&'c rusqlite::Connection),
    /// PostgreSQL.
    Pg(&'c RefCell<PgConn>),
}

impl Db<'_> {
    /// Whether this is PostgreSQL (for the few statements that differ).
    pub fn is_pg(&self) -> bool {
        matches!(self, Db::Pg(_))
    }

    /// Runs a statement; the number of rows it changed.
    pub fn execute(&self, sql: &str, params: &[&dyn Param]) -> Result<u64, StoreError> {
        match self {
            Db::Lite(c) => {
                let n = c
                    .prepare_cached(sql)?
                    .execute(rusqlite::params_from_iter(params.iter().map(|p| p.lite())))?;
                Ok(n as u64)
            }
            Db::Pg(c) => {
                let mut c = c.borrow_mut();
                let stmt = c.statement(sql)?;
                let args: Vec<_> = params.iter().map(|p| p.pg()).collect();
                Ok(c.client.execute(&stmt, &args)?)
            }
        }
    }

    /// Inserts one row with a plain `INSERT` (no `ON CONFLICT`, no `RETURNING`) and
    /// returns its integer key, column `key`. SQLite reads `last_insert_rowid()`: its
    /// `RETURNING` builds and drops an ephemeral table in every call, measured at about
    /// a sixth of the writer's instructions per ingest when messages and events each
    /// used it. PostgreSQL has no rowid and gets `RETURNING key`.
    pub fn insert(&self, sql: &str, params: &[&dyn Param], key: &str) -> Result<i64, StoreError> {
        match self {
            Db::Lite(c) => match self.execute(sql, params)? {
                1 => Ok(c.last_insert_rowid()),
                n => Err(StoreError::Internal(format!("{n} rows from: {sql}"))),
            },
            Db::Pg(_) => {
                let sql = format!("{sql} RETURNING {key}");
                self.query_one(&sql, params, |r| r.get(0))
            }
        }
    }

    /// Every row of a query, each mapped by `f`.
    pub fn query<T>(
        &self,
        sql: &str,
        params: &[&dyn Param],
        mut f: impl FnMut(&Row<'_, '_>) -> Result<T, StoreError>,
    ) -> Result<Vec<T>, StoreError> {
        match self {
            Db::Lite(c) => {
                let mut stmt = c.prepare_cached(sql)?;
                let mut rows =
                    stmt.query(rusqlite::params_from_iter(params.iter().map(|p| p.lite())))?;
                let mut out = Vec::new();
                while let Some(r) = rows.next()? {
                    out.push(f(&Row::Lite(r))?);
                }
                Ok(out)
            }
            Db::Pg(c) => {
                let mut c = c.borrow_mut();
                let stmt = c.statement(sql)?;
                let args: Vec<_> = params.iter().map(|p| p.pg()).collect();
                c.client
                    .query(&stmt, &args)?
                    .iter()
                    .map(|r| f(&Row::Pg(r)))
                    .collect()
            }
        }
    }

    /// The first row of a query, if any, mapped by `f` (on both engines: PostgreSQL's own
    /// `query_opt` fails on a second row where SQLite's first-row read does not).
    pub fn query_opt<T>(
        &self,
        sql: &str,
        params: &[&dyn Param],
        mut f: impl FnMut(&Row<'_, '_>) -> Result<T, StoreError>,
    ) -> Result<Option<T>, StoreError> {
        match self {
            Db::Lite(c) => {
                let mut stmt = c.prepare_cached(sql)?;
                let mut rows =
                    stmt.query(rusqlite::params_from_iter(params.iter().map(|p| p.lite())))?;
                match rows.next()? {
                    Some(r) => Ok(Some(f(&Row::Lite(r))?)),
                    None => Ok(None),
                }
            }
            Db::Pg(_) => Ok(self.query(sql, params, f)?.into_iter().next()),
        }
    }

    /// The one row a query returns; [`StoreError::Internal`] when there is none.
    pub fn query_one<T>(
        &self,
        sql: &str,
        params: &[&dyn Param],
        f: impl FnMut(&Row<'_, '_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.query_opt(sql, params, f)?
            .ok_or_else(|| StoreError::Internal(format!("no row from: {sql}")))
    }

    /// A single value (the first column of the first row), if there is a row.
    pub fn value<T: Col>(&self, sql: &str, params: &[&dyn Param]) -> Result<Option<T>, StoreError> {
        self.query_opt(sql, params, |r| r.get(0))
    }

    /// Statements without parameters or results (transaction control).
    pub fn batch(&self, sql: &str) -> Result<(), StoreError> {
        match self {
            Db::Lite(c) => Ok(c.execute_batch(sql)?),
            Db::Pg(c) => Ok(c.borrow_mut().client.batch_execute(sql)?),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::pg_sql;

    #[test]
    fn placeholders_become_numbered_outside_quotes() {
        assert_eq!(pg_sql("a = ? AND b = ?"), "a = $1 AND b = $2");
        assert_eq!(pg_sql("a = ?2 OR ?1 IS NULL"), "a = $2 OR $1 IS NULL");
        assert_eq!(pg_sql("x = '?' AND y = ?"), "x = '?' AND y = $1");
    }
}
