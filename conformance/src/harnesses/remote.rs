//! The object-storage backend's harnesses: object_store's `InMemory`, the
//! local-directory CAS store in a temporary directory, and S3 via moto.
//!
//! The S3 server comes from [`storage_remote::testing`]: `S3_ENDPOINT`
//! when set, otherwise a throwaway `moto_server` on a free loopback port,
//! started the first time a fixture is opened and stopped when the
//! harness is dropped. Each fixture gets a bucket of its own, emptied and
//! deleted on close. If no server can be had the cases FAIL with
//! "S3 unavailable: <why>": an unreachable backend is not a skip.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use parking_lot::Mutex;
use storage_core::{Capabilities, KvStore, ManualClock};
use storage_remote::testing::{S3Server, TestBucket};
use storage_remote::RemoteStore;

use crate::harness::{Fixture, Harness};

/// What the fixture of a store needs closed, by the address of its KV
/// handle.
#[derive(Debug)]
struct Open<T> {
    open: Mutex<HashMap<usize, T>>,
}

impl<T> Default for Open<T> {
    fn default() -> Self {
        Open {
            open: Mutex::new(HashMap::new()),
        }
    }
}

impl<T> Open<T> {
    fn fixture(&self, clock: ManualClock, store: RemoteStore, keep: T) -> Fixture {
        let kv: Arc<dyn KvStore> = Arc::new(store.clone());
        self.open
            .lock()
            .insert(Arc::as_ptr(&kv).cast::<()>() as usize, keep);
        Fixture {
            clock,
            kv: Some(kv),
            atomic: Some(Arc::new(store.clone())),
            queue: Some(Arc::new(store.clone())),
            sql: Some(Arc::new(store)),
        }
    }

    fn take(&self, fixture: &Fixture) -> Option<T> {
        let kv = fixture.kv.as_ref()?;
        self.open
            .lock()
            .remove(&(Arc::as_ptr(kv).cast::<()>() as usize))
    }
}

/// Runs the suite on [`RemoteStore`] over object_store's `InMemory`
/// (ETags unique per write).
#[derive(Debug, Clone, Copy, Default)]
pub struct RemoteMemoryHarness;

#[async_trait]
impl Harness for RemoteMemoryHarness {
    fn name(&self) -> String {
        "remote-memory".to_owned()
    }

    fn capabilities(&self) -> Capabilities {
        storage_remote::CAPABILITIES
    }

    async fn open(&self) -> Result<Fixture, String> {
        let clock = ManualClock::default();
        let store = RemoteStore::in_memory(Arc::new(clock.clone()));
        Ok(Fixture {
            clock,
            kv: Some(Arc::new(store.clone())),
            atomic: Some(Arc::new(store.clone())),
            queue: Some(Arc::new(store.clone())),
            sql: Some(Arc::new(store)),
        })
    }
}

/// Runs the suite on [`RemoteStore`] over a
/// [`LocalDirStore`](storage_remote::LocalDirStore) in a fresh temporary
/// directory per fixture (content-hash ETags, file-lock CAS).
#[derive(Debug, Default)]
pub struct RemoteLocalHarness {
    dirs: Open<tempfile::TempDir>,
}

impl RemoteLocalHarness {
    /// A harness making one temporary directory per fixture.
    pub fn new() -> Self {
        RemoteLocalHarness::default()
    }
}

#[async_trait]
impl Harness for RemoteLocalHarness {
    fn name(&self) -> String {
        "remote-local".to_owned()
    }

    fn capabilities(&self) -> Capabilities {
        storage_remote::CONTENT_HASH_CAPABILITIES
    }

    async fn open(&self) -> Result<Fixture, String> {
        let dir = tempfile::tempdir().map_err(|e| format!("no temporary directory: {e}"))?;
        let clock = ManualClock::default();
        let store = RemoteStore::local_dir(dir.path(), Arc::new(clock.clone()))
            .map_err(|e| e.to_string())?;
        Ok(self.dirs.fixture(clock, store, dir))
    }

    async fn close(&self, fixture: Fixture) {
        // Dropping the TempDir removes the directory.
        drop(self.dirs.take(&fixture));
    }
}

/// Runs the suite on [`RemoteStore`] on S3: `S3_ENDPOINT` or a throwaway
/// `moto_server`, one bucket per fixture.
#[derive(Debug, Default)]
pub struct RemoteS3Harness {
    server: OnceLock<Result<S3Server, String>>,
    buckets: Open<TestBucket>,
}

impl RemoteS3Harness {
    /// A harness that starts (or finds) its server lazily.
    pub fn new() -> Self {
        RemoteS3Harness::default()
    }
}

#[async_trait]
impl Harness for RemoteS3Harness {
    fn name(&self) -> String {
        "remote-s3".to_owned()
    }

    fn capabilities(&self) -> Capabilities {
        storage_remote::CONTENT_HASH_CAPABILITIES
    }

    async fn open(&self) -> Result<Fixture, String> {
        let server = self
            .server
            .get_or_init(S3Server::start)
            .as_ref()
            .map_err(Clone::clone)?;
        let clock = ManualClock::default();
        let (store, bucket) = server.store("cf", Arc::new(clock.clone()))?;
        Ok(self.buckets.fixture(clock, store, bucket))
    }

    async fn close(&self, fixture: Fixture) {
        if let Some(bucket) = self.buckets.take(&fixture) {
            bucket.cleanup().await;
        }
    }
}
