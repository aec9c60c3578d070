//! The SQL tier: the store's own DuckDB database, in the DuckDB dialect,
//! one catalogue for every clone of the store.
//!
//! # Semantics
//!
//! - Statements run on the store's **SQL connection**, one at a time, in
//!   call order; every clone of a store shares it, so DDL through one clone
//!   is visible through every other at once (see `backend.rs`). Statements
//!   are prepared once per text and cached; parameters are always bound,
//!   never spliced.
//! - **Parameters** (`?`, `$1`, by position): `Null` → NULL, `Bool` →
//!   BOOLEAN, `Integer` → BIGINT, `Float` → DOUBLE, `Text` → VARCHAR,
//!   `Blob` → BLOB. DuckDB casts a parameter to the type its position needs
//!   (`?::DATE`, an INTEGER column), so every canonical text form in the
//!   type table of the crate docs binds back to its type. A wrong number of
//!   parameters is `InvalidInput`.
//! - **Results**: column names, and as `type_name` the DuckDB type of each
//!   result column (`INTEGER`, `DECIMAL(10,2)`, `TIMESTAMP WITH TIME
//!   ZONE`, `VARCHAR[]`, `STRUCT(a INTEGER, b VARCHAR)`, ...; expressions
//!   have types too). Values follow the mapping table in the crate docs
//!   (`value.rs`). INSERT, UPDATE, DELETE and MERGE report `rows_affected`
//!   and no columns (or, with `RETURNING`, the returned rows and their
//!   count); every other statement that returns no rows (DDL, `SET`, ...)
//!   reports no columns and 0.
//! - **Atomicity**: every statement is its own transaction; a failing one
//!   changes nothing and is `InvalidInput` with DuckDB's message.
//!   [`execute_batch`](SqlEngine::execute_batch) runs all its statements in
//!   one transaction: all or nothing. A statement or batch that collides
//!   with an explicit transaction (DuckDB's optimistic concurrency control)
//!   is rolled back and re-run a few times (`backend.rs`); a conflict that
//!   persists is the retryable `Unavailable`.
//! - **One statement per `execute`**: text with several statements is
//!   refused before anything runs (the driver would otherwise execute all
//!   but the last while preparing). A small lexer that knows DuckDB's
//!   quoting (`'...'`, `E'...'`, `"..."`, `$tag$...$tag$`, `--` and nested
//!   `/* */` comments) splits the text.
//! - **Transaction control** (`BEGIN`, `START`, `COMMIT`, `END`,
//!   `ROLLBACK`, `ABORT`) is refused with `InvalidInput` on the shared
//!   connection: a transaction left open by one caller would capture every
//!   other caller's statements. Explicit transactions are
//!   [`DuckDbStore::begin`]: a [`SqlTransaction`] on a connection of its
//!   own, isolated by DuckDB's MVCC until it commits.
//! - **Reserved tables**: every table named `storage_*` belongs to the KV
//!   and CAS tiers (see [`schema`](crate::schema)). SQL may read them;
//!   writing or altering them bypasses the version and expiry invariants
//!   and is unsupported.
//!
//! # Differences from the SQLite dialect
//!
//! The portable subset of the conformance suite (DDL, parameterised
//! INSERT / UPDATE / DELETE, SELECT with WHERE / ORDER BY / GROUP BY /
//! aggregates / NULLs / LIMIT-OFFSET, joins, views, errors for bad SQL)
//! gives identical results on both: `conformance/tests/sql_cross_check.rs`
//! runs one script on both engines and compares every step's column
//! names, rows, affected-row count and error kind. Outside it, DuckDB differs from SQLite in ways an
//! emulator author should know:
//!
//! - `/` on integers is float division in DuckDB (`7 / 2` = 3.5, DOUBLE);
//!   SQLite truncates (3). DuckDB's integer division is `//`.
//! - `CAST(3.5 AS INTEGER)` rounds in DuckDB (4) and truncates in SQLite (3).
//! - `ORDER BY` puts NULLs last in both directions in DuckDB; SQLite puts
//!   them first ascending and last descending. Write `NULLS FIRST` /
//!   `NULLS LAST` (both engines accept it) when it matters.
//! - `SUM` of integers is HUGEINT in DuckDB; this adapter returns it as
//!   `Integer` when it fits in 64 bits, as SQLite does.
//! - A decimal literal (`1.5`) is DECIMAL in DuckDB, so it comes back as
//!   `Text("1.5")`; SQLite's REAL comes back as `Float`. `REAL` is a 4-byte
//!   float in DuckDB (8-byte in SQLite): declare `DOUBLE`.
//! - Comparisons and booleans come back as `Bool` from DuckDB and as
//!   `Integer` 0 / 1 from SQLite.
//! - `LIKE` is case-sensitive in DuckDB (`ILIKE` is not) and
//!   case-insensitive for ASCII in SQLite.
//! - Integer overflow (`9223372036854775807 + 1`) is an error
//!   (`InvalidInput`, "Out of Range Error") in DuckDB; SQLite switches to
//!   REAL. SQLite-only functions such as `TOTAL()` do not exist in DuckDB.
//! - Unaliased expressions are named differently (`count_star()` in
//!   DuckDB, `COUNT(*)` in SQLite): alias them (`COUNT(*) AS n`).
//! - Column `type_name` is the result type on DuckDB (every column,
//!   expressions included, `TEXT` reported as `VARCHAR`), the declared
//!   column type on SQLite (empty for expressions).

