//! The SQL tier: the store's own SQLite database, in the SQLite dialect.
//!
//! # Semantics
//!
//! - Statements run on the **writer connection** (they may write), one
//!   at a time; clones of a store share it, so DDL through one clone is
//!   visible through every other at once. Statements are prepared once and
//!   cached per text (`prepare_cached`); parameters are always bound.
//! - **Parameters** (`?`, `?NNN`, `:name` by position): `Null` → NULL,
//!   `Bool` → integer 0 / 1 (SQLite has no boolean type), `Integer`,
//!   `Float` (NaN binds as NULL, as SQLite does), `Text`, `Blob`. A wrong
//!   number of parameters is `InvalidInput`.
//! - **Results**: column names and declared types (`column_decltype`, the
//!   empty string for expressions), and values by their SQLite storage
//!   class: INTEGER → `Integer`, REAL → `Float`, TEXT → `Text` (invalid
//!   UTF-8 is replaced with U+FFFD), BLOB → `Blob`, NULL → `Null`. No value
//!   comes back as `Bool`. `rows_affected` is what SQLite's `changes()`
//!   reports for an INSERT, UPDATE or DELETE (not counting trigger
//!   changes), and 0 for every other statement.
//! - **Atomicity**: a failing statement changes nothing (SQLite's
//!   statement journal rolls it back) and is `InvalidInput` with the
//!   engine's message. [`execute_batch`](SqlEngine::execute_batch) runs all
//!   its statements in one `BEGIN IMMEDIATE` transaction: all or nothing.
//! - **Transaction control** (`BEGIN`, `COMMIT`, `END`, `ROLLBACK`,
//!   `SAVEPOINT`, `RELEASE`) is refused with `InvalidInput`: the writer
//!   connection is shared with the KV, CAS and queue tiers, so a
//!   transaction left open by one call would capture everyone else's
//!   writes. Use `execute_batch` for several statements that must apply
//!   together (`SAVEPOINT` / `RELEASE` are allowed inside it, `ROLLBACK TO`
//!   is not).
//! - **Reserved tables**: every table named `storage_*` belongs to the
//!   storage layer (see [`schema`](crate::schema)). SQL may read them, but
//!   writing or altering them bypasses the KV and queue invariants
//!   (versions, expiry, receipts) and is unsupported.

use async_trait::async_trait;
use bytes::Bytes;
use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Batch, Connection, ToSql};
use storage_core::{
    At, Context, Error, Result, SqlColumn, SqlDialect, SqlEngine, SqlResult, SqlValue,
};
use tracing::Instrument;

use crate::backend::SqliteStore;
use crate::config::BACKEND;
use crate::error::map_err;
use crate::kv::immediate;

/// A bound parameter.
struct Param<'a>(&'a SqlValue);

impl ToSql for Param<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match self.0 {
            SqlValue::Null => ValueRef::Null,
            SqlValue::Bool(b) => ValueRef::Integer(i64::from(*b)),
            SqlValue::Integer(i) => ValueRef::Integer(*i),
            SqlValue::Float(f) => ValueRef::Real(*f),
            SqlValue::Text(s) => ValueRef::Text(s.as_bytes()),
            SqlValue::Blob(b) => ValueRef::Blob(b),
        }))
    }
}

