//! Snapshot transport: a SQLite file goes up, comes down and opens;
//! conditional uploads lose with `Conflict` and leave no trace; large
//! files go by multipart; a fenced-out writer is refused.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use object_store::ObjectStore;
use storage_core::{Error, ManualClock};
use storage_remote::transport::{SnapshotTransport, TransportConfig, UploadCondition};
use storage_remote::LocalDirStore;

fn sqlite_file(path: &std::path::Path, rows: i64) {
    let conn = rusqlite::Connection::open(path).expect("open sqlite");
    conn.execute_batch("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, v TEXT)")
        .expect("schema");
    for i in 0..rows {
        conn.execute("INSERT INTO t (v) VALUES (?1)", [format!("row {i}")])
            .expect("insert");
    }
}

fn count(path: &std::path::Path) -> i64 {
    let conn = rusqlite::Connection::open(path).expect("open downloaded sqlite");
    conn.query_row("SELECT count(*) FROM t", [], |r| r.get(0))
        .expect("count")
}

async fn sqlite_round_trip_and_conditional_uploads(store: Arc<dyn ObjectStore>, part_size: usize) {
    let clock = ManualClock::default();
    let t = SnapshotTransport::new(
        store.clone(),
        TransportConfig {
            prefix: "snaps".into(),
            multipart_threshold: 64 * 1024,
            part_size,
        },
        Arc::new(clock.clone()),
    )
    .expect("transport");
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("state.sqlite");
    sqlite_file(&db, 10);

    let v1 = t
        .upload(&db, "emu/state", UploadCondition::IfAbsent, None)
        .await
        .expect("upload if absent");
    let back = dir.path().join("back.sqlite");
    let info = t.download("emu/state", &back).await.expect("download");
    assert_eq!(info.version, v1.version);
    assert_eq!(count(&back), 10, "the downloaded database opens");

    // Two writers both start from v1; the second commit loses.
    sqlite_file(&db, 5);
    let a = t
        .upload(
            &db,
            "emu/state",
            UploadCondition::IfVersion(v1.version.clone()),
            None,
        )
        .await
        .expect("first writer");
    let loser = dir.path().join("loser.sqlite");
    sqlite_file(&loser, 1000);
    let err = t
        .upload(
            &loser,
            "emu/state",
            UploadCondition::IfVersion(v1.version.clone()),
            None,
        )
        .await
        .expect_err("second writer must lose");
    match err {
        Error::Conflict { current, .. } => assert_eq!(current, Some(a.version.clone())),
        other => panic!("expected Conflict, got {other}"),
    }
    let err = t
        .upload(&loser, "emu/state", UploadCondition::IfAbsent, None)
        .await
        .expect_err("if-absent over an existing snapshot");
    assert!(matches!(err, Error::Conflict { .. }), "{err}");
    t.download("emu/state", &back).await.expect("download");
    assert_eq!(count(&back), 15, "the winner's bytes, never the loser's");
    // The loser's blob is gone: only the winner's blob is stored.
    let blobs: Vec<_> = futures::TryStreamExt::try_collect::<Vec<_>>(
        store.list(Some(&object_store::path::Path::from("snaps/blobs"))),
    )
    .await
    .expect("list blobs");
    assert_eq!(
        blobs.len(),
        1,
        "exactly the current blob remains: {blobs:?}"
    );
    assert_eq!(blobs.first().map(|b| b.size), Some(a.size));

    // Multipart: a file above the threshold, several parts.
    let big = dir.path().join("big.bin");
    let data: Vec<u8> = (0..(2 * part_size + 12345))
        .map(|i| (i % 251) as u8)
        .collect();
    std::fs::write(&big, &data).expect("write big");
    let b = t
        .upload(&big, "big", UploadCondition::Always, None)
        .await
        .expect("multipart upload");
    assert_eq!(b.size, data.len() as u64);
    let big_back = dir.path().join("big.back");
    t.download("big", &big_back).await.expect("download big");
    assert_eq!(std::fs::read(&big_back).expect("read"), data);

    let names: Vec<String> = t
        .list("")
        .await
        .expect("list")
        .into_iter()
        .map(|i| i.name)
        .collect();
    assert_eq!(names, vec!["big".to_owned(), "emu/state".to_owned()]);
    assert!(t.delete("big", Some(&b.version)).await.expect("delete"));
    assert!(matches!(
        t.download("big", &big_back).await,
        Err(Error::NotFound { .. })
    ));
    assert!(t.head("big").await.expect("head").is_none());
    // Absent again: an if-absent upload succeeds over the marker.
    t.upload(&big, "big", UploadCondition::IfAbsent, None)
        .await
        .expect("recreate");
}

