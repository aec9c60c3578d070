//! Bad SQL is a typed error carrying DuckDB's message, never a panic, and
//! leaves the database exactly as it was.

#![allow(clippy::unwrap_used, clippy::panic)]

use std::sync::Arc;

use storage_core::{Error, KvStore, ManualClock, PutOptions, SqlEngine, SqlResult, SqlValue};
use storage_duckdb::{DuckDbConfig, DuckDbStore};

async fn store() -> DuckDbStore {
    let store =
        DuckDbStore::open_with_clock(DuckDbConfig::memory(), Arc::new(ManualClock::default()))
            .await
            .unwrap();
    store
        .execute_batch(
            "CREATE TABLE t (id INTEGER PRIMARY KEY, n INTEGER NOT NULL, s VARCHAR);
             INSERT INTO t VALUES (1, 10, 'a'), (2, 20, 'b');",
        )
        .await
        .unwrap();
    store
}

/// The whole content of `t`, for before/after comparisons.
async fn snapshot(store: &DuckDbStore) -> Vec<Vec<SqlValue>> {
    store
        .execute("SELECT * FROM t ORDER BY id", &[])
        .await
        .unwrap()
        .rows
}

#[track_caller]
fn invalid(r: Result<SqlResult, Error>, needle: &str) -> String {
    match r {
        Err(Error::InvalidInput { reason, ctx }) => {
            assert_eq!(ctx.backend, "duckdb");
            assert!(
                reason.contains(needle),
                "message {reason:?} does not mention {needle:?}"
            );
            reason
        }
        other => panic!("expected InvalidInput mentioning {needle:?}, got {other:?}"),
    }
}

#[tokio::test]
async fn syntax_errors_carry_duckdbs_parser_message() {
    let store = store().await;
    let before = snapshot(&store).await;
    let msg = invalid(store.execute("SELEKT * FROM t", &[]).await, "Parser Error");
    assert!(msg.contains("SELEKT"), "{msg}");
    invalid(store.execute("SELECT (1", &[]).await, "Parser Error");
    invalid(store.execute("", &[]).await, "no statement");
    invalid(store.execute("-- nothing\n", &[]).await, "no statement");
    assert_eq!(snapshot(&store).await, before);
}

#[tokio::test]
async fn unknown_tables_and_columns_are_catalog_and_binder_errors() {
    let store = store().await;
    let msg = invalid(
        store.execute("SELECT * FROM missing", &[]).await,
        "Catalog Error",
    );
    assert!(msg.contains("missing"), "{msg}");
    invalid(
        store.execute("SELECT nope FROM t", &[]).await,
        "Binder Error",
    );
    invalid(
        store.execute("INSERT INTO missing VALUES (1)", &[]).await,
        "Catalog Error",
    );
}

#[tokio::test]
async fn type_errors_are_invalid_input_and_change_nothing() {
    let store = store().await;
    let before = snapshot(&store).await;
    invalid(
        store
            .execute(
                "INSERT INTO t VALUES (?, ?, 'c')",
                &[SqlValue::Integer(3), SqlValue::Text("not a number".into())],
            )
            .await,
        "Conversion Error",
    );
    invalid(
        store.execute("UPDATE t SET n = n + 'x'", &[]).await,
        "Error",
    );
    invalid(
        store
            .execute(
                "INSERT INTO t VALUES (?, ?, 'c')",
                &[SqlValue::Integer(3), SqlValue::Integer(i64::MAX)],
            )
            .await,
        "Conversion Error",
    );
    invalid(
        store
            .execute("INSERT INTO t VALUES (3, NULL, 'c')", &[])
            .await,
        "Constraint Error",
    );
    // Wrong parameter counts never reach the engine.
    invalid(
        store.execute("SELECT * FROM t WHERE id = ?", &[]).await,
        "parameters",
    );
    invalid(
        store
            .execute(
                "SELECT * FROM t WHERE id = ?",
                &[SqlValue::Integer(1), SqlValue::Integer(2)],
            )
            .await,
        "parameters",
    );
    assert_eq!(snapshot(&store).await, before);
}