use std::sync::Arc;

use async_trait::async_trait;
use duckdb::arrow::array::Array;
use duckdb::types::{ToSqlOutput, ValueRef};
use duckdb::{params_from_iter, Connection, ToSql};
use parking_lot::Mutex;
use storage_core::{
    At, Context, Error, Result, SqlColumn, SqlDialect, SqlEngine, SqlResult, SqlValue,
};
use tracing::Instrument;

use crate::backend::DuckDbStore;
use crate::config::BACKEND;
use crate::error::map_err;
use crate::value::{to_sql_value, type_name, Hint};
use storage_core::blocking::run_blocking;

/// Results larger than this many rows are not kept in the statement cache
/// (the driver keeps a cached statement's last result until it runs again).
const CACHE_RESULT_ROWS: usize = 256;

/// A bound parameter.
struct Param<'a>(&'a SqlValue);

impl ToSql for Param<'_> {
    fn to_sql(&self) -> duckdb::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match self.0 {
            SqlValue::Null => ValueRef::Null,
            SqlValue::Bool(b) => ValueRef::Boolean(*b),
            SqlValue::Integer(i) => ValueRef::BigInt(*i),
            SqlValue::Float(f) => ValueRef::Double(*f),
            SqlValue::Text(s) => ValueRef::Text(s.as_bytes()),
            SqlValue::Blob(b) => ValueRef::Blob(b),
        }))
    }
}

/// Splits SQL text into statements at top-level `;`, honouring DuckDB's
/// string, identifier and dollar quoting and its comments. Returns each
/// statement's text (without the `;`), skipping statements that are empty
/// or only comments.
pub(crate) fn split_statements(sql: &str) -> Vec<&str> {
    let bytes = sql.as_bytes();
    let mut out = Vec::new();
    let (mut start, mut i, mut content) = (0, 0, false);
    let ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    while i < bytes.len() {
        match bytes[i] {
            b'\'' => {
                // E'...' strings take backslash escapes.
                let escapes =
                    i > 0 && matches!(bytes[i - 1], b'e' | b'E') && (i < 2 || !ident(bytes[i - 2]));
                i += 1;
                while i < bytes.len() {
                    match bytes[i] {
                        b'\\' if escapes => i += 2,
                        b'\'' if bytes.get(i + 1) == Some(&b'\'') => i += 2,
                        b'\'' => break,
                        _ => i += 1,
                    }
                }
                content = true;
            }
            b'"' => {
                i += 1;
                while i < bytes.len() {
                    match bytes[i] {
                        b'"' if bytes.get(i + 1) == Some(&b'"') => i += 2,
                        b'"' => break,
                        _ => i += 1,
                    }
                }
                content = true;
            }
            b'-' if bytes.get(i + 1) == Some(&b'-') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                let mut depth = 1;
                i += 2;
                while i < bytes.len() && depth > 0 {
                    if bytes[i] == b'/' && bytes.get(i + 1) == Some(&b'*') {
                        depth += 1;
                        i += 2;
                    } else if bytes[i] == b'*' && bytes.get(i + 1) == Some(&b'/') {
                        depth -= 1;
                        i += 2;
                    } else {
                        i += 1;
                    }
                }
                continue;
            }
            b'$' if i == 0 || !ident(bytes[i - 1]) => {
                // `$tag$ ... $tag$` (tag possibly empty); `$1` and `$name`
                // are parameters.
                let tag_end = bytes[i + 1..]
                    .iter()
                    .position(|&b| !ident(b))
                    .map_or(bytes.len(), |p| i + 1 + p);
                let tag_ok = bytes
                    .get(i + 1)
                    .is_none_or(|b| !b.is_ascii_digit() || tag_end == i + 1);
                if tag_ok && bytes.get(tag_end) == Some(&b'$') {
                    let delimiter = &sql[i..=tag_end];
                    let body = tag_end + 1;
                    i = sql[body..]
                        .find(delimiter)
                        .map_or(bytes.len(), |p| body + p + delimiter.len() - 1);
                }
                content = true;
            }
            b';' => {
                if content {
                    out.push(sql[start..i].trim());
                }
                start = i + 1;
                content = false;
            }
            b if b.is_ascii_whitespace() => {}
            _ => content = true,
        }
        i += 1;
    }
    if content && start < sql.len() {
        out.push(sql[start..].trim());
    }
    out
}