async fn lease_fencing(store: Arc<dyn ObjectStore>) {
    let clock = ManualClock::default();
    let t = SnapshotTransport::new(store, TransportConfig::default(), Arc::new(clock.clone()))
        .expect("transport");
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("a.sqlite");
    sqlite_file(&db, 3);

    let a = t
        .acquire("db", "writer-a", Duration::from_secs(30))
        .await
        .expect("a acquires");
    assert!(matches!(
        t.acquire("db", "writer-b", Duration::from_secs(30)).await,
        Err(Error::AlreadyExists { .. })
    ));
    t.upload(&db, "db", UploadCondition::Always, Some(&a))
        .await
        .expect("a uploads");
    // A stalls past its expiry; B takes over with a larger token.
    clock.advance(Duration::from_secs(31));
    let b = t
        .acquire("db", "writer-b", Duration::from_secs(30))
        .await
        .expect("b acquires");
    assert!(b.token > a.token);
    let stale = dir.path().join("stale.sqlite");
    sqlite_file(&stale, 99);
    let err = t
        .upload(&stale, "db", UploadCondition::Always, Some(&a))
        .await
        .expect_err("the fenced-out writer is refused");
    assert!(matches!(err, Error::Conflict { .. }), "{err}");
    assert!(matches!(
        t.renew(&a, Duration::from_secs(30)).await,
        Err(Error::Conflict { .. })
    ));
    let back = dir.path().join("back.sqlite");
    t.download("db", &back).await.expect("download");
    assert_eq!(count(&back), 3, "the stale writer's bytes never appear");
    let b = t
        .renew(&b, Duration::from_secs(30))
        .await
        .expect("b renews");
    t.upload(&stale, "db", UploadCondition::Always, Some(&b))
        .await
        .expect("b uploads");
    t.release(&b).await.expect("release");
    let c = t
        .acquire("db", "writer-c", Duration::from_secs(30))
        .await
        .expect("c acquires");
    assert!(c.token > b.token, "tokens only grow");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn local_dir_sqlite_round_trip_conditional_upload_and_multipart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(LocalDirStore::open(dir.path()).expect("open"));
    sqlite_round_trip_and_conditional_uploads(store, 40 * 1024).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn in_memory_sqlite_round_trip_conditional_upload_and_multipart() {
    let store = Arc::new(object_store::memory::InMemory::new());
    sqlite_round_trip_and_conditional_uploads(store, 40 * 1024).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn s3_sqlite_round_trip_conditional_upload_and_multipart() {
    let server = common::server();
    let (store, keep) = common::s3(&server, "snap");
    // S3 parts are at least 5 MiB (all but the last).
    sqlite_round_trip_and_conditional_uploads(store.object_store().clone(), 5 * 1024 * 1024).await;
    keep.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn local_dir_lease_fences_out_a_stale_writer() {
    let dir = tempfile::tempdir().expect("tempdir");
    lease_fencing(Arc::new(LocalDirStore::open(dir.path()).expect("open"))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn s3_lease_fences_out_a_stale_writer() {
    let server = common::server();
    let (store, keep) = common::s3(&server, "lease");
    lease_fencing(store.object_store().clone()).await;
    keep.cleanup().await;
}
