//! The Redis backend's harnesses: a standalone server and a Cluster.
//!
//! Servers come from [`storage_redis::testing`]: `REDIS_URL` /
//! `REDIS_CLUSTER_URLS` when set, otherwise throwaway processes on free
//! loopback ports, started the first time a fixture is opened and stopped
//! when the harness is dropped. Each fixture gets a unique key prefix and
//! its keys are deleted on close, so tests never see each other or
//! whatever else lives on a shared server. If the server cannot be
//! started the cases FAIL with the reason: an unreachable backend is not
//! a skip.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use parking_lot::Mutex;
use storage_core::{Capabilities, KvStore, ManualClock};
use storage_redis::testing::{RedisCluster, RedisServer};
use storage_redis::{RedisConfig, RedisStore};

use crate::harness::{Fixture, Harness};

/// What both harnesses share: unique prefixes, and the stores of open
/// fixtures (by the address of their KV handle) so `close` can delete
/// their keys.
#[derive(Debug, Default)]
struct Stores {
    open: Mutex<HashMap<usize, RedisStore>>,
    next: AtomicU64,
}

impl Stores {
    fn prefix(&self, label: &str) -> String {
        format!(
            "{label}-{}-{}",
            std::process::id(),
            self.next.fetch_add(1, Ordering::Relaxed)
        )
    }

    async fn open(&self, config: RedisConfig) -> Result<Fixture, String> {
        let clock = ManualClock::default();
        let store = RedisStore::connect_with_clock(config, Arc::new(clock.clone()))
            .await
            .map_err(|e| e.to_string())?;
        let kv: Arc<dyn KvStore> = Arc::new(store.clone());
        self.open
            .lock()
            .insert(Arc::as_ptr(&kv).cast::<()>() as usize, store.clone());
        Ok(Fixture {
            clock,
            kv: Some(kv),
            atomic: Some(Arc::new(store.clone())),
            queue: Some(Arc::new(store.clone())),
            sql: Some(Arc::new(store)),
        })
    }

    async fn close(&self, fixture: Fixture) {
        let Some(kv) = &fixture.kv else { return };
        let key = Arc::as_ptr(kv).cast::<()>() as usize;
        let store = self.open.lock().remove(&key);
        if let Some(store) = store {
            // Best effort: a case that stopped the server has nothing left.
            let _ = store.destroy().await;
        }
    }
}

/// Runs the suite on [`RedisStore`] on a standalone server.
#[derive(Debug, Default)]
pub struct RedisHarness {
    server: OnceLock<Result<RedisServer, String>>,
    stores: Stores,
}

impl RedisHarness {
    /// A harness that starts (or finds) its server lazily.
    pub fn new() -> Self {
        RedisHarness::default()
    }

    fn url(&self) -> Result<String, String> {
        self.server
            .get_or_init(RedisServer::start)
            .as_ref()
            .map(|s| s.url().to_owned())
            .map_err(|e| format!("no Redis server: {e}"))
    }
}

#[async_trait]
impl Harness for RedisHarness {
    fn name(&self) -> String {
        "redis".to_owned()
    }

    fn capabilities(&self) -> Capabilities {
        storage_redis::CAPABILITIES
    }

    async fn open(&self) -> Result<Fixture, String> {
        let url = self.url()?;
        let prefix = self.stores.prefix("cf");
        self.stores.open(RedisConfig::standalone(url, prefix)).await
    }

    async fn close(&self, fixture: Fixture) {
        self.stores.close(fixture).await;
    }
}

/// Runs the suite on [`RedisStore`] on a three-master Redis Cluster
/// (declaring [`storage_redis::CLUSTER_CAPABILITIES`]: transactions stay
/// within one namespace).
#[derive(Debug, Default)]
pub struct RedisClusterHarness {
    cluster: OnceLock<Result<RedisCluster, String>>,
    stores: Stores,
}

impl RedisClusterHarness {
    /// A harness that starts (or finds) its cluster lazily.
    pub fn new() -> Self {
        RedisClusterHarness::default()
    }

    fn urls(&self) -> Result<Vec<String>, String> {
        self.cluster
            .get_or_init(RedisCluster::start)
            .as_ref()
            .map(|c| c.urls().to_vec())
            .map_err(|e| format!("no Redis cluster: {e}"))
    }
}

#[async_trait]
impl Harness for RedisClusterHarness {
    fn name(&self) -> String {
        "redis-cluster".to_owned()
    }

    fn capabilities(&self) -> Capabilities {
        storage_redis::CLUSTER_CAPABILITIES
    }

    async fn open(&self) -> Result<Fixture, String> {
        let urls = self.urls()?;
        let prefix = self.stores.prefix("cfc");
        self.stores.open(RedisConfig::cluster(urls, prefix)).await
    }

    async fn close(&self, fixture: Fixture) {
        self.stores.close(fixture).await;
    }
}