/// The first keyword of a statement, skipping whitespace and comments
/// (empty when it starts with something else, e.g. a parenthesis).
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

fn keyword_in(sql: &str, set: &[&str]) -> bool {
    let word = leading_keyword(sql);
    set.iter().any(|k| word.eq_ignore_ascii_case(k))
}

/// Statements that open or end a transaction.
fn is_transaction_control(sql: &str) -> bool {
    keyword_in(
        sql,
        &["BEGIN", "START", "COMMIT", "END", "ROLLBACK", "ABORT"],
    )
}

/// Statements whose `rows_affected` is the number of rows they changed.
fn is_dml(sql: &str) -> bool {
    keyword_in(sql, &["INSERT", "UPDATE", "DELETE", "MERGE"])
}

/// Statements that are queries even when their only column is a BIGINT
/// named `Count` and they return no rows.
fn is_query(sql: &str) -> bool {
    leading_keyword(sql).is_empty()
        || keyword_in(
            sql,
            &[
                "SELECT",
                "WITH",
                "VALUES",
                "FROM",
                "TABLE",
                "SHOW",
                "DESCRIBE",
                "DESC",
                "SUMMARIZE",
                "PRAGMA",
                "EXPLAIN",
                "CALL",
                "PIVOT",
                "UNPIVOT",
            ],
        )
}

fn refuse_transaction_control(at: At<'_>) -> Error {
    Error::invalid(
        at,
        "transaction control statements (BEGIN, START, COMMIT, END, ROLLBACK, ABORT) are not \
         allowed on the shared connection; use DuckDbStore::begin for an explicit transaction, \
         or execute_batch, which runs its statements in one transaction",
    )
}

/// The one statement of `sql`, or `InvalidInput`.
fn single_statement<'a>(sql: &'a str, at: At<'_>) -> Result<&'a str> {
    match split_statements(sql).as_slice() {
        [one] => Ok(*one),
        [] => Err(Error::invalid(at, "the SQL text holds no statement")),
        many => Err(Error::invalid(
            at,
            format!(
                "the SQL text holds {} statements; execute runs one (use execute_batch for several)",
                many.len()
            ),
        )),
    }
}

