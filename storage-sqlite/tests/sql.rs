//! The SQL tier of the SQLite store: value mapping, declared types,
//! errors that change nothing, shared handles, all-or-nothing batches.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use bytes::Bytes;
use storage_core::{
    Error, KvStore, ManualClock, PutOptions, SqlDialect, SqlEngine, SqlResult, SqlValue,
};
use storage_sqlite::{SqliteConfig, SqliteStore};

async fn memory() -> SqliteStore {
    SqliteStore::open_with_clock(SqliteConfig::memory(), Arc::new(ManualClock::default()))
        .await
        .unwrap()
}

async fn count(sql: &SqliteStore, table: &str) -> i64 {
    let r = sql
        .execute(&format!("SELECT COUNT(*) FROM {table}"), &[])
        .await
        .unwrap();
    match r.rows.as_slice() {
        [row] => match row.as_slice() {
            [SqlValue::Integer(n)] => *n,
            other => unreachable!("{other:?}"),
        },
        other => unreachable!("{other:?}"),
    }
}

fn assert_invalid(r: Result<SqlResult, Error>, what: &str) {
    match r {
        Err(Error::InvalidInput { .. }) => {}
        other => unreachable!("{what}: expected InvalidInput, got {other:?}"),
    }
}

#[tokio::test]
async fn every_value_type_round_trips_through_parameters_and_tables() {
    let sql = memory().await;
    assert_eq!(sql.dialect(), Some(SqlDialect::Sqlite));
    let values = vec![
        SqlValue::Null,
        SqlValue::Integer(i64::MIN),
        SqlValue::Integer(i64::MAX),
        SqlValue::Float(-1.5e300),
        SqlValue::Text("h\u{e9}llo, \u{1f30d}\0end".into()),
        SqlValue::Text(String::new()),
        SqlValue::Blob(Bytes::from_static(b"\x00\xff\x80bytes")),
        SqlValue::Blob(Bytes::new()),
    ];
    let placeholders = vec!["?"; values.len()].join(", ");
    let r = sql
        .execute(&format!("SELECT {placeholders}"), &values)
        .await
        .unwrap();
    assert_eq!(r.rows, vec![values.clone()]);
    assert_eq!(r.rows_affected, 0);

    // Booleans are integers 0 / 1 in SQLite.
    let r = sql
        .execute(
            "SELECT ?, ?, typeof(?)",
            &[
                SqlValue::Bool(true),
                SqlValue::Bool(false),
                SqlValue::Bool(true),
            ],
        )
        .await
        .unwrap();
    assert_eq!(
        r.rows,
        vec![vec![
            SqlValue::Integer(1),
            SqlValue::Integer(0),
            SqlValue::Text("integer".into())
        ]]
    );

    // Through a table with no type affinity (ANY in a STRICT table).
    sql.execute_batch("CREATE TABLE v (i INTEGER PRIMARY KEY, x ANY) STRICT")
        .await
        .unwrap();
    for (i, v) in values.iter().enumerate() {
        let r = sql
            .execute(
                "INSERT INTO v (i, x) VALUES (?, ?)",
                &[SqlValue::Integer(i as i64), v.clone()],
            )
            .await
            .unwrap();
        assert_eq!(r.rows_affected, 1);
    }
    let r = sql
        .execute("SELECT x FROM v ORDER BY i", &[])
        .await
        .unwrap();
    let got: Vec<SqlValue> = r.rows.into_iter().flatten().collect();
    assert_eq!(got, values);
}

