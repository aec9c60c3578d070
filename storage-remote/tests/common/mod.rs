//! Shared helpers of the integration tests: the three stores and the
//! increment loop of the CAS race.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use bytes::Bytes;
use storage_core::{AtomicKv, Error, ManualClock, PutMode, PutOptions};
use storage_remote::testing::{S3Server, TestBucket};
use storage_remote::RemoteStore;

/// A store and whatever keeps it alive.
pub enum Keep {
    Nothing,
    Dir(tempfile::TempDir),
    Bucket(TestBucket),
}

impl Keep {
    pub async fn cleanup(self) {
        if let Keep::Bucket(b) = self {
            b.cleanup().await;
        }
    }
}

pub fn memory() -> (RemoteStore, Keep) {
    let clock = ManualClock::default();
    (RemoteStore::in_memory(Arc::new(clock)), Keep::Nothing)
}

pub fn local() -> (RemoteStore, Keep) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = RemoteStore::local_dir(dir.path(), Arc::new(ManualClock::default())).expect("open");
    (store, Keep::Dir(dir))
}

/// A moto server; panics with "S3 unavailable: …" if there is none (a
/// failure, never a skip).
pub fn server() -> S3Server {
    S3Server::start().unwrap_or_else(|e| panic!("{e}"))
}

pub fn s3(server: &S3Server, label: &str) -> (RemoteStore, Keep) {
    let (store, bucket) = server
        .store(label, Arc::new(ManualClock::default()))
        .unwrap_or_else(|e| panic!("{e}"));
    (store, Keep::Bucket(bucket))
}

/// `tasks` tasks each doing `n` read → conditional write → retry
/// increments of one counter; returns the final value.
pub async fn race(store: Arc<dyn AtomicKv>, ns: &str, key: &[u8], tasks: usize, n: usize) -> u64 {
    let mut handles = Vec::new();
    for _ in 0..tasks {
        let store = store.clone();
        let (ns, key) = (ns.to_owned(), key.to_vec());
        handles.push(tokio::spawn(async move {
            increment(&*store, &ns, &key, n).await
        }));
    }
    for h in handles {
        h.await.expect("task");
    }
    read_counter(&*store, ns, key).await
}

pub async fn increment(store: &dyn AtomicKv, ns: &str, key: &[u8], n: usize) {
    for _ in 0..n {
        loop {
            let cur = store.get_versioned(ns, key).await.expect("read");
            let (value, mode) = match cur {
                None => (1u64, PutMode::Create),
                Some(v) => {
                    let s = std::str::from_utf8(&v.value).expect("utf8");
                    (
                        s.parse::<u64>().expect("number") + 1,
                        PutMode::Update(v.version),
                    )
                }
            };
            match store
                .put_if(
                    ns,
                    key,
                    Bytes::from(value.to_string()),
                    mode,
                    PutOptions::default(),
                )
                .await
            {
                Ok(_) => break,
                Err(Error::Conflict { .. }) => continue,
                Err(e) if e.is_retryable() => continue,
                Err(e) => panic!("increment failed: {e}"),
            }
        }
    }
}

pub async fn read_counter(store: &dyn AtomicKv, ns: &str, key: &[u8]) -> u64 {
    store
        .get_versioned(ns, key)
        .await
        .expect("read")
        .map_or(0, |v| {
            std::str::from_utf8(&v.value)
                .expect("utf8")
                .parse()
                .expect("number")
        })
}
