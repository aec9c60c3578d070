//! Harnesses for this workspace's own adapters.

#[cfg(feature = "duckdb")]
mod duckdb;
mod memory;
#[cfg(feature = "redis")]
mod redis;
#[cfg(feature = "remote")]
mod remote;
#[cfg(feature = "sqlite")]
mod sqlite;

#[cfg(feature = "duckdb")]
pub use duckdb::{DuckDbHarness, DuckDbMode};
pub use memory::MemoryHarness;
#[cfg(feature = "redis")]
pub use redis::{RedisClusterHarness, RedisHarness};
#[cfg(feature = "remote")]
pub use remote::{RemoteLocalHarness, RemoteMemoryHarness, RemoteS3Harness};
#[cfg(feature = "sqlite")]
pub use sqlite::{SqliteHarness, SqliteMode};

use std::sync::Arc;

use crate::harness::Harness;

/// Every adapter of this workspace, on its embedded defaults: memory,
/// SQLite, DuckDB, object_store's in-memory store and the local-directory
/// store need nothing; Redis uses `REDIS_URL` or starts a throwaway
/// `redis-server`, Redis Cluster uses `REDIS_CLUSTER_URLS` or starts a
/// throwaway three-master cluster, S3 uses `S3_ENDPOINT` or starts a
/// throwaway `moto_server` (each fails its cases when neither works).
/// Only the adapters whose cargo feature is on are listed.
pub fn workspace_harnesses() -> Vec<Arc<dyn Harness>> {
    let mut harnesses: Vec<Arc<dyn Harness>> = vec![Arc::new(MemoryHarness)];
    #[cfg(feature = "sqlite")]
    harnesses.extend([
        Arc::new(SqliteHarness::new(SqliteMode::File)) as Arc<dyn Harness>,
        Arc::new(SqliteHarness::new(SqliteMode::Memory)),
    ]);
    #[cfg(feature = "duckdb")]
    harnesses.extend([
        Arc::new(DuckDbHarness::new(DuckDbMode::File)) as Arc<dyn Harness>,
        Arc::new(DuckDbHarness::new(DuckDbMode::Memory)),
    ]);
    #[cfg(feature = "redis")]
    harnesses.extend([
        Arc::new(RedisHarness::new()) as Arc<dyn Harness>,
        Arc::new(RedisClusterHarness::new()),
    ]);
    #[cfg(feature = "remote")]
    harnesses.extend([
        Arc::new(RemoteMemoryHarness) as Arc<dyn Harness>,
        Arc::new(RemoteLocalHarness::new()),
        Arc::new(RemoteS3Harness::new()),
    ]);
    harnesses
}