#[tokio::test]
async fn columns_carry_names_and_declared_types() {
    let sql = memory().await;
    sql.execute_batch(
        "CREATE TABLE d (a INTEGER, b VARCHAR(10), c BLOB, d REAL, e TEXT, f);
         INSERT INTO d VALUES (1, 'x', x'00', 2.5, 't', NULL);",
    )
    .await
    .unwrap();
    let r = sql
        .execute("SELECT a, b AS bee, c, d, e, f, a + 1 AS sum FROM d", &[])
        .await
        .unwrap();
    let cols: Vec<(&str, &str)> = r
        .columns
        .iter()
        .map(|c| (c.name.as_str(), c.type_name.as_str()))
        .collect();
    assert_eq!(
        cols,
        vec![
            ("a", "INTEGER"),
            ("bee", "VARCHAR(10)"),
            ("c", "BLOB"),
            ("d", "REAL"),
            ("e", "TEXT"),
            ("f", ""),
            ("sum", ""),
        ]
    );
    assert_eq!(
        r.rows,
        vec![vec![
            SqlValue::Integer(1),
            SqlValue::Text("x".into()),
            SqlValue::Blob(Bytes::from_static(b"\0")),
            SqlValue::Float(2.5),
            SqlValue::Text("t".into()),
            SqlValue::Null,
            SqlValue::Integer(2),
        ]]
    );
    // A query with no rows still names its columns; a statement that
    // returns none has none, and DDL reports no affected rows even right
    // after an INSERT.
    let r = sql.execute("SELECT a FROM d WHERE 0", &[]).await.unwrap();
    assert_eq!(r.columns.len(), 1);
    assert!(r.rows.is_empty());
    let r = sql
        .execute("INSERT INTO d (a) VALUES (5), (6)", &[])
        .await
        .unwrap();
    assert_eq!(r.rows_affected, 2);
    assert!(r.columns.is_empty());
    let r = sql.execute("CREATE TABLE e (x)", &[]).await.unwrap();
    assert_eq!(r.rows_affected, 0);
    let r = sql
        .execute("DELETE FROM d WHERE a > 100", &[])
        .await
        .unwrap();
    assert_eq!(r.rows_affected, 0);
    // RETURNING gives rows and a count.
    let r = sql
        .execute("UPDATE d SET a = a * 10 WHERE a >= 5 RETURNING a", &[])
        .await
        .unwrap();
    assert_eq!(r.rows_affected, 2);
    assert_eq!(r.rows.len(), 2);
}

#[tokio::test]
async fn failing_statements_are_invalid_input_and_write_nothing() {
    let sql = memory().await;
    sql.execute_batch(
        "CREATE TABLE s (id INTEGER PRIMARY KEY, n INTEGER NOT NULL, u TEXT UNIQUE) STRICT",
    )
    .await
    .unwrap();
    sql.execute("INSERT INTO s (id, n, u) VALUES (1, 1, 'one')", &[])
        .await
        .unwrap();

    assert_invalid(sql.execute("SELEKT nonsense", &[]).await, "syntax");
    assert_invalid(
        sql.execute("SELECT * FROM missing", &[]).await,
        "missing table",
    );
    assert_invalid(sql.execute("", &[]).await, "empty");
    assert_invalid(
        sql.execute("SELECT 1; SELECT 2", &[]).await,
        "two statements",
    );
    assert_invalid(sql.execute("SELECT ?", &[]).await, "missing parameter");
    assert_invalid(
        sql.execute("SELECT ?", &[SqlValue::Integer(1), SqlValue::Integer(2)])
            .await,
        "extra parameter",
    );
    // STRICT type mismatch, on the second row of a multi-row insert.
    assert_invalid(
        sql.execute(
            "INSERT INTO s (id, n) VALUES (2, 2), (3, ?)",
            &[SqlValue::Text("three".into())],
        )
        .await,
        "type mismatch",
    );
    // NOT NULL and UNIQUE violations, also after a good first row.
    assert_invalid(
        sql.execute("INSERT INTO s (id, n) VALUES (4, 4), (5, NULL)", &[])
            .await,
        "not null",
    );
    assert_invalid(
        sql.execute(
            "INSERT INTO s (id, n, u) VALUES (6, 6, 'six'), (7, 7, 'one')",
            &[],
        )
        .await,
        "unique",
    );
    assert_eq!(count(&sql, "s").await, 1);
    // Transaction control is refused and leaves nothing open: the KV tier,
    // which shares the connection, still commits.
    for stmt in [
        "BEGIN",
        "BEGIN IMMEDIATE",
        "SAVEPOINT x",
        "COMMIT",
        "ROLLBACK",
    ] {
        assert_invalid(sql.execute(stmt, &[]).await, stmt);
    }
    sql.put("ns", b"k", Bytes::from_static(b"v"), PutOptions::default())
        .await
        .unwrap();
    assert_eq!(
        sql.get("ns", b"k").await.unwrap(),
        Some(Bytes::from_static(b"v"))
    );
}