/// Runs one statement and collects its result.
fn run_statement(conn: &Connection, sql: &str, params: &[SqlValue]) -> duckdb::Result<SqlResult> {
    let mut stmt = conn.prepare_cached(sql)?;
    let changed = stmt.execute(params_from_iter(params.iter().map(Param)))?;
    let schema = stmt.schema();
    let fields = schema.fields();
    // DuckDB answers statements that have no result set with a one-column
    // placeholder: `Count` (BIGINT, the rows changed) for DML and most DDL,
    // `Success` (BOOLEAN, no rows) for DROP and a few others.
    let count_only = fields.len() == 1
        && fields.first().is_some_and(|f| {
            f.name() == "Count" && *f.data_type() == duckdb::arrow::datatypes::DataType::Int64
        });
    let success_only = fields.len() == 1
        && fields.first().is_some_and(|f| {
            f.name() == "Success" && *f.data_type() == duckdb::arrow::datatypes::DataType::Boolean
        });
    let mut rows: Vec<Vec<SqlValue>> = Vec::new();
    let hints: Vec<Hint> = (0..fields.len())
        .map(|i| Hint::of(&stmt.column_logical_type(i)))
        .collect();
    while let Some(batch) = stmt.step() {
        let columns = batch.columns();
        for r in 0..batch.len() {
            rows.push(
                columns
                    .iter()
                    .zip(&hints)
                    .map(|(c, h)| to_sql_value(c.as_ref(), r, *h))
                    .collect(),
            );
        }
    }
    let placeholder = (count_only && is_dml(sql))
        || ((count_only || success_only) && rows.is_empty() && !is_query(sql));
    if placeholder {
        // A statement without a result set: DuckDB reports its count of
        // changed rows as a one-column result.
        return Ok(SqlResult {
            columns: Vec::new(),
            rows: Vec::new(),
            rows_affected: u64::try_from(changed).unwrap_or(u64::MAX),
        });
    }
    let columns = fields
        .iter()
        .enumerate()
        .map(|(i, f)| SqlColumn {
            name: f.name().clone(),
            type_name: type_name(&stmt.column_logical_type(i), f.data_type()),
        })
        .collect();
    let rows_affected = if is_dml(sql) {
        u64::try_from(rows.len()).unwrap_or(u64::MAX)
    } else {
        0
    };
    if rows.len() > CACHE_RESULT_ROWS {
        stmt.discard();
    }
    Ok(SqlResult {
        columns,
        rows,
        rows_affected,
    })
}

/// Runs one statement on a shared connection (autocommit).
fn execute_on(conn: &Connection, sql: &str, params: &[SqlValue]) -> Result<SqlResult> {
    let at = At::new("execute", BACKEND);
    let statement = single_statement(sql, at)?;
    if is_transaction_control(statement) {
        return Err(refuse_transaction_control(at));
    }
    run_statement(conn, statement, params).map_err(|e| map_err(at, e))
}

/// Runs `;`-separated statements in one transaction.
fn execute_batch_on(conn: &mut Connection, sql: &str) -> Result<()> {
    let at = At::new("execute_batch", BACKEND);
    let statements = split_statements(sql);
    if statements.iter().any(|s| is_transaction_control(s)) {
        return Err(refuse_transaction_control(at));
    }
    let tx = conn.transaction().map_err(|e| map_err(at, e))?;
    for statement in statements {
        tx.execute_batch(statement).map_err(|e| map_err(at, e))?;
    }
    tx.commit().map_err(|e| map_err(at, e))
}

