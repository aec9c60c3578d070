//! What a file store keeps across close and reopen: data, version tokens
//! (still valid as conditions, never reissued) and expiry instants.

#![allow(clippy::unwrap_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use storage_core::{
    AtomicKv, Condition, Error, KvStore, ManualClock, PutMode, PutOptions, ScanRequest, SqlEngine,
    SqlValue, TxOp,
};
use storage_sqlite::{SqliteConfig, SqliteStore};

async fn open(path: &std::path::Path, clock: &ManualClock) -> SqliteStore {
    SqliteStore::open_with_clock(SqliteConfig::file(path), Arc::new(clock.clone()))
        .await
        .unwrap()
}

#[tokio::test]
async fn data_tokens_and_expiries_survive_close_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("restart.sqlite");
    let clock = ManualClock::default();

    let store = open(&path, &clock).await;
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
    store
        .put(
            "sessions",
            b"s2",
            Bytes::from_static(b"long"),
            PutOptions::ttl(Duration::from_secs(3600)),
        )
        .await
        .unwrap();
    store
        .execute_batch("CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (42);")
        .await
        .unwrap();
    let before = store.scan("sessions", ScanRequest::all()).await.unwrap();
    let users_before = store.scan("users", ScanRequest::all()).await.unwrap();
    drop(store);

    let store = open(&path, &clock).await;
    assert_eq!(
        store.get("users", b"alice").await.unwrap(),
        Some(Bytes::from_static(b"1"))
    );
    assert_eq!(
        store.scan("users", ScanRequest::all()).await.unwrap(),
        users_before
    );
    // Expiry instants are stored, not recomputed.
    let after = store.scan("sessions", ScanRequest::all()).await.unwrap();
    assert_eq!(after, before);
    assert!(after.entries.iter().all(|e| e.expires_at.is_some()));
    assert_eq!(
        store.list_namespaces().await.unwrap(),
        vec!["sessions", "users"]
    );
    let r = store.execute("SELECT x FROM t", &[]).await.unwrap();
    assert_eq!(r.rows, vec![vec![SqlValue::Integer(42)]]);

    // The token from before the restart is still the key's version and
    // works as a condition; the new one is never a reissue.
    assert_eq!(
        store
            .get_versioned("users", b"bob")
            .await
            .unwrap()
            .unwrap()
            .version,
        v_bob
    );
    let v2 = store
        .put_if(
            "users",
            b"bob",
            Bytes::from_static(b"3"),
            PutMode::Update(v_bob.clone()),
            PutOptions::default(),
        )
        .await
        .unwrap();
    assert_ne!(v2, v_bob);
    let issued_before: Vec<String> = users_before
        .entries
        .iter()
        .chain(&before.entries)
        .map(|e| e.version.clone().unwrap().to_string())
        .collect();
    assert!(
        !issued_before.contains(&v2.to_string()),
        "token {v2} reissued"
    );
    // ... and the old one now conflicts.
    let e = store
        .transact(vec![
            TxOp::delete("users", "bob").when(Condition::Version(v_bob))
        ])
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Conflict { index: Some(0), .. }), "{e}");
    drop(store);

    // Time passes while the store is closed: the short session is gone on
    // reopen, exactly at its instant; the long one is not.
    clock.advance(Duration::from_secs(60));
    let store = open(&path, &clock).await;
    assert_eq!(store.get("sessions", b"s1").await.unwrap(), None);
    assert_eq!(
        store.get("sessions", b"s2").await.unwrap(),
        Some(Bytes::from_static(b"long"))
    );
    assert_eq!(
        store
            .get_versioned("users", b"bob")
            .await
            .unwrap()
            .unwrap()
            .version,
        v2
    );
    clock.advance(Duration::from_secs(3540));
    assert_eq!(store.get("sessions", b"s2").await.unwrap(), None);
    assert_eq!(store.list_namespaces().await.unwrap(), vec!["users"]);
}

#[tokio::test]
async fn a_reopened_store_keeps_counting_versions_after_deletes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("counter.sqlite");
    let clock = ManualClock::default();
    let store = open(&path, &clock).await;
    let v1 = store
        .put_if(
            "n",
            b"k",
            Bytes::new(),
            PutMode::Create,
            PutOptions::default(),
        )
        .await
        .unwrap();
    store.delete_if("n", b"k", &v1).await.unwrap();
    drop(store);
    let store = open(&path, &clock).await;
    let v2 = store
        .put_if(
            "n",
            b"k",
            Bytes::new(),
            PutMode::Create,
            PutOptions::default(),
        )
        .await
        .unwrap();
    // Delete + recreate across a restart still gives a new token, so a
    // stale writer holding v1 cannot overwrite the new value.
    assert_ne!(v1, v2);
    let e = store
        .put_if(
            "n",
            b"k",
            Bytes::new(),
            PutMode::Update(v1),
            PutOptions::default(),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Conflict { .. }), "{e}");
}
