//! Helpers the integration tests share (each test file compiles its own
//! copy, so not every helper is used everywhere).
//!
//! Servers come from `storage_redis::testing` (`REDIS_URL` /
//! `REDIS_CLUSTER_URLS` honoured); every store gets a unique prefix so
//! tests on a shared server never see each other.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use storage_core::{AtomicKv, Error, ManualClock, PutMode, PutOptions};
use storage_redis::testing::{RedisCluster, RedisServer};
use storage_redis::{RedisConfig, RedisStore};

/// A standalone server: `REDIS_URL`, or a fresh one.
pub fn server() -> RedisServer {
    RedisServer::start().unwrap_or_else(|e| panic!("no Redis server: {e}"))
}

/// A cluster: `REDIS_CLUSTER_URLS`, or a fresh three-master one.
pub fn cluster() -> RedisCluster {
    RedisCluster::start().unwrap_or_else(|e| panic!("no Redis cluster: {e}"))
}

/// A key prefix no other test (or run) uses.
pub fn unique_prefix(label: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "{label}-{}-{nanos}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// The globs matching every key a store with `prefix` writes (the
/// `{<prefix>/<namespace>}` tags and the `{<prefix>}` registry).
pub fn prefix_patterns(prefix: &str) -> [String; 2] {
    [format!("{{{prefix}/*"), format!("{{{prefix}}}*")]
}

/// Every key of `prefix` on the standalone server at `url`.
pub fn keys_of(url: &str, prefix: &str) -> Vec<Vec<u8>> {
    prefix_patterns(prefix)
        .iter()
        .flat_map(|p| storage_redis::testing::keys_matching(url, p).unwrap())
        .collect()
}

/// Every key of `prefix` on every master of `cluster`.
pub fn cluster_keys_of(cluster: &RedisCluster, prefix: &str) -> Vec<Vec<u8>> {
    prefix_patterns(prefix)
        .iter()
        .flat_map(|p| cluster.keys_matching(p).unwrap())
        .collect()
}

/// A standalone store on `url` with `prefix`, on `clock`.
pub async fn standalone(url: &str, prefix: &str, clock: &ManualClock) -> RedisStore {
    RedisStore::connect_with_clock(
        RedisConfig::standalone(url, prefix),
        Arc::new(clock.clone()),
    )
    .await
    .unwrap()
}

/// A cluster store on `urls` with `prefix`, on `clock`.
pub async fn clustered(urls: &[String], prefix: &str, clock: &ManualClock) -> RedisStore {
    RedisStore::connect_with_clock(
        RedisConfig::cluster(urls.to_vec(), prefix),
        Arc::new(clock.clone()),
    )
    .await
    .unwrap()
}

pub fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

/// Adds one to the decimal counter at `ns`/`key` by read → conditional
/// write → retry on conflict; returns how many attempts it took.
pub async fn increment(store: &dyn AtomicKv, ns: &str, key: &[u8]) -> Result<usize, Error> {
    let mut attempts = 0;
    loop {
        attempts += 1;
        let current = store.get_versioned(ns, key).await?;
        let (next, mode) = match current {
            Some(v) => {
                let n: u64 = std::str::from_utf8(&v.value)
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .unwrap_or_else(|| panic!("counter holds {:?}", v.value));
                (n + 1, PutMode::Update(v.version))
            }
            None => (1, PutMode::Create),
        };
        match store
            .put_if(
                ns,
                key,
                Bytes::from(next.to_string()),
                mode,
                PutOptions::default(),
            )
            .await
        {
            Ok(_) => return Ok(attempts),
            Err(Error::Conflict { .. }) => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Polls `f` until it returns `Some`, at most `limit`; the pause between
/// polls is only pacing, never what the test waits for.
pub async fn eventually<T, F, Fut>(limit: Duration, mut f: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f().await {
            return Some(v);
        }
        if Instant::now() > deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A directory of its own under the system temp dir, removed on drop.
#[derive(Debug)]
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(label: &str) -> TempDir {
        let dir = std::env::temp_dir().join(unique_prefix(label));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    pub fn path_str(&self) -> String {
        self.0.to_string_lossy().into_owned()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