#[async_trait]
impl SqlEngine for DuckDbStore {
    fn backend_name(&self) -> &'static str {
        BACKEND
    }

    fn dialect(&self) -> Option<SqlDialect> {
        Some(SqlDialect::DuckDb)
    }

    async fn execute(&self, sql: &str, params: &[SqlValue]) -> Result<SqlResult> {
        let (sql, params) = (sql.to_owned(), params.to_vec());
        self.inner
            .db
            .sql(Context::new("execute", BACKEND), move |conn| {
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
            .sql(Context::new("execute_batch", BACKEND), move |conn| {
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

impl DuckDbStore {
    /// Starts an explicit SQL transaction on a connection of its own.
    ///
    /// The transaction sees the database as of its first statement plus
    /// its own changes; nobody else sees its changes until
    /// [`commit`](SqlTransaction::commit). DuckDB uses optimistic
    /// concurrency control: when it and another writer change the same
    /// rows, the later one fails with a retryable `Unavailable` (a
    /// write-write conflict) and must be rolled back and retried.
    ///
    /// Dropping a transaction without committing rolls it back.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), storage_core::Error> {
    /// use storage_core::{SqlEngine, SqlValue};
    /// use storage_duckdb::{DuckDbConfig, DuckDbStore};
    /// let store = DuckDbStore::open(DuckDbConfig::memory()).await?;
    /// store.execute_batch("CREATE TABLE accounts (id INTEGER, balance INTEGER)").await?;
    /// let tx = store.begin().await?;
    /// tx.execute("INSERT INTO accounts VALUES (1, 100)", &[]).await?;
    /// // Not visible outside the transaction yet.
    /// assert!(store.execute("SELECT * FROM accounts", &[]).await?.rows.is_empty());
    /// tx.commit().await?;
    /// assert_eq!(store.execute("SELECT balance FROM accounts", &[]).await?.rows, vec![vec![SqlValue::Integer(100)]]);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn begin(&self) -> Result<SqlTransaction> {
        let db = self.inner.db.clone();
        let conn = run_blocking(Context::new("begin", BACKEND), move || {
            let conn = db.connect(Context::new("begin", BACKEND))?;
            conn.execute_batch("BEGIN TRANSACTION")
                .map_err(|e| map_err(At::new("begin", BACKEND), e))?;
            Ok(conn)
        })
        .await?;
        Ok(SqlTransaction {
            conn: Some(Arc::new(Mutex::new(TxConn { conn, failed: None }))),
        })
    }
}

/// An explicit SQL transaction on a connection of its own (see
/// [`DuckDbStore::begin`]).
///
/// Statements run in order inside the transaction. A statement that fails
/// aborts the whole transaction (DuckDB's rule): later statements fail
/// until it ends, and [`commit`](Self::commit) then rolls it back and
/// returns `InvalidInput` naming the first failure. It also implements
/// [`SqlEngine`], so code written against the trait can run inside it (its
/// `execute_batch` runs inside this transaction rather than opening one).
#[derive(Debug)]
pub struct SqlTransaction {
    conn: Option<Arc<Mutex<TxConn>>>,
}

/// A transaction's connection, and the first error that aborted it.
#[derive(Debug)]
struct TxConn {
    conn: Connection,
    failed: Option<String>,
}

fn ended(op: &'static str) -> Error {
    Error::invalid(At::new(op, BACKEND), "the transaction has ended")
}

fn refuse_nested(at: At<'_>) -> Error {
    Error::invalid(
        at,
        "use SqlTransaction::commit or rollback to end the transaction",
    )
}

impl SqlTransaction {
    /// Runs `f` on the transaction's connection off the async runtime, and
    /// remembers the first failure.
    async fn run<T, F>(&self, op: &'static str, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let conn = self.conn.clone().ok_or_else(|| ended(op))?;
        run_blocking(Context::new(op, BACKEND), move || {
            let mut tx = conn.lock();
            let result = f(&tx.conn);
            if let Err(e) = &result {
                if tx.failed.is_none() {
                    tx.failed = Some(e.to_string());
                }
            }
            result
        })
        .instrument(tracing::debug_span!(
            "sql_transaction",
            backend = BACKEND,
            op
        ))
        .await
    }

    /// Runs one statement inside the transaction.
    pub async fn execute(&self, sql: &str, params: &[SqlValue]) -> Result<SqlResult> {
        let (sql, params) = (sql.to_owned(), params.to_vec());
        self.run("execute", move |conn| {
            let at = At::new("execute", BACKEND);
            let statement = single_statement(&sql, at)?;
            if is_transaction_control(statement) {
                return Err(refuse_nested(at));
            }
            run_statement(conn, statement, &params).map_err(|e| map_err(at, e))
        })
        .await
    }

    /// Runs `;`-separated statements inside the transaction.
    pub async fn execute_batch(&self, sql: &str) -> Result<()> {
        let sql = sql.to_owned();
        self.run("execute_batch", move |conn| {
            let at = At::new("execute_batch", BACKEND);
            let statements = split_statements(&sql);
            if statements.iter().any(|s| is_transaction_control(s)) {
                return Err(refuse_nested(at));
            }
            for statement in statements {
                conn.execute_batch(statement).map_err(|e| map_err(at, e))?;
            }
            Ok(())
        })
        .await
    }

    /// Commits the transaction. If a statement of it failed, it is rolled
    /// back instead and the result is `InvalidInput` naming that failure;
    /// a write-write conflict with another transaction found at commit is
    /// a retryable `Unavailable` (the transaction is rolled back).
    pub async fn commit(mut self) -> Result<()> {
        let conn = self.conn.take().ok_or_else(|| ended("commit"))?;
        run_blocking(Context::new("commit", BACKEND), move || {
            let at = At::new("commit", BACKEND);
            let tx = conn.lock();
            if let Some(failed) = &tx.failed {
                let _ = tx.conn.execute_batch("ROLLBACK");
                return Err(Error::invalid(
                    at,
                    format!("the transaction was aborted by a failed statement and has been rolled back: {failed}"),
                ));
            }
            // On failure DuckDB rolls the transaction back; the connection
            // is closed either way when `conn` drops here.
            tx.conn.execute_batch("COMMIT").map_err(|e| map_err(at, e))
        })
        .await
    }

    /// Rolls the transaction back.
    pub async fn rollback(mut self) -> Result<()> {
        let Some(conn) = self.conn.take() else {
            return Ok(());
        };
        run_blocking(Context::new("rollback", BACKEND), move || {
            conn.lock()
                .conn
                .execute_batch("ROLLBACK")
                .map_err(|e| map_err(At::new("rollback", BACKEND), e))
        })
        .await
    }
}

impl Drop for SqlTransaction {
    fn drop(&mut self) {
        // Closing the connection rolls an open transaction back; do it off
        // the async runtime when there is one.
        if let Some(conn) = self.conn.take() {
            if let Ok(handle) = tokio::runtime::Handle::try_current() {
                handle.spawn_blocking(move || drop(conn));
            }
        }
    }
}

#[async_trait]
impl SqlEngine for SqlTransaction {
    fn backend_name(&self) -> &'static str {
        BACKEND
    }

    fn dialect(&self) -> Option<SqlDialect> {
        Some(SqlDialect::DuckDb)
    }

    async fn execute(&self, sql: &str, params: &[SqlValue]) -> Result<SqlResult> {
        SqlTransaction::execute(self, sql, params).await
    }

    async fn execute_batch(&self, sql: &str) -> Result<()> {
        SqlTransaction::execute_batch(self, sql).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_split_at_top_level_semicolons_only() {
        assert_eq!(split_statements("SELECT 1"), vec!["SELECT 1"]);
        assert_eq!(split_statements("SELECT 1;"), vec!["SELECT 1"]);
        assert_eq!(
            split_statements("SELECT 1; SELECT 2 ;"),
            vec!["SELECT 1", "SELECT 2"]
        );
        assert_eq!(split_statements("SELECT 'a;b'"), vec!["SELECT 'a;b'"]);
        assert_eq!(split_statements("SELECT 'it''s;'"), vec!["SELECT 'it''s;'"]);
        assert_eq!(split_statements("SELECT E'\\';'"), vec!["SELECT E'\\';'"]);
        assert_eq!(
            split_statements("SELECT \"a;\"\"b\""),
            vec!["SELECT \"a;\"\"b\""]
        );
        assert_eq!(
            split_statements("SELECT 1 -- ; no\n"),
            vec!["SELECT 1 -- ; no"]
        );
        assert_eq!(
            split_statements("SELECT /* ; /* ; */ ; */ 1"),
            vec!["SELECT /* ; /* ; */ ; */ 1"]
        );
        assert_eq!(split_statements("SELECT $$a;b$$"), vec!["SELECT $$a;b$$"]);
        assert_eq!(
            split_statements("SELECT $x$a;$y$;b$x$"),
            vec!["SELECT $x$a;$y$;b$x$"]
        );
        assert_eq!(
            split_statements("SELECT $1; SELECT $name"),
            vec!["SELECT $1", "SELECT $name"]
        );
        assert_eq!(
            split_statements(" ; -- only a comment\n ;"),
            Vec::<&str>::new()
        );
        assert_eq!(
            split_statements("SELECT 'unterminated;"),
            vec!["SELECT 'unterminated;"]
        );
    }

    #[test]
    fn statement_kinds_are_recognised_behind_comments() {
        assert!(is_transaction_control("BEGIN"));
        assert!(is_transaction_control("  -- hi\n /* x */ commit"));
        assert!(is_transaction_control("START TRANSACTION"));
        assert!(is_transaction_control("abort"));
        assert!(!is_transaction_control("SELECT 1"));
        assert!(!is_transaction_control("BEGINNING"));
        assert!(is_dml("insert into t values (1)"));
        assert!(is_query("(SELECT 1)"));
        assert!(is_query("FROM t"));
        assert!(!is_query("CREATE TABLE t (a INT)"));
    }
}
