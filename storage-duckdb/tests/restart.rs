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
    TxOp, Version,
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

async fn overwrite(store: &DuckDbStore, key: &[u8]) -> Version {
    store
        .put_if(
            "n",
            key,
            Bytes::from_static(b"v"),
            PutMode::Overwrite,
            PutOptions::default(),
        )
        .await
        .unwrap()
}

/// Versions come from a block reserved from the file's counter by the
/// write that first needs one (`schema.rs`). Inside a transaction, the
/// reservation rolls back with it, so a block reserved by a transaction
/// that failed must be forgotten: otherwise later writes hand out versions
/// the file does not know were issued, and a reopen issues them again.
/// Here a KV transaction reserves the store's first block, then fails on
/// a row an explicit SQL transaction holds. (Checked to fail when the
/// block outlives the rollback.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_transaction_leaves_no_unrecorded_versions_behind() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("versions.duckdb");
    let clock = ManualClock::default();

    let store = open(&path, &clock).await;
    // A row written through SQL, so the KV tier has reserved nothing yet.
    store
        .execute_batch("INSERT INTO storage_kv VALUES ('n', 'held'::BLOB, 'x'::BLOB, 0, NULL)")
        .await
        .unwrap();
    let holder = store.begin().await.unwrap();
    holder
        .execute(
            "UPDATE storage_kv SET value = 'y'::BLOB WHERE ns = 'n' AND key = 'held'::BLOB",
            &[],
        )
        .await
        .unwrap();
    let failed = store
        .transact(vec![
            TxOp::put("n", &b"k"[..], &b"v"[..]),
            TxOp::put("n", &b"held"[..], &b"v"[..]),
        ])
        .await;
    assert!(
        matches!(failed, Err(Error::Unavailable { .. })),
        "{failed:?}"
    );
    holder.rollback().await.unwrap();

    let mut before = Vec::new();
    for _ in 0..3 {
        before.push(overwrite(&store, b"k").await);
    }
    drop(store);

    // This store's versions are counters that only grow (tokens are
    // opaque to callers; the store's own tests may read them).
    let last = before.iter().filter_map(Version::to_counter).max().unwrap();
    let store = open(&path, &clock).await;
    for _ in 0..3 {
        let v = overwrite(&store, b"k").await;
        assert!(v.to_counter().unwrap() > last, "{v:?} after {last}");
    }
    for stale in before {
        let e = store
            .put_if(
                "n",
                b"k",
                Bytes::from_static(b"y"),
                PutMode::Update(stale),
                PutOptions::default(),
            )
            .await;
        assert!(matches!(e, Err(Error::Conflict { .. })), "{e:?}");
    }
}

/// An import replaces the version counter with the export's; versions
/// handed out afterwards come from it, not from a block reserved before
/// the import, which could repeat an imported entry's version. (Checked to
/// fail when the import does not forget the block.)
#[tokio::test]
async fn writes_after_an_import_never_repeat_an_imported_version() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::default();
    let source = open(&dir.path().join("source.duckdb"), &clock).await;
    let mut imported = overwrite(&source, b"k").await;
    for _ in 0..3 {
        imported = overwrite(&source, b"k").await;
    }
    source
        .export_database(dir.path().join("export"))
        .await
        .unwrap();
    drop(source);

    // The target reserved a block of its own, then emptied itself.
    let target = open(&dir.path().join("target.duckdb"), &clock).await;
    overwrite(&target, b"other").await;
    assert!(target.delete("n", b"other").await.unwrap());
    target
        .import_database(dir.path().join("export"))
        .await
        .unwrap();

    let got = target.get_versioned("n", b"k").await.unwrap().unwrap();
    assert_eq!(got.version, imported);
    for _ in 0..4 {
        let v = overwrite(&target, b"k").await;
        assert_ne!(v, imported);
    }
    let e = target
        .put_if(
            "n",
            b"k",
            Bytes::from_static(b"y"),
            PutMode::Update(imported),
            PutOptions::default(),
        )
        .await;
    assert!(matches!(e, Err(Error::Conflict { .. })), "{e:?}");
}