#[tokio::test]
async fn a_statement_failing_halfway_changes_nothing() {
    let store = store().await;
    let before = snapshot(&store).await;
    // The first row is fine, the second violates the primary key.
    invalid(
        store
            .execute("INSERT INTO t VALUES (3, 30, 'c'), (1, 11, 'dup')", &[])
            .await,
        "Constraint Error",
    );
    // The update reaches a row whose new value fails the cast.
    invalid(
        store
            .execute(
                "UPDATE t SET n = CAST(CASE WHEN id = 2 THEN 'x' ELSE '5' END AS INTEGER)",
                &[],
            )
            .await,
        "Conversion Error",
    );
    assert_eq!(snapshot(&store).await, before);
}

#[tokio::test]
async fn a_batch_failing_halfway_changes_nothing() {
    let store = store().await;
    let before = snapshot(&store).await;
    let e = store
        .execute_batch(
            "INSERT INTO t VALUES (3, 30, 'c');
             CREATE TABLE extra (x INTEGER);
             UPDATE t SET n = 0;
             INSERT INTO t VALUES (1, 1, 'duplicate key');
             INSERT INTO t VALUES (4, 40, 'd');",
        )
        .await;
    match e {
        Err(Error::InvalidInput { reason, .. }) => {
            assert!(reason.contains("Constraint Error"), "{reason}")
        }
        other => panic!("expected InvalidInput, got {other:?}"),
    }
    assert_eq!(snapshot(&store).await, before);
    // The DDL of the failed batch was rolled back too.
    invalid(
        store.execute("SELECT * FROM extra", &[]).await,
        "Catalog Error",
    );
    // And the store is still usable.
    store
        .execute_batch("INSERT INTO t VALUES (3, 30, 'c')")
        .await
        .unwrap();
}

#[tokio::test]
async fn several_statements_in_execute_are_refused_before_any_runs() {
    let store = store().await;
    let before = snapshot(&store).await;
    invalid(
        store.execute("DELETE FROM t; SELECT 1", &[]).await,
        "2 statements",
    );
    assert_eq!(snapshot(&store).await, before);
    // A semicolon inside quotes or comments is not a separator.
    let r = store
        .execute("SELECT 'a;b' AS \"c;d\" -- ; DELETE FROM t\n", &[])
        .await
        .unwrap();
    assert_eq!(r.rows, vec![vec![SqlValue::Text("a;b".into())]]);
    assert_eq!(r.columns[0].name, "c;d");
}

#[tokio::test]
async fn transaction_control_on_the_shared_connection_is_refused() {
    let store = store().await;
    for sql in [
        "BEGIN",
        "begin transaction",
        "COMMIT",
        "ROLLBACK",
        "START TRANSACTION",
        "ABORT",
    ] {
        invalid(store.execute(sql, &[]).await, "transaction control");
    }
    let e = store.execute_batch("BEGIN; DELETE FROM t; COMMIT;").await;
    assert!(matches!(e, Err(Error::InvalidInput { .. })), "{e:?}");
    assert_eq!(snapshot(&store).await.len(), 2);
    // The connection is not left inside a transaction: a following
    // statement commits on its own.
    store
        .execute("INSERT INTO t VALUES (3, 30, 'c')", &[])
        .await
        .unwrap();
    assert_eq!(snapshot(&store).await.len(), 3);
}

#[tokio::test]
async fn errors_in_explicit_transactions_abort_them_without_panics() {
    let store = store().await;
    let before = snapshot(&store).await;
    let tx = store.begin().await.unwrap();
    tx.execute("INSERT INTO t VALUES (3, 30, 'c')", &[])
        .await
        .unwrap();
    invalid(
        tx.execute("INSERT INTO t VALUES (1, 1, 'dup')", &[]).await,
        "Constraint Error",
    );
    // DuckDB's rule: the failed statement aborted the transaction.
    assert!(tx.execute("SELECT 1", &[]).await.is_err());
    // Committing it rolls it back and says why.
    invalid(
        tx.commit().await.map(|()| SqlResult::default()),
        "aborted by a failed statement",
    );
    assert_eq!(snapshot(&store).await, before);
    invalid(
        store.begin().await.unwrap().execute("COMMIT", &[]).await,
        "commit or rollback",
    );
}

#[tokio::test]
async fn the_kv_tier_is_untouched_by_sql_errors() {
    let store = store().await;
    store
        .put("ns", b"k", "v".into(), PutOptions::default())
        .await
        .unwrap();
    let _ = store.execute("SELEKT", &[]).await;
    let _ = store.execute_batch("CREATE TABLE x (a INT); SELEKT").await;
    assert_eq!(store.get("ns", b"k").await.unwrap(), Some("v".into()));
}