fn to_value(v: ValueRef<'_>) -> SqlValue {
    match v {
        ValueRef::Null => SqlValue::Null,
        ValueRef::Integer(i) => SqlValue::Integer(i),
        ValueRef::Real(f) => SqlValue::Float(f),
        ValueRef::Text(t) => SqlValue::Text(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => SqlValue::Blob(Bytes::copy_from_slice(b)),
    }
}

/// The first keyword of a statement, skipping whitespace and comments.
fn leading_keyword(sql: &str) -> &str {
    let mut rest = sql;
    loop {
        rest = rest.trim_start();
        if let Some(after) = rest.strip_prefix("--") {
            rest = after.find('\n').map_or("", |i| &after[i..]);
        } else if let Some(after) = rest.strip_prefix("/*") {
            rest = after.find("*/").map_or("", |i| &after[i + 2..]);
        } else {
            break;
        }
    }
    let end = rest
        .find(|c: char| !c.is_ascii_alphabetic())
        .unwrap_or(rest.len());
    &rest[..end]
}

/// Whether a statement opens, ends or nests a transaction. `in_batch`:
/// savepoints are fine inside the batch's own transaction.
fn is_transaction_control(sql: &str, in_batch: bool) -> bool {
    let word = leading_keyword(sql);
    let always = ["BEGIN", "COMMIT", "END", "ROLLBACK"];
    let outside_batch = ["SAVEPOINT", "RELEASE"];
    always.iter().any(|k| word.eq_ignore_ascii_case(k))
        || (!in_batch && outside_batch.iter().any(|k| word.eq_ignore_ascii_case(k)))
}

fn refuse_transaction_control(at: At<'_>) -> Error {
    Error::invalid(
        at,
        "transaction control statements (BEGIN, COMMIT, END, ROLLBACK, SAVEPOINT, RELEASE) \
         are not allowed: the connection is shared; use execute_batch, which runs its \
         statements in one transaction",
    )
}

/// Runs one statement on the writer connection.
fn execute_on(conn: &Connection, sql: &str, params: &[SqlValue]) -> Result<SqlResult> {
    let at = At::new("execute", BACKEND);
    if is_transaction_control(sql, false) {
        return Err(refuse_transaction_control(at));
    }
    // A read-only statement changes no rows, so it needs neither count of
    // changes (two statements of their own). A text that does not prepare
    // takes the general path, which reports the error.
    let readonly = conn.prepare_cached(sql).is_ok_and(|s| s.readonly());
    let before = if readonly {
        None
    } else {
        Some(total_changes(conn).map_err(|e| map_err(at, e))?)
    };
    let result = run_statement(conn, sql, params).map_err(|e| map_err(at, e));
    if !conn.is_autocommit() {
        // Something opened a transaction anyway: never leave one open on
        // the shared connection.
        let _ = conn.execute_batch("ROLLBACK");
        return Err(refuse_transaction_control(at));
    }
    let mut result = result?;
    // `changes()` keeps the count of the last INSERT/UPDATE/DELETE, so it
    // is only this statement's when the total moved.
    result.rows_affected = match before {
        None => 0,
        Some(before) if total_changes(conn).map_err(|e| map_err(at, e))? == before => 0,
        Some(_) => conn.changes(),
    };
    Ok(result)
}

/// Rows changed by every statement of this connection so far (SQLite's
/// `total_changes()`, read through SQL so it works on every SQLite the
/// `system` feature may link).
fn total_changes(conn: &Connection) -> rusqlite::Result<i64> {
    conn.prepare_cached("SELECT total_changes()")?
        .query_row([], |r| r.get(0))
}

/// Whether `sql` holds more than one statement. `execute` takes one;
/// older rusqlite would silently drop the rest, so check explicitly (only
/// when a `;` is followed by more text — the common case costs nothing).
fn has_several_statements(conn: &Connection, sql: &str) -> rusqlite::Result<bool> {
    let body = sql.trim_end().trim_end_matches(';');
    if !body.contains(';') {
        return Ok(false);
    }
    let mut batch = Batch::new(conn, sql);
    let mut n = 0;
    while batch.next()?.is_some() {
        n += 1;
        if n > 1 {
            return Ok(true);
        }
    }
    Ok(false)
}

fn run_statement(conn: &Connection, sql: &str, params: &[SqlValue]) -> rusqlite::Result<SqlResult> {
    if has_several_statements(conn, sql)? {
        return Err(rusqlite::Error::MultipleStatement);
    }
    let mut stmt = conn.prepare_cached(sql)?;
    let columns: Vec<SqlColumn> = stmt
        .columns()
        .into_iter()
        .map(|c| SqlColumn {
            name: c.name().to_owned(),
            type_name: c.decl_type().unwrap_or_default().to_owned(),
        })
        .collect();
    let width = columns.len();
    let mut rows = stmt.query(rusqlite::params_from_iter(params.iter().map(Param)))?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        let mut values = Vec::with_capacity(width);
        for i in 0..width {
            values.push(to_value(row.get_ref(i)?));
        }
        out.push(values);
    }
    Ok(SqlResult {
        columns,
        rows: out,
        rows_affected: 0,
    })
}

/// Runs `;`-separated statements in one immediate transaction.
fn execute_batch_on(conn: &mut Connection, sql: &str) -> Result<()> {
    let at = At::new("execute_batch", BACKEND);
    let tx = immediate(conn).map_err(|e| map_err(at, e))?;
    {
        let mut batch = Batch::new(&tx, sql);
        while let Some(mut stmt) = batch.next().map_err(|e| map_err(at, e))? {
            let text = stmt.expanded_sql().unwrap_or_default();
            if is_transaction_control(&text, true) {
                return Err(refuse_transaction_control(at));
            }
            if stmt.parameter_count() > 0 {
                return Err(Error::invalid(
                    at,
                    "execute_batch takes no parameters; use execute to bind them",
                ));
            }
            let mut rows = stmt.raw_query();
            while rows.next().map_err(|e| map_err(at, e))?.is_some() {}
        }
    }
    tx.commit().map_err(|e| map_err(at, e))
}

#[async_trait]
impl SqlEngine for SqliteStore {
    fn backend_name(&self) -> &'static str {
        BACKEND
    }

    fn dialect(&self) -> Option<SqlDialect> {
        Some(SqlDialect::Sqlite)
    }

    async fn execute(&self, sql: &str, params: &[SqlValue]) -> Result<SqlResult> {
        let (sql, params) = (sql.to_owned(), params.to_vec());
        self.inner
            .db
            .write(Context::new("execute", BACKEND), move |conn| {
                execute_on(conn, &sql, &params)
            })
            .instrument(tracing::debug_span!(
                "sql",
                backend = BACKEND,
                op = "execute"
            ))
            .await
    }

    async fn execute_batch(&self, sql: &str) -> Result<()> {
        let sql = sql.to_owned();
        self.inner
            .db
            .write(Context::new("execute_batch", BACKEND), move |conn| {
                execute_batch_on(conn, &sql)
            })
            .instrument(tracing::debug_span!(
                "sql",
                backend = BACKEND,
                op = "execute_batch"
            ))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transaction_control_is_recognised_behind_comments() {
        assert!(is_transaction_control("BEGIN", false));
        assert!(is_transaction_control("  -- hi\n /* x */ commit;", false));
        assert!(is_transaction_control("end transaction", true));
        assert!(is_transaction_control("SAVEPOINT a", false));
        assert!(!is_transaction_control("SAVEPOINT a", true));
        assert!(!is_transaction_control("SELECT 1", false));
        assert!(!is_transaction_control("BEGINNING", false));
        assert!(!is_transaction_control("/* unterminated", false));
        assert_eq!(leading_keyword("-- only a comment"), "");
    }
}