#[tokio::test]
async fn clones_and_second_stores_see_each_others_ddl() {
    let a = memory().await;
    let b = a.clone();
    a.execute_batch("CREATE TABLE shared (x INTEGER)")
        .await
        .unwrap();
    b.execute("INSERT INTO shared VALUES (?)", &[SqlValue::Integer(7)])
        .await
        .unwrap();
    let r = a.execute("SELECT x FROM shared", &[]).await.unwrap();
    assert_eq!(r.rows, vec![vec![SqlValue::Integer(7)]]);

    // Two stores on one file share the database too.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sql.sqlite");
    let one =
        SqliteStore::open_with_clock(SqliteConfig::file(&path), Arc::new(ManualClock::default()))
            .await
            .unwrap();
    let two =
        SqliteStore::open_with_clock(SqliteConfig::file(&path), Arc::new(ManualClock::default()))
            .await
            .unwrap();
    one.execute_batch("CREATE TABLE f (x TEXT)").await.unwrap();
    two.execute("INSERT INTO f VALUES ('hi')", &[])
        .await
        .unwrap();
    let r = one.execute("SELECT x FROM f", &[]).await.unwrap();
    assert_eq!(r.rows, vec![vec![SqlValue::Text("hi".into())]]);
}

#[tokio::test]
async fn execute_batch_is_all_or_nothing() {
    let sql = memory().await;
    sql.execute_batch(
        "CREATE TABLE a (x INTEGER PRIMARY KEY);
         INSERT INTO a VALUES (1);
         -- a comment
         INSERT INTO a VALUES (2);",
    )
    .await
    .unwrap();
    assert_eq!(count(&sql, "a").await, 2);

    // Fails at the last statement: the new table and rows vanish with it.
    let e = sql
        .execute_batch(
            "CREATE TABLE b (x);
             INSERT INTO b VALUES (1);
             INSERT INTO a VALUES (3);
             INSERT INTO a VALUES (1);",
        )
        .await
        .unwrap_err();
    assert!(matches!(e, Error::InvalidInput { .. }), "{e}");
    assert_eq!(count(&sql, "a").await, 2);
    assert_invalid(sql.execute("SELECT * FROM b", &[]).await, "b rolled back");

    // A syntax error after good statements, too.
    let e = sql
        .execute_batch("INSERT INTO a VALUES (10); INSERT INTO a VALUS (11);")
        .await
        .unwrap_err();
    assert!(matches!(e, Error::InvalidInput { .. }), "{e}");
    assert_eq!(count(&sql, "a").await, 2);

    // Transaction control cannot split the batch's transaction.
    let e = sql
        .execute_batch("INSERT INTO a VALUES (20); COMMIT; INSERT INTO a VALUES (1);")
        .await
        .unwrap_err();
    assert!(matches!(e, Error::InvalidInput { .. }), "{e}");
    assert_eq!(count(&sql, "a").await, 2);

    // ROLLBACK (even ROLLBACK TO) is refused; savepoints nest inside the
    // batch, and triggers (with their own `;`) work.
    sql.execute_batch("SAVEPOINT s; INSERT INTO a VALUES (30); ROLLBACK TO s; RELEASE s;")
        .await
        .unwrap_err();
    sql.execute_batch(
        "CREATE TABLE log (x);
         CREATE TRIGGER t AFTER INSERT ON a BEGIN INSERT INTO log VALUES (new.x); END;
         SAVEPOINT s; INSERT INTO a VALUES (40); RELEASE s;",
    )
    .await
    .unwrap();
    assert_eq!(count(&sql, "a").await, 3);
    assert_eq!(count(&sql, "log").await, 1);
    // Parameters are refused in a batch.
    assert!(matches!(
        sql.execute_batch("INSERT INTO a VALUES (?)").await,
        Err(Error::InvalidInput { .. })
    ));
    // A trigger's own changes are not counted as the statement's.
    let r = sql.execute("INSERT INTO a VALUES (50)", &[]).await.unwrap();
    assert_eq!(r.rows_affected, 1);
}
