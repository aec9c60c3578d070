//! Two clones of one store, used at once from many tasks with DDL, DML,
//! queries and KV traffic mixed: no deadlock (every test runs under a
//! timeout), no panic, no lost write, and tables created through one
//! clone are queryable through the other.

#![allow(clippy::unwrap_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use storage_core::{
    AtomicKv, Error, KvStore, ManualClock, PutMode, PutOptions, SqlEngine, SqlValue,
};
use storage_duckdb::{DuckDbConfig, DuckDbStore};

/// Fails the test instead of hanging when something deadlocks.
const DEADLINE: Duration = Duration::from_secs(300);

async fn count(sql: &dyn SqlEngine, query: &str) -> i64 {
    match sql.execute(query, &[]).await.unwrap().rows.as_slice() {
        [row] => match row.as_slice() {
            [SqlValue::Integer(n)] => *n,
            other => panic!("{other:?}"),
        },
        other => panic!("{other:?}"),
    }
}

async fn open(config: DuckDbConfig) -> DuckDbStore {
    DuckDbStore::open_with_clock(config, Arc::new(ManualClock::default()))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_table_created_through_one_clone_is_queryable_through_the_other() {
    let athena = open(DuckDbConfig::memory()).await;
    let redshift = athena.clone();
    athena
        .execute_batch("CREATE TABLE shared (id INTEGER, note VARCHAR)")
        .await
        .unwrap();
    redshift
        .execute(
            "INSERT INTO shared VALUES (?, ?)",
            &[SqlValue::Integer(1), SqlValue::Text("from redshift".into())],
        )
        .await
        .unwrap();
    let r = athena
        .execute("SELECT note FROM shared WHERE id = 1", &[])
        .await
        .unwrap();
    assert_eq!(r.rows, vec![vec![SqlValue::Text("from redshift".into())]]);
    // And DDL the other way round.
    redshift
        .execute_batch("ALTER TABLE shared ADD COLUMN extra INTEGER DEFAULT 7")
        .await
        .unwrap();
    let r = athena
        .execute("SELECT extra FROM shared", &[])
        .await
        .unwrap();
    assert_eq!(r.rows, vec![vec![SqlValue::Integer(7)]]);
}

/// Many tasks on two clones: each creates its own table (DDL), inserts
/// rows into it and into one shared table, reads through the other
/// clone, and some drop and recreate tables while others query.
async fn mixed_traffic(config: DuckDbConfig) {
    const TASKS: i64 = 16;
    const ROWS: i64 = 25;
    let a = open(config).await;
    let b = a.clone();
    a.execute_batch("CREATE TABLE events (task INTEGER, n INTEGER)")
        .await
        .unwrap();
    let mut handles = Vec::new();
    for task in 0..TASKS {
        let (mine, other) = if task % 2 == 0 {
            (a.clone(), b.clone())
        } else {
            (b.clone(), a.clone())
        };
        handles.push(tokio::spawn(async move {
            let table = format!("task_{task}");
            mine.execute_batch(&format!("CREATE TABLE {table} (n INTEGER)"))
                .await
                .unwrap();
            for n in 0..ROWS {
                mine.execute(
                    &format!("INSERT INTO {table} VALUES (?)"),
                    &[SqlValue::Integer(n)],
                )
                .await
                .unwrap();
                other
                    .execute(
                        "INSERT INTO events VALUES (?, ?)",
                        &[SqlValue::Integer(task), SqlValue::Integer(n)],
                    )
                    .await
                    .unwrap();
                // The other clone sees the DDL and every write so far.
                let seen = count(&other, &format!("SELECT COUNT(*) FROM {table}")).await;
                assert_eq!(seen, n + 1, "{table}");
                // KV traffic on the same database, interleaved.
                mine.put(
                    "progress",
                    table.as_bytes(),
                    Bytes::from(n.to_string()),
                    PutOptions::default(),
                )
                .await
                .unwrap();
                if n % 5 == 0 {
                    // Churn the catalogue while others query.
                    let scratch = format!("scratch_{task}");
                    other
                        .execute_batch(&format!(
                            "DROP TABLE IF EXISTS {scratch}; CREATE TABLE {scratch} AS SELECT * FROM {table};"
                        ))
                        .await
                        .unwrap();
                    let copied = count(&mine, &format!("SELECT COUNT(*) FROM {scratch}")).await;
                    assert_eq!(copied, n + 1);
                    let _ = count(&other, "SELECT COUNT(*) FROM events").await;
                }
            }
        }));
    }
    for h in handles {
        h.await.unwrap();
    }
    assert_eq!(count(&a, "SELECT COUNT(*) FROM events").await, TASKS * ROWS);
    assert_eq!(
        count(
            &b,
            "SELECT COUNT(*) FROM (SELECT task FROM events GROUP BY task HAVING COUNT(DISTINCT n) = 25)"
        )
        .await,
        TASKS
    );
    for task in 0..TASKS {
        let table = format!("task_{task}");
        assert_eq!(
            count(&b, &format!("SELECT SUM(n) FROM {table}")).await,
            ROWS * (ROWS - 1) / 2
        );
        assert_eq!(
            a.get("progress", table.as_bytes()).await.unwrap(),
            Some(Bytes::from((ROWS - 1).to_string()))
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mixed_ddl_dml_queries_and_kv_on_two_clones_lose_nothing_in_memory() {
    tokio::time::timeout(DEADLINE, mixed_traffic(DuckDbConfig::memory()))
        .await
        .expect("deadlock: mixed traffic did not finish");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mixed_ddl_dml_queries_and_kv_on_two_clones_lose_nothing_on_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let config = DuckDbConfig::file(dir.path().join("shared.duckdb"));
    tokio::time::timeout(DEADLINE, mixed_traffic(config))
        .await
        .expect("deadlock: mixed traffic did not finish");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_read_modify_write_through_sql_and_cas_loses_no_increment() {
    tokio::time::timeout(DEADLINE, async {
        let a = open(DuckDbConfig::memory()).await;
        a.execute_batch("CREATE TABLE counter (id INTEGER PRIMARY KEY, n INTEGER); INSERT INTO counter VALUES (1, 0);")
            .await
            .unwrap();
        let mut handles = Vec::new();
        for task in 0..8 {
            let s = a.clone();
            handles.push(tokio::spawn(async move {
                for _ in 0..20 {
                    // Statements on the shared connection apply in order:
                    // concurrent updates of one row never conflict.
                    let r = s
                        .execute("UPDATE counter SET n = n + 1 WHERE id = 1", &[])
                        .await
                        .unwrap();
                    assert_eq!(r.rows_affected, 1);
                    // CAS increments of one KV counter, retried on conflict.
                    loop {
                        let cur = s.get_versioned("c", b"n").await.unwrap();
                        let (n, mode) = match cur {
                            Some(v) => (
                                String::from_utf8(v.value.to_vec()).unwrap().parse::<u64>().unwrap(),
                                PutMode::Update(v.version),
                            ),
                            None => (0, PutMode::Create),
                        };
                        match s
                            .put_if("c", b"n", Bytes::from((n + 1).to_string()), mode, PutOptions::default())
                            .await
                        {
                            Ok(_) => break,
                            Err(Error::Conflict { .. }) => continue,
                            Err(e) => panic!("task {task}: {e}"),
                        }
                    }
                }
            }));
        }
        for h in handles {
            h.await.unwrap();
        }
        assert_eq!(count(&a, "SELECT n FROM counter").await, 160);
        assert_eq!(a.get("c", b"n").await.unwrap(), Some(Bytes::from("160")));
    })
    .await
    .expect("deadlock");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn explicit_transactions_run_beside_the_shared_connection() {
    tokio::time::timeout(DEADLINE, async {
        let a = open(DuckDbConfig::memory()).await;
        a.execute_batch("CREATE TABLE ledger (task INTEGER, n INTEGER)")
            .await
            .unwrap();
        let mut handles = Vec::new();
        for task in 0..8 {
            let s = a.clone();
            handles.push(tokio::spawn(async move {
                let tx = s.begin().await.unwrap();
                for n in 0..10 {
                    tx.execute(
                        "INSERT INTO ledger VALUES (?, ?)",
                        &[SqlValue::Integer(task), SqlValue::Integer(n)],
                    )
                    .await
                    .unwrap();
                }
                // Queries on the shared connection meanwhile see only
                // committed rows and are not blocked by the transaction.
                let _ = count(&s, "SELECT COUNT(*) FROM ledger").await;
                if task % 4 == 3 {
                    tx.rollback().await.unwrap();
                } else {
                    tx.commit().await.unwrap();
                }
            }));
        }
        for h in handles {
            h.await.unwrap();
        }
        // Appends never conflict: 6 of 8 transactions committed 10 rows.
        assert_eq!(count(&a, "SELECT COUNT(*) FROM ledger").await, 60);
        assert_eq!(
            count(&a, "SELECT COUNT(*) FROM ledger WHERE task % 4 = 3").await,
            0
        );
    })
    .await
    .expect("deadlock");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn conflicting_explicit_transactions_fail_retryably_and_lose_nothing() {
    tokio::time::timeout(DEADLINE, async {
        let a = open(DuckDbConfig::memory()).await;
        a.execute_batch("CREATE TABLE acct (id INTEGER PRIMARY KEY, n INTEGER); INSERT INTO acct VALUES (1, 0);")
            .await
            .unwrap();
        let first = a.begin().await.unwrap();
        let second = a.begin().await.unwrap();
        first
            .execute("UPDATE acct SET n = n + 1 WHERE id = 1", &[])
            .await
            .unwrap();
        let e = second
            .execute("UPDATE acct SET n = n + 10 WHERE id = 1", &[])
            .await;
        match e {
            Err(e @ Error::Unavailable { .. }) => assert!(e.is_retryable()),
            other => panic!("expected a retryable conflict, got {other:?}"),
        }
        first.commit().await.unwrap();
        drop(second);
        assert_eq!(count(&a, "SELECT n FROM acct").await, 1);
    })
    .await
    .expect("deadlock");
}
