//! What a file store keeps across close and reopen: the SQL catalogue
//! (tables, views, types, sequences) with its data, and the KV tier's
//! entries, version tokens (still valid as conditions, never reissued)
//! and expiry instants.

#![allow(clippy::unwrap_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use storage_core::{
    AtomicKv, Error, KvStore, ManualClock, PutMode, PutOptions, ScanRequest, SqlEngine, SqlValue,
};
use storage_duckdb::{DuckDbConfig, DuckDbStore};

async fn open(path: &std::path::Path, clock: &ManualClock) -> DuckDbStore {
    DuckDbStore::open_with_clock(DuckDbConfig::file(path), Arc::new(clock.clone()))
        .await
        .unwrap()
}

#[tokio::test]
async fn catalogue_data_tokens_and_expiries_survive_close_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("restart.duckdb");
    let clock = ManualClock::default();

    let store = open(&path, &clock).await;
    store
        .execute_batch(
            "CREATE TYPE mood AS ENUM ('happy', 'sad');
             CREATE SEQUENCE ids START 100;
             CREATE TABLE people (id INTEGER DEFAULT nextval('ids') PRIMARY KEY, name VARCHAR, m mood, paid DECIMAL(10,2));
             CREATE VIEW happy AS SELECT name FROM people WHERE m = 'happy';",
        )
        .await
        .unwrap();
    store
        .execute(
            "INSERT INTO people (name, m, paid) VALUES (?, ?, ?), (?, ?, ?)",
            &[
                SqlValue::Text("ada".into()),
                SqlValue::Text("happy".into()),
                SqlValue::Text("12.50".into()),
                SqlValue::Text("bob".into()),
                SqlValue::Text("sad".into()),
                SqlValue::Null,
            ],
        )
        .await
        .unwrap();
    store
        .put(
            "users",
            b"alice",
            Bytes::from_static(b"1"),
            PutOptions::default(),
        )
        .await
        .unwrap();
    let v_bob = store
        .put_if(
            "users",
            b"bob",
            Bytes::from_static(b"2"),
            PutMode::Create,
            PutOptions::default(),
        )
        .await
        .unwrap();
    store
        .put(
            "sessions",
            b"s1",
            Bytes::from_static(b"short"),
            PutOptions::ttl(Duration::from_secs(60)),
        )
        .await
        .unwrap();
    let before = store.scan("users", ScanRequest::all()).await.unwrap();
    drop(store);

    let store = open(&path, &clock).await;
    // The catalogue and the SQL data.
    let r = store
        .execute("SELECT id, name, m, paid FROM people ORDER BY id", &[])
        .await
        .unwrap();
    assert_eq!(
        r.rows,
        vec![
            vec![
                SqlValue::Integer(100),
                SqlValue::Text("ada".into()),
                SqlValue::Text("happy".into()),
                SqlValue::Text("12.50".into())
            ],
            vec![
                SqlValue::Integer(101),
                SqlValue::Text("bob".into()),
                SqlValue::Text("sad".into()),
                SqlValue::Null
            ],
        ]
    );
    assert_eq!(r.columns[2].type_name, "ENUM");
    let r = store.execute("SELECT name FROM happy", &[]).await.unwrap();
    assert_eq!(r.rows, vec![vec![SqlValue::Text("ada".into())]]);
    let r = store
        .execute("INSERT INTO people (name) VALUES ('cy') RETURNING id", &[])
        .await
        .unwrap();
    assert_eq!(
        r.rows,
        vec![vec![SqlValue::Integer(102)]],
        "the sequence kept its place"
    );

    // The KV data, tokens and expiries.
    assert_eq!(
        store.scan("users", ScanRequest::all()).await.unwrap(),
        before
    );
    let v_bob2 = store
        .put_if(
            "users",
            b"bob",
            Bytes::from_static(b"3"),
            PutMode::Update(v_bob.clone()),
            PutOptions::default(),
        )
        .await
        .unwrap();
    assert_ne!(v_bob2, v_bob);
    // Versions issued before the restart are never issued again.
    let issued: Vec<_> = before
        .entries
        .iter()
        .filter_map(|e| e.version.clone())
        .collect();
    assert!(!issued.contains(&v_bob2));
    assert_eq!(
        store.get("sessions", b"s1").await.unwrap(),
        Some(Bytes::from_static(b"short"))
    );
    clock.advance(Duration::from_secs(61));
    assert_eq!(store.get("sessions", b"s1").await.unwrap(), None);
    drop(store);

    // A third open still sees the post-restart writes.
    let store = open(&path, &clock).await;
    assert_eq!(
        store.get("users", b"bob").await.unwrap(),
        Some(Bytes::from_static(b"3"))
    );
    let e = store
        .put_if(
            "users",
            b"bob",
            Bytes::from_static(b"4"),
            PutMode::Update(v_bob),
            PutOptions::default(),
        )
        .await;
    assert!(matches!(e, Err(Error::Conflict { current: Some(ref v), .. }) if *v == v_bob2));
}

#[tokio::test]
async fn a_file_written_by_a_newer_schema_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("future.duckdb");
    let clock = ManualClock::default();
    let store = open(&path, &clock).await;
    // Simulate a newer build (SQL may read the storage tables; this test
    // writes one on purpose).
    store
        .execute(
            "UPDATE storage_meta SET value = ? WHERE key = 'schema_version'",
            &[SqlValue::Integer(
                storage_duckdb::schema::SCHEMA_VERSION + 1,
            )],
        )
        .await
        .unwrap();
    drop(store);
    let e = DuckDbStore::open_with_clock(DuckDbConfig::file(&path), Arc::new(clock.clone())).await;
    match e {
        Err(Error::InvalidInput { reason, .. }) => assert!(reason.contains("newer"), "{reason}"),
        other => panic!("expected InvalidInput, got {other:?}"),
    }
}
