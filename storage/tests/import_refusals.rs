//! A truncated, corrupted or wrong-version snapshot, or one the target
//! cannot hold, is refused before anything is written: on every backend,
//! the target's full contents are the same before and after the attempt.

#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::Env;
use storage_core::snapshot::{self, ImportMode};
use storage_core::{
    Error, Expiry, PutOptions, QueueConfig, QueueStoreExt, ScanRequest, SendMessage,
};

/// Every key, value and expiry of every namespace, plus queue counts.
async fn contents(store: &storage::Store) -> String {
    let mut out = format!("{:?}\n", storage::inspect(store).await.unwrap());
    if let Some(kv) = store.kv_if_any() {
        for ns in kv.list_namespaces().await.unwrap() {
            let page = kv
                .scan(&ns, ScanRequest::all().with_limit(1000))
                .await
                .unwrap();
            for e in page.entries {
                out.push_str(&format!(
                    "{ns} {:?} {:?} {:?}\n",
                    e.key, e.value, e.expires_at
                ));
            }
        }
    }
    out
}

/// A valid snapshot with KV entries (one expiring) and, if `queues`, a
/// queue with a message.
async fn valid_snapshot(queues: bool) -> Vec<u8> {
    let source = storage::open("memory://").await.unwrap();
    let kv = source.kv().unwrap();
    for i in 0..50u32 {
        kv.put(
            "fresh",
            &i.to_be_bytes(),
            Bytes::from(vec![7; 20]),
            PutOptions::default(),
        )
        .await
        .unwrap();
    }
    kv.put(
        "existing",
        b"k",
        Bytes::from_static(b"from the snapshot"),
        PutOptions {
            expiry: Expiry::After(Duration::from_secs(60)),
        },
    )
    .await
    .unwrap();
    if queues {
        let q = source.queue().unwrap();
        q.create_queue("jobs", QueueConfig::default())
            .await
            .unwrap();
        q.send("jobs", SendMessage::new("hello")).await.unwrap();
    }
    let mut bytes = Vec::new();
    snapshot::export(
        source.kv_if_any(),
        source.queue_if_any(),
        source.clock().now(),
        &mut bytes,
    )
    .await
    .unwrap();
    bytes
}

/// Bad variants of `good`, each with a name.
fn bad_variants(good: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut out = vec![
        ("empty".to_owned(), Vec::new()),
        ("not a snapshot".to_owned(), b"hello, world".to_vec()),
    ];
    for cut in [4, 12, 20, good.len() / 2, good.len() - 33, good.len() - 1] {
        out.push((format!("truncated to {cut} bytes"), good[..cut].to_vec()));
    }
    for at in [
        16,
        good.len() / 3,
        good.len() / 2,
        good.len() - 40,
        good.len() - 1,
    ] {
        let mut b = good.to_vec();
        b[at] ^= 0x5a;
        out.push((format!("byte {at} flipped"), b));
    }
    let mut wrong_version = good.to_vec();
    wrong_version[8..12].copy_from_slice(&2u32.to_le_bytes());
    out.push(("format version 2".to_owned(), wrong_version));
    let mut trailing = good.to_vec();
    trailing.push(0);
    out.push(("a trailing byte".to_owned(), trailing));
    out
}

async fn refusals_on(env: &Env, backend: &str) {
    let target = storage::open(&env.url(backend)).await.unwrap();
    let kv = target.kv().unwrap();
    kv.put(
        "existing",
        b"k",
        Bytes::from_static(b"before"),
        PutOptions::default(),
    )
    .await
    .unwrap();
    kv.put(
        "other",
        b"x",
        Bytes::from_static(b"kept"),
        PutOptions::default(),
    )
    .await
    .unwrap();
    if let Some(q) = target.queue_if_any() {
        q.create_queue("before", QueueConfig::default())
            .await
            .unwrap();
        q.send("before", SendMessage::new("m")).await.unwrap();
    }
    let before = contents(&target).await;

    let good = valid_snapshot(common::has_queues(backend)).await;
    for mode in [ImportMode::Replace, ImportMode::Merge] {
        for (what, bytes) in bad_variants(&good) {
            let err = storage::import(&target, &bytes, mode, &|_, _| {})
                .await
                .expect_err(&what);
            let storage::OpenError::Backend {
                source: Error::InvalidInput { .. },
                ..
            } = &err
            else {
                panic!("{backend}, {what}: expected InvalidInput, got {err}");
            };
            assert!(!err.to_string().contains('\n'), "{err}");
            assert_eq!(
                contents(&target).await,
                before,
                "{backend}, {what}, {mode:?}: the target changed"
            );
        }
    }

    // A snapshot with queues cannot go into a store without a queue tier:
    // refused before the KV part is written.
    if !common::has_queues(backend) {
        let with_queue = valid_snapshot(true).await;
        let err = storage::import(&target, &with_queue, ImportMode::Replace, &|_, _| {})
            .await
            .expect_err("queues into a store without queues");
        assert!(err.to_string().contains("queue"), "{err}");
        assert_eq!(contents(&target).await, before, "{backend}: changed");
    }

    // The good snapshot then imports, replacing everything.
    storage::import(&target, &good, ImportMode::Replace, &|_, _| {})
        .await
        .unwrap();
    assert_eq!(
        kv.get("existing", b"k").await.unwrap(),
        Some(Bytes::from_static(b"from the snapshot"))
    );
    assert_eq!(kv.get("other", b"x").await.unwrap(), None);
    target.destroy().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_snapshots_are_refused_before_any_write_on_every_backend() {
    let env = Env::new(&common::BACKENDS);
    for backend in common::BACKENDS {
        refusals_on(&env, backend).await;
    }
}
