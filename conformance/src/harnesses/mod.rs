//! Harnesses for this workspace's own adapters.

mod memory;
#[cfg(feature = "redis")]
mod redis;
#[cfg(feature = "sqlite")]
mod sqlite;

pub use memory::MemoryHarness;
#[cfg(feature = "redis")]
pub use redis::{RedisClusterHarness, RedisHarness};
#[cfg(feature = "sqlite")]
pub use sqlite::{SqliteHarness, SqliteMode};

use std::sync::Arc;

use crate::harness::Harness;

/// Every adapter of this workspace, on its embedded defaults: memory and
/// SQLite need nothing; Redis uses `REDIS_URL` or starts a throwaway
/// `redis-server`, Redis Cluster uses `REDIS_CLUSTER_URLS` or starts a
/// throwaway three-master cluster (each fails its cases when neither
/// works). Only the adapters whose cargo feature is on are listed.
pub fn workspace_harnesses() -> Vec<Arc<dyn Harness>> {
    let mut harnesses: Vec<Arc<dyn Harness>> = vec![Arc::new(MemoryHarness)];
    #[cfg(feature = "sqlite")]
    harnesses.extend([
        Arc::new(SqliteHarness::new(SqliteMode::File)) as Arc<dyn Harness>,
        Arc::new(SqliteHarness::new(SqliteMode::Memory)),
    ]);
    #[cfg(feature = "redis")]
    harnesses.extend([
        Arc::new(RedisHarness::new()) as Arc<dyn Harness>,
        Arc::new(RedisClusterHarness::new()),
    ]);
    harnesses
}
