//! Harnesses for this workspace's own adapters.

mod memory;
mod redis;
mod sqlite;

pub use memory::MemoryHarness;
pub use redis::{RedisClusterHarness, RedisHarness};
pub use sqlite::{SqliteHarness, SqliteMode};

use std::sync::Arc;

use crate::harness::Harness;

/// Every adapter of this workspace, on its embedded defaults: memory
/// and SQLite need nothing; Redis uses `REDIS_URL` or starts a throwaway
/// `redis-server`, Redis Cluster uses `REDIS_CLUSTER_URLS` or starts a
/// throwaway three-master cluster (each fails its cases when neither
/// works).
pub fn workspace_harnesses() -> Vec<Arc<dyn Harness>> {
    vec![
        Arc::new(MemoryHarness),
        Arc::new(SqliteHarness::new(SqliteMode::File)),
        Arc::new(SqliteHarness::new(SqliteMode::Memory)),
        Arc::new(RedisHarness::new()),
        Arc::new(RedisClusterHarness::new()),
    ]
}
